package framework

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// Vtysh runs a vtysh command on the router and returns its output.
func (e *Env) Vtysh(command string) (string, error) {
	return Exec(lab.RouterNS, "vtysh", "--vty_socket", e.Lab.FRRDir(), "-c", command)
}

// VtyshJSON runs a vtysh command that ends in "json" and decodes its output into v.
func (e *Env) VtyshJSON(command string, v any) error {
	out, err := e.Vtysh(command)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("vtysh %q: %w: %s", command, err, out)
	}
	return nil
}

// BGPNeighbor is one line of FRR's BGP summary.
type BGPNeighbor struct {
	Address  string
	RemoteAS uint32 `json:"remoteAs"`
	State    string `json:"state"`
	// PfxRcd is the number of prefixes received.
	PfxRcd int `json:"pfxRcd"`
}

// BGPNeighbors returns FRR's BGP sessions of one family ("ipv4" or "ipv6").
func (e *Env) BGPNeighbors(family string) (map[string]BGPNeighbor, error) {
	var raw struct {
		IPv4Unicast struct {
			Peers map[string]BGPNeighbor `json:"peers"`
		} `json:"ipv4Unicast"`
		IPv6Unicast struct {
			Peers map[string]BGPNeighbor `json:"peers"`
		} `json:"ipv6Unicast"`
	}
	if err := e.VtyshJSON("show bgp summary json", &raw); err != nil {
		return nil, err
	}
	peers := raw.IPv4Unicast.Peers
	if family == "ipv6" {
		peers = raw.IPv6Unicast.Peers
	}
	for a, p := range peers {
		p.Address = a
		peers[a] = p
	}
	return peers, nil
}

// BFDPeer is one of FRR's BFD sessions.
type BFDPeer struct {
	Peer   string `json:"peer"`
	Status string `json:"status"` // "up", "down", "init"
	// Uptime in seconds, when up.
	Uptime int `json:"uptime"`
}

// BFDPeers returns FRR's BFD sessions.
func (e *Env) BFDPeers() ([]BFDPeer, error) {
	var peers []BFDPeer
	return peers, e.VtyshJSON("show bfd peers json", &peers)
}

// Nexthop is one next hop of a route.
type Nexthop struct {
	IP        string `json:"ip"`
	Interface string `json:"interfaceName"`
	Active    bool   `json:"active"`
}

// FRRRoute is an entry of FRR's RIB.
type FRRRoute struct {
	Prefix   string    `json:"prefix"`
	Protocol string    `json:"protocol"`
	Selected bool      `json:"selected"`
	Nexthops []Nexthop `json:"nexthops"`
}

// FRRRoutes returns FRR's routes for a prefix (all entries, selected or not); none is
// an empty result, not an error.
func (e *Env) FRRRoutes(p netip.Prefix) ([]FRRRoute, error) {
	cmd := "show ip route " + p.String() + " json"
	if p.Addr().Is6() {
		cmd = "show ipv6 route " + p.String() + " json"
	}
	raw := map[string][]FRRRoute{}
	if err := e.VtyshJSON(cmd, &raw); err != nil {
		return nil, err
	}
	return raw[p.String()], nil
}

// KernelRoute is a route of `ip -j route`.
type KernelRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
	Nexthops []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
		// Weight is the next hop's weight (absent, 0 here, means 1).
		Weight int `json:"weight"`
	} `json:"nexthops"`
}

// KernelRoutes returns the kernel's routes in a namespace that match a prefix exactly.
func KernelRoutes(ns string, p netip.Prefix) ([]KernelRoute, error) {
	args := []string{"ip", "-j"}
	if p.Addr().Is6() {
		args = append(args, "-6")
	}
	out, err := Exec(ns, append(args, "route", "show", "exact", p.String())...)
	if err != nil {
		return nil, err
	}
	var rs []KernelRoute
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		return nil, fmt.Errorf("ip -j route: %w: %s", err, out)
	}
	return rs, nil
}

