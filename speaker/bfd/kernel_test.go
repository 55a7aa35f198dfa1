package bfd

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"

	"github.com/loadstone-lb/loadstone/internal/netnstest"
	"github.com/loadstone-lb/loadstone/internal/nsthread"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

var (
	addrA  = netip.MustParseAddr("192.0.2.1")
	addrB  = netip.MustParseAddr("192.0.2.2")
	addrA6 = netip.MustParseAddr("2001:db8:1::1")
	addrB6 = netip.MustParseAddr("2001:db8:1::2")
)

// nsPair is two fresh network namespaces, a and b, joined by a veth.
type nsPair struct {
	a, b     string
	ifA, ifB string
	nsA, nsB netns.NsHandle
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	return netnstest.Run(t, args...)
}

func newNSPair(t *testing.T) *nsPair {
	t.Helper()
	netnstest.Skip(t)
	sfx := netnstest.Suffix()
	p := &nsPair{a: "lsbfd-a-" + sfx, b: "lsbfd-b-" + sfx, ifA: "lsbfa" + sfx, ifB: "lsbfb" + sfx}
	for _, ns := range []string{p.a, p.b} {
		netnstest.New(t, ns)
	}
	sh(t, "ip", "link", "add", p.ifA, "netns", p.a, "type", "veth", "peer", "name", p.ifB, "netns", p.b)
	sh(t, "ip", "-n", p.a, "addr", "add", addrA.String()+"/24", "dev", p.ifA)
	sh(t, "ip", "-n", p.a, "addr", "add", addrA6.String()+"/64", "dev", p.ifA, "nodad")
	sh(t, "ip", "-n", p.b, "addr", "add", addrB.String()+"/24", "dev", p.ifB)
	sh(t, "ip", "-n", p.b, "addr", "add", addrB6.String()+"/64", "dev", p.ifB, "nodad")
	sh(t, "ip", "-n", p.a, "link", "set", p.ifA, "up")
	sh(t, "ip", "-n", p.b, "link", "set", p.ifB, "up")
	var err error
	if p.nsA, err = netns.GetFromName(p.a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.nsA.Close() })
	if p.nsB, err = netns.GetFromName(p.b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.nsB.Close() })
	return p
}

// nsNetwork is UDPNetwork with every socket created inside ns.
type nsNetwork struct{ ns netns.NsHandle }

func (n nsNetwork) Listen(v6 bool) (l Listener, err error) {
	err = nsthread.Do(n.ns, func() (err error) {
		l, err = UDPNetwork{}.Listen(v6)
		return err
	})
	return l, err
}

func (n nsNetwork) Dial(local, peer netip.Addr) (s Sender, err error) {
	err = nsthread.Do(n.ns, func() (err error) {
		s, err = UDPNetwork{}.Dial(local, peer)
		return err
	})
	return s, err
}

// changes records a Manager's transitions.
type changes struct {
	mu  sync.Mutex
	all []Change
}

func (c *changes) add(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, ch)
}

func (c *changes) seen(peer netip.Addr, to State, diag Diag) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.all {
		if ch.Peer == peer && ch.New == to && ch.Diag == diag {
			return true
		}
	}
	return false
}

type testManager struct {
	*Manager
	changes *changes
	reg     *prometheus.Registry
}

