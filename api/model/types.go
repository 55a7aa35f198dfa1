package model

import (
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Config is the validated, internal form of all Loadstone configuration objects. It holds
// only netip and plain Go types, never CRD types, so that the controller and the speaker
// compute on it without touching the API package's wire shapes.
type Config struct {
	// Pools by name.
	Pools map[string]*Pool
	// L2Advertisements by name.
	L2Advertisements map[string]*L2Advertisement
	// BGPPeers by name.
	BGPPeers map[string]*BGPPeer
	// BGPAdvertisements by name.
	BGPAdvertisements map[string]*BGPAdvertisement
	// BFDProfiles by name.
	BFDProfiles map[string]*BFDProfile
	// Communities are the alias names of Community objects, resolved to values.
	Communities map[string]CommunityValue
	// CommunityOwners maps each alias name in Communities to the Community object that
	// defines it (so that a broken Community object can keep its last good aliases).
	CommunityOwners map[string]string
}

// Range is an inclusive range of addresses of one family.
type Range struct {
	First, Last netip.Addr
}

// Pool is an IPAddressPool.
type Pool struct {
	Name string
	// Ranges are sorted by First, do not overlap and are of either family. A CIDR becomes
	// one Range covering the whole prefix.
	Ranges []Range
	// CIDRs are the entries of spec.addresses written as a CIDR (not as a range a-b),
	// sorted. The controller does not hand out the subnet-router anycast address (the
	// first one) of an IPv6 CIDR of length 126 or less; a range is taken as written.
	CIDRs []netip.Prefix
	// AutoAssign false: used only when a Service asks for the pool or one of its IPs.
	AutoAssign bool
	// AvoidBuggyIPs skips addresses ending in .0 and .255 (IPv4 only).
	AvoidBuggyIPs bool
	// Allocation restricts and orders the pool for Services; nil means any Service, at the
	// lowest priority.
	Allocation *ServiceAllocation
	// DataplaneMode is the pool's spec.dataplaneMode; "" when unset (the cluster default,
	// see DataplaneMode).
	DataplaneMode Mode
}

// ServiceAllocation is an IPAddressPool's serviceAllocation.
type ServiceAllocation struct {
	// Priority orders pools: a lower number is tried first; 0 means unset (tried after all
	// pools with a priority).
	Priority int
	// Namespaces, if non-empty, lists the namespaces the pool serves.
	Namespaces []string
	// NamespaceSelectors, if non-empty, match the namespace's labels (any one must match).
	NamespaceSelectors []labels.Selector
	// ServiceSelectors, if non-empty, match the Service's labels (any one must match).
	ServiceSelectors []labels.Selector
}

// L2Advertisement is an L2Advertisement, with its pool selectors resolved to names.
type L2Advertisement struct {
	Name string
	// Pools are the pool names this advertisement covers: the named ones plus those its
	// selectors match. Both empty in the object means all pools. Build resolves this to the
	// explicit, sorted list of pool names in the Config, so an empty list covers no pool.
	Pools []string
	// NodeSelectors, if non-empty, restrict the announcing nodes (any one must match).
	NodeSelectors []labels.Selector
	// Interfaces, if non-empty, are the only interfaces to announce on.
	Interfaces []string
}

// BGPPeer is a BGPPeer.
type BGPPeer struct {
	Name           string
	MyASN          uint32
	PeerASN        uint32
	Address        netip.Addr
	Port           uint16
	SourceAddress  netip.Addr // invalid (zero) when unset
	HoldTime       time.Duration
	KeepaliveTime  time.Duration
	ConnectTime    time.Duration
	EBGPMultiHop   bool
	Password       string
	PasswordSecret *SecretRef // the password comes from this Secret when set
	BFDProfile     string     // name of a BFDProfile, or ""
	// StrictBFD: advertise to the peer only while its BFD session is Up (needs BFDProfile).
	StrictBFD       bool
	GracefulRestart bool
	NodeSelectors   []labels.Selector
	RouterID        netip.Addr // invalid (zero) when unset
}

// SecretRef names a key in a Secret.
type SecretRef struct {
	Namespace, Name, Key string
}

// BGPAdvertisement is a BGPAdvertisement, with pools and community aliases resolved.
type BGPAdvertisement struct {
	Name string
	// Pools are the covered pool names, resolved as in L2Advertisement.Pools.
	Pools               []string
	AggregationLength   int    // IPv4 prefix length to announce, 32 by default
	AggregationLengthV6 int    // IPv6 prefix length to announce, 128 by default
	LocalPref           uint32 // 0: not set (LOCAL_PREF is not sent)
	Communities         []CommunityValue
	Peers               []string // peer names; empty means all peers
	NodeSelectors       []labels.Selector
}

// BFDProfile is a BFDProfile.
type BFDProfile struct {
	Name             string
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	DetectMultiplier int
	PassiveMode      bool
	MinimumTTL       int
}

// CommunityValue is one BGP community: a standard (RFC 1997) or a large (RFC 8092) one.
type CommunityValue struct {
	Large    bool
	Standard uint32    // AA<<16 | NN, when !Large
	LargeVal [3]uint32 // global admin, local 1, local 2, when Large
}