// Neighbor is an entry of `ip -j neigh`.
type Neighbor struct {
	Dst    string   `json:"dst"`
	Dev    string   `json:"dev"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}

// Neighbors returns the kernel's neighbour entries (ARP and NDP) of a namespace, e.g. the
// router's entry for an L2-announced IP.
func Neighbors(ns string) ([]Neighbor, error) {
	out, err := Exec(ns, "ip", "-j", "neigh", "show")
	if err != nil {
		return nil, err
	}
	var ns2 []Neighbor
	if err := json.Unmarshal([]byte(out), &ns2); err != nil {
		return nil, fmt.Errorf("ip -j neigh: %w: %s", err, out)
	}
	return ns2, nil
}

// LinkMAC returns the MAC address of an interface inside a namespace (e.g. a node's eth0,
// to tell which node owns an IP from the router's neighbour table).
func LinkMAC(ns, dev string) (string, error) {
	out, err := Exec(ns, "ip", "-j", "link", "show", "dev", dev)
	if err != nil {
		return "", err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return "", fmt.Errorf("ip -j link %s: %w: %s", dev, err, out)
	}
	if len(links) == 0 {
		return "", fmt.Errorf("ip -j link %s: no link in the output: %s", dev, out)
	}
	return links[0].Address, nil
}

// RouterPeerYAML returns a BGPPeer (and BFDProfile "lab-fast", 100 ms × 3, matching the
// router's) for the lab router: IPv4 session to 192.0.2.1 or, with ipv6, to 2001:db8:1::1;
// the nodes use AS lab.NodeASN and the router lab.RouterASN. Cluster-scoped objects.
func RouterPeerYAML(name string, ipv6 bool) string {
	addr := lab.RouterIP
	if ipv6 {
		addr = lab.RouterIP6
	}
	return fmt.Sprintf(`apiVersion: loadstone.io/v1beta1
kind: BFDProfile
metadata:
  name: lab-fast
spec:
  receiveInterval: 100
  transmitInterval: 100
  detectMultiplier: 3
---
apiVersion: loadstone.io/v1beta1
kind: BGPPeer
metadata:
  name: %s
spec:
  myASN: %d
  peerASN: %d
  peerAddress: %s
  holdTime: 9s
  keepaliveTime: 3s
  bfdProfile: lab-fast
`, name, lab.NodeASN, lab.RouterASN, addr)
}

// WaitBGPEstablished waits until the router has n Established sessions of a family
// ("ipv4" or "ipv6").
func (e *Env) WaitBGPEstablished(family string, n int) map[string]BGPNeighbor {
	e.T.Helper()
	var peers map[string]BGPNeighbor
	e.Eventually(fmt.Sprintf("%d established %s BGP sessions on the router", n, family), 60*time.Second, func() (bool, error) {
		var err error
		peers, err = e.BGPNeighbors(family)
		if err != nil {
			return false, err
		}
		up := 0
		for _, p := range peers {
			if p.State == "Established" {
				up++
			}
		}
		return up >= n, fmt.Errorf("sessions: %+v", peers)
	})
	return peers
}

// WaitBFDUp waits until the router has n BFD sessions up (BFD comes up some seconds after
// BGP: wait for it before a failure test).
func (e *Env) WaitBFDUp(n int) []BFDPeer {
	e.T.Helper()
	var peers []BFDPeer
	e.Eventually(fmt.Sprintf("%d BFD sessions up on the router", n), 60*time.Second, func() (bool, error) {
		var err error
		peers, err = e.BFDPeers()
		if err != nil {
			return false, err
		}
		up := 0
		for _, p := range peers {
			if p.Status == "up" {
				up++
			}
		}
		return up >= n, fmt.Errorf("BFD: %+v", peers)
	})
	return peers
}

// WaitRouterNexthops waits until the router's kernel routes prefix p over exactly n next
// hops (n = 0: until it has no route for p) and returns their gateways.
func (e *Env) WaitRouterNexthops(p netip.Prefix, n int, timeout time.Duration) []string {
	e.T.Helper()
	var gws []string
	e.Eventually(fmt.Sprintf("router route %s over %d next hops", p, n), timeout, func() (bool, error) {
		rs, err := KernelRoutes(lab.RouterNS, p)
		if err != nil {
			return false, err
		}
		gws = RouteGateways(rs)
		return len(gws) == n, fmt.Errorf("next hops %v", gws)
	})
	return gws
}

// RouteGateways flattens the gateways of kernel routes (single and multipath).
func RouteGateways(rs []KernelRoute) []string {
	var out []string
	for _, r := range rs {
		if r.Gateway != "" {
			out = append(out, r.Gateway)
		}
		for _, nh := range r.Nexthops {
			if nh.Gateway != "" {
				out = append(out, nh.Gateway)
			}
		}
	}
	return out
}
