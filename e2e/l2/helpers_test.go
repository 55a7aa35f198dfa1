package l2

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// l2 is one test's handle: the framework Env plus a client that knows Loadstone's types.
type l2 struct {
	*framework.Env
	c client.Client
}

func setup(t testing.TB) *l2 {
	e := framework.Setup(t)
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(e.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return &l2{Env: e, c: c}
}

// echoService creates an echo deployment and a LoadBalancer Service in front of it, waits
// for its LB IPs (one per family asked) and returns them.
func (x *l2) echoService(name string, replicas int32, families []corev1.IPFamily, etp corev1.ServiceExternalTrafficPolicy, nodeSel map[string]string) []string {
	x.T.Helper()
	x.CreateDeployment(framework.Deployment{Name: name, Replicas: replicas, NodeSelector: nodeSel})
	x.CreateService(framework.Service{Name: name, Selector: name, Type: corev1.ServiceTypeLoadBalancer,
		Families: families, ExternalTrafficPolicy: etp})
	n := len(families)
	if n == 0 {
		n = 1
	}
	return x.WaitLoadBalancerIPs(name, n, 60*time.Second)
}

func url(ip string) string { return "http://" + net.JoinHostPort(ip, "8080") + "/" }

func target(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(8080)) }

// announcer returns the node whose ServiceL2Status lists ip for service, or "" (and an
// error when more than one node claims it).
func (x *l2) announcer(service, ip string) (string, error) {
	var l v1beta1.ServiceL2StatusList
	if err := x.c.List(context.Background(), &l, client.InNamespace(x.Namespace)); err != nil {
		return "", err
	}
	var nodes []string
	for _, s := range l.Items {
		if s.Status.ServiceName == service && slices.Contains(s.Status.IPs, ip) {
			nodes = append(nodes, s.Status.Node)
		}
	}
	switch len(nodes) {
	case 0:
		return "", fmt.Errorf("no ServiceL2Status lists %s", ip)
	case 1:
		return nodes[0], nil
	}
	return "", fmt.Errorf("several nodes claim %s: %v", ip, nodes)
}

// waitAnnouncer waits until exactly one node's status lists ip and returns it.
func (x *l2) waitAnnouncer(service, ip string, not string) string {
	x.T.Helper()
	var node string
	x.Eventually("announcer of "+ip+" other than "+not, 60*time.Second, func() (bool, error) {
		n, err := x.announcer(service, ip)
		node = n
		return err == nil && n != not, err
	})
	return node
}

// nodeMAC is the MAC of a node's LAN interface.
func nodeMAC(t testing.TB, node string) string {
	t.Helper()
	m, err := framework.LinkMAC(node, lab.NodeLink)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(strings.TrimSpace(m))
}

// macToNode maps LAN MACs to node names.
func macToNode(t testing.TB, l *lab.Lab) map[string]string {
	out := map[string]string{}
	for _, n := range l.Nodes() {
		out[nodeMAC(t, n.Name)] = n.Name
	}
	return out
}

// routerNeigh reads the router's neighbour entry for ip through netlink (cheap enough to
// sample every millisecond).
type routerNeigh struct {
	h  *netlink.Handle
	ip net.IP
}

func newRouterNeigh(t testing.TB, ip string) *routerNeigh {
	t.Helper()
	ns, err := netns.GetFromName(lab.RouterNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &routerNeigh{h: h, ip: net.ParseIP(ip)}
}

// mac returns the router's current MAC for the IP ("" when it has none).
func (r *routerNeigh) mac() string {
	fam := netlink.FAMILY_V4
	if r.ip.To4() == nil {
		fam = netlink.FAMILY_V6
	}
	ns, err := r.h.NeighList(0, fam)
	if err != nil {
		return ""
	}
	for _, n := range ns {
		if n.IP.Equal(r.ip) && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 && len(n.HardwareAddr) == 6 {
			return n.HardwareAddr.String()
		}
	}
	return ""
}

// waitRouterMAC waits until the router resolves ip to mac (sending traffic meanwhile so
// that it resolves at all).
func (x *l2) waitRouterMAC(r *routerNeigh, ip, mac string) {
	x.T.Helper()
	x.Eventually(fmt.Sprintf("router resolves %s to %s", ip, mac), 60*time.Second, func() (bool, error) {
		if r.mac() == mac {
			return true, nil
		}
		_, _ = framework.UDPEcho(lab.ClientNS, target(ip), "x", 50*time.Millisecond) // any packet triggers resolution
		_, err := framework.Get(x.Context(), lab.ClientNS, url(ip))
		got := r.mac()
		if got == mac {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("router has %q (GET: %w)", got, err)
		}
		return false, fmt.Errorf("router has %q", got)
	})
}

// restartSpeakerAtEnd makes sure a stopped speaker runs again when the test ends.
func (x *l2) restartSpeakerAtEnd(p lab.Proc) {
	x.T.Cleanup(func() {
		if q, ok := x.Lab.Proc(p.Name); ok && q.Alive() {
			return
		}
		if _, err := x.Lab.StartProc(p); err != nil {
			x.T.Errorf("restart %s: %v", p.Name, err)
		}
	})
}
