package layer2

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newPair(t *testing.T) *pair {
	t.Helper()
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
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("delete netns %s: %v\n%s", ns, err, out)
			}
		})
		// Explicit per-netns settings: no DAD delay on the link-local address, ARP and NDP
		// defaults we rely on (arp_accept=0: a gratuitous ARP only updates an existing
		// entry), short neighbour retransmits so failed resolutions end quickly.
		for _, kv := range []string{
			"net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv4.conf.all.arp_accept=0", "net.ipv4.conf.default.arp_accept=0",
			"net.ipv4.conf.all.arp_ignore=0", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0",
		} {
			run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", kv)
		}
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
	for _, ns := range []string{p.node, p.peer} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
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
	p.inNS(t, p.nodeNS, func() {
		ifi, err := net.InterfaceByName(p.nodeIf)
		if err != nil {
			t.Fatal(err)
		}
		p.nodeMAC, p.nodeIdx = ifi.HardwareAddr, ifi.Index
	})
	p.inNS(t, p.peerNS, func() {
		ifi, err := net.InterfaceByName(p.peerIf)
		if err != nil {
			t.Fatal(err)
		}
		p.peerMAC, p.peerIndex = ifi.HardwareAddr, ifi.Index
	})
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

// inNS runs f on a thread switched into ns.
func (p *pair) inNS(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it when the goroutine ends.
			t.Errorf("restoring netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
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
	p.inNS(t, p.peerNS, func() {
		c, err := net.Dial("udp", netip.AddrPortFrom(ip, 9).String())
		if err != nil {
			t.Fatal(err)
		}
		// The datagram only makes the kernel resolve ip; the callers check the outcome (the
		// neighbour entry, the responder's counters), so a failed send is logged, not fatal.
		if _, err := c.Write([]byte("x")); err != nil {
			t.Logf("send to %s from the peer: %v", ip, err)
		}
		c.Close()
	})
}

func (p *pair) announcer(t *testing.T, reg prometheus.Registerer, onConflict func(Conflict)) *Announcer {
	a := New(Config{Registerer: reg, GratuitousInterval: 100 * time.Millisecond, OnConflict: onConflict})
	t.Cleanup(a.Close)
	return a
}

func (p *pair) apply(t *testing.T, a *Announcer, want Desired) Applied {
	var res Applied
	p.inNS(t, p.nodeNS, func() { res = a.Apply(want) })
	for _, err := range res.Errors {
		t.Errorf("Apply: %v", err)
	}
	return res
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
			if v := value(a.m.replies.WithLabelValues(f)); v < 1 {
				t.Errorf("replies_sent = %v, want >= 1", v)
			}
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
			if v := value(a.m.gratuitous.WithLabelValues(family(fam.garpIP.Is6()))); v < 1 {
				t.Errorf("gratuitous_sent = %v", v)
			}
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
			p.inNS(t, p.peerNS, func() {
				ifi, err := net.InterfaceByName(p.peerIf)
				if err != nil {
					t.Fatal(err)
				}
				if fam.owned.Is4() {
					c, err := dialARP(ifi)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					b, _ := GratuitousARP(ifi.HardwareAddr, fam.owned)
					if err := c.WriteFrame(b); err != nil {
						t.Fatal(err)
					}
				} else {
					c, err := dialNDP(ifi)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					b, _ := UnsolicitedNA(ifi.HardwareAddr, fam.owned)
					if err := c.WriteRaw(b, allNodes); err != nil {
						t.Fatal(err)
					}
				}
			})
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

// A claim by a node we yield to stops our gratuitous burst at once (the caller withdraws
// the IP later); a claim by anyone else leaves the burst running. The burst is long here
// (40 × 50 ms), so both outcomes are visible in the same window.
func TestKernelYieldStopsBurst(t *testing.T) {
	for _, yield := range []bool{true, false} {
		t.Run(fmt.Sprintf("yields=%v", yield), func(t *testing.T) {
			p := newPair(t)
			ip := netip.MustParseAddr("203.0.113.10")
			conflicts := make(chan Conflict, 16)
			a := New(Config{Registerer: prometheus.NewRegistry(), GratuitousCount: 40, GratuitousInterval: 50 * time.Millisecond,
				OnConflict: func(c Conflict) { conflicts <- c },
				YieldsTo: func(got netip.Addr, mac net.HardwareAddr) bool {
					return yield && got == ip && mac.String() == p.peerMAC.String()
				}})
			t.Cleanup(a.Close)
			p.apply(t, a, Desired{ip: {p.nodeIf}})
			sent := func() float64 { return value(a.m.gratuitous.WithLabelValues("ipv4")) }
			p.waitFor(t, "burst under way", func() (bool, string) { return sent() >= 3, fmt.Sprint(sent()) })
			p.inNS(t, p.peerNS, func() {
				ifi, err := net.InterfaceByName(p.peerIf)
				if err != nil {
					t.Fatal(err)
				}
				c, err := dialARP(ifi)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				b, _ := GratuitousARP(ifi.HardwareAddr, ip)
				if err := c.WriteFrame(b); err != nil {
					t.Fatal(err)
				}
			})
			select {
			case <-conflicts:
			case <-time.After(15 * time.Second):
				t.Fatal("no conflict reported")
			}
			before := sent()
			if yield {
				// Nothing more for 8 burst intervals (one message may already have been
				// on its way when the burst was cancelled). A slow machine can only make
				// this pass wrongly, never fail wrongly.
				time.Sleep(400 * time.Millisecond)
				if after := sent(); after > before+1 {
					t.Errorf("burst went on after yielding: %v -> %v messages", before, after)
				}
			} else {
				p.waitFor(t, "burst goes on", func() (bool, string) { return sent() >= before+2, fmt.Sprint(sent()) })
			}
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

func TestKernelBadInterfaceKeepsOtherIPs(t *testing.T) {
	p := newPair(t)
	a := p.announcer(t, prometheus.NewRegistry(), nil)
	good := netip.MustParseAddr("203.0.113.10")
	bad := netip.MustParseAddr("203.0.113.11")
	var res Applied
	p.inNS(t, p.nodeNS, func() { res = a.Apply(Desired{good: {p.nodeIf}, bad: {"lsmissing0"}}) })
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
