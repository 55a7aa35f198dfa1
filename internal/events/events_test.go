package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/internal/restwrite"
	"github.com/loadstone-lb/loadstone/internal/testenv"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

func count(r *Recorder, result string) float64 {
	return testutil.ToFloat64(r.m.results.WithLabelValues(result))
}

// listEvents lists the Events in ns that the tests' recorders wrote (reporting controller
// "loadstone-test"). The API server writes Events of its own in default (the repair of
// the kubernetes Service's ClusterIP), which a plain count picked up now and then.
func listEvents(t *testing.T, c client.Client, ns string) []eventsv1.Event {
	t.Helper()
	var l eventsv1.EventList
	if err := c.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range l.Items {
		if e.ReportingController == "loadstone-test" {
			out = append(out, e)
		}
	}
	return out
}

func TestRecorderAgainstAPIServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	pool := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "v4"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}}
	for _, o := range []client.Object{svc, pool} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	w, err := restwrite.New(env.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Writer: w, Scheme: env.Scheme, Controller: "loadstone-test", Instance: "i1", Registerer: prometheus.NewRegistry()})
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()

	r.Eventf(svc, pool, corev1.EventTypeNormal, "IPAllocated", "Allocate", "assigned %s from pool %s", "203.0.113.1", "v4")
	r.Eventf(svc, pool, corev1.EventTypeNormal, "IPAllocated", "Allocate", "assigned %s from pool %s", "203.0.113.1", "v4") // repeat
	r.Eventf(pool, nil, corev1.EventTypeWarning, "InvalidConfiguration", "Validate", "%s", "bad")
	r.Eventf(svc, nil, "Odd", "X", "Y", "z")

	testwait.For(t, "two Events written", 20*time.Second, 20*time.Millisecond, func() (bool, string) {
		return count(r, "written") == 2, fmt.Sprintf("written=%v errors=%v", count(r, "written"), count(r, "error"))
	})
	if count(r, "repeat") != 1 || count(r, "invalid") != 1 || count(r, "error") != 0 {
		t.Errorf("repeat=%v invalid=%v error=%v", count(r, "repeat"), count(r, "invalid"), count(r, "error"))
	}
	evs := listEvents(t, env.Client, "default")
	if len(evs) != 2 {
		t.Fatalf("want 2 Events in default (one about the Service, one about the cluster-scoped pool), got %d: %+v", len(evs), evs)
	}
	byReason := map[string]eventsv1.Event{}
	for _, e := range evs {
		byReason[e.Reason] = e
	}
	a := byReason["IPAllocated"]
	if a.Regarding.Kind != "Service" || a.Regarding.Name != "web" || a.Regarding.UID != svc.UID ||
		a.Related == nil || a.Related.Kind != "IPAddressPool" || a.Note != "assigned 203.0.113.1 from pool v4" ||
		a.Type != corev1.EventTypeNormal || a.Action != "Allocate" || a.ReportingController != "loadstone-test" || a.ReportingInstance != "i1" {
		t.Errorf("IPAllocated Event: %+v", a)
	}
	warn := byReason["InvalidConfiguration"]
	if warn.Regarding.Kind != "IPAddressPool" || warn.Regarding.APIVersion != v1beta1.GroupVersion.String() || warn.Type != corev1.EventTypeWarning {
		t.Errorf("InvalidConfiguration Event: %+v", warn)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start: %v", err)
	}
}

func svcIn(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: k8stypes.UID("u-" + ns + "-" + name)}}
}

