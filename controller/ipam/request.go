package ipam

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// Family is an address family.
type Family int

// Families.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Policy is a Service's ipFamilyPolicy.
type Policy int

// Policies.
const (
	SingleStack Policy = iota
	PreferDualStack
	RequireDualStack
)

// Port is a port a Service exposes, for the sharing rules.
type Port struct {
	Protocol corev1.Protocol
	Port     int32
}

// Request is what one Service asks of the allocator.
type Request struct {
	Service types.NamespacedName
	// Families in the order of spec.ipFamilies (at least one).
	Families []Family
	Policy   Policy
	// IPs are the requested addresses (spec.loadBalancerIP or the annotation), at most one
	// per family; empty means any.
	IPs []netip.Addr
	// Pool is the requested pool name, or "".
	Pool string
	// SharingKey is the allow-shared-ip key; "" means the IPs are the Service's alone.
	SharingKey string
	// Ports, LocalTraffic (externalTrafficPolicy: Local) and Selector decide whether two
	// Services with the same sharing key may share an IP.
	Ports        []Port
	LocalTraffic bool
	Selector     map[string]string
	// Labels and NamespaceLabels are matched by pools' serviceAllocation.
	Labels          map[string]string
	NamespaceLabels map[string]string
}

// wanted returns the families the request wants, in order.
func (r *Request) wanted() []Family {
	if r.Policy == SingleStack {
		return r.Families[:1]
	}
	return r.Families
}

// ParseService turns a Service into a Request. Errors are *Error with
// ReasonInvalidRequest or ReasonConflictingRequests; nsLabels are the labels of the
// Service's namespace.
func ParseService(svc *corev1.Service, nsLabels map[string]string) (Request, error) {
	r := Request{
		Service:         types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name},
		Pool:            strings.TrimSpace(svc.Annotations[v1beta1.AnnotationAddressPool]),
		SharingKey:      strings.TrimSpace(svc.Annotations[v1beta1.AnnotationAllowSharedIP]),
		LocalTraffic:    svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
		Selector:        svc.Spec.Selector,
		Labels:          svc.Labels,
		NamespaceLabels: nsLabels,
	}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			r.Families = append(r.Families, IPv4)
		case corev1.IPv6Protocol:
			r.Families = append(r.Families, IPv6)
		}
	}
	if len(r.Families) == 0 {
		// Not defaulted (only possible for objects that bypassed the API server): IPv4.
		r.Families = []Family{IPv4}
	}
	if p := svc.Spec.IPFamilyPolicy; p != nil {
		switch *p {
		case corev1.IPFamilyPolicyPreferDualStack:
			r.Policy = PreferDualStack
		case corev1.IPFamilyPolicyRequireDualStack:
			r.Policy = RequireDualStack
		}
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		r.Ports = append(r.Ports, Port{Protocol: proto, Port: p.Port})
	}
	spec := strings.TrimSpace(svc.Spec.LoadBalancerIP) //nolint:staticcheck // still honoured
	ann, hasAnn := svc.Annotations[v1beta1.AnnotationLoadBalancerIPs]
	ann = strings.TrimSpace(ann)
	if spec != "" && hasAnn && ann != "" {
		return r, errorf(ReasonConflictingRequests, "both spec.loadBalancerIP and the %s annotation are set", v1beta1.AnnotationLoadBalancerIPs)
	}
	src, list := "spec.loadBalancerIP", spec
	if ann != "" {
		src, list = "annotation "+v1beta1.AnnotationLoadBalancerIPs, ann
	}
	if list == "" {
		return r, nil
	}
	seen := map[Family]netip.Addr{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return r, errorf(ReasonInvalidRequest, "%s: %q is not an IP address", src, s)
		}
		a = a.Unmap()
		if what, special := SpecialPurpose(a); special {
			return r, errorf(ReasonInvalidRequest, "%s: %s is a special-purpose address (%s) and is never allocated", src, a, what)
		}
		f := familyOf(a)
		if prev, ok := seen[f]; ok {
			return r, errorf(ReasonInvalidRequest, "%s: more than one %s address (%s and %s)", src, f, prev, a)
		}
		seen[f] = a
		if !slices.Contains(r.wanted(), f) {
			return r, errorf(ReasonInvalidRequest, "%s: %s is %s but the Service's families are %v", src, a, f, r.wanted())
		}
		r.IPs = append(r.IPs, a)
	}
	// Keep the requested IPs in the Service's family order.
	slices.SortStableFunc(r.IPs, func(a, b netip.Addr) int {
		return slices.Index(r.Families, familyOf(a)) - slices.Index(r.Families, familyOf(b))
	})
	if r.Policy == RequireDualStack && len(r.IPs) < len(r.Families) {
		return r, errorf(ReasonConflictingRequests, "%s: RequireDualStack needs one requested IP per family", src)
	}
	return r, nil
}

// compatible reports whether Services a and b may share an IP.
func compatible(a, b *Request) bool {
	if a.SharingKey == "" || a.SharingKey != b.SharingKey || a.LocalTraffic != b.LocalTraffic {
		return false
	}
	if a.LocalTraffic && !maps.Equal(a.Selector, b.Selector) {
		return false
	}
	for _, p := range a.Ports {
		if slices.Contains(b.Ports, p) {
			return false
		}
	}
	return true
}
