package dataplane

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/dataplane/nft"
	"github.com/loadstone-lb/loadstone/e2e/framework"
	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// svc describes a LoadBalancer Service in dataplane mode pods in front of app's pods
// (the built-in HTTP workload on port 80).
type svc struct {
	name, app    string
	port         int32 // default 8080
	local        bool
	sourceRanges []string
	annotations  map[string]string
	// mode is the dataplane mode annotation (default pods; "-": no annotation, the
	// cluster's default mode); ipv6 makes the Service IPv6-only, dual dual-stack
	// (RequireDualStack, IPv4 first).
	mode       string
	ipv6, dual bool
	// affinity sets sessionAffinity ClientIP.
	affinity bool
}

// create creates the Service and waits for its LB IP.
func create(e *framework.Env, s svc) string {
	e.T.Helper()
	if s.port == 0 {
		s.port = 8080
	}
	if s.mode == "" {
		s.mode = "pods"
	}
	ann := map[string]string{v1beta1.AnnotationDataplaneMode: s.mode}
	if s.mode == "-" {
		delete(ann, v1beta1.AnnotationDataplaneMode)
	}
	for k, v := range s.annotations {
		ann[k] = v
	}
	obj := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: e.Namespace, Annotations: ann},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeLoadBalancer,
			Selector:                 map[string]string{"app": s.app},
			Ports:                    []corev1.ServicePort{{Name: "http", Port: s.port, TargetPort: intstr.FromInt32(80), Protocol: corev1.ProtocolTCP}},
			LoadBalancerSourceRanges: s.sourceRanges,
		},
	}
	if s.local {
		obj.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	if s.ipv6 {
		obj.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	}
	if s.dual {
		policy := corev1.IPFamilyPolicyRequireDualStack
		obj.Spec.IPFamilyPolicy = &policy
		obj.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}
	if s.affinity {
		obj.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	}
	if _, err := e.Client.CoreV1().Services(e.Namespace).Create(e.Context(), obj, metav1.CreateOptions{}); err != nil {
		e.T.Fatalf("create service %s: %v", s.name, err)
	}
	return e.WaitLoadBalancerIPs(s.name, 1, 60*time.Second)[0]
}

func url(ip string, port int) string {
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(port)) + "/"
}

// dial opens one TCP connection from the client namespace.
func dial(ctx context.Context, ip string, port int, timeout time.Duration) error {
	c, err := lab.Dialer{Netns: lab.ClientNS, Timeout: timeout}.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err == nil {
		c.Close()
	}
	return err
}

// ourTable lists `table inet loadstone` in a node's namespace ("" when there is none).
func ourTable(node string) (string, error) {
	out, err := framework.Exec(node, "nft", "list", "table", "inet", nft.TableName)
	if err != nil {
		if strings.Contains(out, "No such file or directory") {
			return "", nil
		}
		return "", err
	}
	return out, nil
}

// kubeProxyTable lists kube-proxy's IPv4 table in a node's namespace.
func kubeProxyTable(node string) (string, error) {
	return framework.Exec(node, "nft", "list", "table", "ip", "kube-proxy")
}

// mentions reports whether an nft listing names ip (not just a longer address starting
// with it).
func mentions(listing, ip string) bool {
	return regexp.MustCompile(`(^|[^0-9a-f:.])` + regexp.QuoteMeta(ip) + `($|[^0-9a-f:.])`).MatchString(listing)
}

var packetsRE = regexp.MustCompile(`packets (\d+)`)

// counter sums the packets of one of our named counters over every node.
func counter(l *lab.Lab, name string) (uint64, error) {
	var sum uint64
	for _, n := range l.Nodes() {
		out, err := framework.Exec(n.Name, "nft", "list", "counter", "inet", nft.TableName, name)
		if err != nil {
			return 0, err
		}
		m := packetsRE.FindStringSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("%s: no packet count in %q", n.Name, out)
		}
		v, _ := strconv.ParseUint(m[1], 10, 64)
		sum += v
	}
	return sum, nil
}

// ipMode is the ipMode of ip in the Service's status (nil when unset or no such IP).
func ipMode(e *framework.Env, name, ip string) *corev1.LoadBalancerIPMode {
	s := e.GetService(name)
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IP == ip {
			return in.IPMode
		}
	}
	return nil
}
