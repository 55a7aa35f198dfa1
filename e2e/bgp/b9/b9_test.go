package b9

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// B9: BGP scale. Per router (FRR: zebra + bgpd; BIRD 2 with a kernel protocol exporting
// its BGP routes), in namespaces of the benchmark's own joined by a veth:
//
//	node netns lsb9-n-XXXX  192.0.2.10/24 ─── 192.0.2.1/24  router netns lsb9-r-XXXX
//
// each run starts a fresh b9speaker process in the node netns (AS 64600, eBGP to the
// router's AS 64500), waits for the session, then records
//   - install: the Apply call with N /32s of 198.18.0.0/15 → all N are in the router's
//     main kernel table (netlink dumps every 10 ms);
//   - withdraw: the Apply call without them → none is left;
//   - the speaker's CPU time (getrusage) over each phase and its peak RSS (VmHWM).
//
// As the reference, in the same run, FRR's own speaker (zebra + bgpd in the node netns,
// `redistribute kernel`) announces the same prefixes, added to the node's kernel as
// blackhole routes by one `ip -batch` (and deleted the same way).
//
// It asserts only that the routes arrive and leave (within 5 minutes), not how fast. Run:
//
//	LOADSTONE_BENCH=1 go test -run TestB9 -v -timeout 30m ./e2e/bgp/b9/
//
// or `go test -bench B9 ./e2e/bgp/b9/` (BenchmarkB9; `make bench` runs it).
// LOADSTONE_B9_RUNS (default 3) sets the runs per router, LOADSTONE_B9_PREFIXES (default
// 10000) the prefixes, LOADSTONE_B9_CASES="BIRD" runs only the cases ("router ← speaker")
// whose names contain it; LOADSTONE_BENCH_OUT names a file to append the table to.
func TestB9(t *testing.T) {
	benchdata.Require(t, "B9")
	runB9(t, func(name string, f func(testing.TB)) { t.Run(name, func(t *testing.T) { f(t) }) })
}

// BenchmarkB9 is B9 under `go test -bench`. It ignores b.N: one call takes minutes.
func BenchmarkB9(b *testing.B) {
	runB9(b, func(name string, f func(testing.TB)) { b.Run(name, func(b *testing.B) { f(b) }) })
}

const (
	nodeAddr   = "192.0.2.10"
	routerAddr = "192.0.2.1"
	// waitLimit bounds every wait for the router's table (a failure, not a measurement).
	waitLimit = 5 * time.Minute
	pollEvery = 10 * time.Millisecond
)

// benchRange holds the announced prefixes (b9speaker's).
var benchRange = netip.MustParsePrefix("198.18.0.0/15")

type b9Sample struct {
	install, applyAnnounce, withdraw, applyWithdraw time.Duration
	cpuAnnounce, cpuWithdraw                        time.Duration
	hwmKiB                                          int64
}

type b9Router struct {
	name string
	need []string
	// start runs the router in l.router until the test ends.
	start func(tb testing.TB, l *b9Lab)
}

// b9Speaker is what announces the prefixes: runOnce measures one run against l's router.
type b9Speaker struct {
	name    string
	need    []string
	runOnce func(tb testing.TB, l *b9Lab, n int) b9Sample
}

