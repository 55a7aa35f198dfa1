package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Cluster DNS: CoreDNS deployed the way kubeadm deploys it, as the kube-dns Service in
// kube-system at KubeDNSIP, run by the node agents (their image catalog maps the CoreDNS
// image to the binary hack/coredns.sh builds).
const (
	// CoreDNSVersion must match hack/coredns.sh.
	CoreDNSVersion = "v1.15.0"
	// CoreDNSImage is the image of the CoreDNS Deployment (there are no images in the lab:
	// the node agent runs Config.CoreDNS for it).
	CoreDNSImage = "registry.k8s.io/coredns/coredns:" + CoreDNSVersion
	// KubeDNSNamespace and KubeDNSService name the cluster DNS Service.
	KubeDNSNamespace = "kube-system"
	KubeDNSService   = "kube-dns"
)

// DefaultCoreDNS returns $LOADSTONE_COREDNS when set, else the binary hack/coredns.sh
// builds into its cache.
func DefaultCoreDNS() string {
	if p := os.Getenv("LOADSTONE_COREDNS"); p != "" {
		return p
	}
	cache := os.Getenv("LOADSTONE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "loadstone")
	}
	return filepath.Join(cache, "coredns-"+CoreDNSVersion, "coredns")
}

// Corefile returns the lab's Corefile: kubeadm's, without the forward plugin. There is no
// upstream resolver inside the lab (the host's /etc/resolv.conf names a server the lab's
// namespaces cannot reach), so a name outside the cluster zones gets SERVFAIL at once
// instead of a forward timeout. kubeconfig, when not empty, is a kubeconfig file the
// kubernetes plugin uses instead of the pod's service account (for running CoreDNS outside
// a pod, as TestCoreDNS does).
func Corefile(kubeconfig string) string {
	var kc string
	if kubeconfig != "" {
		kc = "\n       kubeconfig " + kubeconfig
	}
	return fmt.Sprintf(`.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes %s in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30%s
    }
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
}
`, ClusterDomain, kc)
}

// CoreDNSManifest returns the cluster DNS objects, as kubeadm creates them: ServiceAccount
// coredns, ClusterRole and ClusterRoleBinding system:coredns, ConfigMap coredns with
// Corefile(""), Deployment coredns (2 replicas, probes on :8181/ready and :8080/health)
// and Service kube-dns at KubeDNSIP. The Service is IPv4 only, like kubeadm's default on a
// dual-stack cluster: the node agent gives pods one nameserver; AAAA records of dual-stack
// Services resolve through it all the same.
func CoreDNSManifest() string {
	corefile := "    " + strings.ReplaceAll(strings.TrimRight(Corefile(""), "\n"), "\n", "\n    ")
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
  labels:
    kubernetes.io/bootstrapping: rbac-defaults
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
  labels:
    kubernetes.io/bootstrapping: rbac-defaults
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- kind: ServiceAccount
  name: coredns
  namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
%s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
  selector:
    matchLabels:
      k8s-app: kube-dns
  template:
    metadata:
      labels:
        k8s-app: kube-dns
    spec:
      priorityClassName: system-cluster-critical
      serviceAccountName: coredns
      # CoreDNS must not use itself as upstream: the node's resolv.conf, not the cluster's.
      dnsPolicy: Default
      tolerations:
      - key: CriticalAddonsOnly
        operator: Exists
      - key: node-role.kubernetes.io/control-plane
        effect: NoSchedule
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector:
                matchLabels:
                  k8s-app: kube-dns
              topologyKey: kubernetes.io/hostname
      nodeSelector:
        kubernetes.io/os: linux
      containers:
      - name: coredns
        image: %s
        imagePullPolicy: IfNotPresent
        args: [-conf, /etc/coredns/Corefile]
        resources:
          limits:
            memory: 170Mi
          requests:
            cpu: 100m
            memory: 70Mi
        volumeMounts:
        - name: config-volume
          mountPath: /etc/coredns
          readOnly: true
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        - {name: liveness-probe, containerPort: 8080, protocol: TCP}
        - {name: readiness-probe, containerPort: 8181, protocol: TCP}
        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            add: [NET_BIND_SERVICE]
            drop: [ALL]
          readOnlyRootFilesystem: true
        livenessProbe:
          httpGet:
            path: /health
            port: liveness-probe
            scheme: HTTP
          initialDelaySeconds: 60
          timeoutSeconds: 5
          successThreshold: 1
          failureThreshold: 5
        readinessProbe:
          httpGet:
            path: /ready
            port: readiness-probe
            scheme: HTTP
          periodSeconds: 1
          timeoutSeconds: 1
          successThreshold: 1
          failureThreshold: 3
      volumes:
      - name: config-volume
        configMap:
          name: coredns
          items:
          - key: Corefile
            path: Corefile
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
    kubernetes.io/cluster-service: "true"
    kubernetes.io/name: CoreDNS
  annotations:
    prometheus.io/port: "9153"
    prometheus.io/scrape: "true"
spec:
  selector:
    k8s-app: kube-dns
  clusterIP: %s
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv4]
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
  - {name: metrics, port: 9153, protocol: TCP, targetPort: 9153}
