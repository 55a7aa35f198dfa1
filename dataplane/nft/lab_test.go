package nft

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/loadstone-lb/loadstone/internal/netnstest"
	"github.com/loadstone-lb/loadstone/internal/nsthread"
)

// lab is a client netns, a node netns holding our table, and backend netns, each joined
// to the node by a veth:
//
//	client 198.51.100.2, 2001:db8:51::2  ── node 198.51.100.1, 2001:db8:51::1
//	backend i 198.18.i.2, 2001:db8:18:i::2 ── node 198.18.i.1, 2001:db8:18:i::1
//
// The LB IPs (203.0.113.0/24, 2001:db8:100::/64) are on no interface: the client routes
// everything to the node, whose DNAT sends it on.
type lab struct {
	client, node string
	backends     []string // netns names, backend i+1
	nodeNS       netns.NsHandle
	conn         *nftables.Conn
}

var (
	clientV4 = netip.MustParseAddr("198.51.100.2")
	clientV6 = netip.MustParseAddr("2001:db8:51::2")
)

func backendV4(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("198.18.%d.2", i)) }
func backendV6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:db8:18:%d::2", i)) }

func run(t testing.TB, args ...string) {
	t.Helper()
	netnstest.Run(t, args...)
}

func kernelTest(t testing.TB) {
	t.Helper()
	netnstest.Skip(t)
}

// newLab builds the namespaces with nBackends backends, each serving TCP and UDP on
// port 8080 (v4 and v6) and answering "<name> <client addr>".
func newLab(t testing.TB, nBackends int) *lab {
	t.Helper()
	kernelTest(t)
	sfx := netnstest.Suffix()
	l := &lab{client: "lsdp-c-" + sfx, node: "lsdp-n-" + sfx}
	for i := 1; i <= nBackends; i++ {
		l.backends = append(l.backends, fmt.Sprintf("lsdp-b%d-%s", i, sfx))
	}
	for _, ns := range append([]string{l.client, l.node}, l.backends...) {
		extra := []string{"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"}
		if ns == l.node {
			extra = append(extra, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
		}
		netnstest.New(t, ns, extra...)
	}
	link := func(peer, nodeIf, peerIf, nodeV4, peerV4, nodeV6, peerV6 string) {
		run(t, "ip", "link", "add", nodeIf, "netns", l.node, "type", "veth", "peer", "name", peerIf, "netns", peer)
		run(t, "ip", "-n", l.node, "addr", "add", nodeV4, "dev", nodeIf)
		run(t, "ip", "-n", l.node, "addr", "add", nodeV6, "dev", nodeIf, "nodad")
		run(t, "ip", "-n", peer, "addr", "add", peerV4, "dev", peerIf)
		run(t, "ip", "-n", peer, "addr", "add", peerV6, "dev", peerIf, "nodad")
		run(t, "ip", "-n", l.node, "link", "set", nodeIf, "up")
		run(t, "ip", "-n", peer, "link", "set", peerIf, "up")
		gw4 := strings.Split(nodeV4, "/")[0]
		gw6 := strings.Split(nodeV6, "/")[0]
		run(t, "ip", "-n", peer, "route", "add", "default", "via", gw4)
		run(t, "ip", "-n", peer, "-6", "route", "add", "default", "via", gw6)
	}
	link(l.client, "lsc"+sfx, "eth0", "198.51.100.1/24", "198.51.100.2/24", "2001:db8:51::1/64", "2001:db8:51::2/64")
	for i, ns := range l.backends {
		n := i + 1
		link(ns, fmt.Sprintf("lsb%d%s", n, sfx), "eth0",
			fmt.Sprintf("198.18.%d.1/24", n), fmt.Sprintf("198.18.%d.2/24", n),
			fmt.Sprintf("2001:db8:18:%d::1/64", n), fmt.Sprintf("2001:db8:18:%d::2/64", n))
		l.serve(t, ns, fmt.Sprintf("b%d", n))
	}
	var err error
	if l.nodeNS, err = netns.GetFromName(l.node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.nodeNS.Close() })
	if l.conn, err = Dial(int(l.nodeNS)); err != nil {
		t.Fatal(err)
	}
	return l
}

