package layer2

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

// The ARP codec is written here rather than taken from github.com/mdlayher/arp: that
// package imports github.com/mdlayher/packet v1.0.0, which does not build against the
// github.com/mdlayher/socket version this module selects (see docs/speaker.md). Only the
// Ethernet/IPv4 form (RFC 826, 28 bytes) is handled.

// arpOp is an ARP operation.
type arpOp uint16

const (
	arpRequest arpOp = 1
	arpReply   arpOp = 2
)

const (
	arpLen              = 28
	arpHardwareEthernet = 1
	etherTypeIPv4       = 0x0800
	etherTypeARP        = 0x0806
	etherTypeIPv6       = 0x86dd
	etherHeaderLen      = 14
)

// arpPacket is an Ethernet/IPv4 ARP packet.
type arpPacket struct {
	Op        arpOp
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

var errNotEthernetIPv4ARP = errors.New("not an Ethernet/IPv4 ARP packet")

// parseARP parses the ARP payload of a frame. Trailing padding is allowed.
func parseARP(b []byte) (arpPacket, error) {
	if len(b) < arpLen {
		return arpPacket{}, errNotEthernetIPv4ARP
	}
	if binary.BigEndian.Uint16(b[0:2]) != arpHardwareEthernet ||
		binary.BigEndian.Uint16(b[2:4]) != etherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		return arpPacket{}, errNotEthernetIPv4ARP
	}
	return arpPacket{
		Op:        arpOp(binary.BigEndian.Uint16(b[6:8])),
		SenderMAC: net.HardwareAddr(append([]byte(nil), b[8:14]...)),
		SenderIP:  netip.AddrFrom4([4]byte(b[14:18])),
		TargetMAC: net.HardwareAddr(append([]byte(nil), b[18:24]...)),
		TargetIP:  netip.AddrFrom4([4]byte(b[24:28])),
	}, nil
}

// marshal returns the 28-byte wire form. MACs must be 6 bytes and IPs IPv4.
func (p arpPacket) marshal() ([]byte, error) {
	if len(p.SenderMAC) != 6 || len(p.TargetMAC) != 6 || !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return nil, errNotEthernetIPv4ARP
	}
	b := make([]byte, arpLen)
	binary.BigEndian.PutUint16(b[0:2], arpHardwareEthernet)
	binary.BigEndian.PutUint16(b[2:4], etherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], uint16(p.Op))
	copy(b[8:14], p.SenderMAC)
	s := p.SenderIP.As4()
	copy(b[14:18], s[:])
	copy(b[18:24], p.TargetMAC)
	t := p.TargetIP.As4()
	copy(b[24:28], t[:])
	return b, nil
}

// ethernetFrame builds an untagged Ethernet II frame.
func ethernetFrame(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	b := make([]byte, etherHeaderLen+len(payload))
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherType)
	copy(b[14:], payload)
	return b
}

// parseEthernet splits an untagged Ethernet II frame.
func parseEthernet(b []byte) (dst, src net.HardwareAddr, etherType uint16, payload []byte, ok bool) {
	if len(b) < etherHeaderLen {
		return nil, nil, 0, nil, false
	}
	return net.HardwareAddr(b[0:6]), net.HardwareAddr(b[6:12]), binary.BigEndian.Uint16(b[12:14]), b[14:], true
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
