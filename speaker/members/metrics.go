package members

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	alive           prometheus.Gauge
	degraded        prometheus.Gauge
	discovered      prometheus.Gauge
	events          *prometheus.CounterVec
	joinErrors      prometheus.Counter
	discoveryErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		alive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "loadstone_speaker_members_alive",
			Help: "Speakers this node sees alive, itself included."}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "loadstone_speaker_members_degraded",
			Help: "1 when memberlist is unusable and Node readiness stands in for liveness."}),
		discovered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "loadstone_speaker_members_discovered_peers",
			Help: "Peer addresses found by discovery (Node InternalIPs), this node excluded."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loadstone_speaker_members_events_total",
			Help: "Membership events by resulting state (alive, dead, left)."}, []string{"state"}),
		joinErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "loadstone_speaker_members_join_errors_total",
			Help: "Join rounds in which some discovered peer could not be reached."}),
		discoveryErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "loadstone_speaker_members_discovery_errors_total",
			Help: "Failed peer discoveries."}),
	}
	if reg != nil {
		reg.MustRegister(m.alive, m.degraded, m.discovered, m.events, m.joinErrors, m.discoveryErrors)
	}
	return m
}
