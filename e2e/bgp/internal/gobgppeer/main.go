// Command gobgppeer is a reference BGP speaker for the lab, built on the same gobgp v3
// library the speaker embeds: it peers with one router and announces prefixes (optionally
// with gobgp's link-bandwidth extended community, which gobgp always encodes
// non-transitive), then waits for SIGTERM. Run it inside a node's namespace
// (`ip netns exec ls-nodeN gobgppeer ...`). It prints "announced N" once all prefixes are
// in its RIB.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
)

func main() {
	routerID := flag.String("router-id", "", "BGP identifier (the node's IPv4 address)")
	asn := flag.Uint("as", 64512, "local AS")
	peer := flag.String("peer", "192.0.2.1", "router address")
	peerAS := flag.Uint("peer-as", 64500, "router AS")
	nexthop := flag.String("nexthop", "", "next hop of the announced prefixes (the node's address on the session's family)")
	first := flag.String("first", "", "first prefix to announce (e.g. 203.0.113.251/32)")
	count := flag.Int("count", 1, "number of consecutive prefixes of first's length")
	lbw := flag.Float64("link-bandwidth", 0, "link-bandwidth extended community in bytes/s (0: none)")
	flag.Parse()
	if err := run(*routerID, uint32(*asn), *peer, uint32(*peerAS), *nexthop, *first, *count, float32(*lbw)); err != nil {
		fmt.Fprintln(os.Stderr, "gobgppeer:", err)
		os.Exit(1)
	}
}

func run(routerID string, asn uint32, peer string, peerAS uint32, nexthop, first string, count int, lbw float32) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	p0, err := netip.ParsePrefix(first)
	if err != nil {
		return fmt.Errorf("-first: %w", err)
	}
	nh, err := netip.ParseAddr(nexthop)
	if err != nil {
		return fmt.Errorf("-nexthop: %w", err)
	}
	s := server.NewBgpServer()
	go s.Serve()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: routerID, ListenPort: -1}}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	afi := api.Family_AFI_IP
	if p0.Addr().Is6() {
		afi = api.Family_AFI_IP6
	}
	fam := &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: peer, PeerAsn: peerAS},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3, ConnectRetry: 1}},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
		Transport: &api.Transport{PassiveMode: false},
	}}); err != nil {
		return fmt.Errorf("add peer: %w", err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if lbw > 0 {
		attrs = append(attrs, bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{bgp.NewLinkBandwidthExtended(uint16(asn), lbw)}))
	}
	a := p0.Addr()
	for i := 0; i < count; i++ {
		p := netip.PrefixFrom(a, p0.Bits())
		var nlri bgp.AddrPrefixInterface
		pa := attrs
		if a.Is4() {
			nlri = bgp.NewIPAddrPrefix(uint8(p.Bits()), a.String())
			pa = append(pa, bgp.NewPathAttributeNextHop(nh.String()))
		} else {
			nlri = bgp.NewIPv6AddrPrefix(uint8(p.Bits()), a.String())
			pa = append(pa, bgp.NewPathAttributeMpReachNLRI(nh.String(), []bgp.AddrPrefixInterface{nlri}))
		}
		n, err := apiutil.MarshalNLRI(nlri)
		if err != nil {
			return err
		}
		pattrs, err := apiutil.MarshalPathAttributes(pa)
		if err != nil {
			return err
		}
		if _, err := s.AddPath(ctx, &api.AddPathRequest{Path: &api.Path{Family: fam, Nlri: n, Pattrs: pattrs}}); err != nil {
			return fmt.Errorf("add path %s: %w", p, err)
		}
		a = next(a, p0.Bits())
	}
	fmt.Printf("announced %d\n", count)
	<-ctx.Done()
	return s.StopBgp(context.Background(), &api.StopBgpRequest{})
}

// next returns the first address of the prefix after a's (same length).
func next(a netip.Addr, bits int) netip.Addr {
	b := a.AsSlice()
	// Add 1 at bit position bits-1 (counting from the most significant bit).
	i := (bits - 1) / 8
	carry := uint(1) << (7 - uint((bits-1)%8))
	for ; i >= 0 && carry > 0; i-- {
		v := uint(b[i]) + carry
		b[i] = byte(v)
		carry = v >> 8
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}
