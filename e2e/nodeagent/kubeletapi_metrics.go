package nodeagent

import "github.com/prometheus/client_golang/prometheus"

// kubeletAPIMetrics are the kubelet API's Prometheus metrics, registered on the injected
// Registerer (none when it is nil).
type kubeletAPIMetrics struct {
	requests *prometheus.CounterVec
}

func newKubeletAPIMetrics(reg prometheus.Registerer) *kubeletAPIMetrics {
	m := &kubeletAPIMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadstone_nodeagent_kubelet_api_requests_total",
			Help: "Kubelet API requests by endpoint (containerLogs, exec, attach, portForward, healthz, other) and outcome (accepted, unauthenticated, forbidden, authz_error).",
		}, []string{"endpoint", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}
