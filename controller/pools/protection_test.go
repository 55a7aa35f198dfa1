package pools

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/ipam"
	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// stubAllocator answers Holders as told and records SetPools' terminating pools.
type stubAllocator struct {
	mu          sync.Mutex
	holders     []types.NamespacedName
	restored    bool
	terminating []string
}

func (s *stubAllocator) SetPools(_ []*model.Pool, terminating []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminating = terminating
	return nil
}
func (s *stubAllocator) Stats() map[string]ipam.PoolStats { return nil }
func (s *stubAllocator) Holders(string) ([]types.NamespacedName, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holders, s.restored
}
func (s *stubAllocator) set(restored bool, holders ...types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restored, s.holders = restored, holders
}

type eventLog struct {
	mu    sync.Mutex
	notes []string
}

func (l *eventLog) Eventf(_, _ runtime.Object, _, reason, _, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notes = append(l.notes, reason+": "+fmt.Sprintf(note, args...))
}

// TestProtect drives the status writer step by step through the real API server: a new
// pool gets the finalizer; deleted, it is marked terminating for the allocator; while the
// held addresses are not restored its finalizer stays whatever the holders; with holders
// it gets DeletionBlocked and one Event per distinct set of holders; without, it goes.
func TestProtect(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	c := env.Client
	alloc := &stubAllocator{}
	events := &eventLog{}
	r := New(Options{Client: c, Recorder: events, Log: logr.Discard(), Metrics: NewMetrics(prometheus.NewRegistry()), Allocator: alloc})
	step := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, singleton); err != nil {
			t.Fatal(err)
		}
		if err := r.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	get := func() (*v1beta1.IPAddressPool, error) {
		var p v1beta1.IPAddressPool
		err := c.Get(ctx, types.NamespacedName{Name: "p"}, &p)
		return &p, err
	}
	if err := c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/29"}}}); err != nil {
		t.Fatal(err)
	}
	step()
	p, err := get()
	if err != nil || !slices.Equal(p.Finalizers, []string{v1beta1.FinalizerPoolProtection}) {
		t.Fatalf("finalizers %v (%v), want the pool protection", p.Finalizers, err)
	}
	if err := c.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}

	// Not restored yet: nothing is known about holders, the finalizer stays.
	alloc.set(false)
	step()
	if p, err = get(); err != nil || p.DeletionTimestamp == nil || len(p.Finalizers) != 1 {
		t.Fatalf("before the restore: %v, finalizers %v; want the pool Terminating with its finalizer", err, p.Finalizers)
	}
	if !slices.Equal(alloc.terminating, []string{"p"}) {
		t.Errorf("terminating pools given to the allocator: %v, want [p]", alloc.terminating)
	}

	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}
	alloc.set(true, a, b)
	step()
	step() // the same holders: no second Event
	if p, err = get(); err != nil {
		t.Fatal(err)
	}
	cond := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionDeletionBlocked)
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != v1beta1.ReasonInUse || !strings.HasSuffix(cond.Message, "2 Services hold: ns/a, ns/b") {
		t.Fatalf("DeletionBlocked %+v", cond)
	}
	alloc.set(true, a)
	step()
	want := []string{
		"DeletionBlocked: deletion waits until no Service holds an address of the pool; 2 Services hold: ns/a, ns/b",
		"DeletionBlocked: deletion waits until no Service holds an address of the pool; 1 Service holds: ns/a",
	}
	if !slices.Equal(events.notes, want) {
		t.Errorf("events %q, want %q", events.notes, want)
	}

	alloc.set(true)
	step()
	if _, err := get(); !apierrors.IsNotFound(err) {
		t.Fatalf("after the last holder: %v, want the pool gone", err)
	}
}

// TestCapList: long holder lists are capped.
func TestCapList(t *testing.T) {
	var items []string
	for i := range 12 {
		items = append(items, fmt.Sprint(i))
	}
	if got := capList(items, 10); got != "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more" {
		t.Errorf("capList = %q", got)
	}
	if got := capList(items[:2], 10); got != "0, 1" {
		t.Errorf("capList = %q", got)
	}
}
