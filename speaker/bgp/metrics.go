package bgp

import "github.com/prometheus/client_golang/prometheus"

// metrics of the BGP applier, registered on the injected Registerer.
type metrics struct {
	sessionUp   *prometheus.GaugeVec   // peer
	transitions *prometheus.CounterVec // peer, to
	advertised  *prometheus.GaugeVec   // peer
	applyTime   prometheus.Histogram
	applyErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessionUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_speaker_bgp_session_up",
			Help: "1 when the BGP session to the peer is Established, else 0.",
		}, []string{"peer"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_bgp_session_transitions_total",
			Help: "BGP session state changes, by peer and the state entered.",
		}, []string{"peer", "to"}),
		advertised: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_speaker_bgp_paths_advertised",
			Help: "Prefixes the last Apply exported to the peer (by its export policy).",
		}, []string{"peer"}),
		applyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "loadstone_speaker_bgp_apply_duration_seconds",
			Help:    "Time to apply a BGP plan to the embedded gobgp server.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_speaker_bgp_apply_errors_total",
			Help: "BGP plan applications that failed (the next Apply retries).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.sessionUp, m.transitions, m.advertised, m.applyTime, m.applyErrors)
	}
	return m
}
