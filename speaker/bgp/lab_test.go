package bgp

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadstone-lb/loadstone/internal/netnstest"
)

// The router tests run real routers (FRR, BIRD) in a network namespace of their own and
// our gobgp in another, joined by a veth:
//
//	node netns lsbgp-n-XXXX                 router netns lsbgp-r-XXXX
//	192.0.2.10-14/24, 2001:db8:1::10/64 ─── 192.0.2.1-5/24, 2001:db8:1::1/64
//
// gobgp dials from its own goroutines, so its sockets must be created in the node
// netns: the parent test builds the namespaces and starts the router, then re-executes
// the test binary under `ip netns exec <node>` to run the matching child test (guarded by
// the childEnv variable), which drives Server and checks the router through its control
// socket (vtysh and birdc talk over unix sockets, which no netns hides).

const childEnv = "LSBGP_CHILD"

// childSpec tells the child test where the router's control socket is.
type childSpec struct {
	VtyDir  string // FRR
	FRRLog  string // bgpd's log
	BirdCtl string // BIRD
}

// routerLab is the two namespaces and the veth between them.
type routerLab struct {
	node, router string
	dir          string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	netnstest.Run(t, args...)
}

// newRouterLab creates the namespaces (deleted when the test ends) or skips the test.
func newRouterLab(t *testing.T, need ...string) *routerLab {
	t.Helper()
	if testing.Short() {
		t.Skip("kernel test: creates network namespaces and runs routers; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root")
	}
	for _, bin := range append([]string{"ip"}, need...) {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel test: needs %s", bin)
		}
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sfx := hex.EncodeToString(b)
	// Not t.TempDir: its parent is private to root, and FRR runs as user frr.
	dir, err := os.MkdirTemp("", "lsbgp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l := &routerLab{node: "lsbgp-n-" + sfx, router: "lsbgp-r-" + sfx, dir: dir}
	for _, ns := range []string{l.node, l.router} {
		netnstest.New(t, ns)
	}
	run(t, "ip", "link", "add", "lsbn"+sfx, "netns", l.node, "type", "veth", "peer", "name", "lsbr"+sfx, "netns", l.router)
	for _, a := range []string{"192.0.2.10/24", "192.0.2.11/24", "192.0.2.12/24", "192.0.2.13/24", "192.0.2.14/24", "2001:db8:1::10/64"} {
		run(t, "ip", "-n", l.node, "addr", "add", a, "dev", "lsbn"+sfx, "nodad")
	}
	for _, a := range []string{"192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24", "192.0.2.5/24", "2001:db8:1::1/64"} {
		run(t, "ip", "-n", l.router, "addr", "add", a, "dev", "lsbr"+sfx, "nodad")
	}
	run(t, "ip", "-n", l.node, "link", "set", "lsbn"+sfx, "up")
	run(t, "ip", "-n", l.router, "link", "set", "lsbr"+sfx, "up")
	return l
}

// start runs argv in the router netns until the test ends (stopped by PID).
func (l *routerLab) start(t *testing.T, name string, argv ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(l.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.router}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log (tail):\n%s", name, tail(string(b), 3000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startFRR runs zebra and bgpd (as user frr) with bgpdConf; returns the vty directory.
func (l *routerLab) startFRR(t *testing.T, bgpdConf string) string {
	t.Helper()
	dir := filepath.Join(l.dir, "frr")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"zebra.conf": "hostname lsbgp-router\n", "bgpd.conf": bgpdConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u, err := user.Lookup("frr")
	if err != nil {
		t.Skipf("kernel test: needs FRR's user frr: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range []string{l.dir, dir, filepath.Join(dir, "zebra.conf"), filepath.Join(dir, "bgpd.conf")} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	argv := func(d string) []string {
		return []string{"/usr/lib/frr/" + d, "-f", filepath.Join(dir, d+".conf"), "-i", filepath.Join(dir, d+".pid"),
			"--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"), "-A", "127.0.0.1", "-P", "0"}
	}
	l.start(t, "zebra", argv("zebra")...)
	waitFile(t, filepath.Join(dir, "zserv.api"))
	l.start(t, "bgpd", argv("bgpd")...)
	waitFile(t, filepath.Join(dir, "bgpd.vty"))
	return dir
}

// startBIRD runs BIRD 2 with conf; returns its control socket.
func (l *routerLab) startBIRD(t *testing.T, conf string) string {
	t.Helper()
	cf := filepath.Join(l.dir, "bird.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(l.dir, "bird.ctl")
	l.start(t, "bird", "bird", "-f", "-c", cf, "-s", ctl, "-P", filepath.Join(l.dir, "bird.pid"))
	waitFile(t, ctl)
	return ctl
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runChild re-executes this test binary in the node netns to run the child test name.
func (l *routerLab) runChild(t *testing.T, name string, spec childSpec) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"netns", "exec", l.node, os.Args[0], "-test.run", "^" + name + "$", "-test.v", "-test.count=1", "-test.timeout=8m"}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	t.Logf("child %s output:\n%s", name, tail(string(out), 20000))
	if err != nil {
		t.Fatalf("child %s: %v", name, err)
	}
	// A run that matched no test exits 0 too: insist on the child's PASS line.
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("child %s did not report PASS", name)
	}
}

// childSpecOrSkip returns the spec when this process is the child, else skips.
func childSpecOrSkip(t *testing.T) childSpec {
	t.Helper()
	v := os.Getenv(childEnv)
	if v == "" {
		t.Skip("runs only as the child of its router test, inside the node netns")
	}
	var s childSpec
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		t.Fatalf("%s: %v", childEnv, err)
	}
	return s
}

// cmdOut runs a command and returns its output.
func cmdOut(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
