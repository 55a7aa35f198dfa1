package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := readyEndpoints(ctx, cs, KubeDNSNamespace, KubeDNSService); err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("no ready CoreDNS pod behind %s/%s after 90 s (CoreDNS binary %s); see `kubectl -n kube-system get pods -l k8s-app=kube-dns` and %s",
		KubeDNSNamespace, KubeDNSService, l.cfg.CoreDNS, filepath.Join(l.cfg.Dir, "logs", "nodeagent-*.log"))
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
