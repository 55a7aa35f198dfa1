package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
)

// gauge returns the value of name{label=value} in reg (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func waitGauge(t *testing.T, reg *prometheus.Registry, reason string, want float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("loadstone_controller_ips_unannounced{reason=%q} = %v", reason, want), func() (bool, string) {
		got := gauge(t, reg, "loadstone_controller_ips_unannounced", "reason", reason)
		return got == want, fmt.Sprintf("%v", got)
	})
}

func updateL2(t *testing.T, c client.Client, name string, mut func(*v1beta1.L2Advertisement)) {
	t.Helper()
	for {
		var ad v1beta1.L2Advertisement
		if err := c.Get(context.Background(), types.NamespacedName{Name: name}, &ad); err != nil {
			t.Fatal(err)
		}
		mut(&ad)
		err := c.Update(context.Background(), &ad)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
}

// TestUnannounced: an allocated IP that no node can announce gets a Warning Event on its
// Service and counts in loadstone_controller_ips_unannounced{reason}, first because no
// advertisement covers its pool, then because the advertisement selects no node; once a
// node is eligible the gauge returns to 0. A speaker's report of a missing interface
// turns the L2Advertisement's InterfacesFound condition False next to its Valid one.
func TestUnannounced(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	ctx := context.Background()
	ns := "unannounced"
	namespace(t, c, ns, nil)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}}}
	create(t, c, node)
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if err := c.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	create(t, c, ipPool("p", "203.0.113.0/30"))
	reg := prometheus.NewRegistry()
	startController(t, env, app.Options{Registerer: reg, CoverageInterval: 100 * time.Millisecond, UnannouncedGrace: time.Second})
	create(t, c, lbService(ns, "s"), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "s-1", Labels: map[string]string{discoveryv1.LabelServiceName: "s"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})
	waitIPs(t, c, ns, "s", "203.0.113.0")

	waitEvent(t, c, ns, "s", "NoAdvertisement", "203.0.113.0 (pool p) is announced by no node: no L2Advertisement or BGPAdvertisement covers pool p")
	waitGauge(t, reg, "NoAdvertisement", 1)

	// An advertisement for the pool that selects no node.
	create(t, c, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2"},
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"p"}, Interfaces: []string{"eht0"},
			NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": "z"}}}}})
	waitEvent(t, c, ns, "s", "NoEligibleNode", "L2Advertisement l2: no Ready node that is not excluded from load balancing matches its node selectors")
	waitGauge(t, reg, "NoEligibleNode", 1)
	waitGauge(t, reg, "NoAdvertisement", 0)

	// Selecting n1 makes the IP announceable.
	updateL2(t, c, "l2", func(ad *v1beta1.L2Advertisement) {
		ad.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": "a"}}}
	})
	waitGauge(t, reg, "NoEligibleNode", 0)
	// No speaker runs here, so none reports announcing the IP.
	waitEvent(t, c, ns, "s", "NotAnnounced", "203.0.113.0 (pool p) is announced by no node: nodes are eligible, but no speaker reports announcing it")
	waitGauge(t, reg, "NotAnnounced", 1)

	// n1's speaker, elected for the IP, reports that it lacks eht0 (what the speaker
	// writes; no speaker runs here).
	st := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s-n1",
		Labels: map[string]string{v1beta1.LabelStatusNode: "n1", v1beta1.LabelStatusService: "s"}}}
	create(t, c, st)
	st.Status = v1beta1.ServiceL2StatusStatus{Node: "n1", ServiceName: "s",
		MissingInterfaces: []v1beta1.MissingInterface{{L2Advertisement: "l2", Interface: "eht0"}}}
	if err := c.Status().Update(ctx, st); err != nil {
		t.Fatal(err)
	}
	var ad v1beta1.L2Advertisement
	eventually(t, "l2 InterfacesFound=False next to Valid=True", func() (bool, string) {
		if err := c.Get(ctx, types.NamespacedName{Name: "l2"}, &ad); err != nil {
			return false, err.Error()
		}
		f := meta.FindStatusCondition(ad.Status.Conditions, v1beta1.ConditionInterfacesFound)
		v := meta.FindStatusCondition(ad.Status.Conditions, v1beta1.ConditionValid)
		ok := f != nil && f.Status == metav1.ConditionFalse && f.Reason == v1beta1.ReasonInterfaceMissing &&
			f.Message == `no node elected for this advertisement's addresses has interface "eht0" (missing on n1); check the spelling of spec.interfaces` &&
			v != nil && v.Status == metav1.ConditionTrue
		return ok, fmt.Sprintf("%+v", ad.Status.Conditions)
	})

	// Fixed spelling: the speaker reports answering on eth0; the condition turns True.
	updateL2(t, c, "l2", func(ad *v1beta1.L2Advertisement) { ad.Spec.Interfaces = []string{"eth0"} })
	st.Status.MissingInterfaces, st.Status.Interfaces, st.Status.IPs = nil, []string{"eth0"}, []string{"203.0.113.0"}
	if err := c.Status().Update(ctx, st); err != nil {
		t.Fatal(err)
	}
	eventually(t, "l2 InterfacesFound=True", func() (bool, string) {
		if err := c.Get(ctx, types.NamespacedName{Name: "l2"}, &ad); err != nil {
			return false, err.Error()
		}
		f := meta.FindStatusCondition(ad.Status.Conditions, v1beta1.ConditionInterfacesFound)
		v := meta.FindStatusCondition(ad.Status.Conditions, v1beta1.ConditionValid)
		ok := f != nil && f.Status == metav1.ConditionTrue && f.ObservedGeneration == ad.Generation && v != nil && v.Status == metav1.ConditionTrue
		return ok, fmt.Sprintf("%+v", ad.Status.Conditions)
	})
	// The status now lists the IP: announced.
	waitGauge(t, reg, "NotAnnounced", 0)
}
