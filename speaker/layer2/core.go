package layer2

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
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
	// ARP is the ARP reply to send to ReplyTo, for Verdict Reply to an ARP request.
	ARP *arp.Packet
	// ReplyTo is the Ethernet destination of the ARP reply: the source of the request.
	ReplyTo net.HardwareAddr
	// Reply is the ICMPv6 message body to send to ReplyDst, for Verdict Reply to a
	// Neighbor Solicitation.
	Reply []byte
	// ReplyDst is the IPv6 destination (NDP) of the reply.
	ReplyDst netip.Addr
	// Request: the packet was a request (ARP request or Neighbor Solicitation).
	Request bool
	// Other is the conflicting link-layer address, for Verdict Duplicate.
	Other net.HardwareAddr
}

// HandleARP decides what to do with one ARP packet p carried in the Ethernet frame eth,
// received on an interface whose address is self (p and eth are what arp.Client.Read
// returns). It is pure and safe on any input.
//
// Only the Ethernet/IPv4 form (RFC 826: hardware type 1, protocol 0x0800, lengths 6 and
// 4) is handled. A request for an owned IP is answered with a unicast reply to the
// Ethernet source of the request. Any ARP packet whose sender IP is an owned IP but whose
// sender hardware address is not ours (a gratuitous ARP, a reply, or a request from the
// other owner) is a Duplicate; a conflict takes precedence over answering.
func HandleARP(p *arp.Packet, eth *ethernet.Frame, self net.HardwareAddr, owned Owned) Decision {
	if p == nil || eth == nil || eth.EtherType != ethernet.EtherTypeARP || eth.VLAN != nil || len(eth.Source) != 6 {
		return Decision{} // not ARP, or tagged for a VLAN the interface does not carry untagged
	}
	if bytes.Equal(eth.Source, self) {
		return Decision{} // our own transmission, seen by the packet socket
	}
	if p.HardwareType != 1 || p.ProtocolType != uint16(ethernet.EtherTypeIPv4) ||
		p.HardwareAddrLength != 6 || p.IPLength != 4 || len(p.SenderHardwareAddr) != 6 ||
		!p.SenderIP.Is4() || !p.TargetIP.Is4() || bytes.Equal(p.SenderHardwareAddr, self) {
		return Decision{}
	}
	request := p.Operation == arp.OperationRequest
	if !request && p.Operation != arp.OperationReply {
		return Decision{}
	}
	if !p.SenderIP.IsUnspecified() && owned(p.SenderIP) {
		return Decision{Verdict: Duplicate, IP: p.SenderIP, Request: request, Other: cloneMAC(p.SenderHardwareAddr)}
	}
	if !request {
		return Decision{}
	}
	if !owned(p.TargetIP) {
		return Decision{Verdict: NotOwned, IP: p.TargetIP, Request: true}
	}
	// Reply to the requester, at the Ethernet source it came from. An RFC 5227 probe has
	// sender IP 0.0.0.0: answering it defends the address, as the RFC expects of the owner.
	reply, err := arp.NewPacket(arp.OperationReply, cloneMAC(self), p.TargetIP, cloneMAC(p.SenderHardwareAddr), p.SenderIP)
	if err != nil {
		return Decision{}
	}
	return Decision{Verdict: Reply, IP: p.TargetIP, Request: true, ARP: reply, ReplyTo: cloneMAC(eth.Source)}
}

// GratuitousARP returns a gratuitous ARP in the request form (operation 1, sender IP =
// target IP, target hardware address broadcast), to be sent to the Ethernet broadcast
// address. Linux updates an existing neighbour entry from it even within its locktime,
// which it would not from a reply with a broadcast target (see docs/speaker.md).
func GratuitousARP(self net.HardwareAddr, ip netip.Addr) (*arp.Packet, error) {
	if len(self) != 6 {
		return nil, arp.ErrInvalidHardwareAddr
	}
	return arp.NewPacket(arp.OperationRequest, cloneMAC(self), ip, cloneMAC(ethernet.Broadcast), ip)
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
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeIPv6 ||
		f.VLAN != nil || bytes.Equal(f.Source, self) {
		return Decision{}
	}
	payload := f.Payload
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
