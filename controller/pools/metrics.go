package pools

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loadstone-lb/loadstone/api/model"
)

// Metrics are the pool metrics.
type Metrics struct {
	total        *prometheus.GaugeVec
	inUse        *prometheus.GaugeVec
	statusWrites prometheus.Counter
	statusErrors prometheus.Counter
	latency      prometheus.Histogram

	conditionWrites *prometheus.CounterVec
	conditionErrors *prometheus.CounterVec
	invalid         *prometheus.GaugeVec
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
		invalid: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_controller_config_invalid_objects",
			Help: "Configuration objects whose Valid condition is False (not in force, or an older version in force), per kind; 0 when all of a kind are valid.",
		}, []string{"kind"}),
	}
	for _, k := range configKinds() {
		m.invalid.WithLabelValues(k)
	}
	reg.MustRegister(m.total, m.inUse, m.statusWrites, m.statusErrors, m.latency, m.conditionWrites, m.conditionErrors, m.invalid)
	return m
}

// configKinds are the kinds whose objects get a Valid condition (or, without a status,
// Events), IPAddressPool first.
func configKinds() []string {
	out := []string{model.KindIPAddressPool}
	for _, k := range otherKinds() {
		out = append(out, k.kind)
	}
	return out
}

// setInvalid sets the invalid-object gauge from a Build's problems: an object with a
// problem is one whose Valid condition is False (model.ValidCondition).
func (m *Metrics) setInvalid(problems []model.Problem, objs []configObject) {
	n := map[string]int{}
	for _, o := range objs {
		if len(model.ProblemsOf(problems, o.kind, o.obj.GetName())) > 0 {
			n[o.kind]++
		}
	}
	for _, k := range configKinds() {
		m.invalid.WithLabelValues(k).Set(float64(n[k]))
	}
}