`, corefile, CoreDNSImage, KubeDNSIP)
}

// startCoreDNS applies CoreDNSManifest and waits until kube-dns has a ready endpoint (a
// CoreDNS pod whose /ready answers, i.e. whose kubernetes plugin has synced).
func (l *Lab) startCoreDNS(ctx context.Context, cs kubernetes.Interface) error {
	cfg, err := l.RESTConfig("admin")
	if err != nil {
		return err
	}
	a, err := NewApplier(cfg)
	if err != nil {
		return err
	}
	if err := a.Apply(ctx, []byte(CoreDNSManifest())); err != nil {
		return err
	}
	// Ready once a CoreDNS pod is behind kube-dns and a node resolves the kubernetes
	// Service through KubeDNSIP (kube-proxy's rules included).
	probe := Dialer{Netns: l.nodes[0].Name, Timeout: 2 * time.Second}
	name := "kubernetes.default.svc." + ClusterDomain + "."
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if n, err := readyEndpoints(ctx, cs, KubeDNSNamespace, KubeDNSService); err != nil || n == 0 {
			last = fmt.Sprintf("%d ready endpoints (%v)", n, err)
		} else if ans, err := dnsQuery(ctx, probe, "udp", net.JoinHostPort(KubeDNSIP, "53"), name, dnsmessage.TypeA); err != nil {
			last = fmt.Sprintf("query from %s: %v", probe.Netns, err)
		} else if ans.rcode != dnsmessage.RCodeSuccess || len(ans.values) != 1 || ans.values[0] != KubernetesServiceIP {
			last = fmt.Sprintf("query from %s: %s %v", probe.Netns, ans.rcode, ans.values)
		} else {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s does not resolve through %s/%s at %s after 90 s (last: %s; CoreDNS binary %s); see `kubectl -n kube-system get pods -l k8s-app=kube-dns` and %s",
		name, KubeDNSNamespace, KubeDNSService, KubeDNSIP, last, l.cfg.CoreDNS, filepath.Join(l.cfg.Dir, "logs", "nodeagent-*.log"))
}

// readyEndpoints counts the ready endpoints of a Service's EndpointSlices.
func readyEndpoints(ctx context.Context, cs kubernetes.Interface, ns, svc string) (int, error) {
	list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				n++
			}
		}
	}
	return n, nil
}

// dnsAnswer is a response's rcode and its answers of the asked type, as text (addresses,
// or names for PTR), in order.
type dnsAnswer struct {
	rcode  dnsmessage.RCode
	values []string
}

// dnsQuery sends one query over network ("udp" or "tcp") from inside d's namespace.
func dnsQuery(ctx context.Context, d Dialer, network, server, name string, typ dnsmessage.Type) (dnsAnswer, error) {
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return dnsAnswer{}, err
	}
	msg := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x4c53, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: n, Type: typ, Class: dnsmessage.ClassINET}},
	}
	req, err := msg.Pack()
	if err != nil {
		return dnsAnswer{}, err
	}
	c, err := d.DialContext(ctx, network, server)
	if err != nil {
		return dnsAnswer{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	var resp []byte
	if network == "tcp" {
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(req)))
		if _, err := c.Write(append(framed, req...)); err != nil {
			return dnsAnswer{}, err
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return dnsAnswer{}, err
		}
		resp = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, resp); err != nil {
			return dnsAnswer{}, err
		}
	} else {
		if _, err := c.Write(req); err != nil {
			return dnsAnswer{}, err
		}
		buf := make([]byte, 4096)
		k, err := c.Read(buf)
		if err != nil {
			return dnsAnswer{}, err
		}
		resp = buf[:k]
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		return dnsAnswer{}, err
	}
	if m.ID != msg.ID {
		return dnsAnswer{}, fmt.Errorf("response ID %d, want %d", m.ID, msg.ID)
	}
	out := dnsAnswer{rcode: m.RCode}
	for _, rr := range m.Answers {
		switch b := rr.Body.(type) {
		case *dnsmessage.AResource:
			if typ == dnsmessage.TypeA {
				out.values = append(out.values, netip.AddrFrom4(b.A).String())
			}
		case *dnsmessage.AAAAResource:
			if typ == dnsmessage.TypeAAAA {
				out.values = append(out.values, netip.AddrFrom16(b.AAAA).String())
			}
		case *dnsmessage.PTRResource:
			if typ == dnsmessage.TypePTR {
				out.values = append(out.values, b.PTR.String())
			}
		}
	}
	return out, nil
}
