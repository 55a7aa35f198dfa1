package layer2

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// frameConn sends and receives whole Ethernet frames on one interface. The real one is an
// AF_PACKET socket; tests inject others.
type frameConn interface {
	ReadFrame(b []byte) (int, error)
	WriteFrame(b []byte) error
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

// packetConn is an AF_PACKET/SOCK_RAW socket bound to one interface and the ARP EtherType,
// wrapped in an *os.File so reads block in the runtime poller and Close unblocks them.
type packetConn struct {
	f *os.File
}

var _ frameConn = (*packetConn)(nil)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// dialARP opens the ARP socket on ifi in the caller's network namespace.
func dialARP(ifi *net.Interface) (*packetConn, error) {
	return dialPacket(ifi, etherTypeARP, nil)
}

// dialNDPFrames opens a packet socket on ifi that receives only IPv6 frames carrying
// ICMPv6 Neighbor Solicitations and Advertisements (classic BPF filter, no extension
// headers, which NDP never has). A packet socket sees NDP for any destination, so a
// unicast NUD probe to an LB IP, which the IP stack would drop because the IP is not
// local, is still answered.
func dialNDPFrames(ifi *net.Interface) (*packetConn, error) {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 5},
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
	return dialPacket(ifi, etherTypeIPv6, prog)
}

func dialPacket(ifi *net.Interface, proto uint16, filter []bpf.RawInstruction) (*packetConn, error) {
	// Protocol 0 receives nothing until bind, so no frame of another interface or type
	// slips in before the filter and the binding are in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", ifi.Name, err)
	}
	if filter != nil {
		f := make([]unix.SockFilter, len(filter))
		for i, r := range filter {
			f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
		}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("packet filter on %s: %w", ifi.Name, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket to %s: %w", ifi.Name, err)
	}
	return &packetConn{f: os.NewFile(uintptr(fd), "packet:"+ifi.Name)}, nil
}

func (c *packetConn) ReadFrame(b []byte) (int, error) { return c.f.Read(b) }

func (c *packetConn) WriteFrame(b []byte) error {
	_, err := c.f.Write(b)
	return err
}

func (c *packetConn) Close() error { return c.f.Close() }

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
