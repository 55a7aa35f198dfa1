package layer2

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
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

func arpFrameBytes(t testing.TB, ethSrc, ethDst net.HardwareAddr, p arpPacket) []byte {
	t.Helper()
	b, err := p.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return ethernetFrame(ethDst, ethSrc, etherTypeARP, b)
}

func TestHandleARP(t *testing.T) {
	req := func(from net.HardwareAddr, sender, target netip.Addr) []byte {
		return arpFrameBytes(t, from, broadcastMAC, arpPacket{Op: arpRequest, SenderMAC: from, SenderIP: sender,
			TargetMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, TargetIP: target})
	}
	wantReply := arpFrameBytes(t, selfMAC, peerMAC, arpPacket{Op: arpReply, SenderMAC: selfMAC, SenderIP: ownedV4,
		TargetMAC: peerMAC, TargetIP: peerV4})
	garpPeer, _ := GratuitousARP(peerMAC, ownedV4)
	garpSelf, _ := GratuitousARP(selfMAC, ownedV4)
	tests := []struct {
		name  string
		frame []byte
		want  Decision
	}{{
		name:  "request for owned IP is answered, unicast",
		frame: req(peerMAC, peerV4, ownedV4),
		want:  Decision{Verdict: Reply, IP: ownedV4, Request: true, Reply: wantReply, ReplyTo: peerMAC},
	}, {
		name:  "request for other IP is not answered",
		frame: req(peerMAC, peerV4, otherV4),
		want:  Decision{Verdict: NotOwned, IP: otherV4, Request: true},
	}, {
		name:  "probe (sender 0.0.0.0) for owned IP is answered",
		frame: req(peerMAC, netip.IPv4Unspecified(), ownedV4),
		want: Decision{Verdict: Reply, IP: ownedV4, Request: true, ReplyTo: peerMAC,
			Reply: arpFrameBytes(t, selfMAC, peerMAC, arpPacket{Op: arpReply, SenderMAC: selfMAC, SenderIP: ownedV4,
				TargetMAC: peerMAC, TargetIP: netip.IPv4Unspecified()})},
	}, {
		name:  "gratuitous ARP from another MAC for owned IP is a duplicate",
		frame: garpPeer,
		want:  Decision{Verdict: Duplicate, IP: ownedV4, Request: true, Other: peerMAC},
	}, {
		name: "reply from another MAC for owned IP is a duplicate",
		frame: arpFrameBytes(t, thirdMAC, peerMAC, arpPacket{Op: arpReply, SenderMAC: thirdMAC, SenderIP: ownedV4,
			TargetMAC: peerMAC, TargetIP: peerV4}),
		want: Decision{Verdict: Duplicate, IP: ownedV4, Other: thirdMAC},
	}, {
		name:  "our own gratuitous ARP is ignored",
		frame: garpSelf,
	}, {
		name:  "our own frame is ignored even if the ARP sender differs",
		frame: arpFrameBytes(t, selfMAC, broadcastMAC, arpPacket{Op: arpRequest, SenderMAC: peerMAC, SenderIP: peerV4, TargetMAC: broadcastMAC, TargetIP: ownedV4}),
	}, {
		name: "reply for an unowned IP is ignored",
		frame: arpFrameBytes(t, thirdMAC, peerMAC, arpPacket{Op: arpReply, SenderMAC: thirdMAC, SenderIP: otherV4,
			TargetMAC: peerMAC, TargetIP: peerV4}),
	}, {
		name: "unknown operation is ignored",
		frame: arpFrameBytes(t, peerMAC, broadcastMAC, arpPacket{Op: 3, SenderMAC: peerMAC, SenderIP: peerV4,
			TargetMAC: broadcastMAC, TargetIP: ownedV4}),
	}, {
		name:  "not ARP",
		frame: ethernetFrame(broadcastMAC, peerMAC, etherTypeIPv4, make([]byte, 28)),
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
		name:  "padding after the packet is allowed",
		frame: append(req(peerMAC, peerV4, ownedV4), make([]byte, 18)...),
		want:  Decision{Verdict: Reply, IP: ownedV4, Request: true, Reply: wantReply, ReplyTo: peerMAC},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := HandleARP(tc.frame, selfMAC, owns)
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("HandleARP mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestGratuitousARPForm(t *testing.T) {
	b, err := GratuitousARP(selfMAC, ownedV4)
	if err != nil {
		t.Fatal(err)
	}
	dst, src, et, payload, ok := parseEthernet(b)
	if !ok || dst.String() != broadcastMAC.String() || src.String() != selfMAC.String() || et != etherTypeARP {
		t.Fatalf("bad Ethernet header: %v %v %x", dst, src, et)
	}
	p, err := parseARP(payload)
	if err != nil {
		t.Fatal(err)
	}
	if p.Op != arpRequest || p.SenderIP != ownedV4 || p.TargetIP != ownedV4 || p.SenderMAC.String() != selfMAC.String() {
		t.Fatalf("not the request form with sender IP = target IP: %+v", p)
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
	return ethernetFrame(net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 0x10}, srcMAC, etherTypeIPv6, append(h, body...))
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
		if d.Reply != nil || d.Other != nil {
			t.Fatalf("Ignore with data: %+v", d)
		}
	case Reply:
		if len(d.Reply) == 0 || !owns(d.IP) {
			t.Fatalf("Reply for unowned IP or without bytes: %+v", d)
		}
	case Duplicate:
		if !owns(d.IP) || d.Other.String() == self.String() {
			t.Fatalf("Duplicate for unowned IP or with our own MAC: %+v", d)
		}
	case NotOwned:
		if owns(d.IP) || d.Reply != nil {
			t.Fatalf("NotOwned for an owned IP or with a reply: %+v", d)
		}
	default:
		t.Fatalf("unknown verdict %d", d.Verdict)
	}
}

func FuzzHandleARP(f *testing.F) {
	req, _ := (arpPacket{Op: arpRequest, SenderMAC: peerMAC, SenderIP: peerV4, TargetMAC: broadcastMAC, TargetIP: ownedV4}).marshal()
	f.Add(ethernetFrame(broadcastMAC, peerMAC, etherTypeARP, req))
	g, _ := GratuitousARP(peerMAC, ownedV4)
	f.Add(g)
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := HandleARP(b, selfMAC, owns)
		checkDecision(t, d, selfMAC)
		if d.Verdict == Reply {
			// A reply must itself parse as an ARP reply from us for the IP.
			_, src, et, payload, ok := parseEthernet(d.Reply)
			p, err := parseARP(payload)
			if !ok || err != nil || et != etherTypeARP || src.String() != selfMAC.String() || p.Op != arpReply || p.SenderIP != d.IP {
				t.Fatalf("bad reply %x", d.Reply)
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
