package layer2

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

var (
	selfMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	peerMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	thirdMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	ownedV4  = netip.MustParseAddr("203.0.113.10")
	otherV4  = netip.MustParseAddr("203.0.113.30")
	peerV4   = netip.MustParseAddr("192.0.2.1")
	ownedV6  = netip.MustParseAddr("2001:db8:100::10")
	otherV6  = netip.MustParseAddr("2001:db8:100::30")
	peerV6   = netip.MustParseAddr("2001:db8:1::1")
)

func owns(ip netip.Addr) bool { return ip == ownedV4 || ip == ownedV6 }

// arpPacket is an Ethernet/IPv4 ARP packet for the tests to build frames from.
type arpPacket struct {
	Op        arp.Operation
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

func (p arpPacket) packet() *arp.Packet {
	return &arp.Packet{HardwareType: 1, ProtocolType: uint16(ethernet.EtherTypeIPv4), HardwareAddrLength: 6, IPLength: 4,
		Operation: p.Op, SenderHardwareAddr: p.SenderMAC, SenderIP: p.SenderIP, TargetHardwareAddr: p.TargetMAC, TargetIP: p.TargetIP}
}

func ethernetFrame(dst, src net.HardwareAddr, et ethernet.EtherType, payload []byte) []byte {
	b, err := (&ethernet.Frame{Destination: dst, Source: src, EtherType: et, Payload: payload}).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

func arpFrameBytes(t testing.TB, ethSrc, ethDst net.HardwareAddr, p arpPacket) []byte {
	t.Helper()
	b, err := p.packet().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return ethernetFrame(ethDst, ethSrc, ethernet.EtherTypeARP, b)
}

// parseARPFrame parses a frame the way arp.Client.Read does: Ethernet, skip other
// EtherTypes, then ARP. ok is false when Read would not return the frame.
func parseARPFrame(b []byte) (*arp.Packet, *ethernet.Frame, bool) {
	f := new(ethernet.Frame)
	if err := f.UnmarshalBinary(b); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil, nil, false
	}
	p := new(arp.Packet)
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return nil, nil, false
	}
	return p, f, true
}

// handleARPFrame is what the responder does with a received frame: arp.Client.Read, then
// HandleARP. A frame Read drops never reaches the core (Ignore).
func handleARPFrame(b []byte) Decision {
	p, f, ok := parseARPFrame(b)
	if !ok {
		return Decision{}
	}
	return HandleARP(p, f, selfMAC, owns)
}

// garpFrame is the frame the responder sends for GratuitousARP.
func garpFrame(t testing.TB, self net.HardwareAddr, ip netip.Addr) []byte {
	t.Helper()
	p, err := GratuitousARP(self, ip)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return ethernetFrame(ethernet.Broadcast, self, ethernet.EtherTypeARP, b)
}

