package app_test

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestMain(m *testing.M) {
	// Each manager gets its own test logger; this only silences controller-runtime's
	// warning about its process-wide fallback logger.
	ctrl.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
