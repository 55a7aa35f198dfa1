package routes

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/observe"
)

// Problem kinds (Problem.Kind).
const (
	KindBGPPeer          = model.KindBGPPeer
	KindBGPAdvertisement = model.KindBGPAdvertisement
	KindService          = "Service"
)

// Problem reasons (Problem.Reason).
const (
	// ReasonPasswordSecretMissing: the peer's passwordSecret, or its key, is missing or
	// empty. The peer keeps its previous configuration, or is left out if it had none.
	ReasonPasswordSecretMissing = "PasswordSecretMissing"
	// ReasonRouterIDConflict: peers selecting this node set different routerIDs; the
	// lowest is used.
	ReasonRouterIDConflict = "RouterIDConflict"
	// ReasonNoRouterID: no peer selecting this node sets routerID and the node has no IPv4
	// InternalIP; no session runs on the node.
	ReasonNoRouterID = "NoRouterID"
	// ReasonLocalTrafficAggregated: a Service with externalTrafficPolicy Local has an IP
	// inside an aggregate this node advertises while it holds none of its endpoints.
	ReasonLocalTrafficAggregated = "LocalTrafficAggregated"
)

// BandwidthPerEndpoint is the link bandwidth advertised per ready local endpoint, in bytes
// per second: 125000 B/s is 1 Mbit/s, so a router shows the endpoint count as Mbit/s
// (FRR: "3.000 Mbps" for three endpoints) and routers that keep the value in kbit/s or
// Mbit/s do not round it to zero. Only the ratios between next hops matter for the weights.
const BandwidthPerEndpoint = 125000

// Service is what the decision needs of a LoadBalancer Service.
type Service struct {
	Key types.NamespacedName
	// IPs are the LB IPs of status.loadBalancer.ingress.
	IPs []netip.Addr
	// Pool is the allocated-from-pool annotation ("" when absent).
	Pool string
	// LocalTraffic: externalTrafficPolicy is Local.
	LocalTraffic bool
	// HasReadyEndpoint: at least one ready endpoint exists, on any node or none.
	HasReadyEndpoint bool
	// ReadyCounts maps a node to its number of ready endpoints.
	ReadyCounts map[string]int
}

// Input is everything Compute reads.
type Input struct {
	// Self is this node's name.
	Self   string
	Config *model.Config
	// Nodes of the cluster (this node's labels and readiness are read from here).
	Nodes []announce.Node
	// Alive are the live members; ignored when Degraded.
	Alive map[string]bool
	// Degraded: membership is unusable; Node readiness stands in for liveness.
	Degraded bool
	// ExcludeLabel is the Node label that removes a node from load balancing.
	ExcludeLabel string
	Services     []Service
	// SelfIPv4 and SelfIPv6 are this node's InternalIPs (zero when absent).
	SelfIPv4, SelfIPv6 netip.Addr
	// Secrets holds the passwordSecrets found (missing: no entry).
	Secrets map[model.SecretRef][]byte
	// BFDUp maps a peer name to whether its BFD session is Up (strict mode reads it).
	BFDUp map[string]bool
	// Previous is the last Plan (nil at start): a peer whose password cannot be read keeps
	// its version from here.
	Previous *Plan
	// Gated are the LB IPs served by this node's dataplane (some Service uses them in
	// dataplane mode pods or nodeport): such an IP is advertised only when Carried says
	// the dataplane has programmed it (announce only when ready). IPs not in Gated are
	// left to kube-proxy and not affected.
	Gated   map[netip.Addr]bool
	Carried map[netip.Addr]bool
}

