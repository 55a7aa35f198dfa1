package bgp

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// Every node advertises the LB IP of an externalTrafficPolicy Cluster Service; the router
// installs it over ECMP with the nodes as next hops, and the client's connections reach
// every pod.
func TestECMPAcrossAllNodes(t *testing.T) {
	x := setupBGP(t, bgpOptions{})
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 3})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
	paths, err := x.BGPPaths(p)
	if err != nil {
		t.Fatal(err)
	}
	var peers []string
	for _, bp := range paths {
		peers = append(peers, bp.Peer)
		if !bp.Multipath && !bp.Best {
			t.Errorf("path from %s is not used for multipath: %+v", bp.Peer, bp)
		}
	}
	if !slices.Equal(peers, x.nodeIPs()) {
		t.Errorf("paths from %v, want every node %v", peers, x.nodeIPs())
	}
	x.steady(p)
	spread := framework.Spread(x.Context(), lab.ClientNS, url(p), 300)
	t.Logf("answers per pod: %v", spread)
	if spread[""] > 0 {
		t.Errorf("%d of 300 requests failed", spread[""])
	}
	if len(spread) < 3 {
		t.Errorf("answers from %d pods, want 3: %v", len(spread), spread)
	}
}

// A node whose link dies silently leaves the router's next hops once BFD notices (long
// before the 9 s hold time would), and new connections flow again.
func TestBFDLinkCutRemovesNexthop(t *testing.T) {
	x := setupBGP(t, bgpOptions{BFD: true})
	nodes := x.Lab.Nodes()
	// Pods only on node1, so that cutting node3 takes no backend with it.
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 2, NodeSelector: map[string]string{corev1.LabelHostname: nodes[0].Name}})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
	x.steady(p)
	probe, err := framework.StartProbe(framework.ProbeConfig{Target: p.Addr().String() + ":8080", Mode: framework.ProbeTCPParallel, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cut := nodes[len(nodes)-1]
	x.CutLink(cut.Name)
	x.waitNexthops(p, x.nodeIPs(nodes[:len(nodes)-1]...), 30*time.Second)
	// Why the router dropped it: BFD, not the hold timer.
	ss, err := x.BGPSessions()
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := ss[cut.IP.String()]; ok && s.State == "Established" {
		t.Errorf("session from the cut node still Established: %+v", s)
	}
	time.Sleep(time.Second) // connections after the withdrawal
	r := probe.Stop()
	t.Logf("probe during the cut: %v", r)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.Open {
		t.Errorf("connections still failing after the next hop was withdrawn: %v", r)
	}
}

// With externalTrafficPolicy Local only nodes with a ready endpoint advertise, weighted
// by their endpoint count (link-bandwidth community): two pods on node1 and one on node2
// give next hops 2:1 and new connections split about 2:1.
func TestLocalTrafficPolicyWeights(t *testing.T) {
	x := setupBGP(t, bgpOptions{})
	nodes := x.Lab.Nodes()
	x.createPod("web-a", "web", nodes[0].Name)
	x.createPod("web-b", "web", nodes[0].Name)
	x.createPod("web-c", "web", nodes[1].Name)
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyLocal)
	x.WaitEndpoints("web", 3)
	want := map[string]int{nodes[0].IP.String(): 2, nodes[1].IP.String(): 1}
	w := x.WaitRouterWeights(p, want, 60*time.Second)
	paths, err := x.BGPPaths(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, bp := range paths {
		if bp.Peer == nodes[2].IP.String() {
			t.Errorf("node3 (no endpoint) advertises %s: %+v", p, bp)
		}
		if bp.LinkBandwidth == 0 {
			t.Errorf("path from %s carries no link bandwidth: %+v", bp.Peer, bp)
		}
	}
	x.steady(p)
	spread := framework.SpreadByNode(x.Context(), lab.ClientNS, url(p), 600)
	ratio := float64(spread[nodes[0].Name]) / float64(max(spread[nodes[1].Name], 1))
	t.Logf("kernel weights %v; answers per node %v (ratio %.2f)", w, spread, ratio)
	if spread[""] > 0 || spread[nodes[2].Name] > 0 {
		t.Errorf("failed or off-policy answers: %v", spread)
	}
	if ratio < ratioLow || ratio > ratioHigh {
		t.Errorf("answers %v: ratio %.2f outside [%.1f, %.1f] for 2 pods : 1 pod", spread, ratio, ratioLow, ratioHigh)
	}
}

// Editing a BGPAdvertisement (communities, localPref) changes the routes' attributes on
// the router without resetting a session; so does narrowing its node selector, which
// withdraws the route from the other nodes. (localPref is not sent on the lab's eBGP
// sessions; the communities show the change.)
func TestAdvertisementEditKeepsSessions(t *testing.T) {
	x := setupBGP(t, bgpOptions{})
	nodes := x.Lab.Nodes()
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 3})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
	before := x.sessionMarks()

	lp := int64(250)
	x.UpdateObject(x.Adv, func() {
		x.Adv.Spec.Communities = []string{"64512:100", "large:64512:7:9"}
		x.Adv.Spec.LocalPref = &lp
	})
	x.Eventually("the new communities on every node's path", 60*time.Second, func() (bool, error) {
		paths, err := x.BGPPaths(p)
		if err != nil || len(paths) != len(nodes) {
			return false, err
		}
		for _, bp := range paths {
			if !hasAll(bp.Communities, "64512:100") || !hasAll(bp.LargeCommunities, "64512:7:9") {
				return false, nil
			}
		}
		return true, nil
	})
	if after := x.sessionMarks(); !mapsEqual(before, after) {
		t.Errorf("a community edit reset sessions:\nbefore %v\nafter  %v", before, after)
	}

	x.UpdateObject(x.Adv, func() {
		x.Adv.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{corev1.LabelHostname: nodes[0].Name}}}
	})
	x.waitNexthops(p, x.nodeIPs(nodes[0]), 60*time.Second)
	if after := x.sessionMarks(); !mapsEqual(before, after) {
		t.Errorf("a node-selector edit reset sessions:\nbefore %v\nafter  %v", before, after)
	}
}

