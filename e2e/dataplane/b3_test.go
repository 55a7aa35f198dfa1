package dataplane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// B3 (shared/BENCHMARKS.md): Service create → the client's first successful response,
// with the pods already running. Per run and path: create a LoadBalancer Service in front
// of 3 ready pods (mode pods: our dataplane; mode off: kube-proxy's path), then send a GET
// every 5 ms (each with a 100 ms timeout) to the LB IP as soon as the Service exists,
// until one is answered; the time from the Create call to the start of that GET. The
// Service is deleted, and its IP left, before the next run; the two paths alternate run
// by run in the same lab.
//
// It reports numbers and asserts none. It runs only with LOADSTONE_BENCH=1 (TestB3) or
// under -bench (BenchmarkB3):
//
//	flock /tmp/loadstone-lab.lock env LOADSTONE_BENCH=1 go test -p 1 -run TestB3 -v -timeout 30m ./e2e/dataplane/
//
// LOADSTONE_B3_RUNS sets the runs per path (default 10).
func TestB3(t *testing.T) {
	benchdata.Require(t, "B3")
	runB3(t)
}

// BenchmarkB3 is B3 under `go test -bench B3`; it ignores b.N (the run count is the sample).
func BenchmarkB3(b *testing.B) {
	runB3(b)
}

func runB3(tb testing.TB) {
	runs := benchdata.EnvInt("LOADSTONE_B3_RUNS", 10)
	e := framework.Setup(tb)
	e.CreateDeployment(framework.Deployment{Name: "b3", Replicas: 3})
	paths := []struct{ name, mode string }{
		{"Loadstone dataplane (mode pods)", "pods"},
		{"kube-proxy (mode off)", "off"},
	}
	took := make([][]time.Duration, len(paths))
	for i := range runs {
		for pi, p := range paths {
			d, ip := b3Run(e, fmt.Sprintf("b3-%s-%d", p.mode, i), p.mode)
			took[pi] = append(took[pi], d)
			fmt.Printf("B3 %s run %d: %s answered %v after the Service's create\n", p.name, i+1, ip, d.Round(time.Millisecond))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## B3: Service create → first successful response (%d runs per path; `LOADSTONE_BENCH=1 go test -p 1 -run TestB3 -v ./e2e/dataplane/`)\n\n", runs)
	b.WriteString("| path | p50 | p90 | max |\n|---|---|---|---|\n")
	p50 := make([]time.Duration, len(paths))
	for pi, p := range paths {
		s := slices.Clone(took[pi])
		slices.Sort(s)
		p50[pi] = pct(s, .5)
		fmt.Fprintf(&b, "| %s | %v | %v | %v |\n", p.name, p50[pi].Round(time.Millisecond), pct(s, .9).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "\nkube-proxy's path / ours, p50: %.2f×. A GET every 5 ms (100 ms timeout) from the client from the Create call on; pods already ready. Target (BENCHMARKS.md): < 200 ms p50.\n",
		float64(p50[1])/float64(p50[0]))
	benchdata.Report(tb, b.String())
}

// pct is the p-th percentile (nearest rank) of sorted durations.
func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[int(p*float64(len(s)-1)+0.5)]
}

// b3Run creates the Service, polls until the client's first answer and deletes the
// Service again; it returns the time from the create call to the start of the answered
// GET.
func b3Run(e *framework.Env, name, mode string) (time.Duration, string) {
	e.T.Helper()
	start := time.Now()
	obj := b3Service(e, name, mode)
	if _, err := e.Client.CoreV1().Services(e.Namespace).Create(e.Context(), obj, metav1.CreateOptions{}); err != nil {
		e.T.Fatalf("create service %s: %v", name, err)
	}
	var ip string
	var took time.Duration
	deadline := start.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if ip == "" {
			s, err := e.Client.CoreV1().Services(e.Namespace).Get(e.Context(), name, metav1.GetOptions{})
			if err == nil && len(s.Status.LoadBalancer.Ingress) > 0 {
				ip = s.Status.LoadBalancer.Ingress[0].IP
			}
		}
		if ip != "" {
			ctx, cancel := context.WithTimeout(e.Context(), 100*time.Millisecond)
			_, err := framework.Get(ctx, lab.ClientNS, url(ip, 8080))
			cancel()
			if err == nil {
				took = t0.Sub(start)
				break
			}
		}
		time.Sleep(5*time.Millisecond - min(time.Since(t0), 5*time.Millisecond))
	}
	if took == 0 {
		e.T.Fatalf("%s (%s): no answer within 60 s of the create", name, ip)
	}
	if err := e.Client.CoreV1().Services(e.Namespace).Delete(e.Context(), name, metav1.DeleteOptions{}); err != nil {
		e.T.Fatal(err)
	}
	// The next run starts from a lab without this Service: its IP gone from the client's
	// reach (announcement withdrawn, rules removed).
	e.Eventually("service "+name+" gone and "+ip+" unanswered", 60*time.Second, func() (bool, error) {
		_, err := e.Client.CoreV1().Services(e.Namespace).Get(e.Context(), name, metav1.GetOptions{})
		if err == nil {
			return false, fmt.Errorf("still there")
		}
		ctx, cancel := context.WithTimeout(e.Context(), 200*time.Millisecond)
		defer cancel()
		_, gerr := framework.Get(ctx, lab.ClientNS, url(ip, 8080))
		return gerr != nil, nil
	})
	return took, ip
}
