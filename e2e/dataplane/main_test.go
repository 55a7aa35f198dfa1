package dataplane

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/loadstone-lb/loadstone/e2e/framework"
)

// TestMain brings a lab up for the package (framework.Main). With LOADSTONE_E2E_ATTACH set
// to the directory of a lab that is already up, the tests attach to it and leave it
// running.
func TestMain(m *testing.M) {
	log.SetLogger(logr.Discard())
	if dir := os.Getenv("LOADSTONE_E2E_ATTACH"); dir != "" {
		os.Setenv("LOADSTONE_E2E_LAB_UP", dir)
		os.Exit(m.Run())
	}
	os.Exit(framework.Main(m, framework.Options{}))
}
