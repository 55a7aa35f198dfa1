package members

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Timing holds the failure-detection settings. FastTiming is the default.
type Timing struct {
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	IndirectChecks          int
	GossipInterval          time.Duration
	GossipNodes             int
	RetransmitMult          int
	PushPullInterval        time.Duration
	TCPTimeout              time.Duration
	AwarenessMaxMultiplier  int
	RejoinInterval          time.Duration
	StartupGrace            time.Duration
}

// FastTiming is tuned for sub-second detection of a crashed speaker on a LAN; the
// reasoning is in docs/speaker.md. With n ≤ 10 nodes memberlist's suspicion timeout is
// SuspicionMult × ProbeInterval = 160 ms, fixed: with SuspicionMult 2 memberlist expects
// no confirmations (k = SuspicionMult − 2 = 0), so Lifeguard's longer start
// (SuspicionMaxTimeoutMult) does not apply. A crash is declared dead about one probe
// interval (80 ms) + 160 ms after the first failed probe.
func FastTiming() Timing {
	return Timing{
		ProbeInterval:           80 * time.Millisecond,
		ProbeTimeout:            60 * time.Millisecond,
		SuspicionMult:           2,
		SuspicionMaxTimeoutMult: 2,
		IndirectChecks:          2,
		GossipInterval:          20 * time.Millisecond,
		GossipNodes:             3,
		RetransmitMult:          4,
		PushPullInterval:        5 * time.Second,
		TCPTimeout:              1 * time.Second,
		AwarenessMaxMultiplier:  3,
		RejoinInterval:          1 * time.Second,
		StartupGrace:            10 * time.Second,
	}
}

// Config configures Start.
type Config struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// NodeName is this node's name; it must be unique (the Node name).
	NodeName string
	// BindAddr and BindPort: where to listen (TCP and UDP). Port 0 picks a free port.
	BindAddr string
	BindPort int
	// AdvertiseAddr is the address others reach us on; empty: memberlist picks.
	AdvertiseAddr string
	// Key encrypts gossip: 16, 24 or 32 bytes. Nil disables encryption (tests only).
	Key []byte
	// SecondaryKeys are accepted for decryption as well (a rotation in progress).
	SecondaryKeys [][]byte
	// KeySwitchDelay: see SetKeys (0: DefaultKeySwitchDelay).
	KeySwitchDelay time.Duration
	// MACs are this node's link-layer addresses, published in the member metadata (at most
	// 80): a duplicate-owner report names the other node by its MAC.
	MACs []net.HardwareAddr
	// Peers returns the addresses ("host" or "host:port") of other speakers.
	Peers func(context.Context) ([]string, error)
	// Timing; zero value means FastTiming().
	Timing Timing
}

// State of a member as last seen.
type State int

const (
	// StateAlive: the member answers probes.
	StateAlive State = iota + 1
	// StateDead: the member failed probes and suspicion, or left.
	StateDead
	// StateLeft: the member left gracefully.
	StateLeft
)

// Member is one speaker.
type Member struct {
	Name string
	Addr string
	// MACs are the link-layer addresses the member publishes.
	MACs  []net.HardwareAddr
	State State
}

// Members is a running membership.
type Members struct {
	cfg     Config
	log     *slog.Logger
	ml      *memberlist.Memberlist
	m       *metrics
	changes chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	meta    *metaDelegate

	mu       sync.Mutex
	states   map[string]Member
	everPeer bool
	// discovered is the number of peer addresses the last discovery returned.
	discovered int
	// arrivals counts peers becoming alive (joining, or coming back from dead or left).
	arrivals uint64
	degraded bool
	stopped  bool

	keyMu    sync.Mutex // serializes keyring changes
	keyring  *memberlist.Keyring
	keys     *keyPlanner
	keyClock func() time.Time
}

