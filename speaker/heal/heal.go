package heal

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/observe"
)

// Config holds the policy's timers.
type Config struct {
	// DeathDebounce delays acting on a member's death (default 50 ms; negative: none).
	DeathDebounce time.Duration
	// HoldDown bounds how long a yielded IP stays withdrawn (default 10 s).
	HoldDown time.Duration
	// ReclaimDelay is the wait before a re-announce round (default 250 ms).
	ReclaimDelay time.Duration
	// ConflictInterval allows one duplicate-owner decision per IP per interval (default 1 s).
	ConflictInterval time.Duration
}

// EventKind classifies an Event.
type EventKind int

const (
	// Release: another node's ServiceL2Status stopped listing IP.
	Release EventKind = iota + 1
	// Conflict: another link-layer address claims IP (from the layer-2 announcer).
	Conflict
)

// Event is something that happened between two steps.
type Event struct {
	Kind EventKind
	IP   netip.Addr
	// Node released IP (Release).
	Node string
	// Ours and Theirs are the link-layer addresses, Interface where it was seen (Conflict).
	Ours, Theirs net.HardwareAddr
	Interface    string
}

// Applied is what the layer-2 announcer serves after the previous step: IP → interfaces.
type Applied map[netip.Addr][]string

// ConflictDecision is the tie-break taken for a Conflict event.
type ConflictDecision struct {
	Event
	// Other is the speaker owning Theirs ("" for a host that is not a speaker).
	Other  string
	Action announce.ConflictAction
	// RateLimited: an earlier decision for IP is less than ConflictInterval old; Action
	// is not taken again.
	RateLimited bool
}

// Result is one step's decision.
type Result struct {
	// Alive are the members the election counted (the view plus debounced deaths).
	Alive map[string]bool
	// Plan is the election's result on Alive.
	Plan announce.Plan
	// Desired is what layer 2 should answer for: the plan minus withheld IPs.
	Desired map[netip.Addr][]string
	// Reannounce are IPs to send a gratuitous round for after applying Desired, sorted.
	Reannounce []netip.Addr
	// ReclaimReasons are the reasons of a reclaim round that fired in this step
	// ("arrival", "released"); empty when none did.
	ReclaimReasons []string
	// Conflicts are the decisions on this step's Conflict events.
	Conflicts []ConflictDecision
	// Debouncing are members whose death is not acted on yet.
	Debouncing []string
}

// Machine is the policy's state. The zero value is not usable; use New.
type Machine struct {
	cfg  Config
	self string

	started      bool
	prevAlive    map[string]bool
	prevArrivals uint64
	deathSeen    map[string]time.Time
	holds        map[netip.Addr]hold
	lastConflict map[netip.Addr]time.Time
	// The pending reclaim round.
	reclaimAt      time.Time
	reclaimAll     bool
	reclaimIPs     map[netip.Addr]bool
	reclaimReasons map[string]bool
}

// hold is a yielded IP: withdrawn until a time, or until the node it was yielded to is
// a live member.
type hold struct {
	until time.Time
	to    string
}

// New returns a Machine for node self.
func New(self string, cfg Config) *Machine {
	if cfg.DeathDebounce == 0 {
		cfg.DeathDebounce = 50 * time.Millisecond
	}
	if cfg.HoldDown <= 0 {
		cfg.HoldDown = 10 * time.Second
	}
	if cfg.ReclaimDelay <= 0 {
		cfg.ReclaimDelay = 250 * time.Millisecond
	}
	if cfg.ConflictInterval <= 0 {
		cfg.ConflictInterval = time.Second
	}
	return &Machine{cfg: cfg, self: self, prevAlive: map[string]bool{}, deathSeen: map[string]time.Time{},
		holds: map[netip.Addr]hold{}, lastConflict: map[netip.Addr]time.Time{},
		reclaimIPs: map[netip.Addr]bool{}, reclaimReasons: map[string]bool{}}
}