// With gracefulRestart the router keeps a restarting speaker's routes (stale) until it
// is back, so traffic through that node keeps flowing while its speaker restarts.
func TestGracefulRestartKeepsTraffic(t *testing.T) {
	x := setupBGP(t, bgpOptions{GracefulRestart: true})
	nodes := x.Lab.Nodes()
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 3})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
	ss, err := x.BGPSessions()
	if err != nil {
		t.Fatal(err)
	}
	if gr := ss[nodes[0].IP.String()].GracefulRestart; gr != "advertisedAndReceived" {
		t.Fatalf("graceful restart capability on node1's session: %q, want advertisedAndReceived", gr)
	}
	x.steady(p)
	probe, err := framework.StartProbe(framework.ProbeConfig{Target: p.Addr().String() + ":8080", Mode: framework.ProbeTCPParallel, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	old := ss[nodes[0].IP.String()].EstablishedEpoch
	proc := x.Kill("speaker-" + nodes[0].Name)
	time.Sleep(2 * time.Second) // the router holds the stale routes meanwhile
	x.waitNexthops(p, x.nodeIPs(), time.Second)
	x.StartProc(proc)
	x.Eventually("node1's session re-established", 60*time.Second, func() (bool, error) {
		ss, err := x.BGPSessions()
		s := ss[nodes[0].IP.String()]
		return err == nil && s.State == "Established" && s.EstablishedEpoch != old, err
	})
	x.waitNexthops(p, x.nodeIPs(), 30*time.Second)
	time.Sleep(time.Second)
	r := probe.Stop()
	t.Logf("probe during the restart: %v", r)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	// Near zero: a connect can be lost to the restart's own churn, never a stretch.
	if r.Open || r.Failed > r.Sent/200 {
		t.Errorf("traffic lost during a graceful restart: %v", r)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Graceful restart and BFD together (docs/bgp.md, "Graceful restart and BFD"): our BFD
// runs in the speaker, so it is control-plane dependent and sends the C bit clear. When the
// speaker process dies, the kernel closes its TCP sessions at once, the router enters
// graceful-restart helper mode and keeps the routes; the BFD timeout that follows does not
// flush them. When the node's link dies, no TCP close arrives: BFD times out first and
// the router drops the session and its routes, as without graceful restart. (A router
// configured with "bfd check-control-plane-failure" would instead keep the routes of a
// dead link for the restart time; the docs say not to.)
func TestGracefulRestartWithBFD(t *testing.T) {
	x := setupBGP(t, bgpOptions{GracefulRestart: true, BFD: true})
	nodes := x.Lab.Nodes()
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 3})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
	x.steady(p)

	before := x.sessionMarks()[nodes[0].IP.String()]
	proc := x.Kill("speaker-" + nodes[0].Name)
	x.Eventually("the router sees node1's BFD session down", 10*time.Second, func() (bool, error) {
		peers, err := x.BFDPeers()
		for _, bp := range peers {
			if bp.Peer == nodes[0].IP.String() {
				return bp.Status == "down", err
			}
		}
		return true, err // a dynamic neighbour's BFD peer may be gone
	})
	// Well past the BFD detection time (300 ms): the stale route is still there.
	time.Sleep(time.Second)
	x.waitNexthops(p, x.nodeIPs(), time.Second)
	x.StartProc(proc)
	// Until the restarted speaker's session is up, the router is still in graceful
	// restart for node1 and ignores its BFD (a cut in that window keeps the stale routes
	// for the rest of the restart time).
	x.Eventually("node1's session re-established", 60*time.Second, func() (bool, error) {
		m := x.sessionMarks()[nodes[0].IP.String()]
		return m != before && strings.HasPrefix(m, "Established"), nil
	})
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
	x.WaitBFDUp(len(nodes))

	x.CutLink(nodes[0].Name)
	t.Cleanup(func() { x.RestoreLink(nodes[0].Name) })
	x.waitNexthops(p, x.nodeIPs(nodes[1:]...), 10*time.Second)
}
