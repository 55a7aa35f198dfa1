package bfd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Source ports of single-hop sessions (RFC 5881 §4).
const (
	minSourcePort = 49152
	maxSourcePort = 65535
)

// Network creates the sockets a Manager uses; UDPNetwork is the real one. Tests inject
// one that creates the same sockets inside a network namespace.
type Network interface {
	// Listen opens the receive socket on UDP port 3784 for IPv4 (v6 false) or IPv6.
	Listen(v6 bool) (Listener, error)
	// Dial opens a session's send socket from local towards peer's port 3784; a zero
	// local means the source address the kernel would choose towards peer.
	Dial(local, peer netip.Addr) (Sender, error)
}

// Datagram is what a Listener read: N bytes from Src to Dst with the IP TTL or hop
// limit it arrived with (-1 when the kernel did not say).
type Datagram struct {
	N        int
	Src, Dst netip.Addr
	TTL      int
}

// Listener receives control packets for one address family.
type Listener interface {
	// ReadFrom reads one datagram into b; it fails once Close was called.
	ReadFrom(b []byte) (Datagram, error)
	Close() error
}

// Sender sends one session's control packets.
type Sender interface {
	Send(b []byte) error
	// LocalAddr is the address the packets leave from.
	LocalAddr() netip.Addr
	Close() error
}

// UDPNetwork is the kernel's UDP: receive sockets report the TTL / hop limit and
// destination of every packet, send sockets are bound to the local address and a
// source port in 49152–65535 and send with TTL / hop limit 255 (RFC 5881 §4, §5).
// Sockets belong to the network namespace of the thread that creates them.
type UDPNetwork struct{}

var _ Network = UDPNetwork{}

// Listen implements Network.
func (UDPNetwork) Listen(v6 bool) (Listener, error) {
	if v6 {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: Port})
		if err != nil {
			return nil, fmt.Errorf("listen udp6 port %d: %w", Port, err)
		}
		pc := ipv6.NewPacketConn(c)
		if err := pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
			c.Close()
			return nil, fmt.Errorf("IPV6_RECVHOPLIMIT: %w", err)
		}
		return &listener6{c: c, pc: pc}, nil
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: Port})
	if err != nil {
		return nil, fmt.Errorf("listen udp4 port %d: %w", Port, err)
	}
	pc := ipv4.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("IP_RECVTTL: %w", err)
	}
	return &listener4{c: c, pc: pc}, nil
}

type listener4 struct {
	c  *net.UDPConn
	pc *ipv4.PacketConn
}

func (l *listener4) ReadFrom(b []byte) (Datagram, error) {
	n, cm, src, err := l.pc.ReadFrom(b)
	if err != nil {
		return Datagram{}, err
	}
	d := Datagram{N: n, TTL: -1, Src: udpAddr(src)}
	if cm != nil {
		d.TTL = cm.TTL
		d.Dst, _ = netip.AddrFromSlice(cm.Dst)
		d.Dst = d.Dst.Unmap()
	}
	return d, nil
}

func (l *listener4) Close() error { return l.c.Close() }

type listener6 struct {
	c  *net.UDPConn
	pc *ipv6.PacketConn
}

func (l *listener6) ReadFrom(b []byte) (Datagram, error) {
	n, cm, src, err := l.pc.ReadFrom(b)
	if err != nil {
		return Datagram{}, err
	}
	d := Datagram{N: n, TTL: -1, Src: udpAddr(src)}
	if cm != nil {
		d.TTL = cm.HopLimit
		d.Dst, _ = netip.AddrFromSlice(cm.Dst)
	}
	return d, nil
}

func (l *listener6) Close() error { return l.c.Close() }

func udpAddr(a net.Addr) netip.Addr {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, _ := netip.AddrFromSlice(u.IP)
	return ip.Unmap().WithZone(u.Zone)
}

// Dial implements Network.
func (UDPNetwork) Dial(local, peer netip.Addr) (Sender, error) {
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(peer, Port))
	if !local.IsValid() {
		// Connecting a UDP socket sends nothing but makes the kernel pick the source.
		c, err := net.DialUDP("udp", nil, dst)
		if err != nil {
			return nil, fmt.Errorf("route to %s: %w", peer, err)
		}
		local = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
	}
	if local.Is4() != peer.Is4() {
		return nil, fmt.Errorf("local %s and peer %s are of different families", local, peer)
	}
	// A random port in the range, retried when taken: the kernel's ephemeral range
	// (32768–60999 by default) does not match RFC 5881's.
	var err error
	for range 64 {
		port := minSourcePort + rand.IntN(maxSourcePort-minSourcePort+1)
		var c *net.UDPConn
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(port))), dst)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("udp socket %s → %s: %w", local, peer, err)
		}
		if peer.Is4() {
			err = ipv4.NewConn(c).SetTTL(255)
		} else {
			err = ipv6.NewConn(c).SetHopLimit(255)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("set TTL 255: %w", err)
		}
		return &sender{c: c, local: local}, nil
	}
	return nil, fmt.Errorf("no free source port for %s → %s: %w", local, peer, err)
}

type sender struct {
	c     *net.UDPConn
	local netip.Addr
}

func (s *sender) Send(b []byte) error {
	_, err := s.c.Write(b)
	return err
}

func (s *sender) LocalAddr() netip.Addr { return s.local }

func (s *sender) Close() error { return s.c.Close() }
