package bfd

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Config configures a Manager.
type Config struct {
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer, when not nil, registers the package's metrics.
	Registerer prometheus.Registerer
	// Clock drives the timers; nil is the real clock.
	Clock clock.WithTicker
	// OnChange is called on every session state transition, from one goroutine, in
	// order, with no lock of the Manager held (it may call Sessions or Set, not Close,
	// which waits for that goroutine). It should return promptly: timers and received
	// packets wait for it.
	OnChange func(Change)
	// Network creates the sockets; nil is UDPNetwork{}.
	Network Network
}

// SessionConfig is one BFD session, keyed by Peer.
type SessionConfig struct {
	Peer netip.Addr
	// Local is the source address; zero chooses the one the kernel would use towards Peer.
	Local netip.Addr
	// DesiredMinTx, RequiredMinRx and DetectMult are RFC 5880's timers.
	DesiredMinTx, RequiredMinRx time.Duration
	DetectMult                  int
	// Passive: send nothing until the peer has spoken.
	Passive bool
	// MinimumTTL discards packets that arrive with a lower TTL / hop limit (RFC 5881
	// §5, GTSM); zero means 255, the value RFC 5881 requires without authentication.
	MinimumTTL int
}

func (c SessionConfig) params() Params {
	return Params{DesiredMinTx: c.DesiredMinTx, RequiredMinRx: c.RequiredMinRx, DetectMult: c.DetectMult, Passive: c.Passive}
}

func (c SessionConfig) minTTL() int {
	if c.MinimumTTL == 0 {
		return 255
	}
	return c.MinimumTTL
}

// Change is a session state transition.
type Change struct {
	Peer, Local netip.Addr
	Old, New    State
	// Diag is the local diagnostic after the transition: why it went down.
	Diag Diag
	At   time.Time
}

// Status is a session's state as Sessions reports it.
type Status struct {
	Peer, Local         netip.Addr
	State, RemoteState  State
	LocalDiag           Diag
	LastDownDiag        Diag
	LastDown            time.Time // zero: never went down from Up
	UpSince             time.Time // zero: not Up
	TxInterval          time.Duration
	DetectionTime       time.Duration
	LocalDiscriminator  uint32
	RemoteDiscriminator uint32
}

type session struct {
	cfg      SessionConfig
	local    netip.Addr
	core     *Session
	tx       Sender
	reported State
	lastDown time.Time
	downDiag Diag
	upSince  time.Time
}

// key is the sessions map key of a peer: its address without zone, as packets show it.
func key(peer netip.Addr) netip.Addr { return peer.WithZone("") }

type received struct {
	pkt Packet
	dg  Datagram
}

// Manager runs BFD sessions: one receive goroutine per address family and one loop that
// owns the timers, demultiplexes packets and reports transitions.
type Manager struct {
	log      *slog.Logger
	clock    clock.WithTicker
	net      Network
	onChange func(Change)
	metrics  *metrics

	setMu sync.Mutex // serialises Set and Close

	mu       sync.Mutex
	sessions map[netip.Addr]*session // by key(peer)
	byDiscr  map[uint32]*session
	pending  []Change
	closed   bool

	// listeners are the receive sockets by family (true: IPv6), open only while some
	// session of that family exists, so that an idle speaker holds no port 3784 (the host
	// may run another BFD daemon). Guarded by setMu.
	listeners map[bool]*listener
	rx        chan received
	kick      chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup
}

// listener is one family's receive socket and the stop signal of its goroutine.
type listener struct {
	l    Listener
	stop chan struct{}
}

// New starts the Manager with no sessions. Receive sockets open with the first session of
// their family (Set reports a family that cannot listen) and close with the last one.
func New(cfg Config) (*Manager, error) {
	m := &Manager{
		log:       cfg.Logger,
		clock:     cfg.Clock,
		net:       cfg.Network,
		onChange:  cfg.OnChange,
		sessions:  map[netip.Addr]*session{},
		byDiscr:   map[uint32]*session{},
		listeners: map[bool]*listener{},
		rx:        make(chan received, 64),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.clock == nil {
		m.clock = clock.RealClock{}
	}
	if m.net == nil {
		m.net = UDPNetwork{}
	}
	var err error
	if m.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("bfd metrics: %w", err)
	}
	m.wg.Add(1)
	go m.loop()
	return m, nil
}

