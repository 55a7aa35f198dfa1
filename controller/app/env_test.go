package app_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
	"github.com/loadstone-lb/loadstone/internal/testenv"
	"github.com/loadstone-lb/loadstone/internal/testwait"
)

// waitTimeout is generous: the tests wait for conditions, never for a time.
const waitTimeout = 90 * time.Second

// startEnv starts a real API server with a dual-stack service CIDR.
func startEnv(t *testing.T) *testenv.Env {
	t.Helper()
	return testenv.Start(t, testenv.Options{
		APIServerFlags: map[string]string{"service-cluster-ip-range": "198.19.0.0/16,2001:db8:2000::/108"},
		AddToScheme:    []func(*runtime.Scheme) error{v1beta1.AddToScheme},
	})
}

// controllerRun is one running controller; stop ends it and waits.
type controllerRun struct {
	*app.Controller
	stop func()
}

func startController(t *testing.T, env *testenv.Env, opts app.Options) *controllerRun {
	t.Helper()
	return startControllerWith(t, env, opts, nil)
}

// startControllerWith is startController with a hook to change the manager's options.
func startControllerWith(t *testing.T, env *testenv.Env, opts app.Options, mut func(*ctrl.Options)) *controllerRun {
	t.Helper()
	mopts := ctrl.Options{
		Scheme:                 env.Scheme,
		Cache:                  app.CacheOptions(),
		Logger:                 testr.NewWithOptions(t, testr.Options{Verbosity: 0}),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if mut != nil {
		mut(&mopts)
	}
	mgr, err := ctrl.NewManager(env.Config, mopts)
	if err != nil {
		t.Fatal(err)
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = 100 * time.Millisecond
	}
	c, err := app.Setup(mgr, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	run := &controllerRun{Controller: c}
	stopped := false
	run.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(run.stop)
	return run
}

type svcOpt func(*corev1.Service)

func lbService(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}, Labels: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			Selector:                      map[string]string{"app": name},
			AllocateLoadBalancerNodePorts: ptr.To(false),
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withAnnotation(k, v string) svcOpt { return func(s *corev1.Service) { s.Annotations[k] = v } }
func withLabel(k, v string) svcOpt      { return func(s *corev1.Service) { s.Labels[k] = v } }
func withPort(p int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "p", Port: p, Protocol: corev1.ProtocolTCP}}
	}
}
func withDual(p corev1.IPFamilyPolicy, fams ...corev1.IPFamily) svcOpt {
	return func(s *corev1.Service) { s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &p, fams }
}

// withSpecIP sets spec.loadBalancerIP, deprecated upstream but still honoured by Loadstone.
func withSpecIP(ip string) svcOpt {
	return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip } //nolint:staticcheck // deliberately tested
}

func withClass(c string) svcOpt { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }

func ipPool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
}

func namespace(t *testing.T, c client.Client, name string, labels map[string]string) {
	t.Helper()
	create(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, waitTimeout, 50*time.Millisecond, cond)
}

func getSvc(t *testing.T, c client.Client, ns, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatalf("get %s/%s: %v", ns, name, err)
	}
	return &s
}

func ingress(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

// waitIPs waits until the Service's ingress is exactly want (in order) and returns it.
func waitIPs(t *testing.T, c client.Client, ns, name string, want ...string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	eventually(t, fmt.Sprintf("%s/%s to have %v", ns, name, want), func() (bool, string) {
		s = getSvc(t, c, ns, name)
		got := ingress(s)
		return slices.Equal(got, want), fmt.Sprintf("ingress %v", got)
	})
	return s
}

// waitEvent waits for an Event with reason on the object whose note contains substr.
func waitEvent(t *testing.T, c client.Client, ns, name, reason, substr string) {
	t.Helper()
	eventually(t, fmt.Sprintf("event %s %q on %s/%s", reason, substr, ns, name), func() (bool, string) {
		var list eventsv1.EventList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name != name {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Note)
			if e.Reason == reason && strings.Contains(e.Note, substr) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("events: %v", seen)
	})
}

// waitPoolStatus waits until the pool's status satisfies cond.
func waitPoolStatus(t *testing.T, c client.Client, name string, cond func(*v1beta1.IPAddressPool) (bool, string)) {
	t.Helper()
	eventually(t, "status of pool "+name, func() (bool, string) {
		var p v1beta1.IPAddressPool
		if err := c.Get(context.Background(), types.NamespacedName{Name: name}, &p); err != nil {
			return false, err.Error()
		}
		return cond(&p)
	})
}

func validCond(p *v1beta1.IPAddressPool) *metav1.Condition {
	return meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionValid)
}

// update re-reads the object and applies mut until the write does not conflict.
func updateSvc(t *testing.T, c client.Client, ns, name string, mut func(*corev1.Service)) {
	t.Helper()
	for {
		s := getSvc(t, c, ns, name)
		mut(s)
		err := c.Update(context.Background(), s)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatalf("update %s/%s: %v", ns, name, err)
		}
	}
}

func updatePool(t *testing.T, c client.Client, name string, mut func(*v1beta1.IPAddressPool)) {
	t.Helper()
	for {
		var p v1beta1.IPAddressPool
		if err := c.Get(context.Background(), types.NamespacedName{Name: name}, &p); err != nil {
			t.Fatal(err)
		}
		mut(&p)
		err := c.Update(context.Background(), &p)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatalf("update pool %s: %v", name, err)
		}
	}
}

// checkNoDuplicates fails if two Services without a common sharing key hold one IP.
func checkNoDuplicates(t *testing.T, c client.Client) {
	t.Helper()
	var list corev1.ServiceList
	if err := c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	owner := map[string]*corev1.Service{}
	for i := range list.Items {
		s := &list.Items[i]
		for _, ip := range ingress(s) {
			if _, err := netip.ParseAddr(ip); err != nil {
				t.Fatalf("%s/%s: bad ingress %q", s.Namespace, s.Name, ip)
			}
			if o := owner[ip]; o != nil {
				k1, k2 := o.Annotations[v1beta1.AnnotationAllowSharedIP], s.Annotations[v1beta1.AnnotationAllowSharedIP]
				if k1 == "" || k1 != k2 {
					t.Fatalf("%s held by %s/%s and %s/%s", ip, o.Namespace, o.Name, s.Namespace, s.Name)
				}
			}
			owner[ip] = s
		}
	}
}
