package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeAt(t *testing.T) {
	tests := []struct {
		i                 int
		name, ip, ip6     string
		podCIDR, podCIDR6 string
	}{
		{1, "ls-node1", "192.0.2.11", "2001:db8:1::11", "198.18.1.0/24", "2001:db8:1000:1::/64"},
		{3, "ls-node3", "192.0.2.13", "2001:db8:1::13", "198.18.3.0/24", "2001:db8:1000:3::/64"},
		{MaxNodes, "ls-node40", "192.0.2.50", "2001:db8:1::50", "198.18.40.0/24", "2001:db8:1000:40::/64"},
	}
	for _, tc := range tests {
		n := NodeAt(tc.i)
		got := []string{n.Name, n.IP.String(), n.IP6.String(), n.PodCIDR.String(), n.PodCIDR6.String()}
		want := []string{tc.name, tc.ip, tc.ip6, tc.podCIDR, tc.podCIDR6}
		if !slices.Equal(got, want) {
			t.Errorf("NodeAt(%d) = %v, want %v", tc.i, got, want)
		}
		for _, p := range []netip.Prefix{netip.MustParsePrefix(LANCIDR), netip.MustParsePrefix(LANCIDR6)} {
			if !p.Contains(n.IP) && !p.Contains(n.IP6) {
				t.Errorf("node %d addresses outside %s", tc.i, p)
			}
		}
		if !netip.MustParsePrefix(ClusterCIDR).Contains(n.PodCIDR.Addr()) || !netip.MustParsePrefix(ClusterCIDR6).Contains(n.PodCIDR6.Addr()) {
			t.Errorf("node %d pod CIDRs outside the cluster CIDRs", tc.i)
		}
	}
}

func TestNetworkPlan(t *testing.T) {
	plan := networkPlan(Nodes(3))
	var lines []string
	for _, s := range plan {
		lines = append(lines, s.ns+": "+strings.Join(s.args, " "))
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"ls-router: addr add 192.0.2.1/24 dev br0",
		"ls-router: route add 203.0.113.0/24 dev br0",
		"ls-router: -6 route add 2001:db8:100::/64 dev br0",
		"ls-node1: route add 198.18.2.0/24 via 192.0.2.12",
		"ls-node3: -6 route add 2001:db8:1000:1::/64 via 2001:db8:1::11",
		"ls-client: route add default via 198.51.100.1",
		"ls-cp: addr add 192.0.2.2/24 dev eth0",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	// A node never routes its own pod CIDR to itself, and nothing is done in the root
	// namespace except creating veths that go straight into lab namespaces.
	if strings.Contains(all, "ls-node2: route add 198.18.2.0/24") {
		t.Error("node routes its own pod CIDR")
	}
	for _, s := range plan {
		if s.ns == "" && !(s.args[0] == "link" && s.args[1] == "add" && slices.Contains(s.args, "netns")) {
			t.Errorf("root-namespace step that stays in the root namespace: %v", s.args)
		}
	}
}

func TestNsSysctls(t *testing.T) {
	router := strings.Join(nsSysctls("router"), " ")
	for _, want := range []string{"net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.all.arp_ignore=0"} {
		if !strings.Contains(router, want) {
			t.Errorf("router sysctls lack %s", want)
		}
	}
	client := strings.Join(nsSysctls("client"), " ")
	if !strings.Contains(client, "net.ipv4.ip_forward=0") {
		t.Error("client forwards")
	}
	// An ICMPv6 Redirect from the router must not send the client on-link to a LB IP.
	for _, want := range []string{"net.ipv6.conf.all.accept_redirects=0", "net.ipv6.conf.default.accept_redirects=0"} {
		if !strings.Contains(client, want) {
			t.Errorf("client sysctls lack %s", want)
		}
	}
}

func TestFRRConfig(t *testing.T) {
	c := bgpdConfig()
	for _, want := range []string{"router bgp 64500", "bgp listen range 192.0.2.0/24 peer-group NODES", "bgp listen range 2001:db8:1::/64 peer-group NODES6",
		"no bgp ebgp-requires-policy", "maximum-paths 8", "bgp bestpath as-path multipath-relax", "neighbor NODES bfd profile fast", "neighbor NODES timers 3 9", "neighbor NODES timers connect 1"} {
		if !strings.Contains(c, want) {
			t.Errorf("bgpd.conf lacks %q", want)
		}
	}
	if !strings.Contains(bfddConfig(), "profile fast") {
		t.Error("bfdd.conf lacks the fast profile")
	}
}

func TestIdentitiesAreDistinct(t *testing.T) {
	ids := identities(Nodes(3))
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id.User] {
			t.Errorf("user %s used twice", id.User)
		}
		seen[id.User] = true
		if slices.Contains(id.Groups, "system:masters") && id.File != "admin" {
			t.Errorf("%s is cluster-admin", id.File)
		}
	}
	if !seen["system:node:ls-node2"] || !seen[SpeakerUserPrefix+"ls-node3"] {
		t.Errorf("missing per-node identities: %v", seen)
	}
}

