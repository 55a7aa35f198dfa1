package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/workqueue"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/internal/benchdata"
	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// BenchmarkE2EAllocation is benchmark B6 end to end: N LoadBalancer Services are created
// against the real API server (32 client goroutines, QPS 500, protobuf) and the time until
// all have an IP is measured twice, each on a fresh API server: once with a trivial
// in-process assigner that patches status with sequential IPs (the floor: the API server
// is the bottleneck), once with the real controller running as its own process (the
// binary built from ./controller, 16 workers, leader election off). Reported: the ratio to
// the floor, the controller's CPU per Service and peak RSS (from /proc), its pool status
// writes and write errors (from its metrics), and, after a restart with N/10 Services
// created while it was down, the time until those are assigned (none of the N may move).
//
// Runs only with LOADSTONE_BENCH=1 (make bench sets it); sizes come from
// LOADSTONE_BENCH_SERVICES (default 1000,5000,10000). LOADSTONE_BENCH_CONTROLLER_GOMEMLIMIT
// sets GOMEMLIMIT for the controller process only; LOADSTONE_BENCH_CONTROLLER_ARGS adds flags; LOADSTONE_BENCH_PPROF=dir saves its CPU
// and heap profiles.
func BenchmarkE2EAllocation(b *testing.B) {
	if os.Getenv("LOADSTONE_BENCH") != "1" {
		b.Skip("set LOADSTONE_BENCH=1 to run the end-to-end allocation benchmark")
	}
	sizes := []int{1000, 5000, 10000}
	if s := os.Getenv("LOADSTONE_BENCH_SERVICES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("LOADSTONE_BENCH_SERVICES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	bin := filepath.Join(b.TempDir(), "loadstone-controller")
	build := exec.Command("go", "build", "-o", bin, "./controller")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build controller: %v\n%s", err, out)
	}
	fmt.Printf("B6| services | floor s | loadstone s | ratio | CPU ms/svc | peak RSS MiB | pool status writes (errors) | restart: +%s pending assigned s |\n", "N/10")
	fmt.Printf("B6|---|---|---|---|---|---|---|---|\n")
	for _, n := range sizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for range b.N {
				floor := runFloor(b, n)
				r := runLoadstone(b, bin, n)
				ratio := r.elapsed.Seconds() / floor.Seconds()
				b.ReportMetric(floor.Seconds(), "floor-s")
				b.ReportMetric(r.elapsed.Seconds(), "loadstone-s")
				b.ReportMetric(ratio, "x-floor")
				b.ReportMetric(r.cpu.Seconds()*1000/float64(n), "cpu-ms/svc")
				b.ReportMetric(r.peakRSS/(1<<20), "peak-MiB")
				b.ReportMetric(r.restart.Seconds(), "restart-s")
				fmt.Printf("B6| %d | %.1f | %.1f | %.2f | %.3f | %.0f | %.0f (%.0f) | %.1f |\n", n, floor.Seconds(), r.elapsed.Seconds(), ratio,
					r.cpu.Seconds()*1000/float64(n), r.peakRSS/(1<<20), r.poolWrites, r.poolWriteErrors, r.restart.Seconds())
				if err := benchdata.Append("b6", benchdata.B6{Services: n, FloorSeconds: floor.Seconds(), LoadstoneSecs: r.elapsed.Seconds(),
					CPUMsPerService: r.cpu.Seconds() * 1000 / float64(n), PeakRSSMiB: r.peakRSS / (1 << 20)}); err != nil {
					b.Error(err)
				}
			}
		})
	}
}

const benchNS = "bench"

func benchEnv(b *testing.B) (*testenv.Env, *kubernetes.Clientset) {
	env := testenv.Start(b, testenv.Options{
		APIServerFlags: map[string]string{"service-cluster-ip-range": "198.19.0.0/16"},
		AddToScheme:    []func(*runtime.Scheme) error{v1beta1.AddToScheme},
	})
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	return env, cs
}

// createServices creates Services named prefix0..prefix(n-1) with 32 goroutines.
func createServices(b *testing.B, cs *kubernetes.Clientset, prefix string, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				s := lbService(benchNS, fmt.Sprintf("%s%d", prefix, i))
				if _, err := cs.CoreV1().Services(benchNS).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("create: %v", err)
	}
}

