package pools

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pool metrics.
type Metrics struct {
	total        *prometheus.GaugeVec
	inUse        *prometheus.GaugeVec
	statusWrites prometheus.Counter
	statusErrors prometheus.Counter
	latency      prometheus.Histogram

	conditionWrites *prometheus.CounterVec
	conditionErrors *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		total: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_controller_pool_addresses",
			Help: "Usable addresses of a pool (in use plus available), per family.",
		}, []string{"pool", "family"}),
		inUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_controller_pool_addresses_in_use",
			Help: "Addresses of a pool held by Services (a shared one counts once), per family.",
		}, []string{"pool", "family"}),
		statusWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_controller_pool_status_writes_total",
			Help: "IPAddressPool status writes.",
		}),
		statusErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_controller_pool_status_write_errors_total",
			Help: "Failed IPAddressPool status writes (conflicts included).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loadstone_controller_config_reconcile_duration_seconds",
			Help:    "Time to rebuild and apply the pool configuration.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		conditionWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_controller_condition_writes_total",
			Help: "Condition writes on configuration objects other than IPAddressPools, per kind.",
		}, []string{"kind"}),
		conditionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_controller_condition_write_errors_total",
			Help: "Failed condition writes on configuration objects other than IPAddressPools, per kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.total, m.inUse, m.statusWrites, m.statusErrors, m.latency, m.conditionWrites, m.conditionErrors)
	return m
}