// Start creates the memberlist, joins the discovered peers and starts the rejoin loop.
func Start(ctx context.Context, cfg Config) (*Members, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = FastTiming()
	}
	if cfg.NodeName == "" {
		return nil, errors.New("members: NodeName is required")
	}
	if cfg.Peers == nil {
		cfg.Peers = func(context.Context) ([]string, error) { return nil, nil }
	}
	if cfg.KeySwitchDelay <= 0 {
		cfg.KeySwitchDelay = DefaultKeySwitchDelay
	}
	for _, k := range append([][]byte{cfg.Key}, cfg.SecondaryKeys...) {
		if n := len(k); k != nil && n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("members: gossip key is %d bytes, want 16, 24 or 32", n)
		}
	}
	if cfg.Key == nil && len(cfg.SecondaryKeys) > 0 {
		return nil, errors.New("members: secondary keys without a primary key")
	}
	m := &Members{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer),
		changes: make(chan struct{}, 1), states: map[string]Member{}, done: make(chan struct{}),
		keys: newKeyPlanner(cfg.KeySwitchDelay), keyClock: time.Now}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	if mc.BindAddr == "" {
		mc.BindAddr = "0.0.0.0"
	}
	mc.BindPort = cfg.BindPort
	mc.AdvertisePort = cfg.BindPort
	if cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr = cfg.AdvertiseAddr
	}
	t := cfg.Timing
	mc.ProbeInterval, mc.ProbeTimeout = t.ProbeInterval, t.ProbeTimeout
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = t.SuspicionMult, t.SuspicionMaxTimeoutMult
	mc.IndirectChecks = t.IndirectChecks
	mc.GossipInterval, mc.GossipNodes, mc.RetransmitMult = t.GossipInterval, t.GossipNodes, t.RetransmitMult
	mc.PushPullInterval, mc.TCPTimeout = t.PushPullInterval, t.TCPTimeout
	mc.AwarenessMaxMultiplier = t.AwarenessMaxMultiplier
	// A restarted speaker comes back under the same name, possibly on a new address.
	mc.DeadNodeReclaimTime = time.Second
	if cfg.Key != nil {
		now := m.keyClock()
		m.keys.want(now, cfg.Key, cfg.SecondaryKeys)
		m.keys.known(now)
		kr, err := memberlist.NewKeyring(m.keys.wanted, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("members: keyring: %w", err)
		}
		m.keyring = kr
		mc.Keyring = kr
	}
	mc.Events = eventDelegate{m}
	m.meta = &metaDelegate{meta: encodeMACs(cfg.MACs)}
	mc.Delegate = m.meta
	mc.Logger = log.New(&slogWriter{log: m.log, quiet: m.isStopped}, "", 0)
	ml, err := memberlist.Create(mc)
	if err != nil {
		m.setDegraded(true, "memberlist could not start: "+err.Error())
		return m, fmt.Errorf("members: %w", err)
	}
	m.ml = ml
	if cfg.Key == nil {
		m.log.Warn("gossip is not encrypted: no key")
	}
	rctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	m.rejoin(rctx)
	go m.loop(rctx)
	return m, nil
}

// Port returns the port memberlist listens on (useful with BindPort 0).
func (m *Members) Port() int {
	if m.ml == nil {
		return 0
	}
	return int(m.ml.LocalNode().Port)
}

// Changes signals (coalesced) that membership or the degraded flag changed.
func (m *Members) Changes() <-chan struct{} { return m.changes }

// Alive returns the names of the live members, this node included.
func (m *Members) Alive() map[string]bool {
	out := map[string]bool{}
	if m.ml == nil {
		return out
	}
	for _, n := range m.ml.Members() {
		if n.State == memberlist.StateAlive && !leaving(n.Meta) {
			out[n.Name] = true
		}
	}
	return out
}

// All returns every member seen since start with its last state.
func (m *Members) All() map[string]Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Member, len(m.states))
	for k, v := range m.states {
		out[k] = v
	}
	return out
}

// Arrivals counts the times a peer became alive: joined, or came back after being dead or
// gone (however briefly: a death refuted within milliseconds counts). A node that sees an
// arrival re-announces what it owns, since the peer may have answered for its IPs.
func (m *Members) Arrivals() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.arrivals
}

// SetKeys sets the gossip keys: primary encrypts, primary and secondary decrypt. A key
// not yet installed is accepted for decryption at once and becomes primary only after
// Config.KeySwitchDelay, so that peers that learn of it a little later can still read what
// this node sends; a key dropped from the set is still accepted for 2 × KeySwitchDelay.
// A key that was already installed (a secondary, as in a staged rotation) becomes primary
// at once. The delayed steps happen in the rejoin loop (every Timing.RejoinInterval).
func (m *Members) SetKeys(primary []byte, secondary [][]byte) error {
	for _, k := range append([][]byte{primary}, secondary...) {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("members: gossip key is %d bytes, want 16, 24 or 32", n)
		}
	}
	if m.keyring == nil {
		return errors.New("members: gossip is not encrypted (started without a key)")
	}
	m.keyMu.Lock()
	m.keys.want(m.keyClock(), primary, secondary)
	m.keyMu.Unlock()
	return m.applyKeys()
}

