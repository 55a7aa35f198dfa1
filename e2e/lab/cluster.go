package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Controllers the lab's kube-controller-manager runs (v1.37 names). Node lifecycle marks
// the Nodes of stopped agents NotReady; taint-based eviction is left out on purpose, so a
// stopped node keeps its pods as on a real cluster during a short outage.
var kcmControllers = []string{
	"deployment-controller", "replicaset-controller", "endpoints-controller",
	"endpointslice-controller", "serviceaccount-controller", "serviceaccount-token-controller",
	"namespace-controller", "garbage-collector-controller", "root-ca-certificate-publisher-controller",
	"service-cidr-controller", "pod-garbage-collector-controller", "node-lifecycle-controller",
}

func (l *Lab) bin(name string) string { return filepath.Join(l.cfg.K8sBin, name) }

func (l *Lab) startAPIServer() error {
	etcd := []string{l.bin("etcd"),
		"--name", "ls-cp",
		"--data-dir", filepath.Join(l.cfg.Dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379",
		"--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380",
		"--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "ls-cp=http://127.0.0.1:2380",
		"--log-level", "warn",
		// A throw-away cluster on a shared 2-core machine: speed over durability.
		"--unsafe-no-fsync",
	}
	if _, err := l.startProc("etcd", ControlPlaneNS, etcd); err != nil {
		return err
	}
	pp := l.pki
	api := []string{l.bin("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "0.0.0.0",
		"--secure-port", "6443",
		"--advertise-address", ControlIP,
		"--tls-cert-file", pp.serverCert,
		"--tls-private-key-file", pp.serverKey,
		"--client-ca-file", pp.caCert,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", pp.saPub,
		"--service-account-signing-key-file", pp.saKey,
		"--service-cluster-ip-range", ServiceCIDR + "," + ServiceCIDR6,
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"--event-ttl", "1h",
		// logs, exec, attach and port-forward: the API server connects to the node agent's
		// kubelet API at the Node's InternalIP, port 10250, verifying its serving
		// certificate with the lab CA and presenting its own kubelet client certificate.
		"--kubelet-client-certificate", pp.kubeletClientCert,
		"--kubelet-client-key", pp.kubeletClientKey,
		"--kubelet-certificate-authority", pp.caCert,
		"--kubelet-preferred-address-types", "InternalIP",
	}
	_, err := l.startProc("kube-apiserver", ControlPlaneNS, api)
	return err
}

// RESTConfig returns a client configuration for an identity's kubeconfig that works from
// the root namespace without the relay: it connects to APIServerURL from inside the
// router's namespace.
func (l *Lab) RESTConfig(file string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.KubeconfigPath(file))
	if err != nil {
		return nil, err
	}
	cfg.Host = APIServerURL
	cfg.Dial = Dialer{Netns: RouterNS}.DialContext
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// AdminClient returns a clientset with the admin identity.
func (l *Lab) AdminClient() (*kubernetes.Clientset, error) {
	cfg, err := l.RESTConfig("admin")
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// waitAPIServer waits until /readyz answers ok (through the host's veth into the LAN).
func (l *Lab) waitAPIServer(ctx context.Context) (*kubernetes.Clientset, error) {
	cs, err := l.AdminClient()
	if err != nil {
		return nil, err
	}
	var last error
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		for _, name := range []string{"etcd", "kube-apiserver"} {
			if p, ok := l.Proc(name); ok && !p.Alive() {
				return nil, fmt.Errorf("lab: %s exited; see %s", name, p.Log)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return cs, nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("/readyz answered %q", strings.TrimSpace(string(body)))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("lab: kube-apiserver not ready after 90 s (last error: %w); see %s", last, l.LogPath("kube-apiserver"))
}

func (l *Lab) startControllers() error {
	pp := l.pki
	kcm := []string{l.bin("kube-controller-manager"),
		"--kubeconfig", l.KubeconfigPath("kube-controller-manager"),
		"--bind-address", "127.0.0.1",
		"--controllers", strings.Join(kcmControllers, ","),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file", pp.saKey,
		"--root-ca-file", pp.caCert,
		"--leader-elect=false",
	}
	if _, err := l.startProc("kube-controller-manager", ControlPlaneNS, kcm); err != nil {
		return err
	}
	sched := []string{l.bin("kube-scheduler"),
		"--kubeconfig", l.KubeconfigPath("kube-scheduler"),
		"--bind-address", "127.0.0.1",
		"--leader-elect=false",
	}
	_, err := l.startProc("kube-scheduler", ControlPlaneNS, sched)
	return err
}

// NodeAgentArgs is the command line of the node agent of n (the contract with
// e2e/cmd/nodeagent).
func (l *Lab) NodeAgentArgs(bin string, n Node) []string {
	return append([]string{bin,
		"--kubeconfig", l.KubeconfigPath("nodeagent-" + n.Name),
		"--node-name", n.Name,
		"--node-ip", n.IP.String(),
		"--node-ip6", n.IP6.String(),
		"--coredns-binary", l.cfg.CoreDNS,
		"--pod-cidr", n.PodCIDR.String(),
		"--pod-cidr6", n.PodCIDR6.String(),
		"--state-dir", l.NodeStateDir(n),
		// Pods of Loadstone's image run the binaries the lab built.
		"--binaries", "speaker=" + l.programs.speaker + ",controller=" + l.programs.controller,
		"--cluster-dns", KubeDNSIP,
		"--cluster-domain", ClusterDomain,
		"--cluster-ca-file", l.pki.caCert,
	}, l.NodeAgentKubeletAPIArgs(n)...)
}

// NodeAgentKubeletAPIArgs are the node agent flags that turn on its kubelet API (logs,
// exec, attach, port-forward) with n's serving certificate and the lab CA as client CA
// (see nodeagent.KubeletAPIFlags).
func (l *Lab) NodeAgentKubeletAPIArgs(n Node) []string {
	cert, key := l.KubeletCertPaths(n)
	return []string{"--kubelet-cert", cert, "--kubelet-key", key, "--kubelet-client-ca", l.pki.caCert}
}

// NodeStateDir is the node agent's state directory of n.
func (l *Lab) NodeStateDir(n Node) string { return filepath.Join(l.cfg.Dir, "nodes", n.Name) }

func (l *Lab) kubeProxyArgs(n Node) []string {
	return []string{l.bin("kube-proxy"),
		"--kubeconfig", l.KubeconfigPath("kube-proxy"),
		"--proxy-mode", "nftables",
		"--hostname-override", n.Name,
		"--cluster-cidr", ClusterCIDR + "," + ClusterCIDR6,
		// Leave host-wide conntrack settings alone.
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--metrics-bind-address", "127.0.0.1:10249",
		"--healthz-bind-address", "0.0.0.0:10256",
	}
}

// startNodes starts, in every node namespace, the node agent and kube-proxy.
func (l *Lab) startNodes(bins binaries) error {
	l.programs = bins
	agent := bins.nodeagent
	for _, n := range l.nodes {
		if _, err := l.startProc("nodeagent-"+n.Name, n.Name, l.NodeAgentArgs(agent, n)); err != nil {
			return err
		}
		if _, err := l.startProc("kube-proxy-"+n.Name, n.Name, l.kubeProxyArgs(n)); err != nil {
			return err
		}
	}
	return nil
}

// NodeReady reports whether a Node has condition Ready=True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (l *Lab) waitNodesReady(ctx context.Context, cs kubernetes.Interface) error {
	deadline := time.Now().Add(60 * time.Second)
	var ready int
	for time.Now().Before(deadline) {
		for _, n := range l.nodes {
			if p, ok := l.Proc("nodeagent-" + n.Name); ok && !p.Alive() {
				return fmt.Errorf("lab: node agent of %s exited; see %s", n.Name, p.Log)
			}
		}
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			ready = 0
			for i := range list.Items {
				if NodeReady(&list.Items[i]) {
					ready++
				}
			}
			if ready >= len(l.nodes) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("lab: %d of %d nodes Ready after 60 s; see %s", ready, len(l.nodes), filepath.Join(l.cfg.Dir, "logs", "nodeagent-*.log"))
}
