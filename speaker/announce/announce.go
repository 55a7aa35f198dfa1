package announce

import (
	"maps"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/speaker/election"
)

// Service is what the computation needs of a LoadBalancer Service.
type Service struct {
	Key types.NamespacedName
	// IPs are the LB IPs of status.loadBalancer.ingress.
	IPs []netip.Addr
	// Pool is the allocated-from-pool annotation ("" when absent).
	Pool string
	// LocalTraffic: externalTrafficPolicy is Local.
	LocalTraffic bool
	// HasReadyEndpoint: at least one ready endpoint exists.
	HasReadyEndpoint bool
	// ReadyNodes are the nodes holding a ready endpoint.
	ReadyNodes map[string]bool
}

// Node is what the computation needs of a Node.
type Node struct {
	Name   string
	Labels map[string]string
	Ready  bool
}

// Snapshot is the whole input.
type Snapshot struct {
	// Self is this node's name.
	Self     string
	Config   *model.Config
	Services []Service
	Nodes    []Node
	// Alive are the live members' names.
	Alive map[string]bool
	// Degraded: membership is unusable; Node readiness stands in for liveness.
	Degraded bool
	// Interfaces present on this node; nil skips the check.
	Interfaces map[string]bool
	// ExcludeLabel is the label that removes a node from load balancing.
	ExcludeLabel string
}

// Announcement is one IP this node announces.
type Announcement struct {
	IP netip.Addr
	// Interfaces to answer on; empty means the interface holding the route to the IP.
	Interfaces []string
	Services   []types.NamespacedName
	Pool       string
}

// ProblemKind classifies a Problem.
type ProblemKind int

const (
	// InterfaceMissing: an L2Advertisement names an interface this node does not have.
	InterfaceMissing ProblemKind = iota + 1
	// NoUsableInterface: this node is elected for an IP but every interface named for it
	// is missing here.
	NoUsableInterface
	// IPNotInPool: a Service's LB IP belongs to no pool.
	IPNotInPool
)

// String names the kind (used as an Event reason).
func (k ProblemKind) String() string {
	switch k {
	case InterfaceMissing:
		return "InterfaceMissing"
	case NoUsableInterface:
		return "NoUsableInterface"
	case IPNotInPool:
		return "IPNotInPool"
	}
	return "Unknown"
}

// Problem is one thing wrong found while computing.
type Problem struct {
	Kind          ProblemKind
	Advertisement string // for InterfaceMissing
	Interface     string // for InterfaceMissing
	IP            netip.Addr
	Services      []types.NamespacedName
}

// Election is the election of one IP and the Services sharing it.
type Election struct {
	Result   election.Result
	Services []types.NamespacedName
	Pool     string
}

// Plan is the output.
type Plan struct {
	// Own lists this node's announcements, sorted by IP.
	Own []Announcement
	// Elections holds every L2 IP's election.
	Elections map[netip.Addr]Election
	// Problems are sorted by IP, then kind.
	Problems []Problem
	// Missing lists, whatever the elections, the interfaces that the L2Advertisements
	// selecting this node name and this node does not have, sorted by advertisement, then
	// interface. Empty when the snapshot has no interface list.
	Missing []MissingInterface
}

// MissingInterface is an interface an L2Advertisement names that this node lacks.
type MissingInterface struct {
	Advertisement string
	Interface     string
}

// Desired returns Own as IP → interfaces.
func (p Plan) Desired() map[netip.Addr][]string {
	out := make(map[netip.Addr][]string, len(p.Own))
	for _, a := range p.Own {
		out[a.IP] = a.Interfaces
	}
	return out
}

type ipGroup struct {
	services []Service
	pool     string
}

// Compute is the pure computation described in the package doc.
func Compute(s Snapshot) Plan {
	plan := Plan{Elections: map[netip.Addr]Election{}}
	if s.Config == nil {
		return plan
	}
	groups := map[netip.Addr]*ipGroup{}
	for _, svc := range s.Services {
		for _, ip := range svc.IPs {
			ip = ip.Unmap()
			g := groups[ip]
			if g == nil {
				g = &ipGroup{}
				groups[ip] = g
			}
			g.services = append(g.services, svc)
			if g.pool == "" {
				g.pool = PoolOf(s.Config, svc.Pool, ip)
			}
		}
	}
	nodes := slices.Clone(s.Nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return cmpString(a.Name, b.Name) })
	var self Node
	for _, n := range nodes {
		if n.Name == s.Self {
			self = n
		}
	}
	plan.Missing = missing(s.Config, self, s.Interfaces)

	for _, ip := range slices.SortedFunc(maps.Keys(groups), netip.Addr.Compare) {
		g := groups[ip]
		keys := make([]types.NamespacedName, 0, len(g.services))
		for _, svc := range g.services {
			keys = append(keys, svc.Key)
		}
		slices.SortFunc(keys, func(a, b types.NamespacedName) int { return cmpString(a.String(), b.String()) })
		keys = slices.Compact(keys)
		if g.pool == "" {
			plan.Problems = append(plan.Problems, Problem{Kind: IPNotInPool, IP: ip, Services: keys})
			continue
		}
		ads := adsFor(s.Config, g.pool)
		if len(ads) == 0 {
			continue // not announced in layer 2 (BGP only, or nothing)
		}
		in := election.Input{IP: ip}
		for _, svc := range g.services {
			in.Services = append(in.Services, election.Service{Key: svc.Key, LocalTraffic: svc.LocalTraffic,
				HasReadyEndpoint: svc.HasReadyEndpoint, ReadyNodes: svc.ReadyNodes})
		}
		for _, n := range nodes {
			alive := s.Alive[n.Name]
			if s.Degraded {
				alive = n.Ready
			}
			_, excluded := n.Labels[s.ExcludeLabel]
			in.Candidates = append(in.Candidates, election.Candidate{Node: n.Name, Alive: alive, Ready: n.Ready,
				Excluded: s.ExcludeLabel != "" && excluded, Selected: len(selecting(ads, n)) > 0})
		}
		res := election.Elect(in)
		plan.Elections[ip] = Election{Result: res, Services: keys, Pool: g.pool}
		if res.Status != election.Announced || res.Winner != s.Self {
			continue
		}
		ifaces, problems := interfaces(selecting(ads, self), s.Interfaces, ip, keys)
		plan.Problems = append(plan.Problems, problems...)
		if ifaces == nil {
			continue
		}
		plan.Own = append(plan.Own, Announcement{IP: ip, Interfaces: ifaces, Services: keys, Pool: g.pool})
	}
	return plan
}

