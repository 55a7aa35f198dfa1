package labtest

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// clientPod runs one pod to send traffic from, and returns it.
func clientPod(e *framework.Env) corev1.Pod {
	e.T.Helper()
	e.CreateDeployment(framework.Deployment{Name: "client", Replicas: 1})
	pods := e.RunningPods("client")
	if len(pods) != 1 {
		e.T.Fatalf("client pods: %d", len(pods))
	}
	return pods[0]
}

func url(ip string, port int32) string {
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(int(port))) + "/"
}

// reachAll sends requests until every pod in want has answered, or 60 requests went by.
func reachAll(e *framework.Env, ns, u string, want []string) map[string]int {
	e.T.Helper()
	got := map[string]int{}
	for i := 0; i < 60; i++ {
		a, err := framework.Get(e.Context(), ns, u)
		if err != nil {
			e.T.Fatalf("GET %s from %s: %v", u, ns, err)
		}
		got[a.Pod]++
		all := true
		for _, p := range want {
			if got[p] == 0 {
				all = false
			}
		}
		if all {
			break
		}
	}
	return got
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Step 1: a 3-replica deployment behind a ClusterIP on 8080 → 80, reached from another pod,
// over IPv4 and IPv6; the backends see the client pod's own address (no SNAT in-cluster).
func TestClusterIPFromPod(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "nginx", Replicas: 3})
	svc := e.CreateService(framework.Service{Name: "nginx", Selector: "nginx",
		Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}})
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("dual-stack Service got ClusterIPs %v", svc.Spec.ClusterIPs)
	}
	eps := e.WaitEndpoints("nginx", 6) // 3 pods × 2 families
	backends := e.RunningPods("nginx")
	for _, p := range backends {
		for _, ip := range p.Status.PodIPs {
			if !slices.Contains(eps.Addrs, ip.IP) {
				t.Errorf("pod %s IP %s is not an endpoint (%v)", p.Name, ip.IP, eps.Addrs)
			}
		}
	}
	client := clientPod(e)
	ns := framework.PodNetns(&client)
	for _, cip := range svc.Spec.ClusterIPs {
		u := url(cip, 8080)
		first := e.GetEventually(ns, u, 30*time.Second)
		host, _, _ := net.SplitHostPort(first.Client)
		fam := netip.MustParseAddr(cip).Is6()
		var want string
		for _, ip := range client.Status.PodIPs {
			if netip.MustParseAddr(ip.IP).Is6() == fam {
				want = ip.IP
			}
		}
		if host != want {
			t.Errorf("%s: backend saw client %s, want the client pod's %s", u, first.Client, want)
		}
		got := reachAll(e, ns, u, podNames(backends))
		if !slices.Equal(keys(got), podNames(backends)) {
			t.Errorf("%s: answers from %v, want all of %v", u, got, podNames(backends))
		}
	}
}

// Step 2: scaling to 1 shrinks the endpoints and the traffic to that pod; scaling back to 3
// brings three ready endpoints that all take traffic.
func TestScaleEndpoints(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "nginx", Replicas: 3})
	svc := e.CreateService(framework.Service{Name: "nginx", Selector: "nginx"})
	e.WaitEndpoints("nginx", 3)
	client := clientPod(e)
	ns := framework.PodNetns(&client)
	u := url(svc.Spec.ClusterIP, 8080)
	e.GetEventually(ns, u, 30*time.Second)

	e.Scale("nginx", 1)
	one := e.WaitEndpoints("nginx", 1)
	e.WaitDeploymentReady("nginx", 1)
	survivors := e.RunningPods("nginx")
	if len(survivors) != 1 || survivors[0].Status.PodIP != one.Addrs[0] {
		t.Fatalf("after scale 1: endpoints %v, running pods %v", one.Addrs, podNames(survivors))
	}
	// kube-proxy follows within its sync period: wait until only the survivor answers
	// ten times in a row.
	e.Eventually("traffic only to "+survivors[0].Name, 30*time.Second, func() (bool, error) {
		got := framework.Spread(e.Context(), ns, u, 10)
		return len(got) == 1 && got[survivors[0].Name] == 10, fmt.Errorf("answers %v", got)
	})

	e.Scale("nginx", 3)
	three := e.WaitEndpoints("nginx", 3)
	if !slices.Contains(three.Addrs, one.Addrs[0]) {
		t.Errorf("scaled back to 3: endpoints %v lost the survivor %s", three.Addrs, one.Addrs[0])
	}
	e.WaitDeploymentReady("nginx", 3)
	pods := e.RunningPods("nginx")
	e.Eventually("traffic to all 3 pods", 30*time.Second, func() (bool, error) {
		got := reachAll(e, ns, u, podNames(pods))
		return slices.Equal(keys(got), podNames(pods)), fmt.Errorf("answers %v, pods %v", got, podNames(pods))
	})
}

