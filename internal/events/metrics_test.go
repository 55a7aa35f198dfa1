package events

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricName: each binary's counter carries its component, and every result is
// exported from the start.
func TestMetricName(t *testing.T) {
	for controller, want := range map[string]string{
		"loadstone-controller": "loadstone_controller_events_total",
		"loadstone-speaker":    "loadstone_speaker_events_total",
		"loadstone-test":       "loadstone_test_events_total",
		"":                     "loadstone_events_total",
	} {
		reg := prometheus.NewPedanticRegistry()
		New(Options{Controller: controller, Registerer: reg})
		if n, err := testutil.GatherAndCount(reg, want); err != nil || n != 5 {
			t.Errorf("Controller %q: %d series of %s (%v), want 5", controller, n, want, err)
		}
	}
}
