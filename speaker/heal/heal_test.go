package heal

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
)

var (
	ip4   = observetest.IP4 // ranks n4 n3 n1 n2
	other = netip.MustParseAddr("203.0.113.99")
	t0    = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

// step is one call of Step in an incident replay: the membership view and events at
// offset at, and what the policy must decide. The layer-2 announcer is simulated as
// applying every desired IP, so applied is the previous step's Desired.
type step struct {
	at       time.Duration
	alive    []string
	arrivals uint64
	events   []Event

	desired    []netip.Addr
	reannounce []netip.Addr
	// wake is the offset of the wake time (0: none).
	wake time.Duration
	// conflicts are the expected decisions' actions ("Yield", "Defend"; "-" rate-limited).
	conflicts []string
}

var all = []string{"n1", "n2", "n3", "n4"}

func conflictWith(node string) Event {
	return Event{Kind: Conflict, IP: ip4, Interface: "eth0", Ours: net.HardwareAddr{2, 0, 0, 0, 0, 0xee}, Theirs: observetest.MAC(node)}
}

// TestIncidents replays, step by step, the incidents the heal rules were made for
// (docs/speaker.md, "After a partition heals" and "Duplicate owners"). Each names the
// rule it pins; removing that rule from Step makes the case fail.
func TestIncidents(t *testing.T) {
	web := func() *observetest.Cluster {
		return observetest.New().Service("default", "web", "n1", ip4)
	}
	cases := []struct {
		name    string
		self    string
		cluster *observetest.Cluster
		steps   []step
	}{{
		// Rule: re-announce later, and only what is still held. A heal reached n3 one peer
		// at a time: an arrival (a refuted death) came 90 ms before n4, the rightful
		// owner, showed up. Re-announcing at the first arrival pulled the network to n3
		// just before it yielded (B1: elected → stand-in → elected, 1 of 20 runs).
		name: "heal seen one peer at a time: the stand-in does not pull the network back",
		self: "n3", cluster: web(),
		steps: []step{
			{at: 0, alive: []string{"n1", "n2", "n3"}, desired: []netip.Addr{ip4}},
			{at: 10 * time.Millisecond, alive: []string{"n1", "n2", "n3"}, arrivals: 1, desired: []netip.Addr{ip4}, wake: 260 * time.Millisecond},
			{at: 100 * time.Millisecond, alive: all, arrivals: 2, wake: 260 * time.Millisecond},
			{at: 260 * time.Millisecond, alive: all, arrivals: 2},
		},
	}, {
		// The same rule seen from the rightful owner: it re-announces once, after the
		// reclaim delay, what it still holds.
		name: "heal seen one peer at a time: the owner re-announces once it settled",
		self: "n4", cluster: web(),
		steps: []step{
			{at: 0, alive: []string{"n4"}, desired: []netip.Addr{ip4}},
			{at: 20 * time.Millisecond, alive: []string{"n4", "n1"}, arrivals: 1, desired: []netip.Addr{ip4}, wake: 270 * time.Millisecond},
			{at: 120 * time.Millisecond, alive: all, arrivals: 3, desired: []netip.Addr{ip4}, wake: 270 * time.Millisecond},
			{at: 270 * time.Millisecond, alive: all, arrivals: 3, desired: []netip.Addr{ip4}, reannounce: []netip.Addr{ip4}},
			{at: 280 * time.Millisecond, alive: all, arrivals: 3, desired: []netip.Addr{ip4}},
		},
	}, {
		// Rule: a release counts only from a node seen alive. In B1 a returning node
		// re-announced an IP it owned only in its isolated view after the stand-in's
		// status dropped it: news from across a partition not healed in its view yet.
		name: "release seen across a partition that has not healed is ignored",
		self: "n4", cluster: web(),
		steps: []step{
			{at: 0, alive: []string{"n2", "n3", "n4"}, desired: []netip.Addr{ip4}},
			{at: 10 * time.Millisecond, alive: []string{"n2", "n3", "n4"}, desired: []netip.Addr{ip4},
				events: []Event{{Kind: Release, IP: ip4, Node: "n1"}, {Kind: Release, IP: other, Node: "n2"}}},
			{at: 400 * time.Millisecond, alive: []string{"n2", "n3", "n4"}, desired: []netip.Addr{ip4}},
			// From a live node it schedules a round.
			{at: 410 * time.Millisecond, alive: []string{"n2", "n3", "n4"}, desired: []netip.Addr{ip4},
				events: []Event{{Kind: Release, IP: ip4, Node: "n2"}}, wake: 660 * time.Millisecond},
			{at: 660 * time.Millisecond, alive: []string{"n2", "n3", "n4"}, desired: []netip.Addr{ip4}, reannounce: []netip.Addr{ip4}},
		},
	}, {
		// Rule: reassert. n3 yields by rank to n4, but n4 is excluded from load balancing,
		// so n3 keeps the IP. The announcer stopped n3's burst on the yield hint; without
		// a new round the router stayed on the other node for a minute (make test).
		name: "conflict tie-break that stopped a burst: the IP kept is re-announced",
		self: "n3", cluster: web().Label("n4", v1beta1.LabelExcludeFromLB, ""),
		steps: []step{
			{at: 0, alive: all, desired: []netip.Addr{ip4}},
			{at: 10 * time.Millisecond, alive: all, events: []Event{conflictWith("n4")}, conflicts: []string{"Yield"},
				desired: []netip.Addr{ip4}, reannounce: []netip.Addr{ip4}},
			// A second report within the rate limit: no new decision, still re-asserted.
			{at: 500 * time.Millisecond, alive: all, events: []Event{conflictWith("n4")}, conflicts: []string{"-"},
				desired: []netip.Addr{ip4}, reannounce: []netip.Addr{ip4}},
		},
	}, {
		// Yield to a speaker this node does not see: withheld until the winner is a member
		// (then the election agrees) or at most the hold-down.
		name: "yield to an unseen speaker holds the IP down, at most HoldDown",
		self: "n3", cluster: web(),
		steps: []step{
			{at: 0, alive: []string{"n1", "n2", "n3"}, desired: []netip.Addr{ip4}},
			{at: 10 * time.Millisecond, alive: []string{"n1", "n2", "n3"}, events: []Event{conflictWith("n4")}, conflicts: []string{"Yield"},
				wake: 10*time.Second + 10*time.Millisecond},
			{at: 5 * time.Second, alive: []string{"n1", "n2", "n3"}, wake: 10*time.Second + 10*time.Millisecond},
			{at: 10*time.Second + 10*time.Millisecond, alive: []string{"n1", "n2", "n3"}, desired: []netip.Addr{ip4}},
		},
	}, {
		name: "a MAC that is no speaker's is defended",
		self: "n4", cluster: web(),
		steps: []step{
			{at: 0, alive: all, desired: []netip.Addr{ip4}},
			{at: 10 * time.Millisecond, alive: all, conflicts: []string{"Defend"},
				events:  []Event{{Kind: Conflict, IP: ip4, Theirs: net.HardwareAddr{2, 0, 0, 0, 0, 0x99}}},
				desired: []netip.Addr{ip4}, reannounce: []netip.Addr{ip4}},
		},
	}, {
		// Rule: death debounce. A node back from a partition gossips everyone's death; the
		// victims refute it within milliseconds. Acting at once moved the IP to a third
		// node and back (B1: a double flip of the router's entry).
		name: "a death is acted on after the debounce, and never when refuted",
		self: "n3", cluster: web(),
		steps: []step{
			{at: 0, alive: all},
			{at: 100 * time.Millisecond, alive: []string{"n1", "n2", "n3"}, wake: 150 * time.Millisecond},
			{at: 120 * time.Millisecond, alive: all, arrivals: 1, wake: 370 * time.Millisecond},
			{at: 200 * time.Millisecond, alive: []string{"n1", "n2", "n3"}, arrivals: 1, wake: 250 * time.Millisecond},
			{at: 250 * time.Millisecond, alive: []string{"n1", "n2", "n3"}, arrivals: 1, desired: []netip.Addr{ip4}, wake: 370 * time.Millisecond},
			// The pending round (from the refuted death) re-announces what n3 holds now.
			{at: 370 * time.Millisecond, alive: []string{"n1", "n2", "n3"}, arrivals: 1, desired: []netip.Addr{ip4}, reannounce: []netip.Addr{ip4}},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.self, Config{})
			var applied Applied
			for i, s := range tc.steps {
				snap := tc.cluster.Snapshot(tc.self, observetest.View{Alive: s.alive, Arrivals: s.arrivals})
				res, wake := m.Step(t0.Add(s.at), snap, applied, s.events)
				got := slices.SortedFunc(func(yield func(netip.Addr) bool) {
					for ip := range res.Desired {
						if !yield(ip) {
							return
						}
					}
				}, netip.Addr.Compare)
				if diff := cmp.Diff(s.desired, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("step %d (%v): desired (-want +got):\n%s", i, s.at, diff)
				}
				if diff := cmp.Diff(s.reannounce, res.Reannounce, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("step %d (%v): re-announced (-want +got):\n%s", i, s.at, diff)
				}
				var wantWake time.Time
				if s.wake > 0 {
					wantWake = t0.Add(s.wake)
				}
				if !wake.Equal(wantWake) {
					t.Errorf("step %d (%v): wake at %v, want %v", i, s.at, wake.Sub(t0), s.wake)
				}
				var actions []string
				for _, d := range res.Conflicts {
					a := d.Action.String()
					if d.RateLimited {
						a = "-"
					}
					actions = append(actions, a)
				}
				if !slices.Equal(actions, s.conflicts) {
					t.Errorf("step %d (%v): conflict decisions %v, want %v", i, s.at, actions, s.conflicts)
				}
				applied = Applied(res.Desired)
			}
		})
	}
}

