package l2

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

var dual = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}

// The client reaches a dual-stack LB Service over L2, and the router resolves each IP to
// the MAC of the node that the ServiceL2Status names.
func TestReachOverL2IPv4AndIPv6(t *testing.T) {
	x := setup(t)
	ips := x.echoService("web", 2, dual, "", nil)
	for _, ip := range ips {
		t.Run(ip, func(t *testing.T) {
			a := x.GetEventually(lab.ClientNS, url(ip), 60*time.Second)
			node := x.waitAnnouncer("web", ip, "")
			r := newRouterNeigh(t, ip)
			x.waitRouterMAC(r, ip, nodeMAC(t, node))
			t.Logf("%s answered by pod %s, announced by %s", ip, a.Pod, node)
		})
	}
}

// moveCase runs one failure of the announcing node and checks that the IP moves: the status
// names another node, the router resolves to that node's MAC, and the client is served.
func moveCase(t *testing.T, act func(x *l2, node string), undo func(x *l2, node string)) {
	x := setup(t)
	ips := x.echoService("web", 3, []corev1.IPFamily{corev1.IPv4Protocol}, "", nil)
	ip := ips[0]
	x.GetEventually(lab.ClientNS, url(ip), 60*time.Second)
	old := x.waitAnnouncer("web", ip, "")
	r := newRouterNeigh(t, ip)
	x.waitRouterMAC(r, ip, nodeMAC(t, old))

	probe, err := framework.StartProbe(framework.ProbeConfig{Target: target(ip)})
	if err != nil {
		t.Fatal(err)
	}
	act(x, old)
	now := x.waitAnnouncer("web", ip, old)
	x.waitRouterMAC(r, ip, nodeMAC(t, now))
	res := probe.Stop()
	t.Logf("%s moved %s -> %s; probe: %s", ip, old, now, res)
	// Served through the new node. (Not every connection: after a link cut, the backend on
	// the cut node stays in the EndpointSlice until its Node goes NotReady.)
	x.GetEventually(lab.ClientNS, url(ip), 30*time.Second)
	if undo != nil {
		undo(x, old)
	}
}

func TestMovesOnSpeakerSIGKILL(t *testing.T) {
	moveCase(t, func(x *l2, node string) {
		x.restartSpeakerAtEnd(x.Kill("speaker-" + node))
	}, nil)
}

func TestMovesOnSpeakerSIGTERM(t *testing.T) {
	moveCase(t, func(x *l2, node string) {
		x.restartSpeakerAtEnd(x.Stop("speaker-"+node, 10*time.Second))
	}, nil)
}

func TestMovesOnLinkCut(t *testing.T) {
	moveCase(t, func(x *l2, node string) { x.CutLink(node) },
		func(x *l2, node string) { x.RestoreLink(node) })
}

// After a cut link is restored the IP settles on the elected node (the one that had it:
// ranks do not change) and stays there: the router's entry changes once and then not
// again, and only one node's status claims the IP.
func TestPartitionHealSettlesWithoutFlapping(t *testing.T) {
	x := setup(t)
	ip := x.echoService("web", 3, []corev1.IPFamily{corev1.IPv4Protocol}, "", nil)[0]
	x.GetEventually(lab.ClientNS, url(ip), 60*time.Second)
	elected := x.waitAnnouncer("web", ip, "")
	r := newRouterNeigh(t, ip)
	x.waitRouterMAC(r, ip, nodeMAC(t, elected))

	x.CutLink(elected)
	other := x.waitAnnouncer("web", ip, elected)
	x.waitRouterMAC(r, ip, nodeMAC(t, other))

	// Heal, and keep traffic flowing so the router keeps using (and re-resolving) the entry.
	probe, err := framework.StartProbe(framework.ProbeConfig{Target: target(ip)})
	if err != nil {
		t.Fatal(err)
	}
	x.RestoreLink(elected)
	restored := time.Now()
	want := nodeMAC(t, elected)
	// The sequence of MACs the router's entry names (moments without a usable entry, while
	// it re-resolves, are not owners and are skipped).
	var seq []string
	last := r.mac()
	if last != "" {
		seq = append(seq, last)
	}
	settled := time.Time{}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		m := r.mac()
		if m != last && m != "" {
			seq = append(seq, m)
			last = m
		}
		if m == want && settled.IsZero() {
			settled = time.Now()
		}
		// Watch 5 s past the moment it settled, to see flapping.
		if !settled.IsZero() && time.Since(settled) > 5*time.Second {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	res := probe.Stop()
	names := macToNode(t, x.Lab)
	var path []string
	for _, m := range seq {
		path = append(path, names[m])
	}
	if !settled.IsZero() {
		t.Logf("router entry for %s went %v, on %s %v after the link came back; probe: %s", ip, path, elected, settled.Sub(restored).Round(time.Millisecond), res)
	} else {
		t.Logf("router entry for %s went %v; probe: %s", ip, path, res)
	}
	if settled.IsZero() {
		t.Fatalf("never settled on the elected node %s: %v", elected, path)
	}
	if len(seq) > 2 || seq[len(seq)-1] != want {
		t.Errorf("flapping after the heal: %v (want %s then %s)", path, other, elected)
	}
	x.Eventually("one status claims "+ip, 30*time.Second, func() (bool, error) {
		n, err := x.announcer("web", ip)
		return err == nil && n == elected, err
	})
}

// externalTrafficPolicy Local: the IP is announced by the node with the endpoint, and
// moves with it.
func TestLocalTrafficMovesToNodeWithEndpoints(t *testing.T) {
	x := setup(t)
	nodes := x.Lab.Nodes()
	first, second := nodes[0].Name, nodes[1].Name
	ip := x.echoService("local", 1, []corev1.IPFamily{corev1.IPv4Protocol}, corev1.ServiceExternalTrafficPolicyLocal,
		map[string]string{corev1.LabelHostname: first})[0]
	x.GetEventually(lab.ClientNS, url(ip), 60*time.Second)
	if n := x.waitAnnouncer("local", ip, ""); n != first {
		x.Eventually("announcer "+first, 30*time.Second, func() (bool, error) {
			n, err := x.announcer("local", ip)
			return n == first, err
		})
	}
	r := newRouterNeigh(t, ip)
	x.waitRouterMAC(r, ip, nodeMAC(t, first))

	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"nodeSelector":{%q:%q}}}}}`, corev1.LabelHostname, second)
	if _, err := x.Client.AppsV1().Deployments(x.Namespace).Patch(x.Context(), "local", types.StrategicMergePatchType,
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	x.Eventually("announcer "+second, 90*time.Second, func() (bool, error) {
		n, err := x.announcer("local", ip)
		return n == second, err
	})
	x.waitRouterMAC(r, ip, nodeMAC(t, second))
	a := x.GetEventually(lab.ClientNS, url(ip), 60*time.Second)
	t.Logf("served by pod %s on %s", a.Pod, second)
}