func startManager(t *testing.T, ns netns.NsHandle, name string) *testManager {
	t.Helper()
	c := &changes{}
	reg := prometheus.NewRegistry()
	m, err := New(Config{
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("manager", name),
		Registerer: reg,
		Network:    nsNetwork{ns},
		OnChange:   c.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &testManager{Manager: m, changes: c, reg: reg}
}

func (m *testManager) status(peer netip.Addr) (Status, bool) {
	for _, s := range m.Sessions() {
		if s.Peer == peer {
			return s, true
		}
	}
	return Status{}, false
}

func (m *testManager) waitState(t *testing.T, peer netip.Addr, want State) Status {
	t.Helper()
	var st Status
	testwait.For(t, fmt.Sprintf("session to %s %s", peer, want), 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		var ok bool
		st, ok = m.status(peer)
		return ok && st.State == want, fmt.Sprintf("%+v", st)
	})
	return st
}

func fastSession(peer, local netip.Addr) SessionConfig {
	return SessionConfig{Peer: peer, Local: local, DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3}
}

// Two Managers in two namespaces bring IPv4 and IPv6 sessions Up, detect a link cut
// on both sides, come back Up, and one's Close takes the other Down with diag 3.
func TestKernelTwoManagers(t *testing.T) {
	p := newNSPair(t)
	a := startManager(t, p.nsA, "a")
	b := startManager(t, p.nsB, "b")
	// a chooses its source addresses; b names them.
	if err := a.Set([]SessionConfig{fastSession(addrB, netip.Addr{}), fastSession(addrB6, netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]SessionConfig{fastSession(addrA, addrB), fastSession(addrA6, addrB6)}); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []netip.Addr{addrB, addrB6} {
		st := a.waitState(t, peer, StateUp)
		if want := map[bool]netip.Addr{true: addrA, false: addrA6}[peer.Is4()]; st.Local != want {
			t.Errorf("session to %s chose local %s, want %s", peer, st.Local, want)
		}
	}
	b.waitState(t, addrA, StateUp)
	b.waitState(t, addrA6, StateUp)
	// After the Poll both run at the configured 100 ms.
	testwait.For(t, "negotiated 100ms", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		st, _ := a.status(addrB)
		return st.TxInterval == 100*time.Millisecond && st.DetectionTime == 300*time.Millisecond, fmt.Sprintf("%+v", st)
	})
	if !a.changes.seen(addrB, StateUp, DiagNone) || !b.changes.seen(addrA6, StateUp, DiagNone) {
		t.Errorf("OnChange missed the Up transitions: %+v", a.changes.all)
	}
	if n := testutil.ToFloat64(a.metrics.sessions.WithLabelValues("Up")); n != 2 {
		t.Errorf("sessions{state=Up} = %v, want 2", n)
	}

	// Link cut (silent loss both ways, as nft drops BFD in a): both ends detect it.
	cutBFD(t, p.a)
	for _, m := range []*testManager{a, b} {
		for _, peer := range map[*testManager][]netip.Addr{a: {addrB, addrB6}, b: {addrA, addrA6}}[m] {
			st := m.waitState(t, peer, StateDown)
			if st.LastDownDiag != DiagControlDetectionExpired || st.LastDown.IsZero() {
				t.Errorf("%s after link cut: %+v, want last down diag 1", peer, st)
			}
		}
	}
	restoreBFD(t, p.a)
	a.waitState(t, addrB, StateUp)
	a.waitState(t, addrB6, StateUp)
	b.waitState(t, addrA, StateUp)

	// Removing a's IPv6 session sends AdminDown: b goes Down with diag 3.
	if err := a.Set([]SessionConfig{fastSession(addrB, netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "b's IPv6 session Down with diag 3", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		st, _ := b.status(addrA6)
		return st.State == StateDown && st.LocalDiag == DiagNeighborDown && st.RemoteState == StateAdminDown, fmt.Sprintf("%+v", st)
	})
	if _, ok := a.status(addrB6); ok {
		t.Error("a still has the removed session")
	}
	// Set is idempotent: the same configuration again changes nothing.
	before, _ := a.status(addrB)
	if err := a.Set([]SessionConfig{fastSession(addrB, netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	if after, _ := a.status(addrB); after.LocalDiscriminator != before.LocalDiscriminator || after.State != StateUp {
		t.Errorf("repeated Set replaced or disturbed the session: %+v → %+v", before, after)
	}

	// Closing a: b's IPv4 session goes Down with diag 3 at once, well before detection.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "b's IPv4 session Down with diag 3", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		st, _ := b.status(addrA)
		return st.State == StateDown && st.LocalDiag == DiagNeighborDown, fmt.Sprintf("%+v", st)
	})
}

// Packets that arrive with a TTL below the session's minimum are discarded (GTSM).
func TestKernelMinimumTTL(t *testing.T) {
	p := newNSPair(t)
	a := startManager(t, p.nsA, "a")
	b := startManager(t, p.nsB, "b")
	cfg := fastSession(addrA, addrB)
	if err := b.Set([]SessionConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	// Our own packets leave with TTL 255 and pass b's default minimum of 255.
	if err := a.Set([]SessionConfig{fastSession(addrB, addrA)}); err != nil {
		t.Fatal(err)
	}
	b.waitState(t, addrA, StateUp)
	// Now send b a valid packet with TTL 64 from a plain socket in a.
	err := nsthread.Do(p.nsA, func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrB, Port)))
		if err != nil {
			return err
		}
		defer c.Close()
		if err := ipv4.NewConn(c).SetTTL(64); err != nil {
			return err
		}
		_, err = c.Write(Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 12345, DesiredMinTx: time.Second, RequiredMinRx: time.Second}.Marshal())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "a low-TTL discard", 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		n := testutil.ToFloat64(b.metrics.discarded.WithLabelValues(discardLowTTL))
		return n >= 1, fmt.Sprintf("low_ttl %v", n)
	})
	if st, _ := b.status(addrA); st.State != StateUp || st.RemoteDiscriminator == 12345 {
		t.Errorf("a low-TTL packet reached the session: %+v", st)
	}
}

