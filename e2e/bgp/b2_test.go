package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// B2 (shared/BENCHMARKS.md): BGP failover. Nodes announce a /32 to the lab router, which
// spreads it over them by ECMP; the client starts a TCP connect to it every 1 ms (in
// parallel, 50 ms timeout each; the router hashes each connect's ports onto a next hop);
// one announcing node's link is cut silently (CutLink: its port leaves the router's
// bridge, no carrier change). Per run we record
//   - recovery: cut → start of the last failed connect (after it every connect succeeds:
//     traffic flows again; the failed-connect window);
//   - withdrawal: cut → the router's kernel route no longer names the node (netlink, 1 ms).
//
// Cases, in one run of the lab so that the figures compare:
//   - Loadstone's speaker on every node (three next hops), a BGPPeer to the router with a
//     BFDProfile of 100 ms × 3 (the router's "fast" profile), backends on node1 only, the
//     last node cut;
//   - the same without BFD: only the hold timer (router and peer timers 3 s / 9 s);
//   - the reference: FRR peers (bgpd + bfdd) in two nodes instead of their speakers
//     (stopped for the case: the speaker holds BFD's port), FRR↔FRR BFD 100 ms × 3, and
//     the same without BFD (hold timer 3/9 s).
//
// It asserts nothing. Run (the lab is shared: take its lock):
//
//	flock /tmp/loadstone-lab.lock env LOADSTONE_BENCH=1 go test -p 1 -run TestB2 -v -timeout 60m ./e2e/bgp/
//
// or `go test -bench B2 ./e2e/bgp/` (BenchmarkB2; `make bench` runs it). LOADSTONE_B2_RUNS
// (default 10) sets the runs of the BFD cases, LOADSTONE_B2_HOLD_RUNS (default 3) those
// of the hold-timer cases; LOADSTONE_B2_CASES="Loadstone" runs only the cases whose names
// contain it; LOADSTONE_BENCH_OUT names a file to write the table to. With
// LOADSTONE_BENCH_DATA set, each case's samples go to b2.jsonl (internal/benchdata) for
// bench/plot's b2-failover.svg and b2-timeline.svg.
func TestB2(t *testing.T) {
	benchdata.Require(t, "B2")
	runB2(t, func(name string, f func(testing.TB)) { t.Run(name, func(t *testing.T) { f(t) }) })
}

// BenchmarkB2 is B2 under `go test -bench`. It ignores b.N: one call takes minutes.
func BenchmarkB2(b *testing.B) {
	runB2(b, func(name string, f func(testing.TB)) { b.Run(name, func(b *testing.B) { f(b) }) })
}

type b2Sample struct {
	withdrawal, recovery time.Duration
	// failed counts failed connects after the cut, preFailed those in the 200 ms before
	// it (should be 0: the path was whole).
	failed, preFailed int
}

type b2Case struct {
	name string
	runs int
	bfd  bool
	// setup prepares the case and returns the prefix, the announcing nodes and the node
	// to cut.
	setup func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node)
}

