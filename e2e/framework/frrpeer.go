package framework

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// FRRPeer is a reference BGP speaker: FRR's zebra, bgpd and (optionally) bfdd inside a
// node's namespace, peering with the lab router like a node would. Scenarios use it to
// check the router side, and benchmarks to compare with Loadstone's speaker.
type FRRPeer struct {
	Node  lab.Node
	Dir   string
	names []string
}

// FRRPeerConfig configures StartFRRPeer.
type FRRPeerConfig struct {
	// Node is the node namespace to run in.
	Node string
	// Prefixes are announced (IPv4 over the IPv4 session, IPv6 over the IPv6 session).
	Prefixes []netip.Prefix
	// BFD enables BFD (100 ms × 3) towards the router.
	BFD bool
	// LinkBandwidthMbps, when above 0, adds the link-bandwidth extended community to
	// every announced prefix (an outbound route-map with `set extcommunity bandwidth N`,
	// N in Mbit/s), as a node with endpoints would; the router weights its ECMP next hops
	// by it.
	LinkBandwidthMbps int
	// LinkBandwidthNonTransitive sends the community non-transitive (FRR 8.4 does not
	// send non-transitive extended communities to eBGP peers: see docs/bgp-lab.md).
	LinkBandwidthNonTransitive bool
}

// frrPeerConfig renders the peer's bgpd and bfdd configuration (pure).
func frrPeerConfig(n lab.Node, cfg FRRPeerConfig) (bgpd, bfdd string) {
	prefixes, bfd := cfg.Prefixes, cfg.BFD
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname peer-%s\nlog stdout informational\n!\n", n.Name)
	if cfg.LinkBandwidthMbps > 0 {
		nt := ""
		if cfg.LinkBandwidthNonTransitive {
			nt = " non-transitive"
		}
		fmt.Fprintf(&b, "route-map LINKBW permit 10\n set extcommunity bandwidth %d%s\n!\n", cfg.LinkBandwidthMbps, nt)
	}
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp network import-check\n no bgp default ipv4-unicast\n", lab.NodeASN, n.IP)
	for _, nb := range []string{lab.RouterIP, lab.RouterIP6} {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers 3 9\n neighbor %s timers connect 1\n", nb, lab.RouterASN, nb, nb)
		if bfd {
			fmt.Fprintf(&b, " neighbor %s bfd profile fast\n", nb)
		}
	}
	for _, fam := range []struct {
		af, nb string
		v6     bool
	}{{"ipv4", lab.RouterIP, false}, {"ipv6", lab.RouterIP6, true}} {
		fmt.Fprintf(&b, " !\n address-family %s unicast\n  neighbor %s activate\n", fam.af, fam.nb)
		if cfg.LinkBandwidthMbps > 0 {
			fmt.Fprintf(&b, "  neighbor %s route-map LINKBW out\n", fam.nb)
		}
		for _, p := range prefixes {
			if p.Addr().Is6() == fam.v6 {
				fmt.Fprintf(&b, "  network %s\n", p)
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString("!\n")
	bfdd = fmt.Sprintf("frr defaults traditional\nhostname peer-%s\n!\nbfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n !\n!\n", n.Name)
	return b.String(), bfdd
}

// StartFRRPeer starts the peer; it is stopped when the test ends.
func (e *Env) StartFRRPeer(cfg FRRPeerConfig) *FRRPeer {
	e.T.Helper()
	n, ok := e.node(cfg.Node)
	if !ok {
		e.T.Fatalf("no node %s", cfg.Node)
	}
	dir := filepath.Join(e.Lab.Dir(), "frr-peer-"+n.Name)
	if err := os.RemoveAll(dir); err != nil {
		e.T.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.T.Fatal(err)
	}
	bgpd, bfdd := frrPeerConfig(n, cfg)
	for name, body := range map[string]string{"zebra.conf": "hostname peer\n", "bgpd.conf": bgpd, "bfdd.conf": bfdd} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			e.T.Fatal(err)
		}
	}
	if err := lab.ChownFRR(dir); err != nil {
		e.T.Fatal(err)
	}
	p := &FRRPeer{Node: n, Dir: dir}
	argv := func(d string) []string {
		return []string{"/usr/lib/frr/" + d, "-f", filepath.Join(dir, d+".conf"), "-i", filepath.Join(dir, d+".pid"),
			"--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"), "-A", "127.0.0.1", "-P", "0"}
	}
	start := func(d string, extra ...string) {
		name := "frrpeer-" + d + "-" + n.Name
		if _, err := e.Lab.Spawn(name, n.Name, append(argv(d), extra...)); err != nil {
			e.T.Fatalf("start %s: %v", name, err)
		}
		p.names = append(p.names, name)
	}
	e.T.Cleanup(p.stop(e))
	start("zebra")
	e.Eventually("the peer's zebra socket", 10*time.Second, func() (bool, error) {
		_, err := os.Stat(filepath.Join(dir, "zserv.api"))
		return err == nil, err
	})
	if cfg.BFD {
		start("bfdd", "--bfdctl", filepath.Join(dir, "bfdd.sock"))
	}
	// -p 0: bgpd does not listen (the node's own speaker may), it only connects out.
	start("bgpd", "-p", "0")
	return p
}

func (p *FRRPeer) stop(e *Env) func() {
	return func() {
		for i := len(p.names) - 1; i >= 0; i-- {
			if _, ok := e.Lab.Proc(p.names[i]); ok {
				_, _ = e.Lab.StopProc(p.names[i], 2*time.Second)
			}
		}
	}
}

// Vtysh runs a command on the peer's FRR.
func (p *FRRPeer) Vtysh(command string) (string, error) {
	return Exec(p.Node.Name, "vtysh", "--vty_socket", p.Dir, "-c", command)
}