// The election runs on the debounced view: during the debounce the plan still names the
// dying node, and the conflict decision names the other speaker found by its MAC.
func TestStepReportsPlanAndDecisions(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4)
	m := New("n3", Config{})
	m.Step(t0, c.Snapshot("n3", observetest.View{Alive: all}), nil, nil)
	res, _ := m.Step(t0.Add(time.Millisecond), c.Snapshot("n3", observetest.View{Alive: []string{"n1", "n2", "n3"}}), nil,
		[]Event{conflictWith("n4")})
	if w := res.Plan.Elections[ip4].Result.Winner; w != "n4" {
		t.Errorf("winner during the debounce = %q, want n4", w)
	}
	if !slices.Equal(res.Debouncing, []string{"n4"}) {
		t.Errorf("debouncing %v", res.Debouncing)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0].Other != "n4" || res.Conflicts[0].Action != announce.Yield {
		t.Errorf("conflicts %+v", res.Conflicts)
	}
}

// In degraded mode (no membership) nothing is debounced and no round is scheduled: the
// alive sets are empty, and Node readiness decides.
func TestDegradedModeSchedulesNothing(t *testing.T) {
	c := observetest.New().Service("default", "web", "n1", ip4)
	m := New("n4", Config{})
	res, wake := m.Step(t0, c.Snapshot("n4", observetest.View{Degraded: true}), nil, nil)
	if _, ok := res.Desired[ip4]; !ok || !wake.IsZero() {
		t.Fatalf("degraded: desired %v wake %v", res.Desired, wake)
	}
	// Membership starts: the first reading is a baseline, not an arrival.
	res, wake = m.Step(t0.Add(time.Second), c.Snapshot("n4", observetest.View{Alive: all, Arrivals: 3}), Applied(res.Desired), nil)
	if len(res.Reannounce) != 0 || !wake.IsZero() {
		t.Errorf("after membership started: re-announce %v, wake %v", res.Reannounce, wake)
	}
}