// PrimaryKey returns the key gossip is encrypted with now (nil: unencrypted).
func (m *Members) PrimaryKey() []byte {
	if m.keyring == nil {
		return nil
	}
	return m.keyring.GetPrimaryKey()
}

// InstalledKeys returns the keys gossip is decrypted with now, the primary first.
func (m *Members) InstalledKeys() [][]byte {
	if m.keyring == nil {
		return nil
	}
	return m.keyring.GetKeys()
}

func (m *Members) applyKeys() error {
	if m.keyring == nil {
		return nil
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	p := m.keys.plan(m.keyClock(), m.keyring.GetPrimaryKey(), m.keyring.GetKeys())
	var errs []error
	for _, k := range p.add {
		if err := m.keyring.AddKey(k); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("gossip key accepted for decryption", "key", fingerprint(k))
	}
	if p.use != nil {
		if err := m.keyring.UseKey(p.use); err != nil {
			errs = append(errs, err)
		} else {
			m.log.Info("gossip key now encrypts", "key", fingerprint(p.use))
		}
	}
	for _, k := range p.remove {
		if err := m.keyring.RemoveKey(k); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("gossip key removed", "key", fingerprint(k))
	}
	if len(errs) > 0 {
		return fmt.Errorf("members: keyring: %w", errors.Join(errs...))
	}
	return nil
}

// Joined reports nil when this node is part of the membership: memberlist runs and at
// least one peer is alive, or discovery found no peer (a one-node cluster). Otherwise the
// error says why not. Readiness uses it.
func (m *Members) Joined() error {
	if m.ml == nil {
		return errors.New("memberlist is not running")
	}
	m.mu.Lock()
	discovered, stopped := m.discovered, m.stopped
	m.mu.Unlock()
	if stopped {
		return errors.New("membership stopped")
	}
	if discovered == 0 {
		return nil
	}
	for _, n := range m.ml.Members() {
		if n.Name != m.cfg.NodeName && n.State == memberlist.StateAlive {
			return nil
		}
	}
	return fmt.Errorf("no peer alive of %d discovered", discovered)
}

// Degraded reports that membership cannot be trusted; callers fall back to Node readiness.
func (m *Members) Degraded() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.degraded
}

// Stop leaves the cluster gracefully (peers are told at once) and shuts down.
func (m *Members) Stop(timeout time.Duration) error {
	if m.ml == nil {
		return nil
	}
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
	// First announce "leaving" in our metadata: peers drop us from Alive as soon as the
	// update arrives, and can tell a graceful stop from a crash. Then leave.
	m.meta.setLeaving()
	err := m.ml.UpdateNode(timeout)
	if lerr := m.ml.Leave(timeout); err == nil {
		err = lerr
	}
	if serr := m.ml.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops without leaving: peers see a crash. For tests and for fatal errors.
func (m *Members) Shutdown() error {
	if m.ml == nil {
		return nil
	}
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
	return m.ml.Shutdown()
}

func (m *Members) loop(ctx context.Context) {
	defer close(m.done)
	start := time.Now()
	tick := time.NewTicker(m.cfg.Timing.RejoinInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		m.rejoin(ctx)
		if err := m.applyKeys(); err != nil {
			m.log.Error("gossip keyring", "err", err)
		}
		m.mu.Lock()
		ever, discovered := m.everPeer, m.discovered
		m.mu.Unlock()
		if !ever && time.Since(start) > m.cfg.Timing.StartupGrace && discovered > 0 {
			m.setDegraded(true, "no peer reachable since start although peers were discovered")
		}
	}
}

// rejoin joins every discovered peer address that is not a live member.
func (m *Members) rejoin(ctx context.Context) {
	peers, err := m.cfg.Peers(ctx)
	if err != nil {
		m.m.discoveryErrors.Inc()
		m.log.Warn("peer discovery failed", "err", err)
		return
	}
	live := map[string]bool{}
	self := m.ml.LocalNode()
	for _, n := range m.ml.Members() {
		if n.State == memberlist.StateAlive {
			live[net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))] = true
		}
	}
	var todo []string
	count := 0
	for _, p := range peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			p = net.JoinHostPort(p, strconv.Itoa(int(self.Port)))
		}
		if p == net.JoinHostPort(self.Addr.String(), strconv.Itoa(int(self.Port))) {
			continue
		}
		count++
		if !live[p] {
			todo = append(todo, p)
		}
	}
	m.mu.Lock()
	m.discovered = count
	m.mu.Unlock()
	m.m.discovered.Set(float64(count))
	if len(todo) == 0 {
		return
	}
	n, err := m.ml.Join(todo)
	if n > 0 {
		m.log.Debug("joined peers", "count", n)
	}
	if err != nil {
		m.m.joinErrors.Inc()
		m.log.Debug("join failed for some peers", "err", err)
	}
}

