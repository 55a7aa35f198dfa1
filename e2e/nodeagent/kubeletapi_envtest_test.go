package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/loadstone-lb/loadstone/internal/nsthread"
	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// testPKI is a CA with the certificates a kubelet API test needs, written to files.
type testPKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newTestPKI(t *testing.T, cn string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), caCert: cert, caKey: key}
	p.caFile = filepath.Join(p.dir, "ca.crt")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes NAME.crt and NAME.key: a server certificate for ips, or a client
// certificate for user cn in groups orgs.
func (p *testPKI) issue(t *testing.T, name, cn string, orgs []string, server bool, ips ...net.IP) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses: ips,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// processRuntime is a Runtime whose "containers" are host processes run in a pod network
// namespace the test made (nsenter --net): real processes, sockets and files, without the
// agent's pod lifecycle, so the kubelet API is tested on its own. Logs are files the test
// writes; attach runs the pod's command with the attached streams.
type processRuntime struct {
	mu      sync.Mutex
	pods    map[types.NamespacedName]types.UID
	netns   map[types.UID]string
	logDir  string
	running atomic.Bool
}

func (p *processRuntime) PodUID(namespace, name string) (types.UID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	uid, ok := p.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	return uid, ok
}

func (p *processRuntime) logFile(uid types.UID, container string, previous bool) string {
	suffix := ".log"
	if previous {
		suffix = ".previous.log"
	}
	return filepath.Join(p.logDir, string(uid)+"-"+container+suffix)
}

func (p *processRuntime) LogPath(uid types.UID, container string, previous bool) (string, error) {
	if _, err := p.PodNetns(uid); err != nil {
		return "", err
	}
	if container != "app" {
		return "", fmt.Errorf("%w: %s", ErrContainerNotFound, container)
	}
	f := p.logFile(uid, container, previous)
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoLog, err)
	}
	return f, nil
}

func (p *processRuntime) ContainerRunning(types.UID, string) bool { return p.running.Load() }

func (p *processRuntime) PodNetns(uid types.UID) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	path, ok := p.netns[uid]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrPodNotFound, uid)
	}
	return path, nil
}

func (p *processRuntime) run(ctx context.Context, uid types.UID, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	path, err := p.PodNetns(uid)
	if err != nil {
		return err
	}
	c := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path, "--"}, cmd...)...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Code: ee.ExitCode()}
	}
	return err
}

func (p *processRuntime) Exec(ctx context.Context, uid types.UID, container string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, _ <-chan TerminalSize) error {
	if tty {
		return errors.New("test runtime: no tty")
	}
	return p.run(ctx, uid, cmd, stdin, stdout, stderr)
}

// Attach runs the pod's "program": it answers each line of stdin until stdin ends.
func (p *processRuntime) Attach(ctx context.Context, uid types.UID, container string, stdin io.Reader, stdout, stderr io.Writer, tty bool, _ <-chan TerminalSize) error {
	if tty {
		return errors.New("test runtime: no tty")
	}
	return p.run(ctx, uid, []string{"sh", "-c", `while read -r l; do echo "got $l"; done`}, stdin, stdout, stderr)
}

var (
	_ Runtime                 = (*processRuntime)(nil)
	_ ContainerAttacher       = (*processRuntime)(nil)
	_ ContainerRunningChecker = (*processRuntime)(nil)
)

