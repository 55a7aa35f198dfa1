package app_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
)

// TestSpecialPurposeAddresses, against the real API server: an IPv6 /64 pool hands out
// ::1 first (never the subnet-router anycast address), a 127.0.0.0/8 pool is accepted but
// hands out nothing and refuses a request for 127.0.0.1, a 0.0.0.0/2 pool starts at
// 1.0.0.0; each pool's AddressesExcluded condition lists what it leaves out and its
// counts leave those addresses out.
func TestSpecialPurposeAddresses(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "special"
	namespace(t, c, ns, nil)
	v6 := ipPool("v6", "2001:db8:100::/64")
	lo := ipPool("lo", "127.0.0.0/8")
	wide := ipPool("wide", "0.0.0.0/2") // 0.0.0.0/1 would overlap lo
	for _, p := range []*v1beta1.IPAddressPool{lo, wide} {
		p.Spec.AutoAssign = new(bool) // only for Services that ask
	}
	create(t, c, v6, lo, wide)
	startController(t, env, app.Options{})

	pool := func(name string, status metav1.ConditionStatus, counts func(v1beta1.IPAddressPoolStatus) bool, substrs ...string) {
		t.Helper()
		waitPoolStatus(t, c, name, func(p *v1beta1.IPAddressPool) (bool, string) {
			v := validCond(p)
			x := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionAddressesExcluded)
			if v == nil || v.Status != metav1.ConditionTrue || x == nil || x.Status != status || !counts(p.Status) {
				return false, fmt.Sprintf("%+v", p.Status)
			}
			for _, s := range substrs {
				if !strings.Contains(x.Message, s) {
					return false, fmt.Sprintf("message %q lacks %q", x.Message, s)
				}
			}
			return true, ""
		})
	}

	create(t, c, lbService(ns, "six", withDual(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol)))
	waitIPs(t, c, ns, "six", "2001:db8:100::1")
	pool("v6", metav1.ConditionTrue, func(st v1beta1.IPAddressPoolStatus) bool { return st.IPv6Assigned == 1 },
		"2001:db8:100:: (subnet-router anycast of 2001:db8:100::/64)")

	create(t, c, lbService(ns, "local", withSpecIP("127.0.0.1")),
		lbService(ns, "local-ann", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "127.0.0.2")),
		lbService(ns, "anycast", withDual(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol), withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "2001:db8:100::")),
		lbService(ns, "from-lo", withAnnotation(v1beta1.AnnotationAddressPool, "lo")),
		lbService(ns, "from-wide", withAnnotation(v1beta1.AnnotationAddressPool, "wide")))
	waitEvent(t, c, ns, "local", "AllocationFailed", "127.0.0.1 is a special-purpose address (loopback)")
	waitEvent(t, c, ns, "local-ann", "AllocationFailed", "127.0.0.2 is a special-purpose address (loopback)")
	waitEvent(t, c, ns, "anycast", "AllocationFailed", "subnet-router anycast")
	waitEvent(t, c, ns, "from-lo", "AllocationFailed", "PoolExhausted")
	waitIPs(t, c, ns, "from-wide", "1.0.0.0")
	for _, n := range []string{"local", "local-ann", "anycast", "from-lo"} {
		if got := ingress(getSvc(t, c, ns, n)); len(got) != 0 {
			t.Errorf("%s got %v", n, got)
		}
	}
	pool("lo", metav1.ConditionTrue, func(st v1beta1.IPAddressPoolStatus) bool { return st.IPv4Assigned == 0 && st.IPv4Available == 0 },
		"127.0.0.0/8 (loopback)")
	// 2^30 less 0.0.0.0/8, less the one in use.
	pool("wide", metav1.ConditionTrue, func(st v1beta1.IPAddressPoolStatus) bool {
		return st.IPv4Assigned == 1 && st.IPv4Available == 1<<30-1<<24-1
	}, "0.0.0.0/8 (unspecified (this network))")

	// A pool without special-purpose addresses says so.
	create(t, c, ipPool("plain", "203.0.113.0/28"))
	pool("plain", metav1.ConditionFalse, func(st v1beta1.IPAddressPoolStatus) bool { return st.IPv4Available == 16 })
}