func (m *Members) setDegraded(v bool, why string) {
	m.mu.Lock()
	changed := m.degraded != v
	m.degraded = v
	m.mu.Unlock()
	if !changed {
		return
	}
	if v {
		m.m.degraded.Set(1)
		m.log.Warn("membership degraded: falling back to Node readiness", "reason", why)
	} else {
		m.m.degraded.Set(0)
		m.log.Info("membership healthy again", "reason", why)
	}
	m.notify()
}

func (m *Members) notify() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

func (m *Members) event(n *memberlist.Node, s State) {
	name := n.Name
	m.mu.Lock()
	if s == StateAlive && leaving(n.Meta) {
		s = StateLeft
	}
	if s == StateDead && m.states[name].State == StateLeft {
		s = StateLeft // the leave that follows the "leaving" update
	}
	if prev, seen := m.states[name]; s == StateAlive && name != m.cfg.NodeName && (!seen || prev.State != StateAlive) {
		m.arrivals++
	}
	m.states[name] = Member{Name: name, Addr: n.Address(), MACs: decodeMACs(userMeta(n.Meta)), State: s}
	stopped := m.stopped
	if s == StateAlive && name != m.cfg.NodeName {
		m.everPeer = true
	}
	alive := 0
	for _, st := range m.states {
		if st.State == StateAlive {
			alive++
		}
	}
	m.mu.Unlock()
	if stopped {
		return
	}
	m.m.alive.Set(float64(alive))
	m.m.events.WithLabelValues(s.String()).Inc()
	m.log.Info("member changed", "node", name, "addr", n.Address(), "state", s.String())
	if s == StateAlive && name != m.cfg.NodeName {
		m.setDegraded(false, "peer reachable")
	}
	m.notify()
}

// String returns the state name.
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

type eventDelegate struct{ m *Members }

func (d eventDelegate) NotifyJoin(n *memberlist.Node)   { d.m.event(n, StateAlive) }
func (d eventDelegate) NotifyUpdate(n *memberlist.Node) { d.m.event(n, StateAlive) }
func (d eventDelegate) NotifyLeave(n *memberlist.Node) {
	if n.State == memberlist.StateLeft {
		d.m.event(n, StateLeft)
		return
	}
	d.m.event(n, StateDead)
}

// metaDelegate publishes the member metadata: one flags byte (bit 0: leaving) followed
// by the MAC list (meta.go).
type metaDelegate struct {
	mu      sync.Mutex
	meta    []byte
	leaving bool
}

const flagLeaving = 1

func (d *metaDelegate) setLeaving() {
	d.mu.Lock()
	d.leaving = true
	d.mu.Unlock()
}

func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	var flags byte
	if d.leaving {
		flags |= flagLeaving
	}
	b := append([]byte{flags}, d.meta...)
	if len(b) > limit {
		return b[:1]
	}
	return b
}

func leaving(meta []byte) bool { return len(meta) > 0 && meta[0]&flagLeaving != 0 }

func userMeta(meta []byte) []byte {
	if len(meta) <= 1 {
		return nil
	}
	return append([]byte(nil), meta[1:]...)
}

func (*metaDelegate) NotifyMsg([]byte)                           {}
func (*metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (*metaDelegate) LocalState(join bool) []byte                { return nil }
func (*metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

func (m *Members) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

// slogWriter adapts memberlist's "[LEVEL] memberlist: message" log lines to slog. Once
// quiet() is true (stopping), lines are logged at debug level: memberlist reports the
// closing of its own sockets as errors.
type slogWriter struct {
	log   *slog.Logger
	quiet func() bool
}

var _ io.Writer = (*slogWriter)(nil)

func (w *slogWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		line := sc.Text()
		level := slog.LevelInfo
		for tag, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
			"[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
			if strings.HasPrefix(line, tag) {
				level = l
				line = strings.TrimSpace(strings.TrimPrefix(line, tag))
				break
			}
		}
		line = strings.TrimPrefix(line, "memberlist: ")
		if w.quiet != nil && w.quiet() {
			level = slog.LevelDebug
		}
		w.log.Log(context.Background(), level, line, "source", "memberlist")
	}
	return len(p), nil
}
