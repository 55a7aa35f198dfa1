package layer2

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/loadstone-lb/loadstone/internal/netnstest"
	"github.com/loadstone-lb/loadstone/internal/nsthread"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

// pair is two fresh network namespaces joined by a veth: "node" runs the announcer,
// "peer" plays the router whose neighbour table we read.
type pair struct {
	node, peer         string // netns names
	nodeIf, peerIf     string
	nodeNS, peerNS     netns.NsHandle
	nodeMAC, peerMAC   net.HardwareAddr
	peerIndex, nodeIdx int
}

func run(t *testing.T, args ...string) {
	t.Helper()
	netnstest.Run(t, args...)
}

func newPair(t *testing.T) *pair {
	t.Helper()
	if testing.Short() {
		t.Skip("kernel test: creates network namespaces; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kernel test: needs iproute2")
	}
	b := make([]byte, 3)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	p := &pair{node: "lst-l2n-" + sfx, peer: "lst-l2p-" + sfx, nodeIf: "lsn" + sfx, peerIf: "lsp" + sfx}
	for _, ns := range []string{p.node, p.peer} {
		// ARP defaults we rely on (arp_accept=0: a gratuitous ARP only updates an existing
		// entry), besides netnstest's (no DAD delay, no forwarding).
		netnstest.New(t, ns, "net.ipv4.conf.all.arp_accept=0", "net.ipv4.conf.default.arp_accept=0",
			"net.ipv4.conf.all.arp_ignore=0")
	}
	run(t, "ip", "link", "add", p.nodeIf, "netns", p.node, "type", "veth", "peer", "name", p.peerIf, "netns", p.peer)
	// Short neighbour retransmits on the peer, so a resolution nobody answers fails fast
	// (a new netns has no neigh/default directory: set them per interface).
	for _, f := range []string{"ipv4", "ipv6"} {
		run(t, "ip", "netns", "exec", p.peer, "sysctl", "-qw", "net."+f+".neigh."+p.peerIf+".retrans_time_ms=200")
	}
	run(t, "ip", "-n", p.node, "addr", "add", "192.0.2.11/24", "dev", p.nodeIf)
	run(t, "ip", "-n", p.node, "addr", "add", "2001:db8:1::11/64", "dev", p.nodeIf, "nodad")
	run(t, "ip", "-n", p.peer, "addr", "add", "192.0.2.1/24", "dev", p.peerIf)
	run(t, "ip", "-n", p.peer, "addr", "add", "2001:db8:1::1/64", "dev", p.peerIf, "nodad")
	run(t, "ip", "-n", p.node, "link", "set", p.nodeIf, "up")
	run(t, "ip", "-n", p.peer, "link", "set", p.peerIf, "up")
	// The node reaches the LB ranges through its default routes (the announcer's default
	// interface comes from this lookup); the peer has them on-link, like a router would.
	run(t, "ip", "-n", p.node, "route", "add", "default", "via", "192.0.2.1")
	run(t, "ip", "-n", p.node, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	run(t, "ip", "-n", p.peer, "route", "add", "203.0.113.0/24", "dev", p.peerIf)
	run(t, "ip", "-n", p.peer, "-6", "route", "add", "2001:db8:100::/64", "dev", p.peerIf)
	var err error
	if p.nodeNS, err = netns.GetFromName(p.node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.nodeNS.Close() })
	if p.peerNS, err = netns.GetFromName(p.peer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.peerNS.Close() })
	if err := nsthread.Do(p.nodeNS, func() error {
		ifi, err := net.InterfaceByName(p.nodeIf)
		if err != nil {
			return err
		}
		p.nodeMAC, p.nodeIdx = ifi.HardwareAddr, ifi.Index
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := nsthread.Do(p.peerNS, func() error {
		ifi, err := net.InterfaceByName(p.peerIf)
		if err != nil {
			return err
		}
		p.peerMAC, p.peerIndex = ifi.HardwareAddr, ifi.Index
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Wait for the link-local address to be usable (the NDP socket binds to it).
	p.waitFor(t, "node link-local address", func() (bool, string) {
		h, err := netlink.NewHandleAt(p.nodeNS)
		if err != nil {
			return false, err.Error()
		}
		defer h.Close()
		l, _ := h.LinkByName(p.nodeIf)
		addrs, _ := h.AddrList(l, netlink.FAMILY_V6)
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return true, ""
			}
		}
		return false, fmt.Sprint(addrs)
	})
	return p
}

// waitFor polls cond until it holds; the deadline only bounds a failing test.
func (p *pair) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, 15*time.Second, 20*time.Millisecond, cond)
}

