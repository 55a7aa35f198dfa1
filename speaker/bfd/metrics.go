package bfd

import "github.com/prometheus/client_golang/prometheus"

// Discard reasons, the values of the reason label.
const (
	discardBadPacket      = "bad_packet"
	discardLowTTL         = "low_ttl"
	discardUnknownSession = "unknown_session"
	discardRejected       = "rejected"
)

type metrics struct {
	sessions    *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	received    prometheus.Counter
	sent        prometheus.Counter
	sendErrors  prometheus.Counter
	discarded   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_speaker_bfd_sessions",
			Help: "BFD sessions by local state.",
		}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_bfd_transitions_total",
			Help: "BFD session state transitions by peer and new state.",
		}, []string{"peer", "to"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_speaker_bfd_packets_received_total",
			Help: "BFD control packets accepted by a session.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_speaker_bfd_packets_sent_total",
			Help: "BFD control packets sent.",
		}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_speaker_bfd_send_errors_total",
			Help: "BFD control packets the kernel refused to send.",
		}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_bfd_packets_discarded_total",
			Help: "BFD control packets discarded, by reason (bad_packet, low_ttl, unknown_session, rejected).",
		}, []string{"reason"}),
	}
	for _, s := range []State{StateAdminDown, StateDown, StateInit, StateUp} {
		m.sessions.WithLabelValues(s.String())
	}
	for _, r := range []string{discardBadPacket, discardLowTTL, discardUnknownSession, discardRejected} {
		m.discarded.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sessions, m.transitions, m.received, m.sent, m.sendErrors, m.discarded} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
