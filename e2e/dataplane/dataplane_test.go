package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// TestPodsMode: a Service in mode pods gets ipMode Proxy; every node's table `inet
// loadstone` carries its LB IP and kube-proxy's has no entry for it; the client reaches
// the pods; when the Service goes, so does the table (no Service uses the dataplane).
func TestPodsMode(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 2})
	ip := create(e, svc{name: "web", app: "web"})

	e.Eventually("ipMode Proxy on "+ip, 30*time.Second, func() (bool, error) {
		m := ipMode(e, "web", ip)
		return m != nil && *m == corev1.LoadBalancerIPModeProxy, nil
	})
	a := e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
	t.Logf("%s answered by %s on %s", ip, a.Pod, a.Node)
	for _, n := range e.Lab.Nodes() {
		e.Eventually("our table on "+n.Name+" carries "+ip+", kube-proxy's does not", 30*time.Second, func() (bool, error) {
			ours, err := ourTable(n.Name)
			if err != nil {
				return false, err
			}
			theirs, err := kubeProxyTable(n.Name)
			if err != nil {
				return false, err
			}
			return mentions(ours, ip) && !mentions(theirs, ip), nil
		})
	}

	if err := e.Client.CoreV1().Services(e.Namespace).Delete(e.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if others := dataplaneServices(e); len(others) > 0 {
		t.Logf("not checking that the table goes: other Services use the dataplane: %v", others)
		return
	}
	for _, n := range e.Lab.Nodes() {
		e.Eventually("no table inet loadstone on "+n.Name, 30*time.Second, func() (bool, error) {
			out, err := ourTable(n.Name)
			return err == nil && out == "", err
		})
	}
}

// dataplaneServices lists the Services of the cluster that our dataplane carries: an
// ingress IP with ipMode Proxy (mode pods, the default, or nodeport).
func dataplaneServices(e *framework.Env) []string {
	l, err := e.Client.CoreV1().Services("").List(e.Context(), metav1.ListOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	var out []string
	for _, s := range l.Items {
		if s.DeletionTimestamp != nil {
			continue
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
				out = append(out, s.Namespace+"/"+s.Name)
				break
			}
		}
	}
	return out
}

// TestLocalPreservesClientIP: with externalTrafficPolicy Local the pod sees the client's
// own address.
func TestLocalPreservesClientIP(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 2})
	ip := create(e, svc{name: "web", app: "web", local: true})
	for range 5 {
		a := e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
		host, _, err := net.SplitHostPort(a.Client)
		if err != nil || host != lab.ClientIP {
			t.Fatalf("pod %s saw client %q, want %s", a.Pod, a.Client, lab.ClientIP)
		}
	}
}

// TestNoEndpointsRejects: a port without endpoints on an announced IP (two Services
// share it) answers a connect with a TCP RST from our table, not silence.
func TestNoEndpointsRejects(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 1})
	share := map[string]string{v1beta1.AnnotationAllowSharedIP: "k"}
	ip := create(e, svc{name: "web", app: "web", annotations: share})
	share[v1beta1.AnnotationLoadBalancerIPs] = ip
	if got := create(e, svc{name: "empty", app: "nothing", port: 8081, annotations: share}); got != ip {
		t.Fatalf("empty got %s, want the shared %s", got, ip)
	}
	e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
	before, err := counter(e.Lab, "rejected")
	if err != nil {
		t.Fatal(err)
	}
	var last error
	e.Eventually("connection refused on "+ip+":8081", 30*time.Second, func() (bool, error) {
		last = dial(e.Context(), ip, 8081, 2*time.Second)
		return errors.Is(last, syscall.ECONNREFUSED), last
	})
	after, err := counter(e.Lab, "rejected")
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("refused (%v), but our rejected counter did not move (%d → %d): someone else answered", last, before, after)
	}
}

// TestSourceRanges: loadBalancerSourceRanges without the client's network drops its
// packets (counted in our table); adding the network lets it in.
func TestSourceRanges(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 1})
	ip := create(e, svc{name: "web", app: "web", sourceRanges: []string{lab.LANCIDR}})
	before, err := counter(e.Lab, "source-range-drops")
	if err != nil {
		t.Fatal(err)
	}
	e.Eventually("the client's connects dropped and counted", 60*time.Second, func() (bool, error) {
		err := dial(e.Context(), ip, 8080, time.Second)
		if err == nil {
			t.Fatalf("connected to %s from %s outside the source ranges", ip, lab.ClientIP)
		}
		n, cerr := counter(e.Lab, "source-range-drops")
		return cerr == nil && n > before, errors.Join(err, cerr)
	})
	ctx, cancel := context.WithTimeout(e.Context(), 30*time.Second)
	defer cancel()
	s := e.GetService("web")
	s.Spec.LoadBalancerSourceRanges = append(s.Spec.LoadBalancerSourceRanges, lab.ClientCIDR)
	if _, err := e.Client.CoreV1().Services(e.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.GetEventually(lab.ClientNS, url(ip, 8080), 30*time.Second)
}

// TestNodePortMode: in mode nodeport our table forwards to the NodePort of a node with
// endpoints, where that node's kube-proxy takes over; the client gets answers, and the
// table of a node without the pod holds the pod's node address with the NodePort. (The
// pod's own node DNATs to the pod directly: its own NodePort would refuse.)
func TestNodePortMode(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 1})
	ip := create(e, svc{name: "web", app: "web", mode: "nodeport"})
	np := e.GetService("web").Spec.Ports[0].NodePort
	e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
	e.WaitDeploymentReady("web", 1)
	pods, err := e.Client.CoreV1().Pods(e.Namespace).List(e.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the web pod: %v (%d pods)", err, len(pods.Items))
	}
	node := e.Lab.Nodes()[0]
	if pods.Items[0].Spec.NodeName == node.Name {
		node = e.Lab.Nodes()[1]
	}
	// Every answer, whichever node the router's ECMP or L2 sends it to.
	for i := 0; i < 20; i++ {
		if _, err := framework.Get(e.Context(), lab.ClientNS, url(ip, 8080)); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	e.Eventually("our table on "+node.Name+" forwards "+ip+" to a NodePort", 30*time.Second, func() (bool, error) {
		ours, err := ourTable(node.Name)
		if err != nil {
			return false, err
		}
		return mentions(ours, ip) && strings.Contains(ours, fmt.Sprintf(" . %d", np)), nil
	})
}

// TestIPv6: an IPv6-only Service in mode pods is reached from the client over IPv6.
func TestIPv6(t *testing.T) {
	e := framework.Setup(t)
	e.CreateDeployment(framework.Deployment{Name: "web", Replicas: 2})
	ip := create(e, svc{name: "web", app: "web", ipv6: true})
	if !strings.Contains(ip, ":") {
		t.Fatalf("LB IP %s is not IPv6", ip)
	}
	a := e.GetEventually(lab.ClientNS, url(ip, 8080), 60*time.Second)
	if host, _, err := net.SplitHostPort(a.Client); err != nil || !strings.Contains(host, ":") {
		t.Errorf("pod %s saw client %q, want an IPv6 address", a.Pod, a.Client)
	}
	for _, n := range e.Lab.Nodes() {
		e.Eventually("our table on "+n.Name+" carries "+ip, 30*time.Second, func() (bool, error) {
			ours, err := ourTable(n.Name)
			return err == nil && mentions(ours, ip), err
		})
	}
}
