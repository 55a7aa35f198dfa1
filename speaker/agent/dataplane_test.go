package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/dataplane/plan"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
)

var (
	dpIP  = netip.MustParseAddr("203.0.113.10") // mode pods
	dpIP2 = netip.MustParseAddr("203.0.113.11") // mode pods
	offIP = netip.MustParseAddr("203.0.113.77") // mode off
)

// decisionRecorder is an announcer that keeps the Decision it was given.
type decisionRecorder struct {
	got   Decision
	calls int
}

func (*decisionRecorder) Name() string { return "decisionRecorder" }
func (r *decisionRecorder) Apply(_ context.Context, d Decision) Report {
	r.got, r.calls = d, r.calls+1
	return Report{}
}

// cluster is three Services on n1: two in mode pods, one in mode off; port 80 → 8080.
func cluster() *observetest.Cluster {
	c := observetest.New().
		Service("default", "a", "n1", dpIP).Mode("default", "a", "pods").
		Service("default", "b", "n1", dpIP2).Mode("default", "b", "pods").
		Service("default", "off", "n1", offIP).Mode("default", "off", "off")
	for i := range c.Lists.Services {
		c.Lists.Services[i].Spec.Ports = []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}}
	}
	for i := range c.Lists.EndpointSlices {
		c.Lists.EndpointSlices[i].Ports = []discoveryv1.EndpointPort{{Name: ptr.To(""), Port: ptr.To[int32](8080)}}
	}
	return c
}

