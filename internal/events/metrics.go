package events

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	results *prometheus.CounterVec
}

// metricName is the name of the Events counter of the binary whose reportingController
// is controller: loadstone_<component>_events_total, the component being the controller
// name without its "loadstone-" prefix ("loadstone-speaker" → loadstone_speaker_events_total).
func metricName(controller string) string {
	c := strings.ReplaceAll(strings.TrimPrefix(controller, "loadstone-"), "-", "_")
	if c == "" {
		return "loadstone_events_total"
	}
	return "loadstone_" + c + "_events_total"
}

func newMetrics(reg prometheus.Registerer, controller string) *metrics {
	m := &metrics{results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricName(controller),
		Help: "Events by outcome: written, error (the API refused or failed), repeat (suppressed: the same Event within the repeat window), dropped (queue full), invalid.",
	}, []string{"result"})}
	for _, r := range []string{"written", "error", "repeat", "dropped", "invalid"} {
		m.results.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.results)
	}
	return m
}
