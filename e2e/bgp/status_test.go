package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// A dual-stack Service over an IPv4 and an IPv6 session per node: each family's prefix goes
// over its own session with the node's address of that family as next hop (MP-BGP for
// IPv6), the router installs both over ECMP, the client reaches every pod over both, and
// each node's BGPSessionStatus objects say what was actually sent.
func TestDualStackECMPAndStatus(t *testing.T) {
	x := setupBGP(t, bgpOptions{})
	nodes := x.Lab.Nodes()
	peer6 := framework.RouterPeer(x.Namespace+"-v6", true, "")
	x.CreateObject(peer6)
	x.Eventually("IPv6 sessions from every node", sessionWait, func() (bool, error) {
		peers, err := x.BGPNeighbors("ipv6")
		n := 0
		for _, nd := range nodes {
			if p, ok := peers[nd.IP6.String()]; ok && p.State == "Established" {
				n++
			}
		}
		return n == len(nodes), err
	})
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 3})
	x.CreateService(framework.Service{Name: "web", Selector: "web", Type: corev1.ServiceTypeLoadBalancer,
		Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster})
	var p4, p6 netip.Prefix
	for _, s := range x.WaitLoadBalancerIPs("web", 2, 60*time.Second) {
		a := netip.MustParseAddr(s)
		if a.Is4() {
			p4 = netip.PrefixFrom(a, 32)
		} else {
			p6 = netip.PrefixFrom(a, 128)
		}
	}
	if !p4.IsValid() || !p6.IsValid() {
		t.Fatalf("want one IPv4 and one IPv6 LB IP, got %v %v", p4, p6)
	}
	var want6 []string
	for _, n := range nodes {
		want6 = append(want6, n.IP6.String())
	}
	slices.Sort(want6)
	x.waitNexthops(p4, x.nodeIPs(), 60*time.Second)
	x.waitNexthops(p6, want6, 60*time.Second)
	for _, p := range []netip.Prefix{p4, p6} {
		x.steady(p)
		spread, errs := framework.SpreadErrors(x.Context(), lab.ClientNS, url(p), 150)
		t.Logf("%s: answers per pod: %v", p, spread)
		for _, err := range errs {
			t.Logf("%s: %v", p, err)
		}
		if spread[""] > 0 || len(spread) < 3 {
			t.Errorf("%s: want answers from 3 pods and no failure, got %v", p, spread)
		}
	}

	// Every node's status, per peer: Established, and the prefix of the peer's family sent
	// with the node's own address as next hop.
	c := x.LoadstoneClient()
	x.Eventually("BGPSessionStatus of every node and peer", 30*time.Second, func() (bool, error) {
		var list v1beta1.BGPSessionStatusList
		if err := c.List(x.Context(), &list); err != nil {
			return false, err
		}
		for _, n := range nodes {
			for _, want := range []struct {
				peer    string
				prefix  netip.Prefix
				nextHop netip.Addr
			}{{x.Peer.Name, p4, n.IP}, {peer6.Name, p6, n.IP6}} {
				st := findStatus(list.Items, n.Name, want.peer)
				if st == nil {
					return false, fmt.Errorf("no status for node %s peer %s", n.Name, want.peer)
				}
				if st.Status.SessionState != v1beta1.BGPStateEstablished || st.Status.EstablishedSince == nil {
					return false, fmt.Errorf("%s: session %q", st.Name, st.Status.SessionState)
				}
				found := false
				for _, a := range st.Status.Advertised {
					if a.Prefix == want.prefix.String() && a.NextHop == want.nextHop.String() {
						found = true
					}
				}
				if !found || st.Status.AdvertisedCount < 1 {
					return false, fmt.Errorf("%s: %s via %s not among %d advertised %+v", st.Name, want.prefix, want.nextHop, st.Status.AdvertisedCount, st.Status.Advertised)
				}
			}
		}
		return true, nil
	})
}

