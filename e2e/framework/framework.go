package framework

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// envLabUp tells Setup (in the same test binary) that Main brought a lab up.
const envLabUp = "LOADSTONE_E2E_LAB_UP"

// Options tune Main.
type Options struct {
	// Nodes is the number of nodes (default lab.DefaultNodes).
	Nodes int
}

// Main brings the lab up, runs the tests, and removes the lab (unless LOADSTONE_E2E_KEEP=1).
// It returns the exit code for os.Exit. With -short it runs the tests without a lab.
func Main(m *testing.M, opts Options) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the lab needs root (network namespaces); run as root or with -short")
		return 1
	}
	repo, err := lab.FindRepoRoot(mustGetwd())
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	pre, err := lab.ParsePrebuilt(os.Getenv("LOADSTONE_LAB_PREBUILT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: LOADSTONE_LAB_PREBUILT:", err)
		return 1
	}
	l, err := lab.New(lab.Config{Nodes: opts.Nodes, RepoRoot: repo, Log: log, Prebuilt: pre})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cleanup always runs: on return, and on SIGINT/SIGTERM.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "e2e: %v: removing the lab\n", s)
		cancel()
		_ = l.Down(context.Background())
		os.Exit(2)
	}()
	defer func() {
		if os.Getenv("LOADSTONE_E2E_KEEP") == "1" {
			fmt.Fprintf(os.Stderr, "e2e: LOADSTONE_E2E_KEEP=1: the lab stays up (KUBECONFIG=%s)\n", l.AdminKubeconfig())
			return
		}
		if err := l.Down(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: removing the lab:", err)
		}
	}()
	if err := l.Up(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: lab up failed: %v\nlogs: %s/logs\n", err, l.Dir())
		return 1
	}
	os.Setenv(envLabUp, l.Dir())
	return m.Run()
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return wd
}

// Env is one test's view of the running lab.
type Env struct {
	T      testing.TB
	Lab    *lab.Lab
	Config *rest.Config
	Client kubernetes.Interface
	// Namespace is created for this test and deleted when it ends.
	Namespace string
	crc       client.Client
}

// Setup attaches a test to the lab that Main brought up and creates its namespace. Under
// -short it skips the test.
func Setup(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: needs the lab (root, network namespaces); not run with -short")
	}
	dir := os.Getenv(envLabUp)
	if dir == "" {
		t.Fatal("e2e: no lab: call framework.Main from TestMain")
	}
	repo, err := lab.FindRepoRoot(mustGetwd())
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Open(lab.Config{Dir: dir, RepoRoot: repo})
	if err != nil {
		t.Fatalf("e2e: open lab: %v", err)
	}
	cfg, err := l.RESTConfig("admin")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Lab: l, Config: cfg, Client: cs}
	e.Namespace = e.CreateNamespace(nsName(t.Name()))
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpOnFailure()
		}
	})
	return e
}

// nsName turns a test name into a namespace name.
func nsName(test string) string {
	s := strings.ToLower(test)
	var b strings.Builder
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if len(n) > 40 {
		n = n[:40]
	}
	return fmt.Sprintf("e2e-%s-%d", strings.Trim(n, "-"), time.Now().UnixNano()%100000)
}

// Context returns a context that ends with the test (or after 10 minutes).
func (e *Env) Context() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	e.T.Cleanup(cancel)
	return ctx
}

// CreateNamespace creates a namespace that is deleted when the test ends.
func (e *Env) CreateNamespace(name string) string {
	e.T.Helper()
	ctx := context.Background()
	_, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatalf("create namespace %s: %v", name, err)
	}
	e.T.Cleanup(func() {
		_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// Eventually polls cond every interval until it returns true, failing the test with desc
// and the last error after timeout. Timeouts here are bounds on waiting, not assertions
// about speed.
func (e *Env) Eventually(desc string, timeout time.Duration, cond func() (bool, error)) {
	e.T.Helper()
	if err := Poll(e.Context(), timeout, 100*time.Millisecond, cond); err != nil {
		e.T.Fatalf("waiting for %s: %v", desc, err)
	}
}

// Poll calls cond every interval until it returns true, ctx ends, or timeout passes.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("not true after %v: %w", timeout, last)
			}
			return fmt.Errorf("not true after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// dumpOnFailure logs where to look when a test failed.
func (e *Env) dumpOnFailure() {
	e.T.Logf("lab logs: %s", filepath.Join(e.Lab.Dir(), "logs"))
	for _, p := range e.Lab.State().Procs {
		if !p.Alive() {
			e.T.Logf("process %s (pid %d) is not running; log %s", p.Name, p.PID, p.Log)
		}
	}
}