func runB9(tb testing.TB, sub func(string, func(testing.TB))) {
	if testing.Short() {
		tb.Skip("benchmark B9: creates network namespaces and runs routers; skipped with -short")
	}
	if os.Geteuid() != 0 {
		tb.Skip("benchmark B9: needs root")
	}
	runs, n := benchdata.EnvInt("LOADSTONE_B9_RUNS", 3), benchdata.EnvInt("LOADSTONE_B9_PREFIXES", 10000)
	frrBins := []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd"}
	routers := []b9Router{
		{"FRR 8 (zebra)", frrBins, startFRR},
		{"BIRD 2 (protocol kernel)", []string{"bird"}, startBIRD},
	}
	var bin string
	speakers := []b9Speaker{
		{"Loadstone (speaker/bgp)", nil, func(tb testing.TB, l *b9Lab, n int) b9Sample {
			return runB9Once(tb, l, bin, n)
		}},
		{"FRR bgpd (reference)", append(frrBins, "vtysh"), runRefOnce},
	}
	caseName := func(r b9Router, s b9Speaker) string { return r.name + " ← " + s.name }
	only := os.Getenv("LOADSTONE_B9_CASES")
	for _, r := range routers {
		if bin == "" && strings.Contains(caseName(r, speakers[0]), only) {
			bin = buildSpeaker(tb) // in tb's temporary directory: it outlives the subtests
		}
	}
	results := map[string][]b9Sample{}
	var order []string
	for _, r := range routers {
		var sps []b9Speaker
		for _, s := range speakers {
			if strings.Contains(caseName(r, s), only) {
				sps = append(sps, s)
			}
		}
		if len(sps) == 0 {
			continue
		}
		sub(r.name, func(tb testing.TB) {
			for _, b := range append([]string{"ip"}, r.need...) {
				if _, err := exec.LookPath(b); err != nil {
					tb.Skipf("needs %s", b)
				}
			}
			l := newB9Lab(tb)
			r.start(tb, l)
			for _, sp := range sps {
				name := caseName(r, sp)
				if missing := missingBin(sp.need); missing != "" {
					tb.Logf("%s: skipped, needs %s", name, missing)
					continue
				}
				for i := range runs {
					s := sp.runOnce(tb, l, n)
					fmt.Printf("B9 %s run %d: install %v (Apply %v), withdraw %v (Apply %v), speaker CPU %v + %v, peak RSS %.1f MiB\n",
						name, i+1, ms(s.install), ms(s.applyAnnounce), ms(s.withdraw), ms(s.applyWithdraw),
						ms(s.cpuAnnounce), ms(s.cpuWithdraw), float64(s.hwmKiB)/1024)
					results[name] = append(results[name], s)
				}
				order = append(order, name)
			}
		})
	}
	table := b9Table(n, order, results)
	fmt.Println(table)
	for _, name := range order {
		rec := benchdata.B9{Case: name, Prefixes: n}
		for _, s := range results[name] {
			rec.InstallMs = append(rec.InstallMs, float64(s.install)/float64(time.Millisecond))
			rec.WithdrawMs = append(rec.WithdrawMs, float64(s.withdraw)/float64(time.Millisecond))
			rec.CPUAnnounceS = append(rec.CPUAnnounceS, s.cpuAnnounce.Seconds())
			rec.CPUWithdrawS = append(rec.CPUWithdrawS, s.cpuWithdraw.Seconds())
			rec.PeakRSSMiB = append(rec.PeakRSSMiB, float64(s.hwmKiB)/1024)
		}
		if err := benchdata.Append("b9", rec); err != nil {
			tb.Errorf("record B9 samples: %v", err)
		}
	}
	if out := os.Getenv("LOADSTONE_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.WriteString(table + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			tb.Errorf("append to %s: %v", out, err)
		}
	}
}

func missingBin(bins []string) string {
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			return b
		}
	}
	return ""
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// runB9Once runs one speaker process through establish, announce, withdraw and quit.
func runB9Once(tb testing.TB, l *b9Lab, bin string, n int) b9Sample {
	tb.Helper()
	if c := l.count(tb); c != 0 {
		tb.Fatalf("router has %d routes in %v before the run", c, benchRange)
	}
	sp := l.startSpeaker(tb, bin, n)
	defer sp.stop(tb)
	sp.do(tb, "establish", 2*time.Minute)
	// Let the session's first exchanges settle before the clock starts.
	time.Sleep(time.Second)
	var s b9Sample
	before := sp.do(tb, "stats", time.Minute)

	sp.send(tb, "announce")
	done := l.waitCount(tb, func(c int) bool { return c == n }, fmt.Sprintf("all %d routes installed", n))
	a := sp.recv(tb, "announce", waitLimit)
	s.install = done.Sub(time.Unix(0, a.StartNs))
	s.applyAnnounce = time.Duration(a.ApplyNs)
	after := sp.do(tb, "stats", time.Minute)
	s.cpuAnnounce = time.Duration(after.CPUUs-before.CPUUs) * time.Microsecond

	time.Sleep(time.Second)
	before = sp.do(tb, "stats", time.Minute)
	sp.send(tb, "withdraw")
	done = l.waitCount(tb, func(c int) bool { return c == 0 }, "all routes withdrawn")
	w := sp.recv(tb, "withdraw", waitLimit)
	s.withdraw = done.Sub(time.Unix(0, w.StartNs))
	s.applyWithdraw = time.Duration(w.ApplyNs)
	after = sp.do(tb, "stats", time.Minute)
	s.cpuWithdraw = time.Duration(after.CPUUs-before.CPUUs) * time.Microsecond
	s.hwmKiB = after.HWMKiB
	return s
}

