package announce

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/speaker/election"
)

// For 203.0.113.10 the rank order of n1..n4 is n4 n3 n1 n2 (see election tests); for
// 2001:db8:100::10 it is n4 n2 n1 n3.
var (
	ip10 = netip.MustParseAddr("203.0.113.10")
	ip6  = netip.MustParseAddr("2001:db8:100::10")
	ipX  = netip.MustParseAddr("198.51.100.7") // in no pool
	svcA = types.NamespacedName{Namespace: "default", Name: "a"}
	svcB = types.NamespacedName{Namespace: "other", Name: "b"}
)

func cfg(ads ...*model.L2Advertisement) *model.Config {
	c := &model.Config{
		Pools: map[string]*model.Pool{
			"v4": {Name: "v4", Ranges: []model.Range{{First: netip.MustParseAddr("203.0.113.0"), Last: netip.MustParseAddr("203.0.113.255")}}},
			"v6": {Name: "v6", Ranges: []model.Range{{First: netip.MustParseAddr("2001:db8:100::"), Last: netip.MustParseAddr("2001:db8:100::ffff")}}},
		},
		L2Advertisements: map[string]*model.L2Advertisement{},
	}
	for _, a := range ads {
		c.L2Advertisements[a.Name] = a
	}
	return c
}

func nodes() []Node {
	return []Node{
		{Name: "n1", Ready: true, Labels: map[string]string{"zone": "a"}},
		{Name: "n2", Ready: true, Labels: map[string]string{"zone": "b"}},
		{Name: "n3", Ready: true, Labels: map[string]string{"zone": "a"}},
		{Name: "n4", Ready: true, Labels: map[string]string{"zone": "b"}},
	}
}

func alive(ns ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range ns {
		m[n] = true
	}
	return m
}

func svc(k types.NamespacedName, ips ...netip.Addr) Service {
	return Service{Key: k, IPs: ips, HasReadyEndpoint: true, ReadyNodes: map[string]bool{"n1": true}}
}

func sel(s string) labels.Selector {
	l, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return l
}

func snap(self string, c *model.Config, svcs ...Service) Snapshot {
	return Snapshot{Self: self, Config: c, Services: svcs, Nodes: nodes(), Alive: alive("n1", "n2", "n3", "n4"),
		Interfaces: map[string]bool{"eth0": true, "eth1": true}, ExcludeLabel: "node.kubernetes.io/exclude-from-external-load-balancers"}
}

var allPools = &model.L2Advertisement{Name: "all", Pools: []string{"v4", "v6"}}

