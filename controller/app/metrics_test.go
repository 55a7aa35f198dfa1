package app_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/controller/app"
	"github.com/loadstone-lb/loadstone/internal/metricsdoc"
)

// metricValue returns the gauge or counter name{label=value} that g gathers, and false
// when there is none.
func metricValue(t *testing.T, g prometheus.Gatherer, name, label, value string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
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
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue(), true
					}
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestMetrics runs the controller as main does, on controller-runtime's registry (the one
// main serves), with invalid configuration objects and a dual-stack pool: the
// invalid-object gauge counts them per kind, the pool gauges are per family, and every
// metric is checked against docs/metrics.md and promlint.
func TestMetrics(t *testing.T) {
	env := startEnv(t)
	c := env.Client
	rec := metricsdoc.NewRecorder(ctrlmetrics.Registry)
	create(t, c, ipPool("m1", "203.0.113.0/29", "2001:db8:100::/125"))
	startController(t, env, app.Options{Registerer: rec})
	// m2 overlaps m1; the advertisement names a missing pool.
	create(t, c, ipPool("m2", "203.0.113.4-203.0.113.20"),
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2"},
			Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"m1", "missing-pool"}}})
	eventually(t, "one invalid pool and one invalid advertisement", func() (bool, string) {
		p, _ := metricValue(t, ctrlmetrics.Registry, "loadstone_controller_config_invalid_objects", "kind", "IPAddressPool")
		l, _ := metricValue(t, ctrlmetrics.Registry, "loadstone_controller_config_invalid_objects", "kind", "L2Advertisement")
		b, ok := metricValue(t, ctrlmetrics.Registry, "loadstone_controller_config_invalid_objects", "kind", "BGPPeer")
		return p == 1 && l == 1 && b == 0 && ok, fmt.Sprintf("pools %v, advertisements %v, peers %v (exported %v)", p, l, b, ok)
	})
	eventually(t, "m1's usable addresses per family", func() (bool, string) {
		v4, _ := metricValue(t, ctrlmetrics.Registry, "loadstone_controller_pool_addresses", "family", "ipv4")
		v6, _ := metricValue(t, ctrlmetrics.Registry, "loadstone_controller_pool_addresses", "family", "ipv6")
		return v4 > 0 && v6 > 0, fmt.Sprintf("ipv4 %v, ipv6 %v", v4, v6)
	})
	metricsdoc.Check(t, metricsdoc.Controller, ctrlmetrics.Registry, rec)
}