func runB2(tb testing.TB, sub func(string, func(testing.TB))) {
	runs, holdRuns := benchdata.EnvInt("LOADSTONE_B2_RUNS", 10), benchdata.EnvInt("LOADSTONE_B2_HOLD_RUNS", 3)
	ref := func(bfd bool) func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
		return func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
			e := framework.Setup(tb)
			nodes := e.Lab.Nodes()[:2]
			p := netip.MustParsePrefix("203.0.113.252/32")
			for _, n := range nodes {
				// FRR replaces the speaker in these nodes for the case: FRR's bfdd aborts
				// when it cannot bind BFD's UDP port 3784, which a speaker with a BFD
				// session holds (and older speakers held from their start). Registered
				// before the FRR peers, so the speaker starts again after they stop.
				sp := e.Stop("speaker-"+n.Name, 2*time.Second)
				tb.Cleanup(func() { e.StartProc(sp) })
			}
			for _, n := range nodes {
				e.StartFRRPeer(framework.FRRPeerConfig{Node: n.Name, Prefixes: []netip.Prefix{p}, BFD: bfd})
				e.ServeAnycast(n.Name, p.Addr(), 8080, "anycast")
			}
			return p, nodes, nodes[1]
		}
	}
	speaker := func(bfd bool) func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
		return func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
			// setupBGP fails the case when a node's session (or, with BFD, the router's BFD
			// session with it) does not come up.
			x := setupBGP(tb, bgpOptions{BFD: bfd})
			nodes := x.Lab.Nodes()
			// Backends only on node1: the cut node takes none with it.
			x.CreateDeployment(framework.Deployment{Name: "b2", Replicas: 2, NodeSelector: map[string]string{corev1.LabelHostname: nodes[0].Name}})
			p := x.lbService("b2", corev1.ServiceExternalTrafficPolicyCluster)
			x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
			// Every node's kube-proxy serves the IP before the first run.
			x.steady(p)
			return p, nodes, nodes[len(nodes)-1]
		}
	}
	cases := []b2Case{
		{"Loadstone speaker, BFD 100 ms x 3", runs, true, speaker(true)},
		{"Loadstone speaker, hold timer 3/9 s (no BFD)", holdRuns, false, speaker(false)},
		{"FRR peer (reference), BFD 100 ms x 3", runs, true, ref(true)},
		{"FRR peer (reference), hold timer 3/9 s (no BFD)", holdRuns, false, ref(false)},
	}
	if only := os.Getenv("LOADSTONE_B2_CASES"); only != "" {
		cases = slices.DeleteFunc(cases, func(c b2Case) bool { return !strings.Contains(c.name, only) })
	}
	results := map[string][]b2Sample{}
	var order []string
	for _, c := range cases {
		sub(c.name, func(tb testing.TB) {
			samples, nexthops, tl := runB2Case(tb, c)
			if len(samples) == 0 {
				return
			}
			results[c.name] = samples
			order = append(order, c.name)
			rec := benchdata.B2{Case: c.name, Nexthops: nexthops, Timeline: tl.points()}
			for _, s := range samples {
				rec.RecoveryMs = append(rec.RecoveryMs, float64(s.recovery.Microseconds())/1000)
				rec.WithdrawalMs = append(rec.WithdrawalMs, float64(s.withdrawal.Microseconds())/1000)
				rec.FailedConnects = append(rec.FailedConnects, s.failed)
			}
			if err := benchdata.Append("b2", rec); err != nil {
				tb.Error(err)
			}
		})
	}
	table := b2Table(order, results)
	benchdata.Report(tb, table)
}