// buildSpeaker builds b9speaker into a temporary directory.
func buildSpeaker(tb testing.TB) string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("benchmark B9: needs the go command to build b9speaker")
	}
	dir := tb.TempDir()
	bin := filepath.Join(dir, "b9speaker")
	out, err := exec.Command(gobin, "build", "-o", bin, "github.com/loadstone-lb/loadstone/e2e/bgp/internal/b9speaker").CombinedOutput()
	if err != nil {
		tb.Fatalf("build b9speaker: %v\n%s", err, out)
	}
	return bin
}

// b9Lab is the node and router namespaces, the veth between them, and a netlink handle
// in the router's.
type b9Lab struct {
	node, router, dir string
	h                 *netlink.Handle
}

func run(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newB9Lab(tb testing.TB) *b9Lab {
	tb.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	sfx := hex.EncodeToString(b)
	// Not tb.TempDir: its parent is private to root, and FRR runs as user frr.
	dir, err := os.MkdirTemp("", "lsb9-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	l := &b9Lab{node: "lsb9-n-" + sfx, router: "lsb9-r-" + sfx, dir: dir}
	for _, ns := range []string{l.node, l.router} {
		run(tb, "ip", "netns", "add", ns)
		tb.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				tb.Errorf("delete netns %s: %v\n%s", ns, err, out)
			}
		})
		run(tb, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
		run(tb, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(tb, "ip", "link", "add", "lsb9n"+sfx, "netns", l.node, "type", "veth", "peer", "name", "lsb9r"+sfx, "netns", l.router)
	run(tb, "ip", "-n", l.node, "addr", "add", nodeAddr+"/24", "dev", "lsb9n"+sfx)
	run(tb, "ip", "-n", l.router, "addr", "add", routerAddr+"/24", "dev", "lsb9r"+sfx)
	run(tb, "ip", "-n", l.node, "link", "set", "lsb9n"+sfx, "up")
	run(tb, "ip", "-n", l.router, "link", "set", "lsb9r"+sfx, "up")

	ns, err := netns.GetFromName(l.router)
	if err != nil {
		tb.Fatal(err)
	}
	defer ns.Close()
	l.h, err = netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatal(err)
	}
	// A dump of 10k routes is about a megabyte.
	if err := l.h.SetSocketReceiveBufferSize(4<<20, true); err != nil {
		tb.Logf("netlink receive buffer: %v", err)
	}
	tb.Cleanup(l.h.Close)
	return l
}

// count returns how many /32s of benchRange the router's main table holds.
func (l *b9Lab) count(tb testing.TB) int {
	tb.Helper()
	rs, err := l.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		tb.Fatalf("list the router's routes: %v", err)
	}
	c := 0
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones != 32 {
			continue
		}
		if a, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok && benchRange.Contains(a) {
			c++
		}
	}
	return c
}

// waitCount polls the router's table until cond holds on the count and returns when it
// was first seen to hold; it fails the test after waitLimit.
func (l *b9Lab) waitCount(tb testing.TB, cond func(int) bool, what string) time.Time {
	tb.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		c := l.count(tb)
		now := time.Now()
		if cond(c) {
			return now
		}
		if now.After(deadline) {
			tb.Fatalf("%s: not within %v (the router's table has %d)", what, waitLimit, c)
		}
		time.Sleep(pollEvery)
	}
}

// proc is a process started by the benchmark, stopped by its PID.
type proc struct {
	p    *os.Process
	done chan struct{}
	once sync.Once
}

func (p *proc) stop() { p.once.Do(func() { stopPID(p.p, p.done) }) }

// start runs argv in netns ns until stop or the end of the test.
func (l *b9Lab) start(tb testing.TB, ns, name string, argv ...string) *proc {
	tb.Helper()
	logf, err := os.CreateTemp(l.dir, name+"-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &proc{p: cmd.Process, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(p.done) }()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			b, _ := os.ReadFile(logf.Name())
			tb.Logf("%s log (tail):\n%s", name, tail(string(b), 3000))
		}
	})
	return p
}

