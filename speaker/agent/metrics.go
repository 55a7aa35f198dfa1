package agent

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	syncs     *prometheus.HistogramVec
	conflicts *prometheus.CounterVec
	problems  prometheus.Gauge
	degraded  prometheus.Gauge
	elected   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		syncs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loadstone_speaker_l2_sync_duration_seconds",
			Help:    "Duration of layer-2 syncs (observe, compute, apply, status), by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"result"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_l2_duplicate_owner_actions_total",
			Help: "Duplicate-owner conflicts handled, by tie-break action (Defend, Yield).",
		}, []string{"action"}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_speaker_l2_problems",
			Help: "Problems found by the last sync (missing interfaces, IPs in no pool).",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_speaker_l2_membership_degraded",
			Help: "1 when the last sync used Node readiness instead of memberlist liveness.",
		}),
		elected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_speaker_l2_elected_ips",
			Help: "IPs this node won the election for in the last sync.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.syncs, m.conflicts, m.problems, m.degraded, m.elected)
	}
	return m
}