// bfdd is FRR's bfdd in a namespace.
type bfdd struct {
	ns, dir string
	cmd     *exec.Cmd
}

func bfddConfig(peers ...string) string {
	var b strings.Builder
	b.WriteString("frr defaults traditional\nhostname lsbfd\nlog stdout informational\n!\nbfd\n")
	for _, p := range peers {
		b.WriteString(p)
	}
	b.WriteString("!\n")
	return b.String()
}

func bfddPeer(peer, local netip.Addr, rxMS, txMS, mult int, passive bool) string {
	s := fmt.Sprintf(" peer %s local-address %s\n  receive-interval %d\n  transmit-interval %d\n  detect-multiplier %d\n", peer, local, rxMS, txMS, mult)
	if passive {
		s += "  passive-mode\n"
	}
	return s + " !\n"
}

func newBfdd(t *testing.T, ns, config string) *bfdd {
	t.Helper()
	if _, err := os.Stat("/usr/lib/frr/bfdd"); err != nil {
		t.Skip("FRR's bfdd is not installed")
	}
	// Not t.TempDir: its parent is 0700 and bfdd runs as user frr.
	dir, err := os.MkdirTemp("", "lsbfd-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "bfdd.log")); err == nil {
				t.Logf("bfdd log:\n%s", log)
			}
		}
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bfdd.conf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// FRR drops to user frr: the state directory is theirs.
	sh(t, "chown", "-R", "frr:frr", dir)
	return &bfdd{ns: ns, dir: dir}
}

func (d *bfdd) start(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(d.dir, "bfdd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("ip", "netns", "exec", d.ns, "/usr/lib/frr/bfdd",
		"-f", filepath.Join(d.dir, "bfdd.conf"), "-i", filepath.Join(d.dir, "bfdd.pid"),
		"--vty_socket", d.dir, "-z", filepath.Join(d.dir, "zserv.api"), "-A", "127.0.0.1", "-P", "0",
		"--bfdctl", filepath.Join(d.dir, "bfdd.sock"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	t.Cleanup(func() { d.kill() })
	testwait.For(t, "bfdd's vty", 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		out, err := d.vtysh("show bfd peers json")
		return err == nil, fmt.Sprintf("%v: %s", err, out)
	})
}

// kill ends bfdd with SIGKILL by PID (ip netns exec execs bfdd: same process).
func (d *bfdd) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
	d.cmd = nil
	_ = os.Remove(filepath.Join(d.dir, "bfdd.pid"))
}