// Peers that cannot come up — one with the wrong AS number, one at an address where no
// router answers — show why in their BGPSessionStatus and in a Warning Event, and leave the
// working session, its routes and layer 2 alone.
func TestBadPeersLeaveOthersAlone(t *testing.T) {
	x := setupBGP(t, bgpOptions{})
	nodes := x.Lab.Nodes()
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 3})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
	x.steady(p)
	before := x.sessionMarks()

	wrongAS := framework.RouterPeer(x.Namespace+"-wrong-as", true, "")
	wrongAS.Spec.PeerASN = 64999 // the router is AS 64500
	x.CreateObject(wrongAS)
	nobody := framework.RouterPeer(x.Namespace+"-nobody", false, "")
	nobody.Spec.PeerAddress = "192.0.2.250" // on the node LAN, no host there
	nobody.Spec.ConnectTime = &metav1.Duration{Duration: time.Second}
	x.CreateObject(nobody)

	c := x.LoadstoneClient()
	for _, bad := range []string{wrongAS.Name, nobody.Name} {
		x.Eventually("node1's status of "+bad+" says why it is down", 90*time.Second, func() (bool, error) {
			var list v1beta1.BGPSessionStatusList
			if err := c.List(x.Context(), &list); err != nil {
				return false, err
			}
			st := findStatus(list.Items, nodes[0].Name, bad)
			if st == nil {
				return false, fmt.Errorf("no status yet")
			}
			t.Logf("%s: session %q, last error %q", st.Name, st.Status.SessionState, st.Status.LastError)
			return st.Status.SessionState != v1beta1.BGPStateEstablished && st.Status.LastError != "", nil
		})
		x.Eventually("a BGPSessionFailing Event on "+bad, 60*time.Second, func() (bool, error) {
			evs, err := x.Client.EventsV1().Events(metav1.NamespaceAll).List(x.Context(), metav1.ListOptions{FieldSelector: "regarding.name=" + bad})
			if err != nil {
				return false, err
			}
			for _, ev := range evs.Items {
				if ev.Reason == "BGPSessionFailing" && ev.Type == corev1.EventTypeWarning {
					t.Logf("Event on %s: %s", bad, ev.Note)
					return true, nil
				}
			}
			return false, nil
		})
	}
	if after := x.sessionMarks(); !mapsEqual(before, after) {
		t.Errorf("bad peers reset the good sessions:\nbefore %v\nafter  %v", before, after)
	}
	x.waitNexthops(p, x.nodeIPs(), time.Second)
	for i := 0; i < 60; i++ {
		if _, err := framework.Get(x.Context(), lab.ClientNS, url(p)); err != nil {
			rs, _ := framework.KernelRoutes(lab.RouterNS, p)
			t.Errorf("request %d failed next to bad peers: %v (router next hops now %v)", i, err, framework.RouteGateways(rs))
		}
	}
	// Layer 2 still elects and announces the IP (the lab pool has an L2Advertisement).
	x.Eventually("the Service's ServiceL2Status", 30*time.Second, func() (bool, error) {
		var list v1beta1.ServiceL2StatusList
		if err := c.List(x.Context(), &list, client.InNamespace(x.Namespace)); err != nil {
			return false, err
		}
		for _, st := range list.Items {
			if slices.Contains(st.Status.IPs, p.Addr().String()) {
				return true, nil
			}
		}
		return false, nil
	})
}

// findStatus returns the BGPSessionStatus of (node, peer), or nil.
func findStatus(items []v1beta1.BGPSessionStatus, node, peer string) *v1beta1.BGPSessionStatus {
	for i := range items {
		if items[i].Status.Node == node && items[i].Status.Peer == peer {
			return &items[i]
		}
	}
	return nil
}