// listen opens and closes the receive sockets so that exactly the families in need have
// one. Caller holds setMu.
func (m *Manager) listen(need map[bool]bool) []error {
	var errs []error
	for _, v6 := range []bool{false, true} {
		cur := m.listeners[v6]
		switch {
		case need[v6] && cur == nil:
			l, err := m.net.Listen(v6)
			if err != nil {
				errs = append(errs, fmt.Errorf("bfd receive socket: %w", err))
				continue
			}
			ls := &listener{l: l, stop: make(chan struct{})}
			m.listeners[v6] = ls
			m.wg.Add(1)
			go m.receive(ls)
		case !need[v6] && cur != nil:
			close(cur.stop)
			if err := cur.l.Close(); err != nil {
				m.log.Debug("closing a BFD receive socket", "error", err)
			}
			delete(m.listeners, v6)
		}
	}
	return errs
}

// receive reads one family's socket and hands valid packets to the loop.
func (m *Manager) receive(ls *listener) {
	defer m.wg.Done()
	l := ls.l
	buf := make([]byte, 1500)
	for {
		dg, err := l.ReadFrom(buf)
		if err != nil {
			select {
			case <-m.done:
				return
			case <-ls.stop:
				return
			default:
			}
			m.log.Error("BFD receive", "error", err)
			select {
			case <-m.done:
				return
			case <-m.clock.After(100 * time.Millisecond): // no busy loop on a broken socket
			}
			continue
		}
		p, err := Parse(buf[:dg.N])
		if err != nil {
			m.metrics.discarded.WithLabelValues(discardBadPacket).Inc()
			m.log.Debug("BFD packet discarded", "peer", dg.Src, "error", err)
			continue
		}
		select {
		case m.rx <- received{pkt: p, dg: dg}:
		case <-m.done:
			return
		}
	}
}

func (m *Manager) loop() {
	defer m.wg.Done()
	timer := m.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var r *received
		select {
		case <-m.done:
			return
		case x := <-m.rx:
			r = &x
		case <-m.kick:
		case <-timer.C():
		}
		wake := m.step(r)
		d := time.Hour
		if !wake.IsZero() {
			d = max(wake.Sub(m.clock.Now()), 0)
		}
		timer.Stop()
		timer.Reset(d)
	}
}

type outgoing struct {
	tx  Sender
	pkt []byte
}

// step processes one received packet (if any), ticks every session, then sends and
// reports outside the lock. It returns the earliest wake-up.
func (m *Manager) step(r *received) time.Time {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return time.Time{}
	}
	now := m.clock.Now()
	if r != nil {
		m.deliver(now, r)
	}
	var out []outgoing
	var wake time.Time
	for _, s := range m.sessions {
		pkts, w := s.core.Tick(now)
		m.note(now, s)
		for _, p := range pkts {
			out = append(out, outgoing{s.tx, p.Marshal()})
		}
		if !w.IsZero() && (wake.IsZero() || w.Before(wake)) {
			wake = w
		}
	}
	changes := m.pending
	m.pending = nil
	if len(changes) > 0 {
		m.countStates()
	}
	m.mu.Unlock()
	m.send(out)
	for _, c := range changes {
		m.log.Info("BFD session state", "peer", c.Peer, "local", c.Local, "from", c.Old.String(), "to", c.New.String(), "diag", c.Diag.String())
		if m.onChange != nil {
			m.onChange(c)
		}
	}
	return wake
}