// FromSnapshot returns the Input for node s.Self: alive is the live set the heal policy
// decided (as for layer 2), bfdUp the BFD session states by peer name, prev the last Plan.
func FromSnapshot(s *observe.Snapshot, alive, bfdUp map[string]bool, prev *Plan) Input {
	in := Input{Self: s.Self, Config: s.Config, Nodes: s.Nodes, Alive: alive, Degraded: s.Degraded,
		ExcludeLabel: v1beta1.LabelExcludeFromLB, SelfIPv4: s.SelfIPv4, SelfIPv6: s.SelfIPv6,
		Secrets: s.Secrets, BFDUp: bfdUp, Previous: prev, Gated: s.Gated}
	for _, k := range s.Keys {
		svc := s.Services[k]
		in.Services = append(in.Services, Service{Key: svc.Key, IPs: svc.IPs, Pool: svc.Pool,
			LocalTraffic: svc.LocalTraffic, HasReadyEndpoint: svc.HasReadyEndpoint, ReadyCounts: svc.ReadyCounts})
	}
	return in
}

// Compute decides this node's BGP Plan; the rules are in the package doc.
func Compute(in Input) Plan {
	plan := Plan{Paths: map[string][]Path{}}
	var problems []Problem
	if in.Config == nil {
		return plan
	}
	self, ok := findNode(in.Nodes, in.Self)
	if !ok {
		return plan
	}
	cfg := in.Config

	// Peers selecting this node, by name.
	var selecting []*model.BGPPeer
	for _, name := range slices.Sorted(maps.Keys(cfg.BGPPeers)) {
		if p := cfg.BGPPeers[name]; matches(p.NodeSelectors, self) {
			selecting = append(selecting, p)
		}
	}
	rid, ridProblems := routerID(selecting, in.SelfIPv4, in.Self)
	problems = append(problems, ridProblems...)
	plan.RouterID = rid
	if !rid.IsValid() {
		plan.Problems = sortProblems(problems)
		return plan
	}
	byName := map[string]*Peer{}
	for _, mp := range selecting {
		peer, prob, ok := resolvePeer(mp, cfg, in.Secrets, in.Previous)
		if prob != nil {
			problems = append(problems, *prob)
		}
		if ok {
			plan.Peers = append(plan.Peers, peer)
		}
	}
	for i := range plan.Peers {
		byName[plan.Peers[i].Name] = &plan.Peers[i]
	}

	// This node may advertise at all: alive (or Ready when degraded), Ready, not excluded.
	alive := in.Alive[self.Name]
	if in.Degraded {
		alive = self.Ready
	}
	_, excluded := self.Labels[in.ExcludeLabel]
	nodeOK := alive && self.Ready && !(in.ExcludeLabel != "" && excluded)

	groups := groupByIP(in.Services)
	ips := slices.SortedFunc(maps.Keys(groups), netip.Addr.Compare)
	type key struct {
		peer   string
		prefix netip.Prefix
	}
	acc := map[key]*pathAcc{}
	advertised := map[netip.Prefix]bool{}
	for _, ip := range ips {
		svcs := groups[ip]
		pool := poolOf(cfg, svcs, ip)
		if pool == "" || !nodeOK || (in.Gated[ip] && !in.Carried[ip]) {
			continue
		}
		ads := adsFor(cfg, pool, self)
		if len(ads) == 0 {
			continue
		}
		eligible, bw := eligibility(svcs, self.Name)
		if len(eligible) == 0 {
			continue
		}
		for _, ad := range ads {
			bits := ad.AggregationLength
			if ip.Is6() {
				bits = ad.AggregationLengthV6
			}
			pfx, err := ip.Prefix(bits)
			if err != nil {
				continue // the model keeps lengths within the family's range
			}
			for _, peer := range peersOf(ad, plan.Peers) {
				if peer.Address.Unmap().Is4() != ip.Is4() {
					continue // a prefix goes only to peers of its own family
				}
				k := key{peer.Name, pfx}
				a := acc[k]
				if a == nil {
					a = &pathAcc{services: map[types.NamespacedName]bool{}}
					acc[k] = a
				}
				a.add(ad, peer.IBGP(), eligible)
				if pfx.Bits() == ip.BitLen() {
					a.bandwidth = bw
				}
				advertised[pfx] = true
			}
		}
	}
	for k, a := range acc {
		if p := byName[k.peer]; p.BFD != nil && p.BFD.Strict && !in.BFDUp[p.Name] {
			continue // strict mode: nothing until BFD is Up
		}
		plan.Paths[k.peer] = append(plan.Paths[k.peer], a.path(k.prefix))
	}
	for name := range plan.Paths {
		slices.SortFunc(plan.Paths[name], func(a, b Path) int { return a.Prefix.Compare(b.Prefix) })
	}
	problems = append(problems, aggregationProblems(cfg, groups, ips, advertised, self.Name)...)
	plan.Problems = sortProblems(problems)
	return plan
}

