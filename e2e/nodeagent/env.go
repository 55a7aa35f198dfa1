package nodeagent

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func metav1Time(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

// Expand replaces $(NAME) in s with NAME's value from lookup, as Kubernetes does in
// command, args and env values: $$ is a literal $, and a reference to an unknown name
// stays as it is.
func Expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// EnvSources is what a container's environment refers to besides the pod itself.
type EnvSources struct {
	// Secrets and ConfigMaps of the pod's namespace by name (nil: does not exist).
	Secrets    map[string]map[string][]byte
	ConfigMaps map[string]map[string]string
	// Services are the service environment variables (KUBERNETES_SERVICE_HOST, ...),
	// lowest precedence.
	Services map[string]string
	PodIPs   []netip.Addr
	HostIPs  []netip.Addr
}

// ContainerEnv computes a container's environment as the kubelet and the runtime do: the
// runtime's PATH and HOSTNAME, the service variables, envFrom, then env (later ones win),
// each value with $(VAR) references to earlier variables expanded. It returns the
// variables as NAME=VALUE, sorted by name.
func ContainerEnv(pod *corev1.Pod, c *corev1.Container, src EnvSources) ([]string, error) {
	env := map[string]string{
		"PATH":     defaultPath,
		"HOSTNAME": pod.Name,
	}
	if pod.Spec.HostNetwork {
		delete(env, "HOSTNAME")
	}
	for k, v := range src.Services {
		env[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, ef := range c.EnvFrom {
		optional := false
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			optional = ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
			cm, ok := src.ConfigMaps[ef.ConfigMapRef.Name]
			if !ok || cm == nil {
				if optional {
					continue
				}
				return nil, fmt.Errorf("configmap %q not found", ef.ConfigMapRef.Name)
			}
			data = cm
		case ef.SecretRef != nil:
			optional = ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
			s, ok := src.Secrets[ef.SecretRef.Name]
			if !ok || s == nil {
				if optional {
					continue
				}
				return nil, fmt.Errorf("secret %q not found", ef.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range s {
				data[k] = string(v)
			}
		}
		for k, v := range data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = Expand(e.Value, lookup)
			continue
		}
		v, skip, err := envValueFrom(pod, e.ValueFrom, src)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			env[e.Name] = v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

func envValueFrom(pod *corev1.Pod, vf *corev1.EnvVarSource, src EnvSources) (string, bool, error) {
	switch {
	case vf.FieldRef != nil:
		v, err := podField(pod, vf.FieldRef.FieldPath, src)
		return v, false, err
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s := src.Secrets[ref.Name]
		v, ok := s[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			if s == nil {
				return "", false, fmt.Errorf("secret %q not found", ref.Name)
			}
			return "", false, fmt.Errorf("key %q not in secret %q", ref.Key, ref.Name)
		}
		return string(v), false, nil
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm := src.ConfigMaps[ref.Name]
		v, ok := cm[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			if cm == nil {
				return "", false, fmt.Errorf("configmap %q not found", ref.Name)
			}
			return "", false, fmt.Errorf("key %q not in configmap %q", ref.Key, ref.Name)
		}
		return v, false, nil
	case vf.ResourceFieldRef != nil:
		// No resource accounting in the lab: limits are reported as the node's "0".
		return "0", false, nil
	}
	return "", true, nil
}

// podField is the value of a downward-API field path.
func podField(pod *corev1.Pod, path string, src EnvSources) (string, error) {
	ips := func(a []netip.Addr) []string {
		var s []string
		for _, x := range a {
			s = append(s, x.String())
		}
		return s
	}
	first := func(a []netip.Addr) string {
		if len(a) == 0 {
			return ""
		}
		return a[0].String()
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return first(src.PodIPs), nil
	case "status.podIPs":
		return strings.Join(ips(src.PodIPs), ","), nil
	case "status.hostIP":
		return first(src.HostIPs), nil
	case "status.hostIPs":
		return strings.Join(ips(src.HostIPs), ","), nil
	case "metadata.labels", "metadata.annotations":
		m := pod.Labels
		if path == "metadata.annotations" {
			m = pod.Annotations
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(m[k]))
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels['", pod.Labels}, {"metadata.annotations['", pod.Annotations}} {
		if k, ok := strings.CutPrefix(path, p.prefix); ok {
			return p.m[strings.TrimSuffix(k, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported field path %q", path)
}

// ServiceEnv is the environment the kubelet derives from the "kubernetes" Service.
func ServiceEnv(ip netip.Addr, port int32) map[string]string {
	if !ip.IsValid() {
		return nil
	}
	p := strconv.Itoa(int(port))
	host := ip.String()
	url := "tcp://" + host + ":" + p
	if ip.Is6() {
		url = "tcp://[" + host + "]:" + p
	}
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":             host,
		"KUBERNETES_SERVICE_PORT":             p,
		"KUBERNETES_SERVICE_PORT_HTTPS":       p,
		"KUBERNETES_PORT":                     url,
		"KUBERNETES_PORT_" + p + "_TCP":       url,
		"KUBERNETES_PORT_" + p + "_TCP_PROTO": "tcp",
		"KUBERNETES_PORT_" + p + "_TCP_PORT":  p,
		"KUBERNETES_PORT_" + p + "_TCP_ADDR":  host,
	}
}

// DNSConfig is the cluster DNS the agent gives pods.
type DNSConfig struct {
	// Server is the kube-dns Service IP; invalid: pods get the host's resolv.conf.
	Server netip.Addr
	// Domain is the cluster domain ("cluster.local" if empty).
	Domain string
}

// ResolvConf returns the resolv.conf of a pod, or "" when the pod uses the host's file.
func ResolvConf(pod *corev1.Pod, dns DNSConfig) string {
	domain := dns.Domain
	if domain == "" {
		domain = "cluster.local"
	}
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	var servers, searches []string
	options := []string{}
	switch {
	case policy == corev1.DNSNone:
	case policy == corev1.DNSDefault, !dns.Server.IsValid(),
		policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork:
		if pod.Spec.DNSConfig == nil {
			return ""
		}
		// The host's file plus dnsConfig: keep it simple and use the host's.
		return ""
	default:
		servers = []string{dns.Server.String()}
		searches = []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
		options = []string{"ndots:5"}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = append(servers, dc.Nameservers...)
		searches = append(searches, dc.Searches...)
		for _, o := range dc.Options {
			if o.Value != nil {
				options = append(options, o.Name+":"+*o.Value)
			} else {
				options = append(options, o.Name)
			}
		}
	}
	var b strings.Builder
	if len(searches) > 0 {
		b.WriteString("search " + strings.Join(searches, " ") + "\n")
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.String()
}
