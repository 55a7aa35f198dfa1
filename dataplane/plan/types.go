package plan

import (
	"net/netip"

	"k8s.io/apimachinery/pkg/types"
)

// Mode says how the dataplane serves a Service's LB IPs.
type Mode int

const (
	// ModePods DNATs straight to pod IP:targetPort (the default).
	ModePods Mode = iota
	// ModeNodePort forwards to the NodePort of nodes with ready endpoints.
	ModeNodePort
	// ModeOff leaves the Service to kube-proxy: nothing is programmed for it.
	ModeOff
)

// String names the mode as in configuration.
func (m Mode) String() string {
	switch m {
	case ModePods:
		return "pods"
	case ModeNodePort:
		return "nodeport"
	case ModeOff:
		return "off"
	}
	return "unknown"
}

// Protocol is an IP protocol number; only TCP, UDP and SCTP are served.
type Protocol uint8

// The protocols a Service port can use.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String names the protocol as Kubernetes does.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "unknown"
}

// TrafficPolicy is the Service's externalTrafficPolicy.
type TrafficPolicy int

const (
	// PolicyCluster uses every usable endpoint; traffic to another node is masqueraded.
	PolicyCluster TrafficPolicy = iota
	// PolicyLocal uses only this node's endpoints and preserves the client address.
	PolicyLocal
)

// Service is what the dataplane needs of one LoadBalancer Service.
type Service struct {
	Name types.NamespacedName
	// LBIPs are the IPs this dataplane serves (the ones whose status says ipMode Proxy).
	LBIPs []netip.Addr
	Ports []Port
	// TrafficPolicy is externalTrafficPolicy.
	TrafficPolicy TrafficPolicy
	// ClientIPAffinity is sessionAffinity: ClientIP: the flow hash covers the source
	// address only, so every connection of a client lands on the same backend.
	ClientIPAffinity bool
	// SourceRanges is loadBalancerSourceRanges; empty means every source is allowed.
	SourceRanges []netip.Prefix
	Mode         Mode
	Endpoints    []Endpoint
}

// Port is one Service port.
type Port struct {
	// Name matches Endpoint.Ports (the EndpointSlice port name; "" for a single port).
	Name     string
	Protocol Protocol
	Port     uint16
	// NodePort is used in ModeNodePort; 0 means the port has none (nothing is forwarded).
	NodePort uint16
}

// Endpoint is one address of an EndpointSlice with its conditions.
type Endpoint struct {
	Addr netip.Addr
	// Ports maps a Service port name to this endpoint's target port (resolved per
	// endpoint, as a named targetPort can differ between pods).
	Ports map[string]uint16
	// Node is the endpoint's node; an endpoint without one counts as on a node that is
	// not alive, and is dropped.
	Node        string
	Ready       bool
	Serving     bool
	Terminating bool
}

// Input is one snapshot for Compute.
type Input struct {
	// Node is this node's name.
	Node     string
	Services []Service
	// Alive is the membership view: node name → alive. A node missing from the map is
	// not alive.
	Alive map[string]bool
	// NodeAddrs are the nodes' addresses for ModeNodePort (both families).
	NodeAddrs map[string][]netip.Addr
	// MaglevMinFactor and MaglevMax are passed to maglev.Size (0 = its defaults). They
	// must be the same on every node.
	MaglevMinFactor, MaglevMax int
	// IDs are the service IDs of the previous Compute (its Plan.IDs), so that a Service
	// keeps its ID and an update touches only its own elements. Nil at start.
	IDs map[Key]uint32
}

// Key identifies one Maglev table: a Service port in one address family.
type Key struct {
	Service  types.NamespacedName
	Protocol Protocol
	Port     uint16
	IPv6     bool
}

// Frontend is an LB IP, protocol and port: the key of every per-service nftables set.
type Frontend struct {
	Addr     netip.Addr
	Protocol Protocol
	Port     uint16
}

// Dispatch says how a frontend with backends is served: its Maglev table (by ID), the
// table size (which selects the chain whose jhash has that modulus), and whether the flow
// hash covers the source address only.
type Dispatch struct {
	ID       uint32
	Size     int
	Affinity bool
}

// Range is one allowed source prefix of a frontend with loadBalancerSourceRanges.
type Range struct {
	Frontend Frontend
	Source   netip.Prefix
}

// Plan is the desired content of Loadstone's nftables sets and maps, as plain data.
// Every map is keyed so that two plans compare with cmp.Diff and an applier can diff
// them element by element.
type Plan struct {
	// Frontends are the LB IP·proto·port tuples that are DNATed.
	Frontends map[Frontend]Dispatch
	// Tables are the Maglev tables by ID: entry i is the backend for flow hash i.
	Tables map[uint32][]netip.AddrPort
	// Reject are frontends without any usable endpoint: new connections get a TCP RST or
	// an ICMP port unreachable.
	Reject map[Frontend]bool
	// Ranged are frontends restricted by loadBalancerSourceRanges; Allowed holds their
	// permitted sources, anything else is dropped and counted.
	Ranged  map[Frontend]bool
	Allowed map[Range]bool
	// Masquerade are frontends whose traffic is masqueraded when the chosen backend is
	// in Remote (externalTrafficPolicy Cluster).
	Masquerade map[Frontend]bool
	// Remote are backend addresses on other nodes (pods or node IPs).
	Remote map[netip.Addr]bool
	// IDs is the ID of every table, to pass back as Input.IDs next time.
	IDs map[Key]uint32
}