func (d *bfdd) vtysh(cmds ...string) (string, error) {
	args := []string{"--vty_socket", d.dir, "-d", "bfdd"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("vtysh", args...).CombinedOutput()
	return string(out), err
}

type frrPeer struct {
	Peer                   string `json:"peer"`
	Status                 string `json:"status"`
	Diagnostic             string `json:"diagnostic"`
	RemoteDiagnostic       string `json:"remote-diagnostic"`
	ID                     uint32 `json:"id"`
	RemoteID               uint32 `json:"remote-id"`
	ReceiveInterval        int    `json:"receive-interval"`
	TransmitInterval       int    `json:"transmit-interval"`
	RemoteReceiveInterval  int    `json:"remote-receive-interval"`
	RemoteTransmitInterval int    `json:"remote-transmit-interval"`
	RemoteDetectMultiplier int    `json:"remote-detect-multiplier"`
	Downtime               int    `json:"downtime"`
	Uptime                 int    `json:"uptime"`
}

func (d *bfdd) peer(addr netip.Addr) (frrPeer, string) {
	out, err := d.vtysh("show bfd peers json")
	if err != nil {
		return frrPeer{}, fmt.Sprintf("%v: %s", err, out)
	}
	var peers []frrPeer
	if err := json.Unmarshal([]byte(out), &peers); err != nil {
		return frrPeer{}, fmt.Sprintf("%v: %s", err, out)
	}
	for _, p := range peers {
		if p.Peer == addr.String() {
			return p, fmt.Sprintf("%+v", p)
		}
	}
	return frrPeer{}, "no such peer: " + out
}

func (d *bfdd) waitStatus(t *testing.T, addr netip.Addr, status string) frrPeer {
	t.Helper()
	var p frrPeer
	testwait.For(t, fmt.Sprintf("bfdd's peer %s %s", addr, status), 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		var s string
		p, s = d.peer(addr)
		return p.Status == status, s
	})
	return p
}

