package bfd

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"
)

// memNet is an in-memory network between Managers: a faithful stand-in for UDP on one
// link (datagrams, source and destination addresses, TTL 255, loss on demand).
type memNet struct {
	mu        sync.Mutex
	listeners map[netip.Addr]*memListener // by the address it serves
	drop      bool
}

type memHost struct {
	net   *memNet
	addrs []netip.Addr
}

type memListener struct {
	v6   bool
	in   chan Datagram
	data chan []byte
	done chan struct{}
	once sync.Once
}

func newMemNet() *memNet { return &memNet{listeners: map[netip.Addr]*memListener{}} }

func (n *memNet) host(addrs ...netip.Addr) *memHost { return &memHost{net: n, addrs: addrs} }

func (h *memHost) Listen(v6 bool) (Listener, error) {
	l := &memListener{v6: v6, in: make(chan Datagram, 256), data: make(chan []byte, 256), done: make(chan struct{})}
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	for _, a := range h.addrs {
		if a.Is6() == v6 {
			h.net.listeners[a] = l
		}
	}
	return l, nil
}

func (h *memHost) Dial(local, peer netip.Addr) (Sender, error) {
	if !local.IsValid() {
		for _, a := range h.addrs {
			if a.Is4() == peer.Is4() {
				local = a
			}
		}
	}
	return &memSender{net: h.net, local: local, peer: peer}, nil
}

