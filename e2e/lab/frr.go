package lab

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// FRR's daemons, from the Debian package.
const frrLib = "/usr/lib/frr"

// FRRDir returns the directory of FRR's sockets and configs (for vtysh --vty_socket).
func (l *Lab) FRRDir() string { return filepath.Join(l.cfg.Dir, "frr") }

// bgpdConfig is the router's BGP configuration: dynamic neighbours from the node LAN in
// two peer-groups (IPv4 sessions carry IPv4 unicast, IPv6 sessions IPv6 unicast), any
// external AS, ECMP over up to 8 paths, fast timers and BFD with the "fast" profile.
//
// Weighted ECMP (externalTrafficPolicy Local) needs nothing more: FRR (7.4 and later,
// checked with 8.4) turns the link-bandwidth extended community into next-hop weights by
// default when every multipath carries it, also when it arrives non-transitive over eBGP
// as gobgp sends it; multipath-relax lets nodes with different ASes share the multipath
// set. See docs/bgp-lab.md and e2e/bgp's TestRouterWeightsLinkBandwidth.
func bgpdConfig() string {
	return fmt.Sprintf(`frr defaults traditional
hostname %[1]s
log stdout informational
!
router bgp %[2]d
 bgp router-id %[3]s
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 bgp bestpath as-path multipath-relax
 neighbor NODES peer-group
 neighbor NODES remote-as external
 neighbor NODES timers 3 9
 neighbor NODES timers connect 1
 neighbor NODES bfd profile fast
 neighbor NODES6 peer-group
 neighbor NODES6 remote-as external
 neighbor NODES6 timers 3 9
 neighbor NODES6 timers connect 1
 neighbor NODES6 bfd profile fast
 bgp listen range %[4]s peer-group NODES
 bgp listen range %[5]s peer-group NODES6
 !
 address-family ipv4 unicast
  neighbor NODES activate
  maximum-paths 8
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor NODES6 activate
  maximum-paths 8
 exit-address-family
!
`, RouterNS, RouterASN, RouterIP, LANCIDR, LANCIDR6)
}

// bfddConfig defines the "fast" profile: 100 ms × 3.
func bfddConfig() string {
	return fmt.Sprintf(`frr defaults traditional
hostname %s
log stdout informational
!
bfd
 profile fast
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
 !
!
`, RouterNS)
}

// startFRR starts zebra, bfdd and bgpd in the router namespace, as user frr, with all
// their sockets in FRRDir (nothing in /etc/frr or /run/frr is used).
func (l *Lab) startFRR() error {
	dir := l.FRRDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"zebra.conf": fmt.Sprintf("hostname %s\nlog stdout informational\n", RouterNS),
		"bgpd.conf":  bgpdConfig(),
		"bfdd.conf":  bfddConfig(),
		// vtysh reads this; an empty one keeps it from complaining about /etc/frr.
		"vtysh.conf": "",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	if err := chownFRR(dir); err != nil {
		return err
	}
	common := func(d string) []string {
		return []string{filepath.Join(frrLib, d),
			"-f", filepath.Join(dir, d+".conf"),
			"-i", filepath.Join(dir, d+".pid"),
			"--vty_socket", dir,
			"-z", filepath.Join(dir, "zserv.api"),
			"-A", "127.0.0.1", "-P", "0"}
	}
	if _, err := l.startProc("frr-zebra", RouterNS, common("zebra")); err != nil {
		return err
	}
	// bgpd and bfdd connect to zebra's socket; give it a moment to exist.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, "zserv.api")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := l.startProc("frr-bfdd", RouterNS, append(common("bfdd"), "--bfdctl", filepath.Join(dir, "bfdd.sock"))); err != nil {
		return err
	}
	_, err := l.startProc("frr-bgpd", RouterNS, common("bgpd"))
	return err
}

// ChownFRR gives the directory to user frr (FRR drops to it).
func ChownFRR(dir string) error { return chownFRR(dir) }

// chownFRR gives the FRR state directory to user and group frr (the daemons drop to that
// user and must write their pid files and sockets there).
func chownFRR(dir string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("user frr: %w (install FRR: hack/lab-deps.sh)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}
