package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/loadstone-lb/loadstone/internal/netnstest"
	"github.com/loadstone-lb/loadstone/internal/nsthread"
	"github.com/loadstone-lb/loadstone/internal/testenv"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

// The manifest is what kubeadm deploys, with the lab's addresses and without forward.
func TestCoreDNSManifest(t *testing.T) {
	objs, err := DecodeYAML([]byte(CoreDNSManifest()))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind()+"/"+o.GetName())
		if o.GetKind() == "Service" {
			ip, _, _ := unstructured.NestedString(o.Object, "spec", "clusterIP")
			if ip != KubeDNSIP || o.GetNamespace() != KubeDNSNamespace || o.GetName() != KubeDNSService {
				t.Errorf("Service %s/%s clusterIP %q, want %s/%s at %s", o.GetNamespace(), o.GetName(), ip, KubeDNSNamespace, KubeDNSService, KubeDNSIP)
			}
		}
		if o.GetKind() == "ConfigMap" {
			cf, _, _ := unstructured.NestedString(o.Object, "data", "Corefile")
			if cf != Corefile("") {
				t.Errorf("ConfigMap's Corefile differs from Corefile(\"\"):\n%s", cf)
			}
		}
	}
	want := []string{"ServiceAccount/coredns", "ClusterRole/system:coredns", "ClusterRoleBinding/system:coredns",
		"ConfigMap/coredns", "Deployment/coredns", "Service/kube-dns"}
	if !slices.Equal(kinds, want) {
		t.Errorf("objects %v, want %v", kinds, want)
	}
	// KubeDNSIP is the .10 of the IPv4 service range.
	p := netip.MustParsePrefix(ServiceCIDR)
	if a := p.Addr().As4(); netip.AddrFrom4([4]byte{a[0], a[1], a[2], a[3] + 10}).String() != KubeDNSIP {
		t.Errorf("KubeDNSIP %s is not the .10 of %s", KubeDNSIP, ServiceCIDR)
	}
	cf := Corefile("/k.yaml")
	if !strings.Contains(cf, "kubernetes cluster.local in-addr.arpa ip6.arpa {") || !strings.Contains(cf, "kubeconfig /k.yaml") || strings.Contains(cf, "forward") {
		t.Errorf("Corefile:\n%s", cf)
	}
}

