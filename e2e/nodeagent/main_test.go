package nodeagent

import (
	"os"
	"testing"
)

// TestMain lets the test binary act as the container start helper: the agents the tests
// run start programs through their own executable (Config.HelperPath defaults to
// /proc/self/exe), as the nodeagent command does.
func TestMain(m *testing.M) {
	RunHelperIfRequested()
	os.Exit(m.Run())
}
