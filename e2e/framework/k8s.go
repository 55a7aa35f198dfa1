package framework

import (
	"context"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/loadstone-lb/loadstone/e2e/lab"
)

// Deployment describes an echo workload: the node agent serves HTTP (pod name, node,
// client address:port) on TCP container ports and echoes on UDP ones, whatever the image.
type Deployment struct {
	Name     string
	Replicas int32
	// Port is the container port (TCP, HTTP); default 80.
	Port int32
	// UDPPort, if set, adds a UDP echo port.
	UDPPort int32
	// GracePeriod is terminationGracePeriodSeconds (default 2: tests should not wait 30 s).
	GracePeriod int64
	// Readiness adds an httpGet readiness probe on Port.
	Readiness bool
	// NodeSelector pins the pods.
	NodeSelector map[string]string
}

// CreateDeployment creates the deployment in the test's namespace and waits until all its
// replicas are ready.
func (e *Env) CreateDeployment(d Deployment) *appsv1.Deployment {
	e.T.Helper()
	if d.Port == 0 {
		d.Port = 80
	}
	if d.GracePeriod == 0 {
		d.GracePeriod = 2
	}
	labels := map[string]string{"app": d.Name}
	c := corev1.Container{Name: d.Name, Image: "lab/echo",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: d.Port, Protocol: corev1.ProtocolTCP}}}
	if d.UDPPort != 0 {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: "udp", ContainerPort: d.UDPPort, Protocol: corev1.ProtocolUDP})
	}
	if d.Readiness {
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(d.Port)}},
			PeriodSeconds: 1, FailureThreshold: 1}
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: e.Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &d.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{c}, NodeSelector: d.NodeSelector,
					TerminationGracePeriodSeconds: &d.GracePeriod},
			},
		},
	}
	dep, err := e.Client.AppsV1().Deployments(e.Namespace).Create(e.Context(), dep, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatalf("create deployment %s: %v", d.Name, err)
	}
	e.WaitDeploymentReady(d.Name, d.Replicas)
	return dep
}

// WaitDeploymentReady waits until the deployment has n ready replicas and no others.
func (e *Env) WaitDeploymentReady(name string, n int32) {
	e.T.Helper()
	e.Eventually(fmt.Sprintf("deployment %s with %d ready replicas", name, n), 90*time.Second, func() (bool, error) {
		d, err := e.Client.AppsV1().Deployments(e.Namespace).Get(e.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.ReadyReplicas == n && s.UpdatedReplicas == n && s.Replicas == n, nil
	})
}

// Scale sets the deployment's replicas (it does not wait).
func (e *Env) Scale(name string, n int32) {
	e.T.Helper()
	s, err := e.Client.AppsV1().Deployments(e.Namespace).GetScale(e.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	s.Spec.Replicas = n
	if _, err := e.Client.AppsV1().Deployments(e.Namespace).UpdateScale(e.Context(), name, s, metav1.UpdateOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// Service describes a Service in front of a Deployment's pods.
type Service struct {
	Name     string
	Selector string // value of label app
	Type     corev1.ServiceType
	Port     int32 // default 8080
	Target   int32 // default 80
	UDPPort  int32 // optional UDP port, same number on pods
	// Families, if set, makes the Service dual-stack (PreferDualStack) with these families.
	Families []corev1.IPFamily
	// ExternalTrafficPolicy, if set.
	ExternalTrafficPolicy corev1.ServiceExternalTrafficPolicy
	Annotations           map[string]string
}

// CreateService creates the Service in the test's namespace.
func (e *Env) CreateService(s Service) *corev1.Service {
	e.T.Helper()
	if s.Port == 0 {
		s.Port = 8080
	}
	if s.Target == 0 {
		s.Target = 80
	}
	if s.Type == "" {
		s.Type = corev1.ServiceTypeClusterIP
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: e.Namespace, Annotations: s.Annotations},
		Spec: corev1.ServiceSpec{
			Type:                  s.Type,
			Selector:              map[string]string{"app": s.Selector},
			Ports:                 []corev1.ServicePort{{Name: "http", Port: s.Port, TargetPort: intstr.FromInt32(s.Target), Protocol: corev1.ProtocolTCP}},
			ExternalTrafficPolicy: s.ExternalTrafficPolicy,
		},
	}
	if s.UDPPort != 0 {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "udp", Port: s.UDPPort, TargetPort: intstr.FromInt32(s.UDPPort), Protocol: corev1.ProtocolUDP})
	}
	if len(s.Families) > 0 {
		p := corev1.IPFamilyPolicyPreferDualStack
		svc.Spec.IPFamilyPolicy = &p
		svc.Spec.IPFamilies = s.Families
	}
	out, err := e.Client.CoreV1().Services(e.Namespace).Create(e.Context(), svc, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatalf("create service %s: %v", s.Name, err)
	}
	return out
}

// GetService reads a Service of the test's namespace.
func (e *Env) GetService(name string) *corev1.Service {
	e.T.Helper()
	s, err := e.Client.CoreV1().Services(e.Namespace).Get(e.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}

// Endpoints are the ready endpoints of a Service.
type Endpoints struct {
	// Addrs are sorted pod IPs.
	Addrs []string
	// Nodes are the nodes with at least one ready endpoint.
	Nodes map[string]bool
}

// ReadyEndpoints reads the ready endpoints of a Service from its EndpointSlices.
func (e *Env) ReadyEndpoints(ctx context.Context, svc string) (Endpoints, error) {
	list, err := e.Client.DiscoveryV1().EndpointSlices(e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return Endpoints{}, err
	}
	out := Endpoints{Nodes: map[string]bool{}}
	seen := map[string]bool{}
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				if !seen[a] {
					seen[a] = true
					out.Addrs = append(out.Addrs, a)
				}
			}
			if ep.NodeName != nil {
				out.Nodes[*ep.NodeName] = true
			}
		}
	}
	sort.Strings(out.Addrs)
	return out, nil
}

// WaitEndpoints waits until the Service has exactly n ready endpoint addresses (per
// family: a dual-stack Service has 2n) and returns them.
func (e *Env) WaitEndpoints(svc string, n int) Endpoints {
	e.T.Helper()
	var eps Endpoints
	e.Eventually(fmt.Sprintf("%d ready endpoints of %s", n, svc), 60*time.Second, func() (bool, error) {
		var err error
		eps, err = e.ReadyEndpoints(e.Context(), svc)
		return err == nil && len(eps.Addrs) == n, err
	})
	return eps
}

// Pods lists the pods with label app=name in the test's namespace.
func (e *Env) Pods(app string) []corev1.Pod {
	e.T.Helper()
	list, err := e.Client.CoreV1().Pods(e.Namespace).List(e.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		e.T.Fatal(err)
	}
	return list.Items
}

// RunningPods returns the Running, not terminating pods of app.
func (e *Env) RunningPods(app string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range e.Pods(app) {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// PodNetns is the network namespace of a pod (for nsthread.DoNamed, lab.Dialer, `ip netns exec`).
func PodNetns(p *corev1.Pod) string { return lab.PodNetns(p) }

// WaitLoadBalancerIPs waits until a Service has n ingress IPs and returns them.
func (e *Env) WaitLoadBalancerIPs(name string, n int, timeout time.Duration) []string {
	e.T.Helper()
	var ips []string
	e.Eventually(fmt.Sprintf("%d load-balancer IPs on %s", n, name), timeout, func() (bool, error) {
		s, err := e.Client.CoreV1().Services(e.Namespace).Get(e.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ips = ips[:0]
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				ips = append(ips, in.IP)
			}
		}
		return len(ips) >= n, nil
	})
	return ips
}