// interfaces returns the interfaces for an IP: [] for "route interface", nil for "none".
// Every advertisement is checked, also after one without an interface list (which makes
// the result the route interface): a misspelled name next to such an advertisement must
// not go unreported, or the IP silently stops being announced when that one goes away.
func interfaces(ads []*model.L2Advertisement, present map[string]bool, ip netip.Addr, keys []types.NamespacedName) ([]string, []Problem) {
	var names []string
	var problems []Problem
	route := false
	for _, ad := range ads {
		if len(ad.Interfaces) == 0 {
			route = true
			continue
		}
		for _, i := range ad.Interfaces {
			if present != nil && !present[i] {
				problems = append(problems, Problem{Kind: InterfaceMissing, Advertisement: ad.Name, Interface: i, IP: ip, Services: keys})
				continue
			}
			names = append(names, i)
		}
	}
	if route {
		return []string{}, problems
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		problems = append(problems, Problem{Kind: NoUsableInterface, IP: ip, Services: keys})
		return nil, problems
	}
	return names, problems
}

// missing returns the interfaces that the advertisements selecting self name and that are
// not in present (nil present: nothing is checked).
func missing(cfg *model.Config, self Node, present map[string]bool) []MissingInterface {
	if present == nil {
		return nil
	}
	var all []*model.L2Advertisement
	for _, name := range slices.Sorted(maps.Keys(cfg.L2Advertisements)) {
		all = append(all, cfg.L2Advertisements[name])
	}
	var out []MissingInterface
	for _, ad := range selecting(all, self) {
		names := slices.Clone(ad.Interfaces)
		slices.Sort(names)
		for _, i := range slices.Compact(names) {
			if !present[i] {
				out = append(out, MissingInterface{Advertisement: ad.Name, Interface: i})
			}
		}
	}
	return out
}

// PoolOf returns the pool of ip: the annotated one when it contains ip, else the first
// (by name) whose ranges contain it, else "" (model.Config.PoolOf). Layer 2 and BGP both
// place an IP with it.
func PoolOf(cfg *model.Config, annotated string, ip netip.Addr) string {
	return cfg.PoolOf(ip, annotated)
}

// adsFor returns the L2Advertisements covering pool, sorted by name.
func adsFor(cfg *model.Config, pool string) []*model.L2Advertisement {
	var out []*model.L2Advertisement
	for _, name := range slices.Sorted(maps.Keys(cfg.L2Advertisements)) {
		ad := cfg.L2Advertisements[name]
		if slices.Contains(ad.Pools, pool) {
			out = append(out, ad)
		}
	}
	return out
}

// selecting returns the advertisements whose node selectors match n.
func selecting(ads []*model.L2Advertisement, n Node) []*model.L2Advertisement {
	var out []*model.L2Advertisement
	for _, ad := range ads {
		if n.Name == "" {
			break
		}
		if len(ad.NodeSelectors) == 0 {
			out = append(out, ad)
			continue
		}
		for _, sel := range ad.NodeSelectors {
			if sel.Matches(labels.Set(n.Labels)) {
				out = append(out, ad)
				break
			}
		}
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ConflictAction is what to do when another node answers for an IP this node owns.
type ConflictAction int

const (
	// Defend: keep the IP and send a gratuitous round, so the network learns our MAC.
	Defend ConflictAction = iota + 1
	// Yield: stop answering for the IP for a hold-down period.
	Yield
)

// String names the action.
func (a ConflictAction) String() string {
	switch a {
	case Defend:
		return "Defend"
	case Yield:
		return "Yield"
	}
	return "Unknown"
}

// ResolveConflict is the duplicate-owner tie-break. other is the name of the speaker that
// owns the conflicting MAC, or "" when the MAC is not a speaker's. Both speakers compute
// the same order from (node, IP) alone, so exactly one yields even when their membership
// views disagree (the case after a partition heals): the node that ranks first for the IP
// keeps it. A MAC that belongs to no speaker (a host configured with the IP by mistake) is
// never yielded to.
func ResolveConflict(self, other string, ip netip.Addr) ConflictAction {
	if other == "" || other == self {
		return Defend
	}
	if election.Less(other, self, ip.Unmap()) {
		return Yield
	}
	return Defend
}