// stopPID sends SIGTERM, then SIGKILL after 5 s, and waits for done.
func stopPID(p *os.Process, done <-chan struct{}) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.Kill()
		<-done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitFile(tb testing.TB, p string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not appear", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// frrBGPD is the FRR router: AS 64500, passive towards the node.
const frrBGPD = `frr defaults traditional
hostname lsb9-router
log stdout warnings
!
router bgp 64500
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 192.0.2.10 remote-as 64600
 neighbor 192.0.2.10 passive
 neighbor 192.0.2.10 timers 3 9
 !
 address-family ipv4 unicast
  neighbor 192.0.2.10 activate
 exit-address-family
!
`

// startFRR runs the FRR router.
func startFRR(tb testing.TB, l *b9Lab) { l.startFRRIn(tb, l.router, frrBGPD) }

// startFRRIn runs zebra and bgpd with bgpdConf in netns ns, as user frr (FRR refuses to
// run as root), in a directory of their own; it returns the directory (the vty sockets')
// and the processes (bgpd first).
func (l *b9Lab) startFRRIn(tb testing.TB, ns, bgpdConf string) (string, []*proc) {
	tb.Helper()
	dir, err := os.MkdirTemp(l.dir, "frr-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, body := range map[string]string{"zebra.conf": "hostname lsb9\n", "bgpd.conf": bgpdConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	u, err := user.Lookup("frr")
	if err != nil {
		tb.Skipf("needs FRR's user frr: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range []string{l.dir, dir, filepath.Join(dir, "zebra.conf"), filepath.Join(dir, "bgpd.conf")} {
		if err := os.Chown(p, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	argv := func(d string) []string {
		return []string{"/usr/lib/frr/" + d, "-f", filepath.Join(dir, d+".conf"), "-i", filepath.Join(dir, d+".pid"),
			"--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"), "-A", "127.0.0.1", "-P", "0"}
	}
	zebra := l.start(tb, ns, "zebra", argv("zebra")...)
	waitFile(tb, filepath.Join(dir, "zserv.api"))
	bgpd := l.start(tb, ns, "bgpd", argv("bgpd")...)
	waitFile(tb, filepath.Join(dir, "bgpd.vty"))
	return dir, []*proc{bgpd, zebra}
}

// birdConf is the BIRD router: AS 64500, passive; its kernel protocol installs what BGP
// learned into the main table.
const birdConf = `router id 192.0.2.1;
protocol device {}
protocol kernel {
  ipv4 { import none; export where source = RTS_BGP; };
}
protocol bgp node {
  local 192.0.2.1 as 64500;
  neighbor 192.0.2.10 as 64600;
  passive on;
  hold time 9;
  keepalive time 3;
  ipv4 { import all; export none; };
}
`

func startBIRD(tb testing.TB, l *b9Lab) {
	tb.Helper()
	cf := filepath.Join(l.dir, "bird.conf")
	if err := os.WriteFile(cf, []byte(birdConf), 0o644); err != nil {
		tb.Fatal(err)
	}
	ctl := filepath.Join(l.dir, "bird.ctl")
	l.start(tb, l.router, "bird", "bird", "-f", "-c", cf, "-s", ctl, "-P", filepath.Join(l.dir, "bird.pid"))
	waitFile(tb, ctl)
}

// speakerReply is b9speaker's reply line (its Reply type).
type speakerReply struct {
	Cmd     string `json:"cmd"`
	Err     string `json:"err"`
	StartNs int64  `json:"start_ns"`
	ApplyNs int64  `json:"apply_ns"`
	CPUUs   int64  `json:"cpu_us"`
	HWMKiB  int64  `json:"hwm_kib"`
}

// speaker is one running b9speaker process.
type speaker struct {
	cmd     *exec.Cmd
	stdin   interface{ Write([]byte) (int, error) }
	replies chan speakerReply
	done    chan struct{}
	log     string
	stopped bool
}

func (l *b9Lab) startSpeaker(tb testing.TB, bin string, n int) *speaker {
	tb.Helper()
	logf, err := os.CreateTemp(l.dir, "speaker-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.node, bin, "-peer", routerAddr, "-source", nodeAddr,
		"-my-asn", "64600", "-peer-asn", "64500", "-prefixes", strconv.Itoa(n))
	cmd.Stderr = logf
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start b9speaker: %v", err)
	}
	sp := &speaker{cmd: cmd, stdin: in, replies: make(chan speakerReply, 16), done: make(chan struct{}), log: logf.Name()}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r speakerReply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				r = speakerReply{Err: fmt.Sprintf("bad reply %q: %v", sc.Text(), err)}
			}
			sp.replies <- r
		}
		close(sp.replies)
	}()
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(sp.done) }()
	tb.Cleanup(func() {
		if !sp.stopped {
			stopPID(cmd.Process, sp.done)
		}
		if tb.Failed() {
			b, _ := os.ReadFile(sp.log)
			tb.Logf("b9speaker log (tail):\n%s", tail(string(b), 3000))
		}
	})
	return sp
}

