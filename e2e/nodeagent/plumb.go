package nodeagent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultBridge is the name of the per-node bridge the pods' veths are attached to.
const DefaultBridge = "cbr0"

// podIfName is the pod side of the veth pair, inside the pod's namespace.
const podIfName = "eth0"

// BridgeSpec is the per-node bridge: its name and the gateway address of each pod CIDR.
type BridgeSpec struct {
	Name string
	// Gateways are the bridge's addresses with the pod CIDRs' lengths, e.g. 198.18.1.1/24.
	Gateways []netip.Prefix
}

// PodNetSpec is the network of one pod.
type PodNetSpec struct {
	Bridge   string
	HostVeth string
	// Addrs are the pod's addresses with the pod CIDRs' lengths, e.g. 198.18.1.2/24.
	Addrs []netip.Prefix
	// Gateways are the default-route next hops, one per family (the bridge's addresses).
	Gateways []netip.Addr
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// bridgeMAC is a stable, locally administered MAC for a node's bridge, so the pods' gateway
// MAC does not change as veths come and go (a Linux bridge otherwise takes its lowest port's).
func bridgeMAC(seed string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("loadstone-bridge/" + seed))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac
}

// EnsureBridge creates (or repairs) the bridge in the node namespace nodeNS, with the
// gateway addresses, up, and turns forwarding on there. It is idempotent.
func EnsureBridge(nodeNS netns.NsHandle, spec BridgeSpec, macSeed string) error {
	if !validIfName(spec.Name) {
		return fmt.Errorf("invalid bridge name %q", spec.Name)
	}
	if err := writeSysctls(nodeNS, [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv6/conf/all/disable_ipv6", "0"},
		{"net/ipv6/conf/default/disable_ipv6", "0"},
		{"net/ipv6/conf/all/forwarding", "1"},
	}); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		return fmt.Errorf("netlink handle in node netns: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(spec.Name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", spec.Name, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: spec.Name, HardwareAddr: bridgeMAC(macSeed)}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", spec.Name, err)
		}
		if link, err = h.LinkByName(spec.Name); err != nil {
			return fmt.Errorf("look up bridge %s: %w", spec.Name, err)
		}
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("%s exists and is a %s, not a bridge", spec.Name, link.Type())
	}
	if err := writeSysctls(nodeNS, [][2]string{
		{"net/ipv6/conf/" + spec.Name + "/disable_ipv6", "0"},
		{"net/ipv6/conf/" + spec.Name + "/forwarding", "1"},
		{"net/ipv4/conf/" + spec.Name + "/forwarding", "1"},
	}); err != nil {
		return err
	}
	for _, gw := range spec.Gateways {
		if err := h.AddrReplace(link, &netlink.Addr{IPNet: ipNet(gw), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s on %s: %w", gw, spec.Name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", spec.Name, err)
	}
	return nil
}

// DeleteBridge removes the bridge; a missing bridge is not an error.
func DeleteBridge(nodeNS netns.NsHandle, name string) error {
	return deleteLink(nodeNS, name)
}

func deleteLink(ns netns.NsHandle, name string) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// SetupPodNet wires the pod namespace podNS to the bridge in nodeNS: a veth pair (HostVeth
// on the bridge, eth0 in the pod), the pod's addresses, lo and eth0 up, and default routes
// via the gateways. It is idempotent; a half-made pair is replaced.
func SetupPodNet(nodeNS, podNS netns.NsHandle, spec PodNetSpec) error {
	if !validIfName(spec.HostVeth) {
		return fmt.Errorf("invalid veth name %q", spec.HostVeth)
	}
	if err := writeSysctls(podNS, [][2]string{
		{"net/ipv6/conf/all/disable_ipv6", "0"},
		{"net/ipv6/conf/default/disable_ipv6", "0"},
		{"net/ipv6/conf/default/accept_dad", "0"},
		{"net/ipv4/ip_forward", "0"},
	}); err != nil {
		return err
	}
	nh, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		return fmt.Errorf("netlink handle in node netns: %w", err)
	}
	defer nh.Close()
	ph, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return fmt.Errorf("netlink handle in pod netns: %w", err)
	}
	defer ph.Close()

	br, err := nh.LinkByName(spec.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", spec.Bridge, err)
	}
	host, hostErr := nh.LinkByName(spec.HostVeth)
	_, podErr := ph.LinkByName(podIfName)
	if hostErr != nil || podErr != nil {
		// Start over: remove whichever end exists, then create the pair with its peer
		// directly inside the pod namespace.
		if hostErr == nil {
			if err := nh.LinkDel(host); err != nil {
				return fmt.Errorf("delete stale %s: %w", spec.HostVeth, err)
			}
		}
		if podErr == nil {
			if err := deleteLinkWith(ph, podIfName); err != nil {
				return err
			}
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: spec.HostVeth},
			PeerName:      podIfName,
			PeerNamespace: netlink.NsFd(int(podNS)),
		}
		if err := nh.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s: %w", spec.HostVeth, err)
		}
		if host, err = nh.LinkByName(spec.HostVeth); err != nil {
			return fmt.Errorf("look up %s: %w", spec.HostVeth, err)
		}
	}
	if err := nh.LinkSetMaster(host, br); err != nil {
		return fmt.Errorf("attach %s to %s: %w", spec.HostVeth, spec.Bridge, err)
	}
	// Hairpin lets a pod reach itself through a Service (DNAT back out the same port).
	if err := nh.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", spec.HostVeth, err)
	}
	if err := nh.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", spec.HostVeth, err)
	}

	lo, err := ph.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo in pod: %w", err)
	}
	if err := ph.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in pod: %w", err)
	}
	eth, err := ph.LinkByName(podIfName)
	if err != nil {
		return fmt.Errorf("look up %s in pod: %w", podIfName, err)
	}
	for _, a := range spec.Addrs {
		if err := ph.AddrReplace(eth, &netlink.Addr{IPNet: ipNet(a), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s on pod %s: %w", a, podIfName, err)
		}
	}
	if err := ph.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set pod %s up: %w", podIfName, err)
	}
	for _, gw := range spec.Gateways {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if gw.Is6() {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		r := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipNet(dst), Gw: gw.AsSlice()}
		if err := ph.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s in pod: %w", gw, err)
		}
	}
	return nil
}

func deleteLinkWith(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil // already gone: deletion is idempotent
		}
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// TeardownPodNet removes the pod's host-side veth (the pod side goes with it). A missing
// veth is not an error.
func TeardownPodNet(nodeNS netns.NsHandle, hostVeth string) error {
	return deleteLink(nodeNS, hostVeth)
}
