package layer2

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
)

// Owned answers whether this node owns an IP on the interface being served.
type Owned func(netip.Addr) bool

// Verdict is what the pure core decided about one received packet.
type Verdict int

const (
	// Ignore: not for us, malformed, or our own frame.
	Ignore Verdict = iota
	// Reply: a request for an owned IP; send Decision.Reply.
	Reply
	// Duplicate: another link-layer address claims an owned IP.
	Duplicate
	// NotOwned: a well-formed request for an IP we do not own (counted, not answered).
	NotOwned
)

// Decision is the outcome of handling one packet.
type Decision struct {
	Verdict Verdict
	// IP is the address the packet asked about or claimed.
	IP netip.Addr
	// Reply is the frame (ARP) or ICMPv6 message body (NDP) to send, for Verdict Reply.
	Reply []byte
	// ReplyTo is the link-layer destination (ARP) of the reply.
	ReplyTo net.HardwareAddr
	// ReplyDst is the IPv6 destination (NDP) of the reply.
	ReplyDst netip.Addr
	// Request: the packet was a request (ARP request or Neighbor Solicitation).
	Request bool
	// Other is the conflicting link-layer address, for Verdict Duplicate.
	Other net.HardwareAddr
}

// HandleARP decides what to do with one Ethernet frame carrying ARP, received on an
// interface whose address is self. It is pure and safe on any input.
//
// A request for an owned IP is answered with a unicast reply to its sender. Any ARP packet
// whose sender IP is an owned IP but whose sender hardware address is not ours (a
// gratuitous ARP, a reply, or a request from the other owner) is a Duplicate; a conflict
// takes precedence over answering.
func HandleARP(frame []byte, self net.HardwareAddr, owned Owned) Decision {
	_, src, et, payload, ok := parseEthernet(frame)
	if !ok || et != etherTypeARP || bytes.Equal(src, self) {
		return Decision{} // not ARP, or our own transmission seen by the packet socket
	}
	p, err := parseARP(payload)
	if err != nil || bytes.Equal(p.SenderMAC, self) {
		return Decision{}
	}
	request := p.Op == arpRequest
	if p.Op != arpRequest && p.Op != arpReply {
		return Decision{}
	}
	if !p.SenderIP.IsUnspecified() && owned(p.SenderIP) {
		return Decision{Verdict: Duplicate, IP: p.SenderIP, Request: request, Other: p.SenderMAC}
	}
	if !request {
		return Decision{}
	}
	if !owned(p.TargetIP) {
		return Decision{Verdict: NotOwned, IP: p.TargetIP, Request: true}
	}
	// Reply to the requester, at the Ethernet source it came from. An RFC 5227 probe has
	// sender IP 0.0.0.0: answering it defends the address, as the RFC expects of the owner.
	reply := arpPacket{Op: arpReply, SenderMAC: self, SenderIP: p.TargetIP, TargetMAC: p.SenderMAC, TargetIP: p.SenderIP}
	pb, err := reply.marshal()
	if err != nil || len(self) != 6 {
		return Decision{}
	}
	dst := cloneMAC(src)
	return Decision{Verdict: Reply, IP: p.TargetIP, Request: true,
		Reply: ethernetFrame(dst, self, etherTypeARP, pb), ReplyTo: dst}
}

// GratuitousARP returns a gratuitous ARP frame in the request form (operation 1, sender IP
// = target IP, broadcast), which Linux uses to update an existing neighbour entry even
// within its locktime (see docs/speaker.md).
func GratuitousARP(self net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	p := arpPacket{Op: arpRequest, SenderMAC: self, SenderIP: ip, TargetMAC: broadcastMAC, TargetIP: ip}
	pb, err := p.marshal()
	if err != nil {
		return nil, err
	}
	return ethernetFrame(broadcastMAC, self, etherTypeARP, pb), nil
}

// allNodes is ff02::1, the destination of unsolicited advertisements.
var allNodes = netip.MustParseAddr("ff02::1")

// HandleNDP decides what to do with one ICMPv6 message body (no IPv6 header) received from
// src on an interface whose address is self. It is pure and safe on any input.
//
// A Neighbor Solicitation for an owned IP is answered with a solicited Neighbor
// Advertisement (override set, target link-layer address self) to its source, or to
// all-nodes when the source is unspecified (duplicate address detection). A Neighbor
// Advertisement for an owned IP carrying another target link-layer address is a Duplicate.
func HandleNDP(msg []byte, src netip.Addr, self net.HardwareAddr, owned Owned) Decision {
	m, err := ndp.ParseMessage(msg)
	if err != nil {
		return Decision{}
	}
	switch m := m.(type) {
	case *ndp.NeighborSolicitation:
		ip := m.TargetAddress
		if !ip.IsValid() || !ip.Is6() {
			return Decision{}
		}
		if !owned(ip) {
			return Decision{Verdict: NotOwned, IP: ip, Request: true}
		}
		if lla := linkLayer(m.Options, ndp.Source); lla != nil && bytes.Equal(lla, self) {
			return Decision{} // our own solicitation
		}
		na := &ndp.NeighborAdvertisement{Solicited: true, Override: true, TargetAddress: ip,
			Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: cloneMAC(self)}}}
		dst := src
		if !src.IsValid() || src.IsUnspecified() {
			na.Solicited = false
			dst = allNodes
		}
		b, err := ndp.MarshalMessage(na)
		if err != nil {
			return Decision{}
		}
		return Decision{Verdict: Reply, IP: ip, Request: true, Reply: b, ReplyDst: dst}
	case *ndp.NeighborAdvertisement:
		ip := m.TargetAddress
		if !ip.IsValid() || !owned(ip) {
			return Decision{}
		}
		lla := linkLayer(m.Options, ndp.Target)
		if lla == nil || bytes.Equal(lla, self) {
			return Decision{}
		}
		return Decision{Verdict: Duplicate, IP: ip, Other: cloneMAC(lla)}
	}
	return Decision{}
}

// UnsolicitedNA returns an unsolicited Neighbor Advertisement (override set, target
// link-layer address self) for ip, to be sent to ff02::1.
func UnsolicitedNA(self net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: ip,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: cloneMAC(self)}}}
	return ndp.MarshalMessage(na)
}

func linkLayer(opts []ndp.Option, dir ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == dir {
			return l.Addr
		}
	}
	return nil
}

func cloneMAC(m net.HardwareAddr) net.HardwareAddr { return append(net.HardwareAddr(nil), m...) }

// HandleNDPFrame decides what to do with one Ethernet frame carrying IPv6, received on an
// interface whose address is self: it checks the IPv6 header (ICMPv6 without extension
// headers, hop limit 255 as RFC 4861 requires) and hands the ICMPv6 body to HandleNDP.
func HandleNDPFrame(frame []byte, self net.HardwareAddr, owned Owned) Decision {
	_, src, et, payload, ok := parseEthernet(frame)
	if !ok || et != etherTypeIPv6 || bytes.Equal(src, self) {
		return Decision{}
	}
	const ipv6HeaderLen = 40
	if len(payload) < ipv6HeaderLen || payload[0]>>4 != 6 || payload[6] != 58 || payload[7] != 255 {
		return Decision{}
	}
	plen := int(binary.BigEndian.Uint16(payload[4:6]))
	body := payload[ipv6HeaderLen:]
	if plen > len(body) {
		return Decision{}
	}
	body = body[:plen]
	from := netip.AddrFrom16([16]byte(payload[8:24]))
	return HandleNDP(body, from, self, owned)
}
