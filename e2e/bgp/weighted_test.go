package bgp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// ratioBand is the accepted spread of answers for 2:1 weights: loose, because the
// kernel hashes each connection's ports (a few hundred connections vary by ±15 %).
const ratioLow, ratioHigh = 1.4, 2.8

// The lab router (FRR 8.4, its configuration as in e2e/lab/frr.go) turns the
// link-bandwidth extended community into weighted kernel next hops, and new connections
// from the client follow the weights. Two reference speakers announce the same /32 with
// bandwidths 2:1: FRR peers (FRR sends the community transitive: FRR 8.4 strips a
// non-transitive one towards eBGP peers) and gobgp v3 peers (the library the speaker
// embeds; gobgp always sends it non-transitive, and FRR 8.4 honours it on receipt).
func TestRouterWeightsLinkBandwidth(t *testing.T) {
	for _, impl := range []string{"frr", "gobgp"} {
		t.Run(impl, func(t *testing.T) {
			e := framework.Setup(t)
			nodes := e.Lab.Nodes()[:2]
			p := netip.MustParsePrefix("203.0.113.250/32")
			for i, n := range nodes {
				share := 2 - i // node1: 2, node2: 1
				if impl == "frr" {
					e.StartFRRPeer(framework.FRRPeerConfig{Node: n.Name, Prefixes: []netip.Prefix{p}, LinkBandwidthMbps: 100 * share})
				} else {
					startGoBGPPeer(t, e, n, gobgpPeer{First: p, LinkBandwidth: float64(share) * 125000})
				}
				e.ServeAnycast(n.Name, p.Addr(), 8080, "anycast")
			}
			want := map[string]int{nodes[0].IP.String(): 2, nodes[1].IP.String(): 1}
			w := e.WaitRouterWeights(p, want, 60*time.Second)
			paths, err := e.BGPPaths(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, bp := range paths {
				if bp.LinkBandwidth == 0 {
					t.Errorf("path from %s has no link bandwidth: %+v", bp.Peer, bp)
				}
			}
			url := fmt.Sprintf("http://%s/", "203.0.113.250:8080")
			spread := framework.SpreadByNode(e.Context(), lab.ClientNS, url, 600)
			ratio := float64(spread[nodes[0].Name]) / float64(max(spread[nodes[1].Name], 1))
			t.Logf("kernel weights %v; answers per node %v (ratio %.2f)", w, spread, ratio)
			if spread[""] > 0 {
				t.Errorf("%d requests failed", spread[""])
			}
			if ratio < ratioLow || ratio > ratioHigh {
				t.Errorf("answers %v: ratio %.2f outside [%.1f, %.1f] for weights 2:1", spread, ratio, ratioLow, ratioHigh)
			}
		})
	}
}
