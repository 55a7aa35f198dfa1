package bgp

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	pkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// This file is the pure half of the package: routes types in, gobgp API objects out, and
// the diffs that decide which gobgp calls an Apply makes. No I/O, no clock, no logging.

const (
	// globalASN is the gobgp server's own AS. It is never used on the wire: every peer
	// sets its local AS from Peer.MyASN.
	globalASN = 64512
	// asTrans is AS_TRANS (RFC 6793): the two-octet stand-in for a four-octet AS.
	asTrans = 23456
	// gracefulRestartTime is the Restart Time we advertise (RFC 4724 §3): how long the
	// router keeps our routes as stale after the session drops without a NOTIFICATION.
	gracefulRestartTime = 120
	// multihopTTL is the TTL of an eBGP multihop session.
	multihopTTL = 255
	// namePrefix starts the names of every gobgp policy object this package creates.
	namePrefix = "loadstone-"
	// globalTable is gobgp's name of the global RIB's policy assignments.
	globalTable = "global"
	// maxLinkBandwidth is the largest link bandwidth gobgp's "lb:AS:value" policy syntax
	// carries (the value is parsed as a uint32 before becoming a float32).
	maxLinkBandwidth = math.MaxUint32
)

// family is an address family of a session and its paths.
type family int

const (
	ipv4 family = iota
	ipv6
)

func familyOf(a netip.Addr) family {
	if a.Is4() || a.Is4In6() {
		return ipv4
	}
	return ipv6
}

func (f family) api() *api.Family {
	if f == ipv6 {
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
}

// peerKey is how gobgp names a neighbor: its address.
func peerKey(p routes.Peer) string { return p.Address.Unmap().String() }

// peerConfig translates a Peer into gobgp's neighbor configuration. Only the address
// family of the peer's own address is enabled (IPv4 unicast over IPv4, IPv6 unicast over
// IPv6); graceful restart advertises our Restart Time for that family.
// idleHoldAfterReset is gobgp's wait after a reset before reconnecting, in seconds.
const idleHoldAfterReset = 1

func peerConfig(p routes.Peer) *api.Peer {
	fam := familyOf(p.Address)
	afi := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam.api(), Enabled: true}}
	out := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: peerKey(p),
			PeerAsn:         p.PeerASN,
			LocalAsn:        p.MyASN,
			AuthPassword:    p.Password,
			// No Description: gobgp counts any change of it as an OPEN-level change and
			// resets the session, and the name is ours to keep.
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          seconds(p.HoldTime),
			KeepaliveInterval: seconds(p.KeepaliveTime),
			ConnectRetry:      seconds(p.ConnectTime),
			// After a reset (ours, when BFD goes down) gobgp waits this long before it
			// reconnects; its default, 30 s, keeps a node that flapped out of the routers'
			// next hops for half a minute. Repeated failures back off (backoff.go).
			IdleHoldTimeAfterReset: idleHoldAfterReset,
		}},
		Transport: &api.Transport{
			RemotePort: uint32(p.Port),
		},
		AfiSafis: []*api.AfiSafi{afi},
	}
	if p.SourceAddress.IsValid() {
		out.Transport.LocalAddress = p.SourceAddress.Unmap().String()
	}
	if p.EBGPMultiHop {
		out.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: multihopTTL}
	}
	if p.GracefulRestart {
		out.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime}
		afi.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	return out
}

// seconds rounds a duration up to whole seconds (BGP timers are in seconds); zero stays
// zero, which lets gobgp apply its default.
func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Second - 1) / time.Second)
}

// peerChange is what it takes to go from one applied Peer to a desired one.
type peerChange int

const (
	peerSame     peerChange = iota // nothing for gobgp (a BFD-only or no change)
	peerInPlace                    // UpdatePeer: no effect on the running session
	peerRecreate                   // DeletePeer + AddPeer: the session resets
)