func (sp *speaker) send(tb testing.TB, cmd string) {
	tb.Helper()
	if _, err := sp.stdin.Write([]byte(cmd + "\n")); err != nil {
		tb.Fatalf("b9speaker %s: %v", cmd, err)
	}
}

func (sp *speaker) recv(tb testing.TB, cmd string, timeout time.Duration) speakerReply {
	tb.Helper()
	select {
	case r, ok := <-sp.replies:
		if !ok {
			tb.Fatalf("b9speaker %s: it exited", cmd)
		}
		if r.Cmd != cmd || r.Err != "" {
			tb.Fatalf("b9speaker %s: reply %+v", cmd, r)
		}
		return r
	case <-time.After(timeout):
		tb.Fatalf("b9speaker %s: no reply within %v", cmd, timeout)
	}
	return speakerReply{}
}

func (sp *speaker) do(tb testing.TB, cmd string, timeout time.Duration) speakerReply {
	tb.Helper()
	sp.send(tb, cmd)
	return sp.recv(tb, cmd, timeout)
}

// stop asks the speaker to quit (Close: Cease) and waits for it to exit.
func (sp *speaker) stop(tb testing.TB) {
	tb.Helper()
	if sp.stopped {
		return
	}
	sp.stopped = true
	_, _ = sp.stdin.Write([]byte("quit\n"))
	select {
	case <-sp.done:
	case <-time.After(30 * time.Second):
		tb.Errorf("b9speaker did not quit within 30 s")
		stopPID(sp.cmd.Process, sp.done)
	}
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}

func b9Table(n int, order []string, results map[string][]b9Sample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## B9: BGP scale, %d prefixes (`LOADSTONE_BENCH=1 go test -run TestB9 -v ./e2e/bgp/b9/`)\n\n", n)
	b.WriteString("| router ← speaker | runs | install p50 | install max | Apply returns p50 | withdraw p50 | withdraw max | speaker CPU s (announce) p50 | speaker CPU s (withdraw) p50 | speaker peak RSS MiB (max) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range order {
		var ins, app, wd, ca, cw []time.Duration
		var hwm int64
		for _, s := range results[name] {
			ins = append(ins, s.install)
			app = append(app, s.applyAnnounce)
			wd = append(wd, s.withdraw)
			ca = append(ca, s.cpuAnnounce)
			cw = append(cw, s.cpuWithdraw)
			hwm = max(hwm, s.hwmKiB)
		}
		if len(ins) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %v | %v | %v | %v | %v | %.2f | %.2f | %.1f |\n", name, len(ins),
			ms(pct(ins, .5)), ms(slices.Max(ins)), ms(pct(app, .5)), ms(pct(wd, .5)), ms(slices.Max(wd)),
			pct(ca, .5).Seconds(), pct(cw, .5).Seconds(), float64(hwm)/1024)
	}
	fmt.Fprintf(&b, "\nInstall: the speaker's Apply call with %d /32s of 198.18.0.0/15 → all in the router's kernel table; withdraw: Apply without them → none left (netlink dumps every %v). "+
		"CPU: the speaker's user+system time from just before the Apply until the router's table is complete/empty; peak RSS: VmHWM at the end of the run (a fresh speaker process per run). "+
		"Reference rows: FRR's zebra + bgpd in the node (redistribute kernel) instead of Loadstone; their \"Apply\" is `ip -batch` adding/deleting the %d blackhole routes in the node's kernel, CPU and RSS are zebra's + bgpd's. "+
		"Target: all installed < 5 s.\n", n, pollEvery, n)
	return b.String()
}