// The dataplane is applied first; layer 2 and BGP get the IPs it carries: a gated IP
// it does not carry leaves layer 2's desired set, mode-off IPs stay, and without a
// dataplane (or when it panics) no gated IP is announced.
func TestApplyGatesOnDataplane(t *testing.T) {
	snap := cluster().Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	desired := map[netip.Addr][]string{dpIP: {"eth0"}, dpIP2: {"eth0"}, offIP: {"eth0"}}
	for _, tc := range []struct {
		name      string
		dataplane Announcer
		want      []netip.Addr
		carried   map[netip.Addr]bool
	}{
		{name: "carries one", dataplane: &stubAnnouncer{name: "dataplane", rep: Report{Carried: map[netip.Addr]bool{dpIP: true}}},
			want: []netip.Addr{dpIP, offIP}, carried: map[netip.Addr]bool{dpIP: true}},
		{name: "carries both", dataplane: &stubAnnouncer{name: "dataplane", rep: Report{Carried: map[netip.Addr]bool{dpIP: true, dpIP2: true}}},
			want: []netip.Addr{dpIP, dpIP2, offIP}, carried: map[netip.Addr]bool{dpIP: true, dpIP2: true}},
		{name: "panics", dataplane: &stubAnnouncer{name: "dataplane", panic: true}, want: []netip.Addr{offIP}, carried: map[netip.Addr]bool{}},
		{name: "no dataplane", want: []netip.Addr{offIP}, carried: map[netip.Addr]bool{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &decisionRecorder{}
			a := &Agent{cfg: Config{Dataplane: tc.dataplane, Announcers: []Announcer{rec}}, log: slog.New(slog.DiscardHandler), m: newMetrics(prometheus.NewRegistry())}
			rep, l2 := a.apply(context.Background(), Decision{Snapshot: snap, L2: L2Decision{Desired: desired}})
			var got []netip.Addr
			for ip := range rec.got.L2.Desired {
				got = append(got, ip)
			}
			opts := []cmp.Option{cmpopts.EquateComparable(netip.Addr{}), cmpopts.SortSlices(netip.Addr.Less), cmpopts.EquateEmpty()}
			if diff := cmp.Diff(tc.want, got, opts...); diff != "" {
				t.Errorf("layer 2 desired (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(rec.got.L2, l2, opts...); diff != "" {
				t.Errorf("returned layer-2 decision differs from the one applied:\n%s", diff)
			}
			if diff := cmp.Diff(tc.carried, rec.got.Carried, opts...); diff != "" {
				t.Errorf("carried handed on (-want +got):\n%s", diff)
			}
			if n := testutil.ToFloat64(a.m.withheld); int(n) != 3-len(tc.want) {
				t.Errorf("withheld gauge %v, want %d", n, 3-len(tc.want))
			}
			if tc.dataplane != nil && rep.Carried == nil {
				t.Error("report has no Carried although a dataplane ran")
			}
		})
	}
}

// fakeBackend records what the Dataplane announcer asks of nft.Applier.
type fakeBackend struct {
	plans            []plan.Plan
	resyncs, removes int
	fail             error
}

func (f *fakeBackend) Apply(p plan.Plan) error { f.plans = append(f.plans, p); return f.fail }
func (f *fakeBackend) Resync()                 { f.resyncs++ }
func (f *fakeBackend) Remove() error           { f.removes++; return f.fail }

func TestDataplaneAnnouncer(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &fakeBackend{}
	d := &Dataplane{Backend: be, Clock: clk, ResyncPeriod: time.Minute}
	apply := func(c *observetest.Cluster) Report {
		t.Helper()
		snap := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
		return d.Apply(context.Background(), Decision{Snapshot: snap, Alive: snap.Alive})
	}
	opts := cmpopts.EquateComparable(netip.Addr{})

	// Nothing uses the dataplane: the table is removed once, and again at a resync.
	off := observetest.New().Service("default", "off", "n1", offIP).Mode("default", "off", "off")
	for range 2 {
		if r := apply(off); r.Carried == nil || len(r.Carried) != 0 || len(r.Errors) != 0 {
			t.Fatalf("all off: report %+v", r)
		}
	}
	if be.removes != 1 || len(be.plans) != 0 {
		t.Fatalf("all off: %d removes, %d applies; want 1, 0", be.removes, len(be.plans))
	}
	clk.Step(time.Minute)
	apply(off)
	if be.removes != 2 {
		t.Fatalf("all off after a resync period: %d removes, want 2", be.removes)
	}

	// Two Services in mode pods: both carried (b has no endpoint: served by a reject).
	c := cluster()
	c.Lists.EndpointSlices = c.Lists.EndpointSlices[:1] // a's only
	r := apply(c)
	if diff := cmp.Diff(map[netip.Addr]bool{dpIP: true, dpIP2: true}, r.Carried, opts); diff != "" || len(r.Errors) != 0 {
		t.Fatalf("carried (-want +got):\n%s\nerrors %v", diff, r.Errors)
	}
	p := be.plans[0]
	fa := plan.Frontend{Addr: dpIP, Protocol: plan.TCP, Port: 80}
	fb := plan.Frontend{Addr: dpIP2, Protocol: plan.TCP, Port: 80}
	if _, ok := p.Frontends[fa]; !ok || !p.Reject[fb] || len(p.Frontends) != 1 {
		t.Fatalf("plan frontends %v, rejects %v", p.Frontends, p.Reject)
	}
	if tbl := p.Tables[p.Frontends[fa].ID]; len(tbl) == 0 || tbl[0] != netip.MustParseAddrPort("198.18.1.5:8080") {
		t.Fatalf("table of a starts %v", tbl[:min(len(tbl), 3)])
	}

	// The next Apply passes the IDs back (same plan) and is not a resync.
	resyncs := be.resyncs
	apply(c)
	if diff := cmp.Diff(be.plans[0], be.plans[1], opts, cmpopts.EquateComparable(netip.Prefix{}, netip.AddrPort{})); diff != "" {
		t.Errorf("second plan differs (-first +second):\n%s", diff)
	}
	if be.resyncs != resyncs {
		t.Errorf("resync within the period")
	}
	clk.Step(time.Minute)
	apply(c)
	if be.resyncs != resyncs+1 {
		t.Errorf("no resync after a period: %d, want %d", be.resyncs, resyncs+1)
	}

	// A failed install: IPs carried before stay carried, a new one is not.
	be.fail = errors.New("netlink: no buffer space")
	c2 := cluster()
	c2.Service("default", "new", "n1", netip.MustParseAddr("203.0.113.12")).Mode("default", "new", "pods")
	c2.Lists.Services[3].Spec.Ports = []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}}
	r = apply(c2)
	if diff := cmp.Diff(map[netip.Addr]bool{dpIP: true, dpIP2: true}, r.Carried, opts); diff != "" || len(r.Errors) != 1 {
		t.Fatalf("after a failure: carried (-want +got):\n%s\nerrors %v", diff, r.Errors)
	}
	// Recovery carries all three; a Service that leaves the dataplane stops being carried.
	be.fail = nil
	if r = apply(c2); len(r.Carried) != 3 || len(r.Errors) != 0 {
		t.Fatalf("after recovery: %+v", r)
	}
	c2.Lists.Services[0].Annotations[v1beta1.AnnotationDataplaneMode] = "off"
	if r = apply(c2); r.Carried[dpIP] || len(r.Carried) != 2 {
		t.Fatalf("a back to kube-proxy: carried %v", r.Carried)
	}
}

// In degraded mode (no memberlist) Node readiness stands in for liveness, as for layer 2
// and BGP: endpoints on a Ready node are used, on a NotReady one dropped.
func TestDataplaneInputDegraded(t *testing.T) {
	c := cluster().Endpoints("default", "a", "n2", 1, 0).NotReady("n3").Endpoints("default", "a", "n3", 1, 0)
	snap := c.Snapshot("n1", observetest.View{Degraded: true})
	in := DataplaneInput(snap, nil, nil, 0, 0)
	if diff := cmp.Diff(map[string]bool{"n1": true, "n2": true, "n4": true}, in.Alive); diff != "" {
		t.Errorf("alive (-want +got):\n%s", diff)
	}
	if len(in.Services) != 2 || in.Services[0].Mode != plan.ModePods {
		t.Errorf("services %+v, want a and b in mode pods", in.Services)
	}
}

