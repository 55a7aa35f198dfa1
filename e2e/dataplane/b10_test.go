package dataplane

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// B10 (shared/BENCHMARKS.md): backend-node death on the LB path. Six pods spread over the
// three nodes, two L2-announced LoadBalancer Services in front of them with
// externalTrafficPolicy Cluster: one in dataplane mode pods (our table, Maglev; membership
// drops a dead node's pods from every node's table) and one in mode off (kube-proxy's
// path, which keeps sending new connections to the dead node's pods until the node
// lifecycle marks them unready). Per run: the client starts a TCP connect every 5 ms (in
// parallel, 50 ms timeout each); the link of a node that holds pods and does not announce
// the IP is cut silently (CutLink); we count the failed connects per second after the cut
// and record the time until failures stop (cut → start of the last failed connect, once
// no connect has failed for 3 s), capped (LOADSTONE_B10_CAP, default 90 s: "> cap" when
// failures never stopped). The link is restored and every node's pods serve again before
// the next run. The two paths alternate run by run in the same lab.
//
// It reports numbers and asserts none. It runs only with LOADSTONE_BENCH=1 (TestB10) or
// under -bench (BenchmarkB10), never under -short:
//
//	flock /tmp/loadstone-lab.lock env LOADSTONE_BENCH=1 go test -p 1 -run TestB10 -v -timeout 60m ./e2e/dataplane/
//
// LOADSTONE_B10_RUNS sets the runs per path (default 5); LOADSTONE_BENCH_OUT names a file
// to write the markdown table to.
func TestB10(t *testing.T) {
	benchdata.Require(t, "B10")
	runB10(t)
}

// BenchmarkB10 is B10 under `go test -bench B10`. It ignores b.N: the run count is the
// sample, and one call takes minutes.
func BenchmarkB10(b *testing.B) {
	runB10(b)
}

// b10Path is one of the compared LB paths.
type b10Path struct {
	name, service, mode, ip string
	runs                    []deadRun
}

func runB10(tb testing.TB) {
	runs := 5
	if n, err := strconv.Atoi(os.Getenv("LOADSTONE_B10_RUNS")); err == nil && n > 0 {
		runs = n
	}
	capAfter := 90 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LOADSTONE_B10_CAP")); err == nil && d > 0 {
		capAfter = d
	}
	const quiet = 3 * time.Second
	e := framework.Setup(tb)
	spreadDeployment(e, "b10", 6)
	paths := []*b10Path{
		{name: "Loadstone dataplane (mode pods, Maglev)", service: "b10-pods", mode: "pods"},
		{name: "kube-proxy (mode off, ipMode VIP)", service: "b10-kp", mode: "off"},
	}
	for _, p := range paths {
		p.ip = create(e, svc{name: p.service, app: "b10", mode: p.mode})
		want := corev1.LoadBalancerIPModeProxy
		if p.mode == "off" {
			want = corev1.LoadBalancerIPModeVIP
		}
		e.Eventually("ipMode "+string(want)+" on "+p.ip, 30*time.Second, func() (bool, error) {
			m := ipMode(e, p.service, p.ip)
			return m != nil && *m == want, nil
		})
	}
	for i := range runs {
		for _, p := range paths {
			r := deadNodeRun(e, p.service, p.ip, capAfter, quiet)
			e.RestoreLink(r.cut)
			p.runs = append(p.runs, r)
			stop := r.lastFail.Round(time.Millisecond).String()
			if !r.stopped {
				stop = "> " + capAfter.String()
			}
			// Printed, not logged: benchmarks show their logs only on failure.
			fmt.Printf("B10 %s run %d: cut %s at %s (announcer %s): failures stop %s, %d failed connects (%d before the cut); failed per second: %s; failure stretches: %v; router entry: %v\n",
				p.name, i+1, r.cut, r.t0.Format("15:04:05.000"), r.announcer, stop, r.failed, r.preFailed, perSecondString(r.perSecond), r.bursts, r.routerPath)
		}
	}
	// The cut node is back for whatever runs next.
	waitAllNodesServe(e, paths[0].service, paths[0].ip, 180*time.Second)
	table := b10Table(paths, runs, capAfter)
	benchdata.Report(tb, table)
}

// b10Stat is a percentile of the time until failures stop; capped when that run's
// failures never stopped within the cap (the value is then only a lower bound).
type b10Stat struct {
	d      time.Duration
	capped bool
}

func (s b10Stat) String() string {
	if s.capped {
		return "> " + s.d.String()
	}
	return s.d.Round(time.Millisecond).String()
}

// b10Pct is the p-th percentile (nearest rank) of the runs' times until failures stop; a
// run that never stopped counts as the cap.
func b10Pct(runs []deadRun, p float64, capAfter time.Duration) b10Stat {
	if len(runs) == 0 {
		return b10Stat{}
	}
	s := make([]b10Stat, len(runs))
	for i, r := range runs {
		s[i] = b10Stat{d: r.lastFail}
		if !r.stopped {
			s[i] = b10Stat{d: capAfter, capped: true}
		}
	}
	slices.SortStableFunc(s, func(a, b b10Stat) int { return int(a.d - b.d) })
	return s[int(p*float64(len(s)-1)+0.5)]
}

func b10Table(paths []*b10Path, runs int, capAfter time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## B10: backend-node death on the LB path (%d runs per path; `LOADSTONE_BENCH=1 go test -p 1 -run TestB10 -v ./e2e/dataplane/`)\n\n", runs)
	b.WriteString("| path | runs | failures stop p50 | failures stop max | failed connects p50 | failed connects max | failed connects before the cut |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	p50 := map[string]b10Stat{}
	mx := map[string]b10Stat{}
	for _, p := range paths {
		var failed []int
		pre := 0
		for _, r := range p.runs {
			failed = append(failed, r.failed)
			pre += r.preFailed
		}
		if len(failed) == 0 {
			continue
		}
		slices.Sort(failed)
		p50[p.name], mx[p.name] = b10Pct(p.runs, .5, capAfter), b10Pct(p.runs, 1, capAfter)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d | %d |\n", p.name, len(p.runs), p50[p.name], mx[p.name],
			failed[int(.5*float64(len(failed)-1)+0.5)], failed[len(failed)-1], pre)
	}
	if len(paths) == 2 {
		ours, theirs := paths[0].name, paths[1].name
		ratio := func(a, k b10Stat) string {
			if a.d <= 0 {
				return "n/a (no failure on our path)"
			}
			r := fmt.Sprintf("%.0f×", float64(k.d)/float64(a.d))
			if k.capped {
				r = "> " + r
			}
			return r
		}
		fmt.Fprintf(&b, "\nkube-proxy's path / ours, time until failures stop: p50 %s, max %s.\n", ratio(p50[ours], p50[theirs]), ratio(mx[ours], mx[theirs]))
	}
	fmt.Fprintf(&b, "\nA TCP connect starts every 5 ms (in parallel, 50 ms timeout each) from the client to the LB IP; the link of a node holding 2 of the 6 pods (not the announcing node) is cut silently. Failures stop: cut → start of the last failed connect, after which none failed for 3 s (cap %s). Target (BENCHMARKS.md): ours within membership detection (< 500 ms), ≥ 20× sooner than kube-proxy's path.\n", capAfter)
	return b.String()
}
