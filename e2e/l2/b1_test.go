package l2

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// B1 (shared/BENCHMARKS.md): L2 failover. For each case and run, a client starts a TCP
// connect to the LB IP every 1 ms (in parallel, 50 ms timeout each); the announcing node
// fails; we record the longest gap in service and the handover time (failure → the
// router's neighbour entry names another node's MAC). Link-cut runs also restore the link and count the router entry's changes
// in the 3 s after it settled back on the elected node (flapping).
//
// It reports numbers and asserts none. It runs only with LOADSTONE_BENCH=1 (TestB1) or
// under -bench (BenchmarkB1):
//
//	LOADSTONE_BENCH=1 go test -p 1 -run TestB1 -v -timeout 60m ./e2e/l2/
//
// LOADSTONE_B1_RUNS sets the runs per case (default 20); LOADSTONE_BENCH_OUT names a file
// to write the markdown table to; LOADSTONE_B1_CASES="node link cut" runs only the cases
// whose names it contains; LOADSTONE_B1_BACKENDS_ELSEWHERE=1 moves the backends off the
// announcing node first.
func TestB1(t *testing.T) {
	benchdata.Require(t, "B1")
	runB1(t)
}

// BenchmarkB1 is B1 under `go test -bench B1`. It ignores b.N: the run count is the
// sample, and one call takes minutes, so the testing package does not call it again.
func BenchmarkB1(b *testing.B) {
	runB1(b)
}

type b1Sample struct {
	gap, handover time.Duration
	flaps         int
}

type b1Case struct {
	name string
	// act makes the announcing node fail; undo brings it back.
	act, undo func(x *l2, node string)
}

