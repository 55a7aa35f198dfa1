package layer2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

// arpConn reads and writes ARP packets on one interface. The real one is
// github.com/mdlayher/arp's Client over a github.com/mdlayher/packet socket bound to the
// interface and EtherType 0x0806.
type arpConn interface {
	// Read returns the next ARP packet and its Ethernet frame. Errors that are not
	// *net.OpError are malformed frames: the caller skips them and reads on.
	Read() (*arp.Packet, *ethernet.Frame, error)
	WriteTo(p *arp.Packet, dst net.HardwareAddr) error
	Close() error
}

// frameConn receives whole Ethernet frames on one interface (the NDP receive path). The
// real one is a *packet.Conn with a classic BPF filter.
type frameConn interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	Close() error
}

// ndpConn sends ICMPv6 Neighbor Discovery messages on one interface and keeps the
// interface subscribed to solicited-node multicast groups. The real one is
// github.com/mdlayher/ndp's Conn; receiving goes through a frameConn (see dialNDPFrames).
type ndpConn interface {
	WriteRaw(b []byte, dst netip.Addr) error
	JoinGroup(group netip.Addr) error
	LeaveGroup(group netip.Addr) error
	Close() error
}

var (
	_ arpConn   = (*arp.Client)(nil)
	_ arpConn   = (*packetARP)(nil)
	_ frameConn = (*packet.Conn)(nil)
)

// dialARP opens the ARP socket on ifi in the caller's network namespace: an arp.Client
// (arp.New over a packet socket, which is what arp.Dial does).
//
// arp.New refuses an interface without an IPv4 address (it keeps one as the sender of
// Client.Request, which the responder never calls). Such an interface (a bridge port, a
// link that carries only LB IPs) is still served: the same packet socket is then wrapped
// by packetARP, which reads and writes with the same codecs (arp.Packet, ethernet.Frame).
func dialARP(ifi *net.Interface) (arpConn, error) {
	pc, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
	if err != nil {
		return nil, fmt.Errorf("ARP socket on %s: %w", ifi.Name, err)
	}
	v4, err := hasIPv4(ifi)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	if !v4 {
		return &packetARP{pc: pc}, nil
	}
	c, err := arp.New(ifi, pc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("ARP client on %s: %w", ifi.Name, err)
	}
	return c, nil
}

func hasIPv4(ifi *net.Interface) (bool, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			return true, nil
		}
	}
	return false, nil
}

// packetARP is arp.Client's Read and WriteTo for an interface arp.New refuses (see
// dialARP).
type packetARP struct {
	pc *packet.Conn
}

func (c *packetARP) Read() (*arp.Packet, *ethernet.Frame, error) {
	buf := make([]byte, 128)
	for {
		n, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			return nil, nil, err
		}
		f := new(ethernet.Frame)
		if err := f.UnmarshalBinary(buf[:n]); err != nil {
			return nil, nil, err
		}
		if f.EtherType != ethernet.EtherTypeARP {
			continue
		}
		p := new(arp.Packet)
		if err := p.UnmarshalBinary(f.Payload); err != nil {
			return nil, nil, err
		}
		return p, f, nil
	}
}

func (c *packetARP) WriteTo(p *arp.Packet, dst net.HardwareAddr) error {
	pb, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	fb, err := (&ethernet.Frame{Destination: dst, Source: p.SenderHardwareAddr,
		EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
	if err != nil {
		return err
	}
	_, err = c.pc.WriteTo(fb, &packet.Addr{HardwareAddr: dst})
	return err
}

func (c *packetARP) Close() error { return c.pc.Close() }

// isSocketError tells a failing socket (every error of a packet socket is a *net.OpError)
// from a malformed frame that arp.Client.Read reports as an error.
func isSocketError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, net.ErrClosed)
}

// dialNDPFrames opens a packet socket on ifi that receives only IPv6 frames carrying
// ICMPv6 Neighbor Solicitations and Advertisements (classic BPF filter, no extension
// headers, which NDP never has). A packet socket sees NDP for any destination, so a
// unicast NUD probe to an LB IP, which the IP stack would drop because the IP is not
// local, is still answered.
func dialNDPFrames(ifi *net.Interface) (*packet.Conn, error) {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(ethernet.EtherTypeIPv6), SkipTrue: 5},
		bpf.LoadAbsolute{Off: 20, Size: 1}, // next header
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 58, SkipTrue: 3},
		bpf.LoadAbsolute{Off: 54, Size: 1}, // ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: 135, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpLessOrEqual, Val: 136, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.RetConstant{Val: 0xffff},
	})
	if err != nil {
		return nil, err
	}
	// packet.Listen opens the socket with protocol 0 (it receives nothing) and attaches
	// the filter before bind, so no unfiltered frame slips in.
	c, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeIPv6), &packet.Config{Filter: prog})
	if err != nil {
		return nil, fmt.Errorf("NDP packet socket on %s: %w", ifi.Name, err)
	}
	return c, nil
}

// ndpSocket adapts *ndp.Conn to ndpConn.
type ndpSocket struct {
	c *ndp.Conn
}

var _ ndpConn = (*ndpSocket)(nil)

// dialNDP opens an ICMPv6 socket for sending Neighbor Discovery on ifi, bound to its
// link-local address, in the caller's network namespace. Its receive filter blocks
// everything: receiving is done by dialNDPFrames.
func dialNDP(ifi *net.Interface) (*ndpSocket, error) {
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, fmt.Errorf("NDP socket on %s: %w", ifi.Name, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("NDP filter on %s: %w", ifi.Name, err)
	}
	return &ndpSocket{c: c}, nil
}

func (s *ndpSocket) WriteRaw(b []byte, dst netip.Addr) error {
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return err
	}
	return s.c.WriteTo(m, nil, dst)
}

func (s *ndpSocket) JoinGroup(g netip.Addr) error  { return s.c.JoinGroup(g) }
func (s *ndpSocket) LeaveGroup(g netip.Addr) error { return s.c.LeaveGroup(g) }
func (s *ndpSocket) Close() error                  { return s.c.Close() }
