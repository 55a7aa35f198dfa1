package agent

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	syncs     *prometheus.HistogramVec
	conflicts *prometheus.CounterVec
	problems  prometheus.Gauge
	degraded  prometheus.Gauge
	elected   prometheus.Gauge
	reclaims  *prometheus.CounterVec
	withheld  prometheus.Gauge

	announceErrors *prometheus.CounterVec
	announced      *prometheus.GaugeVec
	failovers      prometheus.Counter
	handovers      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		syncs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loadstone_speaker_sync_duration_seconds",
			Help:    "Duration of the speaker's syncs (observe, decide, apply every announcer, report), by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"result"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_duplicate_owner_actions_total",
			Help: "Duplicate-owner conflicts handled, by tie-break action (Defend, Yield).",
		}, []string{"action"}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_speaker_layer2_problems",
			Help: "Problems found by the last sync (missing interfaces, IPs in no pool).",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_speaker_sync_membership_degraded",
			Help: "1 when the last sync used Node readiness instead of memberlist liveness.",
		}),
		elected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_speaker_layer2_elected_ips",
			Help: "IPs this node won the election for in the last sync.",
		}),
		reclaims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_reannounce_rounds_total",
			Help: "Gratuitous rounds for IPs this node already owned, by reason (arrival: a member (re)appeared; released: another node's status stopped listing an owned IP).",
		}, []string{"reason"}),
		withheld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loadstone_speaker_layer2_withheld_ips",
			Help: "LB IPs this node elected for layer 2 but does not announce yet, because its dataplane does not carry them (announce only when ready).",
		}),
		announceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_announce_errors_total",
			Help: "Errors reported by announcers when applying the decided state, by announcer.",
		}, []string{"announcer"}),
		announced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_speaker_announced",
			Help: "1 while this node announces the LB IP for the Service (protocol layer2: answers ARP/NDP for it; bgp: advertises a prefix holding it to an Established peer); the series goes when it stops.",
		}, []string{"ip", "service", "protocol"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_failovers_total",
			Help: "LB IPs this node took over in layer 2 from a node that failed (dead, not left gracefully).",
		}),
		handovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_handovers_total",
			Help: "LB IPs this node took over in layer 2 in a planned move: the previous owner left gracefully, or is alive and the election moved the IP.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.syncs, m.conflicts, m.problems, m.degraded, m.elected, m.reclaims, m.withheld, m.announceErrors,
			m.announced, m.failovers, m.handovers)
	}
	return m
}
