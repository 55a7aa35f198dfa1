package layer2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"k8s.io/utils/clock"
)

// Defaults of Config.
const (
	DefaultGratuitousCount    = 4
	DefaultGratuitousInterval = 500 * time.Millisecond
)

// Config configures an Announcer.
type Config struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// GratuitousCount messages are sent per IP and interface on takeover, one every
	// GratuitousInterval, the first at once (defaults: 4 over 1.5 s).
	GratuitousCount    int
	GratuitousInterval time.Duration
	// OnConflict is called (from a reader goroutine; it must not block) when another
	// link-layer address claims an owned IP.
	OnConflict func(Conflict)
	// YieldsTo reports (from a reader goroutine, fast and non-blocking) whether this node
	// gives ip up to the owner of the link-layer address theirs. When it does, the
	// responder stops its gratuitous burst for ip at once, before the caller withdraws the
	// IP: a burst message sent in between would pull the network back to this node (seen
	// as flapping right after a partition healed). Nil: never.
	YieldsTo func(ip netip.Addr, theirs net.HardwareAddr) bool
	// RouteInterface returns the interface holding the route to an IP, used when an IP
	// names no interface. Default: a netlink route lookup in the caller's namespace.
	RouteInterface func(netip.Addr) (string, error)
	// Clock drives every time-dependent behaviour of the Announcer (the gratuitous
	// bursts); tests inject a fake one. Default: clock.RealClock{}.
	Clock clock.Clock
}

// Conflict reports a duplicate owner seen on the wire.
type Conflict struct {
	IP        netip.Addr
	Interface string
	Ours      net.HardwareAddr
	Theirs    net.HardwareAddr
}

// Desired maps each IP this node must announce to the interfaces to announce it on; an
// empty list means the interface holding the route to the IP.
type Desired map[netip.Addr][]string

// IPError says why an IP could not be served on an interface (Interface is empty when
// no interface was found for it).
type IPError struct {
	IP        netip.Addr
	Interface string
	Err       error
}

func (e *IPError) Error() string {
	if e.Interface == "" {
		return fmt.Sprintf("ip %s: %v", e.IP, e.Err)
	}
	return fmt.Sprintf("ip %s on %s: %v", e.IP, e.Interface, e.Err)
}

func (e *IPError) Unwrap() error { return e.Err }

// Applied is what an Apply achieved.
type Applied struct {
	// Interfaces maps each announced IP to the interfaces it is answered on, sorted.
	Interfaces map[netip.Addr][]string
	// Errors lists the IP/interface pairs that could not be served, with why (*IPError),
	// and errors not about one IP.
	Errors []error
}

// Announcer answers ARP and NDP for owned IPs on a set of interfaces. Apply sets the whole
// desired state; the Announcer opens and closes per-interface responders as needed.
type Announcer struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	dial    dialer
	mu      sync.Mutex
	ifaces  map[string]*responder
	applied map[netip.Addr]bool
	closed  bool
}

// dialer opens the sockets of one interface; tests replace it.
type dialer interface {
	arp(ifi *net.Interface) (arpConn, error)
	ndpRx(ifi *net.Interface) (frameConn, error)
	ndpTx(ifi *net.Interface) (ndpConn, error)
	lookup(name string) (*net.Interface, error)
}

type kernelDialer struct{}

func (kernelDialer) arp(ifi *net.Interface) (arpConn, error)     { return dialARP(ifi) }
func (kernelDialer) ndpRx(ifi *net.Interface) (frameConn, error) { return dialNDPFrames(ifi) }
func (kernelDialer) ndpTx(ifi *net.Interface) (ndpConn, error)   { return dialNDP(ifi) }
func (kernelDialer) lookup(name string) (*net.Interface, error)  { return net.InterfaceByName(name) }

// New returns an Announcer using real sockets. Sockets are opened by Apply in the network
// namespace of the calling thread.
func New(cfg Config) *Announcer { return newAnnouncer(cfg, kernelDialer{}) }

