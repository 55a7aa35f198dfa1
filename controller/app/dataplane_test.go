package app_test

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
	"github.com/loadstone-lb/loadstone/controller/service"
)

const (
	vip   = corev1.LoadBalancerIPModeVIP
	proxy = corev1.LoadBalancerIPModeProxy
)

// waitIPModes waits until the Service has exactly the ipModes want, one per ingress entry.
func waitIPModes(t *testing.T, c client.Client, ns, name string, want ...corev1.LoadBalancerIPMode) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s/%s to have ipModes %v", ns, name, want), func() (bool, string) {
		got := ipModes(getSvc(t, c, ns, name))
		return len(got) > 0 && slices.Equal(got, want), fmt.Sprintf("ipModes %v", got)
	})
}

func ipModes(s *corev1.Service) []corev1.LoadBalancerIPMode {
	var out []corev1.LoadBalancerIPMode
	for _, in := range s.Status.LoadBalancer.Ingress {
		m := corev1.LoadBalancerIPMode("<nil>")
		if in.IPMode != nil {
			m = *in.IPMode
		}
		out = append(out, m)
	}
	return out
}

func poolWithMode(name string, mode v1beta1.DataplaneMode, addrs ...string) *v1beta1.IPAddressPool {
	p := ipPool(name, addrs...)
	p.Spec.DataplaneMode = mode
	return p
}

