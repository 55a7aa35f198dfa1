package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// TestKubeletAPIWithAgent runs the real kubectl against a real kube-apiserver that reaches
// a KubeletAPI serving a real Agent (programs in pods, the built-in workload) at the
// Node's InternalIP and port 10250: logs, logs -f, logs --previous of a restarted
// container, exec (exit code, stdin; in a program's container and a built-in workload's),
// port-forward to the built-in workload, and `kubectl run -i --rm` (its output through the
// logs, as kubectl falls back to when attach is refused).
func TestKubeletAPIWithAgent(t *testing.T) {
	requireRoot(t)
	requireKubectl(t)
	nodeName := "lab-node10"
	// A loopback address of its own: the API server connects to InternalIP:10250.
	var rb [2]byte
	if _, err := rand.Read(rb[:]); err != nil {
		t.Fatal(err)
	}
	nodeIP := netip.AddrFrom4([4]byte{127, 100, rb[0], rb[1] | 1})
	pki := newTestPKI(t, "kubelet-api-agent-test-ca")
	serverCert, serverKey := pki.issue(t, "kubelet", "system:node:"+nodeName, []string{"system:nodes"}, true, nodeIP.AsSlice())
	apiCert, apiKey := pki.issue(t, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, false)
	env := testenv.Start(t, kubeletClientOptions(apiCert, apiKey, pki.caFile))
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := writeAdminKubeconfig(t, env)
	ctx := context.Background()
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	suffix := randomSuffix(t)
	plain := namespaces{dir: DefaultNetnsDir}
	nodeNetnsName := "lsk-" + suffix + "-node"
	testNetns(t, plain, nodeNetnsName)
	prefix := "lsk-" + suffix + "-p-"
	t.Cleanup(func() {
		entries, _ := os.ReadDir(DefaultNetnsDir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				_ = plain.Delete(e.Name())
			}
		}
	})
	agentClient := nodeClient(t, env.Config, nodeName)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(Config{
		Client:         agentClient,
		NodeName:       nodeName,
		NodeIPs:        []netip.Addr{nodeIP},
		PodCIDRs:       []netip.Prefix{netip.MustParsePrefix("198.18.10.0/24")},
		StateDir:       t.TempDir(),
		NodeNetnsPath:  filepath.Join(DefaultNetnsDir, nodeNetnsName),
		NetnsPrefix:    prefix,
		CleanupOnExit:  true,
		LeaseDuration:  8 * time.Second,
		StatusInterval: 2 * time.Second,
		Backoff:        Backoff{Initial: time.Second, Max: 2 * time.Second, Reset: 10 * time.Minute},
		Logger:         logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopAgent := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stopAgent()
		if err := <-agentDone; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})

	api, err := NewKubeletAPI(KubeletAPIConfig{
		NodeName: nodeName, Runtime: a,
		CertFile: serverCert, KeyFile: serverKey, ClientCAFile: pki.caFile,
		Client: agentClient, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(nodeIP, KubeletAPIPort).String())
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- api.Serve(serveCtx, ln) }()
	t.Cleanup(func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	pods := admin.CoreV1().Pods("default")
	shPod := func(name, script string, restart corev1.RestartPolicy) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName: nodeName, RestartPolicy: restart, TerminationGracePeriodSeconds: ptr(int64(1)),
				// envtest has no ServiceAccount admission to add the token volume the Node
				// authorizer wants to see before the node may request a token.
				AutomountServiceAccountToken: ptr(false),
				Containers:                   []corev1.Container{{Name: "main", Image: "busybox:1.36", Command: []string{"sh", "-c", script}}},
			},
		}
	}
	for _, p := range []*corev1.Pod{
		shPod("talker", `echo started; i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done`, corev1.RestartPolicyAlways),
		shPod("crasher", `echo "instance of crasher"; exit 1`, corev1.RestartPolicyAlways),
		{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.PodSpec{NodeName: nodeName, TerminationGracePeriodSeconds: ptr(int64(1)), AutomountServiceAccountToken: ptr(false),
				Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}},
		},
	} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
	}
	for _, name := range []string{"talker", "web"} {
		eventually(t, "pod "+name+" running", func() error {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != corev1.PodRunning || !podReady(p) {
				return fmt.Errorf("phase %s, ready %v", p.Status.Phase, podReady(p))
			}
			return nil
		})
	}

	t.Run("logs", func(t *testing.T) {
		eventually(t, "talker's log through kubectl", func() error {
			out, errOut, code := kubectl(t, kubeconfig, "", "logs", "talker")
			if code != 0 || !strings.HasPrefix(out, "started\ntick 1\ntick 2\n") {
				return fmt.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			return nil
		})
	})

	t.Run("logs follow", func(t *testing.T) {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(fctx, filepath.Join(testenv.AssetsDir(), "kubectl"), "--kubeconfig", kubeconfig, "logs", "-f", "talker", "--tail=1")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		lines := bufio.NewScanner(stdout)
		prev := -1
		for range 5 { // the program writes them while we follow
			if !lines.Scan() {
				t.Fatalf("kubectl logs -f ended: %v; stderr %q", lines.Err(), errOut.String())
			}
			var n int
			if _, err := fmt.Sscanf(lines.Text(), "tick %d", &n); err != nil || (prev >= 0 && n != prev+1) {
				t.Fatalf("followed line %q after tick %d", lines.Text(), prev)
			}
			prev = n
		}
	})

	t.Run("logs previous", func(t *testing.T) {
		eventually(t, "crasher restarted", func() error {
			p, err := pods.Get(ctx, "crasher", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 {
				return fmt.Errorf("container statuses %+v", p.Status.ContainerStatuses)
			}
			return nil
		})
		out, errOut, code := kubectl(t, kubeconfig, "", "logs", "crasher", "--previous")
		if code != 0 || out != "instance of crasher\n" {
			t.Errorf("kubectl logs --previous: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		_, errOut, code = kubectl(t, kubeconfig, "", "logs", "web", "--previous")
		if code == 0 || !strings.Contains(errOut, "previous terminated container") {
			t.Errorf("kubectl logs --previous of a container never restarted: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, errOut, code := kubectl(t, kubeconfig, "", "exec", "talker", "--", "sh", "-c", "echo in $HOSTNAME; echo oops >&2; exit 4")
		if code != 4 || out != "in talker\n" || !strings.Contains(errOut, "oops") {
			t.Errorf("kubectl exec: exit %d (want 4), stdout %q, stderr %q", code, out, errOut)
		}
		out, errOut, code = kubectl(t, kubeconfig, "piped text\n", "exec", "-i", "talker", "--", "tr", "a-z", "A-Z")
		if code != 0 || out != "PIPED TEXT\n" {
			t.Errorf("kubectl exec -i: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		// The built-in workload has no program: the host's command runs in the pod netns.
		web, err := pods.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code = kubectl(t, kubeconfig, "", "exec", "web", "--", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
		if code != 0 || !strings.Contains(out, " "+web.Status.PodIP+"/") {
			t.Errorf("kubectl exec in the built-in workload's pod: exit %d, stdout %q (want %s), stderr %q", code, out, web.Status.PodIP, errOut)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		local, errOut := kubectlPortForward(t, ctx, kubeconfig, "pod/web", "80")
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for i := range 2 {
			resp, err := client.Get("http://127.0.0.1:" + local + "/" + strconv.Itoa(i))
			if err != nil {
				t.Fatalf("GET through port-forward: %v; stderr %q", err, errOut.String())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "pod=web node="+nodeName) {
				t.Errorf("body %q", body)
			}
		}
	})

	t.Run("run -i --rm", func(t *testing.T) {
		out, errOut, code := kubectl(t, kubeconfig, "", "run", "runner", "-i", "--rm", "--restart=Never", "--image=busybox:1.36",
			`--overrides={"spec":{"nodeName":"`+nodeName+`","automountServiceAccountToken":false}}`, "--pod-running-timeout=2m", "--", "sh", "-c", "echo hi from kubectl run")
		if code != 0 || !strings.Contains(out, "hi from kubectl run\n") {
			t.Errorf("kubectl run -i --rm: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		eventually(t, "runner pod deleted", func() error {
			_, err := pods.Get(ctx, "runner", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return errors.New("still there")
		})
	})
}
