package coverage

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
)

var (
	ipA   = netip.MustParseAddr("203.0.113.10")
	ipB   = netip.MustParseAddr("198.51.100.10")
	ip6   = netip.MustParseAddr("2001:db8:100::10")
	ipX   = netip.MustParseAddr("192.0.2.99") // in no pool
	web   = types.NamespacedName{Namespace: "default", Name: "web"}
	api   = types.NamespacedName{Namespace: "other", Name: "api"}
	other = types.NamespacedName{Namespace: "other", Name: "other"}
	addr  = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
)

func sel(s string) labels.Selector {
	l, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return l
}

func rng(first, last string) model.Range {
	return model.Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
}

// config: pool "l2" (203.0.113.0/24 and 2001:db8:100::/112) and pool "bare"
// (198.51.100.0/24), plus the given advertisements and peers.
func config(opts ...func(*model.Config)) *model.Config {
	c := &model.Config{
		Pools: map[string]*model.Pool{
			"l2":   {Name: "l2", Ranges: []model.Range{rng("203.0.113.0", "203.0.113.255"), rng("2001:db8:100::", "2001:db8:100::ffff")}},
			"bare": {Name: "bare", Ranges: []model.Range{rng("198.51.100.0", "198.51.100.255")}},
		},
		L2Advertisements:  map[string]*model.L2Advertisement{},
		BGPAdvertisements: map[string]*model.BGPAdvertisement{},
		BGPPeers:          map[string]*model.BGPPeer{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func l2(name string, pools []string, sels ...string) func(*model.Config) {
	return func(c *model.Config) {
		ad := &model.L2Advertisement{Name: name, Pools: pools}
		for _, s := range sels {
			ad.NodeSelectors = append(ad.NodeSelectors, sel(s))
		}
		c.L2Advertisements[name] = ad
	}
}

func bgp(name string, pools, peers []string, sels ...string) func(*model.Config) {
	return func(c *model.Config) {
		ad := &model.BGPAdvertisement{Name: name, Pools: pools, Peers: peers}
		for _, s := range sels {
			ad.NodeSelectors = append(ad.NodeSelectors, sel(s))
		}
		c.BGPAdvertisements[name] = ad
	}
}

func peer(name string, sels ...string) func(*model.Config) {
	return func(c *model.Config) {
		p := &model.BGPPeer{Name: name}
		for _, s := range sels {
			p.NodeSelectors = append(p.NodeSelectors, sel(s))
		}
		c.BGPPeers[name] = p
	}
}

func nodes() []Node {
	return []Node{
		{Name: "n1", Ready: true, Labels: map[string]string{"zone": "a"}},
		{Name: "n2", Ready: true, Labels: map[string]string{"zone": "b"}},
		{Name: "n3", Ready: false, Labels: map[string]string{"zone": "c"}},
		{Name: "n4", Ready: true, Labels: map[string]string{"zone": "d", "node.kubernetes.io/exclude-from-external-load-balancers": ""}},
	}
}

func service(k types.NamespacedName, ips ...netip.Addr) Service {
	return Service{Key: k, IPs: ips, HasReadyEndpoint: true, ReadyNodes: map[string]bool{"n1": true}}
}

func local(s Service, nodes ...string) Service {
	s.LocalTraffic = true
	s.ReadyNodes = map[string]bool{}
	for _, n := range nodes {
		s.ReadyNodes[n] = true
	}
	s.HasReadyEndpoint = len(nodes) > 0
	return s
}

func TestUnannounced(t *testing.T) {
	type want struct {
		svc    types.NamespacedName
		ip     netip.Addr
		reason Reason
		msg    string
	}
	tests := []struct {
		name string
		cfg  *model.Config
		svcs []Service
		want []want
	}{{
		name: "covered by an L2Advertisement for every node",
		cfg:  config(l2("all", []string{"l2"})),
		svcs: []Service{service(web, ipA, ip6)},
	}, {
		name: "no advertisement covers the pool",
		cfg:  config(l2("all", []string{"l2"})),
		svcs: []Service{service(web, ipA), service(api, ipB)},
		want: []want{{api, ipB, NoAdvertisement, "198.51.100.10 (pool bare) is announced by no node: no L2Advertisement or BGPAdvertisement covers pool bare"}},
	}, {
		name: "no advertisement at all, without endpoints too (configuration, not the app)",
		cfg:  config(),
		svcs: []Service{{Key: web, IPs: []netip.Addr{ipA}}},
		want: []want{{web, ipA, NoAdvertisement, "pool l2"}},
	}, {
		name: "IP in no pool",
		cfg:  config(l2("all", []string{"l2"})),
		svcs: []Service{service(web, ipX)},
		want: []want{{web, ipX, NoPool, "192.0.2.99 is announced by no node: it lies in no IPAddressPool"}},
	}, {
		name: "annotated pool that holds the IP wins; one that does not is ignored",
		cfg:  config(l2("all", []string{"l2"})),
		svcs: []Service{{Key: web, IPs: []netip.Addr{ipB}, Pools: []string{"l2"}, HasReadyEndpoint: true}},
		want: []want{{web, ipB, NoAdvertisement, "pool bare"}},
	}, {
		name: "node selectors match no node",
		cfg:  config(l2("za", []string{"l2"}, "zone=z")),
		svcs: []Service{service(web, ipA)},
		want: []want{{web, ipA, NoEligibleNode, "L2Advertisement za: no Ready node that is not excluded from load balancing matches its node selectors"}},
	}, {
		name: "selectors match only a NotReady node and an excluded one",
		cfg:  config(l2("cd", []string{"l2"}, "zone=c", "zone=d")),
		svcs: []Service{service(web, ipA)},
		want: []want{{web, ipA, NoEligibleNode, "L2Advertisement cd: no Ready node"}},
	}, {
		name: "one of two advertisements has an eligible node",
		cfg:  config(l2("za", []string{"l2"}, "zone=z"), l2("zb", []string{"l2"}, "zone=b")),
		svcs: []Service{service(web, ipA)},
	}, {
		name: "ETP Local: endpoints only on nodes the advertisement does not select",
		cfg:  config(l2("zb", []string{"l2"}, "zone=b")),
		svcs: []Service{local(service(web, ipA), "n1")},
		want: []want{{web, ipA, NoEligibleNode, "L2Advertisement zb: none of the 1 nodes it selects has a ready endpoint of the Service (externalTrafficPolicy Local)"}},
	}, {
		name: "ETP Local: an endpoint on a selected node",
		cfg:  config(l2("zb", []string{"l2"}, "zone=b")),
		svcs: []Service{local(service(web, ipA), "n1", "n2")},
	}, {
		name: "ETP Local: endpoints only on the excluded node",
		cfg:  config(l2("all", []string{"l2"})),
		svcs: []Service{local(service(web, ipA), "n4")},
		want: []want{{web, ipA, NoEligibleNode, "none of the 2 nodes it selects"}},
	}, {
		name: "no ready endpoint at all: not reported (no speaker announces it by design)",
		cfg:  config(l2("za", []string{"l2"}, "zone=z")),
		svcs: []Service{local(service(web, ipA)), {Key: api, IPs: []netip.Addr{ipA}}},
	}, {
		name: "BGP: covered, peer for every node",
		cfg:  config(bgp("b", []string{"bare"}, nil), peer("r1")),
		svcs: []Service{service(api, ipB)},
	}, {
		name: "BGP: no peer at all",
		cfg:  config(bgp("b", []string{"bare"}, nil)),
		svcs: []Service{service(api, ipB)},
		want: []want{{api, ipB, NoEligibleNode, "BGPAdvertisement b: there is no BGPPeer"}},
	}, {
		name: "BGP: the advertisement's peer selects a node the advertisement does not",
		cfg:  config(bgp("b", []string{"bare"}, []string{"r1"}, "zone=a"), peer("r1", "zone=b"), peer("r2", "zone=a")),
		svcs: []Service{service(api, ipB)},
		want: []want{{api, ipB, NoEligibleNode, "BGPAdvertisement b: no Ready node"}},
	}, {
		name: "BGP: all peers when the advertisement names none",
		cfg:  config(bgp("b", []string{"bare"}, nil, "zone=a"), peer("r1", "zone=b"), peer("r2", "zone=a")),
		svcs: []Service{service(api, ipB)},
	}, {
		name: "L2 without eligible node, BGP with one: announced",
		cfg:  config(l2("za", []string{"bare"}, "zone=z"), bgp("b", []string{"bare"}, nil), peer("r1")),
		svcs: []Service{service(api, ipB)},
	}, {
		name: "both without eligible node: both explained",
		cfg:  config(l2("za", []string{"bare"}, "zone=z"), bgp("b", []string{"bare"}, nil)),
		svcs: []Service{service(api, ipB)},
		want: []want{{api, ipB, NoEligibleNode, "no node is eligible: L2Advertisement za: no Ready node that is not excluded from load balancing matches its node selectors (and, for BGP, a peer's); BGPAdvertisement b: there is no BGPPeer"}},
	}, {
		name: "dual stack: each IP on its own; sorted by Service, then IP",
		cfg:  config(l2("all", []string{"l2"})),
		svcs: []Service{service(web, ipB, ipA), service(api, ipX)},
		want: []want{
			{web, ipB, NoAdvertisement, "pool bare"},
			{api, ipX, NoPool, "no IPAddressPool"},
		},
	}, {
		name: "no configuration yet: nothing",
		svcs: []Service{service(web, ipA)},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Unannounced(Input{Config: tc.cfg, Services: tc.svcs, Nodes: nodes(), ExcludeLabel: "node.kubernetes.io/exclude-from-external-load-balancers"})
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Service != w.svc || g.IP != w.ip || g.Reason != w.reason || !strings.Contains(g.Message, w.msg) {
					t.Errorf("finding %d: %+v, want %v %v %v containing %q", i, g, w.svc, w.ip, w.reason, w.msg)
				}
			}
		})
	}
}

// NotAnnounced: the configuration lets nodes announce, but no speaker reports doing so.
func TestUnannouncedNotReported(t *testing.T) {
	cfg := config(l2("all", []string{"l2"}), bgp("b", []string{"bare"}, nil), peer("r1"))
	svcs := []Service{service(web, ipA, ip6), service(api, ipB), local(service(other, ipA))}
	tests := []struct {
		name string
		pub  *Published
		want []Key
	}{
		{"not checked", nil, nil},
		{"nothing published", &Published{}, []Key{{web, ipA, NotAnnounced}, {web, ip6, NotAnnounced}, {api, ipB, NotAnnounced}}},
		{"L2 status lists the IPv4, a BGP /24 holds the other pool's IP", &Published{
			L2:  map[netip.Addr]bool{ipA: true},
			BGP: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		}, []Key{{web, ip6, NotAnnounced}}},
		{"a BGP prefix of another pool does not count", &Published{
			L2:  map[netip.Addr]bool{ipA: true, ip6: true},
			BGP: []netip.Prefix{netip.MustParsePrefix("198.51.101.0/24")},
		}, []Key{{api, ipB, NotAnnounced}}},
		{"a partial BGP list counts as announcing everything", &Published{BGPPartial: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Key
			for _, f := range Unannounced(Input{Config: cfg, Nodes: nodes(), Services: svcs, Published: tc.pub}) {
				got = append(got, f.Key())
			}
			// other (ETP Local without endpoints) is never reported: nothing announces it by design.
			if d := cmp.Diff(tc.want, got, addr, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// Unannounced is deterministic whatever the input order.
func TestUnannouncedOrder(t *testing.T) {
	cfg := config(l2("all", []string{"l2"}))
	a := Unannounced(Input{Config: cfg, Nodes: nodes(), Services: []Service{service(web, ipX, ipB), service(api, ipB)}})
	b := Unannounced(Input{Config: cfg, Nodes: nodes(), Services: []Service{service(api, ipB), service(web, ipB, ipX)}})
	if d := cmp.Diff(a, b, addr, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("order matters (-a +b):\n%s", d)
	}
	if len(a) != 3 {
		t.Errorf("findings %+v", a)
	}
}