func TestStopOrder(t *testing.T) {
	names := []string{"etcd", "frr-bgpd", "kube-apiserver", "nodeagent-ls-node1", "speaker-ls-node1", "kube-proxy-ls-node1", "kube-scheduler", "loadstone-controller"}
	slices.SortStableFunc(names, func(a, b string) int { return stopOrder(a) - stopOrder(b) })
	want := []string{"speaker-ls-node1", "loadstone-controller", "kube-proxy-ls-node1", "nodeagent-ls-node1", "kube-scheduler", "kube-apiserver", "etcd", "frr-bgpd"}
	if !slices.Equal(names, want) {
		t.Errorf("stop order %v, want %v", names, want)
	}
}

func TestProcAlive(t *testing.T) {
	start, _, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	me := Proc{Name: "self", PID: os.Getpid(), StartTime: start, Argv: []string{self}}
	if !me.Alive() {
		t.Error("own process not alive")
	}
	// The same PID with another start time or binary is somebody else: never ours to kill.
	for _, other := range []Proc{
		{Name: "reused", PID: os.Getpid(), StartTime: start + 1, Argv: []string{self}},
		{Name: "other-binary", PID: os.Getpid(), StartTime: start, Argv: []string{"/usr/bin/not-this"}},
		{Name: "gone", PID: 0},
	} {
		if other.Alive() {
			t.Errorf("%s: Alive() = true", other.Name)
		}
	}
}

func TestPodNetns(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "1234"}, Spec: corev1.PodSpec{NodeName: "ls-node2"}}
	got := PodNetns(p)
	if !strings.HasPrefix(got, "ls-pod-n2-") {
		t.Errorf("PodNetns = %q", got)
	}
	p.Annotations = map[string]string{"lab.loadstone.io/netns": "ls-pod-x"}
	if PodNetns(p) != "ls-pod-x" {
		t.Error("annotation ignored")
	}
	if PodNetns(&corev1.Pod{}) != "" {
		t.Error("unscheduled pod has a netns")
	}
}

func TestDecodeYAML(t *testing.T) {
	rbac, err := labRBAC(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeYAML([]byte(samplePool() + "\n---\n" + rbac))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
	}
	if kinds[0] != "IPAddressPool" || kinds[1] != "L2Advertisement" || !slices.Contains(kinds, "RoleBinding") {
		t.Errorf("kinds %v", kinds)
	}
	if _, err := DecodeYAML([]byte("a: [")); err == nil {
		t.Error("bad YAML accepted")
	}
}

func TestPrepareDirRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/precious", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{Dir: dir, RepoRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.prepareDir(); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("prepareDir on a foreign directory: %v", err)
	}
	if _, err := os.Stat(dir + "/precious"); err != nil {
		t.Fatal("foreign file removed")
	}
	if _, err := New(Config{Nodes: MaxNodes + 1, RepoRoot: dir}); err == nil {
		t.Error("too many nodes accepted")
	}
}