// kubectl runs the real kubectl with kubeconfig and returns its stdout, stderr and exit
// code.
func kubectl(t *testing.T, kubeconfig string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.AssetsDir(), "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// kubeletClientOptions runs the API server as the lab does (Node authorizer,
// NodeRestriction), connecting to kubelets at their InternalIP with a client certificate
// and verifying their serving certificates with caFile.
func kubeletClientOptions(cert, key, caFile string) testenv.Options {
	return testenv.Options{APIServerFlags: map[string]string{
		"authorization-mode":              "Node,RBAC",
		"enable-admission-plugins":        "NodeRestriction",
		"kubelet-client-certificate":      cert,
		"kubelet-client-key":              key,
		"kubelet-certificate-authority":   caFile,
		"kubelet-preferred-address-types": "InternalIP",
	}}
}

// requireKubectl skips the test without the k8s binaries' kubectl.
// kubectlPortForward runs `kubectl port-forward target :port` until the test ends and
// returns the local port kubectl picked and its stderr.
func kubectlPortForward(t *testing.T, ctx context.Context, kubeconfig, target, port string) (string, *bytes.Buffer) {
	t.Helper()
	fctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(fctx, filepath.Join(testenv.AssetsDir(), "kubectl"), "--kubeconfig", kubeconfig, "port-forward", target, "--address", "127.0.0.1", ":"+port)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> ` + regexp.QuoteMeta(port))
	var local string
	for local == "" && lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			local = m[1]
		}
	}
	if local == "" {
		t.Fatalf("kubectl port-forward printed no local port; stderr %q", errOut.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return local, &errOut
}

func requireKubectl(t *testing.T) {
	t.Helper()
	if testenv.AssetsDir() == "" {
		t.Skip("no k8s binaries")
	}
	if _, err := os.Stat(filepath.Join(testenv.AssetsDir(), "kubectl")); err != nil {
		t.Skip("no kubectl among the k8s binaries")
	}
}

func writeAdminKubeconfig(t *testing.T, env *testenv.Env) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubeletAPIWithKubectl runs the real kubectl against a real kube-apiserver that
// reaches the KubeletAPI as it reaches a kubelet (the Node's InternalIP and kubelet port,
// its kubelet client certificate, verifying the serving certificate), over a Runtime of
// real processes in a pod network namespace: logs (tail, previous, follow), exec (output,
// stderr, exit code, stdin, in the pod's netns), attach, port-forward, and the
// authentication and authorization of direct callers.
func TestKubeletAPIWithKubectl(t *testing.T) {
	requireRoot(t)
	requireKubectl(t)
	pki := newTestPKI(t, "kubelet-api-test-ca")
	nodeIP := net.ParseIP("127.0.0.1")
	serverCert, serverKey := pki.issue(t, "kubelet", "system:node:lab-node9", []string{"system:nodes"}, true, nodeIP)
	apiCert, apiKey := pki.issue(t, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, false)
	strangerCert, strangerKey := pki.issue(t, "stranger", "some-user", nil, false)
	otherCA := newTestPKI(t, "other-ca")
	foreignCert, foreignKey := otherCA.issue(t, "foreign", "kube-apiserver-kubelet-client", []string{"system:masters"}, false)

	env := testenv.Start(t, kubeletClientOptions(apiCert, apiKey, pki.caFile))
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := writeAdminKubeconfig(t, env)
	ctx := context.Background()
	nodeName := "lab-node9"

	// The pod's network namespace, with a server only reachable from inside it.
	suffix := randomSuffix(t)
	plain := namespaces{dir: DefaultNetnsDir}
	podNetnsName := "lsk-" + suffix + "-pod"
	podNS := testNetns(t, plain, podNetnsName)
	nh, err := netlink.NewHandleAt(podNS)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := nh.LinkByName("lo")
	if err == nil {
		err = nh.LinkSetUp(lo)
	}
	nh.Close()
	if err != nil {
		t.Fatalf("pod lo up: %v", err)
	}
	var podLn net.Listener
	if err := nsthread.Do(podNS, func() error {
		var lerr error
		podLn, lerr = net.Listen("tcp", "127.0.0.1:8080")
		return lerr
	}); err != nil {
		t.Fatal(err)
	}
	podSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the pod netns, path %s\n", r.URL.Path)
	})}
	go func() { _ = podSrv.Serve(podLn) }()
	t.Cleanup(func() { _ = podSrv.Close() })

	// The Node: its InternalIP and kubelet port are where the API server connects.
	kubeletLn, err := net.Listen("tcp", net.JoinHostPort(nodeIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	kubeletPort := kubeletLn.Addr().(*net.TCPAddr).Port
	node, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: nodeName}, {Type: corev1.NodeInternalIP, Address: nodeIP.String()}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(kubeletPort)
	if _, err := admin.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
			Name: "app", Image: "busybox", Stdin: true, StdinOnce: true,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "busybox", Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
	if _, err := admin.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	rt := &processRuntime{
		pods:   map[types.NamespacedName]types.UID{{Namespace: "default", Name: "web"}: pod.UID},
		netns:  map[types.UID]string{pod.UID: filepath.Join(DefaultNetnsDir, podNetnsName)},
		logDir: t.TempDir(),
	}
	rt.running.Store(true)
	if err := os.WriteFile(rt.logFile(pod.UID, "app", true), []byte("previous instance\nit crashed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := rt.logFile(pod.UID, "app", false)
	if err := os.WriteFile(logFile, []byte("line 1\nline 2\nline 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	api, err := NewKubeletAPI(KubeletAPIConfig{
		NodeName: nodeName, Runtime: rt,
		CertFile: serverCert, KeyFile: serverKey, ClientCAFile: pki.caFile,
		Client: nodeClient(t, env.Config, nodeName),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- api.Serve(serveCtx, kubeletLn) }()
	t.Cleanup(func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	t.Run("logs", func(t *testing.T) {
		out, errOut, code := kubectl(t, kubeconfig, "", "logs", "web")
		if code != 0 || out != "line 1\nline 2\nline 3\n" {
			t.Fatalf("kubectl logs: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		out, errOut, code = kubectl(t, kubeconfig, "", "logs", "web", "-c", "app", "--tail=2")
		if code != 0 || out != "line 2\nline 3\n" {
			t.Errorf("kubectl logs --tail=2: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		out, errOut, code = kubectl(t, kubeconfig, "", "logs", "web", "--limit-bytes=4")
		if code != 0 || out != "line" {
			t.Errorf("kubectl logs --limit-bytes=4: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		out, errOut, code = kubectl(t, kubeconfig, "", "logs", "web", "--previous")
		if code != 0 || out != "previous instance\nit crashed\n" {
			t.Errorf("kubectl logs --previous: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		out, _, code = kubectl(t, kubeconfig, "", "logs", "web", "--timestamps", "--tail=1")
		if code != 0 || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z line 3\n$`).MatchString(out) {
			t.Errorf("kubectl logs --timestamps: exit %d, stdout %q", code, out)
		}
	})

	t.Run("logs previous missing", func(t *testing.T) {
		if err := os.Remove(rt.logFile(pod.UID, "app", true)); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := kubectl(t, kubeconfig, "", "logs", "web", "--previous")
		if code == 0 || !strings.Contains(errOut, `previous terminated container "app" in pod "web" not found`) {
			t.Errorf("kubectl logs --previous without one: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("logs follow", func(t *testing.T) {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(fctx, filepath.Join(testenv.AssetsDir(), "kubectl"), "--kubeconfig", kubeconfig, "logs", "-f", "web", "--tail=1")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		next := func() string {
			if !lines.Scan() {
				t.Fatalf("kubectl logs -f ended early: %v; stderr %q", lines.Err(), errOut.String())
			}
			return lines.Text()
		}
		if got := next(); got != "line 3" {
			t.Fatalf("first followed line %q, want %q", got, "line 3")
		}
		f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("line 4, written while following\n"); err != nil {
			t.Fatal(err)
		}
		if got := next(); got != "line 4, written while following" {
			t.Fatalf("followed line %q", got)
		}
		// The container exits after a last line: the follow ends with it.
		if _, err := f.WriteString("last words\n"); err != nil {
			t.Fatal(err)
		}
		rt.running.Store(false)
		if got := next(); got != "last words" {
			t.Fatalf("followed line %q", got)
		}
		if lines.Scan() {
			t.Errorf("more output after the container ended: %q", lines.Text())
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("kubectl logs -f: %v; stderr %q", err, errOut.String())
		}
		rt.running.Store(true)
	})

	t.Run("logs follow ends with the status", func(t *testing.T) {
		// A Runtime that cannot tell whether the container runs: the Pod's status tells.
		api2, err := NewKubeletAPI(KubeletAPIConfig{
			NodeName: nodeName, Runtime: struct{ Runtime }{rt},
			CertFile: serverCert, KeyFile: serverKey, ClientCAFile: pki.caFile,
			Client: nodeClient(t, env.Config, nodeName),
		})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- api2.Serve(sctx, ln) }()
		defer func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}()

		pair, err := tls.LoadX509KeyPair(apiCert, apiKey)
		if err != nil {
			t.Fatal(err)
		}
		caPool := x509.NewCertPool()
		caPool.AddCert(pki.caCert)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}}
		resp, err := c.Get("https://" + ln.Addr().String() + "/containerLogs/default/web/app?follow=true&tailLines=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := bufio.NewScanner(resp.Body)
		if !body.Scan() || body.Text() != "last words" {
			t.Fatalf("first line %q (%v)", body.Text(), body.Err())
		}
		p, err := admin.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
		if p, err = admin.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ended := make(chan struct{})
		go func() {
			for body.Scan() {
				t.Errorf("unexpected line %q", body.Text())
			}
			close(ended)
		}()
		select {
		case <-ended:
		case <-time.After(time.Minute):
			t.Fatal("follow did not end after the status said the container terminated")
		}
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
		if _, err := admin.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, errOut, code := kubectl(t, kubeconfig, "", "exec", "web", "--", "sh", "-c", "echo to stdout; echo to stderr >&2; exit 3")
		if code != 3 || out != "to stdout\n" || !strings.Contains(errOut, "to stderr") {
			t.Errorf("kubectl exec: exit %d (want 3), stdout %q, stderr %q", code, out, errOut)
		}
		// The command runs in the pod's network namespace.
		var podNetnsIno uint64
		if st, err := os.Stat(filepath.Join(DefaultNetnsDir, podNetnsName)); err == nil {
			podNetnsIno = statIno(st)
		}
		out, errOut, code = kubectl(t, kubeconfig, "", "exec", "web", "-c", "app", "--", "readlink", "/proc/self/ns/net")
		if want := fmt.Sprintf("net:[%d]\n", podNetnsIno); code != 0 || out != want {
			t.Errorf("kubectl exec readlink: exit %d, stdout %q (want %q), stderr %q", code, out, want, errOut)
		}
		out, errOut, code = kubectl(t, kubeconfig, "hello through stdin\n", "exec", "-i", "web", "--", "tr", "a-z", "A-Z")
		if code != 0 || out != "HELLO THROUGH STDIN\n" {
			t.Errorf("kubectl exec -i: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("attach", func(t *testing.T) {
		out, errOut, code := kubectl(t, kubeconfig, "one\ntwo\n", "attach", "-i", "web", "-c", "app")
		if code != 0 || !strings.Contains(out, "got one\ngot two\n") {
			t.Errorf("kubectl attach -i: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		local, errOut := kubectlPortForward(t, ctx, kubeconfig, "pod/web", "8080")
		for i := range 3 { // a connection per request, each a new stream
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Get("http://127.0.0.1:" + local + "/try" + strconv.Itoa(i))
			if err != nil {
				t.Fatalf("GET through port-forward: %v; stderr %q", err, errOut.String())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("hello from the pod netns, path /try%d\n", i); string(body) != want {
				t.Errorf("body %q, want %q", body, want)
			}
		}
	})

	t.Run("direct callers", func(t *testing.T) {
		caPool := x509.NewCertPool()
		caPool.AddCert(pki.caCert)
		url := "https://" + kubeletLn.Addr().String() + "/containerLogs/default/web/app"
		get := func(cert, key string) (int, string, error) {
			tc := &tls.Config{RootCAs: caPool, MinVersion: tls.VersionTLS12}
			if cert != "" {
				pair, err := tls.LoadX509KeyPair(cert, key)
				if err != nil {
					t.Fatal(err)
				}
				// Always present it (Certificates would drop one the server's CA list
				// does not name).
				tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
			}
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
			resp, err := c.Get(url)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), nil
		}
		if code, body, err := get(apiCert, apiKey); err != nil || code != http.StatusOK || !strings.HasPrefix(body, "line 1\n") {
			t.Errorf("the API server's identity: %d %q %v", code, body, err)
		}
		if code, body, err := get("", ""); err != nil || code != http.StatusUnauthorized {
			t.Errorf("no client certificate: %d %q %v, want 401", code, body, err)
		}
		if code, body, err := get(strangerCert, strangerKey); err != nil || code != http.StatusForbidden || !strings.Contains(body, "user=some-user") {
			t.Errorf("a user without nodes/proxy: %d %q %v, want 403", code, body, err)
		}
		if code, _, err := get(foreignCert, foreignKey); err == nil {
			t.Errorf("a certificate of another CA was accepted (%d)", code)
		}
	})
}

func statIno(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Ino
	}
	return 0
}