func findNode(nodes []announce.Node, name string) (announce.Node, bool) {
	for _, n := range nodes {
		if n.Name == name && name != "" {
			return n, true
		}
	}
	return announce.Node{}, false
}

// matches reports whether one of sels matches n; no selector matches every node.
func matches(sels []labels.Selector, n announce.Node) bool {
	if len(sels) == 0 {
		return true
	}
	for _, s := range sels {
		if s.Matches(labels.Set(n.Labels)) {
			return true
		}
	}
	return false
}

// routerID chooses the BGP identifier: the peers' routerID (the lowest when they
// disagree, with a problem for each peer that sets another), else the node's IPv4
// InternalIP; neither: no identifier and a problem for each selecting peer.
func routerID(peers []*model.BGPPeer, v4 netip.Addr, node string) (netip.Addr, []Problem) {
	var lowest netip.Addr
	for _, p := range peers {
		if p.RouterID.IsValid() && (!lowest.IsValid() || p.RouterID.Less(lowest)) {
			lowest = p.RouterID
		}
	}
	var problems []Problem
	if lowest.IsValid() {
		for _, p := range peers {
			if p.RouterID.IsValid() && p.RouterID != lowest {
				problems = append(problems, Problem{Kind: KindBGPPeer, Name: p.Name, Reason: ReasonRouterIDConflict,
					Message: fmt.Sprintf("routerID %s differs from the routerID of another BGPPeer selecting node %s; the node uses the lowest, %s",
						p.RouterID, node, lowest)})
			}
		}
		return lowest, problems
	}
	if v4.IsValid() {
		return v4, nil
	}
	if len(peers) == 0 {
		return netip.Addr{}, nil
	}
	for _, p := range peers {
		problems = append(problems, Problem{Kind: KindBGPPeer, Name: p.Name, Reason: ReasonNoRouterID,
			Message: fmt.Sprintf("node %s has no IPv4 InternalIP and no BGPPeer selecting it sets routerID, so it has no BGP identifier and opens no session; set spec.routerID", node)})
	}
	return netip.Addr{}, problems
}

// resolvePeer turns a model peer into a Peer. A password that cannot be read gives a
// problem and the peer's version in prev (ok false when it has none).
func resolvePeer(mp *model.BGPPeer, cfg *model.Config, secrets map[model.SecretRef][]byte, prev *Plan) (Peer, *Problem, bool) {
	p := Peer{Name: mp.Name, Address: mp.Address, Port: mp.Port, MyASN: mp.MyASN, PeerASN: mp.PeerASN,
		SourceAddress: mp.SourceAddress, HoldTime: mp.HoldTime, KeepaliveTime: mp.KeepaliveTime,
		ConnectTime: mp.ConnectTime, EBGPMultiHop: mp.EBGPMultiHop, Password: mp.Password,
		GracefulRestart: mp.GracefulRestart}
	if prof := cfg.BFDProfiles[mp.BFDProfile]; mp.BFDProfile != "" && prof != nil {
		p.BFD = &BFD{Profile: prof.Name, ReceiveInterval: prof.ReceiveInterval, TransmitInterval: prof.TransmitInterval,
			DetectMultiplier: prof.DetectMultiplier, PassiveMode: prof.PassiveMode, MinimumTTL: prof.MinimumTTL,
			Strict: mp.StrictBFD}
	}
	ref := mp.PasswordSecret
	if ref == nil {
		return p, nil, true
	}
	if v := secrets[*ref]; len(v) > 0 {
		p.Password = string(v)
		return p, nil, true
	}
	what := fmt.Sprintf("Secret %s/%s has no key %q or it is empty", ref.Namespace, ref.Name, ref.Key)
	if _, found := secrets[*ref]; !found {
		what = fmt.Sprintf("Secret %s/%s or its key %q is missing", ref.Namespace, ref.Name, ref.Key)
	}
	prob := &Problem{Kind: KindBGPPeer, Name: mp.Name, Reason: ReasonPasswordSecretMissing}
	if prev != nil {
		for _, old := range prev.Peers {
			if old.Name == mp.Name {
				if old.BFD != nil {
					b := *old.BFD
					old.BFD = &b
				}
				prob.Message = what + "; the session keeps its previous configuration"
				return old, prob, true
			}
		}
	}
	prob.Message = what + "; no session to this peer until the password can be read"
	return Peer{}, prob, false
}

