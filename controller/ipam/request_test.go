package ipam

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

func TestParseService(t *testing.T) {
	policy := func(p corev1.IPFamilyPolicy) *corev1.IPFamilyPolicy { return &p }
	svc := func(mut func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Annotations: map[string]string{}, Labels: map[string]string{"app": "web"}},
			Spec: corev1.ServiceSpec{
				Type:       corev1.ServiceTypeLoadBalancer,
				IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
				Ports:      []corev1.ServicePort{{Port: 80}, {Port: 53, Protocol: corev1.ProtocolUDP}},
				Selector:   map[string]string{"app": "web"},
			},
		}
		if mut != nil {
			mut(s)
		}
		return s
	}
	dualSvc := func(p corev1.IPFamilyPolicy, mut func(*corev1.Service)) *corev1.Service {
		return svc(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = policy(p)
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
			if mut != nil {
				mut(s)
			}
		})
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		want func(*Request)
		err  Reason
	}{
		{name: "plain", svc: svc(nil)},
		{name: "spec.loadBalancerIP", svc: svc(func(s *corev1.Service) { setSpecIP(s, "10.0.0.1") }),
			want: func(r *Request) { r.IPs = []netip.Addr{parse("10.0.0.1")} }},
		{name: "annotation", svc: svc(func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = " 10.0.0.1 " }),
			want: func(r *Request) { r.IPs = []netip.Addr{parse("10.0.0.1")} }},
		{name: "both set", svc: svc(func(s *corev1.Service) {
			setSpecIP(s, "10.0.0.1")
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "10.0.0.1"
		}), err: ReasonConflictingRequests},
		{name: "garbage", svc: svc(func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "10.0.0.300" }), err: ReasonInvalidRequest},
		{name: "empty item", svc: svc(func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "10.0.0.1," }), err: ReasonInvalidRequest},
		{name: "family mismatch", svc: svc(func(s *corev1.Service) { setSpecIP(s, "2001:db8::1") }), err: ReasonInvalidRequest},
		{name: "two of a family", svc: dualSvc(corev1.IPFamilyPolicyRequireDualStack, func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "10.0.0.1,10.0.0.2"
		}), err: ReasonInvalidRequest},
		{name: "dual-stack in family order", svc: dualSvc(corev1.IPFamilyPolicyRequireDualStack, func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "10.0.0.1, 2001:db8::1"
		}), want: func(r *Request) {
			r.Families, r.Policy = []Family{IPv6, IPv4}, RequireDualStack
			r.IPs = []netip.Addr{parse("2001:db8::1"), parse("10.0.0.1")}
		}},
		{name: "RequireDualStack with one requested IP", svc: dualSvc(corev1.IPFamilyPolicyRequireDualStack, func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "10.0.0.1"
		}), err: ReasonConflictingRequests},
		{name: "PreferDualStack with one requested IP", svc: dualSvc(corev1.IPFamilyPolicyPreferDualStack, func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "10.0.0.1"
		}), want: func(r *Request) {
			r.Families, r.Policy = []Family{IPv6, IPv4}, PreferDualStack
			r.IPs = []netip.Addr{parse("10.0.0.1")}
		}},
		{name: "pool, key, Local", svc: svc(func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationAddressPool] = "gold"
			s.Annotations[v1beta1.AnnotationAllowSharedIP] = "k"
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), want: func(r *Request) { r.Pool, r.SharingKey, r.LocalTraffic = "gold", "k", true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseService(tc.svc, map[string]string{"env": "prod"})
			if ReasonOf(err) != tc.err {
				t.Fatalf("reason %q (%v), want %q", ReasonOf(err), err, tc.err)
			}
			if tc.err != "" {
				return
			}
			want := Request{
				Service:         nn("ns/web"),
				Families:        []Family{IPv4},
				Ports:           []Port{{corev1.ProtocolTCP, 80}, {corev1.ProtocolUDP, 53}},
				Selector:        map[string]string{"app": "web"},
				Labels:          map[string]string{"app": "web"},
				NamespaceLabels: map[string]string{"env": "prod"},
			}
			if tc.want != nil {
				tc.want(&want)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFreeSet(t *testing.T) {
	f := newFreeSet()
	u := func(n uint64) u128 { return u128{lo: n} }
	f.add(span{u(10), u(19)})
	f.add(span{u(30), u(39)})
	f.add(span{u(20), u(29)}) // merges both neighbours
	if f.t.Len() != 1 || f.n != u(30) {
		t.Fatalf("merge: %d spans, n=%v", f.t.Len(), f.n)
	}
	for _, x := range []uint64{10, 15, 39} {
		if !f.take(u(x)) {
			t.Fatalf("take %d failed", x)
		}
	}
	if f.take(u(15)) || f.take(u(9)) || f.take(u(40)) {
		t.Fatal("took an address that is not free")
	}
	if lo, _ := f.lowest(); lo != u(11) {
		t.Fatalf("lowest = %v", lo)
	}
	if f.t.Len() != 2 || f.n != u(27) {
		t.Fatalf("after takes: %d spans, n=%v", f.t.Len(), f.n)
	}
	f.add(span{u(15), u(15)})
	if f.t.Len() != 1 || f.n != u(28) {
		t.Fatalf("re-add: %d spans, n=%v", f.t.Len(), f.n)
	}
	max := u128{^uint64(0), ^uint64(0)}
	g := newFreeSet()
	g.add(span{max.dec(), max})
	g.add(span{u(0), u(0)})
	if !g.take(max) || !g.take(u(0)) || g.n != u(1) {
		t.Fatalf("extremes: n=%v", g.n)
	}
}

// setSpecIP sets spec.loadBalancerIP, deprecated upstream but still honoured by Loadstone.
func setSpecIP(s *corev1.Service, ip string) {
	s.Spec.LoadBalancerIP = ip //nolint:staticcheck // deliberately tested
}