// deliver demultiplexes r to its session (RFC 5880 §6.8.6: by Your Discriminator, else
// by addresses) and applies the session's TTL check.
func (m *Manager) deliver(now time.Time, r *received) {
	src := r.dg.Src.WithZone("")
	var s *session
	if d := r.pkt.YourDiscriminator; d != 0 {
		s = m.byDiscr[d]
		if s != nil && s.cfg.Peer.WithZone("") != src {
			s = nil
		}
	} else if c := m.sessions[src]; c != nil && (!r.dg.Dst.IsValid() || c.local.WithZone("") == r.dg.Dst.WithZone("")) {
		s = c
	}
	if s == nil {
		m.metrics.discarded.WithLabelValues(discardUnknownSession).Inc()
		m.log.Debug("BFD packet for no session", "peer", r.dg.Src, "local", r.dg.Dst, "discriminator", r.pkt.YourDiscriminator)
		return
	}
	if r.dg.TTL >= 0 && r.dg.TTL < s.cfg.minTTL() {
		m.metrics.discarded.WithLabelValues(discardLowTTL).Inc()
		m.log.Debug("BFD packet below minimum TTL", "peer", r.dg.Src, "ttl", r.dg.TTL)
		return
	}
	if err := s.core.Receive(now, r.pkt); err != nil {
		m.metrics.discarded.WithLabelValues(discardRejected).Inc()
		return
	}
	m.metrics.received.Inc()
	m.note(now, s)
}

// note records a transition of s, if there was one, for the loop to report.
func (m *Manager) note(now time.Time, s *session) {
	st := s.core.State()
	if st == s.reported {
		return
	}
	c := Change{Peer: s.cfg.Peer, Local: s.local, Old: s.reported, New: st, Diag: s.core.Status().LocalDiag, At: now}
	if s.reported == StateUp {
		s.lastDown, s.downDiag, s.upSince = now, c.Diag, time.Time{}
	}
	if st == StateUp {
		s.upSince = now
	}
	s.reported = st
	m.pending = append(m.pending, c)
	m.metrics.transitions.WithLabelValues(s.cfg.Peer.String(), st.String()).Inc()
}

func (m *Manager) countStates() {
	n := map[State]int{}
	for _, s := range m.sessions {
		n[s.core.State()]++
	}
	for _, st := range []State{StateAdminDown, StateDown, StateInit, StateUp} {
		m.metrics.sessions.WithLabelValues(st.String()).Set(float64(n[st]))
	}
}

func (m *Manager) send(out []outgoing) {
	for _, o := range out {
		if err := o.tx.Send(o.pkt); err != nil {
			// ECONNREFUSED while the peer's bfdd is not listening, for one.
			m.metrics.sendErrors.Inc()
			m.log.Debug("BFD send", "local", o.tx.LocalAddr(), "error", err)
			continue
		}
		m.metrics.sent.Inc()
	}
}

func (m *Manager) wakeLoop() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Set makes the running sessions those of cfgs: it adds new peers, takes removed ones
// AdminDown (one packet with diag 7) and closes them, and changes timers, role and
// minimum TTL in place (a Poll Sequence when Up, no teardown). A changed Local address
// replaces the session. Set is idempotent; a session it could not open is reported in
// the error and tried again by the next Set.
func (m *Manager) Set(cfgs []SessionConfig) error {
	want := map[netip.Addr]SessionConfig{}
	for _, c := range cfgs {
		if !c.Peer.IsValid() {
			return errors.New("bfd: session without a peer address")
		}
		if err := c.params().Validate(); err != nil {
			return fmt.Errorf("bfd session to %s: %w", c.Peer, err)
		}
		if c.MinimumTTL < 0 || c.MinimumTTL > 255 {
			return fmt.Errorf("bfd session to %s: minimum TTL %d not in 0..255", c.Peer, c.MinimumTTL)
		}
		c.Peer = c.Peer.Unmap()
		if _, dup := want[key(c.Peer)]; dup {
			return fmt.Errorf("bfd: two sessions to %s", c.Peer)
		}
		want[key(c.Peer)] = c
	}
	m.setMu.Lock()
	defer m.setMu.Unlock()

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("bfd: manager closed")
	}
	var add []SessionConfig
	var remove []*session
	for p, s := range m.sessions {
		if c, ok := want[p]; !ok || c.Local != s.cfg.Local {
			remove = append(remove, s)
		}
	}
	for p, c := range want {
		if s, ok := m.sessions[p]; !ok || c.Local != s.cfg.Local {
			add = append(add, c)
		}
	}
	m.mu.Unlock()

	// Sockets outside the lock; the loop keeps running.
	need := map[bool]bool{}
	for _, c := range want {
		need[c.Peer.Is6()] = true
	}
	errs := m.listen(need)
	type opened struct {
		cfg SessionConfig
		tx  Sender
	}
	var open []opened
	for _, c := range add {
		tx, err := m.net.Dial(c.Local, c.Peer)
		if err != nil {
			errs = append(errs, fmt.Errorf("bfd session to %s: %w", c.Peer, err))
			continue
		}
		open = append(open, opened{c, tx})
	}

	m.mu.Lock()
	now := m.clock.Now()
	var out []outgoing
	var closing []Sender
	for _, s := range remove {
		out = append(out, m.stop(now, s)...)
		closing = append(closing, s.tx)
		delete(m.sessions, key(s.cfg.Peer))
		delete(m.byDiscr, s.core.localDiscr)
	}
	for p, c := range want {
		if s, ok := m.sessions[p]; ok && s.cfg != c {
			s.cfg = c
			s.core.Configure(now, c.params())
		}
	}
	for _, o := range open {
		discr := rand.Uint32()
		for discr == 0 || m.byDiscr[discr] != nil {
			discr = rand.Uint32()
		}
		s := &session{
			cfg:      o.cfg,
			local:    o.tx.LocalAddr(),
			tx:       o.tx,
			core:     NewSession(now, discr, o.cfg.params(), rand.NewPCG(rand.Uint64(), rand.Uint64())),
			reported: StateDown,
		}
		m.sessions[key(o.cfg.Peer)] = s
		m.byDiscr[discr] = s
		m.log.Info("BFD session added", "peer", s.cfg.Peer, "local", s.local, "discriminator", discr, "passive", o.cfg.Passive)
	}
	m.countStates()
	m.mu.Unlock()

	m.send(out)
	for _, tx := range closing {
		tx.Close()
	}
	m.wakeLoop()
	return errors.Join(errs...)
}