// Routes leave the router when their reason to exist does: the Service's endpoints go
// away, the Service is deleted, the pool is deleted.
func TestWithdrawals(t *testing.T) {
	x := setupBGP(t, bgpOptions{})
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 2})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)

	x.Scale("web", 0)
	x.waitNexthops(p, nil, 60*time.Second)
	x.Scale("web", 2)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)

	if err := x.Client.CoreV1().Services(x.Namespace).Delete(x.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	x.waitNexthops(p, nil, 60*time.Second)

	// The pool: a Service of its own, then the lab pool deleted (and put back afterwards).
	// Pool protection keeps the pool, Terminating, while web2 holds an address from it, and
	// its routes stay; once web2 goes, the pool goes and so do the routes.
	x.CreateService(framework.Service{Name: "web2", Selector: "web", Type: corev1.ServiceTypeLoadBalancer})
	p2 := netip.PrefixFrom(netip.MustParseAddr(x.WaitLoadBalancerIPs("web2", 1, 60*time.Second)[0]), 32)
	x.waitNexthops(p2, x.nodeIPs(), 60*time.Second)
	c := x.LoadstoneClient()
	var pool v1beta1.IPAddressPool
	if err := c.Get(x.Context(), client.ObjectKey{Name: lab.SamplePoolName}, &pool); err != nil {
		t.Fatal(err)
	}
	restore := pool.DeepCopy()
	restore.ObjectMeta = metav1.ObjectMeta{Name: pool.Name, Labels: pool.Labels, Annotations: pool.Annotations}
	if err := c.Delete(x.Context(), &pool); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		x.Eventually("the lab pool gone before it is put back", 60*time.Second, func() (bool, error) {
			err := c.Get(x.Context(), client.ObjectKey{Name: lab.SamplePoolName}, &v1beta1.IPAddressPool{})
			return apierrors.IsNotFound(err), err
		})
		if err := c.Create(x.Context(), restore); err != nil {
			t.Errorf("put the lab pool back: %v", err)
		}
	})
	x.Eventually("the deleted pool Terminating, kept by web2", 30*time.Second, func() (bool, error) {
		var got v1beta1.IPAddressPool
		if err := c.Get(x.Context(), client.ObjectKey{Name: lab.SamplePoolName}, &got); err != nil {
			return false, err
		}
		return got.DeletionTimestamp != nil, nil
	})
	x.waitNexthops(p2, x.nodeIPs(), 10*time.Second)
	if got := x.WaitLoadBalancerIPs("web2", 1, 10*time.Second); got[0] != p2.Addr().String() {
		t.Fatalf("web2 lost its IP %s to the pool deletion: now %v", p2.Addr(), got)
	}
	if err := x.Client.CoreV1().Services(x.Namespace).Delete(x.Context(), "web2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	x.waitNexthops(p2, nil, 60*time.Second)
}

// strictBFD: a peer whose BFD session is not Up gets no routes, though its BGP session
// runs; once BFD comes up, the routes follow. BFD is kept down by dropping its packets in
// node1's namespace.
func TestStrictBFD(t *testing.T) {
	x := setupBGP(t, bgpOptions{})
	nodes := x.Lab.Nodes()
	x.CreateDeployment(framework.Deployment{Name: "web", Replicas: 2})
	p := x.lbService("web", corev1.ServiceExternalTrafficPolicyCluster)
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)

	const table = "ls_e2e_strict"
	for _, cmd := range [][]string{
		{"add", "table", "inet", table},
		{"add", "chain", "inet", table, "in", "{ type filter hook input priority -300; }"},
		{"add", "rule", "inet", table, "in", "udp", "dport", "3784", "drop"},
	} {
		if out, err := framework.Exec(nodes[0].Name, append([]string{"nft"}, cmd...)...); err != nil {
			t.Fatalf("block BFD on node1: %v: %s", err, out)
		}
	}
	blocked := true
	unblock := func() {
		if blocked {
			if out, err := framework.Exec(nodes[0].Name, "nft", "delete table inet "+table); err != nil {
				t.Errorf("unblock BFD on node1: %v: %s", err, out)
			}
			blocked = false
		}
	}
	t.Cleanup(unblock)
	prof := x.Namespace + "-fast"
	x.CreateObject(framework.BFDProfile(prof, 100, 100, 3))
	x.UpdateObject(x.Peer, func() {
		x.Peer.Spec.BFDProfile = prof
		x.Peer.Spec.StrictBFD = true
	})
	// node1's BFD cannot come up: its route goes; the others' BFD does, theirs stay.
	x.waitNexthops(p, x.nodeIPs(nodes[1:]...), 60*time.Second)
	if m := x.sessionMarks()[nodes[0].IP.String()]; !strings.HasPrefix(m, "Established") {
		t.Errorf("node1's BGP session should keep running without BFD: %s", m)
	}
	unblock()
	x.waitNexthops(p, x.nodeIPs(), 60*time.Second)
}