// Step 3: a NodePort answers from the client, through the router, on every node's IPv4 and
// IPv6 address, including nodes without a pod.
func TestNodePortEveryNode(t *testing.T) {
	e := framework.Setup(t)
	nodes := e.Lab.Nodes()
	podNode := nodes[0].Name
	e.CreateDeployment(framework.Deployment{Name: "nginx", Replicas: 1,
		NodeSelector: map[string]string{"kubernetes.io/hostname": podNode}})
	e.CreateService(framework.Service{Name: "nginx", Selector: "nginx", Type: corev1.ServiceTypeNodePort,
		Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}})
	e.WaitEndpoints("nginx", 2)
	svc := e.GetService("nginx")
	np := svc.Spec.Ports[0].NodePort
	if np == 0 {
		t.Fatal("no nodePort allocated")
	}
	pod := e.RunningPods("nginx")[0]
	for _, n := range nodes {
		for _, ip := range []netip.Addr{n.IP, n.IP6} {
			a := e.GetEventually(lab.ClientNS, url(ip.String(), np), 30*time.Second)
			if a.Pod != pod.Name || a.Node != podNode {
				t.Errorf("%s:%d answered by %s on %s, want %s on %s", ip, np, a.Pod, a.Node, pod.Name, podNode)
			}
			t.Logf("%s (pod here: %v) %s:%d -> %s on %s, seen from %s", n.Name, n.Name == podNode, ip, np, a.Pod, a.Node, a.Client)
		}
	}
}

// Step 4: type LoadBalancer gets an IP from the lab's pool, and the client reaches the pods
// through it. Runs once Loadstone's controller and speaker are in the tree.
func TestLoadBalancer(t *testing.T) {
	e := framework.Setup(t)
	repo := e.Lab.RepoRoot()
	for _, prog := range []string{"controller", "speaker"} {
		if !lab.HasMainPackage(repo, "./"+prog) {
			t.Skipf("Loadstone's %s is not in the tree yet (no main package in ./%s)", prog, prog)
		}
	}
	for part, why := range e.Lab.State().Missing {
		t.Errorf("lab part %s is not running: %s", part, why)
	}
	if t.Failed() {
		t.FailNow()
	}
	e.CreateDeployment(framework.Deployment{Name: "nginx", Replicas: 3})
	e.CreateService(framework.Service{Name: "nginx", Selector: "nginx", Type: corev1.ServiceTypeLoadBalancer,
		Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}})
	ips := e.WaitLoadBalancerIPs("nginx", 2, 60*time.Second)
	pods := e.RunningPods("nginx")
	macs := map[string]string{} // eth0 MAC -> node
	for _, n := range e.Lab.Nodes() {
		mac, err := framework.LinkMAC(n.Name, lab.NodeLink)
		if err != nil {
			t.Fatal(err)
		}
		macs[mac] = n.Name
	}
	for _, s := range ips {
		ip := netip.MustParseAddr(s)
		pool := netip.MustParsePrefix(lab.PoolCIDR)
		if ip.Is6() {
			pool = netip.MustParsePrefix(lab.PoolCIDR6)
		}
		if !pool.Contains(ip) {
			t.Errorf("load-balancer IP %s is not from the lab pool %s", ip, pool)
		}
		u := url(ip.String(), 8080)
		e.GetEventually(lab.ClientNS, u, 60*time.Second)
		got := reachAll(e, lab.ClientNS, u, podNames(pods))
		if !slices.Equal(keys(got), podNames(pods)) {
			t.Errorf("answers through %s: %v, want all of %v", ip, got, podNames(pods))
		}
		// The router learned the IP at one node's MAC: that node's speaker announces it.
		neigh, err := framework.Neighbors(lab.RouterNS)
		if err != nil {
			t.Fatal(err)
		}
		owner := ""
		for _, nb := range neigh {
			if nb.Dst == ip.String() && nb.LLAddr != "" {
				owner = macs[nb.LLAddr]
				if owner == "" {
					t.Errorf("router has %s at %s, which is no node's eth0", ip, nb.LLAddr)
				}
			}
		}
		t.Logf("%s: announced by %s, answers %v", ip, owner, got)
		if owner == "" && !t.Failed() {
			t.Errorf("router has no neighbour entry for %s", ip)
		}
	}
}
