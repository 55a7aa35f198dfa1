package events

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	results *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loadstone_events_total",
		Help: "Events by outcome: written, error (the API refused or failed), repeat (suppressed: the same Event within the repeat window), dropped (queue full), invalid.",
	}, []string{"result"})}
	if reg != nil {
		reg.MustRegister(m.results)
	}
	return m
}
