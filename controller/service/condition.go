package service

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
)

// unsatisfiedReasons are the reasons of a False IPAllocated condition (the label values
// of loadstone_controller_services_unsatisfied).
var unsatisfiedReasons = []string{v1beta1.ReasonPoolExhausted, v1beta1.ReasonIPInUse,
	v1beta1.ReasonNoMatchingPool, v1beta1.ReasonInvalidRequest}

// ConditionReason maps an allocation failure to the reason of the Service's False
// IPAllocated condition.
func ConditionReason(r ipam.Reason) string {
	switch r {
	case ipam.ReasonPoolExhausted:
		return v1beta1.ReasonPoolExhausted
	case ipam.ReasonIPInUse:
		return v1beta1.ReasonIPInUse
	case ipam.ReasonInvalidRequest, ipam.ReasonConflictingRequests:
		return v1beta1.ReasonInvalidRequest
	}
	// IPNotInPool, FamilyNotOffered, PoolNotFound, PoolNotAllowed, NoPool, PoolTerminating.
	return v1beta1.ReasonNoMatchingPool
}

// allocatedCondition is the IPAllocated condition for a reconcile that left the Service
// with al and failed with err (nil: the request is met). The message of a failure is the
// allocator's (with its finer reason) and says what the Service keeps.
func allocatedCondition(svc *corev1.Service, al ipam.Allocation, err error) metav1.Condition {
	c := metav1.Condition{Type: v1beta1.ConditionIPAllocated, ObservedGeneration: svc.Generation}
	if err == nil {
		c.Status, c.Reason = metav1.ConditionTrue, v1beta1.ReasonAllocated
		c.Message = fmt.Sprintf("assigned %s from pool %s", joinIPs(al.IPs), poolAnnotation(al))
		return c
	}
	c.Status, c.Reason, c.Message = metav1.ConditionFalse, ConditionReason(ipam.ReasonOf(err)), err.Error()
	if len(al.IPs) > 0 {
		c.Message += fmt.Sprintf(" (keeping %s)", joinIPs(al.IPs))
	}
	return c
}

// conditionFor returns the condition to write on svc: want, with the transition time of
// the Service's current one if the status did not change; and whether it differs from
// the current one (only then is it written).
func conditionFor(svc *corev1.Service, want metav1.Condition, now metav1.Time) (metav1.Condition, bool) {
	cur := meta.FindStatusCondition(svc.Status.Conditions, v1beta1.ConditionIPAllocated)
	want.LastTransitionTime = now
	if cur == nil {
		return want, true
	}
	if cur.Status == want.Status {
		want.LastTransitionTime = cur.LastTransitionTime
	}
	return want, cur.Status != want.Status || cur.Reason != want.Reason || cur.Message != want.Message ||
		cur.ObservedGeneration != want.ObservedGeneration
}

// hasCondition reports whether svc carries the IPAllocated condition.
func hasCondition(svc *corev1.Service) bool {
	return meta.FindStatusCondition(svc.Status.Conditions, v1beta1.ConditionIPAllocated) != nil
}

// setUnsatisfied records the Service's False-condition reason ("" when it is satisfied or
// no longer ours) and moves the gauge. The caller holds r.mu.
func (r *Reconciler) setUnsatisfiedLocked(key types.NamespacedName, reason string) {
	old, had := r.unsat[key]
	if had && old == reason {
		return
	}
	if had {
		r.opts.Metrics.unsatisfied.WithLabelValues(old).Dec()
		delete(r.unsat, key)
	}
	if reason != "" {
		r.unsat[key] = reason
		r.opts.Metrics.unsatisfied.WithLabelValues(reason).Inc()
	}
}
