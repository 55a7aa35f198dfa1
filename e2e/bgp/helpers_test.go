package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// sessionWait bounds the wait for the speakers' BGP sessions to come up.
const sessionWait = 90 * time.Second

// bgpEnv is one test's handle: the framework Env and the BGP objects it created.
type bgpEnv struct {
	*framework.Env
	Peer *v1beta1.BGPPeer
	Adv  *v1beta1.BGPAdvertisement
}

// bgpOptions tune setupBGP.
type bgpOptions struct {
	// BFD gives the peer a BFD profile of 100 ms × 3 (the router's).
	BFD bool
	// GracefulRestart sets the peer's gracefulRestart.
	GracefulRestart bool
}

// setupBGP creates (for this test; removed at its end) a BGPPeer from every node to the
// lab router over IPv4 and a BGPAdvertisement of the lab pool, then waits until every
// node's session is Established. It skips the test when no session comes up: the speaker
// does not do BGP yet.
func setupBGP(t testing.TB, o bgpOptions) *bgpEnv {
	t.Helper()
	e := framework.Setup(t)
	x := &bgpEnv{Env: e}
	name := e.Namespace
	bfd := ""
	if o.BFD {
		bfd = name + "-fast"
		e.CreateObject(framework.BFDProfile(bfd, 100, 100, 3))
	}
	x.Peer = framework.RouterPeer(name, false, bfd)
	x.Peer.Spec.GracefulRestart = o.GracefulRestart
	e.CreateObject(x.Peer)
	x.Adv = framework.BGPAdvertisement(name, lab.SamplePoolName)
	e.CreateObject(x.Adv)
	n := len(e.Lab.Nodes())
	if err := framework.Poll(e.Context(), sessionWait, 500*time.Millisecond, func() (bool, error) {
		return x.establishedNodes() == n, nil
	}); err != nil {
		t.Fatalf("BGP sessions from %d of %d nodes after %v: %v", x.establishedNodes(), n, sessionWait, err)
	}
	if o.BFD {
		e.WaitBFDUp(n)
	}
	return x
}

// establishedNodes counts the nodes with an Established IPv4 session on the router.
func (x *bgpEnv) establishedNodes() int {
	peers, err := x.BGPNeighbors("ipv4")
	if err != nil {
		return 0
	}
	c := 0
	for _, nd := range x.Lab.Nodes() {
		if p, ok := peers[nd.IP.String()]; ok && p.State == "Established" {
			c++
		}
	}
	return c
}

// nodeIPs are the nodes' IPv4 addresses, sorted.
func (x *bgpEnv) nodeIPs(nodes ...lab.Node) []string {
	if len(nodes) == 0 {
		nodes = x.Lab.Nodes()
	}
	var out []string
	for _, n := range nodes {
		out = append(out, n.IP.String())
	}
	slices.Sort(out)
	return out
}

// lbService creates a LoadBalancer Service "name" in front of pods labelled app=name and
// returns its IPv4 LB IP as a /32.
func (x *bgpEnv) lbService(name string, etp corev1.ServiceExternalTrafficPolicy) netip.Prefix {
	x.T.Helper()
	x.CreateService(framework.Service{Name: name, Selector: name, Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp})
	ip := x.WaitLoadBalancerIPs(name, 1, 60*time.Second)[0]
	return netip.PrefixFrom(netip.MustParseAddr(ip), 32)
}

// createPod creates an echo pod labelled app=app bound to a node.
func (x *bgpEnv) createPod(name, app, node string) {
	x.T.Helper()
	grace := int64(2)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: x.Namespace, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{Name: "echo", Image: "lab/echo",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}}}}}}
	if _, err := x.Client.CoreV1().Pods(x.Namespace).Create(x.Context(), p, metav1.CreateOptions{}); err != nil {
		x.T.Fatalf("create pod %s: %v", name, err)
	}
}

// waitNexthops waits until the router routes p over exactly the given gateways.
func (x *bgpEnv) waitNexthops(p netip.Prefix, want []string, timeout time.Duration) {
	x.T.Helper()
	x.Eventually(fmt.Sprintf("router next hops %v for %s", want, p), timeout, func() (bool, error) {
		rs, err := framework.KernelRoutes(lab.RouterNS, p)
		if err != nil {
			return false, err
		}
		got := framework.RouteGateways(rs)
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Errorf("next hops %v", got)
	})
}

// sessionMarks returns, per node address, what changes when a session is reset.
func (x *bgpEnv) sessionMarks() map[string]string {
	x.T.Helper()
	ss, err := x.BGPSessions()
	if err != nil {
		x.T.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range x.nodeIPs() {
		s := ss[a]
		// Not the established epoch: FRR derives it from the uptime at each query, so it
		// moves by a second between two queries of the same session. A reset shows in
		// the counters.
		out[a] = fmt.Sprintf("%s established=%d dropped=%d", s.State, s.EstablishedCount, s.DroppedCount)
	}
	return out
}

func url(p netip.Prefix) string {
	return "http://" + net.JoinHostPort(p.Addr().String(), "8080") + "/"
}

func hasAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// steady waits until the LB IP answers every one of 30 requests in a row: the router
// spreads connections over every node, and each node's kube-proxy programs the IP on its
// own schedule (up to its 1 s minimum sync period after the status change), so the first
// answer does not yet mean every path serves.
func (x *bgpEnv) steady(p netip.Prefix) {
	x.T.Helper()
	x.GetEventually(lab.ClientNS, url(p), 30*time.Second)
	x.Eventually("30 answers in a row from "+url(p), 30*time.Second, func() (bool, error) {
		s := framework.Spread(x.Context(), lab.ClientNS, url(p), 30)
		return s[""] == 0, nil
	})
}
