// Package metricsauth guards the binaries' metrics endpoint (served over HTTPS with
// --metrics-secure) with Kubernetes authentication and authorization, as the API server's
// own clients are: the request's bearer token is checked with a TokenReview, then the
// identity's right to "get" the request path (a non-resource URL such as /metrics) with a
// SubjectAccessReview. The chart grants the binaries create on tokenreviews and
// subjectaccessreviews and ships a ClusterRole (<release>-metrics-reader) to bind to
// Prometheus's ServiceAccount.
//
// It does what controller-runtime's pkg/metrics/filters does without its dependency on
// k8s.io/apiserver. Decisions are cached for a short time per token, path and verb, so a
// scrape every few seconds costs the API server two requests a minute at most.
package metricsauth
