package coverage

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the coverage metrics.
type Metrics struct {
	unannounced *prometheus.GaugeVec
	errors      prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		unannounced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_controller_ips_unannounced",
			Help: "Allocated LB IPs that no node can announce, past the grace period, per reason (NoPool, NoAdvertisement, NoEligibleNode).",
		}, []string{"reason"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_controller_coverage_errors_total",
			Help: "Failed coverage checks (a list from the cache, or an L2Advertisement condition write).",
		}),
	}
	for _, r := range Reasons {
		m.unannounced.WithLabelValues(string(r))
	}
	reg.MustRegister(m.unannounced, m.errors)
	return m
}
