package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// forwardIntoNetns listens on 127.0.0.1 inside ns and forwards every connection to target
// (dialled from the test's own netns), so a process in ns reaches the test's API server.
func forwardIntoNetns(t *testing.T, ns namespaces, nsName, target string) string {
	t.Helper()
	h, err := ns.Open(nsName)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var l net.Listener
	if err := nsthread.Do(h, func() error {
		if err := exec.Command("ip", "netns", "exec", nsName, "ip", "link", "set", "lo", "up").Run(); err != nil {
			return err
		}
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", nsName, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					t.Logf("proxy: dial %s: %v", target, err)
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			})
		}
	})
	return l.Addr().String()
}

// TestCommandUnderIPNetnsExec runs the real nodeagent binary exactly as the lab does
// (`ip netns exec NODE nodeagent --kubeconfig ... --state-dir ...`), so it runs in a private
// mount namespace and must pin pod netns in its parent's (this test's) mount namespace for
// `ip netns exec POD` to work from here. It then stops it with SIGTERM and
// --cleanup-on-exit.
func TestCommandUnderIPNetnsExec(t *testing.T) {
	requireRoot(t)
	env := testenv.Start(t, nodeAuthz)
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "nodeagent")
	build := exec.Command("go", "build", "-o", bin, "./e2e/cmd/nodeagent")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	suffix := randomSuffix(t)
	plain := namespaces{dir: DefaultNetnsDir}
	nodeNetns := "lst-" + suffix + "-node"
	_ = testNetns(t, plain, nodeNetns)
	prefix := "lst-" + suffix + "-p-"
	t.Cleanup(func() {
		entries, _ := os.ReadDir(DefaultNetnsDir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				_ = plain.Delete(e.Name())
			}
		}
	})

	apiURL, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	apiHost := apiURL.Host
	proxied := forwardIntoNetns(t, plain, nodeNetns, apiHost)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["lab"] = &clientcmdapi.Cluster{Server: "https://" + proxied, CertificateAuthorityData: env.Config.CAData}
	nodeName := "lab-node8"
	kc.AuthInfos["agent"] = &clientcmdapi.AuthInfo{
		// Credentials allowed to patch pods (TestAgentAgainstAPIServer covers a node's own
		// identity, which may not), so the netns annotation is written.
		ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData, Token: env.Config.BearerToken,
	}
	kc.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "agent"}
	kc.CurrentContext = "lab"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("ip", "netns", "exec", nodeNetns, bin,
		"--kubeconfig", kubeconfig,
		"--node-name", nodeName,
		"--node-ip", "192.0.2.18", "--node-ip6", "2001:db8:1::18",
		"--pod-cidr", "198.18.8.0/24", "--pod-cidr6", "2001:db8:1000:8::/64",
		"--state-dir", filepath.Join(dir, "state"),
		"--netns-prefix", prefix,
		"--cleanup-on-exit",
	)
	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			if err := <-exited; err != nil {
				t.Logf("agent killed: %v", err)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("agent log:\n%s", b)
		}
	})

	eventually(t, "node ready", func() error {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("not ready")
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:   nodeName,
			Containers: []corev1.Container{{Name: "c", Image: "x", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}},
		},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	eventually(t, "pod running", func() error {
		p, err := client.CoreV1().Pods("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || !podReady(p) || p.Annotations[NetnsAnnotation] == "" {
			return fmt.Errorf("phase %s ready %v annotations %v", p.Status.Phase, podReady(p), p.Annotations)
		}
		got = p
		return nil
	})
	podNetns := got.Annotations[NetnsAnnotation]

	// From this (host) mount namespace: the pod netns is there by name, and its workload
	// answers a client in the node netns.
	out, err := exec.Command("ip", "netns", "exec", podNetns, "ip", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), got.Status.PodIP+"/24") {
		t.Fatalf("ip netns exec %s from the host: %v\n%s", podNetns, err, out)
	}
	nodeH, err := plain.Open(nodeNetns)
	if err != nil {
		t.Fatal(err)
	}
	defer nodeH.Close()
	conn, err := dialIn(ctx, nodeH, "tcp", netip.AddrPortFrom(netip.MustParseAddr(got.Status.PodIP), 80).String())
	if err != nil {
		t.Fatalf("connect to pod: %v", err)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
	body, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.Contains(string(body), "pod=echo node="+nodeName+" client=198.18.8.1:") {
		t.Fatalf("answer %q", body)
	}

	// SIGTERM with --cleanup-on-exit: the agent exits 0 and leaves nothing behind.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("agent exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("agent did not exit after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(DefaultNetnsDir, podNetns)); !os.IsNotExist(err) {
		t.Errorf("pod netns left after exit with cleanup: %v", err)
	}
}
