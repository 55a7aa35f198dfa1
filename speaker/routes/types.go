package routes

import (
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Peer is one BGP session this node opens: a BGPPeer that selects this node, with its
// password resolved and its BFD profile inlined.
type Peer struct {
	// Name is the BGPPeer's name; it keys Plan.Paths and the session's status.
	Name    string
	Address netip.Addr
	Port    uint16
	MyASN   uint32
	PeerASN uint32
	// SourceAddress is the local address of the session; zero: the kernel chooses.
	SourceAddress netip.Addr
	// HoldTime, KeepaliveTime and ConnectTime as configured (defaults applied by the model).
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	ConnectTime   time.Duration
	EBGPMultiHop  bool
	// Password is the TCP MD5 password ("" for none), already read from its Secret.
	Password        string
	GracefulRestart bool
	// BFD, when not nil, runs a BFD session to Address alongside the BGP session.
	BFD *BFD
}

// IBGP reports whether the session is internal (same AS on both ends).
func (p Peer) IBGP() bool { return p.MyASN == p.PeerASN }

// BFD is a BFD session's parameters (from a BFDProfile; RFC 5880 names in comments).
type BFD struct {
	// Profile is the BFDProfile's name.
	Profile string
	// ReceiveInterval is Required Min RX Interval; TransmitInterval is Desired Min TX Interval.
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	// DetectMultiplier is Detect Mult.
	DetectMultiplier int
	// PassiveMode: wait for the peer's first packet before sending (RFC 5880 §6.1).
	PassiveMode bool
	// MinimumTTL is the lowest TTL (hop limit) accepted on received packets.
	MinimumTTL int
	// Strict: advertise to the peer only while its BFD session is Up.
	Strict bool
}

// Path is one prefix advertised to one peer, with its attributes. The next hop is always
// this node's session address (next-hop-self); it is not part of the decision.
type Path struct {
	Prefix netip.Prefix
	// Communities are standard communities (AA<<16 | NN), sorted, without duplicates.
	Communities []uint32
	// LargeCommunities are large communities (global admin, local 1, local 2), sorted,
	// without duplicates.
	LargeCommunities [][3]uint32
	// LocalPref is sent when HasLocalPref (iBGP sessions only).
	LocalPref    uint32
	HasLocalPref bool
	// LinkBandwidth, when above 0, is sent as the link-bandwidth extended community
	// (draft-ietf-idr-link-bandwidth), in bytes per second, so the router weights its
	// next hops (externalTrafficPolicy Local).
	LinkBandwidth float32
	// Services are the Services whose IPs the prefix carries (for status and Events).
	Services []types.NamespacedName
}

// Plan is the whole BGP decision of one node.
type Plan struct {
	// RouterID is the BGP identifier of this node's speaker.
	RouterID netip.Addr
	// Peers are the sessions to run, sorted by Name.
	Peers []Peer
	// Paths maps a peer's Name to the paths advertised to it, sorted by Prefix. A peer
	// with no entry gets no paths (the session still runs).
	Paths map[string][]Path
	// Problems are what kept part of the configuration from taking effect on this node.
	Problems []Problem
}

// Problem is a reason part of the BGP configuration does not take effect on this node.
type Problem struct {
	// Kind is BGPPeer, BGPAdvertisement or Service; Name is the object's name
	// (namespace/name for a Service).
	Kind, Name string
	// Reason is a CamelCase reason for conditions and Events; Message says what and why.
	Reason, Message string
}