// comparePeer classifies a change. Everything the OPEN message or the TCP connection
// carries needs a new session: the addresses, the port, both ASNs, the MD5 password (a TCP
// option of every segment), hold time and keepalive (negotiated in OPEN) and graceful
// restart (a capability in OPEN). The connect-retry timer and the multihop TTL change in
// place. A new name (same address) is only ours to record. BFD is not gobgp's business.
func comparePeer(old, new routes.Peer) peerChange {
	if old.Address != new.Address || old.Port != new.Port || old.MyASN != new.MyASN ||
		old.PeerASN != new.PeerASN || old.SourceAddress != new.SourceAddress ||
		old.Password != new.Password || seconds(old.HoldTime) != seconds(new.HoldTime) ||
		seconds(old.KeepaliveTime) != seconds(new.KeepaliveTime) ||
		old.GracefulRestart != new.GracefulRestart {
		return peerRecreate
	}
	if seconds(old.ConnectTime) != seconds(new.ConnectTime) || old.EBGPMultiHop != new.EBGPMultiHop {
		return peerInPlace
	}
	return peerSame
}

// attrs are the per-peer attributes of a path, as the export policy sets them.
type attrs struct {
	Communities      []uint32
	LargeCommunities [][3]uint32
	LocalPref        uint32
	HasLocalPref     bool
	// LinkBandwidth in bytes/s, 0 for none; already clamped to what gobgp can carry.
	LinkBandwidth uint32
}

func (a attrs) key() string {
	return fmt.Sprint(a.Communities, a.LargeCommunities, a.LocalPref, a.HasLocalPref, a.LinkBandwidth)
}

// exportGroup is a set of prefixes a peer receives with the same attributes: one policy
// statement.
type exportGroup struct {
	Attrs    attrs
	Prefixes []netip.Prefix
}

// exportGroups groups a peer's paths by attributes. Paths of the other address family are
// dropped (the session does not carry that family), local-pref is kept only on iBGP
// sessions, and the link bandwidth is rounded to whole bytes/s and capped at what gobgp
// carries. Groups are ordered by their first prefix; prefixes within a group are sorted.
func exportGroups(p routes.Peer, paths []routes.Path) []exportGroup {
	fam := familyOf(p.Address)
	byKey := map[string]*exportGroup{}
	var order []string
	for _, path := range paths {
		if !path.Prefix.IsValid() || familyOf(path.Prefix.Addr()) != fam {
			continue
		}
		a := attrs{
			Communities:      slices.Clone(path.Communities),
			LargeCommunities: slices.Clone(path.LargeCommunities),
		}
		slices.Sort(a.Communities)
		a.Communities = slices.Compact(a.Communities)
		slices.SortFunc(a.LargeCommunities, func(x, y [3]uint32) int {
			return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]), cmp.Compare(x[2], y[2]))
		})
		a.LargeCommunities = slices.Compact(a.LargeCommunities)
		if path.HasLocalPref && p.IBGP() {
			a.LocalPref, a.HasLocalPref = path.LocalPref, true
		}
		if path.LinkBandwidth > 0 {
			bw := math.Round(float64(path.LinkBandwidth))
			a.LinkBandwidth = uint32(min(max(bw, 1), maxLinkBandwidth))
		}
		k := a.key()
		g, ok := byKey[k]
		if !ok {
			g = &exportGroup{Attrs: a}
			byKey[k] = g
			order = append(order, k)
		}
		g.Prefixes = append(g.Prefixes, path.Prefix.Masked())
	}
	out := make([]exportGroup, 0, len(order))
	for _, k := range order {
		g := byKey[k]
		slices.SortFunc(g.Prefixes, comparePrefix)
		g.Prefixes = slices.Compact(g.Prefixes)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(x, y exportGroup) int { return comparePrefix(x.Prefixes[0], y.Prefixes[0]) })
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// prefixesOf is the set of prefixes in groups.
func prefixesOf(groups []exportGroup) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	for _, g := range groups {
		for _, p := range g.Prefixes {
			out[p] = true
		}
	}
	return out
}

// policyNames are the names of one generation of a peer's export policy objects.
type policyNames struct {
	Policy, Neighbors string
}

// namesFor names the objects of policy generation gen (generations are unique across
// peers, so a name never refers to two peers).
func namesFor(gen uint64) policyNames {
	base := namePrefix + "export-" + strconv.FormatUint(gen, 10)
	return policyNames{Policy: base, Neighbors: base + "-nb"}
}