// A dual-stack Service whose families come from pools of different modes gets one plan
// Service per mode; two IPs of one family in different modes cannot share a table key, so
// the nodeport one is left out.
func TestDataplaneInputModesPerIP(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8:100::10")
	v4b := netip.MustParseAddr("198.51.100.200")
	c := observetest.New().Service("default", "web", "n1", dpIP, v6, v4b)
	c.Lists.Pools[0].Spec.DataplaneMode = v1beta1.DataplaneModePods
	c.Lists.Pools[1].Spec.DataplaneMode = v1beta1.DataplaneModeNodePort
	c.Lists.Pools = append(c.Lists.Pools, c.Lists.Pools[1])
	c.Lists.Pools[2].Name, c.Lists.Pools[2].Spec.Addresses = "v4b", []string{"198.51.100.200/32"}
	snap := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	var got []plan.Service
	for _, s := range DataplaneInput(snap, snap.Alive, nil, 0, 0).Services {
		got = append(got, plan.Service{Name: s.Name, Mode: s.Mode, LBIPs: s.LBIPs})
	}
	want := []plan.Service{
		{Name: snap.Keys[0], Mode: plan.ModePods, LBIPs: []netip.Addr{dpIP}},
		{Name: snap.Keys[0], Mode: plan.ModeNodePort, LBIPs: []netip.Addr{v6}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("plan services (-want +got):\n%s", diff)
	}
}

// A frontend two Services claim is a configuration problem, logged, not an error that
// makes the loop retry: the first Service (by key) keeps it and its IP is carried.
func TestDataplanePlanProblemIsNoFailure(t *testing.T) {
	c := cluster()
	c.Lists.Services[1].Status.LoadBalancer.Ingress[0].IP = dpIP.String() // b claims a's IP and port
	var logged strings.Builder
	d := &Dataplane{Backend: &fakeBackend{}, Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	snap := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	for range 2 {
		if r := d.Apply(context.Background(), Decision{Snapshot: snap, Alive: snap.Alive}); len(r.Errors) != 0 || !r.Carried[dpIP] {
			t.Fatalf("report %+v", r)
		}
	}
	if n := strings.Count(logged.String(), "already served"); n != 1 {
		t.Errorf("conflict logged %d times, want once:\n%s", n, logged.String())
	}
}

// flushBackend is a fakeBackend that also flushes conntrack entries (as nft.Applier).
type flushBackend struct {
	fakeBackend
	flushes  [][]netip.Addr
	flushErr error
}

func (f *flushBackend) FlushConntrack(addrs []netip.Addr) (uint, error) {
	f.flushes = append(f.flushes, slices.Clone(addrs))
	return uint(len(addrs)), f.flushErr
}

// The conntrack entries NATed to a dead node's endpoints are deleted once per death:
// not while it stays dead, not for endpoints of live nodes, again after it came back and
// died again, and again after a failed flush.
func TestDataplaneFlushesDeadNodesConntrack(t *testing.T) {
	be := &flushBackend{}
	d := &Dataplane{Backend: be}
	c := cluster().Endpoints("default", "a", "n2", 1, 0)
	dead := netip.MustParseAddr("198.18.2.1")
	apply := func(alive ...string) {
		t.Helper()
		snap := c.Snapshot("n1", observetest.View{Alive: alive})
		if r := d.Apply(context.Background(), Decision{Snapshot: snap, Alive: snap.Alive}); len(r.Errors) != 0 {
			t.Fatalf("apply: %v", r.Errors)
		}
	}
	want := func(step string, flushes ...[]netip.Addr) {
		t.Helper()
		if diff := cmp.Diff(flushes, be.flushes, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Fatalf("%s: flushes (-want +got):\n%s", step, diff)
		}
	}
	apply("n1", "n2")
	want("all alive")
	apply("n1")
	want("n2 dead", []netip.Addr{dead})
	apply("n1")
	want("n2 still dead", []netip.Addr{dead})
	apply("n1", "n2")
	apply("n1")
	want("n2 back, then dead again", []netip.Addr{dead}, []netip.Addr{dead})
	be.flushErr = errors.New("netlink says no")
	apply("n1", "n2")
	apply("n1")
	be.flushErr = nil
	apply("n1")
	want("failed flush retried", []netip.Addr{dead}, []netip.Addr{dead}, []netip.Addr{dead}, []netip.Addr{dead})
}