func TestCompute(t *testing.T) {
	tests := []struct {
		name     string
		snap     Snapshot
		wantOwn  []Announcement
		winners  map[netip.Addr]string
		problems []Problem
		missing  []MissingInterface
	}{{
		name:    "winner announces on the route interface",
		snap:    snap("n4", cfg(allPools), svc(svcA, ip10)),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n4"},
	}, {
		name:    "non-winner announces nothing",
		snap:    snap("n3", cfg(allPools), svc(svcA, ip10)),
		winners: map[netip.Addr]string{ip10: "n4"},
	}, {
		name: "dual-stack service: each IP elected on its own",
		snap: snap("n4", cfg(allPools), svc(svcA, ip10, ip6)),
		wantOwn: []Announcement{
			{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"},
			{IP: ip6, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v6"},
		},
		winners: map[netip.Addr]string{ip10: "n4", ip6: "n4"},
	}, {
		name: "dead member: next by rank",
		snap: func() Snapshot {
			s := snap("n3", cfg(allPools), svc(svcA, ip10))
			s.Alive = alive("n1", "n2", "n3")
			return s
		}(),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n3"},
	}, {
		name: "degraded: Node readiness stands in for liveness",
		snap: func() Snapshot {
			s := snap("n4", cfg(allPools), svc(svcA, ip10))
			s.Alive = alive("n4")
			s.Degraded = true
			s.Nodes[3].Ready = false // n4 not ready
			return s
		}(),
		winners: map[netip.Addr]string{ip10: "n3"},
	}, {
		name: "excluded label",
		snap: func() Snapshot {
			s := snap("n3", cfg(allPools), svc(svcA, ip10))
			s.Nodes[3].Labels = map[string]string{"node.kubernetes.io/exclude-from-external-load-balancers": ""}
			return s
		}(),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n3"},
	}, {
		name: "node selectors: only zone a",
		snap: snap("n3", cfg(&model.L2Advertisement{Name: "za", Pools: []string{"v4"}, NodeSelectors: []labels.Selector{sel("zone=a")}}),
			svc(svcA, ip10)),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n3"},
	}, {
		name: "interfaces: union of the advertisements selecting this node",
		snap: snap("n4", cfg(
			&model.L2Advertisement{Name: "x", Pools: []string{"v4"}, Interfaces: []string{"eth1"}},
			&model.L2Advertisement{Name: "y", Pools: []string{"v4"}, Interfaces: []string{"eth0", "eth1"}},
			&model.L2Advertisement{Name: "z", Pools: []string{"v4"}, Interfaces: []string{"eth9"}, NodeSelectors: []labels.Selector{sel("zone=a")}},
		), svc(svcA, ip10)),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{"eth0", "eth1"}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n4"},
	}, {
		name: "interfaces: an advertisement without interfaces means the route interface",
		snap: snap("n4", cfg(
			&model.L2Advertisement{Name: "x", Pools: []string{"v4"}, Interfaces: []string{"eth1"}},
			&model.L2Advertisement{Name: "y", Pools: []string{"v4"}},
		), svc(svcA, ip10)),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n4"},
	}, {
		name: "missing interface: problem, the others are kept",
		snap: snap("n4", cfg(&model.L2Advertisement{Name: "x", Pools: []string{"v4"}, Interfaces: []string{"eth1", "eth7"}}),
			svc(svcA, ip10)),
		wantOwn:  []Announcement{{IP: ip10, Interfaces: []string{"eth1"}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners:  map[netip.Addr]string{ip10: "n4"},
		problems: []Problem{{Kind: InterfaceMissing, Advertisement: "x", Interface: "eth7", IP: ip10, Services: []types.NamespacedName{svcA}}},
		missing:  []MissingInterface{{Advertisement: "x", Interface: "eth7"}},
	}, {
		// Issue 12: the advertisement without interfaces (sorted first here) hid the
		// misspelled name of the other one.
		name: "missing interface next to an advertisement without interfaces: route interface, problem kept",
		snap: snap("n4", cfg(
			&model.L2Advertisement{Name: "a-any", Pools: []string{"v4"}},
			&model.L2Advertisement{Name: "b-typo", Pools: []string{"v4"}, Interfaces: []string{"eht0"}},
		), svc(svcA, ip10)),
		wantOwn:  []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners:  map[netip.Addr]string{ip10: "n4"},
		problems: []Problem{{Kind: InterfaceMissing, Advertisement: "b-typo", Interface: "eht0", IP: ip10, Services: []types.NamespacedName{svcA}}},
		missing:  []MissingInterface{{Advertisement: "b-typo", Interface: "eht0"}},
	}, {
		name: "non-winner: no problem for the IP, but its missing interfaces are listed",
		snap: snap("n3", cfg(
			&model.L2Advertisement{Name: "a-any", Pools: []string{"v4"}},
			&model.L2Advertisement{Name: "b-typo", Pools: []string{"v4"}, Interfaces: []string{"eth0", "eht0", "eht0"}},
			&model.L2Advertisement{Name: "c-zone-b", Pools: []string{"v4"}, Interfaces: []string{"eth9"}, NodeSelectors: []labels.Selector{sel("zone=b")}},
		), svc(svcA, ip10)),
		winners: map[netip.Addr]string{ip10: "n4"},
		missing: []MissingInterface{{Advertisement: "b-typo", Interface: "eht0"}},
	}, {
		name: "only missing interfaces: not announced, problems; other IPs unaffected",
		snap: snap("n4", cfg(
			&model.L2Advertisement{Name: "x", Pools: []string{"v4"}, Interfaces: []string{"eth7"}},
			&model.L2Advertisement{Name: "y", Pools: []string{"v6"}},
		), svc(svcA, ip10), svc(svcB, ip6)),
		wantOwn: []Announcement{{IP: ip6, Interfaces: []string{}, Services: []types.NamespacedName{svcB}, Pool: "v6"}},
		winners: map[netip.Addr]string{ip10: "n4", ip6: "n4"},
		problems: []Problem{
			{Kind: InterfaceMissing, Advertisement: "x", Interface: "eth7", IP: ip10, Services: []types.NamespacedName{svcA}},
			{Kind: NoUsableInterface, IP: ip10, Services: []types.NamespacedName{svcA}},
		},
		missing: []MissingInterface{{Advertisement: "x", Interface: "eth7"}},
	}, {
		name:    "pool without L2Advertisement: not an L2 IP",
		snap:    snap("n4", cfg(&model.L2Advertisement{Name: "v6only", Pools: []string{"v6"}}), svc(svcA, ip10)),
		winners: map[netip.Addr]string{},
	}, {
		name:     "IP in no pool: problem",
		snap:     snap("n4", cfg(allPools), svc(svcA, ipX)),
		winners:  map[netip.Addr]string{},
		problems: []Problem{{Kind: IPNotInPool, IP: ipX, Services: []types.NamespacedName{svcA}}},
	}, {
		name: "shared IP: both services on one node, one announcement",
		snap: snap("n4", cfg(allPools), svc(svcB, ip10), svc(svcA, ip10)),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA, svcB},
			Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n4"},
	}, {
		name: "ETP Local: to the node with endpoints",
		snap: snap("n1", cfg(allPools), Service{Key: svcA, IPs: []netip.Addr{ip10}, LocalTraffic: true,
			HasReadyEndpoint: true, ReadyNodes: map[string]bool{"n1": true, "n2": true}}),
		wantOwn: []Announcement{{IP: ip10, Interfaces: []string{}, Services: []types.NamespacedName{svcA}, Pool: "v4"}},
		winners: map[netip.Addr]string{ip10: "n1"},
	}, {
		name:    "no ready endpoint: not announced",
		snap:    snap("n4", cfg(allPools), Service{Key: svcA, IPs: []netip.Addr{ip10}}),
		winners: map[netip.Addr]string{ip10: ""},
	}, {
		name:    "no config: nothing",
		snap:    Snapshot{Self: "n4", Services: []Service{svc(svcA, ip10)}},
		winners: map[netip.Addr]string{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(tc.snap)
			addrCmp := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
			if d := cmp.Diff(tc.wantOwn, p.Own, addrCmp, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Own (-want +got):\n%s", d)
			}
			// Empty and nil interface lists mean different things to callers: check exactly.
			for i := range p.Own {
				if i < len(tc.wantOwn) && (tc.wantOwn[i].Interfaces == nil) != (p.Own[i].Interfaces == nil) {
					t.Errorf("Own[%d].Interfaces nil-ness differs", i)
				}
			}
			got := map[netip.Addr]string{}
			for ip, e := range p.Elections {
				got[ip] = e.Result.Winner
			}
			if d := cmp.Diff(tc.winners, got, addrCmp, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("winners (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.problems, p.Problems, addrCmp, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Problems (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.missing, p.Missing, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Missing (-want +got):\n%s", d)
			}
		})
	}
}

func TestComputeStatusOfNoEndpoint(t *testing.T) {
	p := Compute(snap("n4", cfg(allPools), Service{Key: svcA, IPs: []netip.Addr{ip10}}))
	if s := p.Elections[ip10].Result.Status; s != election.NoReadyEndpoint {
		t.Fatalf("status %v", s)
	}
}

func TestResolveConflict(t *testing.T) {
	// For ip10, n4 ranks before n3.
	if a := ResolveConflict("n3", "n4", ip10); a != Yield {
		t.Errorf("n3 against n4: %v, want Yield", a)
	}
	if a := ResolveConflict("n4", "n3", ip10); a != Defend {
		t.Errorf("n4 against n3: %v, want Defend", a)
	}
	if a := ResolveConflict("n3", "", ip10); a != Defend {
		t.Errorf("against a non-speaker MAC: %v, want Defend", a)
	}
	// Exactly one side yields for any pair.
	for _, pair := range [][2]string{{"n1", "n2"}, {"n1", "n3"}, {"n2", "n4"}} {
		a, b := ResolveConflict(pair[0], pair[1], ip6), ResolveConflict(pair[1], pair[0], ip6)
		if (a == Yield) == (b == Yield) {
			t.Errorf("%v: %v / %v", pair, a, b)
		}
	}
}
