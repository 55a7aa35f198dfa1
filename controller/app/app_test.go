package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
)

// TestAllocation covers, against the real API server: the plain case (status, ipMode,
// annotation, Event, pool status), pool priority and selectors, autoAssign false, requested
// IPs (annotation and spec.loadBalancerIP) including one in use, sharing, dual-stack, bad
// annotations, load balancer classes and a type change.
func TestAllocation(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "alloc"
	namespace(t, c, ns, nil)
	gold := ipPool("gold", "203.0.113.16/30")
	gold.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 1, ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "gold"}}}}
	manual := ipPool("manual", "203.0.113.32/30")
	manual.Spec.AutoAssign = ptr.To(false)
	create(t, c, ipPool("main", "203.0.113.0/29", "2001:db8:100::/125"), gold, manual)
	startController(t, env, app.Options{})

	t.Run("plain", func(t *testing.T) {
		create(t, c, lbService(ns, "plain"))
		s := waitIPs(t, c, ns, "plain", "203.0.113.0")
		// No pool mode, no annotation: the default mode pods, carried by our dataplane.
		if m := s.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeProxy {
			t.Errorf("ipMode %v, want Proxy (default mode pods)", m)
		}
		if got := s.Annotations[v1beta1.AnnotationAllocatedFromPool]; got != "main" {
			t.Errorf("allocated-from-pool %q", got)
		}
		waitEvent(t, c, ns, "plain", "IPAllocated", "203.0.113.0")
		waitPoolStatus(t, c, "main", func(p *v1beta1.IPAddressPool) (bool, string) {
			st := p.Status
			cond := validCond(p)
			ok := st.IPv4Assigned == 1 && st.IPv4Available == 7 && st.IPv6Assigned == 0 && st.IPv6Available == 7 && // 2001:db8:100:: is anycast
				cond != nil && cond.Status == metav1.ConditionTrue
			return ok, fmt.Sprintf("%+v", st)
		})
	})
	t.Run("priority and selectors", func(t *testing.T) {
		create(t, c, lbService(ns, "golden", withLabel("tier", "gold")))
		s := waitIPs(t, c, ns, "golden", "203.0.113.16")
		if got := s.Annotations[v1beta1.AnnotationAllocatedFromPool]; got != "gold" {
			t.Errorf("allocated-from-pool %q", got)
		}
	})
	t.Run("requested IPs", func(t *testing.T) {
		create(t, c, lbService(ns, "want-manual", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "203.0.113.33")))
		waitIPs(t, c, ns, "want-manual", "203.0.113.33")
		create(t, c, lbService(ns, "want-pool", withAnnotation(v1beta1.AnnotationAddressPool, "manual")))
		waitIPs(t, c, ns, "want-pool", "203.0.113.32")
		create(t, c, lbService(ns, "spec-ip", withSpecIP("203.0.113.5")))
		waitIPs(t, c, ns, "spec-ip", "203.0.113.5")
		create(t, c, lbService(ns, "taken", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "203.0.113.5")))
		waitEvent(t, c, ns, "taken", "AllocationFailed", "in use by alloc/spec-ip")
		create(t, c, lbService(ns, "nowhere", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "192.0.2.200")))
		waitEvent(t, c, ns, "nowhere", "AllocationFailed", "IPNotInPool")
		if got := ingress(getSvc(t, c, ns, "taken")); len(got) != 0 {
			t.Errorf("taken got %v", got)
		}
	})
	t.Run("sharing", func(t *testing.T) {
		key := withAnnotation(v1beta1.AnnotationAllowSharedIP, "web")
		create(t, c, lbService(ns, "share-a", key, withPort(80)), lbService(ns, "share-b", key, withPort(443)))
		a := waitIPs(t, c, ns, "share-a", ingressOf(t, c, ns, "share-a")...)
		waitIPs(t, c, ns, "share-b", ingress(a)...)
		create(t, c, lbService(ns, "share-clash", key, withPort(80)))
		cl := waitIPs(t, c, ns, "share-clash", ingressOf(t, c, ns, "share-clash")...)
		if ingress(cl)[0] == ingress(a)[0] {
			t.Fatalf("port clash shares %v", ingress(a))
		}
		checkNoDuplicates(t, c)
	})
	t.Run("dual-stack", func(t *testing.T) {
		create(t, c, lbService(ns, "dual", withDual(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol)))
		s := waitIPs(t, c, ns, "dual", ingressOf(t, c, ns, "dual")...)
		got := ingress(s)
		if len(got) != 2 || !strings.Contains(got[0], ":") || strings.Contains(got[1], ":") {
			t.Fatalf("dual-stack ingress %v, want IPv6 then IPv4", got)
		}
		create(t, c, lbService(ns, "v6only", withDual(corev1.IPFamilyPolicySingleStack, corev1.IPv6Protocol), withAnnotation(v1beta1.AnnotationAddressPool, "gold"), withLabel("tier", "gold")))
		waitEvent(t, c, ns, "v6only", "AllocationFailed", "FamilyNotOffered")
	})
	t.Run("bad annotations", func(t *testing.T) {
		create(t, c, lbService(ns, "garbage", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "not-an-ip")))
		waitEvent(t, c, ns, "garbage", "AllocationFailed", "InvalidRequest")
		create(t, c, lbService(ns, "both", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "203.0.113.6"), withSpecIP("203.0.113.6")))
		waitEvent(t, c, ns, "both", "AllocationFailed", "ConflictingRequests")
		// A bad annotation on a Service that holds an IP withdraws nothing.
		updateSvc(t, c, ns, "plain", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.999" })
		waitEvent(t, c, ns, "plain", "AllocationFailed", "keeping 203.0.113.0")
		waitIPs(t, c, ns, "plain", "203.0.113.0")
		updateSvc(t, c, ns, "plain", func(s *corev1.Service) { delete(s.Annotations, v1beta1.AnnotationLoadBalancerIPs) })
	})
	t.Run("classes", func(t *testing.T) {
		create(t, c, lbService(ns, "other-class", withClass("example.com/other")), lbService(ns, "our-class", withClass(v1beta1.LoadBalancerClass)))
		waitIPs(t, c, ns, "our-class", ingressOf(t, c, ns, "our-class")...)
		if got := ingress(getSvc(t, c, ns, "other-class")); len(got) != 0 {
			t.Fatalf("other class got %v", got)
		}
	})
	t.Run("type change releases", func(t *testing.T) {
		create(t, c, lbService(ns, "retype"))
		ip := ingressOf(t, c, ns, "retype")
		updateSvc(t, c, ns, "retype", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.AllocateLoadBalancerNodePorts = nil
		})
		eventually(t, "retype to lose its IP and annotation", func() (bool, string) {
			s := getSvc(t, c, ns, "retype")
			_, ann := s.Annotations[v1beta1.AnnotationAllocatedFromPool]
			return len(ingress(s)) == 0 && !ann, fmt.Sprintf("%v %v", ingress(s), s.Annotations)
		})
		create(t, c, lbService(ns, "after-retype", withSpecIP(ip[0])))
		waitIPs(t, c, ns, "after-retype", ip...)
	})
	checkNoDuplicates(t, c)
}

