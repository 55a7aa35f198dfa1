package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// B2 (shared/BENCHMARKS.md): BGP failover. Two or three nodes announce a /32; the client
// starts a TCP connect to it every 1 ms (in parallel, 50 ms timeout each; the router
// hashes each connect's ports onto a next hop); one announcing node's link is cut
// silently (CutLink). Per run we record
//   - withdrawal: cut → the router's kernel route no longer names the node (netlink, 1 ms);
//   - recovery: cut → start of the last failed connect (after it every connect succeeds).
//
// Cases, in one run of the lab so that the figures compare: reference FRR speakers in the
// nodes (FRR↔FRR BFD 100 ms × 3, and hold timer 9 s without BFD), then Loadstone's speaker
// with BFD 100 ms × 3 and with the hold timer only. The speaker cases skip while the
// speaker does not do BGP. It asserts nothing. Run:
//
//	LOADSTONE_BENCH=1 go test -p 1 -run TestB2 -v -timeout 60m ./e2e/bgp/
//
// or `go test -bench B2 ./e2e/bgp/` (BenchmarkB2). LOADSTONE_B2_RUNS (default 10) sets
// the runs of the BFD cases, LOADSTONE_B2_HOLD_RUNS (default 3) those of the hold-timer
// cases; LOADSTONE_B2_CASES="FRR" runs only the cases whose names contain it;
// LOADSTONE_BENCH_OUT names a file to write the table to.
func TestB2(t *testing.T) {
	if os.Getenv("LOADSTONE_BENCH") != "1" {
		t.Skip("benchmark B2: set LOADSTONE_BENCH=1 (or run BenchmarkB2 with -bench)")
	}
	runB2(t, func(name string, f func(testing.TB)) { t.Run(name, func(t *testing.T) { f(t) }) })
}

// BenchmarkB2 is B2 under `go test -bench`. It ignores b.N: one call takes minutes.
func BenchmarkB2(b *testing.B) {
	runB2(b, func(name string, f func(testing.TB)) { b.Run(name, func(b *testing.B) { f(b) }) })
}

type b2Sample struct {
	withdrawal, recovery time.Duration
	failed               int
}

type b2Case struct {
	name string
	runs int
	// setup prepares the case and returns the prefix, the announcing nodes and the node
	// to cut.
	setup func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func runB2(tb testing.TB, sub func(string, func(testing.TB))) {
	runs, holdRuns := envInt("LOADSTONE_B2_RUNS", 10), envInt("LOADSTONE_B2_HOLD_RUNS", 3)
	ref := func(bfd bool) func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
		return func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
			e := framework.Setup(tb)
			nodes := e.Lab.Nodes()[:2]
			p := netip.MustParsePrefix("203.0.113.252/32")
			for _, n := range nodes {
				e.StartFRRPeer(framework.FRRPeerConfig{Node: n.Name, Prefixes: []netip.Prefix{p}, BFD: bfd})
				e.ServeAnycast(n.Name, p.Addr(), 8080, "anycast")
			}
			return p, nodes, nodes[1]
		}
	}
	speaker := func(bfd bool) func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
		return func(tb testing.TB) (netip.Prefix, []lab.Node, lab.Node) {
			x := setupBGP(tb, bgpOptions{BFD: bfd})
			nodes := x.Lab.Nodes()
			// Backends only on node1: the cut node takes none with it.
			x.CreateDeployment(framework.Deployment{Name: "b2", Replicas: 2, NodeSelector: map[string]string{corev1.LabelHostname: nodes[0].Name}})
			p := x.lbService("b2", corev1.ServiceExternalTrafficPolicyCluster)
			return p, nodes, nodes[len(nodes)-1]
		}
	}
	cases := []b2Case{
		{"FRR peer, BFD 100 ms x 3", runs, ref(true)},
		{"FRR peer, hold timer 9 s", holdRuns, ref(false)},
		{"Loadstone speaker, BFD 100 ms x 3", runs, speaker(true)},
		{"Loadstone speaker, hold timer 9 s", holdRuns, speaker(false)},
	}
	if only := os.Getenv("LOADSTONE_B2_CASES"); only != "" {
		cases = slices.DeleteFunc(cases, func(c b2Case) bool { return !strings.Contains(c.name, only) })
	}
	results := map[string][]b2Sample{}
	var order []string
	for _, c := range cases {
		sub(c.name, func(tb testing.TB) {
			samples := runB2Case(tb, c)
			if len(samples) > 0 {
				results[c.name] = samples
				order = append(order, c.name)
			}
		})
	}
	table := b2Table(order, results)
	fmt.Println(table)
	if out := os.Getenv("LOADSTONE_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			tb.Errorf("write %s: %v", out, err)
		}
	}
}

func runB2Case(tb testing.TB, c b2Case) []b2Sample {
	p, nodes, cut := c.setup(tb)
	e := framework.Setup(tb) // a handle for waits and chaos (its own empty namespace)
	r := newRouterRoutes(tb, p)
	var all []string
	for _, n := range nodes {
		all = append(all, n.IP.String())
	}
	slices.Sort(all)
	bfd := strings.Contains(c.name, "BFD")
	var out []b2Sample
	for i := 0; i < c.runs; i++ {
		e.Eventually("all next hops back", 90*time.Second, func() (bool, error) {
			got := r.gateways()
			return slices.Equal(got, all), fmt.Errorf("next hops %v", got)
		})
		if bfd {
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
		time.Sleep(500 * time.Millisecond)
		res := probe.Stop()
		e.RestoreLink(cut.Name)
		if res.Err != nil {
			tb.Fatal(res.Err)
		}
		s := b2Sample{withdrawal: withdrawal}
		for _, o := range res.Outcomes {
			if !o.OK && o.Start.After(t0) {
				s.failed++
				s.recovery = o.Start.Sub(t0)
			}
		}
		if withdrawal == 0 {
			tb.Logf("%s run %d: next hop not withdrawn within 60 s", c.name, i+1)
		}
		fmt.Printf("B2 %s run %d: withdrawal %v recovery %v failed connects %d (%v)\n", c.name, i+1,
			s.withdrawal.Round(time.Millisecond), s.recovery.Round(time.Millisecond), s.failed, res)
		out = append(out, s)
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
	b.WriteString("| case | runs | withdrawal p50 | p90 | max | recovery p50 | p90 | max | failed connects p50 |\n")
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
			r(pct(w, .5)), r(pct(w, .9)), r(slices.Max(w)), r(pct(rec, .5)), r(pct(rec, .9)), r(slices.Max(rec)), int64(pct(f, .5)))
	}
	b.WriteString("\nWithdrawal: cut → the router's kernel route no longer names the cut node. Recovery: cut → start of the last failed TCP connect (a connect every 1 ms, 50 ms timeout, hashed by the router over the next hops).\n")
	return b.String()
}