func (n policyNames) prefixSet(i int) string { return n.Policy + "-p" + strconv.Itoa(i) }
func (n policyNames) statement(i int) string { return n.Policy + "-s" + strconv.Itoa(i) }

// exportPolicy renders a peer's export policy: one statement per attribute group, each
// matching the peer's address (neighbor set) and the group's exact prefixes (prefix set),
// setting the group's attributes and accepting. Anything no statement accepts falls to the
// global export default, REJECT. Returns the defined sets to create first.
//
// Transitional statements (see lostPrefixes) follow: each matches the peer, its prefixes
// and the origin of their current version, and accepts.
func exportPolicy(p routes.Peer, groups []exportGroup, n policyNames, trans ...transit) ([]*api.DefinedSet, *api.Policy) {
	addr := p.Address.Unmap()
	sets := []*api.DefinedSet{{
		DefinedType: api.DefinedType_NEIGHBOR,
		Name:        n.Neighbors,
		List:        []string{netip.PrefixFrom(addr, addr.BitLen()).String()},
	}}
	pol := &api.Policy{Name: n.Policy}
	for i, g := range groups {
		ps := prefixSet(n.prefixSet(i), g.Prefixes)
		sets = append(sets, ps)
		act := &api.Actions{RouteAction: api.RouteAction_ACCEPT, OriginAction: &api.OriginAction{Origin: api.RouteOriginType_ORIGIN_IGP}}
		if len(g.Attrs.Communities) > 0 {
			act.Community = &api.CommunityAction{Type: api.CommunityAction_REPLACE}
			for _, c := range g.Attrs.Communities {
				act.Community.Communities = append(act.Community.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
		}
		if len(g.Attrs.LargeCommunities) > 0 {
			act.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_REPLACE}
			for _, c := range g.Attrs.LargeCommunities {
				act.LargeCommunity.Communities = append(act.LargeCommunity.Communities, fmt.Sprintf("%d:%d:%d", c[0], c[1], c[2]))
			}
		}
		if g.Attrs.LinkBandwidth > 0 {
			act.ExtCommunity = &api.CommunityAction{
				Type:        api.CommunityAction_REPLACE,
				Communities: []string{fmt.Sprintf("lb:%d:%d", linkBandwidthAS(p.MyASN), g.Attrs.LinkBandwidth)},
			}
		}
		if g.Attrs.HasLocalPref {
			act.LocalPref = &api.LocalPrefAction{Value: g.Attrs.LocalPref}
		}
		pol.Statements = append(pol.Statements, &api.Statement{
			Name: n.statement(i),
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: n.Neighbors},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: ps.Name},
			},
			Actions: act,
		})
	}
	for j, tr := range trans {
		i := len(groups) + j
		ps := prefixSet(n.prefixSet(i), tr.Prefixes)
		sets = append(sets, ps)
		pol.Statements = append(pol.Statements, &api.Statement{
			Name: n.statement(i),
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: n.Neighbors},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: ps.Name},
				Origin:      apiOrigin(tr.Origin),
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_ACCEPT, OriginAction: &api.OriginAction{Origin: api.RouteOriginType_ORIGIN_IGP}},
		})
	}
	return sets, pol
}

// prefixSet is a prefix set matching exactly the prefixes.
func prefixSet(name string, prefixes []netip.Prefix) *api.DefinedSet {
	ps := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name}
	for _, pfx := range prefixes {
		ps.Prefixes = append(ps.Prefixes, &api.Prefix{
			IpPrefix: pfx.String(), MaskLengthMin: uint32(pfx.Bits()), MaskLengthMax: uint32(pfx.Bits()),
		})
	}
	return ps
}

// linkBandwidthAS is the AS in the link-bandwidth community: ours, or AS_TRANS when it
// does not fit in the two octets the community has.
func linkBandwidthAS(asn uint32) uint32 {
	if asn > math.MaxUint16 {
		return asTrans
	}
	return asn
}

// ribPrefixes is every prefix the global RIB must hold: the union over peers of what
// their export policies may accept.
func ribPrefixes(groups map[string][]exportGroup) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	for _, gs := range groups {
		for p := range prefixesOf(gs) {
			out[p] = true
		}
	}
	return out
}