// ingressOf waits for the Service to get at least one IP and returns its ingress.
func ingressOf(t *testing.T, c client.Client, ns, name string) []string {
	t.Helper()
	var got []string
	eventually(t, ns+"/"+name+" to get an IP", func() (bool, string) {
		got = ingress(getSvc(t, c, ns, name))
		return len(got) > 0, "no IP"
	})
	return got
}

// TestExhaustionRecovery fills a pool, checks the next Service fails with PoolExhausted,
// and that deleting a Service hands its IP to the waiting one.
func TestExhaustionRecovery(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "exhaust"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("tiny", "203.0.113.0/31"))
	startController(t, env, app.Options{})
	create(t, c, lbService(ns, "s1"), lbService(ns, "s2"))
	waitIPs(t, c, ns, "s1", ingressOf(t, c, ns, "s1")...)
	waitIPs(t, c, ns, "s2", ingressOf(t, c, ns, "s2")...)
	create(t, c, lbService(ns, "s3"))
	waitEvent(t, c, ns, "s3", "AllocationFailed", "PoolExhausted")
	freed := ingress(getSvc(t, c, ns, "s1"))
	if err := c.Delete(context.Background(), getSvc(t, c, ns, "s1")); err != nil {
		t.Fatal(err)
	}
	waitIPs(t, c, ns, "s3", freed...)
	waitPoolStatus(t, c, "tiny", func(p *v1beta1.IPAddressPool) (bool, string) {
		return p.Status.IPv4Assigned == 2 && p.Status.IPv4Available == 0, fmt.Sprintf("%+v", p.Status)
	})
	checkNoDuplicates(t, c)
}