// Our Manager against FRR's bfdd: Up both families, link cut, bfdd killed and
// restarted, Poll Sequences from either side.
func TestKernelFRR(t *testing.T) {
	p := newNSPair(t)
	d := newBfdd(t, p.b, bfddConfig(bfddPeer(addrA, addrB, 100, 100, 3, false), bfddPeer(addrA6, addrB6, 100, 100, 3, false)))
	d.start(t)
	m := startManager(t, p.nsA, "a")
	if err := m.Set([]SessionConfig{fastSession(addrB, addrA), fastSession(addrB6, netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	for _, peer := range []netip.Addr{addrB, addrB6} {
		m.waitState(t, peer, StateUp)
	}
	for _, peer := range []netip.Addr{addrA, addrA6} {
		d.waitStatus(t, peer, "up")
	}
	testwait.For(t, "both sides at 100 ms", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		st, _ := m.status(addrB)
		fp, s := d.peer(addrA)
		return st.TxInterval == 100*time.Millisecond && st.DetectionTime == 300*time.Millisecond &&
			fp.RemoteReceiveInterval == 100 && fp.RemoteTransmitInterval == 100, fmt.Sprintf("ours %+v; frr %s", st, s)
	})

	// transitions counts our session's transitions to addrB: a Poll must cause none.
	transitions := func() int {
		m.changes.mu.Lock()
		defer m.changes.mu.Unlock()
		n := 0
		for _, c := range m.changes.all {
			if c.Peer == addrB {
				n++
			}
		}
		return n
	}

	// Silent loss both ways (nft drops BFD in a's input and output): both sides time out.
	cutBFD(t, p.a)
	st := m.waitState(t, addrB, StateDown)
	if st.LastDownDiag != DiagControlDetectionExpired {
		t.Errorf("after the cut: %+v, want diag 1", st)
	}
	d.waitStatus(t, addrA, "down")
	restoreBFD(t, p.a)
	m.waitState(t, addrB, StateUp)
	d.waitStatus(t, addrA, "up")

	// bfdd killed: detection expiry; restarted: Up again with its new discriminator.
	oldID := st.RemoteDiscriminator
	d.kill()
	st = m.waitState(t, addrB, StateDown)
	if st.LastDownDiag != DiagControlDetectionExpired {
		t.Errorf("after SIGKILL: %+v, want diag 1", st)
	}
	d.start(t)
	st = m.waitState(t, addrB, StateUp)
	m.waitState(t, addrB6, StateUp)
	d.waitStatus(t, addrA, "up")
	if fp, _ := d.peer(addrA); fp.ID != st.RemoteDiscriminator {
		t.Errorf("our remote discriminator %d, bfdd's id %d (was %d)", st.RemoteDiscriminator, fp.ID, oldID)
	}
	testwait.For(t, "back at 100 ms", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		st, _ := m.status(addrB)
		return st.TxInterval == 100*time.Millisecond, fmt.Sprintf("%+v", st)
	})

	// Our Poll: slower TX, slower RX; FRR takes them without going down.
	before := transitions()
	slow := SessionConfig{Peer: addrB, Local: addrA, DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 200 * time.Millisecond, DetectMult: 3}
	if err := m.Set([]SessionConfig{slow, fastSession(addrB6, netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "bfdd sees our new timers", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		fp, s := d.peer(addrA)
		st, _ := m.status(addrB)
		return fp.Status == "up" && fp.RemoteReceiveInterval == 200 && fp.RemoteTransmitInterval == 300 &&
			st.TxInterval == 300*time.Millisecond && st.DetectionTime == 600*time.Millisecond, fmt.Sprintf("frr %s; ours %+v", s, st)
	})
	// Ours: TX max(300, FRR's 100 RX); detection 3 × max(our 200 RX, FRR's 100 TX).
	if n := transitions(); n != before {
		t.Errorf("our Poll caused %d transitions: %+v", n-before, m.changes.all)
	}

	// FRR's Poll: it wants 400 ms in and sends every 350 ms.
	if out, err := d.vtysh("configure terminal", "bfd", fmt.Sprintf("peer %s local-address %s", addrA, addrB),
		"receive-interval 400", "transmit-interval 350"); err != nil {
		t.Fatalf("vtysh: %v\n%s", err, out)
	}
	testwait.For(t, "our session follows bfdd's timers", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		st, _ := m.status(addrB)
		fp, s := d.peer(addrA)
		return st.State == StateUp && st.TxInterval == 400*time.Millisecond && st.DetectionTime == 3*350*time.Millisecond &&
			fp.Status == "up", fmt.Sprintf("ours %+v; frr %s", st, s)
	})
	if n := transitions(); n != before {
		t.Errorf("FRR's Poll caused %d transitions: %+v", n-before, m.changes.all)
	}
	// The IPv6 session was left alone through all of it.
	d.waitStatus(t, addrA6, "up")
}

// Either side may start first, and our passive session waits for bfdd.
func TestKernelFRRStartOrder(t *testing.T) {
	for _, tc := range []struct {
		name           string
		passive        bool
		frrPassive     bool
		ours, frrFirst bool
	}{
		{name: "ours first"},
		{name: "bfdd first", frrFirst: true},
		{name: "ours passive", passive: true},
		{name: "bfdd passive", frrPassive: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newNSPair(t)
			d := newBfdd(t, p.b, bfddConfig(bfddPeer(addrA, addrB, 100, 100, 3, tc.frrPassive)))
			if tc.frrFirst {
				d.start(t)
				d.waitStatus(t, addrA, "down")
			}
			m := startManager(t, p.nsA, "a")
			cfg := fastSession(addrB, addrA)
			cfg.Passive = tc.passive
			if err := m.Set([]SessionConfig{cfg}); err != nil {
				t.Fatal(err)
			}
			if !tc.frrFirst {
				if tc.passive {
					// An observation window, not a timing assertion: nothing may be sent
					// before the peer speaks, however long we wait.
					time.Sleep(2 * time.Second)
					if n := testutil.ToFloat64(m.metrics.sent); n != 0 {
						t.Fatalf("passive session sent %v packets before hearing its peer", n)
					}
				} else {
					testwait.For(t, "our first packets", 30*time.Second, 50*time.Millisecond, func() (bool, string) {
						n := testutil.ToFloat64(m.metrics.sent) + testutil.ToFloat64(m.metrics.sendErrors)
						return n >= 2, fmt.Sprintf("sent %v", n)
					})
				}
				d.start(t)
			}
			m.waitState(t, addrB, StateUp)
			d.waitStatus(t, addrA, "up")
		})
	}
}

// cutBFD drops BFD control packets in and out of ns: a silent link loss for BFD.
func cutBFD(t *testing.T, ns string) {
	t.Helper()
	nft(t, ns, "add table inet lsbfd\n"+
		"add chain inet lsbfd in { type filter hook input priority 0; policy accept; }\n"+
		"add chain inet lsbfd out { type filter hook output priority 0; policy accept; }\n"+
		"add rule inet lsbfd in udp dport 3784 drop\nadd rule inet lsbfd out udp dport 3784 drop\n")
}

func restoreBFD(t *testing.T, ns string) {
	t.Helper()
	nft(t, ns, "delete table inet lsbfd\n")
}

func nft(t *testing.T, ns, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s\n%s", ns, err, script, out)
	}
}
