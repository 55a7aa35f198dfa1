package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
)

// waitCondition waits until the Service's loadstone.io/IPAllocated condition has status,
// reason and a message containing substr, for the Service's current generation.
func waitCondition(t *testing.T, c client.Client, ns, name string, status metav1.ConditionStatus, reason, substr string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	eventually(t, fmt.Sprintf("%s/%s IPAllocated=%s %s %q", ns, name, status, reason, substr), func() (bool, string) {
		s = getSvc(t, c, ns, name)
		cond := meta.FindStatusCondition(s.Status.Conditions, v1beta1.ConditionIPAllocated)
		if cond == nil {
			return false, "no condition"
		}
		ok := cond.Status == status && cond.Reason == reason && strings.Contains(cond.Message, substr) && cond.ObservedGeneration == s.Generation
		return ok, fmt.Sprintf("%+v", *cond)
	})
	return s
}

// TestIPAllocatedCondition, against the real API server: the controller writes
// loadstone.io/IPAllocated on each Service with every reason (Allocated, PoolExhausted,
// IPInUse naming the holder, NoMatchingPool, InvalidRequest for a special-purpose IP, an
// unparsable annotation and a family mismatch), leaves other controllers' conditions
// alone, follows changes (exhaustion that recovers, a request that cannot be met and is
// withdrawn), removes it when the Service stops being a LoadBalancer, and counts the
// unsatisfied Services by reason in loadstone_controller_services_unsatisfied.
func TestIPAllocatedCondition(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ctx := context.Background()
	ns := "cond"
	namespace(t, c, ns, nil)
	tiny := ipPool("tiny", "198.51.100.0/32")
	tiny.Spec.AutoAssign = ptr.To(false)
	create(t, c, ipPool("main", "203.0.113.0/29"), tiny)
	reg := prometheus.NewRegistry()
	startController(t, env, app.Options{Registerer: reg})
	unsatisfied := func(want map[string]float64) {
		t.Helper()
		eventually(t, fmt.Sprintf("services_unsatisfied %v", want), func() (bool, string) {
			got := map[string]float64{}
			ok := true
			for _, r := range []string{v1beta1.ReasonPoolExhausted, v1beta1.ReasonIPInUse, v1beta1.ReasonNoMatchingPool, v1beta1.ReasonInvalidRequest} {
				v, exported := metricValue(t, reg, "loadstone_controller_services_unsatisfied", "reason", r)
				got[r] = v
				ok = ok && exported && v == want[r]
			}
			return ok, fmt.Sprintf("%v", got)
		})
	}

	create(t, c, lbService(ns, "ok"), lbService(ns, "tiny-1", withAnnotation(v1beta1.AnnotationAddressPool, "tiny")))
	waitCondition(t, c, ns, "ok", metav1.ConditionTrue, v1beta1.ReasonAllocated, "assigned 203.0.113.0 from pool main")
	waitCondition(t, c, ns, "tiny-1", metav1.ConditionTrue, v1beta1.ReasonAllocated, "assigned 198.51.100.0 from pool tiny")

	create(t, c,
		lbService(ns, "tiny-2", withAnnotation(v1beta1.AnnotationAddressPool, "tiny")),
		lbService(ns, "taker", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "203.0.113.0")),
		lbService(ns, "no-pool", withAnnotation(v1beta1.AnnotationAddressPool, "nope")),
		lbService(ns, "outside", withSpecIP("192.0.2.9")),
		lbService(ns, "loopback", withSpecIP("127.0.0.1")),
		lbService(ns, "garbage", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "not-an-ip")),
		lbService(ns, "wrong-family", withAnnotation(v1beta1.AnnotationLoadBalancerIPs, "2001:db8:100::5")))
	waitCondition(t, c, ns, "tiny-2", metav1.ConditionFalse, v1beta1.ReasonPoolExhausted, "no free address in the pools the Service may use ([tiny])")
	waitCondition(t, c, ns, "taker", metav1.ConditionFalse, v1beta1.ReasonIPInUse, "203.0.113.0 is in use by cond/ok")
	waitCondition(t, c, ns, "no-pool", metav1.ConditionFalse, v1beta1.ReasonNoMatchingPool, `PoolNotFound: pool "nope" does not exist`)
	waitCondition(t, c, ns, "outside", metav1.ConditionFalse, v1beta1.ReasonNoMatchingPool, "192.0.2.9 is in no pool")
	waitCondition(t, c, ns, "loopback", metav1.ConditionFalse, v1beta1.ReasonInvalidRequest, "127.0.0.1 is a special-purpose address (loopback)")
	waitCondition(t, c, ns, "garbage", metav1.ConditionFalse, v1beta1.ReasonInvalidRequest, `"not-an-ip" is not an IP address`)
	waitCondition(t, c, ns, "wrong-family", metav1.ConditionFalse, v1beta1.ReasonInvalidRequest, "2001:db8:100::5 is IPv6")
	unsatisfied(map[string]float64{v1beta1.ReasonPoolExhausted: 1, v1beta1.ReasonIPInUse: 1, v1beta1.ReasonNoMatchingPool: 2, v1beta1.ReasonInvalidRequest: 3})

	// Another controller's condition on "ok" survives our writes.
	foreign := metav1.Condition{Type: "example.com/Checked", Status: metav1.ConditionTrue, Reason: "ByHand", Message: "someone else's", LastTransitionTime: metav1.Now()}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []metav1.Condition{foreign}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Status().Patch(ctx, getSvc(t, c, ns, "ok"), client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	hasForeign := func(s *corev1.Service) {
		t.Helper()
		if meta.FindStatusCondition(s.Status.Conditions, foreign.Type) == nil {
			t.Errorf("%s/%s lost the foreign condition: %+v", s.Namespace, s.Name, s.Status.Conditions)
		}
	}
	// A request that cannot be met: False, keeping the address; withdrawn: True again.
	updateSvc(t, c, ns, "ok", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "198.51.100.0" })
	hasForeign(waitCondition(t, c, ns, "ok", metav1.ConditionFalse, v1beta1.ReasonIPInUse, "in use by cond/tiny-1 (keeping 203.0.113.0)"))
	unsatisfied(map[string]float64{v1beta1.ReasonPoolExhausted: 1, v1beta1.ReasonIPInUse: 2, v1beta1.ReasonNoMatchingPool: 2, v1beta1.ReasonInvalidRequest: 3})
	updateSvc(t, c, ns, "ok", func(s *corev1.Service) { delete(s.Annotations, v1beta1.AnnotationLoadBalancerIPs) })
	hasForeign(waitCondition(t, c, ns, "ok", metav1.ConditionTrue, v1beta1.ReasonAllocated, "assigned 203.0.113.0"))

	// Exhaustion recovers: tiny-1 goes, tiny-2 gets the address and turns True.
	if err := c.Delete(ctx, getSvc(t, c, ns, "tiny-1")); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, ns, "tiny-2", metav1.ConditionTrue, v1beta1.ReasonAllocated, "assigned 198.51.100.0 from pool tiny")
	// A fixed request turns True; a Service that stops being a LoadBalancer loses the
	// condition (and leaves the gauge).
	updateSvc(t, c, ns, "garbage", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.5" })
	waitCondition(t, c, ns, "garbage", metav1.ConditionTrue, v1beta1.ReasonAllocated, "assigned 203.0.113.5")
	updateSvc(t, c, ns, "loopback", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeClusterIP
		s.Spec.AllocateLoadBalancerNodePorts = nil
		s.Spec.LoadBalancerIP = "" //nolint:staticcheck // deliberately tested
	})
	eventually(t, "the ClusterIP Service to lose the condition", func() (bool, string) {
		s := getSvc(t, c, ns, "loopback")
		return !strings.Contains(fmt.Sprint(s.Status.Conditions), v1beta1.ConditionIPAllocated), fmt.Sprintf("%+v", s.Status.Conditions)
	})
	unsatisfied(map[string]float64{v1beta1.ReasonIPInUse: 1, v1beta1.ReasonNoMatchingPool: 2, v1beta1.ReasonInvalidRequest: 1})
}
