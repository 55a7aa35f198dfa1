package labtest

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// The probe loop sees a silent link cut of the node it goes through as a gap that closes
// after the link is restored, over TCP, HTTP and UDP echo.
func TestProbeMeasuresLinkCut(t *testing.T) {
	e := framework.Setup(t)
	nodes := e.Lab.Nodes()
	podNode, via := nodes[0], nodes[1]
	e.CreateDeployment(framework.Deployment{Name: "echo", Replicas: 1, UDPPort: 5353,
		NodeSelector: map[string]string{"kubernetes.io/hostname": podNode.Name}})
	e.CreateService(framework.Service{Name: "echo", Selector: "echo", Type: corev1.ServiceTypeNodePort, UDPPort: 5353})
	e.WaitEndpoints("echo", 1)
	svc := e.GetService("echo")
	var tcpPort, udpPort int32
	for _, p := range svc.Spec.Ports {
		if p.Protocol == corev1.ProtocolUDP {
			udpPort = p.NodePort
		} else {
			tcpPort = p.NodePort
		}
	}
	tcpTarget := net.JoinHostPort(via.IP.String(), strconv.Itoa(int(tcpPort)))
	udpTarget := net.JoinHostPort(via.IP.String(), strconv.Itoa(int(udpPort)))
	e.GetEventually(lab.ClientNS, "http://"+tcpTarget+"/", 30*time.Second)
	e.Eventually("UDP echo through "+udpTarget, 30*time.Second, func() (bool, error) {
		got, err := framework.UDPEcho(lab.ClientNS, udpTarget, "hello", time.Second)
		return err == nil && strings.Contains(got, "hello"), err
	})

	for _, mode := range []struct {
		name   string
		mode   framework.ProbeMode
		target string
	}{
		{"tcp", framework.ProbeTCP, tcpTarget},
		{"http", framework.ProbeHTTP, tcpTarget},
		{"udp", framework.ProbeUDP, udpTarget},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p, err := framework.StartProbe(framework.ProbeConfig{Target: mode.target, Mode: mode.mode,
				Interval: 2 * time.Millisecond, Timeout: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			e.CutLink(via.Name)
			time.Sleep(500 * time.Millisecond)
			e.RestoreLink(via.Name)
			// Wait for a run of successes after the restore before stopping.
			time.Sleep(time.Second)
			r := p.Stop()
			t.Logf("%s probe: %s", mode.name, r)
			if r.OK == 0 || r.Failed == 0 {
				t.Fatalf("probe saw no success or no failure: %s", r)
			}
			if r.Open {
				t.Fatalf("service did not come back after the link was restored: %s", r)
			}
			if len(r.Gaps) == 0 || r.MaxGap() == 0 {
				t.Fatalf("no gap measured: %s", r)
			}
			if mode.mode == framework.ProbeHTTP && len(r.Answers) == 0 {
				t.Errorf("HTTP probe parsed no answers: %s", r)
			}
		})
	}
}

// Stopping a node's processes makes its Node NotReady; restarting them brings it back.
func TestStopAndRestartNode(t *testing.T) {
	e := framework.Setup(t)
	n := e.Lab.Nodes()[len(e.Lab.Nodes())-1].Name
	ready := func(want bool) func() (bool, error) {
		return func() (bool, error) {
			node, err := e.Client.CoreV1().Nodes().Get(context.Background(), n, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return lab.NodeReady(node) == want, nil
		}
	}
	stopped := e.StopNode(n, 5*time.Second)
	for _, name := range []string{"nodeagent-" + n, "kube-proxy-" + n} {
		if p, ok := e.Lab.Proc(name); ok && p.Alive() {
			t.Errorf("%s still running after StopNode", name)
		}
	}
	e.Eventually(n+" NotReady", 60*time.Second, ready(false))
	e.RestartNode(stopped)
	e.Eventually(n+" Ready again", 60*time.Second, ready(true))
	for _, name := range []string{"nodeagent-" + n, "kube-proxy-" + n} {
		if p, ok := e.Lab.Proc(name); !ok || !p.Alive() {
			t.Errorf("%s not running after RestartNode", name)
		}
	}
}

// The router's FRR answers vtysh in JSON, and its kernel has learned the nodes' MACs.
func TestRouterObservability(t *testing.T) {
	e := framework.Setup(t)
	if _, err := e.BGPNeighbors("ipv4"); err != nil {
		t.Errorf("BGP summary: %v", err)
	}
	if _, err := e.BFDPeers(); err != nil {
		t.Errorf("BFD peers: %v", err)
	}
	n := e.Lab.Nodes()[0]
	if _, err := framework.Exec(lab.RouterNS, "ping", "-c", "1", "-W", "2", n.IP.String()); err != nil {
		t.Fatal(err)
	}
	mac, err := framework.LinkMAC(n.Name, lab.NodeLink)
	if err != nil {
		t.Fatal(err)
	}
	neigh, err := framework.Neighbors(lab.RouterNS)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, nb := range neigh {
		if nb.Dst == n.IP.String() {
			found = nb.LLAddr == mac
			if !found {
				t.Errorf("router has %s at %s, node's eth0 is %s", nb.Dst, nb.LLAddr, mac)
			}
		}
	}
	if !found && !t.Failed() {
		t.Errorf("router has no neighbour entry for %s: %+v", n.IP, neigh)
	}
	rs, err := framework.KernelRoutes(lab.RouterNS, n.PodCIDR)
	if err != nil || len(rs) != 1 || rs[0].Gateway != n.IP.String() {
		t.Errorf("router route to %s: %+v, %v", n.PodCIDR, rs, err)
	}
}

// The router peer configuration the framework offers is valid for the API server.
func TestRouterPeerYAMLIsValid(t *testing.T) {
	e := framework.Setup(t)
	for _, v6 := range []bool{false, true} {
		name := "lab-router-v4"
		if v6 {
			name = "lab-router-v6"
		}
		objs, err := lab.DecodeYAML([]byte(framework.RouterPeerYAML(name, v6)))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			o.SetName(o.GetName() + "-dryrun")
			a, err := lab.NewApplier(e.Config)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.DryRun(e.Context(), o); err != nil {
				t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
}