// stop takes s AdminDown and returns the packet telling the peer. Caller holds mu.
func (m *Manager) stop(now time.Time, s *session) []outgoing {
	s.core.AdminDown(now)
	m.note(now, s)
	pkts, _ := s.core.Tick(now)
	out := make([]outgoing, 0, len(pkts))
	for _, p := range pkts {
		out = append(out, outgoing{s.tx, p.Marshal()})
	}
	m.log.Info("BFD session removed", "peer", s.cfg.Peer, "local", s.local)
	return out
}

// Sessions returns the status of every session, in no particular order.
func (m *Manager) Sessions() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.sessions))
	for _, s := range m.sessions {
		st := s.core.Status()
		out = append(out, Status{
			Peer:                s.cfg.Peer,
			Local:               s.local,
			State:               st.State,
			RemoteState:         st.RemoteState,
			LocalDiag:           st.LocalDiag,
			LastDownDiag:        s.downDiag,
			LastDown:            s.lastDown,
			UpSince:             s.upSince,
			TxInterval:          st.TxInterval,
			DetectionTime:       st.DetectionTime,
			LocalDiscriminator:  st.LocalDiscriminator,
			RemoteDiscriminator: st.RemoteDiscriminator,
		})
	}
	return out
}

// Close sends AdminDown (diag 7) on every session, closes every socket and stops the
// goroutines. OnChange is not called for these last transitions.
func (m *Manager) Close() error {
	// setMu only while marking closed: an OnChange blocked in Set must not keep the
	// loop, which wg.Wait below waits for, from ending.
	m.setMu.Lock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.setMu.Unlock()
		return nil
	}
	m.closed = true
	now := m.clock.Now()
	var out []outgoing
	for _, s := range m.sessions {
		out = append(out, m.stop(now, s)...)
	}
	sessions := m.sessions
	m.sessions, m.byDiscr, m.pending = map[netip.Addr]*session{}, map[uint32]*session{}, nil
	m.countStates()
	m.mu.Unlock()
	m.setMu.Unlock()

	m.send(out)
	close(m.done)
	var errs []error
	m.setMu.Lock()
	for v6, ls := range m.listeners {
		close(ls.stop)
		errs = append(errs, ls.l.Close())
		delete(m.listeners, v6)
	}
	m.setMu.Unlock()
	for _, s := range sessions {
		errs = append(errs, s.tx.Close())
	}
	m.wg.Wait()
	return errors.Join(errs...)
}