// groupByIP returns the Services of each LB IP, each list sorted by key.
func groupByIP(svcs []Service) map[netip.Addr][]*Service {
	out := map[netip.Addr][]*Service{}
	for i := range svcs {
		s := &svcs[i]
		for _, ip := range s.IPs {
			ip = ip.Unmap()
			if !slices.Contains(out[ip], s) {
				out[ip] = append(out[ip], s)
			}
		}
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b *Service) int {
			return cmp.Or(strings.Compare(a.Key.Namespace, b.Key.Namespace), strings.Compare(a.Key.Name, b.Key.Name))
		})
	}
	return out
}

// poolOf places ip as layer 2 does, trying the Services in key order.
func poolOf(cfg *model.Config, svcs []*Service, ip netip.Addr) string {
	for _, s := range svcs {
		if p := announce.PoolOf(cfg, s.Pool, ip); p != "" {
			return p
		}
	}
	return ""
}

// adsFor returns the BGPAdvertisements covering pool that select n, by name.
func adsFor(cfg *model.Config, pool string, n announce.Node) []*model.BGPAdvertisement {
	var out []*model.BGPAdvertisement
	for _, name := range slices.Sorted(maps.Keys(cfg.BGPAdvertisements)) {
		ad := cfg.BGPAdvertisements[name]
		if slices.Contains(ad.Pools, pool) && matches(ad.NodeSelectors, n) {
			out = append(out, ad)
		}
	}
	return out
}

// eligibility returns the Services of one IP that this node serves (a ready endpoint
// somewhere; for Local, a ready endpoint here), and the link bandwidth of the IP's host
// route: set only when every live Service of the IP is Local.
func eligibility(svcs []*Service, node string) ([]types.NamespacedName, float32) {
	var eligible []types.NamespacedName
	allLocal, endpoints := true, 0
	for _, s := range svcs {
		if !s.HasReadyEndpoint {
			continue
		}
		if !s.LocalTraffic {
			allLocal = false
			eligible = append(eligible, s.Key)
			continue
		}
		if n := s.ReadyCounts[node]; n > 0 {
			endpoints += n
			eligible = append(eligible, s.Key)
		}
	}
	if !allLocal || len(eligible) == 0 {
		return eligible, 0
	}
	return eligible, float32(endpoints) * BandwidthPerEndpoint
}

// peersOf returns the plan peers an advertisement names (all when it names none).
func peersOf(ad *model.BGPAdvertisement, peers []Peer) []*Peer {
	var out []*Peer
	for i := range peers {
		if len(ad.Peers) == 0 || slices.Contains(ad.Peers, peers[i].Name) {
			out = append(out, &peers[i])
		}
	}
	return out
}

// pathAcc merges what every advertisement gives one prefix for one peer.
type pathAcc struct {
	communities  map[uint32]bool
	large        map[[3]uint32]bool
	localPref    uint32
	hasLocalPref bool
	bandwidth    float32
	services     map[types.NamespacedName]bool
}

