package dataplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// b3Service is a LoadBalancer Service in front of app's pods (port 8080 → 80) in the given
// dataplane mode.
func b3Service(e *framework.Env, name, mode string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.Namespace, Annotations: map[string]string{v1beta1.AnnotationDataplaneMode: mode}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "b3"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// B4 (shared/BENCHMARKS.md): forwarding through the LB IP. One pod; two LoadBalancer
// Services with externalTrafficPolicy Local in front of it (so the pod's node is the one
// that announces both, and every path crosses the same hops: client → router → the pod's
// node → pod): mode pods (our table) and mode off (kube-proxy's). The client runs a
// closed-loop load (LOADSTONE_B4_CONC workers, default 8, each one request at a time)
// against three targets in turn: the pod IP directly, our LB IP, kube-proxy's LB IP;
// LOADSTONE_B4_SECONDS (default 3) per target per round, LOADSTONE_B4_ROUNDS rounds
// (default 5) interleaved so drift on the shared machine hits all three alike. Two
// variants: a new TCP connection per request (the NAT decision on every request) and
// keep-alive connections. Reported: the median over rounds of requests per second and of
// the round's p50 and p99 latency, and each as a ratio to the direct path.
//
// It reports numbers and asserts none. It runs only with LOADSTONE_BENCH=1 (TestB4) or
// under -bench (BenchmarkB4):
//
//	flock /tmp/loadstone-lab.lock env LOADSTONE_BENCH=1 go test -p 1 -run TestB4 -v -timeout 30m ./e2e/dataplane/
func TestB4(t *testing.T) {
	benchdata.Require(t, "B4")
	runB4(t)
}

// BenchmarkB4 is B4 under `go test -bench B4`; it ignores b.N.
func BenchmarkB4(b *testing.B) {
	runB4(b)
}

// b4Round is one target's load over one round.
type b4Round struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

func runB4(tb testing.TB) {
	conc := benchdata.EnvInt("LOADSTONE_B4_CONC", 8)
	secs := benchdata.EnvInt("LOADSTONE_B4_SECONDS", 3)
	rounds := benchdata.EnvInt("LOADSTONE_B4_ROUNDS", 5)
	e := framework.Setup(tb)
	e.CreateDeployment(framework.Deployment{Name: "b4", Replicas: 1})
	pod := e.RunningPods("b4")[0]
	targets := []struct{ name, url string }{{"direct to the pod", url(pod.Status.PodIP, 80)}}
	for _, m := range []struct{ name, mode string }{{"Loadstone dataplane (mode pods)", "pods"}, {"kube-proxy (mode off)", "off"}} {
		ip := create(e, svc{name: "b4-" + m.mode, app: "b4", mode: m.mode, local: true})
		e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
		targets = append(targets, struct{ name, url string }{m.name, url(ip, 8080)})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## B4: forwarding through the LB IP (%d rounds × %d s per target, %d workers; pod on %s; `LOADSTONE_BENCH=1 go test -p 1 -run TestB4 -v ./e2e/dataplane/`)\n\n",
		rounds, secs, conc, pod.Spec.NodeName)
	b.WriteString("| variant | target | RPS (median) | × direct | p50 | × direct | p99 | × direct | errors |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, keep := range []bool{false, true} {
		variant := "new connection per request"
		if keep {
			variant = "keep-alive"
		}
		res := make([][]b4Round, len(targets))
		for r := range rounds {
			for ti, tg := range targets {
				x := b4Load(e.Context(), tg.url, conc, time.Duration(secs)*time.Second, keep)
				res[ti] = append(res[ti], x)
				fmt.Printf("B4 %s round %d %s: %.0f rps, p50 %v, p99 %v, %d errors\n", variant, r+1, tg.name, x.rps, x.p50, x.p99, x.errors)
			}
		}
		var base b4Round
		for ti, tg := range targets {
			m := b4Median(res[ti])
			if ti == 0 {
				base = m
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %.2f | %v | %.2f | %v | %.2f | %d |\n", variant, tg.name,
				m.rps, m.rps/base.rps, m.p50.Round(time.Microsecond), float64(m.p50)/float64(base.p50),
				m.p99.Round(time.Microsecond), float64(m.p99)/float64(base.p99), m.errors)
		}
	}
	b.WriteString("\nAll three targets are the same pod on the same node (externalTrafficPolicy Local: the pod's node announces both LB IPs); the load generator runs in the client's namespace on the same 2-core machine as the whole lab, so absolute figures are the lab's, ratios are the result. Target (BENCHMARKS.md): ≥ 0.95 of direct RPS, latency ≤ 1.1× direct, ≥ kube-proxy's path.\n")
	benchdata.Report(tb, b.String())
}

// b4Median is the median over rounds of each figure (errors summed).
func b4Median(rs []b4Round) b4Round {
	var rps []float64
	var p50, p99 []time.Duration
	var out b4Round
	for _, r := range rs {
		rps = append(rps, r.rps)
		p50 = append(p50, r.p50)
		p99 = append(p99, r.p99)
		out.errors += r.errors
	}
	slices.Sort(rps)
	slices.Sort(p50)
	slices.Sort(p99)
	out.rps, out.p50, out.p99 = rps[len(rps)/2], p50[len(p50)/2], p99[len(p99)/2]
	return out
}

// b4Load runs conc closed-loop workers against target for d and returns the rate and the
// latency percentiles of the successful requests.
func b4Load(ctx context.Context, target string, conc int, d time.Duration, keepAlive bool) b4Round {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dl := lab.Dialer{Netns: lab.ClientNS, Timeout: 2 * time.Second}
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
				DialContext:       func(ctx context.Context, n, a string) (net.Conn, error) { return dl.DialContext(ctx, n, a) },
				DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1,
			}}
			defer c.CloseIdleConnections()
			var mine []time.Duration
			bad := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s", resp.Status)
					}
				}
				switch {
				case ctx.Err() != nil:
				case err != nil:
					bad++
				default:
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	return b4Round{rps: float64(len(lat)) / el.Seconds(), p50: pct(lat, .5), p99: pct(lat, .99), errors: errs}
}