func TestHandleARP(t *testing.T) {
	req := func(from net.HardwareAddr, sender, target netip.Addr) []byte {
		return arpFrameBytes(t, from, ethernet.Broadcast, arpPacket{Op: arp.OperationRequest, SenderMAC: from, SenderIP: sender,
			TargetMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, TargetIP: target})
	}
	wantReply := arpPacket{Op: arp.OperationReply, SenderMAC: selfMAC, SenderIP: ownedV4,
		TargetMAC: peerMAC, TargetIP: peerV4}.packet()
	garpPeer := garpFrame(t, peerMAC, ownedV4)
	garpSelf := garpFrame(t, selfMAC, ownedV4)
	tests := []struct {
		name  string
		frame []byte
		want  Decision
	}{{
		name:  "request for owned IP is answered, unicast",
		frame: req(peerMAC, peerV4, ownedV4),
		want:  Decision{Verdict: Reply, IP: ownedV4, Request: true, ARP: wantReply, ReplyTo: peerMAC},
	}, {
		name:  "request for other IP is not answered",
		frame: req(peerMAC, peerV4, otherV4),
		want:  Decision{Verdict: NotOwned, IP: otherV4, Request: true},
	}, {
		name:  "probe (sender 0.0.0.0) for owned IP is answered",
		frame: req(peerMAC, netip.IPv4Unspecified(), ownedV4),
		want: Decision{Verdict: Reply, IP: ownedV4, Request: true, ReplyTo: peerMAC,
			ARP: arpPacket{Op: arp.OperationReply, SenderMAC: selfMAC, SenderIP: ownedV4,
				TargetMAC: peerMAC, TargetIP: netip.IPv4Unspecified()}.packet()},
	}, {
		name:  "gratuitous ARP from another MAC for owned IP is a duplicate",
		frame: garpPeer,
		want:  Decision{Verdict: Duplicate, IP: ownedV4, Request: true, Other: peerMAC},
	}, {
		name: "reply from another MAC for owned IP is a duplicate",
		frame: arpFrameBytes(t, thirdMAC, peerMAC, arpPacket{Op: arp.OperationReply, SenderMAC: thirdMAC, SenderIP: ownedV4,
			TargetMAC: peerMAC, TargetIP: peerV4}),
		want: Decision{Verdict: Duplicate, IP: ownedV4, Other: thirdMAC},
	}, {
		name:  "our own gratuitous ARP is ignored",
		frame: garpSelf,
	}, {
		name:  "our own frame is ignored even if the ARP sender differs",
		frame: arpFrameBytes(t, selfMAC, ethernet.Broadcast, arpPacket{Op: arp.OperationRequest, SenderMAC: peerMAC, SenderIP: peerV4, TargetMAC: ethernet.Broadcast, TargetIP: ownedV4}),
	}, {
		name: "reply for an unowned IP is ignored",
		frame: arpFrameBytes(t, thirdMAC, peerMAC, arpPacket{Op: arp.OperationReply, SenderMAC: thirdMAC, SenderIP: otherV4,
			TargetMAC: peerMAC, TargetIP: peerV4}),
	}, {
		name: "unknown operation is ignored",
		frame: arpFrameBytes(t, peerMAC, ethernet.Broadcast, arpPacket{Op: 3, SenderMAC: peerMAC, SenderIP: peerV4,
			TargetMAC: ethernet.Broadcast, TargetIP: ownedV4}),
	}, {
		name:  "not ARP",
		frame: ethernetFrame(ethernet.Broadcast, peerMAC, ethernet.EtherTypeIPv4, make([]byte, 28)),
	}, {
		name:  "truncated",
		frame: req(peerMAC, peerV4, ownedV4)[:30],
	}, {
		name: "not Ethernet/IPv4",
		frame: func() []byte {
			b := req(peerMAC, peerV4, ownedV4)
			binary.BigEndian.PutUint16(b[14:16], 6)
			return b
		}(),
	}, {
		name: "IPv6 addresses in ARP are ignored",
		frame: func() []byte {
			b := req(peerMAC, peerV4, ownedV4)
			b[19] = 16 // protocol address length: arp.Packet parses 16-byte addresses
			return append(b, make([]byte, 40)...)
		}(),
	}, {
		name: "VLAN-tagged request is ignored",
		frame: func() []byte {
			b := req(peerMAC, peerV4, ownedV4)
			return append(append(append([]byte(nil), b[:12]...), 0x81, 0x00, 0x00, 0x07), b[12:]...)
		}(),
	}, {
		name:  "padding after the packet is allowed",
		frame: append(req(peerMAC, peerV4, ownedV4), make([]byte, 18)...),
		want:  Decision{Verdict: Reply, IP: ownedV4, Request: true, ARP: wantReply, ReplyTo: peerMAC},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := handleARPFrame(tc.frame)
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("HandleARP mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestGratuitousARPForm(t *testing.T) {
	p, err := GratuitousARP(selfMAC, ownedV4)
	if err != nil {
		t.Fatal(err)
	}
	want := arpPacket{Op: arp.OperationRequest, SenderMAC: selfMAC, SenderIP: ownedV4,
		TargetMAC: ethernet.Broadcast, TargetIP: ownedV4}.packet()
	if d := cmp.Diff(want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("not the request form with sender IP = target IP, broadcast target (-want +got):\n%s", d)
	}
	if _, err := GratuitousARP(selfMAC, ownedV6); err == nil {
		t.Fatal("gratuitous ARP for an IPv6 address did not fail")
	}
}

func ndpMsg(t testing.TB, m ndp.Message) []byte {
	t.Helper()
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHandleNDP(t *testing.T) {
	ns := func(target netip.Addr, src net.HardwareAddr) []byte {
		m := &ndp.NeighborSolicitation{TargetAddress: target}
		if src != nil {
			m.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: src}}
		}
		return ndpMsg(t, m)
	}
	na := func(target netip.Addr, lla net.HardwareAddr) []byte {
		return ndpMsg(t, &ndp.NeighborAdvertisement{Override: true, TargetAddress: target,
			Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: lla}}})
	}
	solicited := ndpMsg(t, &ndp.NeighborAdvertisement{Solicited: true, Override: true, TargetAddress: ownedV6,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: selfMAC}}})
	unsolicited, _ := UnsolicitedNA(selfMAC, ownedV6)
	tests := []struct {
		name string
		msg  []byte
		src  netip.Addr
		want Decision
	}{{
		name: "solicitation for owned IP is answered to its source",
		msg:  ns(ownedV6, peerMAC), src: peerV6,
		want: Decision{Verdict: Reply, IP: ownedV6, Request: true, Reply: solicited, ReplyDst: peerV6},
	}, {
		name: "DAD solicitation for owned IP is answered to all-nodes, not solicited",
		msg:  ns(ownedV6, nil), src: netip.IPv6Unspecified(),
		want: Decision{Verdict: Reply, IP: ownedV6, Request: true, Reply: unsolicited, ReplyDst: allNodes},
	}, {
		name: "solicitation for other IP is not answered",
		msg:  ns(otherV6, peerMAC), src: peerV6,
		want: Decision{Verdict: NotOwned, IP: otherV6, Request: true},
	}, {
		name: "our own solicitation is ignored",
		msg:  ns(ownedV6, selfMAC), src: peerV6,
	}, {
		name: "advertisement from another MAC for owned IP is a duplicate",
		msg:  na(ownedV6, thirdMAC), src: peerV6,
		want: Decision{Verdict: Duplicate, IP: ownedV6, Other: thirdMAC},
	}, {
		name: "our own advertisement is ignored",
		msg:  na(ownedV6, selfMAC), src: peerV6,
	}, {
		name: "advertisement for other IP is ignored",
		msg:  na(otherV6, thirdMAC), src: peerV6,
	}, {
		name: "router advertisement is ignored",
		msg:  ndpMsg(t, &ndp.RouterSolicitation{}), src: peerV6,
	}, {
		name: "garbage",
		msg:  []byte{135, 0, 0}, src: peerV6,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := HandleNDP(tc.msg, tc.src, selfMAC, owns)
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("HandleNDP mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// ipv6Frame wraps an ICMPv6 body in IPv6 and Ethernet headers.
func ipv6Frame(srcMAC net.HardwareAddr, src, dst netip.Addr, hop byte, body []byte) []byte {
	h := make([]byte, 40)
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[4:6], uint16(len(body)))
	h[6], h[7] = 58, hop
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return ethernetFrame(net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 0x10}, srcMAC, ethernet.EtherTypeIPv6, append(h, body...))
}

func TestHandleNDPFrame(t *testing.T) {
	body := ndpMsg(t, &ndp.NeighborSolicitation{TargetAddress: ownedV6,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: peerMAC}}})
	group, _ := ndp.SolicitedNodeMulticast(ownedV6)
	if d := HandleNDPFrame(ipv6Frame(peerMAC, peerV6, group, 255, body), selfMAC, owns); d.Verdict != Reply || d.ReplyDst != peerV6 {
		t.Errorf("valid solicitation: got %+v", d)
	}
	if d := HandleNDPFrame(ipv6Frame(peerMAC, peerV6, group, 64, body), selfMAC, owns); d.Verdict != Ignore {
		t.Errorf("hop limit 64 must be ignored (RFC 4861), got %+v", d)
	}
	if d := HandleNDPFrame(ipv6Frame(selfMAC, peerV6, group, 255, body), selfMAC, owns); d.Verdict != Ignore {
		t.Errorf("own frame must be ignored, got %+v", d)
	}
	f := ipv6Frame(peerMAC, peerV6, group, 255, body)
	if d := HandleNDPFrame(f[:len(f)-4], selfMAC, owns); d.Verdict != Ignore {
		t.Errorf("truncated payload must be ignored, got %+v", d)
	}
	if d := HandleNDPFrame(append(f, 0, 0, 0, 0), selfMAC, owns); d.Verdict != Reply {
		t.Errorf("trailing padding must be allowed, got %+v", d)
	}
}

