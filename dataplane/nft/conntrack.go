package nft

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// FlushConntrack deletes the conntrack entries of the Applier's namespace whose reply
// source is one of addrs: the connections NATed to those backends (and any other flow
// those addresses answer). The speaker calls it for the endpoints of a node that
// membership declared dead: without it, a client that reuses a source port whose earlier
// SYN was DNATed to a dead pod is sent there again until the entry expires (120 s for
// SYN_SENT), and an established flow to a dead pod waits for its timeout instead of being
// re-balanced (and reset by the new pod) on its next packet. It returns how many entries
// it deleted.
//
// It must not be used for endpoints that are merely terminating: their existing
// connections are to continue.
func (a *Applier) FlushConntrack(addrs []netip.Addr) (uint, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	h, err := conntrackHandle(a.cfg.NetNS)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	var total uint
	for _, fam := range []struct {
		family netlink.InetFamily
		is6    bool
	}{{unix.AF_INET, false}, {unix.AF_INET6, true}} {
		var filters []netlink.CustomConntrackFilter
		for _, ip := range addrs {
			if ip.Unmap().Is6() != fam.is6 {
				continue
			}
			f := &netlink.ConntrackFilter{}
			if err := f.AddIP(netlink.ConntrackReplySrcIP, net.IP(ip.Unmap().AsSlice())); err != nil {
				return total, fmt.Errorf("conntrack filter %s: %w", ip, err)
			}
			filters = append(filters, f)
		}
		if len(filters) == 0 {
			continue
		}
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam.family, filters...)
		total += n
		if err != nil {
			return total, fmt.Errorf("delete conntrack entries: %w", err)
		}
	}
	return total, nil
}

// conntrackHandle is a netlink handle in the namespace fd (0: the current one).
func conntrackHandle(fd int) (*netlink.Handle, error) {
	if fd == 0 {
		h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
		if err != nil {
			return nil, fmt.Errorf("netlink handle: %w", err)
		}
		return h, nil
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(fd), unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in netns fd %d: %w", fd, err)
	}
	return h, nil
}