func newAnnouncer(cfg Config, d dialer) *Announcer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GratuitousCount <= 0 {
		cfg.GratuitousCount = DefaultGratuitousCount
	}
	if cfg.GratuitousInterval <= 0 {
		cfg.GratuitousInterval = DefaultGratuitousInterval
	}
	if cfg.RouteInterface == nil {
		cfg.RouteInterface = RouteInterface
	}
	if cfg.OnConflict == nil {
		cfg.OnConflict = func(Conflict) {}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Announcer{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer), dial: d,
		ifaces: map[string]*responder{}, applied: map[netip.Addr]bool{}}
}

// RouteInterface returns the name of the interface the kernel routes ip through.
func RouteInterface(ip netip.Addr) (string, error) {
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil {
		return "", fmt.Errorf("route lookup for %s: %w", ip, err)
	}
	for _, r := range routes {
		if r.LinkIndex == 0 {
			continue
		}
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			return "", fmt.Errorf("route lookup for %s: link %d: %w", ip, r.LinkIndex, err)
		}
		return l.Attrs().Name, nil
	}
	return "", fmt.Errorf("route lookup for %s: no route with an interface", ip)
}

// Apply makes the Announcer answer for exactly the IPs in want, on their interfaces. IPs
// it drops stop being answered before Apply returns; IPs it gains get a burst of
// gratuitous messages. An IP that cannot be served on one interface is still served on
// the others, and every other IP is unaffected. Apply is idempotent.
func (a *Announcer) Apply(want Desired) Applied {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := Applied{Interfaces: map[netip.Addr][]string{}}
	if a.closed {
		res.Errors = append(res.Errors, errors.New("announcer closed"))
		return res
	}
	perIface := map[string]map[netip.Addr]bool{}
	for ip, names := range want {
		ip = ip.Unmap()
		if len(names) == 0 {
			name, err := a.cfg.RouteInterface(ip)
			if err != nil {
				a.m.errors.WithLabelValues("route").Inc()
				res.Errors = append(res.Errors, &IPError{IP: ip, Err: err})
				continue
			}
			names = []string{name}
		}
		for _, n := range names {
			if perIface[n] == nil {
				perIface[n] = map[netip.Addr]bool{}
			}
			perIface[n][ip] = true
		}
	}
	// Withdraw first, so that an IP moving between interfaces is never answered twice
	// with stale state, and losses take effect before any slow socket work.
	for name, r := range a.ifaces {
		if r.broken.Load() {
			a.log.Warn("reopening responder after a socket error", "iface", name)
			r.setOwned(nil)
			r.close()
			delete(a.ifaces, name)
			continue
		}
		r.setOwned(perIface[name])
		if len(perIface[name]) == 0 {
			r.close()
			delete(a.ifaces, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(perIface)) {
		ips := perIface[name]
		r := a.ifaces[name]
		if r == nil {
			var err error
			r, err = a.open(name)
			if err != nil {
				a.m.errors.WithLabelValues("open").Inc()
				for _, ip := range slices.SortedFunc(maps.Keys(ips), netip.Addr.Compare) {
					res.Errors = append(res.Errors, &IPError{IP: ip, Interface: name, Err: err})
				}
				continue
			}
			a.ifaces[name] = r
		}
		for _, err := range r.ensureSockets(ips) {
			a.m.errors.WithLabelValues("open").Inc()
			res.Errors = append(res.Errors, err)
		}
		served := r.setOwned(ips)
		for ip := range served {
			res.Interfaces[ip] = append(res.Interfaces[ip], name)
		}
	}
	for ip := range res.Interfaces {
		slices.Sort(res.Interfaces[ip])
	}
	// Count ownership once per IP.
	var v4, v6 float64
	for ip := range res.Interfaces {
		if !a.applied[ip] {
			a.m.changes.WithLabelValues("gained").Inc()
			a.log.Info("announcing IP", "ip", ip, "iface", res.Interfaces[ip])
		}
		if ip.Is6() {
			v6++
		} else {
			v4++
		}
	}
	for ip := range a.applied {
		if _, ok := res.Interfaces[ip]; !ok {
			a.m.changes.WithLabelValues("lost").Inc()
			a.log.Info("withdrew IP", "ip", ip)
		}
	}
	a.applied = map[netip.Addr]bool{}
	for ip := range res.Interfaces {
		a.applied[ip] = true
	}
	a.m.owned.WithLabelValues("ipv4").Set(v4)
	a.m.owned.WithLabelValues("ipv6").Set(v6)
	return res
}

// Reannounce sends a burst of gratuitous messages for the given owned IPs (all owned IPs
// when ips is empty), on every interface serving them.
func (a *Announcer) Reannounce(ips ...netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.ifaces {
		r.reannounce(ips)
	}
}

// Close stops every responder.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, r := range a.ifaces {
		r.setOwned(nil)
		r.close()
		delete(a.ifaces, name)
	}
	a.closed = true
	a.m.owned.WithLabelValues("ipv4").Set(0)
	a.m.owned.WithLabelValues("ipv6").Set(0)
}