func (l *memListener) ReadFrom(b []byte) (Datagram, error) {
	select {
	case d := <-l.in:
		data := <-l.data
		d.N = copy(b, data)
		return d, nil
	case <-l.done:
		return Datagram{}, errors.New("closed")
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// inject delivers a datagram as if it came from src with the given TTL.
func (n *memNet) inject(src, dst netip.Addr, ttl int, b []byte) {
	n.mu.Lock()
	l := n.listeners[dst]
	n.mu.Unlock()
	if l == nil {
		return
	}
	select {
	case <-l.done:
	default:
		l.in <- Datagram{Src: src, Dst: dst, TTL: ttl}
		l.data <- b
	}
}

type memSender struct {
	net         *memNet
	local, peer netip.Addr
}

func (s *memSender) Send(b []byte) error {
	s.net.mu.Lock()
	drop := s.net.drop
	s.net.mu.Unlock()
	if !drop {
		s.net.inject(s.local, s.peer, 255, append([]byte(nil), b...))
	}
	return nil
}

func (s *memSender) LocalAddr() netip.Addr { return s.local }
func (s *memSender) Close() error          { return nil }

type memManager struct {
	*Manager
	mu      sync.Mutex
	changes []Change
	reg     *prometheus.Registry
}

func newMemManager(t *testing.T, clk *clocktesting.FakeClock, h *memHost) *memManager {
	t.Helper()
	mm := &memManager{reg: prometheus.NewRegistry()}
	m, err := New(Config{Clock: clk, Network: h, Registerer: mm.reg, OnChange: func(c Change) {
		// OnChange runs without the Manager's locks: it may look at the sessions.
		_ = mm.Sessions()
		mm.mu.Lock()
		mm.changes = append(mm.changes, c)
		mm.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	mm.Manager = m
	t.Cleanup(func() { _ = m.Close() })
	return mm
}

func (m *memManager) state(peer netip.Addr) Status {
	for _, s := range m.Sessions() {
		if s.Peer == peer {
			return s
		}
	}
	return Status{}
}

// advance steps the fake clock in 10 ms steps until cond holds (bounded in fake time).
func advance(t *testing.T, clk *clocktesting.FakeClock, what string, cond func() (bool, string)) {
	t.Helper()
	var state string
	for range 3000 { // 30 s of fake time
		var ok bool
		if ok, state = cond(); ok {
			return
		}
		clk.Step(10 * time.Millisecond)
		time.Sleep(200 * time.Microsecond) // let the loop run
	}
	t.Fatalf("waiting for %s; last state %s", what, state)
}

func TestManagerInMemory(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	n := newMemNet()
	a := newMemManager(t, clk, n.host(addrA, addrA6))
	b := newMemManager(t, clk, n.host(addrB, addrB6))
	if err := a.Set([]SessionConfig{fastSession(addrB, netip.Addr{}), fastSession(addrB6, netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]SessionConfig{fastSession(addrA, addrB), fastSession(addrA6, addrB6)}); err != nil {
		t.Fatal(err)
	}
	advance(t, clk, "all Up", func() (bool, string) {
		s := fmt.Sprint(a.Sessions(), b.Sessions())
		return a.state(addrB).State == StateUp && a.state(addrB6).State == StateUp &&
			b.state(addrA).State == StateUp && b.state(addrA6).State == StateUp, s
	})
	if got := a.state(addrB).Local; got != addrA {
		t.Errorf("chosen local %s, want %s", got, addrA)
	}

	// Bad input for Set changes nothing.
	for _, bad := range [][]SessionConfig{
		{fastSession(addrB, netip.Addr{}), fastSession(addrB, netip.Addr{})},
		{{Peer: addrB, DesiredMinTx: time.Second, DetectMult: 0}},
		{{Peer: addrB, DesiredMinTx: time.Second, DetectMult: 3, MinimumTTL: 256}},
		{{DesiredMinTx: time.Second, DetectMult: 3}},
	} {
		if err := a.Set(bad); err == nil {
			t.Errorf("Set(%+v) accepted", bad)
		}
	}

	// Discards, each counted under its reason, none reaching a session.
	before := a.state(addrB)
	valid := Packet{State: StateUp, DetectMult: 3, MyDiscriminator: before.RemoteDiscriminator, YourDiscriminator: before.LocalDiscriminator,
		DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond}
	unknownDiscr := valid
	unknownDiscr.YourDiscriminator = before.LocalDiscriminator + 1
	unknownAddr := valid
	unknownAddr.YourDiscriminator, unknownAddr.State = 0, StateDown
	for _, tc := range []struct {
		reason string
		src    netip.Addr
		ttl    int
		b      []byte
	}{
		{discardBadPacket, addrB, 255, []byte{1, 2, 3}},
		{discardLowTTL, addrB, 254, valid.Marshal()},
		{discardUnknownSession, addrB, 255, unknownDiscr.Marshal()},
		{discardUnknownSession, netip.MustParseAddr("192.0.2.99"), 255, unknownAddr.Marshal()},
		{discardUnknownSession, netip.MustParseAddr("192.0.2.99"), 255, valid.Marshal()}, // right discriminator, wrong peer
	} {
		c := a.metrics.discarded.WithLabelValues(tc.reason)
		want := testutil.ToFloat64(c) + 1
		n.inject(tc.src, addrA, tc.ttl, tc.b)
		advance(t, clk, "discard "+tc.reason, func() (bool, string) {
			return testutil.ToFloat64(c) == want, fmt.Sprint(testutil.ToFloat64(c))
		})
	}

	// Parameters change in place: same discriminator, new timers, no transition.
	a.mu.Lock()
	nChanges := len(a.changes)
	a.mu.Unlock()
	slow := fastSession(addrB, netip.Addr{})
	slow.DesiredMinTx, slow.RequiredMinRx = 300*time.Millisecond, 200*time.Millisecond
	if err := a.Set([]SessionConfig{slow, fastSession(addrB6, netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	advance(t, clk, "new timers negotiated", func() (bool, string) {
		st, sb := a.state(addrB), b.state(addrA)
		return st.TxInterval == 300*time.Millisecond && sb.TxInterval == 200*time.Millisecond && sb.DetectionTime == 900*time.Millisecond,
			fmt.Sprintf("%+v / %+v", st, sb)
	})
	if st := a.state(addrB); st.LocalDiscriminator != before.LocalDiscriminator || st.State != StateUp {
		t.Errorf("update replaced the session: %+v → %+v", before, st)
	}
	a.mu.Lock()
	if len(a.changes) != nChanges {
		t.Errorf("update caused transitions: %+v", a.changes[nChanges:])
	}
	a.mu.Unlock()

	// Removal: AdminDown tells b at once (diag 3), and a reports its own AdminDown.
	if err := a.Set([]SessionConfig{slow}); err != nil {
		t.Fatal(err)
	}
	advance(t, clk, "b's IPv6 session Down by AdminDown", func() (bool, string) {
		st := b.state(addrA6)
		return st.State == StateDown && st.LocalDiag == DiagNeighborDown, fmt.Sprintf("%+v", st)
	})
	advance(t, clk, "a reports the AdminDown", func() (bool, string) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, c := range a.changes {
			if c.Peer == addrB6 && c.New == StateAdminDown && c.Diag == DiagAdminDown {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", a.changes)
	})

	// Silent loss: detection time expiry on both sides, in order Up → Down for a.
	n.mu.Lock()
	n.drop = true
	n.mu.Unlock()
	advance(t, clk, "Down by detection", func() (bool, string) {
		st, sb := a.state(addrB), b.state(addrA)
		return st.State == StateDown && st.LastDownDiag == DiagControlDetectionExpired && sb.State == StateDown,
			fmt.Sprintf("%+v / %+v", st, sb)
	})
	a.mu.Lock()
	var seq []State
	for _, c := range a.changes {
		if c.Peer == addrB {
			seq = append(seq, c.New)
		}
	}
	a.mu.Unlock()
	if len(seq) < 2 || seq[len(seq)-1] != StateDown || seq[len(seq)-2] != StateUp {
		t.Errorf("a's transitions to %s: %v, want ... Up, Down", addrB, seq)
	}
	if v := testutil.ToFloat64(a.metrics.transitions.WithLabelValues(addrB.String(), "Down")); v != 1 {
		t.Errorf("transitions{to=Down} = %v, want 1", v)
	}
}

// OnChange may call Set (here: the same configuration, a no-op) and Sessions, and Close
// still returns while transitions keep coming.
func TestManagerOnChangeCallsSet(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	n := newMemNet()
	cfg := []SessionConfig{fastSession(addrB, netip.Addr{})}
	var m *Manager
	var mu sync.Mutex
	var calls []error
	ready := make(chan struct{})
	a, err := New(Config{Clock: clk, Network: n.host(addrA), OnChange: func(Change) {
		<-ready
		err := m.Set(cfg)
		mu.Lock()
		calls = append(calls, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	m = a
	close(ready)
	b := newMemManager(t, clk, n.host(addrB))
	if err := b.Set([]SessionConfig{fastSession(addrA, addrB)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(cfg); err != nil {
		t.Fatal(err)
	}
	advance(t, clk, "Up", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range a.Sessions() {
			if s.State == StateUp {
				return true, ""
			}
		}
		return false, fmt.Sprint(a.Sessions(), calls)
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range calls {
		if err != nil && err.Error() != "bfd: manager closed" {
			t.Errorf("Set from OnChange: %v", err)
		}
	}
	if len(calls) == 0 {
		t.Error("OnChange never called")
	}
}

// countingNet counts the receive sockets open per family.
type countingNet struct {
	Network
	mu   sync.Mutex
	open map[bool]int
}

type countedListener struct {
	Listener
	n    *countingNet
	v6   bool
	once sync.Once
}

func (c *countingNet) Listen(v6 bool) (Listener, error) {
	l, err := c.Network.Listen(v6)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.open[v6]++
	c.mu.Unlock()
	return &countedListener{Listener: l, n: c, v6: v6}, nil
}

func (l *countedListener) Close() error {
	l.once.Do(func() {
		l.n.mu.Lock()
		l.n.open[l.v6]--
		l.n.mu.Unlock()
	})
	return l.Listener.Close()
}

func (c *countingNet) count() map[bool]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[bool]int{false: c.open[false], true: c.open[true]}
}

// An idle Manager holds no port 3784: a family's receive socket opens with its first
// session and closes with its last (the host may run another BFD daemon).
func TestListenersFollowSessions(t *testing.T) {
	n := newMemNet()
	cn := &countingNet{Network: n.host(addrA, addrA6), open: map[bool]int{}}
	m, err := New(Config{Clock: clocktesting.NewFakeClock(time.Unix(0, 0)), Network: cn})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := func(v4, v6 int) {
		t.Helper()
		if got := cn.count(); got[false] != v4 || got[true] != v6 {
			t.Errorf("open receive sockets: IPv4 %d, IPv6 %d; want %d, %d", got[false], got[true], v4, v6)
		}
	}
	want(0, 0)
	cfg := func(peer netip.Addr) SessionConfig {
		return SessionConfig{Peer: peer, DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3}
	}
	if err := m.Set([]SessionConfig{cfg(addrB)}); err != nil {
		t.Fatal(err)
	}
	want(1, 0)
	if err := m.Set([]SessionConfig{cfg(addrB), cfg(addrB6)}); err != nil {
		t.Fatal(err)
	}
	want(1, 1)
	if err := m.Set([]SessionConfig{cfg(addrB6)}); err != nil {
		t.Fatal(err)
	}
	want(0, 1)
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	want(0, 0)
	if err := m.Set([]SessionConfig{cfg(addrB)}); err != nil {
		t.Fatal(err)
	}
	want(1, 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	want(0, 0)
}
