package coverage

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
)

// Reason says why an allocated IP is announced by nobody.
type Reason string

// The reasons, used as the Event reason (prefixed, see EventReason) and the gauge label.
const (
	// NoPool: the IP lies in no IPAddressPool in force (its pool was deleted or shrunk).
	NoPool Reason = "NoPool"
	// NoAdvertisement: no L2Advertisement and no BGPAdvertisement covers the IP's pool.
	NoAdvertisement Reason = "NoAdvertisement"
	// NoEligibleNode: advertisements cover the pool, but no node is eligible for any of
	// them (node selectors, Ready, the exclude label, BGP peers' node selectors, and for
	// externalTrafficPolicy Local a ready local endpoint).
	NoEligibleNode Reason = "NoEligibleNode"
	// NotAnnounced: nodes are eligible, but no speaker reports announcing the IP: no
	// ServiceL2Status lists it and no Established BGP session advertises a prefix holding
	// it (every speaker down, an interface missing on the elected node, a dataplane that
	// does not carry it, …).
	NotAnnounced Reason = "NotAnnounced"
)

// Reasons lists every Reason, in a fixed order (for the gauge).
var Reasons = []Reason{NoPool, NoAdvertisement, NoEligibleNode, NotAnnounced}

// Published is what the speakers report announcing.
type Published struct {
	// L2 are the IPs some ServiceL2Status lists in status.ips.
	L2 map[netip.Addr]bool
	// BGP are the prefixes advertised on Established sessions (BGPSessionStatus).
	BGP []netip.Prefix
	// BGPPartial: an Established session lists only part of its paths (more than
	// v1beta1.MaxAdvertisedPaths); an IP missing from BGP is then not held against it.
	BGPPartial bool
}