func runB1(tb testing.TB) {
	runs := 20
	if s := os.Getenv("LOADSTONE_B1_RUNS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			runs = n
		}
	}
	x := setup(tb)
	ip := x.echoService("b1", 3, []corev1.IPFamily{corev1.IPv4Protocol}, "", nil)[0]
	x.GetEventually(lab.ClientNS, url(ip), 60*time.Second)
	if os.Getenv("LOADSTONE_B1_BACKENDS_ELSEWHERE") == "1" {
		// Variant: no backend on the announcing node, so a failed node takes no backend
		// with it and the gap shows the announcement alone.
		elected := x.waitAnnouncer("b1", ip, "")
		patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":%q,"operator":"NotIn","values":[%q]}]}]}}}}}}}`, corev1.LabelHostname, elected)
		if _, err := x.Client.AppsV1().Deployments(x.Namespace).Patch(x.Context(), "b1", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			tb.Fatal(err)
		}
		x.Eventually("b1 pods off "+elected, 120*time.Second, func() (bool, error) {
			pods := x.RunningPods("b1")
			for _, p := range pods {
				if p.Spec.NodeName == elected || p.DeletionTimestamp != nil {
					return false, nil
				}
			}
			return len(pods) == 3, nil
		})
		x.WaitDeploymentReady("b1", 3)
	}
	r := newRouterNeigh(tb, ip)
	macs := macToNode(tb, x.Lab)

	var stopped = map[string]func(){}
	cases := []b1Case{
		{name: "speaker SIGKILL", act: func(x *l2, n string) {
			p := x.Kill("speaker-" + n)
			stopped[n] = func() { x.StartProc(p) }
		}, undo: func(x *l2, n string) { stopped[n]() }},
		{name: "speaker SIGTERM (graceful)", act: func(x *l2, n string) {
			p := x.Stop("speaker-"+n, 10*time.Second)
			stopped[n] = func() { x.StartProc(p) }
		}, undo: func(x *l2, n string) { stopped[n]() }},
		{name: "node link cut", act: func(x *l2, n string) { x.CutLink(n) },
			undo: func(x *l2, n string) { x.RestoreLink(n) }},
	}
	if only := os.Getenv("LOADSTONE_B1_CASES"); only != "" {
		cases = slices.DeleteFunc(cases, func(c b1Case) bool { return !strings.Contains(only, c.name) })
	}
	results := map[string][]b1Sample{}
	timelines := map[string]*b1Timeline{}
	for _, c := range cases {
		for i := 0; i < runs; i++ {
			elected := x.waitAnnouncer("b1", ip, "")
			x.waitRouterMAC(r, ip, nodeMAC(tb, elected))
			time.Sleep(500 * time.Millisecond) // quiet before the failure
			probe, err := framework.StartProbe(framework.ProbeConfig{Target: target(ip), Mode: framework.ProbeTCPParallel, Timeout: 50 * time.Millisecond})
			if err != nil {
				tb.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			oldMAC := nodeMAC(tb, elected)
			t0 := time.Now()
			c.act(x, elected)
			var handover time.Duration
			for time.Since(t0) < 60*time.Second {
				if m := r.mac(); m != "" && m != oldMAC {
					handover = time.Since(t0)
					break
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // let the probe see service come back
			res := probe.Stop()
			if res.Err != nil {
				tb.Fatal(res.Err)
			}
			s := b1Sample{gap: res.MaxGap(), handover: handover}
			if timelines[c.name] == nil {
				timelines[c.name] = &b1Timeline{}
			}
			timelines[c.name].add(t0, res.Outcomes)
			if handover == 0 {
				tb.Logf("%s run %d: no handover within 60 s", c.name, i+1)
			}
			c.undo(x, elected)
			undone := time.Now()
			// Back on the elected node; then count changes of the router entry for 3 s.
			x.waitRouterMAC(r, ip, oldMAC)
			last, end := r.mac(), time.Now().Add(3*time.Second)
			path := []string{macs[last]}
			for time.Now().Before(end) {
				if m := r.mac(); m != "" && m != last {
					s.flaps++
					last = m
					path = append(path, macs[m])
				}
				time.Sleep(2 * time.Millisecond)
			}
			results[c.name] = append(results[c.name], s)
			// Printed, not logged: benchmarks show their logs only on failure, and a flapping
			// run's timestamps are what finds it in the speakers' logs.
			fmt.Printf("B1 %s run %d (failed %s, undone %s): gap %v handover %v flaps-after-return %d (router entry after return: %v)\n", c.name, i+1,
				t0.Format("15:04:05.000"), undone.Format("15:04:05.000"),
				s.gap.Round(time.Millisecond), s.handover.Round(time.Millisecond), s.flaps, path)
		}
	}
	for name, samples := range results {
		rec := benchdata.B1{Case: name, Timeline: timelines[name].points()}
		for _, x := range samples {
			rec.GapMs = append(rec.GapMs, float64(x.gap.Microseconds())/1000)
			rec.HandoverMs = append(rec.HandoverMs, float64(x.handover.Microseconds())/1000)
		}
		if err := benchdata.Append("b1", rec); err != nil {
			tb.Error(err)
		}
	}
	table := b1Table(results, runs)
	benchdata.Report(tb, table)
}

// b1Timeline sums probe outcomes of all runs of a case in 10 ms buckets around the
// failure (from 100 ms before to 1 s after).
type b1Timeline struct {
	ok, total [110]int
}

const b1Bucket = 10 * time.Millisecond

func (tl *b1Timeline) add(t0 time.Time, outcomes []framework.Outcome) {
	for _, o := range outcomes {
		i := int((o.Start.Sub(t0) + 100*time.Millisecond) / b1Bucket)
		if o.Start.Before(t0.Add(-100*time.Millisecond)) || i >= len(tl.total) {
			continue
		}
		tl.total[i]++
		if o.OK {
			tl.ok[i]++
		}
	}
}

func (tl *b1Timeline) points() []benchdata.TimelinePoint {
	var out []benchdata.TimelinePoint
	for i, n := range tl.total {
		if n == 0 {
			continue
		}
		ms := float64(time.Duration(i)*b1Bucket-100*time.Millisecond) / float64(time.Millisecond)
		out = append(out, benchdata.TimelinePoint{Ms: ms, OKFraction: float64(tl.ok[i]) / float64(n), Probes: n})
	}
	return out
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[i]
}

func b1Table(results map[string][]b1Sample, runs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## B1: L2 failover (%d runs per case; `LOADSTONE_BENCH=1 go test -p 1 -run TestB1 -v ./e2e/l2/`)\n\n", runs)
	b.WriteString("| case | gap p50 | gap p90 | gap p99 | gap max | handover p50 | handover p99 | handover max | runs with flapping after return |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range results {
			if !yield(k) {
				return
			}
		}
	}) {
		var gaps, hos []time.Duration
		flapping := 0
		for _, s := range results[name] {
			gaps = append(gaps, s.gap)
			hos = append(hos, s.handover)
			if s.flaps > 0 {
				flapping++
			}
		}
		r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |\n", name,
			r(pct(gaps, .5)), r(pct(gaps, .9)), r(pct(gaps, .99)), r(slices.Max(gaps)),
			r(pct(hos, .5)), r(pct(hos, .99)), r(slices.Max(hos)), flapping, len(results[name]))
	}
	b.WriteString("\nGap: longest stretch without a successful TCP connect (a connect starts every 1 ms without waiting for earlier ones; 50 ms timeout each). Handover: failure → the router's neighbour entry names another node. For speaker kills the old node keeps forwarding (its kube-proxy rules stay), so the gap mostly shows ARP/NDP effects; the link cut is the crash case.\n")
	return b.String()
}