func (a *Announcer) open(name string) (*responder, error) {
	ifi, err := a.dial.lookup(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %q has no Ethernet address", name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &responder{a: a, ifi: ifi, mac: append(net.HardwareAddr(nil), ifi.HardwareAddr...),
		ctx: ctx, cancel: cancel, bursts: map[netip.Addr]*burstState{}, kick: make(chan struct{}, 1),
		groups: map[netip.Addr]bool{}}
	r.owned.Store(&map[netip.Addr]bool{})
	r.wg.Add(1)
	go r.burstLoop()
	return r, nil
}

// responder serves one interface.
type responder struct {
	a      *Announcer
	ifi    *net.Interface
	mac    net.HardwareAddr
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// owned is replaced whole (copy on write) and read by the reader goroutines.
	owned atomic.Pointer[map[netip.Addr]bool]
	// broken is set when a socket fails (e.g. the interface went away); the next Apply
	// reopens the responder.
	broken atomic.Bool

	// The fields below are guarded by Announcer.mu.
	arp    arpConn
	ndpRx  frameConn
	ndpTx  ndpConn
	groups map[netip.Addr]bool // solicited-node groups joined

	// bursts are the running gratuitous bursts, sent by burstLoop. They have their own
	// lock: the reader goroutines stop bursts (stopBurst), and Announcer.mu is held while
	// they are waited for. burstLoop sends while holding burstMu, so once stopBurst
	// returns, no message of that burst goes out any more.
	burstMu sync.Mutex
	bursts  map[netip.Addr]*burstState
	// kick wakes burstLoop when a burst starts.
	kick chan struct{}
}

// burstState is what is left of the gratuitous burst of one IP.
type burstState struct {
	left int       // messages still to send
	next time.Time // when the next one is due
}

func (r *responder) owns(ip netip.Addr) bool { return (*r.owned.Load())[ip] }

// ensureSockets opens the sockets the family mix of ips needs.
func (r *responder) ensureSockets(ips map[netip.Addr]bool) []error {
	var v4, v6 bool
	for ip := range ips {
		if ip.Is6() {
			v6 = true
		} else {
			v4 = true
		}
	}
	var errs []error
	fail := func(fam bool, err error) {
		for ip := range ips {
			if ip.Is6() == fam {
				errs = append(errs, &IPError{IP: ip, Interface: r.ifi.Name, Err: err})
			}
		}
	}
	if v4 && r.arp == nil {
		c, err := r.a.dial.arp(r.ifi)
		if err != nil {
			fail(false, err)
		} else {
			r.arp = c
			r.wg.Add(1)
			go r.readARP(c)
		}
	}
	if v6 && r.ndpTx == nil {
		tx, err := r.a.dial.ndpTx(r.ifi)
		if err != nil {
			fail(true, err)
		} else if rx, err := r.a.dial.ndpRx(r.ifi); err != nil {
			tx.Close()
			fail(true, err)
		} else {
			r.ndpTx, r.ndpRx = tx, rx
			r.wg.Add(1)
			go r.readNDP(rx)
		}
	}
	return errs
}

