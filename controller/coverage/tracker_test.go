package coverage

import (
	"slices"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a := Finding{Service: web, IP: ipA, Reason: NoAdvertisement}
	b := Finding{Service: api, IP: ipB, Reason: NoEligibleNode}
	keys := func(fs []Finding) []Key {
		var out []Key
		for _, f := range fs {
			out = append(out, f.Key())
		}
		return out
	}
	tr := NewTracker(10 * time.Second)
	steps := []struct {
		at       time.Duration
		found    []Finding
		due, new []Finding
		wake     time.Duration // 0: none pending
	}{
		{at: 0, found: []Finding{a}, wake: 10 * time.Second},                  // just allocated: not yet
		{at: 4 * time.Second, found: []Finding{a, b}, wake: 10 * time.Second}, // b starts its own grace
		{at: 10 * time.Second, found: []Finding{a, b}, due: []Finding{a}, new: []Finding{a}, wake: 14 * time.Second},
		{at: 12 * time.Second, found: []Finding{a, b}, due: []Finding{a}, wake: 14 * time.Second}, // a warned once
		{at: 14 * time.Second, found: []Finding{a, b}, due: []Finding{a, b}, new: []Finding{b}},
		{at: 15 * time.Second, found: []Finding{b}, due: []Finding{b}},                            // a resolved
		{at: 16 * time.Second, found: []Finding{a, b}, due: []Finding{b}, wake: 26 * time.Second}, // a back: grace again
		{at: 26 * time.Second, found: []Finding{a, b}, due: []Finding{a, b}, new: []Finding{a}},   // and warned again
		{at: 27 * time.Second},
	}
	for i, s := range steps {
		res := tr.Step(t0.Add(s.at), s.found)
		if !slices.Equal(keys(res.Due), keys(s.due)) || !slices.Equal(keys(res.New), keys(s.new)) {
			t.Errorf("step %d (+%v): due %v new %v, want due %v new %v", i, s.at, keys(res.Due), keys(res.New), keys(s.due), keys(s.new))
		}
		var wantWake time.Time
		if s.wake != 0 {
			wantWake = t0.Add(s.wake)
		}
		if !res.WakeAt.Equal(wantWake) {
			t.Errorf("step %d (+%v): wake %v, want %v", i, s.at, res.WakeAt, wantWake)
		}
	}
}
