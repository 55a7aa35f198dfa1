package l2

import (
	"os"
	"testing"

	"github.com/loadstone-lb/loadstone/e2e/framework"
)

// TestMain brings a lab up for the package (framework.Main). With LOADSTONE_E2E_ATTACH set
// to the directory of a lab that is already up (e.g. /tmp/loadstone-lab after `lab up`),
// the tests attach to it instead and leave it running.
func TestMain(m *testing.M) {
	if dir := os.Getenv("LOADSTONE_E2E_ATTACH"); dir != "" {
		os.Setenv("LOADSTONE_E2E_LAB_UP", dir)
		os.Exit(m.Run())
	}
	os.Exit(framework.Main(m, framework.Options{}))
}