// runB2Case runs one case c.runs times and returns the samples of the runs in which the
// router withdrew the cut node, the number of announcing nodes and the timeline of all
// runs.
func runB2Case(tb testing.TB, c b2Case) ([]b2Sample, int, *b2Timeline) {
	p, nodes, cut := c.setup(tb)
	e := framework.Setup(tb) // a handle for waits and chaos (its own empty namespace)
	r := newRouterRoutes(tb, p)
	var all []string
	for _, n := range nodes {
		all = append(all, n.IP.String())
	}
	slices.Sort(all)
	tl := &b2Timeline{}
	var out []b2Sample
	for i := 0; i < c.runs; i++ {
		e.Eventually("all next hops back", 90*time.Second, func() (bool, error) {
			got := r.gateways()
			return slices.Equal(got, all), fmt.Errorf("next hops %v", got)
		})
		if c.bfd {
			waitBFDUpFor(e, cut.IP.String())
		}
		time.Sleep(500 * time.Millisecond)
		probe, err := framework.StartProbe(framework.ProbeConfig{Target: net.JoinHostPort(p.Addr().String(), "8080"), Mode: framework.ProbeTCPParallel, Timeout: 50 * time.Millisecond})
		if err != nil {
			tb.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		t0 := time.Now()
		e.CutLink(cut.Name)
		var withdrawal time.Duration
		for time.Since(t0) < 60*time.Second {
			if !slices.Contains(r.gateways(), cut.IP.String()) {
				withdrawal = time.Since(t0)
				break
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // connects after the withdrawal
		res := probe.Stop()
		e.RestoreLink(cut.Name)
		if res.Err != nil {
			tb.Fatal(res.Err)
		}
		s := b2Sample{withdrawal: withdrawal}
		for _, o := range res.Outcomes {
			switch {
			case o.OK:
			case o.Start.After(t0):
				s.failed++
				s.recovery = o.Start.Sub(t0)
			default:
				s.preFailed++
			}
		}
		note := ""
		if res.Open {
			note = " STILL FAILING at the end of the probe"
		}
		// Printed, not logged: benchmarks show their logs only on failure.
		fmt.Printf("B2 %s run %d (cut %s): withdrawal %v recovery %v failed connects %d (before the cut %d)%s (%v)\n", c.name, i+1,
			t0.Format("15:04:05.000"), s.withdrawal.Round(time.Millisecond), s.recovery.Round(time.Millisecond), s.failed, s.preFailed, note, res)
		if withdrawal == 0 {
			tb.Logf("%s run %d: next hop not withdrawn within 60 s; run left out", c.name, i+1)
			continue
		}
		tl.add(t0, res.Outcomes)
		out = append(out, s)
	}
	return out, len(nodes), tl
}

// b2Timeline sums probe outcomes of all runs of a case in 10 ms buckets around the cut
// (from 100 ms before to 10 s after: the hold timer's 9 s fit).
type b2Timeline struct {
	ok, total [1010]int
}

const b2Bucket = 10 * time.Millisecond

func (tl *b2Timeline) add(t0 time.Time, outcomes []framework.Outcome) {
	for _, o := range outcomes {
		d := o.Start.Sub(t0) + 100*time.Millisecond
		if d < 0 || int(d/b2Bucket) >= len(tl.total) {
			continue
		}
		i := int(d / b2Bucket)
		tl.total[i]++
		if o.OK {
			tl.ok[i]++
		}
	}
}

func (tl *b2Timeline) points() []benchdata.TimelinePoint {
	var out []benchdata.TimelinePoint
	for i, n := range tl.total {
		if n == 0 {
			continue
		}
		ms := float64(time.Duration(i)*b2Bucket-100*time.Millisecond) / float64(time.Millisecond)
		out = append(out, benchdata.TimelinePoint{Ms: ms, OKFraction: float64(tl.ok[i]) / float64(n), Probes: n})
	}
	return out
}

// waitBFDUpFor waits until the router's BFD session with peer is up.
func waitBFDUpFor(e *framework.Env, peer string) {
	e.Eventually("BFD up with "+peer, 90*time.Second, func() (bool, error) {
		ps, err := e.BFDPeers()
		if err != nil {
			return false, err
		}
		for _, p := range ps {
			if p.Peer == peer && p.Status == "up" {
				return true, nil
			}
		}
		return false, fmt.Errorf("BFD %+v", ps)
	})
}

// routerRoutes reads the router's kernel route for one prefix through netlink (cheap
// enough to sample every millisecond).
type routerRoutes struct {
	h   *netlink.Handle
	dst *net.IPNet
}

func newRouterRoutes(tb testing.TB, p netip.Prefix) *routerRoutes {
	tb.Helper()
	ns, err := netns.GetFromName(lab.RouterNS)
	if err != nil {
		tb.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	return &routerRoutes{h: h, dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
}

// gateways returns the route's next hops, sorted (none when there is no route).
func (r *routerRoutes) gateways() []string {
	fam := netlink.FAMILY_V4
	if r.dst.IP.To4() == nil {
		fam = netlink.FAMILY_V6
	}
	rs, err := r.h.RouteListFiltered(fam, &netlink.Route{Dst: r.dst}, netlink.RT_FILTER_DST)
	if err != nil {
		return nil
	}
	var out []string
	for _, rt := range rs {
		if rt.Gw != nil {
			out = append(out, rt.Gw.String())
		}
		for _, nh := range rt.MultiPath {
			if nh.Gw != nil {
				out = append(out, nh.Gw.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}

func b2Table(order []string, results map[string][]b2Sample) string {
	var b strings.Builder
	b.WriteString("## B2: BGP failover, silent node link cut (`LOADSTONE_BENCH=1 go test -p 1 -run TestB2 -v ./e2e/bgp/`)\n\n")
	b.WriteString("| case | runs | traffic flows again p50 | p99 | max | next hop dropped p50 | p99 | max | failed connects p50 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	for _, name := range order {
		var w, rec, f []time.Duration
		for _, s := range results[name] {
			w = append(w, s.withdrawal)
			rec = append(rec, s.recovery)
			f = append(f, time.Duration(s.failed))
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %d |\n", name, len(w),
			r(pct(rec, .5)), r(pct(rec, .99)), r(slices.Max(rec)), r(pct(w, .5)), r(pct(w, .99)), r(slices.Max(w)), int64(pct(f, .5)))
	}
	b.WriteString("\nTraffic flows again: cut → start of the last failed TCP connect (a connect every 1 ms, 50 ms timeout, hashed by the router over the next hops; only connects hashed to the cut node fail). Next hop dropped: cut → the router's kernel route no longer names the cut node. A percentile is the sorted sample at round(p·(runs−1)).\n")
	return b.String()
}