// frrRefBGPD is the reference speaker in the node netns: FRR's bgpd announcing, with next
// hop self, whatever kernel routes zebra sees (the benchmark adds blackhole /32s).
const frrRefBGPD = `frr defaults traditional
hostname lsb9-node
log stdout warnings
!
router bgp 64600
 bgp router-id 192.0.2.10
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 192.0.2.1 remote-as 64500
 neighbor 192.0.2.1 timers 3 9
 neighbor 192.0.2.1 timers connect 1
 !
 address-family ipv4 unicast
  redistribute kernel
  neighbor 192.0.2.1 activate
 exit-address-family
!
`

// runRefOnce is one run of the reference speaker: a fresh zebra + bgpd in the node netns;
// "Apply" is `ip -batch` adding (then deleting) the N blackhole routes in the node's
// kernel, which zebra hands to bgpd. CPU and peak RSS are zebra's and bgpd's together.
func runRefOnce(tb testing.TB, l *b9Lab, n int) b9Sample {
	tb.Helper()
	if c := l.count(tb); c != 0 {
		tb.Fatalf("router has %d routes in %v before the run", c, benchRange)
	}
	dir, procs := l.startFRRIn(tb, l.node, frrRefBGPD)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	waitRefEstablished(tb, dir)
	time.Sleep(time.Second)
	var adds, dels strings.Builder
	a := benchRange.Addr()
	for range n {
		fmt.Fprintf(&adds, "route add blackhole %s/32\n", a)
		fmt.Fprintf(&dels, "route del blackhole %s/32\n", a)
		a = a.Next()
	}
	batch := func(what, cmds string) (time.Time, time.Duration) {
		f := filepath.Join(l.dir, "ref-"+what+".batch")
		if err := os.WriteFile(f, []byte(cmds), 0o644); err != nil {
			tb.Fatal(err)
		}
		t0 := time.Now()
		run(tb, "ip", "-n", l.node, "-batch", f)
		return t0, time.Since(t0)
	}
	var s b9Sample
	cpu0 := procsCPU(tb, procs)
	t0, took := batch("add", adds.String())
	s.install = l.waitCount(tb, func(c int) bool { return c == n }, fmt.Sprintf("all %d routes installed", n)).Sub(t0)
	s.applyAnnounce = took
	s.cpuAnnounce = procsCPU(tb, procs) - cpu0

	time.Sleep(time.Second)
	cpu0 = procsCPU(tb, procs)
	t0, took = batch("del", dels.String())
	s.withdraw = l.waitCount(tb, func(c int) bool { return c == 0 }, "all routes withdrawn").Sub(t0)
	s.applyWithdraw = took
	s.cpuWithdraw = procsCPU(tb, procs) - cpu0
	for _, p := range procs {
		s.hwmKiB += procHWM(tb, p.p.Pid)
	}
	return s
}

// waitRefEstablished waits until the reference bgpd's session to the router is up.
func waitRefEstablished(tb testing.TB, vtyDir string) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		out, err := exec.Command("vtysh", "--vty_socket", vtyDir, "-c", "show bgp neighbors "+routerAddr+" json").CombinedOutput()
		last = string(out)
		var nb map[string]struct {
			BGPState string `json:"bgpState"`
		}
		if err == nil && json.Unmarshal(out, &nb) == nil && nb[routerAddr].BGPState == "Established" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("reference bgpd: session not established within 2 minutes: %s", tail(last, 500))
}

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat's times (100 on Linux).
const clockTick = 10 * time.Millisecond

// procsCPU returns the processes' user+system CPU time so far (/proc/PID/stat).
func procsCPU(tb testing.TB, ps []*proc) time.Duration {
	tb.Helper()
	var sum time.Duration
	for _, p := range ps {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.p.Pid))
		if err != nil {
			tb.Fatalf("CPU time of %d: %v", p.p.Pid, err)
		}
		// Fields after the command name (which may hold spaces) start at field 3 (state);
		// utime and stime are fields 14 and 15.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			tb.Fatalf("CPU time of %d: short stat %q", p.p.Pid, b)
		}
		for _, v := range f[11:13] {
			t, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatalf("CPU time of %d: %v", p.p.Pid, err)
			}
			sum += time.Duration(t) * clockTick
		}
	}
	return sum
}

// procHWM returns the process's peak RSS in KiB (VmHWM).
func procHWM(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("peak RSS of %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				if k, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return k
				}
			}
		}
	}
	tb.Fatalf("peak RSS of %d: no VmHWM", pid)
	return 0
}