// TestCoreDNS runs the CoreDNS binary hack/coredns.sh builds with the lab's Corefile in a
// network namespace of its own, against a real API server (envtest, the lab's service
// ranges) holding the lab's manifest, and authenticated as the coredns ServiceAccount (so
// the ClusterRole is proven enough). It resolves Services (A, AAAA, PTR, headless from an
// EndpointSlice), pod names, and misses, over UDP and TCP on port 53, follows a Service's
// deletion, and checks /ready, /health and the metrics port. It needs root (the namespace)
// and skips under -short.
func TestCoreDNS(t *testing.T) {
	netnstest.Skip(t)
	bin := DefaultCoreDNS()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("CoreDNS binary missing (%v): run hack/coredns.sh (or `make coredns`)", err)
	}
	env := testenv.Start(t, testenv.Options{APIServerFlags: map[string]string{
		"service-cluster-ip-range": ServiceCIDR + "," + ServiceCIDR6,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewApplier(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, []byte(CoreDNSManifest())); err != nil {
		t.Fatalf("apply the CoreDNS manifest: %v", err)
	}
	const ns = "dnstest"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The kube-dns Service of the manifest, and a dual-stack and a headless one.
	web, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyRequireDualStack),
			Ports:          []corev1.ServicePort{{Port: 80}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(web.Spec.ClusterIPs) != 2 {
		t.Fatalf("web got ClusterIPs %v, want one per family", web.Spec.ClusterIPs)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 5432}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"198.18.2.9"}, Hostname: ptr.To("db-0"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](5432)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// CoreDNS authenticates as the manifest's ServiceAccount.
	tok, err := cs.CoreV1().ServiceAccounts(KubeDNSNamespace).CreateToken(ctx, "coredns",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of the coredns ServiceAccount: %v", err)
	}
	dir := t.TempDir()
	const relayAddr = "127.0.0.1:6443" // inside the test's namespace
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: "https://" + relayAddr, CertificateAuthorityData: env.Config.CAData}
	kc.AuthInfos["coredns"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["coredns"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "coredns"}
	kc.CurrentContext = "coredns"
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kcPath); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(confPath, []byte(Corefile(kcPath)), 0o644); err != nil {
		t.Fatal(err)
	}

	netns := netnstest.New(t, "lsdns-"+netnstest.Suffix())
	apiURL, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	relay(t, ctx, netns, relayAddr, apiURL.Host)
	// The relay and the identity work before CoreDNS uses them (a failure here is clearer
	// than a plugin that never syncs).
	d := Dialer{Netns: netns, Timeout: 2 * time.Second}
	rc, err := clientcmd.BuildConfigFromFlags("", kcPath)
	if err != nil {
		t.Fatal(err)
	}
	rc.Dial = d.DialContext
	as, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("coredns identity through the relay in %s: %v", netns, err)
	}
	logPath := filepath.Join(dir, "coredns.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", netns, bin, "-conf", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("CoreDNS log:\n%s", b)
		}
	})

	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	httpGet := func(url string) (int, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testwait.For(t, "CoreDNS /ready (kubernetes plugin synced)", 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("CoreDNS exited")
		default:
		}
		code, body := httpGet("http://127.0.0.1:8181/ready")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	if code, body := httpGet("http://127.0.0.1:8080/health"); code != http.StatusOK {
		t.Errorf("/health: %d %s", code, body)
	}

	q := func(network, name string, typ dnsmessage.Type) dnsAnswer {
		t.Helper()
		ans, err := dnsQuery(ctx, d, network, "127.0.0.1:53", name, typ)
		if err != nil {
			t.Fatalf("%s %s over %s: %v", typ, name, network, err)
		}
		return ans
	}
	webV4, webV6 := web.Spec.ClusterIPs[0], web.Spec.ClusterIPs[1]
	for _, tc := range []struct {
		network, name string
		typ           dnsmessage.Type
		rcode         dnsmessage.RCode
		want          []string
	}{
		{"udp", "kube-dns.kube-system.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{KubeDNSIP}},
		{"tcp", "kube-dns.kube-system.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{KubeDNSIP}},
		{"udp", "web.dnstest.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{webV4}},
		{"tcp", "web.dnstest.svc.cluster.local.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, []string{webV6}},
		{"udp", "db.dnstest.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"198.18.2.9"}},
		{"udp", "db-0.db.dnstest.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"198.18.2.9"}},
		{"udp", "198-18-1-7.dnstest.pod.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"198.18.1.7"}},
		{"udp", "10.0.19.198.in-addr.arpa.", dnsmessage.TypePTR, dnsmessage.RCodeSuccess, []string{"kube-dns.kube-system.svc.cluster.local."}},
		{"udp", "nosuch.dnstest.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		// No forward plugin: a name outside the cluster fails at once.
		{"udp", "www.example.com.", dnsmessage.TypeA, dnsmessage.RCodeServerFailure, nil},
	} {
		got := q(tc.network, tc.name, tc.typ)
		if got.rcode != tc.rcode || !slices.Equal(got.values, tc.want) {
			t.Errorf("%s %s over %s: %s %v, want %s %v", tc.typ, tc.name, tc.network, got.rcode, got.values, tc.rcode, tc.want)
		}
	}

	// CoreDNS follows the API: a deleted Service stops resolving.
	if err := cs.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "web's name to be gone", 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		got := q("udp", "web.dnstest.svc.cluster.local.", dnsmessage.TypeA)
		return got.rcode == dnsmessage.RCodeNameError, fmt.Sprintf("%s %v", got.rcode, got.values)
	})

	if code, body := httpGet("http://127.0.0.1:9153/metrics"); code != http.StatusOK || !strings.Contains(body, "coredns_dns_requests_total") {
		t.Errorf("metrics: %d, coredns_dns_requests_total present: %v", code, strings.Contains(body, "coredns_dns_requests_total"))
	}
}

// relay accepts TCP connections on listen inside namespace ns and connects each to target
// from the test's own namespace (where envtest's API server listens on loopback), until
// the test ends.
func relay(t *testing.T, ctx context.Context, ns, listen, target string) {
	t.Helper()
	var ln net.Listener
	if err := nsthread.DoNamed(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", listen)
		return err
	}); err != nil {
		t.Fatalf("relay listen in %s: %v", ns, err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", target)
				if err != nil {
					return
				}
				track(u)
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); _ = u.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
}
