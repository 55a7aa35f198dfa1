package buildinfo

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loadstone-lb/loadstone/internal/logging"
)

// Name is the metric's name.
const Name = "loadstone_build_info"

// NewCollector returns the loadstone_build_info gauge for b: always 1, with b's version,
// commit (label revision, "" when unknown) and Go version as labels.
func NewCollector(b logging.Build) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: Name,
		Help: "Always 1; the labels say what the binary was built from: the release (version), the VCS revision and the Go toolchain (goversion).",
		ConstLabels: prometheus.Labels{
			"version":   b.Version,
			"revision":  b.Commit,
			"goversion": b.GoVersion,
		},
	}, func() float64 { return 1 })
}

// Register registers loadstone_build_info for the running binary (logging.ReadBuild)
// on reg.
func Register(reg prometheus.Registerer) error {
	if err := reg.Register(NewCollector(logging.ReadBuild())); err != nil {
		return fmt.Errorf("registering %s: %w", Name, err)
	}
	return nil
}