// Origins of a RIB path. The origin is the path's version: when a prefix must be
// withdrawn from some peers but not others, the path is replaced by one with the other
// origin (see lostPrefixes). Every export statement sets the origin back to IGP, so the
// wire always carries IGP.
const (
	originIGP        = pkt.BGP_ORIGIN_ATTR_TYPE_IGP
	originIncomplete = pkt.BGP_ORIGIN_ATTR_TYPE_INCOMPLETE
)

// flip is the other version.
func flip(origin uint8) uint8 {
	if origin == originIGP {
		return originIncomplete
	}
	return originIGP
}

func apiOrigin(origin uint8) api.RouteOriginType {
	if origin == originIncomplete {
		return api.RouteOriginType_ORIGIN_INCOMPLETE
	}
	return api.RouteOriginType_ORIGIN_IGP
}

// ribPath is the global RIB path of a prefix: the origin (its version) and an
// unspecified next hop, which gobgp replaces with the session's local address for every
// peer (next-hop-self; for IPv6 in MP_REACH_NLRI). It carries no other attribute: the
// export policies add them per peer. age is the path's timestamp (nothing depends on it).
func ribPath(p netip.Prefix, origin uint8, age time.Time) (*api.Path, error) {
	o := pkt.NewPathAttributeOrigin(origin)
	if familyOf(p.Addr()) == ipv4 {
		nlri := pkt.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		return apiutil.NewPath(nlri, false, []pkt.PathAttributeInterface{o, pkt.NewPathAttributeNextHop("0.0.0.0")}, age)
	}
	nlri := pkt.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
	mp := pkt.NewPathAttributeMpReachNLRI("::", []pkt.AddrPrefixInterface{nlri})
	return apiutil.NewPath(nlri, false, []pkt.PathAttributeInterface{o, mp}, age)
}

// lostPrefixes are, per peer, the prefixes that leave the peer's export but stay in the
// RIB for other peers. gobgp v3 withdraws a path from a peer only when the path is
// replaced or deleted while the peer's export policy rejects the new version and accepts
// the old one; a soft reset out re-sends accepted paths but withdraws nothing. So Apply
// gives such a peer a transitional policy that still accepts the old version (matched by
// origin) and replaces the path by the other version: the peer gets a withdrawal, the
// other peers an update with unchanged attributes. Only peers in both old and new count.
func lostPrefixes(old, new map[string][]exportGroup, newRIB map[netip.Prefix]bool) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for peer, gs := range old {
		keep := prefixesOf(new[peer])
		for _, p := range sortedPrefixes(prefixesOf(gs)) {
			if !keep[p] && newRIB[p] {
				out[peer] = append(out[peer], p)
			}
		}
	}
	return out
}

// transit is a statement of a transitional export policy: it accepts the current version
// of prefixes leaving the peer, so that replacing them makes gobgp withdraw them.
type transit struct {
	Origin   uint8
	Prefixes []netip.Prefix
}

// transits groups a peer's lost prefixes by their current origin.
func transits(lost []netip.Prefix, origins map[netip.Prefix]uint8) []transit {
	var out []transit
	for _, o := range []uint8{originIGP, originIncomplete} {
		var ps []netip.Prefix
		for _, p := range lost {
			if origins[p] == o {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			out = append(out, transit{Origin: o, Prefixes: ps})
		}
	}
	return out
}

// sortedPrefixes returns the set's prefixes in order.
func sortedPrefixes(set map[netip.Prefix]bool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

// problemRouterID is the problem recorded when the plan's router ID changes after the
// server started.
func problemRouterID(old, new netip.Addr) routes.Problem {
	return routes.Problem{
		Kind: "Speaker", Name: "bgp", Reason: "RouterIDChangePending",
		Message: fmt.Sprintf("router ID change from %s to %s takes effect when the speaker restarts", old, new),
	}
}

// stateName maps gobgp's session state to ours.
func stateName(s api.PeerState_SessionState) State {
	switch s {
	case api.PeerState_IDLE:
		return StateIdle
	case api.PeerState_CONNECT:
		return StateConnect
	case api.PeerState_ACTIVE:
		return StateActive
	case api.PeerState_OPENSENT:
		return StateOpenSent
	case api.PeerState_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_ESTABLISHED:
		return StateEstablished
	}
	return StateUnknown
}