// setOwned publishes the owned set (only IPs whose family has a socket) and returns it.
// Lost IPs stop being answered at once; gained ones get a gratuitous burst.
func (r *responder) setOwned(want map[netip.Addr]bool) map[netip.Addr]bool {
	next := map[netip.Addr]bool{}
	for ip := range want {
		if (ip.Is6() && r.ndpTx != nil) || (ip.Is4() && r.arp != nil) {
			next[ip] = true
		}
	}
	prev := *r.owned.Load()
	// Join groups before publishing, so the first solicitation is already received.
	for ip := range next {
		if ip.Is6() && !prev[ip] && !r.groups[ip] {
			if g, err := ndp.SolicitedNodeMulticast(ip); err == nil {
				if err := r.ndpTx.JoinGroup(g); err != nil {
					r.a.m.errors.WithLabelValues("join").Inc()
					r.a.log.Warn("joining solicited-node group failed", "ip", ip, "iface", r.ifi.Name, "err", err)
				} else {
					r.groups[ip] = true
				}
			}
		}
	}
	r.owned.Store(&next)
	for ip := range prev {
		if !next[ip] {
			r.stopBurst(ip)
			r.leave(ip)
		}
	}
	var gained []netip.Addr
	for ip := range next {
		if !prev[ip] {
			gained = append(gained, ip)
		}
	}
	r.burst(gained...)
	return next
}

func (r *responder) leave(ip netip.Addr) {
	if !r.groups[ip] {
		return
	}
	delete(r.groups, ip)
	// Another owned IP may share the solicited-node group (same low 24 bits).
	g, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return
	}
	for other := range r.groups {
		if og, _ := ndp.SolicitedNodeMulticast(other); og == g {
			return
		}
	}
	if err := r.ndpTx.LeaveGroup(g); err != nil {
		r.a.log.Debug("leaving solicited-node group failed", "ip", ip, "iface", r.ifi.Name, "err", err)
	}
}

func (r *responder) reannounce(ips []netip.Addr) {
	owned := *r.owned.Load()
	if len(ips) == 0 {
		r.burst(slices.Collect(maps.Keys(owned))...)
		return
	}
	var start []netip.Addr
	for _, ip := range ips {
		if owned[ip.Unmap()] {
			start = append(start, ip.Unmap())
		}
	}
	r.burst(start...)
}

// stopBurst ends the gratuitous burst of ip, if one runs. No message of it is sent after
// stopBurst returns.
func (r *responder) stopBurst(ip netip.Addr) {
	r.burstMu.Lock()
	defer r.burstMu.Unlock()
	delete(r.bursts, ip)
}

// burst (re)starts the gratuitous bursts of ips: Config.GratuitousCount messages each, the
// first at once, then one every Config.GratuitousInterval on Config.Clock. Bursts started
// together send their messages in the same rounds.
func (r *responder) burst(ips ...netip.Addr) {
	if len(ips) == 0 {
		return
	}
	r.burstMu.Lock()
	now := r.a.cfg.Clock.Now()
	for _, ip := range ips {
		r.bursts[ip] = &burstState{left: r.a.cfg.GratuitousCount, next: now}
	}
	r.burstMu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// burstLoop sends the gratuitous messages of every burst of the responder when they are
// due. In each round it sends everything due at the clock's present time, in IP order,
// from one goroutine: messages leave in a known order (tests use a later message as
// proof that an earlier one was not sent), and a burst never outlives stopBurst.
func (r *responder) burstLoop() {
	defer r.wg.Done()
	clk := r.a.cfg.Clock
	// timer fires at timerAt, the next due message when it was set. A round that changes
	// nothing (a redundant kick) keeps it, so the next round is never rescheduled from a
	// stale reading of the clock.
	var timer clock.Timer
	var timerAt time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		r.burstMu.Lock()
		now := clk.Now()
		var due []netip.Addr
		var wake time.Time
		for ip, b := range r.bursts {
			if !b.next.After(now) {
				due = append(due, ip)
				b.left--
				b.next = now.Add(r.a.cfg.GratuitousInterval)
			}
			if b.left <= 0 {
				delete(r.bursts, ip)
			} else if wake.IsZero() || b.next.Before(wake) {
				wake = b.next
			}
		}
		// The timer for the next round is set before this round's messages leave, so
		// whoever sees them (a test stepping a fake clock) finds the next round already
		// scheduled.
		if !wake.Equal(timerAt) {
			if timer != nil {
				timer.Stop()
			}
			timer, timerAt = nil, time.Time{}
			if !wake.IsZero() {
				timer, timerAt = clk.NewTimer(wake.Sub(now)), wake
			}
		}
		slices.SortFunc(due, netip.Addr.Compare)
		for _, ip := range due {
			if r.owns(ip) {
				r.sendGratuitous(ip)
			}
		}
		r.burstMu.Unlock()
		var tick <-chan time.Time
		if timer != nil {
			tick = timer.C()
		}
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
		case <-tick:
			timer, timerAt = nil, time.Time{}
		}
	}
}