func checkDecision(t *testing.T, d Decision, self net.HardwareAddr) {
	switch d.Verdict {
	case Ignore:
		if d.Reply != nil || d.ARP != nil || d.Other != nil {
			t.Fatalf("Ignore with data: %+v", d)
		}
	case Reply:
		if (d.ARP == nil) == (d.Reply == nil) || !owns(d.IP) {
			t.Fatalf("Reply for unowned IP or without bytes: %+v", d)
		}
	case Duplicate:
		if !owns(d.IP) || d.Other.String() == self.String() {
			t.Fatalf("Duplicate for unowned IP or with our own MAC: %+v", d)
		}
	case NotOwned:
		if owns(d.IP) || d.Reply != nil || d.ARP != nil {
			t.Fatalf("NotOwned for an owned IP or with a reply: %+v", d)
		}
	default:
		t.Fatalf("unknown verdict %d", d.Verdict)
	}
}

// FuzzHandleARP feeds frames through the responder's path: arp.Client.Read's parsing,
// then HandleARP.
func FuzzHandleARP(f *testing.F) {
	f.Add(arpFrameBytes(f, peerMAC, ethernet.Broadcast, arpPacket{Op: arp.OperationRequest, SenderMAC: peerMAC, SenderIP: peerV4,
		TargetMAC: ethernet.Broadcast, TargetIP: ownedV4}))
	f.Add(arpFrameBytes(f, peerMAC, ethernet.Broadcast, arpPacket{Op: arp.OperationRequest, SenderMAC: peerMAC,
		SenderIP: netip.IPv4Unspecified(), TargetMAC: make(net.HardwareAddr, 6), TargetIP: ownedV4}))
	f.Add(garpFrame(f, peerMAC, ownedV4))
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := handleARPFrame(b)
		checkDecision(t, d, selfMAC)
		if d.Verdict == Reply {
			// A reply must itself be an ARP reply from us for the IP, to a 6-byte address,
			// and survive the wire (marshal, then parse as a receiver would).
			_, f, _ := parseARPFrame(b)
			pb, err := d.ARP.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var p arp.Packet
			if err := p.UnmarshalBinary(pb); err != nil || p.Operation != arp.OperationReply || p.SenderIP != d.IP ||
				p.SenderHardwareAddr.String() != selfMAC.String() || len(p.TargetHardwareAddr) != 6 ||
				d.ReplyTo.String() != f.Source.String() {
				t.Fatalf("bad reply %+v to %v: %v", p, d.ReplyTo, err)
			}
		}
	})
}

func FuzzHandleNDPFrame(f *testing.F) {
	group, _ := ndp.SolicitedNodeMulticast(ownedV6)
	nsb, _ := ndp.MarshalMessage(&ndp.NeighborSolicitation{TargetAddress: ownedV6,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: peerMAC}}})
	f.Add(ipv6Frame(peerMAC, peerV6, group, 255, nsb))
	nab, _ := UnsolicitedNA(thirdMAC, ownedV6)
	f.Add(ipv6Frame(thirdMAC, peerV6, allNodes, 255, nab))
	f.Add(ipv6Frame(peerMAC, netip.IPv6Unspecified(), group, 255, nsb))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := HandleNDPFrame(b, selfMAC, owns)
		checkDecision(t, d, selfMAC)
		if d.Verdict == Reply {
			m, err := ndp.ParseMessage(d.Reply)
			na, ok := m.(*ndp.NeighborAdvertisement)
			if err != nil || !ok || !na.Override || na.TargetAddress != d.IP {
				t.Fatalf("bad reply %x: %v", d.Reply, err)
			}
		}
	})
}
