package nodeagent

import "github.com/prometheus/client_golang/prometheus"

// metrics are the agent's Prometheus metrics; they are registered on the injected
// Registerer (none when it is nil).
type metrics struct {
	pods        prometheus.Gauge
	syncs       *prometheus.CounterVec
	podStarts   prometheus.Counter
	podKills    prometheus.Counter
	probeErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pods: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_nodeagent_pods",
			Help: "Pods the lab node agent runs (with a network namespace and a workload).",
		}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_nodeagent_pod_syncs_total",
			Help: "Pod syncs by result (ok, error).",
		}, []string{"result"}),
		podStarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_nodeagent_pod_starts_total",
			Help: "Pods started (network namespace, veth, addresses, workload).",
		}),
		podKills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_nodeagent_pod_kills_total",
			Help: "Pods stopped and cleaned up.",
		}),
		probeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_nodeagent_readiness_probe_failures_total",
			Help: "Readiness probes that failed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.pods, m.syncs, m.podStarts, m.podKills, m.probeErrors)
	}
	return m
}
