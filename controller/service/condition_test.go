package service

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
)

func TestConditionReason(t *testing.T) {
	want := map[ipam.Reason]string{
		ipam.ReasonPoolExhausted:       v1beta1.ReasonPoolExhausted,
		ipam.ReasonIPInUse:             v1beta1.ReasonIPInUse,
		ipam.ReasonIPNotInPool:         v1beta1.ReasonNoMatchingPool,
		ipam.ReasonFamilyNotOffered:    v1beta1.ReasonNoMatchingPool,
		ipam.ReasonConflictingRequests: v1beta1.ReasonInvalidRequest,
		ipam.ReasonInvalidRequest:      v1beta1.ReasonInvalidRequest,
		ipam.ReasonPoolNotFound:        v1beta1.ReasonNoMatchingPool,
		ipam.ReasonPoolNotAllowed:      v1beta1.ReasonNoMatchingPool,
		ipam.ReasonNoPool:              v1beta1.ReasonNoMatchingPool,
		ipam.ReasonPoolTerminating:     v1beta1.ReasonNoMatchingPool,
	}
	for _, r := range ipam.AllReasons() {
		w, ok := want[r]
		if !ok {
			t.Errorf("reason %s is not mapped by this test: decide its condition reason", r)
			continue
		}
		if got := ConditionReason(r); got != w {
			t.Errorf("ConditionReason(%s) = %s, want %s", r, got, w)
		}
	}
}

// TestConditionFor: the condition is rewritten only when status, reason, message or
// generation change, and keeps its transition time while its status does not change.
func TestConditionFor(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	al := ipam.Allocation{IPs: []netip.Addr{netip.MustParseAddr("203.0.113.1")}, Pools: []string{"main"}}
	failed := &ipam.Error{Reason: ipam.ReasonPoolExhausted, Message: "no free address"}
	svc := func(conds ...metav1.Condition) *corev1.Service {
		s := &corev1.Service{}
		s.Generation = 2
		s.Status.Conditions = conds
		return s
	}
	ok := allocatedCondition(svc(), al, nil)
	if ok.Status != metav1.ConditionTrue || ok.Reason != v1beta1.ReasonAllocated || ok.Message != "assigned 203.0.113.1 from pool main" || ok.ObservedGeneration != 2 {
		t.Fatalf("allocated: %+v", ok)
	}
	bad := allocatedCondition(svc(), al, failed)
	if bad.Status != metav1.ConditionFalse || bad.Reason != v1beta1.ReasonPoolExhausted || bad.Message != "PoolExhausted: no free address (keeping 203.0.113.1)" {
		t.Fatalf("failed: %+v", bad)
	}
	if c := allocatedCondition(svc(), ipam.Allocation{}, errors.New("plain")); c.Reason != v1beta1.ReasonNoMatchingPool {
		t.Fatalf("an error without a reason: %+v", c)
	}
	written := ok
	written.LastTransitionTime = t0
	foreign := metav1.Condition{Type: "example.com/X", Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: t0}

	tests := []struct {
		name       string
		have       *corev1.Service
		want       metav1.Condition
		changed    bool
		transition metav1.Time
	}{
		{"none yet", svc(foreign), ok, true, now},
		{"the same", svc(foreign, written), ok, false, t0},
		{"new message, same status: keeps the transition time", svc(written), func() metav1.Condition { c := ok; c.Message = "other"; return c }(), true, t0},
		{"new generation", svc(written), func() metav1.Condition { c := ok; c.ObservedGeneration = 3; return c }(), true, t0},
		{"status flips", svc(written), bad, true, now},
	}
	for _, tc := range tests {
		got, changed := conditionFor(tc.have, tc.want, now)
		if changed != tc.changed || !got.LastTransitionTime.Equal(&tc.transition) {
			t.Errorf("%s: changed %v, transition %v; want %v, %v", tc.name, changed, got.LastTransitionTime, tc.changed, tc.transition)
		}
	}
}
