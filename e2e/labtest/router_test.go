package labtest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// The router accepts BGP from any node address (dynamic neighbours, IPv4 and IPv6),
// installs a prefix announced by two nodes as ECMP, runs BFD with them, and drops a node
// whose link dies silently once BFD notices (not after the 9 s hold time).
func TestRouterECMPAndBFD(t *testing.T) {
	e := framework.Setup(t)
	nodes := e.Lab.Nodes()[:2]
	p4 := netip.MustParsePrefix("203.0.113.77/32")
	p6 := netip.MustParsePrefix("2001:db8:100::77/128")
	var peers []*framework.FRRPeer
	for _, n := range nodes {
		peers = append(peers, e.StartFRRPeer(framework.FRRPeerConfig{Node: n.Name, Prefixes: []netip.Prefix{p4, p6}, BFD: true}))
	}
	e.WaitBGPEstablished("ipv4", 2)
	e.WaitBGPEstablished("ipv6", 2)
	e.WaitBFDUp(4) // two nodes, IPv4 and IPv6 sessions
	gws := e.WaitRouterNexthops(p4, 2, 30*time.Second)
	slices.Sort(gws)
	if want := []string{nodes[0].IP.String(), nodes[1].IP.String()}; !slices.Equal(gws, want) {
		t.Fatalf("ECMP next hops %v, want %v", gws, want)
	}
	e.WaitRouterNexthops(p6, 2, 30*time.Second)
	if rs, err := e.FRRRoutes(p4); err != nil || len(rs) == 0 {
		t.Fatalf("FRR has no route for %s: %v %v", p4, rs, err)
	}

	start := time.Now()
	e.CutLink(nodes[1].Name)
	gws = e.WaitRouterNexthops(p4, 1, 30*time.Second)
	t.Logf("silent link cut: next hop withdrawn after %v (BFD 100 ms × 3, hold time 9 s)", time.Since(start).Round(time.Millisecond))
	// The router deletes a dynamic neighbour with its BFD session at once; the cut peer keeps
	// its configured neighbour and says why the session went down: its BFD session died
	// (FRR sends Cease/BFD Down), not the hold timer.
	e.Eventually("the cut peer's BGP session closed by BFD", 30*time.Second, func() (bool, error) {
		out, err := peers[1].Vtysh("show bgp neighbors " + lab.RouterIP + " json")
		if err != nil {
			return false, err
		}
		var nb map[string]struct {
			LastNotificationReason string `json:"lastNotificationReason"`
		}
		if err := json.Unmarshal([]byte(out), &nb); err != nil {
			return false, err
		}
		why := nb[lab.RouterIP].LastNotificationReason
		return strings.Contains(why, "BFD Down"), fmt.Errorf("last notification %q", why)
	})
	if gws[0] != nodes[0].IP.String() {
		t.Errorf("remaining next hop %v, want %s", gws, nodes[0].IP)
	}
	e.RestoreLink(nodes[1].Name)
	e.WaitRouterNexthops(p4, 2, 30*time.Second)
}
