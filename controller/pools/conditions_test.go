package pools

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
	"github.com/loadstone-lb/loadstone/internal/testenv"
)

var (
	t0 = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 = metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
)

// TestDesiredConditions: the obsolete Programmed=False NotImplemented goes, whatever else
// the object carries stays, and Valid is set (keeping its transition time when its status
// does not change).
func TestDesiredConditions(t *testing.T) {
	validTrue := metav1.Condition{Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonValid, Message: "in force", ObservedGeneration: 3, LastTransitionTime: t1}
	validFalse := metav1.Condition{Type: v1beta1.ConditionValid, Status: metav1.ConditionFalse, Reason: v1beta1.ReasonInvalid, Message: "broken", ObservedGeneration: 2, LastTransitionTime: t0}
	oldValidTrue := metav1.Condition{Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonValid,
		Message: "valid; accepted but not acted on: BGP is not implemented in this version", ObservedGeneration: 2, LastTransitionTime: t0}
	notImplemented := metav1.Condition{Type: ConditionProgrammed, Status: metav1.ConditionFalse, Reason: ReasonNotImplemented,
		Message: "accepted but not acted on: BGP is not implemented in this version", ObservedGeneration: 2, LastTransitionTime: t0}
	otherProgrammed := metav1.Condition{Type: ConditionProgrammed, Status: metav1.ConditionTrue, Reason: "Programmed", LastTransitionTime: t0}
	foreign := metav1.Condition{Type: "Reviewed", Status: metav1.ConditionTrue, Reason: "ByHand", LastTransitionTime: t0}
	withTime := func(c metav1.Condition, ts metav1.Time) metav1.Condition { c.LastTransitionTime = ts; return c }
	tests := []struct {
		name      string
		have, set []metav1.Condition
		want      []metav1.Condition
	}{
		{"new object", nil, []metav1.Condition{validTrue}, []metav1.Condition{validTrue}},
		{"upgraded valid BGP object: Programmed goes, Valid keeps its transition time",
			[]metav1.Condition{oldValidTrue, notImplemented}, []metav1.Condition{validTrue}, []metav1.Condition{withTime(validTrue, t0)}},
		{"upgraded broken BGP object: Programmed goes, Valid turns False",
			[]metav1.Condition{notImplemented, oldValidTrue}, []metav1.Condition{validFalse}, []metav1.Condition{validFalse}},
		{"Programmed before anything is judged goes too", []metav1.Condition{notImplemented}, nil, []metav1.Condition{}},
		{"a Programmed condition with another reason is not ours: it stays",
			[]metav1.Condition{otherProgrammed, oldValidTrue}, []metav1.Condition{validTrue}, []metav1.Condition{otherProgrammed, withTime(validTrue, t0)}},
		{"other conditions stay", []metav1.Condition{foreign, notImplemented}, []metav1.Condition{validFalse}, []metav1.Condition{foreign, validFalse}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			have := append([]metav1.Condition(nil), tc.have...)
			got := desiredConditions(tc.have, tc.set)
			if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if d := cmp.Diff(have, tc.have); d != "" {
				t.Errorf("desiredConditions modified its input (-before +after):\n%s", d)
			}
		})
	}
}

type noAllocator struct{}

func (noAllocator) SetPools([]*model.Pool, []string) error { return nil }
func (noAllocator) Stats() map[string]ipam.PoolStats       { return nil }
func (noAllocator) Holders(string) ([]types.NamespacedName, bool) {
	return nil, false
}

type noRecorder struct{}

func (noRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {}

// TestObsoleteProgrammedIsDeleted: BGP objects that an earlier version marked
// Programmed=False NotImplemented lose that condition at the first status flush, through
// the real API server; a second flush writes nothing.
func TestObsoleteProgrammedIsDeleted(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	c := env.Client
	peer := &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "192.0.2.1"}}
	adv := &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "to-router"}, Spec: v1beta1.BGPAdvertisementSpec{Peers: []string{"router"}}}
	comm := &v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: "aliases"},
		Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "no-export", Value: "65535:65281"}}}}
	conds := map[client.Object]*[]metav1.Condition{peer: &peer.Status.Conditions, adv: &adv.Status.Conditions, comm: &comm.Status.Conditions}
	for o, list := range conds {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
		*list = []metav1.Condition{
			{Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonValid, Message: "valid; accepted but not acted on: BGP is not implemented in this version", LastTransitionTime: t0},
			{Type: ConditionProgrammed, Status: metav1.ConditionFalse, Reason: ReasonNotImplemented, Message: "accepted but not acted on: BGP is not implemented in this version", LastTransitionTime: t0},
		}
		if err := c.Status().Update(ctx, o); err != nil {
			t.Fatalf("status update %T: %v", o, err)
		}
	}

	reg := prometheus.NewRegistry()
	r := New(Options{Client: c, Recorder: noRecorder{}, Log: logr.Discard(), Metrics: NewMetrics(reg), Allocator: noAllocator{}})
	if _, err := r.Reconcile(ctx, singleton); err != nil {
		t.Fatal(err)
	}
	if err := r.flush(ctx); err != nil {
		t.Fatal(err)
	}
	for o, list := range conds {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		if p := meta.FindStatusCondition(*list, ConditionProgrammed); p != nil {
			t.Errorf("%T %s still has %+v", o, o.GetName(), *p)
		}
		v := meta.FindStatusCondition(*list, v1beta1.ConditionValid)
		if v == nil || v.Status != metav1.ConditionTrue || v.Message != "in force" || v.ObservedGeneration != o.GetGeneration() {
			t.Errorf("%T %s: Valid %+v, want True \"in force\" for generation %d", o, o.GetName(), v, o.GetGeneration())
		}
		if len(*list) != 1 {
			t.Errorf("%T %s: conditions %+v, want Valid alone", o, o.GetName(), *list)
		}
	}

	// Nothing changed: a second flush, even by a fresh reconciler that remembers no write,
	// writes nothing.
	reg2 := prometheus.NewRegistry()
	r2 := New(Options{Client: c, Recorder: noRecorder{}, Log: logr.Discard(), Metrics: NewMetrics(reg2), Allocator: noAllocator{}})
	if _, err := r2.Reconcile(ctx, singleton); err != nil {
		t.Fatal(err)
	}
	if err := r2.flush(ctx); err != nil {
		t.Fatal(err)
	}
	first, second := conditionWrites(t, reg), conditionWrites(t, reg2)
	if d := cmp.Diff(map[string]float64{model.KindBGPPeer: 1, model.KindBGPAdvertisement: 1, model.KindCommunity: 1}, first); d != "" {
		t.Errorf("first reconciler's condition writes per kind (-want +got):\n%s", d)
	}
	if len(second) != 0 {
		t.Errorf("second reconciler wrote conditions: %v, want none", second)
	}
}

// conditionWrites reads loadstone_controller_condition_writes_total per kind from reg.
func conditionWrites(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "loadstone_controller_condition_writes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