func (r *responder) sendGratuitous(ip netip.Addr) {
	var err error
	if ip.Is6() {
		var b []byte
		if b, err = UnsolicitedNA(r.mac, ip); err == nil {
			err = r.ndpTx.WriteRaw(b, allNodes)
		}
	} else {
		var p *arp.Packet
		if p, err = GratuitousARP(r.mac, ip); err == nil {
			err = r.arp.WriteTo(p, ethernet.Broadcast)
		}
	}
	if err != nil {
		if r.ctx.Err() == nil {
			r.a.m.errors.WithLabelValues("gratuitous").Inc()
			r.a.log.Warn("sending gratuitous message failed", "ip", ip, "iface", r.ifi.Name, "err", err)
		}
		return
	}
	r.a.m.gratuitous.WithLabelValues(family(ip.Is6())).Inc()
}

// readARP answers ARP on c until it fails or the responder closes.
func (r *responder) readARP(c arpConn) {
	defer r.wg.Done()
	for {
		p, eth, err := c.Read()
		if err != nil {
			if !isSocketError(err) {
				continue // a malformed frame
			}
			r.readFailed(false, err)
			return
		}
		d := HandleARP(p, eth, r.mac, r.owns)
		if d.Verdict == Reply {
			r.a.m.requests.WithLabelValues(family(false), "true").Inc()
			r.replied(d, c.WriteTo(d.ARP, d.ReplyTo))
			continue
		}
		r.decided(d, false)
	}
}

// readNDP answers Neighbor Solicitations received on c until it fails or the responder
// closes.
func (r *responder) readNDP(c frameConn) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			r.readFailed(true, err)
			return
		}
		d := HandleNDPFrame(buf[:n], r.mac, r.owns)
		if d.Verdict == Reply {
			r.a.m.requests.WithLabelValues(family(true), "true").Inc()
			r.replied(d, r.ndpTx.WriteRaw(d.Reply, d.ReplyDst))
			continue
		}
		r.decided(d, true)
	}
}

func (r *responder) readFailed(v6 bool, err error) {
	if r.ctx.Err() != nil {
		return // closed
	}
	r.broken.Store(true)
	r.a.m.errors.WithLabelValues("read").Inc()
	r.a.log.Error("reading failed; responder stopped until the next apply", "iface", r.ifi.Name, "family", family(v6), "err", err)
}

func (r *responder) replied(d Decision, err error) {
	if err != nil {
		r.a.m.errors.WithLabelValues("reply").Inc()
		r.a.log.Warn("reply failed", "ip", d.IP, "iface", r.ifi.Name, "err", err)
		return
	}
	r.a.m.replies.WithLabelValues(family(d.IP.Is6())).Inc()
}

// decided acts on every verdict but Reply.
func (r *responder) decided(d Decision, v6 bool) {
	switch d.Verdict {
	case NotOwned:
		r.a.m.requests.WithLabelValues(family(v6), "false").Inc()
	case Duplicate:
		r.a.m.conflicts.WithLabelValues(family(v6)).Inc()
		if y := r.a.cfg.YieldsTo; y != nil && y(d.IP, d.Other) {
			r.stopBurst(d.IP)
		}
		r.a.cfg.OnConflict(Conflict{IP: d.IP, Interface: r.ifi.Name, Ours: r.mac, Theirs: d.Other})
	}
}

func (r *responder) close() {
	r.cancel()
	for _, c := range []interface{ Close() error }{r.arp, r.ndpRx, r.ndpTx} {
		if c != nil {
			c.Close()
		}
	}
	r.wg.Wait()
}