// neigh returns the peer's neighbour entry for ip.
func (p *pair) neigh(t *testing.T, ip netip.Addr) (netlink.Neigh, bool) {
	h, err := netlink.NewHandleAt(p.peerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := h.NeighList(p.peerIndex, fam)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			return n, true
		}
	}
	return netlink.Neigh{}, false
}

// sendFromPeer sends one UDP datagram from the peer to ip, which makes the peer's kernel
// resolve ip on the link.
func (p *pair) sendFromPeer(t *testing.T, ip netip.Addr) {
	t.Helper()
	if err := nsthread.Do(p.peerNS, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(ip, 9).String())
		if err != nil {
			return err
		}
		defer c.Close()
		// The datagram only makes the kernel resolve ip; the callers check the outcome (the
		// neighbour entry, the responder's counters), so a failed send is logged, not fatal.
		if _, err := c.Write([]byte("x")); err != nil {
			t.Logf("send to %s from the peer: %v", ip, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// newClock is the fake clock of an announcer under test, at an arbitrary fixed start.
func newClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// announcer returns an Announcer with the default burst on a fake clock that nobody
// steps: every IP gets exactly the first message of its burst, sent at once.
func (p *pair) announcer(t *testing.T, reg prometheus.Registerer, onConflict func(Conflict)) *Announcer {
	a := New(Config{Registerer: reg, OnConflict: onConflict, Clock: newClock()})
	t.Cleanup(a.Close)
	return a
}

func (p *pair) apply(t *testing.T, a *Announcer, want Desired) Applied {
	t.Helper()
	var res Applied
	if err := nsthread.Do(p.nodeNS, func() error { res = a.Apply(want); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, err := range res.Errors {
		t.Errorf("Apply: %v", err)
	}
	return res
}

// claimFromPeer sends a gratuitous ARP for ip from the peer's own MAC, as a second owner
// would.
func (p *pair) claimFromPeer(t *testing.T, ip netip.Addr) {
	t.Helper()
	if err := nsthread.Do(p.peerNS, func() error {
		ifi, err := net.InterfaceByName(p.peerIf)
		if err != nil {
			return err
		}
		c, err := arp.Dial(ifi)
		if err != nil {
			return err
		}
		defer c.Close()
		g, err := GratuitousARP(ifi.HardwareAddr, ip)
		if err != nil {
			return err
		}
		return c.WriteTo(g, ethernet.Broadcast)
	}); err != nil {
		t.Fatal(err)
	}
}

// garps receives, on the peer, the gratuitous ARPs the node sends, in the order they
// arrive.
type garps struct {
	ch chan netip.Addr
}

// listenGARP opens an ARP socket on the peer before anything is sent. Every ARP request
// from the node's MAC with sender IP = target IP is delivered, by IP, and must have the
// gratuitous form's broadcast target MAC and Ethernet destination.
func (p *pair) listenGARP(t *testing.T) *garps {
	t.Helper()
	var c *arp.Client
	if err := nsthread.Do(p.peerNS, func() error {
		ifi, err := net.InterfaceByName(p.peerIf)
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	g := &garps{ch: make(chan netip.Addr, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			pkt, eth, err := c.Read()
			if err != nil {
				if isSocketError(err) {
					return // closed by the cleanup
				}
				continue
			}
			if eth.Source.String() != p.nodeMAC.String() || pkt.Operation != arp.OperationRequest || pkt.SenderIP != pkt.TargetIP {
				continue // the peer's own frames, replies to its requests, the node kernel's requests
			}
			if pkt.SenderHardwareAddr.String() != p.nodeMAC.String() ||
				pkt.TargetHardwareAddr.String() != ethernet.Broadcast.String() ||
				eth.Destination.String() != ethernet.Broadcast.String() {
				t.Errorf("unexpected ARP from the node: %+v in %+v", pkt, eth)
				continue
			}
			g.ch <- pkt.SenderIP
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return g
}

// expect reads the next len(want) gratuitous ARPs and checks they are want, in order.
// Messages leave the announcer in IP order within one clock step, and the wire keeps the
// order, so a message that must not have been sent would show up before the expected
// ones. The timeout only bounds a failing test.
func (g *garps) expect(t *testing.T, when string, want ...netip.Addr) {
	t.Helper()
	var got []netip.Addr
	for len(got) < len(want) {
		select {
		case ip := <-g.ch:
			got = append(got, ip)
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: gratuitous ARPs %v, want %v (timed out)", when, got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: gratuitous ARPs %v, want %v", when, got, want)
	}
}

func families() []struct {
	name                 string
	owned, other, garpIP netip.Addr
} {
	return []struct {
		name                 string
		owned, other, garpIP netip.Addr
	}{
		{"IPv4", netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.30"), netip.MustParseAddr("203.0.113.20")},
		{"IPv6", netip.MustParseAddr("2001:db8:100::10"), netip.MustParseAddr("2001:db8:100::30"), netip.MustParseAddr("2001:db8:100::20")},
	}
}

func TestKernelPeerLearnsOurMAC(t *testing.T) {
	for _, fam := range families() {
		t.Run(fam.name, func(t *testing.T) {
			p := newPair(t)
			reg := prometheus.NewRegistry()
			a := p.announcer(t, reg, nil)
			res := p.apply(t, a, Desired{fam.owned: nil})
			if got := res.Interfaces[fam.owned]; len(got) != 1 || got[0] != p.nodeIf {
				t.Fatalf("default interface for %s = %v, want [%s] (route lookup)", fam.owned, got, p.nodeIf)
			}
			p.sendFromPeer(t, fam.owned)
			p.waitFor(t, "peer neighbour entry with our MAC", func() (bool, string) {
				n, ok := p.neigh(t, fam.owned)
				return ok && n.HardwareAddr.String() == p.nodeMAC.String(), fmt.Sprintf("%+v", n)
			})
			f := family(fam.owned.Is6())
			// The counter moves after the send returns, which may be after the peer acted on
			// the reply.
			p.waitFor(t, "replies_sent counted", func() (bool, string) {
				v := value(a.m.replies.WithLabelValues(f))
				return v >= 1, fmt.Sprint(v)
			})
			if v := value(a.m.owned.WithLabelValues(f)); v != 1 {
				t.Errorf("owned_ips = %v, want 1", v)
			}
		})
	}
}

func TestKernelGratuitousUpdatesExistingEntry(t *testing.T) {
	for _, fam := range families() {
		t.Run(fam.name, func(t *testing.T) {
			p := newPair(t)
			stale := "02:00:5e:00:53:99"
			run(t, "ip", "-n", p.peer, "neigh", "replace", fam.garpIP.String(), "lladdr", stale, "dev", p.peerIf, "nud", "stale")
			if n, ok := p.neigh(t, fam.garpIP); !ok || n.HardwareAddr.String() != stale {
				t.Fatalf("setup: peer entry %+v", n)
			}
			a := p.announcer(t, prometheus.NewRegistry(), nil)
			p.apply(t, a, Desired{fam.garpIP: {p.nodeIf}})
			// No traffic from the peer: only our gratuitous messages can change the entry.
			p.waitFor(t, "peer entry updated to our MAC by a gratuitous message", func() (bool, string) {
				n, _ := p.neigh(t, fam.garpIP)
				return n.HardwareAddr.String() == p.nodeMAC.String(), fmt.Sprintf("%+v", n)
			})
			// The counter moves after the send returns, which may be after the peer acted on
			// the message.
			p.waitFor(t, "gratuitous_sent counted", func() (bool, string) {
				v := value(a.m.gratuitous.WithLabelValues(family(fam.garpIP.Is6())))
				return v >= 1, fmt.Sprint(v)
			})
		})
	}
}

func TestKernelNoAnswerForUnownedOrLostIPs(t *testing.T) {
	for _, fam := range families() {
		t.Run(fam.name, func(t *testing.T) {
			p := newPair(t)
			a := p.announcer(t, prometheus.NewRegistry(), nil)
			p.apply(t, a, Desired{fam.owned: {p.nodeIf}, fam.garpIP: {p.nodeIf}})
			f := family(fam.owned.Is6())
			notOwned := a.m.requests.WithLabelValues(f, "false")

			check := func(ip netip.Addr) {
				t.Helper()
				before := value(notOwned)
				p.sendFromPeer(t, ip)
				// Once the responder has seen the request and classified it as not ours it
				// has decided not to answer: the reply would have gone out before the count.
				p.waitFor(t, "request seen by the responder", func() (bool, string) {
					v := value(notOwned)
					return v > before, fmt.Sprint(v)
				})
				// Let the peer finish resolution (its retries are 200 ms apart).
				p.waitFor(t, "peer resolution to fail", func() (bool, string) {
					n, ok := p.neigh(t, ip)
					return !ok || n.State == netlink.NUD_FAILED, fmt.Sprintf("%+v", n)
				})
				if n, _ := p.neigh(t, ip); n.HardwareAddr.String() == p.nodeMAC.String() {
					t.Errorf("peer learned our MAC for %s, which we do not own: %+v", ip, n)
				}
			}
			check(fam.other)

			// Resolve the owned IP once, so that we know it was answered before.
			p.sendFromPeer(t, fam.owned)
			p.waitFor(t, "peer neighbour entry with our MAC", func() (bool, string) {
				n, ok := p.neigh(t, fam.owned)
				return ok && n.HardwareAddr.String() == p.nodeMAC.String(), fmt.Sprintf("%+v", n)
			})
			run(t, "ip", "-n", p.peer, "neigh", "flush", "dev", p.peerIf)

			// Lose it, keeping another IP on the interface so the responder keeps running:
			// from now on it is not answered.
			p.apply(t, a, Desired{fam.garpIP: {p.nodeIf}})
			check(fam.owned)
		})
	}
}

func TestKernelDuplicateOwnerDetected(t *testing.T) {
	for _, fam := range families() {
		t.Run(fam.name, func(t *testing.T) {
			p := newPair(t)
			var mu sync.Mutex
			var got []Conflict
			a := p.announcer(t, prometheus.NewRegistry(), func(c Conflict) {
				mu.Lock()
				got = append(got, c)
				mu.Unlock()
			})
			p.apply(t, a, Desired{fam.owned: {p.nodeIf}})
			// The peer claims the same IP with its own MAC, as a second owner would.
			if fam.owned.Is4() {
				p.claimFromPeer(t, fam.owned)
			} else if err := nsthread.Do(p.peerNS, func() error {
				ifi, err := net.InterfaceByName(p.peerIf)
				if err != nil {
					return err
				}
				c, err := dialNDP(ifi)
				if err != nil {
					return err
				}
				defer c.Close()
				b, err := UnsolicitedNA(ifi.HardwareAddr, fam.owned)
				if err != nil {
					return err
				}
				return c.WriteRaw(b, allNodes)
			}); err != nil {
				t.Fatal(err)
			}
			p.waitFor(t, "conflict reported", func() (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				for _, c := range got {
					if c.IP == fam.owned && c.Theirs.String() == p.peerMAC.String() &&
						c.Ours.String() == p.nodeMAC.String() && c.Interface == p.nodeIf {
						return true, ""
					}
				}
				return false, fmt.Sprint(got)
			})
			if v := value(a.m.conflicts.WithLabelValues(family(fam.owned.Is6()))); v < 1 {
				t.Errorf("duplicate_owner_total = %v", v)
			}
		})
	}
}

// The burst is Config.GratuitousCount messages, one every Config.GratuitousInterval on
// Config.Clock, the first at once; nothing is sent early, late or extra. The fake clock is
// stepped, then the peer reads what was sent; a second IP whose messages follow in the
// same step is the proof that nothing else was due.
func TestKernelGratuitousBurstFollowsClock(t *testing.T) {
	p := newPair(t)
	g := p.listenGARP(t)
	clk := newClock()
	a := New(Config{Registerer: prometheus.NewRegistry(), Clock: clk}) // 4 × 500 ms
	t.Cleanup(a.Close)
	ipA, ipB := netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.20")

	p.apply(t, a, Desired{ipA: {p.nodeIf}})
	g.expect(t, "t=0, A gained", ipA)
	clk.Step(499 * time.Millisecond)
	p.apply(t, a, Desired{ipA: {p.nodeIf}, ipB: {p.nodeIf}})
	g.expect(t, "t=499ms, B gained (A's second message is not due yet)", ipB)
	clk.Step(time.Millisecond)
	g.expect(t, "t=500ms", ipA)
	clk.Step(499 * time.Millisecond)
	g.expect(t, "t=999ms", ipB)
	clk.Step(time.Millisecond)
	g.expect(t, "t=1s", ipA)
	clk.Step(500 * time.Millisecond)
	g.expect(t, "t=1.5s (A's last, B's third)", ipA, ipB)
	clk.Step(500 * time.Millisecond)
	g.expect(t, "t=2s (B's last; no fifth for A)", ipB)
	clk.Step(500 * time.Millisecond)
	a.Reannounce()
	g.expect(t, "t=2.5s, re-announced (no fifth for B)", ipA, ipB)
	// Every send is counted once it returns (possibly after the peer read it).
	p.waitFor(t, "10 gratuitous messages counted", func() (bool, string) {
		v := value(a.m.gratuitous.WithLabelValues("ipv4"))
		return v >= 10, fmt.Sprint(v)
	})
	if v := value(a.m.gratuitous.WithLabelValues("ipv4")); v != 10 {
		t.Errorf("gratuitous_sent = %v, want 10", v)
	}
}

// A claim by a node we yield to stops our gratuitous burst at once (the caller withdraws
// the IP later); a claim by anyone else leaves the burst running. A second IP, bursting
// in step with the first, shows in each clock step that the first one sent nothing.
func TestKernelYieldStopsBurst(t *testing.T) {
	for _, yield := range []bool{true, false} {
		t.Run(fmt.Sprintf("yields=%v", yield), func(t *testing.T) {
			p := newPair(t)
			g := p.listenGARP(t)
			ip, other := netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.20")
			conflicts := make(chan Conflict, 16)
			clk := newClock()
			a := New(Config{Registerer: prometheus.NewRegistry(), Clock: clk, // 4 × 500 ms
				OnConflict: func(c Conflict) { conflicts <- c },
				YieldsTo: func(got netip.Addr, mac net.HardwareAddr) bool {
					return yield && got == ip && mac.String() == p.peerMAC.String()
				}})
			t.Cleanup(a.Close)
			p.apply(t, a, Desired{ip: {p.nodeIf}, other: {p.nodeIf}})
			g.expect(t, "first messages", ip, other)
			clk.Step(500 * time.Millisecond)
			g.expect(t, "second messages", ip, other)

			p.claimFromPeer(t, ip)
			select {
			case c := <-conflicts:
				if c.IP != ip || c.Theirs.String() != p.peerMAC.String() {
					t.Fatalf("conflict %+v", c)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("no conflict reported")
			}
			// OnConflict is called after the burst was stopped: from here on, a yielding
			// node sends nothing more for ip.
			want := []netip.Addr{ip, other}
			if yield {
				want = []netip.Addr{other}
			}
			clk.Step(500 * time.Millisecond)
			g.expect(t, "third messages", want...)
			clk.Step(500 * time.Millisecond)
			g.expect(t, "fourth messages", want...)
			clk.Step(500 * time.Millisecond)
			a.Reannounce(other)
			g.expect(t, "after the bursts, re-announced", other)

			// The IP itself stays owned until the caller withdraws it.
			a.mu.Lock()
			r := a.ifaces[p.nodeIf]
			a.mu.Unlock()
			if r == nil || !r.owns(ip) {
				t.Error("the IP was dropped; only the burst should stop")
			}
		})
	}
}

// An interface without an IPv4 address (arp.New refuses it) still answers ARP and sends
// gratuitous ARPs for the IPv4 LB IPs it carries.
func TestKernelARPOnInterfaceWithoutIPv4(t *testing.T) {
	p := newPair(t)
	run(t, "ip", "-n", p.node, "addr", "del", "192.0.2.11/24", "dev", p.nodeIf)
	g := p.listenGARP(t)
	a := p.announcer(t, prometheus.NewRegistry(), nil)
	ip := netip.MustParseAddr("203.0.113.10")
	p.apply(t, a, Desired{ip: {p.nodeIf}})
	g.expect(t, "gratuitous ARP", ip)
	p.sendFromPeer(t, ip)
	p.waitFor(t, "peer neighbour entry with our MAC", func() (bool, string) {
		n, ok := p.neigh(t, ip)
		return ok && n.HardwareAddr.String() == p.nodeMAC.String(), fmt.Sprintf("%+v", n)
	})
}

func TestKernelBadInterfaceKeepsOtherIPs(t *testing.T) {
	p := newPair(t)
	a := p.announcer(t, prometheus.NewRegistry(), nil)
	good := netip.MustParseAddr("203.0.113.10")
	bad := netip.MustParseAddr("203.0.113.11")
	var res Applied
	if err := nsthread.Do(p.nodeNS, func() error { res = a.Apply(Desired{good: {p.nodeIf}, bad: {"lsmissing0"}}); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "lsmissing0") {
		t.Fatalf("errors = %v, want one naming the missing interface", res.Errors)
	}
	if _, ok := res.Interfaces[bad]; ok {
		t.Errorf("IP on a missing interface reported as served")
	}
	p.sendFromPeer(t, good)
	p.waitFor(t, "good IP still answered", func() (bool, string) {
		n, ok := p.neigh(t, good)
		return ok && n.HardwareAddr.String() == p.nodeMAC.String(), fmt.Sprintf("%+v", n)
	})
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
