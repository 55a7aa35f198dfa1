package layer2

import "github.com/prometheus/client_golang/prometheus"

// metrics of the layer-2 announcer, registered on the injected Registerer.
type metrics struct {
	requests   *prometheus.CounterVec // family, owned
	replies    *prometheus.CounterVec // family
	gratuitous *prometheus.CounterVec // family
	owned      *prometheus.GaugeVec   // family
	changes    *prometheus.CounterVec // change: gained|lost
	conflicts  *prometheus.CounterVec // family
	errors     *prometheus.CounterVec // op
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_requests_received_total",
			Help: "ARP requests and Neighbor Solicitations received, by family and whether this node owned the IP.",
		}, []string{"family", "owned"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_replies_sent_total",
			Help: "ARP replies and solicited Neighbor Advertisements sent.",
		}, []string{"family"}),
		gratuitous: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_gratuitous_sent_total",
			Help: "Gratuitous ARPs (request form) and unsolicited Neighbor Advertisements sent.",
		}, []string{"family"}),
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_speaker_layer2_owned_ips",
			Help: "LB IPs this node currently answers for (counted once per IP, whatever the number of interfaces).",
		}, []string{"family"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_ownership_changes_total",
			Help: "IPs this node started (gained) or stopped (lost) answering for.",
		}, []string{"change"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_duplicate_owner_total",
			Help: "Packets in which another link-layer address claimed an IP this node owns.",
		}, []string{"family"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_speaker_layer2_errors_total",
			Help: "Socket, interface and route errors, by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.replies, m.gratuitous, m.owned, m.changes, m.conflicts, m.errors)
	}
	return m
}

func family(ipv6 bool) string {
	if ipv6 {
		return "ipv6"
	}
	return "ipv4"
}
