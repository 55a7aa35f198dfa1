package election

import (
	"bytes"
	"crypto/sha256"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"
)

// Candidate holds the facts about one node that matter for one IP.
type Candidate struct {
	// Node is the Node's name.
	Node string
	// Alive: the node's speaker is a live member of the memberlist cluster (or, in the
	// degraded mode without memberlist, the caller's best substitute).
	Alive bool
	// Ready: the Node's Ready condition is True.
	Ready bool
	// Excluded: the Node carries the exclude-from-external-load-balancers label.
	Excluded bool
	// Selected: an L2Advertisement for the IP's pool selects this node.
	Selected bool
}

// Service holds the facts about one Service using the IP.
type Service struct {
	Key types.NamespacedName
	// LocalTraffic: externalTrafficPolicy is Local.
	LocalTraffic bool
	// HasReadyEndpoint: at least one ready endpoint exists anywhere.
	HasReadyEndpoint bool
	// ReadyNodes are the nodes holding a ready endpoint of the Service.
	ReadyNodes map[string]bool
}

// Input is everything the election of one IP depends on.
type Input struct {
	IP         netip.Addr
	Services   []Service
	Candidates []Candidate
}

// Status says whether the IP is announced, and if not, why.
type Status int

const (
	// Announced: Result.Winner announces the IP.
	Announced Status = iota + 1
	// NoService: no Service uses the IP.
	NoService
	// NoReadyEndpoint: no Service using the IP has a ready endpoint.
	NoReadyEndpoint
	// NoEligibleNode: no node passes every rule.
	NoEligibleNode
)

// String returns the status name, used in logs and in the ServiceL2Status object.
func (s Status) String() string {
	switch s {
	case Announced:
		return "Announced"
	case NoService:
		return "NoService"
	case NoReadyEndpoint:
		return "NoReadyEndpoint"
	case NoEligibleNode:
		return "NoEligibleNode"
	}
	return "Unknown"
}

// LocalRule says how the externalTrafficPolicy Local rule was applied to a shared IP.
type LocalRule int

const (
	// LocalNone: no live Service using the IP has externalTrafficPolicy Local.
	LocalNone LocalRule = iota
	// LocalAll: the winner has a ready local endpoint for every live Local Service.
	LocalAll
	// LocalAny: no node had endpoints for all live Local Services; the winner has one for
	// at least one of them.
	LocalAny
)

// Result is the outcome of one election.
type Result struct {
	IP     netip.Addr
	Status Status
	// Winner is the announcing node; empty unless Status is Announced.
	Winner string
	// Rule is the externalTrafficPolicy rule that was applied.
	Rule LocalRule
	// Eligible lists the eligible nodes in rank order (Winner first).
	Eligible []string
}

// Rank returns the ranking key of node for ip; lower ranks first.
func Rank(node string, ip netip.Addr) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(node))
	h.Write([]byte{0})
	b := ip.Unmap().As16()
	h.Write(b[:])
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Less reports whether node a ranks before node b for ip.
func Less(a, b string, ip netip.Addr) bool {
	ra, rb := Rank(a, ip), Rank(b, ip)
	if c := bytes.Compare(ra[:], rb[:]); c != 0 {
		return c < 0
	}
	return a < b
}

// Elect runs the election of one IP.
func Elect(in Input) Result {
	res := Result{IP: in.IP}
	if len(in.Services) == 0 {
		res.Status = NoService
		return res
	}
	var local []Service
	live := 0
	for _, s := range in.Services {
		if !s.HasReadyEndpoint {
			continue
		}
		live++
		if s.LocalTraffic {
			local = append(local, s)
		}
	}
	if live == 0 {
		res.Status = NoReadyEndpoint
		return res
	}

	var base []string
	for _, c := range in.Candidates {
		if c.Node == "" || !c.Alive || !c.Ready || c.Excluded || !c.Selected {
			continue
		}
		base = append(base, c.Node)
	}
	slices.SortFunc(base, func(a, b string) int {
		if a == b {
			return 0
		}
		if Less(a, b, in.IP) {
			return -1
		}
		return 1
	})
	base = slices.Compact(base)

	eligible := base
	if len(local) > 0 {
		all := filter(base, func(n string) bool {
			for _, s := range local {
				if !s.ReadyNodes[n] {
					return false
				}
			}
			return true
		})
		if len(all) > 0 {
			eligible, res.Rule = all, LocalAll
		} else {
			eligible = filter(base, func(n string) bool {
				for _, s := range local {
					if s.ReadyNodes[n] {
						return true
					}
				}
				return false
			})
			res.Rule = LocalAny
		}
	}
	if len(eligible) == 0 {
		res.Status = NoEligibleNode
		return res
	}
	res.Status = Announced
	res.Winner = eligible[0]
	res.Eligible = eligible
	return res
}

func filter(in []string, keep func(string) bool) []string {
	var out []string
	for _, s := range in {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}
