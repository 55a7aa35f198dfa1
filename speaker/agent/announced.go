package agent

import (
	"maps"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/speaker/announce"
	"github.com/loadstone-lb/loadstone/speaker/bgp"
	"github.com/loadstone-lb/loadstone/speaker/members"
	"github.com/loadstone-lb/loadstone/speaker/observe"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// The protocol label values of loadstone_speaker_announced.
const (
	protocolLayer2 = "layer2"
	protocolBGP    = "bgp"
)

// announcedKey is one series of loadstone_speaker_announced.
type announcedKey struct{ ip, service, protocol string }

// announcedSeries returns the series this node should export: in layer 2 every IP the
// announcer applied (l2), with the plan's Services of that IP; in BGP every IP the BGP
// report says is advertised to an Established peer, with its Services.
func announcedSeries(plan announce.Plan, l2 map[netip.Addr][]string, bgpIPs map[netip.Addr][]types.NamespacedName) map[announcedKey]bool {
	out := map[announcedKey]bool{}
	services := map[netip.Addr][]types.NamespacedName{}
	for _, a := range plan.Own {
		services[a.IP] = a.Services
	}
	for ip := range l2 {
		for _, s := range services[ip] {
			out[announcedKey{ip.String(), s.String(), protocolLayer2}] = true
		}
	}
	for ip, svcs := range bgpIPs {
		for _, s := range svcs {
			out[announcedKey{ip.String(), s.String(), protocolBGP}] = true
		}
	}
	return out
}

// setAnnounced makes loadstone_speaker_announced hold exactly keys: the series of what
// this node stopped announcing are removed.
func (a *Agent) setAnnounced(keys map[announcedKey]bool) {
	for k := range a.announced {
		if !keys[k] {
			a.m.announced.DeleteLabelValues(k.ip, k.service, k.protocol)
		}
	}
	for k := range keys {
		a.m.announced.WithLabelValues(k.ip, k.service, k.protocol).Set(1)
	}
	a.announced = keys
}

// bgpAnnounced returns the LB IPs advertised to at least one Established peer, with their
// Services: an advertised path of a peer (read back from the server) is matched by prefix
// to the plan's path, whose Services' IPs inside the prefix are announced (an aggregate
// carries several). A gated IP the dataplane does not carry is not announced even when
// its aggregate goes out.
func bgpAnnounced(in routes.Input, plan routes.Plan, sessions map[string]bgp.Session) map[netip.Addr][]types.NamespacedName {
	ips := map[types.NamespacedName][]netip.Addr{}
	for _, s := range in.Services {
		ips[s.Key] = s.IPs
	}
	set := map[netip.Addr]map[types.NamespacedName]bool{}
	for _, p := range plan.Peers {
		s, ok := sessions[p.Name]
		if !ok || s.State != bgp.StateEstablished {
			continue
		}
		sent := map[netip.Prefix]bool{}
		for _, adv := range s.Advertised {
			sent[adv.Prefix] = true
		}
		for _, path := range plan.Paths[p.Name] {
			if !sent[path.Prefix] {
				continue
			}
			for _, svc := range path.Services {
				for _, ip := range ips[svc] {
					ip = ip.Unmap()
					if !path.Prefix.Contains(ip) || (in.Gated[ip] && !in.Carried[ip]) {
						continue
					}
					if set[ip] == nil {
						set[ip] = map[types.NamespacedName]bool{}
					}
					set[ip][svc] = true
				}
			}
		}
	}
	out := make(map[netip.Addr][]types.NamespacedName, len(set))
	for ip, svcs := range set {
		out[ip] = slices.SortedFunc(maps.Keys(svcs), func(a, b types.NamespacedName) int {
			return cmpString(a.String(), b.String())
		})
	}
	return out
}

// aliveFunc tells a member's liveness as the election saw it: Node readiness when
// membership is degraded, else the heal policy's alive set.
func aliveFunc(snap *observe.Snapshot, alive map[string]bool) func(string) bool {
	if !snap.Degraded {
		return func(n string) bool { return alive[n] }
	}
	ready := map[string]bool{}
	for _, n := range snap.Nodes {
		ready[n.Name] = n.Ready
	}
	return func(n string) bool { return ready[n] }
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

// takeover is how this node came to announce an IP in layer 2.
type takeover int

const (
	// notTakenOver: the IP had no other owner (new, or this node's before).
	notTakenOver takeover = iota
	// failover: the previous owner failed (dead, not left).
	failover
	// handover: a planned move; the previous owner left gracefully, or is alive and the
	// election moved the IP (rebalance, endpoints moved, node excluded, yield).
	handover
)

// classifyTakeover classifies an IP this node starts announcing whose previous owner was
// prev ("" when unknown). alive tells the previous owner's liveness as the election saw
// it; mems are the members memberlist knows (a graceful stop leaves StateLeft).
func classifyTakeover(self, prev string, alive func(string) bool, mems map[string]members.Member) takeover {
	switch {
	case prev == "" || prev == self:
		return notTakenOver
	case alive(prev):
		return handover
	case mems[prev].State == members.StateLeft:
		return handover
	}
	return failover
}

// countTakeovers counts the layer-2 failovers and handovers of a sync: an IP applied now
// (applied) and not before (before) whose previous owner (owners) was another node.
// It returns the owners to remember: each IP's elected node, except that an IP this node
// won but does not announce yet (withheld, or failed to apply) or that nobody won keeps
// its previous owner, so the takeover is counted when it really happens.
func (a *Agent) countTakeovers(self string, plan announce.Plan, before, applied map[netip.Addr][]string,
	owners map[netip.Addr]string, alive func(string) bool, mems map[string]members.Member) map[netip.Addr]string {
	for ip := range applied {
		if _, had := before[ip]; had {
			continue
		}
		switch classifyTakeover(self, owners[ip], alive, mems) {
		case failover:
			a.m.failovers.Inc()
		case handover:
			a.m.handovers.Inc()
		}
	}
	next := make(map[netip.Addr]string, len(plan.Elections))
	for ip, e := range plan.Elections {
		w := e.Result.Winner
		if _, ok := applied[ip]; w == "" || (w == self && !ok) {
			if prev, had := owners[ip]; had {
				w = prev
			}
		}
		if w != "" {
			next[ip] = w
		}
	}
	return next
}
