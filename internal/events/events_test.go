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

func listEvents(t *testing.T, c client.Client, ns string) []eventsv1.Event {
	t.Helper()
	var l eventsv1.EventList
	if err := c.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return l.Items
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

// Bounded memory: a full queue drops (and counts) what does not fit; the repeat cache
// forgets its oldest entry, so that Event counts as new again.
func TestRecorderBounds(t *testing.T) {
	svc := func(name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: k8stypes.UID("u-" + name)}}
	}
	r := New(Options{Scheme: clientgoscheme.Scheme, Controller: "c", QueueSize: 2, RepeatCache: 2, Registerer: prometheus.NewRegistry()})
	for _, n := range []string{"a", "b", "c"} {
		r.Eventf(svc(n), nil, corev1.EventTypeNormal, "R", "A", "n")
	}
	if len(r.queue) != 2 || count(r, "dropped") != 1 {
		t.Errorf("queued %d, dropped %v; want 2 and 1", len(r.queue), count(r, "dropped"))
	}
	<-r.queue
	<-r.queue
	// "a" fell out of the 2-entry repeat cache when "c" came; "c" is still in it.
	r.Eventf(svc("a"), nil, corev1.EventTypeNormal, "R", "A", "n")
	r.Eventf(svc("c"), nil, corev1.EventTypeNormal, "R", "A", "n")
	if len(r.queue) != 1 || count(r, "repeat") != 1 {
		t.Errorf("queued %d, repeats %v; want 1 and 1", len(r.queue), count(r, "repeat"))
	}
	// A long note is cut to the API's limit.
	long := make([]byte, 3000)
	for i := range long {
		long[i] = 'x'
	}
	ev, err := r.build(time.Now(), svc("d"), nil, corev1.EventTypeNormal, "R", "A", string(long))
	if err != nil || len(ev.Note) != maxNote {
		t.Errorf("note of %d bytes, err %v", len(ev.Note), err)
	}
}
