package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// FuzzParseServiceIPs feeds the requested-IP inputs of ParseService (the
// loadstone.io/load-balancer-ips annotation and spec.loadBalancerIP) with every family
// shape and policy, and checks what the parser promises (docs/controller.md, "Allocation
// rules" and "Failure reasons"):
//
//   - accepted: every comma-separated item became exactly one address (none dropped, none
//     invented), at most one per family, only families the Service wants, no zone, in the
//     order of spec.ipFamilies; RequireDualStack got one per family; printing the
//     addresses and parsing that again gives the same request;
//   - rejected: InvalidRequest for an unparsable item (the message quotes it), two
//     addresses of one family or one of a family the Service does not have (the message
//     names the address); ConflictingRequests for both inputs set, or RequireDualStack with
//     fewer addresses than families; every message names the input it is about.
//
// Accept or reject is decided independently below from the items themselves.
func FuzzParseServiceIPs(f *testing.F) {
	for _, s := range []struct {
		ann, spec string
		shape     uint8
	}{
		{"10.0.0.1", "", 0}, {" 10.0.0.1 ", "", 0}, {"", "10.0.0.1", 0}, {"10.0.0.1", "10.0.0.2", 0},
		{"10.0.0.1,", "", 0}, {",", "", 0}, {"10.0.0.300", "", 0}, {"2001:db8::1", "", 0},
		{"2001:db8::1, 10.0.0.1", "", 5}, {"10.0.0.1,2001:db8::1", "", 9}, {"10.0.0.1", "", 9},
		{"10.0.0.1,10.0.0.2", "", 9}, {"::ffff:10.0.0.1", "", 0}, {"10.0.0.1,::ffff:10.0.0.1", "", 5},
		{"fe80::1%eth0", "", 1}, {"2001:db8::1", "", 2}, {"   ", "10.0.0.1", 0}, {"10.0.0.1 ,\t2001:db8::1\n", "", 6},
		{"1.2.3.4,1.2.3.4", "", 0}, {"0.0.0.0", "", 0}, {"::", "", 1}, {"10.0.0.1,2001:db8::1,10.0.0.2", "", 5},
	} {
		f.Add(s.ann, s.spec, s.shape)
	}
	f.Fuzz(func(t *testing.T, ann, spec string, shape uint8) {
		// shape: bits 0-1 the families, bits 2-3 the policy, bit 4 whether the annotation
		// key is present at all.
		fams := [][]corev1.IPFamily{{corev1.IPv4Protocol}, {corev1.IPv6Protocol},
			{corev1.IPv4Protocol, corev1.IPv6Protocol}, {corev1.IPv6Protocol, corev1.IPv4Protocol}}[shape&3]
		policy := []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack,
			corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack}[shape>>2&3]
		if len(fams) == 1 && policy != corev1.IPFamilyPolicySingleStack {
			fams = append(fams, otherFamily(fams[0])) // the API server rejects dual policies with one family
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Annotations: map[string]string{
				v1beta1.AnnotationAddressPool: "gold", v1beta1.AnnotationAllowSharedIP: "k"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, IPFamilies: fams, IPFamilyPolicy: &policy,
				LoadBalancerIP: spec},
		}
		if shape&16 == 0 || ann != "" {
			svc.Annotations[v1beta1.AnnotationLoadBalancerIPs] = ann
		}
		r, err := ParseService(svc, nil)

		if r.Service.Name != "web" || r.Pool != "gold" || r.SharingKey != "k" {
			t.Fatalf("other fields lost: %+v", r)
		}
		var wanted []Family
		for _, fam := range fams {
			wanted = append(wanted, map[corev1.IPFamily]Family{corev1.IPv4Protocol: IPv4, corev1.IPv6Protocol: IPv6}[fam])
		}
		if policy == corev1.IPFamilyPolicySingleStack {
			wanted = wanted[:1]
		}

		a, s := strings.TrimSpace(ann), strings.TrimSpace(spec)
		src, list := "annotation "+v1beta1.AnnotationLoadBalancerIPs, a
		if a == "" {
			src, list = "spec.loadBalancerIP", s
		}
		if a != "" && s != "" {
			if ReasonOf(err) != ReasonConflictingRequests || !strings.Contains(err.Error(), "spec.loadBalancerIP") ||
				!strings.Contains(err.Error(), v1beta1.AnnotationLoadBalancerIPs) {
				t.Fatalf("both inputs set: got %v, want ConflictingRequests naming both", err)
			}
			return
		}
		if list == "" {
			if err != nil || len(r.IPs) != 0 {
				t.Fatalf("nothing requested: got %v, %v", r.IPs, err)
			}
			return
		}

		// The independent verdict: the first item that is wrong, in order, decides.
		items := strings.Split(list, ",")
		var want Reason
		var names string
		seen := map[Family]bool{}
		var addrs []netip.Addr
		for _, it := range items {
			it = strings.TrimSpace(it)
			ad, perr := netip.ParseAddr(it)
			if perr != nil || ad.Zone() != "" {
				want, names = ReasonInvalidRequest, fmt.Sprintf("%q", it)
				break
			}
			ad = ad.Unmap()
			// Never a load balancer IP: unspecified (0.0.0.0/8, ::), loopback, link-local,
			// multicast, limited broadcast.
			if ad.IsUnspecified() || ad.IsLoopback() || ad.IsLinkLocalUnicast() || ad.IsMulticast() ||
				(ad.Is4() && (ad.As4()[0] == 0 || ad == netip.AddrFrom4([4]byte{255, 255, 255, 255}))) {
				want, names = ReasonInvalidRequest, ad.String()
				break
			}
			fam := IPv6
			if ad.Is4() {
				fam = IPv4
			}
			if seen[fam] || !slices.Contains(wanted, fam) {
				want, names = ReasonInvalidRequest, ad.String()
				break
			}
			seen[fam] = true
			addrs = append(addrs, ad)
		}
		if want == "" && policy == corev1.IPFamilyPolicyRequireDualStack && len(addrs) < len(fams) {
			want, names = ReasonConflictingRequests, "RequireDualStack"
		}

		if want != "" {
			if ReasonOf(err) != want {
				t.Fatalf("ParseService(%q, spec %q, %v %v) = %v, %v; want %s", ann, spec, fams, policy, r.IPs, err, want)
			}
			if msg := err.Error(); !strings.Contains(msg, src) || !strings.Contains(msg, names) {
				t.Fatalf("error %q does not name the input %s and %s", msg, src, names)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseService(%q, spec %q, %v %v): %v; every item is a distinct wanted family", ann, spec, fams, policy, err)
		}
		if len(r.IPs) != len(items) || len(r.IPs) > len(wanted) {
			t.Fatalf("%d items gave %v (wanted families %v)", len(items), r.IPs, wanted)
		}
		for i, ip := range r.IPs {
			if !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() || !slices.Contains(addrs, ip) {
				t.Fatalf("accepted %v: %s is not one of the items %v", r.IPs, ip, addrs)
			}
			if i > 0 && slices.Index(r.Families, familyOf(r.IPs[i-1])) >= slices.Index(r.Families, familyOf(ip)) {
				t.Fatalf("accepted %v: not one per family in the order of %v", r.IPs, r.Families)
			}
		}
		// Round trip through the annotation.
		var text []string
		for _, ip := range r.IPs {
			text = append(text, ip.String())
		}
		svc.Spec.LoadBalancerIP = ""
		svc.Annotations[v1beta1.AnnotationLoadBalancerIPs] = strings.Join(text, ",")
		back, err := ParseService(svc, nil)
		if err != nil || !slices.Equal(back.IPs, r.IPs) {
			t.Fatalf("%v printed as %q parses to %v, %v", r.IPs, strings.Join(text, ","), back.IPs, err)
		}
	})
}

func otherFamily(f corev1.IPFamily) corev1.IPFamily {
	if f == corev1.IPv4Protocol {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}