// Has reports whether a speaker reports announcing ip.
func (p *Published) Has(ip netip.Addr) bool {
	if p.L2[ip] || p.BGPPartial {
		return true
	}
	for _, pfx := range p.BGP {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// Service is what the computation needs of a Loadstone LoadBalancer Service.
type Service struct {
	Key types.NamespacedName
	// IPs are the LB IPs in status.loadBalancer.ingress.
	IPs []netip.Addr
	// Pools are the names in the allocated-from-pool annotation (may be empty).
	Pools []string
	// LocalTraffic: externalTrafficPolicy is Local.
	LocalTraffic bool
	// ReadyNodes are the nodes holding a ready endpoint (used only with LocalTraffic).
	ReadyNodes map[string]bool
	// HasReadyEndpoint: the Service has a ready endpoint somewhere; without one nothing
	// but NoPool and NoAdvertisement is reported.
	HasReadyEndpoint bool
}

// Node is what the computation needs of a Node.
type Node struct {
	Name   string
	Labels map[string]string
	Ready  bool
}

// Input is the whole input of Unannounced.
type Input struct {
	Config   *model.Config
	Services []Service
	Nodes    []Node
	// ExcludeLabel removes a node from load balancing ("" checks nothing).
	ExcludeLabel string
	// Published is what the speakers report; nil skips the NotAnnounced check.
	Published *Published
}

// Finding is one (Service, IP) announced by nobody.
type Finding struct {
	Service types.NamespacedName
	IP      netip.Addr
	Pool    string // "" for NoPool
	Reason  Reason
	Message string
}

// Key identifies a finding across steps: the same Service, IP and reason.
type Key struct {
	Service types.NamespacedName
	IP      netip.Addr
	Reason  Reason
}

// Key returns f's key.
func (f Finding) Key() Key { return Key{Service: f.Service, IP: f.IP, Reason: f.Reason} }

// Unannounced returns the (Service, IP) pairs that no speaker can announce, sorted by
// Service, then IP. It is pure: the same input gives the same output.
func Unannounced(in Input) []Finding {
	if in.Config == nil {
		return nil
	}
	var out []Finding
	for _, svc := range in.Services {
		for _, ip := range svc.IPs {
			ip = ip.Unmap()
			f := Finding{Service: svc.Key, IP: ip}
			pool := in.Config.PoolOf(ip, svc.Pools...)
			if pool == "" {
				f.Reason, f.Message = NoPool, fmt.Sprintf("%s is announced by no node: it lies in no IPAddressPool", ip)
				out = append(out, f)
				continue
			}
			f.Pool = pool
			l2 := l2For(in.Config, pool)
			bgp := bgpFor(in.Config, pool)
			if len(l2)+len(bgp) == 0 {
				f.Reason = NoAdvertisement
				f.Message = fmt.Sprintf("%s (pool %s) is announced by no node: no L2Advertisement or BGPAdvertisement covers pool %s", ip, pool, pool)
				out = append(out, f)
				continue
			}
			// Without a ready endpoint no speaker announces the IP by design (and the
			// Service's own state says why), whatever the configuration.
			if svc.HasReadyEndpoint {
				if why, ok := noEligible(in, svc, l2, bgp); !ok {
					f.Reason = NoEligibleNode
					f.Message = fmt.Sprintf("%s (pool %s) is announced by no node: no node is eligible: %s", ip, pool, why)
					out = append(out, f)
				} else if in.Published != nil && !in.Published.Has(ip) {
					f.Reason = NotAnnounced
					f.Message = fmt.Sprintf("%s (pool %s) is announced by no node: nodes are eligible, but no speaker reports announcing it "+
						"(no ServiceL2Status lists it, no Established BGP session advertises it); see the Service's Events from the speakers", ip, pool)
					out = append(out, f)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.Service.String(), b.Service.String()), a.IP.Compare(b.IP), strings.Compare(string(a.Reason), string(b.Reason)))
	})
	return slices.CompactFunc(out, func(a, b Finding) bool { return a.Key() == b.Key() })
}

// noEligible reports whether some node is eligible for one of the advertisements; when
// none is, why explains it per advertisement.
func noEligible(in Input, svc Service, l2 []*model.L2Advertisement, bgp []*model.BGPAdvertisement) (why string, ok bool) {
	usable := func(n Node) bool {
		if !n.Ready {
			return false
		}
		if _, ex := n.Labels[in.ExcludeLabel]; in.ExcludeLabel != "" && ex {
			return false
		}
		return true
	}
	// count returns how many usable nodes the selectors (and peered, if given) select,
	// and how many of those can serve the Service (a ready endpoint, for Local).
	count := func(selectors []labels.Selector, peered func(Node) bool) (sel, withEP int) {
		for _, n := range in.Nodes {
			if !usable(n) || !matches(selectors, n) || (peered != nil && !peered(n)) {
				continue
			}
			sel++
			if !svc.LocalTraffic || svc.ReadyNodes[n.Name] {
				withEP++
			}
		}
		return sel, withEP
	}
	var whys []string
	for _, ad := range l2 {
		sel, withEP := count(ad.NodeSelectors, nil)
		if withEP > 0 {
			return "", true
		}
		whys = append(whys, "L2Advertisement "+ad.Name+": "+explain(sel))
	}
	for _, ad := range bgp {
		peers := ad.Peers
		if len(peers) == 0 {
			peers = slices.Sorted(maps.Keys(in.Config.BGPPeers))
		}
		if len(peers) == 0 {
			whys = append(whys, "BGPAdvertisement "+ad.Name+": there is no BGPPeer")
			continue
		}
		sel, withEP := count(ad.NodeSelectors, func(n Node) bool {
			return slices.ContainsFunc(peers, func(name string) bool {
				p := in.Config.BGPPeers[name]
				return p != nil && matches(p.NodeSelectors, n)
			})
		})
		if withEP > 0 {
			return "", true
		}
		whys = append(whys, "BGPAdvertisement "+ad.Name+": "+explain(sel))
	}
	return strings.Join(whys, "; "), false
}

// explain says why an advertisement has no eligible node: none selected, or (only
// possible with externalTrafficPolicy Local) none of the selected holds an endpoint.
func explain(selected int) string {
	if selected == 0 {
		return "no Ready node that is not excluded from load balancing matches its node selectors (and, for BGP, a peer's)"
	}
	return fmt.Sprintf("none of the %d nodes it selects has a ready endpoint of the Service (externalTrafficPolicy Local)", selected)
}

func matches(sels []labels.Selector, n Node) bool {
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

func l2For(cfg *model.Config, pool string) []*model.L2Advertisement {
	var out []*model.L2Advertisement
	for _, name := range slices.Sorted(maps.Keys(cfg.L2Advertisements)) {
		if ad := cfg.L2Advertisements[name]; slices.Contains(ad.Pools, pool) {
			out = append(out, ad)
		}
	}
	return out
}

func bgpFor(cfg *model.Config, pool string) []*model.BGPAdvertisement {
	var out []*model.BGPAdvertisement
	for _, name := range slices.Sorted(maps.Keys(cfg.BGPAdvertisements)) {
		if ad := cfg.BGPAdvertisements[name]; slices.Contains(ad.Pools, pool) {
			out = append(out, ad)
		}
	}
	return out
}
