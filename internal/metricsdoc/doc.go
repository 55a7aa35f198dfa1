// Package metricsdoc checks a binary's metrics in tests: that every one is documented in
// docs/metrics.md, that the document names none that the binary does not register, and
// that all of them pass promlint, client_golang's linter of the Prometheus naming rules.
//
// A test registers the binary's metrics through the functions main uses, on a Recorder
// wrapping the registry main serves. The Recorder describes every collector registered
// through it, so the check also sees the vectors that have no series yet (which a scrape
// does not show), and lints them from their description and Go type.
package metricsdoc
