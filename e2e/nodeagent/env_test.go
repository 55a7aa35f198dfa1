package nodeagent

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "x", "NODE_NAME": "ls-node1"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"--node-name=$(NODE_NAME)": "--node-name=ls-node1",
		"$(A)$(A)":                 "xx",
		"$$(A)":                    "$(A)",
		"$(MISSING)":               "$(MISSING)",
		"cost $5":                  "cost $5",
		"$(unterminated":           "$(unterminated",
		"$$$$":                     "$$",
	} {
		if got := Expand(in, lookup); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainerEnvPrecedence(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
		Env: []corev1.EnvVar{
			{Name: "A", Value: "from-env"},
			{Name: "B", Value: "$(A)-$(NODE)"},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIPs"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "none"}, Key: "k", Optional: ptr(true)}}},
		},
	}
	got, err := ContainerEnv(pod, c, EnvSources{
		ConfigMaps: map[string]map[string]string{"cm": {"A": "from-cm", "C": "c"}},
		Services:   ServiceEnv(netip.MustParseAddr("198.19.0.1"), 443),
		PodIPs:     []netip.Addr{netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("2001:db8::2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=from-env", "B=from-env-$(NODE)", "C=c", "HOSTNAME=p", "IP=198.18.1.2,2001:db8::2",
		"KUBERNETES_PORT=tcp://198.19.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://198.19.0.1:443", "KUBERNETES_PORT_443_TCP_ADDR=198.19.0.1",
		"KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_PROTO=tcp", "KUBERNETES_SERVICE_HOST=198.19.0.1",
		"KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443", "NODE=n1", "PATH=" + defaultPath}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env\n got %v\nwant %v", got, want)
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "none"}, Key: "k"}}})
	if _, err := ContainerEnv(pod, c, EnvSources{ConfigMaps: map[string]map[string]string{"cm": {}}}); err == nil {
		t.Error("a missing required secret is not an error")
	}
}

func TestResolvConf(t *testing.T) {
	dns := DNSConfig{Server: netip.MustParseAddr("198.19.0.10")}
	cluster := "search web.svc.cluster.local svc.cluster.local cluster.local\nnameserver 198.19.0.10\noptions ndots:5\n"
	pod := func(policy corev1.DNSPolicy, hostNet bool) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "web"}, Spec: corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet}}
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		dns  DNSConfig
		want string
	}{
		{"ClusterFirst", pod(corev1.DNSClusterFirst, false), dns, cluster},
		{"unset policy", pod("", false), dns, cluster},
		{"ClusterFirst on the host network uses the host's", pod(corev1.DNSClusterFirst, true), dns, ""},
		{"ClusterFirstWithHostNet", pod(corev1.DNSClusterFirstWithHostNet, true), dns, cluster},
		{"Default", pod(corev1.DNSDefault, false), dns, ""},
		{"no cluster DNS", pod(corev1.DNSClusterFirst, false), DNSConfig{}, ""},
	} {
		if got := ResolvConf(tc.pod, tc.dns); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	p := pod(corev1.DNSNone, false)
	p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53"}, Searches: []string{"example.org"}}
	if got, want := ResolvConf(p, dns), "search example.org\nnameserver 192.0.2.53\n"; got != want {
		t.Errorf("None with dnsConfig: %q, want %q", got, want)
	}
}