// assignedWatcher counts the Services in benchNS that have an ingress IP.
type assignedWatcher struct {
	mu   sync.Mutex
	ips  map[string]string
	want int
	done chan struct{}
	stop chan struct{}
}

func watchAssigned(b *testing.B, cs *kubernetes.Clientset, want int) *assignedWatcher {
	w := &assignedWatcher{ips: map[string]string{}, want: want, done: make(chan struct{}), stop: make(chan struct{})}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(benchNS))
	inf := f.Core().V1().Services().Informer()
	update := func(o any) {
		s, ok := o.(*corev1.Service)
		if !ok {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(s.Status.LoadBalancer.Ingress) > 0 {
			w.ips[s.Name] = s.Status.LoadBalancer.Ingress[0].IP
		} else {
			delete(w.ips, s.Name)
		}
		if len(w.ips) >= w.want {
			select {
			case <-w.done:
			default:
				close(w.done)
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: update, UpdateFunc: func(_, o any) { update(o) }}); err != nil {
		b.Fatal(err)
	}
	f.Start(w.stop)
	f.WaitForCacheSync(w.stop)
	b.Cleanup(func() { close(w.stop); f.Shutdown() })
	return w
}

func (w *assignedWatcher) wait(b *testing.B) {
	select {
	case <-w.done:
	case <-time.After(30 * time.Minute):
		w.mu.Lock()
		defer w.mu.Unlock()
		b.Fatalf("only %d of %d Services got an IP", len(w.ips), w.want)
	}
}

func (w *assignedWatcher) snapshot() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.ips))
	for k, v := range w.ips {
		out[k] = v
	}
	return out
}

// runFloor measures the trivial assigner: sequential IPs, one status patch per Service.
func runFloor(b *testing.B, n int) time.Duration {
	_, cs := benchEnv(b)
	ctx, cancel := context.WithCancel(context.Background())
	q := workqueue.NewTyped[string]()
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(benchNS))
	defer func() {
		cancel()
		q.ShutDown()
		f.Shutdown()
	}()
	inf := f.Core().V1().Services().Informer()
	enqueue := func(o any) {
		if s, ok := o.(*corev1.Service); ok && len(s.Status.LoadBalancer.Ingress) == 0 {
			q.Add(s.Name)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }}); err != nil {
		b.Fatal(err)
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	var seq atomic.Uint32
	done := map[string]bool{}
	var mu sync.Mutex
	for range 16 {
		go func() {
			for {
				name, shut := q.Get()
				if shut {
					return
				}
				mu.Lock()
				skip := done[name]
				done[name] = true
				mu.Unlock()
				if !skip {
					i := seq.Add(1) - 1
					ip := fmt.Sprintf("198.18.%d.%d", i/256, i%256)
					patch := fmt.Sprintf(`{"status":{"loadBalancer":{"ingress":[{"ip":%q,"ipMode":"VIP"}]}}}`, ip)
					if _, err := cs.CoreV1().Services(benchNS).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil && ctx.Err() == nil {
						b.Errorf("floor patch: %v", err)
					}
				}
				q.Done(name)
			}
		}()
	}
	w := watchAssigned(b, cs, n)
	start := time.Now()
	createServices(b, cs, "s", n)
	w.wait(b)
	return time.Since(start)
}

type loadstoneRun struct {
	elapsed, cpu, restart       time.Duration
	peakRSS                     float64
	poolWrites, poolWriteErrors float64
}

