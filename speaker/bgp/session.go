package bgp

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	pkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// State is a BGP session's finite-state-machine state (RFC 4271 §8.2.2).
type State string

// The session states. StateUnknown: the peer is not (or no longer) configured in gobgp.
const (
	StateUnknown     State = "Unknown"
	StateIdle        State = "Idle"
	StateConnect     State = "Connect"
	StateActive      State = "Active"
	StateOpenSent    State = "OpenSent"
	StateOpenConfirm State = "OpenConfirm"
	StateEstablished State = "Established"
)

// Session is one peer's BGP session as gobgp reports it.
type Session struct {
	// Peer is the BGPPeer's name, Address its address.
	Peer    string
	Address netip.Addr
	State   State
	// EstablishedSince is when the session last reached Established (zero unless it is).
	EstablishedSince time.Time
	// HoldTime and KeepaliveTime are the negotiated timers (zero unless Established).
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	// LastError is the last NOTIFICATION sent or received, the last connect error, or the
	// reason the session last went down ("" when none was seen).
	LastError string
	// Advertised are the paths in gobgp's Adj-RIB-Out for the peer, read back with the
	// attributes the export policy set, sorted by prefix (empty unless Established).
	Advertised []Advertised
}

// Advertised is a path as sent to a peer: the attributes parsed back, and the next hop.
type Advertised struct {
	routes.Path
	NextHop netip.Addr
}

// parseAdvertised turns a gobgp path (from ListPath) into an Advertised. Attributes we do
// not decide (origin, AS path, MED...) are ignored; so are extended communities other than
// link bandwidth.
func parseAdvertised(p *api.Path) (Advertised, error) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return Advertised{}, fmt.Errorf("path NLRI: %w", err)
	}
	var out Advertised
	switch n := nlri.(type) {
	case *pkt.IPAddrPrefix:
		out.Prefix, err = toPrefix(n.Prefix, n.Length)
	case *pkt.IPv6AddrPrefix:
		out.Prefix, err = toPrefix(n.Prefix, n.Length)
	default:
		return Advertised{}, fmt.Errorf("unexpected NLRI %T", nlri)
	}
	if err != nil {
		return Advertised{}, err
	}
	pattrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return Advertised{}, fmt.Errorf("path attributes of %s: %w", out.Prefix, err)
	}
	for _, a := range pattrs {
		switch a := a.(type) {
		case *pkt.PathAttributeNextHop:
			out.NextHop, _ = netip.AddrFromSlice(a.Value)
		case *pkt.PathAttributeMpReachNLRI:
			out.NextHop, _ = netip.AddrFromSlice(a.Nexthop)
		case *pkt.PathAttributeCommunities:
			out.Communities = append(out.Communities, a.Value...)
		case *pkt.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				out.LargeCommunities = append(out.LargeCommunities, [3]uint32{c.ASN, c.LocalData1, c.LocalData2})
			}
		case *pkt.PathAttributeLocalPref:
			out.LocalPref, out.HasLocalPref = a.Value, true
		case *pkt.PathAttributeExtendedCommunities:
			for _, c := range a.Value {
				if bw, ok := linkBandwidthOf(c); ok {
					out.LinkBandwidth = bw
				}
			}
		}
	}
	out.NextHop = out.NextHop.Unmap()
	slices.Sort(out.Communities)
	slices.SortFunc(out.LargeCommunities, compareLarge)
	return out, nil
}

// linkBandwidthOf decodes a link-bandwidth extended community, whether gobgp parsed it
// into its own type or left it opaque.
func linkBandwidthOf(c pkt.ExtendedCommunityInterface) (float32, bool) {
	switch c := c.(type) {
	case *pkt.LinkBandwidthExtended:
		return c.Bandwidth, true
	case *pkt.UnknownExtended:
		if c.Type == pkt.EC_TYPE_NON_TRANSITIVE_LINK_BANDWIDTH && len(c.Value) == 7 && c.Value[0] == byte(pkt.EC_SUBTYPE_LINK_BANDWIDTH) {
			b := c.Value[3:7]
			return math.Float32frombits(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])), true
		}
	}
	return 0, false
}

func toPrefix(ip []byte, bits uint8) (netip.Prefix, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("bad prefix address %v", ip)
	}
	p, err := a.Unmap().Prefix(int(bits))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %v/%d: %w", a, bits, err)
	}
	return p, nil
}

func compareLarge(x, y [3]uint32) int {
	for i := range x {
		if x[i] != y[i] {
			if x[i] < y[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
