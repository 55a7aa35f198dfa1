package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nsSysctls returns the sysctls set explicitly in a namespace (a new netns inherits IPv4
// defaults from the root namespace, whatever they are). Forwarding is on in the router and
// the nodes only.
func nsSysctls(role string) []string {
	fwd := "0"
	if role == "router" || role == "node" {
		fwd = "1"
	}
	s := []string{
		"net.ipv4.ip_forward=" + fwd,
		"net.ipv6.conf.all.forwarding=" + fwd,
		"net.ipv6.conf.default.forwarding=" + fwd,
		"net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf.default.rp_filter=0",
		"net.ipv4.conf.all.arp_ignore=0",
		"net.ipv4.conf.default.arp_ignore=0",
		"net.ipv4.conf.all.arp_announce=0",
		"net.ipv4.conf.default.arp_announce=0",
		// Addresses are usable at once: no duplicate address detection, no router
		// advertisements (every route is static or from FRR).
		"net.ipv6.conf.all.accept_dad=0",
		"net.ipv6.conf.default.accept_dad=0",
		"net.ipv6.conf.all.accept_ra=0",
		"net.ipv6.conf.default.accept_ra=0",
	}
	if role == "client" {
		// The client stands for a host somewhere behind the router, which never learns
		// an on-link path to a LoadBalancer IP. A Linux router does tell it one: the first
		// packet to a new IPv6 LB IP that arrives before kube-proxy has programmed the
		// DNAT bounces between the router and the announcing node (both send it back out
		// the interface it came in on), and the router's IPv6 forwarding path sends an
		// ICMPv6 Redirect "<ip> is on-link at <node MAC>" to the packet's source even
		// though the source is not on that link. The client would then send to a MAC
		// that is not on its link until neighbour discovery gives up (about 12 s). See
		// docs/lab.md, "IPv6: first reach of a new LB IP".
		s = append(s, "net.ipv6.conf.all.accept_redirects=0", "net.ipv6.conf.default.accept_redirects=0")
	}
	if role == "router" {
		// ECMP spreads connections (by L4 hash) only with policy 1.
		s = append(s, "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1")
	}
	return s
}

// netStep is one command of the network build, run in a namespace ("" = root).
type netStep struct {
	ns   string
	args []string
}

// networkPlan returns the `ip` commands that build the lab's links, addresses and routes
// once the namespaces exist. It is a pure function of the node count.
func networkPlan(nodes []Node) []netStep {
	var p []netStep
	ipn := func(ns string, args ...string) { p = append(p, netStep{ns: ns, args: args}) }

	for _, ns := range append([]string{RouterNS, ControlPlaneNS, ClientNS}, nodeNames(nodes)...) {
		ipn(ns, "link", "set", "lo", "up")
	}
	// The node LAN: a bridge in the router with one veth per member.
	ipn(RouterNS, "link", "add", Bridge, "address", BridgeMAC, "type", "bridge", "mcast_snooping", "0", "stp_state", "0")
	ipn(RouterNS, "link", "set", Bridge, "up")
	ipn(RouterNS, "addr", "add", RouterIP+"/24", "dev", Bridge)
	ipn(RouterNS, "addr", "add", RouterIP6+"/64", "dev", Bridge, "nodad")

	member := func(ns, port, ip, ip6 string) {
		ipn("", "link", "add", port, "netns", RouterNS, "type", "veth", "peer", "name", NodeLink, "netns", ns)
		ipn(RouterNS, "link", "set", port, "master", Bridge, "up")
		ipn(ns, "link", "set", NodeLink, "up")
		ipn(ns, "addr", "add", ip+"/24", "dev", NodeLink)
		ipn(ns, "addr", "add", ip6+"/64", "dev", NodeLink, "nodad")
		ipn(ns, "route", "add", "default", "via", RouterIP)
		ipn(ns, "-6", "route", "add", "default", "via", RouterIP6)
	}
	member(ControlPlaneNS, "v-cp", ControlIP, ControlIP6)
	for _, n := range nodes {
		member(n.Name, n.RouterPort, n.IP.String(), n.IP6.String())
	}
	// Pod CIDRs: every node routes to the others'; the router too (client → pod IP
	// directly, for comparisons, and replies to pods that talk to the client).
	for _, n := range nodes {
		for _, m := range nodes {
			if m.Name == n.Name {
				continue
			}
			ipn(n.Name, "route", "add", m.PodCIDR.String(), "via", m.IP.String())
			ipn(n.Name, "-6", "route", "add", m.PodCIDR6.String(), "via", m.IP6.String())
		}
		ipn(RouterNS, "route", "add", n.PodCIDR.String(), "via", n.IP.String())
		ipn(RouterNS, "-6", "route", "add", n.PodCIDR6.String(), "via", n.IP6.String())
	}
	// The L2 pools are on the node LAN: the router ARPs / solicits for them on br0.
	ipn(RouterNS, "route", "add", PoolCIDR, "dev", Bridge)
	ipn(RouterNS, "-6", "route", "add", PoolCIDR6, "dev", Bridge)

	// The client subnet behind the router.
	ipn("", "link", "add", "v-client", "netns", RouterNS, "type", "veth", "peer", "name", NodeLink, "netns", ClientNS)
	ipn(RouterNS, "link", "set", "v-client", "up")
	ipn(RouterNS, "addr", "add", RouterClient+"/24", "dev", "v-client")
	ipn(RouterNS, "addr", "add", RouterClient6+"/64", "dev", "v-client", "nodad")
	ipn(ClientNS, "link", "set", NodeLink, "up")
	ipn(ClientNS, "addr", "add", ClientIP+"/24", "dev", NodeLink)
	ipn(ClientNS, "addr", "add", ClientIP6+"/64", "dev", NodeLink, "nodad")
	ipn(ClientNS, "route", "add", "default", "via", RouterClient)
	ipn(ClientNS, "-6", "route", "add", "default", "via", RouterClient6)

	return p
}

func nodeNames(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// buildNetwork creates the namespaces, sets their sysctls and runs the network plan.
func (l *Lab) buildNetwork(ctx context.Context) error {
	roles := map[string]string{RouterNS: "router", ControlPlaneNS: "cp", ClientNS: "client"}
	for _, n := range l.nodes {
		roles[n.Name] = "node"
	}
	order := append([]string{RouterNS, ControlPlaneNS, ClientNS}, nodeNames(l.nodes)...)
	for _, ns := range order {
		if err := l.state.addNetns(ns); err != nil {
			return err
		}
		if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
			return err
		}
		// sysctl -w writes /proc/sys/net inside the namespace; defaults first so that the
		// interfaces created next inherit them.
		args := append([]string{"sysctl", "-q", "-w"}, nsSysctls(roles[ns])...)
		if _, err := run(ctx, "ip", inNetns(ns, args...)[1:]...); err != nil {
			return err
		}
	}
	for _, st := range networkPlan(l.nodes) {
		args := st.args
		if st.ns != "" {
			args = append([]string{"-n", st.ns}, args...)
		}
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// labNetns lists the existing network namespaces whose name starts with Prefix.
func labNetns(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], Prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// netnsPIDs lists the processes inside a named namespace (like `ip netns pids`).
func netnsPIDs(ctx context.Context, ns string) []int {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// rootLinkExists reports whether a link exists in the root namespace.
func rootLinkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}
