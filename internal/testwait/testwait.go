package testwait

import (
	"testing"
	"time"
)

// For polls cond every interval until it reports true, and fails the test with what and
// the last state cond described when timeout passes first.
func For(t testing.TB, what string, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(interval)
	}
}
