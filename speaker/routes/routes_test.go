package routes

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/announce"
)

// cmpNet compares netip values by ==.
var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

var (
	ipA  = netip.MustParseAddr("203.0.113.10")
	ipB  = netip.MustParseAddr("203.0.113.20")
	ip6  = netip.MustParseAddr("2001:db8:100::10")
	ipX  = netip.MustParseAddr("198.51.100.7") // in no pool
	ipO  = netip.MustParseAddr("192.0.2.200")  // in pool "other", which no advertisement covers
	self = netip.MustParseAddr("192.0.2.11")   // n1's InternalIP

	web   = types.NamespacedName{Namespace: "default", Name: "web"}
	api   = types.NamespacedName{Namespace: "default", Name: "api"}
	local = types.NamespacedName{Namespace: "shop", Name: "local"}

	secretRef = model.SecretRef{Namespace: "loadstone-system", Name: "bgp", Key: "password"}
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func sel(k, v string) []labels.Selector {
	return []labels.Selector{labels.SelectorFromSet(labels.Set{k: v})}
}

// modelPeer is a model peer with the model's defaults.
func modelPeer(name, addr string, my, peer uint32) *model.BGPPeer {
	return &model.BGPPeer{Name: name, MyASN: my, PeerASN: peer, Address: netip.MustParseAddr(addr), Port: 179,
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second}
}

// planPeer is what Compute makes of modelPeer.
func planPeer(name, addr string, my, peer uint32) Peer {
	return Peer{Name: name, MyASN: my, PeerASN: peer, Address: netip.MustParseAddr(addr), Port: 179,
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second}
}

// The base peers: r4 (eBGP, IPv4), r6 (eBGP, IPv6), ibgp (iBGP, IPv4).
var (
	r4   = planPeer("r4", "192.0.2.1", 64500, 64501)
	r6   = planPeer("r6", "2001:db8::1", 64500, 64501)
	ibgp = planPeer("ibgp", "192.0.2.2", 64500, 64500)
)

func ad(name string, pools ...string) *model.BGPAdvertisement {
	return &model.BGPAdvertisement{Name: name, Pools: pools, AggregationLength: 32, AggregationLengthV6: 128}
}

func std(aa, nn uint32) model.CommunityValue { return model.CommunityValue{Standard: aa<<16 | nn} }

func large(a, b, c uint32) model.CommunityValue {
	return model.CommunityValue{Large: true, LargeVal: [3]uint32{a, b, c}}
}

// base: node n1 of n1..n3 (all Ready and alive), the three peers for every node, one
// advertisement "all" of pools v4 and v6 with host routes, and Service web (Cluster) on
// ipA with a ready endpoint on n2.
func base() Input {
	cfg := &model.Config{
		Pools: map[string]*model.Pool{
			"v4":    {Name: "v4", Ranges: []model.Range{{First: netip.MustParseAddr("203.0.113.0"), Last: netip.MustParseAddr("203.0.113.255")}}},
			"v6":    {Name: "v6", Ranges: []model.Range{{First: netip.MustParseAddr("2001:db8:100::"), Last: netip.MustParseAddr("2001:db8:100::ffff")}}},
			"other": {Name: "other", Ranges: []model.Range{{First: netip.MustParseAddr("192.0.2.128"), Last: netip.MustParseAddr("192.0.2.255")}}},
		},
		BGPPeers: map[string]*model.BGPPeer{
			"r4":   modelPeer("r4", "192.0.2.1", 64500, 64501),
			"r6":   modelPeer("r6", "2001:db8::1", 64500, 64501),
			"ibgp": modelPeer("ibgp", "192.0.2.2", 64500, 64500),
		},
		BGPAdvertisements: map[string]*model.BGPAdvertisement{"all": ad("all", "v4", "v6")},
		BFDProfiles: map[string]*model.BFDProfile{"fast": {Name: "fast", ReceiveInterval: 50 * time.Millisecond,
			TransmitInterval: 60 * time.Millisecond, DetectMultiplier: 3, MinimumTTL: 254}},
	}
	return Input{
		Self: "n1", Config: cfg,
		Nodes: []announce.Node{
			{Name: "n1", Ready: true, Labels: map[string]string{"rack": "a"}},
			{Name: "n2", Ready: true, Labels: map[string]string{"rack": "b"}},
			{Name: "n3", Ready: true, Labels: map[string]string{"rack": "a"}},
		},
		Alive:        map[string]bool{"n1": true, "n2": true, "n3": true},
		ExcludeLabel: v1beta1.LabelExcludeFromLB,
		SelfIPv4:     self,
		Services:     []Service{cluster(web, "n2", 1, ipA)},
	}
}

// cluster is a Cluster-traffic Service with n ready endpoints on node.
func cluster(k types.NamespacedName, node string, n int, ips ...netip.Addr) Service {
	s := Service{Key: k, IPs: ips, Pool: "", ReadyCounts: map[string]int{}}
	if n > 0 {
		s.HasReadyEndpoint = true
		s.ReadyCounts[node] = n
	}
	return s
}

// localSvc is a Local-traffic Service with ready endpoints per node.
func localSvc(k types.NamespacedName, counts map[string]int, ips ...netip.Addr) Service {
	s := Service{Key: k, IPs: ips, LocalTraffic: true, ReadyCounts: counts}
	for _, n := range counts {
		if n > 0 {
			s.HasReadyEndpoint = true
		}
	}
	return s
}

func path(prefix string, svcs ...types.NamespacedName) Path {
	return Path{Prefix: pfx(prefix), Services: svcs}
}

func peers(ps ...Peer) []Peer { return ps }

// basePlan is Compute(base()).
func basePlan() Plan {
	return Plan{RouterID: self, Peers: peers(ibgp, r4, r6),
		Paths: map[string][]Path{"r4": {path("203.0.113.10/32", web)}, "ibgp": {path("203.0.113.10/32", web)}}}
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name   string
		change func(in *Input)
		want   func(p *Plan)
	}{
		{name: "base: a Cluster Service with an endpoint elsewhere goes to every IPv4 peer",
			change: func(*Input) {}, want: func(*Plan) {}},
		{name: "no config", change: func(in *Input) { in.Config = nil },
			want: func(p *Plan) { *p = Plan{Paths: map[string][]Path{}} }},
		{name: "this node has no Node object: nothing", change: func(in *Input) { in.Self = "n9" },
			want: func(p *Plan) { *p = Plan{Paths: map[string][]Path{}} }},

		// Eligibility.
		{name: "no ready endpoint anywhere: withdrawn",
			change: func(in *Input) { in.Services = []Service{cluster(web, "", 0, ipA)} },
			want:   func(p *Plan) { p.Paths = map[string][]Path{} }},
		{name: "a ready endpoint on no node still makes a Cluster Service live",
			change: func(in *Input) { in.Services[0].ReadyCounts = map[string]int{} },
			want:   func(*Plan) {}},
		{name: "node not Ready: sessions stay, no paths",
			change: func(in *Input) { in.Nodes[0].Ready = false },
			want:   func(p *Plan) { p.Paths = map[string][]Path{} }},
		{name: "member not alive: no paths",
			change: func(in *Input) { in.Alive = map[string]bool{"n2": true} },
			want:   func(p *Plan) { p.Paths = map[string][]Path{} }},
		{name: "degraded: Node Ready stands in for liveness",
			change: func(in *Input) { in.Degraded, in.Alive = true, nil },
			want:   func(*Plan) {}},
		{name: "degraded and not Ready: no paths",
			change: func(in *Input) { in.Degraded, in.Alive, in.Nodes[0].Ready = true, map[string]bool{"n1": true}, false },
			want:   func(p *Plan) { p.Paths = map[string][]Path{} }},
		{name: "exclude-from-LB label: no paths (any value)",
			change: func(in *Input) { in.Nodes[0].Labels[v1beta1.LabelExcludeFromLB] = "" },
			want:   func(p *Plan) { p.Paths = map[string][]Path{} }},
		{name: "IP in no pool, or in a pool no BGPAdvertisement covers: not advertised",
			change: func(in *Input) { in.Services = []Service{cluster(web, "n2", 1, ipX, ipO)} },
			want:   func(p *Plan) { p.Paths = map[string][]Path{} }},
		{name: "pool annotation wins over the containing pool",
			change: func(in *Input) {
				in.Config.Pools["v4b"] = &model.Pool{Name: "v4b", Ranges: in.Config.Pools["v4"].Ranges}
				in.Config.BGPAdvertisements["all"].Pools = []string{"v4b"} // only v4b is advertised
				in.Services = []Service{cluster(web, "n2", 1, ipA), cluster(api, "n2", 1, ipB)}
				in.Services[0].Pool = "v4b"
			},
			want: func(p *Plan) {}},
		{name: "Local: only with a ready endpoint here; link bandwidth by endpoint count",
			change: func(in *Input) {
				in.Services = []Service{localSvc(local, map[string]int{"n1": 3, "n2": 1}, ipA), localSvc(api, map[string]int{"n2": 2}, ipB)}
			},
			want: func(p *Plan) {
				lp := path("203.0.113.10/32", local)
				lp.LinkBandwidth = 3 * 125000
				p.Paths = map[string][]Path{"r4": {lp}, "ibgp": {lp}}
			}},
		{name: "Local IPv6 gets link bandwidth on its /128 too",
			change: func(in *Input) { in.Services = []Service{localSvc(local, map[string]int{"n1": 2}, ip6)} },
			want: func(p *Plan) {
				lp := path("2001:db8:100::10/128", local)
				lp.LinkBandwidth = 2 * 125000
				p.Paths = map[string][]Path{"r6": {lp}}
			}},
		{name: "shared IP: advertised when any Service is eligible here; only those listed; no bandwidth with a Cluster Service",
			change: func(in *Input) {
				in.Services = []Service{cluster(web, "n2", 1, ipA), localSvc(local, map[string]int{"n2": 1}, ipA), cluster(api, "", 0, ipA)}
			},
			want: func(*Plan) {}},
		{name: "shared IP of a Cluster and a Local Service, both with endpoints here: no bandwidth",
			change: func(in *Input) {
				in.Services = []Service{cluster(web, "n1", 2, ipA), localSvc(local, map[string]int{"n1": 1}, ipA)}
			},
			want: func(p *Plan) {
				pa := path("203.0.113.10/32", web, local)
				p.Paths = map[string][]Path{"r4": {pa}, "ibgp": {pa}}
			}},
		{name: "shared IP of two Local Services: bandwidth sums this node's endpoints of both",
			change: func(in *Input) {
				in.Services = []Service{localSvc(local, map[string]int{"n1": 1}, ipA), localSvc(web, map[string]int{"n1": 2, "n3": 5}, ipA)}
			},
			want: func(p *Plan) {
				lp := path("203.0.113.10/32", web, local)
				lp.LinkBandwidth = 3 * 125000
				p.Paths = map[string][]Path{"r4": {lp}, "ibgp": {lp}}
			}},
		{name: "shared IP of two Local Services, endpoints of one here: bandwidth of that one",
			change: func(in *Input) {
				in.Services = []Service{localSvc(local, map[string]int{"n1": 4}, ipA), localSvc(web, map[string]int{"n3": 5}, ipA)}
			},
			want: func(p *Plan) {
				lp := path("203.0.113.10/32", local)
				lp.LinkBandwidth = 4 * 125000
				p.Paths = map[string][]Path{"r4": {lp}, "ibgp": {lp}}
			}},

		// Family split, aggregation.
		{name: "dual-stack Service: IPv4 to IPv4 peers, IPv6 to IPv6 peers",
			change: func(in *Input) { in.Services = []Service{cluster(web, "n2", 1, ipA, ip6)} },
			want: func(p *Plan) {
				p.Paths["r6"] = []Path{path("2001:db8:100::10/128", web)}
			}},
		{name: "aggregation: one covering prefix per family, once, with every Service in it",
			change: func(in *Input) {
				a := in.Config.BGPAdvertisements["all"]
				a.AggregationLength, a.AggregationLengthV6 = 24, 64
				in.Services = []Service{cluster(web, "n2", 1, ipA, ip6), cluster(api, "n3", 1, ipB)}
			},
			want: func(p *Plan) {
				p.Paths = map[string][]Path{
					"r4":   {path("203.0.113.0/24", api, web)},
					"ibgp": {path("203.0.113.0/24", api, web)},
					"r6":   {path("2001:db8:100::/64", web)},
				}
			}},
		{name: "two advertisements with different lengths: both prefixes",
			change: func(in *Input) {
				agg := ad("agg", "v4")
				agg.AggregationLength = 28
				in.Config.BGPAdvertisements["agg"] = agg
			},
			want: func(p *Plan) {
				ps := []Path{path("203.0.113.0/28", web), path("203.0.113.10/32", web)}
				p.Paths = map[string][]Path{"r4": ps, "ibgp": ps}
			}},
		{name: "aggregate holding a Local Service's IP without endpoints here: a problem, no bandwidth",
			change: func(in *Input) {
				in.Config.BGPAdvertisements["all"].AggregationLength = 24
				in.Services = []Service{cluster(web, "n2", 1, ipA), localSvc(local, map[string]int{"n2": 1}, ipB), localSvc(api, map[string]int{"n1": 1}, netip.MustParseAddr("203.0.113.30"))}
			},
			want: func(p *Plan) {
				ps := []Path{path("203.0.113.0/24", api, web)}
				p.Paths = map[string][]Path{"r4": ps, "ibgp": ps}
				p.Problems = []Problem{{Kind: KindService, Name: "shop/local", Reason: ReasonLocalTrafficAggregated,
					Message: "externalTrafficPolicy is Local but LB IP 203.0.113.20 is inside aggregate 203.0.113.0/24, which node n1 advertises without a ready endpoint of the Service; traffic can reach it and be dropped (advertise this pool with aggregationLength 32 / aggregationLengthV6 128)"}}
			}},
		{name: "no such problem when another advertisement gives the pool host routes",
			change: func(in *Input) {
				agg := ad("agg", "v4")
				agg.AggregationLength = 24
				in.Config.BGPAdvertisements["agg"] = agg
				in.Services = []Service{cluster(web, "n2", 1, ipA), localSvc(local, map[string]int{"n2": 1}, ipB)}
			},
			want: func(p *Plan) {
				ps := []Path{path("203.0.113.0/24", web), path("203.0.113.10/32", web)}
				p.Paths = map[string][]Path{"r4": ps, "ibgp": ps}
			}},

		// Peer and node selection.
		{name: "advertisement names its peers",
			change: func(in *Input) { in.Config.BGPAdvertisements["all"].Peers = []string{"r4", "r6", "gone"} },
			want:   func(p *Plan) { delete(p.Paths, "ibgp") }},
		{name: "peer whose nodeSelectors do not match this node: no session",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].NodeSelectors = sel("rack", "b")
				in.Config.BGPPeers["ibgp"].NodeSelectors = append(sel("rack", "b"), sel("rack", "a")...)
			},
			want: func(p *Plan) {
				p.Peers = peers(ibgp, r6)
				delete(p.Paths, "r4")
			}},
		{name: "advertisement whose nodeSelectors do not match this node: nothing from here",
			change: func(in *Input) { in.Config.BGPAdvertisements["all"].NodeSelectors = sel("rack", "b") },
			want:   func(p *Plan) { p.Paths = map[string][]Path{} }},
		{name: "advertisement whose nodeSelectors match",
			change: func(in *Input) { in.Config.BGPAdvertisements["all"].NodeSelectors = sel("rack", "a") },
			want:   func(*Plan) {}},

		// Attributes.
		{name: "communities merged over advertisements, sorted, deduplicated; standard and large",
			change: func(in *Input) {
				in.Config.BGPAdvertisements["all"].Communities = []model.CommunityValue{std(65000, 2), large(1, 2, 3), std(65000, 1)}
				b := ad("b", "v4")
				b.Communities = []model.CommunityValue{std(65000, 1), large(1, 2, 3), large(1, 0, 9), std(100, 7)}
				in.Config.BGPAdvertisements["b"] = b
			},
			want: func(p *Plan) {
				pa := path("203.0.113.10/32", web)
				pa.Communities = []uint32{100<<16 | 7, 65000<<16 | 1, 65000<<16 | 2}
				pa.LargeCommunities = [][3]uint32{{1, 0, 9}, {1, 2, 3}}
				p.Paths = map[string][]Path{"r4": {pa}, "ibgp": {pa}}
			}},
		{name: "communities only from the advertisements that give the prefix to that peer",
			change: func(in *Input) {
				in.Config.BGPAdvertisements["all"].Communities = []model.CommunityValue{std(65000, 2)}
				b := ad("b", "v4")
				b.Communities, b.Peers = []model.CommunityValue{std(65000, 1)}, []string{"ibgp"}
				in.Config.BGPAdvertisements["b"] = b
			},
			want: func(p *Plan) {
				pa := path("203.0.113.10/32", web)
				pa.Communities = []uint32{65000<<16 | 2}
				pb := pa
				pb.Communities = []uint32{65000<<16 | 1, 65000<<16 | 2}
				p.Paths = map[string][]Path{"r4": {pa}, "ibgp": {pb}}
			}},
		{name: "localPref only to iBGP peers, the highest of the advertisements",
			change: func(in *Input) {
				in.Config.BGPAdvertisements["all"].LocalPref = 100
				b := ad("b", "v4")
				b.LocalPref = 300
				in.Config.BGPAdvertisements["b"] = b
				c := ad("c", "v4") // no localPref
				in.Config.BGPAdvertisements["c"] = c
			},
			want: func(p *Plan) {
				pi := path("203.0.113.10/32", web)
				pi.LocalPref, pi.HasLocalPref = 300, true
				p.Paths["ibgp"] = []Path{pi}
			}},

		// BFD and strict mode.
		{name: "BFD profile inlined; strict peer with BFD down gets no paths, session runs",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].BFDProfile, in.Config.BGPPeers["r4"].StrictBFD = "fast", true
				in.Config.BGPPeers["ibgp"].BFDProfile = "fast" // not strict
				in.BFDUp = map[string]bool{"r4": false, "ibgp": false}
			},
			want: func(p *Plan) {
				a, b := r4, ibgp
				a.BFD = &BFD{Profile: "fast", ReceiveInterval: 50 * time.Millisecond, TransmitInterval: 60 * time.Millisecond,
					DetectMultiplier: 3, MinimumTTL: 254, Strict: true}
				bfd := *a.BFD
				bfd.Strict = false
				b.BFD = &bfd
				p.Peers = peers(b, a, r6)
				delete(p.Paths, "r4")
			}},
		{name: "strict peer with BFD Up gets its paths",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].BFDProfile, in.Config.BGPPeers["r4"].StrictBFD = "fast", true
				in.BFDUp = map[string]bool{"r4": true}
			},
			want: func(p *Plan) {
				a := r4
				a.BFD = &BFD{Profile: "fast", ReceiveInterval: 50 * time.Millisecond, TransmitInterval: 60 * time.Millisecond,
					DetectMultiplier: 3, MinimumTTL: 254, Strict: true}
				p.Peers = peers(ibgp, a, r6)
			}},

		// Router ID.
		{name: "router ID from the peers when they set it",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].RouterID = netip.MustParseAddr("10.0.0.9")
				in.Config.BGPPeers["r6"].RouterID = netip.MustParseAddr("10.0.0.9")
			},
			want: func(p *Plan) { p.RouterID = netip.MustParseAddr("10.0.0.9") }},
		{name: "peers disagree on the router ID: the lowest, a problem for the others",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].RouterID = netip.MustParseAddr("10.0.0.9")
				in.Config.BGPPeers["r6"].RouterID = netip.MustParseAddr("10.0.0.10")
			},
			want: func(p *Plan) {
				p.RouterID = netip.MustParseAddr("10.0.0.9")
				p.Problems = []Problem{{Kind: KindBGPPeer, Name: "r6", Reason: ReasonRouterIDConflict,
					Message: "routerID 10.0.0.10 differs from the routerID of another BGPPeer selecting node n1; the node uses the lowest, 10.0.0.9"}}
			}},
		{name: "a disagreeing peer that does not select this node does not count",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].RouterID = netip.MustParseAddr("10.0.0.9")
				in.Config.BGPPeers["r6"].RouterID = netip.MustParseAddr("10.0.0.1")
				in.Config.BGPPeers["r6"].NodeSelectors = sel("rack", "b")
			},
			want: func(p *Plan) {
				p.RouterID = netip.MustParseAddr("10.0.0.9")
				p.Peers = peers(ibgp, r4)
			}},
		{name: "IPv6-only node without routerID: a problem per peer, no sessions",
			change: func(in *Input) { in.SelfIPv4, in.SelfIPv6 = netip.Addr{}, netip.MustParseAddr("2001:db8::11") },
			want: func(p *Plan) {
				msg := "node n1 has no IPv4 InternalIP and no BGPPeer selecting it sets routerID, so it has no BGP identifier and opens no session; set spec.routerID"
				*p = Plan{Paths: map[string][]Path{}, Problems: []Problem{
					{Kind: KindBGPPeer, Name: "ibgp", Reason: ReasonNoRouterID, Message: msg},
					{Kind: KindBGPPeer, Name: "r4", Reason: ReasonNoRouterID, Message: msg},
					{Kind: KindBGPPeer, Name: "r6", Reason: ReasonNoRouterID, Message: msg},
				}}
			}},
		{name: "IPv6-only node with a routerID on a peer",
			change: func(in *Input) {
				in.SelfIPv4 = netip.Addr{}
				in.Config.BGPPeers["r6"].RouterID = netip.MustParseAddr("10.0.0.7")
			},
			want: func(p *Plan) { p.RouterID = netip.MustParseAddr("10.0.0.7") }},
		{name: "no peer selects this node: no problem even without an IPv4 address",
			change: func(in *Input) {
				in.SelfIPv4 = netip.Addr{}
				for _, p := range in.Config.BGPPeers {
					p.NodeSelectors = sel("rack", "z")
				}
			},
			want: func(p *Plan) { *p = Plan{Paths: map[string][]Path{}} }},

		// Passwords.
		{name: "inline password",
			change: func(in *Input) { in.Config.BGPPeers["r4"].Password = "s3cret" },
			want: func(p *Plan) {
				a := r4
				a.Password = "s3cret"
				p.Peers = peers(ibgp, a, r6)
			}},
		{name: "password from its Secret",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].PasswordSecret = &secretRef
				in.Secrets = map[model.SecretRef][]byte{secretRef: []byte("from-secret")}
			},
			want: func(p *Plan) {
				a := r4
				a.Password = "from-secret"
				p.Peers = peers(ibgp, a, r6)
			}},
		{name: "Secret missing, no previous plan: the peer is left out with a problem",
			change: func(in *Input) { in.Config.BGPPeers["r4"].PasswordSecret = &secretRef },
			want: func(p *Plan) {
				p.Peers = peers(ibgp, r6)
				delete(p.Paths, "r4")
				p.Problems = []Problem{{Kind: KindBGPPeer, Name: "r4", Reason: ReasonPasswordSecretMissing,
					Message: `Secret loadstone-system/bgp or its key "password" is missing; no session to this peer until the password can be read`}}
			}},
		{name: "Secret key empty, previous plan had the peer: it keeps its previous version, routes stay",
			change: func(in *Input) {
				in.Config.BGPPeers["r4"].PasswordSecret = &secretRef
				in.Config.BGPPeers["r4"].HoldTime = 9 * time.Second // changed since; the old version stays
				in.Secrets = map[model.SecretRef][]byte{secretRef: {}}
				old := r4
				old.Password = "old"
				old.BFD = &BFD{Profile: "fast", Strict: false}
				in.Previous = &Plan{Peers: []Peer{r6, old}}
			},
			want: func(p *Plan) {
				old := r4
				old.Password = "old"
				old.BFD = &BFD{Profile: "fast"}
				p.Peers = peers(ibgp, old, r6)
				p.Problems = []Problem{{Kind: KindBGPPeer, Name: "r4", Reason: ReasonPasswordSecretMissing,
					Message: `Secret loadstone-system/bgp has no key "password" or it is empty; the session keeps its previous configuration`}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			tt.change(&in)
			want := basePlan()
			tt.want(&want)
			got := Compute(in)
			if diff := cmp.Diff(want, got, cmpNet); diff != "" {
				t.Errorf("Compute (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeptPeerIsACopy checks that a peer kept from the previous plan does not share its
// BFD parameters with it (the applier may hold on to the previous plan).
func TestKeptPeerIsACopy(t *testing.T) {
	in := base()
	in.Config.BGPPeers["r4"].PasswordSecret = &secretRef
	old := r4
	old.BFD = &BFD{Profile: "fast"}
	in.Previous = &Plan{Peers: []Peer{old}}
	got := Compute(in)
	if len(got.Peers) != 3 || got.Peers[1].BFD == nil || got.Peers[1].BFD == old.BFD {
		t.Fatalf("kept peer %+v shares BFD with the previous plan", got.Peers)
	}
}