// TestDataplaneModes checks, against the real API server, that each ingress entry's ipMode
// follows the effective dataplane mode (the Service's loadstone.io/dataplane-mode annotation,
// else its pool's spec.dataplaneMode, else the cluster default), that editing the annotation
// or the pool's mode rewrites the ipMode of existing Services, and that an invalid annotation
// gets a Warning Event and leaves the ipMode as it was.
func TestDataplaneModes(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ns := "modes"
	namespace(t, c, ns, nil)
	deflt := service.IPModeOf(model.DefaultDataplaneMode)
	inPool := func(p string) func(*corev1.Service) { return withAnnotation(v1beta1.AnnotationAddressPool, p) }
	mode := func(m string) func(*corev1.Service) { return withAnnotation(v1beta1.AnnotationDataplaneMode, m) }
	create(t, c,
		ipPool("plain", "203.0.113.0/29", "2001:db8:100::/125"),
		poolWithMode("dp", v1beta1.DataplaneModePods, "203.0.113.8/29"),
		poolWithMode("np", v1beta1.DataplaneModeNodePort, "203.0.113.16/29"),
		poolWithMode("kp", v1beta1.DataplaneModeOff, "203.0.113.24/29"))
	startController(t, env, app.Options{})

	create(t, c,
		lbService(ns, "default", inPool("plain")),
		lbService(ns, "dual", inPool("plain"), withDual(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol)),
		lbService(ns, "plain-off", inPool("plain"), mode("off")),
		lbService(ns, "pods", inPool("dp")),
		lbService(ns, "nodeport", inPool("np")),
		lbService(ns, "off", inPool("kp")),
		lbService(ns, "off-to-pods", inPool("kp"), mode("pods")),
		lbService(ns, "pods-to-off", inPool("dp"), mode("off")),
		lbService(ns, "pods-to-nodeport", inPool("dp"), mode("nodeport")),
	)

	t.Run("pool field, annotation, default", func(t *testing.T) {
		waitIPModes(t, c, ns, "default", deflt)
		waitIPModes(t, c, ns, "dual", deflt, deflt)
		waitIPModes(t, c, ns, "plain-off", vip)
		waitIPModes(t, c, ns, "pods", proxy)
		waitIPModes(t, c, ns, "nodeport", proxy)
		waitIPModes(t, c, ns, "off", vip)
		waitIPModes(t, c, ns, "off-to-pods", proxy)
		waitIPModes(t, c, ns, "pods-to-off", vip)
		waitIPModes(t, c, ns, "pods-to-nodeport", proxy)
		if got := ingress(getSvc(t, c, ns, "dual")); len(got) != 2 {
			t.Errorf("dual: ingress %v, want two entries", got)
		}
	})

	t.Run("annotation edits", func(t *testing.T) {
		updateSvc(t, c, ns, "off", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationDataplaneMode] = "nodeport" })
		waitIPModes(t, c, ns, "off", proxy)
		updateSvc(t, c, ns, "pods", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationDataplaneMode] = "off" })
		waitIPModes(t, c, ns, "pods", vip)
		// Removing the annotation goes back to the pool's mode.
		updateSvc(t, c, ns, "pods", func(s *corev1.Service) { delete(s.Annotations, v1beta1.AnnotationDataplaneMode) })
		waitIPModes(t, c, ns, "pods", proxy)
		updateSvc(t, c, ns, "off", func(s *corev1.Service) { delete(s.Annotations, v1beta1.AnnotationDataplaneMode) })
		waitIPModes(t, c, ns, "off", vip)
	})

	t.Run("invalid annotation: Event, ipMode stays", func(t *testing.T) {
		// Proxy stays Proxy although the pool (kp) says off...
		updateSvc(t, c, ns, "off-to-pods", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationDataplaneMode] = "ebpf" })
		waitEvent(t, c, ns, "off-to-pods", service.EventInvalidDataplaneMode, `dataplane mode "ebpf" is not one of pods, nodeport or off; ipMode stays as it was`)
		// The Event is written after the status patch of the same reconcile.
		if got := ipModes(getSvc(t, c, ns, "off-to-pods")); !slices.Equal(got, []corev1.LoadBalancerIPMode{proxy}) {
			t.Errorf("off-to-pods after an invalid annotation: ipModes %v, want [Proxy] as before", got)
		}
		// ... and VIP stays VIP although the pool (dp) says pods.
		updateSvc(t, c, ns, "pods-to-off", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationDataplaneMode] = "Pods" })
		waitEvent(t, c, ns, "pods-to-off", service.EventInvalidDataplaneMode, `"Pods" is not one of`)
		if got := ipModes(getSvc(t, c, ns, "pods-to-off")); !slices.Equal(got, []corev1.LoadBalancerIPMode{vip}) {
			t.Errorf("pods-to-off after an invalid annotation: ipModes %v, want [VIP] as before", got)
		}
		// A new Service with an invalid annotation still gets its IP, with the mode its
		// pool gives, and the Event.
		create(t, c, lbService(ns, "born-bad", inPool("np"), mode("fast")))
		waitEvent(t, c, ns, "born-bad", service.EventInvalidDataplaneMode, `"fast" is not one of`)
		waitIPModes(t, c, ns, "born-bad", proxy)
		// Fixing the annotation applies it.
		updateSvc(t, c, ns, "off-to-pods", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationDataplaneMode] = "off" })
		waitIPModes(t, c, ns, "off-to-pods", vip)
	})

	t.Run("pool mode changes", func(t *testing.T) {
		before := map[string][]string{}
		for _, name := range []string{"default", "dual", "pods", "plain-off"} {
			before[name] = ingress(getSvc(t, c, ns, name))
		}
		// plain: unset -> nodeport. Unannotated Services follow (both entries of the dual
		// one); the one annotated off does not.
		updatePool(t, c, "plain", func(p *v1beta1.IPAddressPool) { p.Spec.DataplaneMode = v1beta1.DataplaneModeNodePort })
		waitIPModes(t, c, ns, "default", proxy)
		waitIPModes(t, c, ns, "dual", proxy, proxy)
		// dp: pods -> off. pods-to-nodeport keeps its annotation's Proxy; pods-to-off (an
		// invalid annotation) keeps what it had.
		updatePool(t, c, "dp", func(p *v1beta1.IPAddressPool) { p.Spec.DataplaneMode = v1beta1.DataplaneModeOff })
		waitIPModes(t, c, ns, "pods", vip)
		// Back to unset: the cluster default.
		updatePool(t, c, "plain", func(p *v1beta1.IPAddressPool) { p.Spec.DataplaneMode = "" })
		waitIPModes(t, c, ns, "default", deflt)
		waitIPModes(t, c, ns, "dual", deflt, deflt)
		// Services the changes did not concern kept their ipMode throughout. (The waits
		// above saw the changed pools' Services rewritten; these were reconciled too.)
		for name, want := range map[string]corev1.LoadBalancerIPMode{"plain-off": vip, "pods-to-nodeport": proxy, "pods-to-off": vip, "nodeport": proxy} {
			if got := ipModes(getSvc(t, c, ns, name)); !slices.Equal(got, []corev1.LoadBalancerIPMode{want}) {
				t.Errorf("%s: ipModes %v, want [%s]", name, got, want)
			}
		}
		// The addresses never moved.
		checkNoDuplicates(t, c)
		for name, ips := range before {
			if got := ingress(getSvc(t, c, ns, name)); !slices.Equal(got, ips) {
				t.Errorf("%s: ingress %v after mode changes, want %v kept", name, got, ips)
			}
		}
	})
}
