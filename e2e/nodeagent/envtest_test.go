package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// eventually polls check until it succeeds or the wait bound (generous; not a timing
// assertion) runs out.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type runningAgent struct {
	cancel context.CancelFunc
	done   chan error
	once   *sync.Once
}

// stop stops the agent and waits for Run to return; it is also run at the end of the test.
func (r runningAgent) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
}

func startAgent(t *testing.T, cfg Config) runningAgent {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := runningAgent{cancel: cancel, done: make(chan error, 1), once: &sync.Once{}}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestAgentAgainstAPIServer runs the agent against a real kube-apiserver, with its node
// netns created by the test, through a pod's whole life: Pending -> Running/Ready ->
// readiness flips -> agent restart (re-adoption, and cleanup of a pod deleted meanwhile)
// -> graceful deletion (still serving while terminating) -> deleted, netns gone.
func TestAgentAgainstAPIServer(t *testing.T) {
	requireRoot(t)
	env := testenv.Start(t, nodeAuthz)
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	nodeName := "lab-node7"
	agentClient := nodeClient(t, env.Config, nodeName)
	ctx := context.Background()
	suffix := randomSuffix(t)
	plain := namespaces{dir: DefaultNetnsDir}
	nodeNetnsName := "lst-" + suffix + "-node"
	nodeNS := testNetns(t, plain, nodeNetnsName)
	prefix := "lst-" + suffix + "-p-"
	t.Cleanup(func() {
		// Leftovers of a failed run, by prefix.
		entries, _ := os.ReadDir(DefaultNetnsDir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				_ = plain.Delete(e.Name())
			}
		}
	})

	stateDir := t.TempDir()
	cfg := Config{
		Client:             agentClient,
		NodeName:           nodeName,
		NodeIPs:            []netip.Addr{netip.MustParseAddr("192.0.2.17"), netip.MustParseAddr("2001:db8:1::17")},
		PodCIDRs:           []netip.Prefix{netip.MustParsePrefix("198.18.7.0/24"), netip.MustParsePrefix("2001:db8:1000:7::/64")},
		StateDir:           stateDir,
		NodeNetnsPath:      filepath.Join(DefaultNetnsDir, nodeNetnsName),
		NetnsPrefix:        prefix,
		MarkNotReadyOnExit: true,
		LeaseDuration:      8 * time.Second,
		StatusInterval:     2 * time.Second,
		Logger:             slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	agent := startAgent(t, cfg)

	// Node registration and lease.
	eventually(t, "node registered and ready", func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if fmt.Sprint(n.Spec.PodCIDRs) != "[198.18.7.0/24 2001:db8:1000:7::/64]" {
			return fmt.Errorf("podCIDRs %v", n.Spec.PodCIDRs)
		}
		if n.Labels[corev1.LabelHostname] != nodeName || n.Labels[corev1.LabelOSStable] != "linux" {
			return fmt.Errorf("labels %v", n.Labels)
		}
		if len(n.Status.Addresses) != 3 || n.Status.Addresses[0].Address != "192.0.2.17" {
			return fmt.Errorf("addresses %v", n.Status.Addresses)
		}
		if n.Status.NodeInfo.KubeletVersion != DefaultKubeletVersion {
			return fmt.Errorf("kubelet version %q", n.Status.NodeInfo.KubeletVersion)
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("not Ready")
	})
	var firstRenew time.Time
	eventually(t, "node lease", func() error {
		l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != nodeName || l.Spec.RenewTime == nil {
			return fmt.Errorf("lease spec %+v", l.Spec)
		}
		firstRenew = l.Spec.RenewTime.Time
		return nil
	})
	eventually(t, "node lease renewed", func() error {
		l, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !l.Spec.RenewTime.After(firstRenew) {
			return errors.New("not renewed yet")
		}
		return nil
	})

	// Bridge in the node netns.
	nh, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	if _, err := nh.LinkByName(DefaultBridge); err != nil {
		t.Fatalf("bridge: %v", err)
	}

	newPod := func(name string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName:                      nodeName,
				TerminationGracePeriodSeconds: ptr(int64(30)),
				Containers: []corev1.Container{{
					Name:  "web",
					Image: "nginx",
					Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 8080},
						{ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
					},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
						PeriodSeconds:    1,
						FailureThreshold: 1,
					},
				}, {
					Name: "sidecar",
					// Not in the image catalog: a built-in workload container (busybox
					// would run the host's sh, which exits at once without a command).
					Image: "registry.example/sidecar:1",
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
						PeriodSeconds: 1,
					},
				}},
			},
		}
	}
	for _, name := range []string{"web", "gone"} {
		if _, err := client.CoreV1().Pods("default").Create(ctx, newPod(name), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}

	waitPod := func(name, what string, ok func(*corev1.Pod) error) *corev1.Pod {
		t.Helper()
		var pod *corev1.Pod
		eventually(t, "pod "+name+" "+what, func() error {
			p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			pod = p
			return ok(p)
		})
		return pod
	}
	running := func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning || !podReady(p) {
			return fmt.Errorf("phase %s, ready %v", p.Status.Phase, podReady(p))
		}
		if len(p.Status.PodIPs) != 2 {
			return fmt.Errorf("podIPs %v", p.Status.PodIPs)
		}
		return nil
	}
	web := waitPod("web", "running and ready", running)
	gone := waitPod("gone", "running and ready", running)

	webIP := netip.MustParseAddr(web.Status.PodIP)
	if !cfg.PodCIDRs[0].Contains(webIP) || !cfg.PodCIDRs[1].Contains(netip.MustParseAddr(web.Status.PodIPs[1].IP)) {
		t.Fatalf("pod IPs %v outside the pod CIDRs", web.Status.PodIPs)
	}
	if web.Status.PodIP == gone.Status.PodIP {
		t.Fatalf("two pods share IP %s", web.Status.PodIP)
	}
	if web.Status.HostIP != "192.0.2.17" || len(web.Status.ContainerStatuses) != 2 || !web.Status.ContainerStatuses[0].Ready {
		t.Fatalf("status: hostIP %s, containers %+v", web.Status.HostIP, web.Status.ContainerStatuses)
	}
	// A node identity may not annotate pods: the names are NetnsName's.
	if v, ok := web.Annotations[NetnsAnnotation]; ok {
		t.Errorf("pod annotated %q although the node may not patch pods", v)
	}
	webNetns := NetnsName(prefix, nodeName, web.UID)
	goneNetns := NetnsName(prefix, nodeName, gone.UID)
	if b, err := os.ReadFile(filepath.Join(stateDir, "netns", "default", "web")); err != nil || strings.TrimSpace(string(b)) != webNetns {
		t.Errorf("state dir netns file: %q, %v", b, err)
	}

	// Real traffic from the node netns, both families.
	get := func(addr string) (int, string, error) {
		resp, err := httpClientIn(nodeNS, 5*time.Second).Get("http://" + addr + "/")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	for _, ip := range web.Status.PodIPs {
		code, body, err := get(netip.AddrPortFrom(netip.MustParseAddr(ip.IP), 8080).String())
		if err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v", ip.IP, code, err)
		}
		gw := "198.18.7.1:"
		if strings.Contains(ip.IP, ":") {
			gw = "[2001:db8:1000:7::1]:"
		}
		if !strings.HasPrefix(body, "pod=web node="+nodeName+" client="+gw) {
			t.Errorf("GET %s answered %q", ip.IP, body)
		}
	}
	// iproute2 sees the pod netns by the annotated name.
	if out, err := exec.Command("ip", "netns", "exec", webNetns, "ip", "-o", "addr", "show", "dev", "eth0").CombinedOutput(); err != nil || !strings.Contains(string(out), web.Status.PodIP+"/24") {
		t.Fatalf("ip netns exec %s: %v\n%s", webNetns, err, out)
	}

	// Readiness follows the probe.
	setUnhealthy := func(v string) {
		t.Helper()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, UnhealthyAnnotation, v)
		if _, err := client.CoreV1().Pods("default").Patch(ctx, "web", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setUnhealthy("true")
	waitPod("web", "not ready after failing probe", func(p *corev1.Pod) error {
		if podReady(p) {
			return errors.New("still ready")
		}
		if p.Status.ContainerStatuses[0].Ready || !p.Status.ContainerStatuses[1].Ready {
			return fmt.Errorf("container readiness %+v", p.Status.ContainerStatuses)
		}
		return nil
	})
	setUnhealthy("false")
	waitPod("web", "ready again", func(p *corev1.Pod) error {
		if !podReady(p) {
			return errors.New("not ready")
		}
		return nil
	})

	// Restart: stop the agent (pods keep their netns), force-delete "gone" meanwhile.
	agent.stop(t)
	waitPod("web", "marked not ready by the stopping agent", func(p *corev1.Pod) error {
		if podReady(p) {
			return errors.New("still ready")
		}
		return nil
	})
	if _, err := plain.Open(webNetns); err != nil {
		t.Fatalf("pod netns gone after a stop without cleanup: %v", err)
	}
	if err := client.CoreV1().Pods("default").Delete(ctx, "gone", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	agent = startAgent(t, cfg)
	readopted := waitPod("web", "ready after restart", running)
	if readopted.Status.PodIP != web.Status.PodIP {
		t.Errorf("pod IP changed across restart: %s -> %s", web.Status.PodIP, readopted.Status.PodIP)
	}
	eventually(t, "netns of the pod deleted while the agent was down removed", func() error {
		if _, err := plain.Open(goneNetns); err == nil {
			return errors.New("still there")
		}
		return nil
	})

	// Graceful deletion: terminating, still serving, then killed and deleted.
	if err := client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(3))}); err != nil {
		t.Fatal(err)
	}
	terminating := waitPod("web", "terminating", func(p *corev1.Pod) error {
		if p.DeletionTimestamp == nil {
			return errors.New("no deletionTimestamp")
		}
		return nil
	})
	if terminating.Status.Phase != corev1.PodRunning {
		t.Errorf("terminating pod phase %s", terminating.Status.Phase)
	}
	code, body, err := get(netip.AddrPortFrom(webIP, 8080).String())
	if err != nil || code != 200 || !strings.HasPrefix(body, "pod=web ") {
		t.Errorf("terminating pod not serving: %d %q %v", code, body, err)
	}
	eventually(t, "pod object deleted by the agent", func() error {
		_, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%w)", err)
	})
	if _, err := plain.Open(webNetns); err == nil {
		t.Error("pod netns still there after deletion")
	}
	if _, err := nh.LinkByName(HostVethName(web.UID)); err == nil {
		t.Error("pod veth still there after deletion")
	}
	st, err := stateStore{dir: stateDir}.Load()
	if err != nil || len(st.Pods) != 0 {
		t.Errorf("state after deletion: %+v, %v", st.Pods, err)
	}

	// A pod that "exits on SIGTERM" goes at once, despite a long grace period.
	quick := newPod("quick")
	quick.Annotations = map[string]string{ExitOnSigtermAnnotation: "true"}
	quick.Spec.TerminationGracePeriodSeconds = ptr(int64(3600))
	if _, err := client.CoreV1().Pods("default").Create(ctx, quick, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod("quick", "running and ready", running)
	if err := client.CoreV1().Pods("default").Delete(ctx, "quick", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "exit-on-sigterm pod deleted before its grace period ends", func() error {
		_, err := client.CoreV1().Pods("default").Get(ctx, "quick", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%w)", err)
	})

	// A new pod gets a new IP (released ones are reused last).
	if _, err := client.CoreV1().Pods("default").Create(ctx, newPod("web2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web2 := waitPod("web2", "running and ready", running)
	if web2.Status.PodIP == web.Status.PodIP || web2.Status.PodIP == gone.Status.PodIP {
		t.Errorf("new pod reused IP %s at once", web2.Status.PodIP)
	}

	// Stop with cleanup: everything goes.
	agent.stop(t)
	cfg.CleanupOnExit = true
	agent = startAgent(t, cfg)
	waitPod("web2", "re-adopted", running)
	web2Netns := NetnsName(prefix, nodeName, web2.UID)
	if _, err := plain.Open(web2Netns); err != nil {
		t.Fatalf("web2 netns: %v", err)
	}
	agent.stop(t)
	if _, err := plain.Open(web2Netns); err == nil {
		t.Error("pod netns left after a stop with cleanup")
	}
	if _, err := nh.LinkByName(DefaultBridge); err == nil {
		t.Error("bridge left after a stop with cleanup")
	}
	if _, err := os.Stat(filepath.Join(stateDir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("state file left after a stop with cleanup: %v", err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionFalse {
			t.Errorf("node Ready = %s after stop, want False", c.Status)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// nodeAuthz runs the API server as the lab does: Node authorizer and NodeRestriction
// admission, so the agent works with a node's own identity.
var nodeAuthz = testenv.Options{APIServerFlags: map[string]string{
	"authorization-mode":       "Node,RBAC",
	"enable-admission-plugins": "NodeRestriction",
}}

// nodeClient is a client acting as node's kubelet identity (system:node:NAME in group
// system:nodes), by impersonation from the admin config.
func nodeClient(t *testing.T, admin *rest.Config, node string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:node:" + node, Groups: []string{"system:nodes", "system:authenticated"}}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