// runLoadstone measures the real controller as a separate process.
func runLoadstone(b *testing.B, bin string, n int) loadstoneRun {
	env, cs := benchEnv(b)
	kubeconfig := writeKubeconfig(b, env.Config)
	pool := ipPool("bench", "198.18.0.0/16")
	if err := env.Client.Create(context.Background(), pool); err != nil {
		b.Fatal(err)
	}
	proc, metricsURL := startControllerProcess(b, bin, kubeconfig)
	waitPoolValid(b, env)

	var r loadstoneRun
	w := watchAssigned(b, cs, n)
	cpu0 := procCPU(b, proc.Process.Pid)
	start := time.Now()
	profDone := make(chan struct{})
	go func() {
		defer close(profDone)
		dir := os.Getenv("LOADSTONE_BENCH_PPROF")
		if dir == "" {
			return
		}
		// A CPU profile of the controller while it allocates (needs --enable-pprof).
		base := strings.TrimSuffix(metricsURL, "/metrics")
		resp, err := http.Get(base + fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(5, n/200)))
		if err != nil {
			b.Logf("pprof: %v", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("controller-cpu-%d.pprof", n)))
		if err != nil {
			b.Logf("pprof: %v", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	createServices(b, cs, "s", n)
	w.wait(b)
	r.elapsed = time.Since(start)
	<-profDone
	r.cpu = procCPU(b, proc.Process.Pid) - cpu0
	before := w.snapshot()
	// Let the status writer flush, then read its counters and the peak RSS.
	time.Sleep(2 * time.Second)
	r.poolWrites = scrape(b, metricsURL, "loadstone_controller_pool_status_writes_total")
	r.poolWriteErrors = scrape(b, metricsURL, "loadstone_controller_pool_status_write_errors_total")
	r.peakRSS = procPeakRSS(b, proc.Process.Pid)
	if dir := os.Getenv("LOADSTONE_BENCH_PPROF"); dir != "" {
		fetch(b, strings.TrimSuffix(metricsURL, "/metrics")+"/debug/pprof/heap", filepath.Join(dir, fmt.Sprintf("controller-heap-%d.pprof", n)))
	}
	stopProcess(b, proc)

	// Restart: N/10 Services created while the controller is down.
	m := max(1, n/10)
	w2 := watchAssigned(b, cs, n+m)
	createServices(b, cs, "late", m)
	proc, _ = startControllerProcess(b, bin, kubeconfig)
	start = time.Now()
	w2.wait(b)
	r.restart = time.Since(start)
	after := w2.snapshot()
	for name, ip := range before {
		if after[name] != ip {
			b.Fatalf("restart moved %s from %s to %s", name, ip, after[name])
		}
	}
	seen := map[string]string{}
	for name, ip := range after {
		if other, dup := seen[ip]; dup {
			b.Fatalf("%s given to %s and %s", ip, other, name)
		}
		seen[ip] = name
	}
	stopProcess(b, proc)
	return r
}

func writeKubeconfig(b *testing.B, cfg *rest.Config) string {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(b.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		b.Fatal(err)
	}
	return path
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startControllerProcess(b *testing.B, bin, kubeconfig string) (*exec.Cmd, string) {
	port := freePort(b)
	args := []string{"--kubeconfig", kubeconfig, "--leader-elect=false", "--enable-pprof=" + strconv.FormatBool(os.Getenv("LOADSTONE_BENCH_PPROF") != ""),
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--health-probe-bind-address", "0"}
	// LOADSTONE_BENCH_CONTROLLER_ARGS adds flags (split at spaces), e.g. "--workers=4".
	cmd := exec.Command(bin, append(args, strings.Fields(os.Getenv("LOADSTONE_BENCH_CONTROLLER_ARGS"))...)...)
	logf, err := os.Create(filepath.Join(b.TempDir(), "controller.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if v := os.Getenv("LOADSTONE_BENCH_CONTROLLER_GOMEMLIMIT"); v != "" {
		// As a Deployment would set it from the container's memory limit.
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+v)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		logf.Close()
	})
	return cmd, fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
}

func stopProcess(b *testing.B, cmd *exec.Cmd) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	_ = cmd.Wait()
}

func waitPoolValid(b *testing.B, env *testenv.Env) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var p v1beta1.IPAddressPool
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: "bench"}, &p); err == nil {
			for _, c := range p.Status.Conditions {
				if c.Type == v1beta1.ConditionValid && c.Status == metav1.ConditionTrue {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("controller did not mark the pool Valid")
}

// procCPU returns user+system CPU time of a process (clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procPeakRSS returns VmHWM in bytes.
func procPeakRSS(b *testing.B, pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

func scrape(b *testing.B, url, metric string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), metric+" "); ok {
			x, _ := strconv.ParseFloat(v, 64)
			return x
		}
	}
	return 0
}

func fetch(b *testing.B, url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Logf("fetch %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		b.Logf("fetch %s: %v", url, err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}
