package service

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loadstone-lb/loadstone/controller/ipam"
)

// Metrics are the Service reconciler's metrics.
type Metrics struct {
	failures  *prometheus.CounterVec
	latency   prometheus.Histogram
	allocated prometheus.Counter
	// unsatisfied counts the Services whose IPAllocated condition is False, by its reason.
	unsatisfied *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_controller_allocation_failures_total",
			Help: "Failed address allocations for Services, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loadstone_controller_service_reconcile_duration_seconds",
			Help:    "Time to reconcile one Service, including its status write.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		allocated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_controller_service_status_writes_total",
			Help: "Service status writes (allocations, changes and releases).",
		}),
	}
	m.unsatisfied = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "loadstone_controller_services_unsatisfied",
		Help: "Services whose loadstone.io/IPAllocated condition is False, by its reason.",
	}, []string{"reason"})
	for _, r := range ipam.AllReasons() {
		m.failures.WithLabelValues(string(r))
	}
	for _, r := range unsatisfiedReasons {
		m.unsatisfied.WithLabelValues(r)
	}
	reg.MustRegister(m.failures, m.latency, m.allocated, m.unsatisfied)
	return m
}
