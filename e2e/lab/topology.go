package lab

import (
	"fmt"
	"net/netip"
)

// Names of the lab's namespaces and links. Everything the lab creates in the kernel starts
// with Prefix.
const (
	// Prefix starts the name of every network namespace and root-namespace link of the lab.
	Prefix = "ls-"
	// RouterNS holds the node-LAN bridge and FRR.
	RouterNS = "ls-router"
	// ControlPlaneNS holds etcd, the API server, the controller-manager, the scheduler and
	// the Loadstone controller.
	ControlPlaneNS = "ls-cp"
	// ClientNS is the outside client behind the router.
	ClientNS = "ls-client"
	// HostLink was the root namespace's end of a veth into the node LAN. The lab no longer
	// creates it (the machine's own network may use 192.0.2.0/24, see HostAPIAddr), but
	// Cleanup still removes one left by an old run.
	HostLink = "ls-host"
	// Bridge is the node-LAN bridge inside RouterNS.
	Bridge = "br0"
	// BridgeMAC is the router's fixed MAC on the node LAN. A Linux bridge otherwise takes
	// the lowest MAC of its ports, so detaching and re-attaching a node's port (CutLink,
	// RestoreLink) changed the router's own MAC, which flushes its neighbour entries: it
	// then re-resolved every LB IP by broadcast at the very moment a partition healed,
	// when both the returning node and the stand-in still answer for the IP, and the
	// router's entry flapped between them (TestPartitionHealSettlesWithoutFlapping, about
	// 4 runs in 20 in one lab). A real router's MAC does not change when a port goes down.
	BridgeMAC = "02:6c:73:00:00:01"
	// NodeLink is the name of the LAN interface inside every node, the control plane and
	// the client.
	NodeLink = "eth0"
)

// Addresses of the lab (documentation and benchmarking ranges only).
const (
	RouterIP      = "192.0.2.1"
	RouterIP6     = "2001:db8:1::1"
	ControlIP     = "192.0.2.2"
	ControlIP6    = "2001:db8:1::2"
	LANCIDR       = "192.0.2.0/24"
	LANCIDR6      = "2001:db8:1::/64"
	RouterClient  = "198.51.100.1"
	RouterClient6 = "2001:db8:2::1"
	ClientIP      = "198.51.100.10"
	ClientIP6     = "2001:db8:2::10"
	ClientCIDR    = "198.51.100.0/24"
	ClientCIDR6   = "2001:db8:2::/64"
	PoolCIDR      = "203.0.113.0/24"
	PoolCIDR6     = "2001:db8:100::/64"
	ClusterCIDR   = "198.18.0.0/16"
	ClusterCIDR6  = "2001:db8:1000::/56"
	ServiceCIDR   = "198.19.0.0/16"
	ServiceCIDR6  = "2001:db8:2000::/108"
	// KubernetesServiceIP is the first IP of ServiceCIDR, taken by the "kubernetes" Service.
	KubernetesServiceIP = "198.19.0.1"
	// KubeDNSIP is the kube-dns Service's IP (the .10 of ServiceCIDR): the nameserver of
	// the pods' resolv.conf.
	KubeDNSIP = "198.19.0.10"
	// ClusterDomain is the cluster's DNS domain.
	ClusterDomain = "cluster.local"
	// APIServerURL is where the API server listens, reachable from every namespace of the
	// lab (not from the root namespace).
	APIServerURL = "https://192.0.2.2:6443"
	// HostAPIAddr is where the root namespace reaches the API server: a small TCP relay
	// (`lab apiproxy`, started by Up) listens there and connects from inside the router's
	// namespace. The root namespace gets no link into the lab because the machine's own
	// network can use the same documentation range (these machines have eth0 192.0.2.2/24
	// with gateway 192.0.2.1); the lab is fully isolated from it.
	HostAPIAddr = "127.0.0.1:16443"
	// RouterASN is FRR's AS number; NodeASN is the one the router expects from speakers
	// (it accepts any external AS from the node LAN).
	RouterASN = 64500
	NodeASN   = 64512
	// MaxNodes bounds Config.Nodes so that addresses stay inside their ranges.
	MaxNodes = 40
)

// Node describes the addresses of one lab node.
type Node struct {
	// Index counts from 1.
	Index int
	// Name is both the netns name and the Kubernetes Node name.
	Name     string
	IP       netip.Addr
	IP6      netip.Addr
	PodCIDR  netip.Prefix
	PodCIDR6 netip.Prefix
	// RouterPort is the node's veth end on the router's bridge.
	RouterPort string
}

// NodeAt returns the addresses of node i (1-based): ls-nodeI, 192.0.2.(10+i),
// 2001:db8:1::(10+i), pods 198.18.i.0/24 and 2001:db8:1000:i::/64. IPv6 suffixes are
// written with the same digits as IPv4 (node 1 is 2001:db8:1::11), as the docs show them.
func NodeAt(i int) Node {
	return Node{
		Index:      i,
		Name:       fmt.Sprintf("ls-node%d", i),
		IP:         netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 10+i)),
		IP6:        netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%d", 10+i)),
		PodCIDR:    netip.MustParsePrefix(fmt.Sprintf("198.18.%d.0/24", i)),
		PodCIDR6:   netip.MustParsePrefix(fmt.Sprintf("2001:db8:1000:%d::/64", i)),
		RouterPort: fmt.Sprintf("v-node%d", i),
	}
}

// Nodes returns the addresses of nodes 1..n.
func Nodes(n int) []Node {
	out := make([]Node, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, NodeAt(i))
	}
	return out
}