// serve starts TCP and UDP servers on port 8080 inside ns; each answers with its name
// and the address it sees the client at.
func (l *lab) serve(t testing.TB, ns, name string) {
	t.Helper()
	var tcp net.Listener
	var udp net.PacketConn
	if err := nsthread.DoNamed(ns, func() error {
		var err error
		if tcp, err = net.Listen("tcp", ":8080"); err != nil {
			return err
		}
		udp, err = net.ListenPacket("udp", ":8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		tcp.Close()
		udp.Close()
		wg.Wait()
	})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			ra := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			_, _ = fmt.Fprintf(c, "%s %s\n", name, ra)
			c.Close() // the server closes first: no TIME_WAIT on the client
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			_, ra, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			ap := ra.(*net.UDPAddr).AddrPort()
			_, _ = udp.WriteTo(fmt.Appendf(nil, "%s %s\n", name, ap.Addr().Unmap()), ra)
		}
	}()
}

// answer is what a backend said: its name and the client address it saw.
type answer struct {
	backend string
	client  netip.Addr
}

// dial connects from the client netns to to, from local port sport (0: any), and reads
// the answer. It returns the dial or read error.
func (l *lab) dial(network string, to netip.AddrPort, sport uint16) (answer, error) {
	var c net.Conn
	err := nsthread.DoNamed(l.client, func() error {
		d := net.Dialer{Timeout: 3 * time.Second}
		if sport != 0 {
			if network == "udp" {
				d.LocalAddr = &net.UDPAddr{Port: int(sport)}
			} else {
				d.LocalAddr = &net.TCPAddr{Port: int(sport)}
			}
		}
		var err error
		c, err = d.DialContext(context.Background(), network, to.String())
		return err
	})
	if err != nil {
		return answer{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if network == "udp" {
		if _, err := c.Write([]byte("hi")); err != nil {
			return answer{}, err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return answer{}, err
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return answer{}, fmt.Errorf("answer %q", line)
	}
	a, err := netip.ParseAddr(f[1])
	if err != nil {
		return answer{}, err
	}
	return answer{backend: f[0], client: a}, nil
}

// jhash is the kernel's jhash() (Bob Jenkins' lookup3, words read little-endian as on
// the machines we run on), to predict the backend nftables' jhash expression picks.
func jhash(k []byte, seed uint32) uint32 {
	rol := bits.RotateLeft32
	a := 0xdeadbeef + uint32(len(k)) + seed
	b, c := a, a
	for len(k) > 12 {
		a += uint32(k[0]) | uint32(k[1])<<8 | uint32(k[2])<<16 | uint32(k[3])<<24
		b += uint32(k[4]) | uint32(k[5])<<8 | uint32(k[6])<<16 | uint32(k[7])<<24
		c += uint32(k[8]) | uint32(k[9])<<8 | uint32(k[10])<<16 | uint32(k[11])<<24
		a -= c
		a ^= rol(c, 4)
		c += b
		b -= a
		b ^= rol(a, 6)
		a += c
		c -= b
		c ^= rol(b, 8)
		b += a
		a -= c
		a ^= rol(c, 16)
		c += b
		b -= a
		b ^= rol(a, 19)
		a += c
		c -= b
		c ^= rol(b, 4)
		b += a
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	var w [12]byte
	copy(w[:], k)
	a += uint32(w[0]) | uint32(w[1])<<8 | uint32(w[2])<<16 | uint32(w[3])<<24
	b += uint32(w[4]) | uint32(w[5])<<8 | uint32(w[6])<<16 | uint32(w[7])<<24
	c += uint32(w[8]) | uint32(w[9])<<8 | uint32(w[10])<<16 | uint32(w[11])<<24
	c ^= b
	c -= rol(b, 14)
	a ^= c
	a -= rol(c, 11)
	b ^= a
	b -= rol(a, 25)
	c ^= b
	c -= rol(b, 16)
	a ^= c
	a -= rol(c, 4)
	b ^= a
	b -= rol(a, 14)
	c ^= b
	c -= rol(b, 24)
	return c
}

// slot predicts the Maglev entry nftables computes for a flow from src:sport: jhash of
// saddr . sport (port big-endian, padded to 4 bytes) or of saddr alone, scaled to [0, m)
// by multiply-and-shift (the kernel's reciprocal_scale).
func slot(src netip.Addr, sport uint16, affinity bool, m int, seed uint32) int {
	k := src.AsSlice()
	if !affinity {
		k = append(k, byte(sport>>8), byte(sport), 0, 0)
	}
	return int(uint64(jhash(k, seed)) * uint64(m) >> 32)
}
