package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// TestProgramsAgainstAPIServer runs pods whose images map to real programs (the host's sh
// and curl) on an agent against a real API server, in real network namespaces, and checks
// the runtime rules one pod each: environment (fieldRef, secretKeyRef, configMapKeyRef,
// envFrom, service variables, $(VAR) in args), working directory, uid/gid, mounted
// Secret/ConfigMap/hostPath volumes, service-account files and resolv.conf; exec (in the
// container's namespaces, exit codes) and exec probes; restarts with CrashLoopBackOff and
// the previous log; restartPolicy Never; SIGTERM and SIGKILL after the grace period;
// hostNetwork with ClusterFirstWithHostNet; nginx without ports served on 80 and reached
// by a curl pod; a CoreDNS pod without a CoreDNS binary.
func TestProgramsAgainstAPIServer(t *testing.T) {
	requireRoot(t)
	env := testenv.Start(t, nodeAuthz)
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	nodeName := "lab-node8"
	ctx := context.Background()
	suffix := randomSuffix(t)
	plain := namespaces{dir: DefaultNetnsDir}
	nodeNetnsName := "lst-" + suffix + "-node"
	nodeNS := testNetns(t, plain, nodeNetnsName)
	prefix := "lst-" + suffix + "-p-"
	t.Cleanup(func() {
		entries, _ := os.ReadDir(DefaultNetnsDir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				_ = plain.Delete(e.Name())
			}
		}
	})
	const caText = "TEST-CLUSTER-CA\n"
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, []byte(caText), 0o644); err != nil {
		t.Fatal(err)
	}
	// What a cluster's controllers would have made: the default ServiceAccount and the
	// root CA ConfigMap.
	if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": caText}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"password": "s3cret", "user": "admin"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "fast", "LEVEL": "debug"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k8sSvc, err := client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A copy of this test binary that uid 65532 may execute (go test's directory is 0700).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := os.MkdirTemp("", "lst-nodeagent-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	speakerBin := filepath.Join(binDir, "speaker")
	if err := os.WriteFile(speakerBin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	cfg := Config{
		// Loadstone's image runs this test binary as "speaker" (its rawsocket program).
		Catalog:        ImageCatalog{Binaries: map[string]string{"speaker": speakerBin}},
		Client:         nodeClient(t, env.Config, nodeName),
		NodeName:       nodeName,
		NodeIPs:        []netip.Addr{netip.MustParseAddr("192.0.2.18")},
		PodCIDRs:       []netip.Prefix{netip.MustParsePrefix("198.18.8.0/24")},
		StateDir:       stateDir,
		NodeNetnsPath:  filepath.Join(DefaultNetnsDir, nodeNetnsName),
		NetnsPrefix:    prefix,
		CleanupOnExit:  true,
		LeaseDuration:  8 * time.Second,
		StatusInterval: 2 * time.Second,
		DNS:            DNSConfig{Server: netip.MustParseAddr("198.19.0.10")},
		ClusterCAFile:  caFile,
		Backoff:        Backoff{Initial: time.Second, Max: 4 * time.Second, Reset: 10 * time.Minute},
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})

	pods := client.CoreV1().Pods("default")
	// The volume the ServiceAccount admission adds on a real cluster (envtest runs without
	// it; the Node authorizer lets a node request only tokens its pods' volumes ask for).
	apiAccess := corev1.Volume{Name: "kube-api-access-test", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0o644)),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		},
	}}}
	shPod := func(name, script string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName:                      nodeName,
				TerminationGracePeriodSeconds: ptr(int64(30)),
				// Set by the ServiceAccount admission on a real cluster (envtest runs
				// without it); the Node authorizer lets the node request its token.
				ServiceAccountName: "default",
				Volumes:            []corev1.Volume{apiAccess},
				Containers: []corev1.Container{{
					Name: "main", Image: "busybox:1.36",
					Command:      []string{"sh", "-c", script},
					VolumeMounts: []corev1.VolumeMount{{Name: apiAccess.Name, MountPath: ServiceAccountDir, ReadOnly: true}},
				}},
			},
		}
	}
	create := func(p *corev1.Pod) *corev1.Pod {
		t.Helper()
		got, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
		return got
	}
	get := func(name string) (*corev1.Pod, error) { return pods.Get(ctx, name, metav1.GetOptions{}) }
	logOf := func(uid types.UID, previous bool) (string, error) {
		p, err := a.LogPath(uid, "main", previous)
		if err != nil {
			return "", err
		}
		b, err := os.ReadFile(p)
		return string(b), err
	}
	waitLog := func(what string, uid types.UID, want ...string) string {
		t.Helper()
		var text string
		eventually(t, what, func() error {
			var err error
			if text, err = logOf(uid, false); err != nil {
				return err
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					return fmt.Errorf("log lacks %q:\n%s", w, text)
				}
			}
			return nil
		})
		return text
	}
	// Writable by the pods' users, with parents they can traverse.
	hostDir, err := os.MkdirTemp("", "lst-nodeagent-host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hostDir) })
	if err := os.Chmod(hostDir, 0o777); err != nil {
		t.Fatal(err)
	}

	// 1. Environment, files, identity, exec and exec probes.
	workDir := filepath.Join(t.TempDir(), "work")
	envPod := shPod("env", `echo "ARG=$1"; echo "NAME=$MY_NAME NS=$MY_NS NODE=$MY_NODE IP=$MY_IP HOSTIP=$MY_HOST"; `+
		`echo "SECRET=$PASSWORD MODE=$MODE LEVEL=$CFG_LEVEL KSH=$KUBERNETES_SERVICE_HOST KSP=$KUBERNETES_SERVICE_PORT"; `+
		`echo "PWD=$(pwd) UID=$(id -u) GID=$(id -g)"; echo "SECRETFILE=$(cat /etc/creds/password)"; echo "CMFILE=$(cat /etc/settings/mode)"; `+
		`echo "SANS=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"; echo "CA=$(cat /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)"; `+
		`echo "TOKEN=$(cut -c1-3 /var/run/secrets/kubernetes.io/serviceaccount/token)"; echo "RESOLV=$(tr '\n' ';' </etc/resolv.conf)"; `+
		`echo hello > /host/from-env-pod; echo ready; exec sleep 3600`)
	envPod.Spec.Containers[0].Command = []string{"sh", "-c", envPod.Spec.Containers[0].Command[2], "sh", "$(MY_NAME)-arg"}
	envPod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(1234)), RunAsGroup: ptr(int64(2345))}
	envPod.Spec.Volumes = []corev1.Volume{apiAccess,
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}},
	}
	c := &envPod.Spec.Containers[0]
	c.WorkingDir = workDir
	c.VolumeMounts = []corev1.VolumeMount{c.VolumeMounts[0], {Name: "creds", MountPath: "/etc/creds", ReadOnly: true}, {Name: "settings", MountPath: "/etc/settings"}, {Name: "host", MountPath: "/host"}}
	c.Env = []corev1.EnvVar{
		{Name: "MY_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "MY_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "MY_NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "MY_HOST", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
		{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
	}
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	// Passes only where the ConfigMap is mounted: in the container's mount namespace.
	c.ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/etc/settings/mode"}}}}
	envPod = create(envPod)
	var podIP string
	eventually(t, "env pod ready", func() error {
		p, err := get("env")
		if err != nil {
			return err
		}
		if !podReady(p) {
			return fmt.Errorf("not ready: %+v", p.Status.ContainerStatuses)
		}
		podIP = p.Status.PodIP
		return nil
	})
	out := waitLog("env pod output", envPod.UID, "ready")
	for _, want := range []string{
		"ARG=env-arg",
		"NAME=env NS=default NODE=" + nodeName + " IP=" + podIP + " HOSTIP=192.0.2.18",
		"SECRET=s3cret MODE=fast LEVEL=debug KSH=" + k8sSvc.Spec.ClusterIP + " KSP=" + strconv.Itoa(int(k8sSvc.Spec.Ports[0].Port)),
		"PWD=" + workDir + " UID=1234 GID=2345",
		"SECRETFILE=s3cret", "CMFILE=fast", "SANS=default", "CA=TEST-CLUSTER-CA", "TOKEN=eyJ",
		"RESOLV=search default.svc.cluster.local svc.cluster.local cluster.local;nameserver 198.19.0.10;options ndots:5;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("env pod output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "from-env-pod")); err != nil || string(b) != "hello\n" {
		t.Errorf("hostPath volume: %q, %v", b, err)
	}
	// The host's /etc/resolv.conf is untouched by the pod's.
	if b, _ := os.ReadFile("/etc/resolv.conf"); strings.Contains(string(b), "198.19.0.10") {
		t.Errorf("the pod's resolv.conf leaked to the host")
	}
	var stdout, stderr bytes.Buffer
	if err := a.Exec(ctx, envPod.UID, "main", []string{"sh", "-c", "echo $MY_NAME $(id -u) $(cat /etc/settings/mode); echo oops >&2"}, nil, &stdout, &stderr, false, nil); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if stdout.String() != "env 1234 fast\n" || stderr.String() != "oops\n" {
		t.Errorf("exec output %q, stderr %q", stdout.String(), stderr.String())
	}
	var ee *ExitError
	if err := a.Exec(ctx, envPod.UID, "main", []string{"sh", "-c", "exit 7"}, nil, nil, nil, false, nil); !errors.As(err, &ee) || ee.Code != 7 {
		t.Errorf("exec exit 7: %v", err)
	}
	stdout.Reset()
	if err := a.Exec(ctx, envPod.UID, "main", []string{"cat"}, strings.NewReader("via stdin"), &stdout, nil, false, nil); err != nil || stdout.String() != "via stdin" {
		t.Errorf("exec with stdin: %q, %v", stdout.String(), err)
	}
	stdout.Reset()
	if err := a.Exec(ctx, envPod.UID, "main", []string{"tty"}, nil, &stdout, nil, true, nil); err != nil || !strings.HasPrefix(stdout.String(), "/dev/pts/") {
		t.Errorf("exec with a tty: %q, %v", stdout.String(), err)
	}
	if err := a.Exec(ctx, envPod.UID, "nope", []string{"true"}, nil, nil, nil, false, nil); !errors.Is(err, ErrContainerNotFound) {
		t.Errorf("exec in a missing container: %v", err)
	}
	if uid, ok := a.PodUID("default", "env"); !ok || uid != envPod.UID {
		t.Errorf("PodUID = %v, %v", uid, ok)
	}
	if p, err := a.PodNetns(envPod.UID); err != nil || !strings.HasPrefix(filepath.Base(p), prefix) {
		t.Errorf("PodNetns = %q, %v", p, err)
	}

	// 2. A crashing container: restarts with backoff, CrashLoopBackOff, previous log.
	crash := create(shPod("crash", "echo run; exit 3"))
	eventually(t, "crash pod restarted twice", func() error {
		p, err := get("crash")
		if err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) != 1 {
			return errors.New("no container status")
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount < 2 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 3 {
			return fmt.Errorf("status %+v", cs)
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	eventually(t, "crash pod in CrashLoopBackOff", func() error {
		p, err := get("crash")
		if err != nil {
			return err
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
			return fmt.Errorf("state %+v", cs.State)
		}
		return nil
	})
	if prev, err := logOf(crash.UID, true); err != nil || prev != "run\n" {
		t.Errorf("previous log %q, %v", prev, err)
	}

	// 3. restartPolicy Never: the pod fails with the exit code, its log stays.
	never := shPod("never", "echo bye; exit 4")
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	never = create(never)
	eventually(t, "never pod Failed", func() error {
		p, err := get("never")
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 4 || p.Status.ContainerStatuses[0].RestartCount != 0 {
			return fmt.Errorf("container %+v", p.Status.ContainerStatuses[0])
		}
		return nil
	})
	if l, err := logOf(never.UID, false); err != nil || l != "bye\n" {
		t.Errorf("log of the finished pod: %q, %v", l, err)
	}

	// 4. A liveness exec probe that fails restarts the container.
	live := shPod("live", "exec sleep 3600")
	live.Spec.Containers[0].LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", "/no/such/file"}}}}
	live.Spec.TerminationGracePeriodSeconds = ptr(int64(1))
	create(live)
	eventually(t, "live pod restarted by its liveness probe", func() error {
		p, err := get("live")
		if err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 {
			return fmt.Errorf("status %+v", p.Status.ContainerStatuses)
		}
		return nil
	})

	// 5. Termination ($$$$ is the shell's $$ once Kubernetes unescapes it): SIGTERM first (the program exits and the pod goes before its grace
	// period), SIGKILL after the grace period for one that ignores SIGTERM.
	term := shPod("term", `trap 'echo got TERM > /host/term; exit 0' TERM; echo $$$$ > /host/term-pid; while true; do sleep 0.1; done`)
	term.Spec.Volumes = append(term.Spec.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}})
	term.Spec.Containers[0].VolumeMounts = append(term.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "host", MountPath: "/host"})
	term.Spec.TerminationGracePeriodSeconds = ptr(int64(600))
	stubborn := term.DeepCopy()
	stubborn.Name = "stubborn"
	stubborn.Spec.Containers[0].Command = []string{"sh", "-c", `trap '' TERM; echo $$$$ > /host/stubborn-pid; while true; do sleep 0.1; done`}
	stubborn.Spec.TerminationGracePeriodSeconds = ptr(int64(2))
	create(term)
	create(stubborn)
	pidOf := func(file string) int {
		var pid int
		eventually(t, file, func() error {
			b, err := os.ReadFile(filepath.Join(hostDir, file))
			if err != nil {
				return err
			}
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
			return err
		})
		return pid
	}
	termPID, stubbornPID := pidOf("term-pid"), pidOf("stubborn-pid")
	for _, name := range []string{"term", "stubborn"} {
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// "term" has 600 s of grace: it is gone within the wait bound only if SIGTERM ended it.
	for _, name := range []string{"term", "stubborn"} {
		eventually(t, name+" pod deleted", func() error {
			if _, err := get(name); !apierrors.IsNotFound(err) {
				return fmt.Errorf("still there (%w)", err)
			}
			return nil
		})
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "term")); err != nil || string(b) != "got TERM\n" {
		t.Errorf("SIGTERM not seen by the program: %q, %v", b, err)
	}
	for _, pid := range []int{termPID, stubbornPID} {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after its pod was deleted (%v)", pid, err)
		}
	}

	// 6. hostNetwork with ClusterFirstWithHostNet: the node's namespace (its bridge), the
	// node's IP, cluster DNS.
	hn := shPod("hostnet", `grep -c cbr0: /proc/net/dev; echo "RESOLV=$(grep nameserver /etc/resolv.conf)"; exec sleep 3600`)
	hn.Spec.HostNetwork = true
	hn.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	hn = create(hn)
	waitLog("hostNetwork pod output", hn.UID, "1\nRESOLV=nameserver 198.19.0.10")
	eventually(t, "hostNetwork pod IP", func() error {
		p, err := get("hostnet")
		if err != nil {
			return err
		}
		if p.Status.PodIP != "192.0.2.18" {
			return fmt.Errorf("pod IP %q", p.Status.PodIP)
		}
		return nil
	})

	// 7. nginx without ports is served on 80; a curl pod reaches it.
	create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
	})
	var webIP string
	eventually(t, "web pod ready", func() error {
		p, err := get("web")
		if err != nil {
			return err
		}
		if !podReady(p) {
			return errors.New("not ready")
		}
		webIP = p.Status.PodIP
		return nil
	})
	hc := httpClientIn(nodeNS, 5*time.Second)
	resp, err := hc.Get("http://" + net.JoinHostPort(webIP, "80") + "/")
	if err != nil {
		t.Fatalf("GET nginx pod on 80: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "pod=web ") {
		t.Errorf("nginx pod answered %q", body)
	}
	curl := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "curl", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: nodeName, AutomountServiceAccountToken: ptr(false), RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "main", Image: "curlimages/curl:8.10.1", Args: []string{"-sS", "--max-time", "10", "http://" + webIP + "/"},
		}}},
	}
	curl = create(curl)
	eventually(t, "curl pod Succeeded", func() error {
		p, err := get("curl")
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	if l, err := logOf(curl.UID, false); err != nil || !strings.HasPrefix(l, "pod=web node="+nodeName+" client=") {
		t.Errorf("curl pod log %q, %v", l, err)
	}

	// 9. The speaker's bug, through Loadstone's image as the chart runs it (hostNetwork,
	// drop ALL, add NET_ADMIN and NET_RAW): as uid 65532 it cannot open a raw socket, as
	// root it can.
	for _, tc := range []struct {
		name  string
		uid   int64
		phase corev1.PodPhase
		log   string
	}{{"speaker-nonroot", 65532, corev1.PodFailed, "raw socket: operation not permitted"}, {"speaker-root", 0, corev1.PodSucceeded, "raw socket: ok"}} {
		p := create(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName: nodeName, HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever, ServiceAccountName: "default",
				Volumes: []corev1.Volume{apiAccess},
				Containers: []corev1.Container{{
					Name: "main", Image: "ghcr.io/loadstone-lb/loadstone:0.1.0", Command: []string{"/speaker"},
					Env:          []corev1.EnvVar{{Name: "NODEAGENT_TEST_PROGRAM", Value: "rawsocket"}},
					VolumeMounts: []corev1.VolumeMount{{Name: apiAccess.Name, MountPath: ServiceAccountDir, ReadOnly: true}},
					SecurityContext: &corev1.SecurityContext{
						RunAsUser:                ptr(tc.uid),
						AllowPrivilegeEscalation: ptr(false),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}},
					},
				}},
			},
		})
		eventually(t, tc.name+" "+string(tc.phase), func() error {
			got, err := get(tc.name)
			if err != nil {
				return err
			}
			if got.Status.Phase != tc.phase {
				return fmt.Errorf("phase %s", got.Status.Phase)
			}
			return nil
		})
		if l, err := logOf(p.UID, false); err != nil || !strings.Contains(l, tc.log) {
			t.Errorf("%s log %q (%v), want %q", tc.name, l, err, tc.log)
		}
	}

	// 8. CoreDNS without a binary: the container waits with a reason saying so.
	create(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "coredns", Image: "registry.k8s.io/coredns/coredns:v1.12.0", Args: []string{"-conf", "/etc/coredns/Corefile"}}}},
	})
	eventually(t, "coredns pod waiting with a reason", func() error {
		p, err := get("dns")
		if err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil ||
			!strings.Contains(p.Status.ContainerStatuses[0].State.Waiting.Message, "no CoreDNS binary") {
			return fmt.Errorf("status %+v", p.Status.ContainerStatuses)
		}
		return nil
	})
}
