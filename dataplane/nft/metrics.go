package nft

import "github.com/prometheus/client_golang/prometheus"

// metrics of the nftables applier, registered on the injected Registerer.
type metrics struct {
	duration           *prometheus.HistogramVec // kind: full|partial
	failures           prometheus.Counter
	objects            *prometheus.GaugeVec // kind
	rejected           prometheus.Counter
	droppedSourceRange prometheus.Counter
	known              map[string]bool
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loadstone_dataplane_sync_duration_seconds",
			Help:    "Duration of dataplane syncs: full (table rebuilt) or partial (changed elements only).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"kind"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_dataplane_sync_failures_total",
			Help: "Dataplane syncs that failed; the next one is a full sync.",
		}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loadstone_dataplane_objects",
			Help: "Objects programmed in table inet loadstone, by kind (chains and set/map elements).",
		}, []string{"kind"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_dataplane_packets_rejected_total",
			Help: "New connections to LB IPs without endpoints answered with a TCP RST or ICMP unreachable (read from nftables at each sync).",
		}),
		droppedSourceRange: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loadstone_dataplane_packets_dropped_source_range_total",
			Help: "Packets to LB IPs dropped by loadBalancerSourceRanges (read from nftables at each sync).",
		}),
		known: map[string]bool{},
	}
	for _, k := range []string{"chains", "frontends", "table_entries", "reject", "ranged", "source_ranges", "masquerade", "remote"} {
		m.known[k] = true
	}
	if reg != nil {
		reg.MustRegister(m.duration, m.failures, m.objects, m.rejected, m.droppedSourceRange)
	}
	return m
}