// TestPoolChanges shrinks a pool (only the uncovered IP moves, with an Event), then
// breaks the configuration across objects: the broken pool gets a condition and an Event,
// its last good version stays in force, and no IP moves.
func TestPoolChanges(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "shrink"
	namespace(t, c, ns, nil)
	create(t, c, ipPool("a", "203.0.113.0/29"), ipPool("c", "203.0.113.64/30"))
	startController(t, env, app.Options{})
	for i := range 4 {
		create(t, c, lbService(ns, fmt.Sprintf("s%d", i), withSpecIP(fmt.Sprintf("203.0.113.%d", i))))
		waitIPs(t, c, ns, fmt.Sprintf("s%d", i), fmt.Sprintf("203.0.113.%d", i))
	}
	// Unrequested Service in s2's place: make s2 ask for nothing, so that it can move.
	updateSvc(t, c, ns, "s2", withSpecIP(""))
	updatePool(t, c, "a", func(p *v1beta1.IPAddressPool) {
		p.Spec.Addresses = []string{"203.0.113.0/31", "203.0.113.3-203.0.113.5"}
	})
	waitIPs(t, c, ns, "s2", "203.0.113.4")
	waitEvent(t, c, ns, "s2", "IPReleased", "203.0.113.2")
	for _, i := range []int{0, 1, 3} {
		waitIPs(t, c, ns, fmt.Sprintf("s%d", i), fmt.Sprintf("203.0.113.%d", i))
	}

	// A new pool overlapping a live one is not put in force.
	create(t, c, ipPool("b", "203.0.113.4-203.0.113.20"))
	waitPoolStatus(t, c, "b", func(p *v1beta1.IPAddressPool) (bool, string) {
		cond := validCond(p)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == v1beta1.ReasonInvalid, fmt.Sprintf("%+v", cond)
	})
	waitEvent(t, c, "default", "b", "InvalidConfiguration", "overlaps")
	// Pool a changed to overlap pool c: a's last good version stays in force.
	updatePool(t, c, "a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"203.0.113.64/29"} })
	waitPoolStatus(t, c, "a", func(p *v1beta1.IPAddressPool) (bool, string) {
		cond := validCond(p)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == v1beta1.ReasonLastGoodInForce, fmt.Sprintf("%+v", cond)
	})
	create(t, c, lbService(ns, "new", withAnnotation(v1beta1.AnnotationAddressPool, "a")))
	waitIPs(t, c, ns, "new", "203.0.113.5")
	for i, ip := range []string{"203.0.113.0", "203.0.113.1", "203.0.113.4", "203.0.113.3"} {
		waitIPs(t, c, ns, fmt.Sprintf("s%d", i), ip)
	}
	// Fixing a puts its new spec in force and b no longer overlaps it, so b is valid too:
	// s2 is covered by b now and keeps its IP (re-homed to b); "new" asked for pool a, so
	// it moves into a's new range; the IPs s0, s1 and s3 asked for are in no pool any
	// more, so they are released.
	updatePool(t, c, "a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"203.0.113.128/28"} })
	waitPoolStatus(t, c, "b", func(p *v1beta1.IPAddressPool) (bool, string) {
		cond := validCond(p)
		return cond != nil && cond.Status == metav1.ConditionTrue && p.Status.IPv4Assigned == 1, fmt.Sprintf("%+v %+v", cond, p.Status)
	})
	s2 := waitIPs(t, c, ns, "s2", "203.0.113.4")
	eventually(t, "s2 re-homed to pool b", func() (bool, string) {
		s2 = getSvc(t, c, ns, "s2")
		return s2.Annotations[v1beta1.AnnotationAllocatedFromPool] == "b", fmt.Sprint(s2.Annotations)
	})
	waitIPs(t, c, ns, "new", "203.0.113.128")
	waitIPs(t, c, ns, "s0")
	waitEvent(t, c, ns, "s0", "AllocationFailed", "IPNotInPool")
	checkNoDuplicates(t, c)
}