func (a *pathAcc) add(ad *model.BGPAdvertisement, ibgp bool, svcs []types.NamespacedName) {
	for _, c := range ad.Communities {
		if c.Large {
			if a.large == nil {
				a.large = map[[3]uint32]bool{}
			}
			a.large[c.LargeVal] = true
		} else {
			if a.communities == nil {
				a.communities = map[uint32]bool{}
			}
			a.communities[c.Standard] = true
		}
	}
	if ibgp && ad.LocalPref > 0 && (!a.hasLocalPref || ad.LocalPref > a.localPref) {
		a.localPref, a.hasLocalPref = ad.LocalPref, true
	}
	for _, k := range svcs {
		a.services[k] = true
	}
}

func (a *pathAcc) path(pfx netip.Prefix) Path {
	p := Path{Prefix: pfx, LocalPref: a.localPref, HasLocalPref: a.hasLocalPref, LinkBandwidth: a.bandwidth}
	if len(a.communities) > 0 {
		p.Communities = slices.Sorted(maps.Keys(a.communities))
	}
	if len(a.large) > 0 {
		p.LargeCommunities = slices.SortedFunc(maps.Keys(a.large), func(x, y [3]uint32) int {
			return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]), cmp.Compare(x[2], y[2]))
		})
	}
	p.Services = slices.SortedFunc(maps.Keys(a.services), compareKeys)
	return p
}

func compareKeys(a, b types.NamespacedName) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// aggregationProblems finds the live Local Services with no ready endpoint on this node
// whose IP lies in an aggregate (shorter than a host route) this node advertises, when no
// BGPAdvertisement of the IP's pool announces host routes of its family (which would win
// by longest match at the router, sending the traffic to nodes with endpoints).
func aggregationProblems(cfg *model.Config, groups map[netip.Addr][]*Service, ips []netip.Addr,
	advertised map[netip.Prefix]bool, node string) []Problem {
	var aggs []netip.Prefix
	for p := range advertised {
		if p.Bits() < p.Addr().BitLen() {
			aggs = append(aggs, p)
		}
	}
	if len(aggs) == 0 {
		return nil
	}
	slices.SortFunc(aggs, netip.Prefix.Compare)
	var out []Problem
	for _, ip := range ips {
		i := slices.IndexFunc(aggs, func(p netip.Prefix) bool { return p.Contains(ip) })
		if i < 0 || hostRoutes(cfg, poolOf(cfg, groups[ip], ip), ip) {
			continue
		}
		for _, s := range groups[ip] {
			if s.LocalTraffic && s.HasReadyEndpoint && s.ReadyCounts[node] == 0 {
				out = append(out, Problem{Kind: KindService, Name: s.Key.String(), Reason: ReasonLocalTrafficAggregated,
					Message: fmt.Sprintf("externalTrafficPolicy is Local but LB IP %s is inside aggregate %s, which node %s advertises without a ready endpoint of the Service; traffic can reach it and be dropped (advertise this pool with aggregationLength 32 / aggregationLengthV6 128)",
						ip, aggs[i], node)})
			}
		}
	}
	return out
}

// hostRoutes reports whether a BGPAdvertisement of pool announces host routes of ip's
// family (on some nodes).
func hostRoutes(cfg *model.Config, pool string, ip netip.Addr) bool {
	for _, ad := range cfg.BGPAdvertisements {
		bits := ad.AggregationLength
		if ip.Is6() {
			bits = ad.AggregationLengthV6
		}
		if slices.Contains(ad.Pools, pool) && bits == ip.BitLen() {
			return true
		}
	}
	return false
}

// sortProblems sorts and deduplicates.
func sortProblems(ps []Problem) []Problem {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name),
			strings.Compare(a.Reason, b.Reason), strings.Compare(a.Message, b.Message))
	})
	return slices.Compact(ps)
}