// Bounded memory: a full queue drops (and counts) what does not fit. A dropped Event is
// not remembered, so its repeat is not suppressed; an Event waiting in the queue
// suppresses its repeats.
func TestRecorderBounds(t *testing.T) {
	r := New(Options{Scheme: clientgoscheme.Scheme, Controller: "c", QueueSize: 2, Registerer: prometheus.NewRegistry()})
	for _, n := range []string{"a", "b", "c"} {
		r.Eventf(svcIn("default", n), nil, corev1.EventTypeNormal, "R", "A", "n")
	}
	if len(r.queue) != 2 || count(r, "dropped") != 1 {
		t.Fatalf("queued %d, dropped %v; want 2 and 1", len(r.queue), count(r, "dropped"))
	}
	// "c" was dropped: it happens again and is tried again (dropped again: the queue is
	// still full), not suppressed as a repeat.
	r.Eventf(svcIn("default", "c"), nil, corev1.EventTypeNormal, "R", "A", "n")
	if count(r, "dropped") != 2 || count(r, "repeat") != 0 {
		t.Errorf("dropped %v, repeats %v after c again; want 2 and 0", count(r, "dropped"), count(r, "repeat"))
	}
	// "a" waits in the queue: the queued one says the same.
	r.Eventf(svcIn("default", "a"), nil, corev1.EventTypeNormal, "R", "A", "n")
	if count(r, "repeat") != 1 || count(r, "dropped") != 2 {
		t.Errorf("repeats %v, dropped %v after a again; want 1 and 2", count(r, "repeat"), count(r, "dropped"))
	}
	// Another note is another Event.
	r.Eventf(svcIn("default", "a"), nil, corev1.EventTypeNormal, "R", "A", "m")
	if count(r, "repeat") != 1 || count(r, "dropped") != 3 {
		t.Errorf("repeats %v, dropped %v after a with another note; want 1 and 3", count(r, "repeat"), count(r, "dropped"))
	}
	// A long note is cut to the API's limit.
	long := make([]byte, 3000)
	for i := range long {
		long[i] = 'x'
	}
	ev, err := r.build(time.Now(), svcIn("default", "d"), nil, corev1.EventTypeNormal, "R", "A", string(long))
	if err != nil || len(ev.Note) != maxNote {
		t.Errorf("note of %d bytes, err %v", len(ev.Note), err)
	}
}

// TestRecorderRemembersOnlyWritten: only an Event the API server accepted suppresses its
// repeats. One dropped from the full queue, or refused by the API server (its namespace
// does not exist yet), is written when it happens again; the repeat cache forgets its
// least recently used key, which then counts as new.
func TestRecorderRemembersOnlyWritten(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := restwrite.New(env.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Writer: w, Scheme: env.Scheme, Controller: "loadstone-test", Instance: "i1",
		QueueSize: 1, RepeatCache: 3, Registerer: prometheus.NewRegistry()})
	emit := func(o *corev1.Service) { r.Eventf(o, nil, corev1.EventTypeNormal, "R", "A", "note") }
	state := func() string {
		return fmt.Sprintf("written=%v error=%v dropped=%v repeat=%v",
			count(r, "written"), count(r, "error"), count(r, "dropped"), count(r, "repeat"))
	}
	want := func(what string, written, errors, dropped, repeat float64) {
		t.Helper()
		testwait.For(t, what, 20*time.Second, 10*time.Millisecond, func() (bool, string) {
			return count(r, "written") == written && count(r, "error") == errors, state()
		})
		if count(r, "dropped") != dropped || count(r, "repeat") != repeat {
			t.Fatalf("%s: %s; want dropped=%v repeat=%v", what, state(), dropped, repeat)
		}
	}
	a, b, c := svcIn("default", "a"), svcIn("default", "b"), svcIn("default", "c")
	later := svcIn("later", "x")

	// Before the writers run, the one-slot queue takes a and drops b.
	emit(a)
	emit(b)
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	want("a written, b dropped", 1, 0, 1, 0)
	emit(b)
	want("b written when it recurs", 2, 0, 1, 0)
	emit(a)
	emit(b)
	want("repeats of written a and b suppressed", 2, 0, 1, 2)

	emit(later)
	want("the Event in a missing namespace refused", 2, 1, 1, 2)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "later"}}); err != nil {
		t.Fatal(err)
	}
	emit(later)
	want("the refused Event written when it recurs", 3, 1, 1, 2)
	if evs := listEvents(t, env.Client, "later"); len(evs) != 1 || evs[0].Regarding.Name != "x" {
		t.Fatalf("Events in namespace later: %+v", evs)
	}
	emit(later)
	want("the written Event's repeat suppressed", 3, 1, 1, 3)

	// The cache holds later, b, a (most recent first); c pushes a out.
	emit(c)
	want("c written", 4, 1, 1, 3)
	emit(a)
	want("a, forgotten, written again", 5, 1, 1, 3)
	emit(c)
	want("c still remembered", 5, 1, 1, 4)
	if evs := listEvents(t, env.Client, "default"); len(evs) != 4 {
		t.Fatalf("want 4 Events in default (a twice, b, c), got %d: %+v", len(evs), evs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start: %v", err)
	}
}