// Step decides at now from snap, what layer 2 served after the last step, and the
// events since. wakeAt is when to step again without news (zero: only on news).
func (m *Machine) Step(now time.Time, snap *observe.Snapshot, applied Applied, events []Event) (Result, time.Time) {
	var w wake
	res := Result{}
	res.Alive = m.debounce(now, snap, &w)
	res.Debouncing = slices.Sorted(maps.Keys(m.deathSeen))
	res.Plan = announce.Compute(snap.L2(res.Alive))
	reassert := map[netip.Addr]bool{}
	for _, e := range events {
		if e.Kind == Conflict {
			res.Conflicts = append(res.Conflicts, m.conflict(now, snap, e, reassert))
		}
	}
	res.Desired = res.Plan.Desired()
	for _, ip := range slices.SortedFunc(maps.Keys(m.holds), netip.Addr.Compare) {
		h := m.holds[ip]
		if !now.Before(h.until) || (h.to != "" && res.Alive[h.to]) {
			delete(m.holds, ip)
			continue
		}
		if _, ok := res.Desired[ip]; ok {
			delete(res.Desired, ip)
			w.at(h.until)
		}
	}
	held := func(ip netip.Addr) bool {
		_, want := res.Desired[ip]
		_, have := applied[ip]
		return want && have
	}
	m.arrivals(now, snap, res.Alive)
	for _, e := range events {
		// A release counts only from a node we see alive: it withdrew knowing we are
		// here. From a node we think dead it is news from the other side of a partition
		// that has not healed in our view yet, and our ownership may be stale too.
		if e.Kind == Release && res.Alive[e.Node] && e.Node != m.self && held(e.IP) {
			m.schedule(now, "released", &e.IP)
		}
	}
	again := map[netip.Addr]bool{}
	for ip := range reassert {
		if _, ok := res.Desired[ip]; ok {
			again[ip] = true
		}
	}
	if !m.reclaimAt.IsZero() {
		if now.Before(m.reclaimAt) {
			w.at(m.reclaimAt)
		} else {
			fired := false
			for ip := range res.Desired {
				if held(ip) && (m.reclaimAll || m.reclaimIPs[ip]) {
					again[ip], fired = true, true
				}
			}
			if fired {
				res.ReclaimReasons = slices.Sorted(maps.Keys(m.reclaimReasons))
			}
			m.reclaimAt, m.reclaimAll = time.Time{}, false
			clear(m.reclaimIPs)
			clear(m.reclaimReasons)
		}
	}
	res.Reannounce = slices.SortedFunc(maps.Keys(again), netip.Addr.Compare)
	m.prevAlive = res.Alive
	for ip, t := range m.lastConflict {
		if now.Sub(t) >= m.cfg.ConflictInterval {
			delete(m.lastConflict, ip)
		}
	}
	return res, w.t
}

// debounce returns the alive set the election counts: the view's, plus members alive at
// the last step whose death is younger than DeathDebounce.
func (m *Machine) debounce(now time.Time, snap *observe.Snapshot, w *wake) map[string]bool {
	alive := maps.Clone(snap.Alive)
	if alive == nil {
		alive = map[string]bool{}
	}
	if snap.Degraded || m.cfg.DeathDebounce < 0 {
		clear(m.deathSeen)
		return alive
	}
	for n := range m.deathSeen {
		if alive[n] || !m.prevAlive[n] {
			delete(m.deathSeen, n)
		}
	}
	for n := range m.prevAlive {
		if alive[n] {
			continue
		}
		seen, ok := m.deathSeen[n]
		if !ok {
			seen = now
			m.deathSeen[n] = now
		}
		if end := seen.Add(m.cfg.DeathDebounce); now.Before(end) {
			alive[n] = true
			w.at(end)
		} else {
			delete(m.deathSeen, n)
		}
	}
	return alive
}

// arrivals schedules a reclaim round when a peer (re)appeared since the last step: a
// member that (re)appeared may have answered for our IPs meanwhile (a healed partition).
// The arrival count also covers deaths refuted within the debounce, which the alive sets
// alone miss: a short cut lets another node take this node's IPs without this node ever
// seeing its peers gone.
func (m *Machine) arrivals(now time.Time, snap *observe.Snapshot, alive map[string]bool) {
	gained := false
	for n := range alive {
		if !m.prevAlive[n] && n != m.self {
			gained = true
		}
	}
	if !snap.Degraded && snap.Arrivals != m.prevArrivals {
		gained = gained || m.started
		m.prevArrivals = snap.Arrivals
	}
	if !snap.Degraded {
		m.started = true
	}
	if gained && len(m.prevAlive) > 0 {
		m.schedule(now, "arrival", nil)
	}
}

// schedule asks for a re-announce round ReclaimDelay from now, for ip (nil: every IP
// held). The round re-announces only what this node still holds then: a heal reaches the
// nodes' membership views one peer at a time, and re-announcing at the first arrival
// pulled the network to a stand-in just before the rightful owner's arrival made it
// yield.
func (m *Machine) schedule(now time.Time, reason string, ip *netip.Addr) {
	if m.reclaimAt.IsZero() {
		m.reclaimAt = now.Add(m.cfg.ReclaimDelay)
	}
	m.reclaimReasons[reason] = true
	if ip == nil {
		m.reclaimAll = true
	} else {
		m.reclaimIPs[*ip] = true
	}
}

// conflict applies the duplicate-owner tie-break for one report.
func (m *Machine) conflict(now time.Time, snap *observe.Snapshot, e Event, reassert map[netip.Addr]bool) ConflictDecision {
	// The announcer may have stopped the IP's gratuitous burst already (its early yield
	// hint). If this node keeps the IP after all (the winner is not eligible in our view,
	// or the decision is rate-limited), re-announce it, or the network could stay on the
	// other node until its neighbour entry goes stale.
	reassert[e.IP] = true
	d := ConflictDecision{Event: e, Other: snap.MACOwners[e.Theirs.String()]}
	d.Action = announce.ResolveConflict(m.self, d.Other, e.IP)
	if t, ok := m.lastConflict[e.IP]; ok && now.Sub(t) < m.cfg.ConflictInterval {
		d.RateLimited = true
		return d
	}
	m.lastConflict[e.IP] = now
	if d.Action == announce.Yield {
		m.holds[e.IP] = hold{until: now.Add(m.cfg.HoldDown), to: d.Other}
	}
	return d
}

// wake keeps the earliest of several times.
type wake struct{ t time.Time }

func (w *wake) at(t time.Time) {
	if w.t.IsZero() || t.Before(w.t) {
		w.t = t
	}
}
