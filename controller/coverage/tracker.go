package coverage

import (
	"time"
)

// Tracker is the grace period: a finding counts (Due) only once it has been found in
// every step for Grace. Time is an input; the Tracker reads no clock.
type Tracker struct {
	// Grace is how long a finding must last before it is due.
	Grace time.Duration

	since  map[Key]time.Time
	warned map[Key]bool
}

// NewTracker returns a Tracker with the given grace period.
func NewTracker(grace time.Duration) *Tracker {
	return &Tracker{Grace: grace, since: map[Key]time.Time{}, warned: map[Key]bool{}}
}

// StepResult is what one Step decided.
type StepResult struct {
	// Due are the findings that lasted at least Grace, in the order given.
	Due []Finding
	// New are the due findings not reported before (each is reported once while it lasts;
	// a finding that goes away and comes back is new again).
	New []Finding
	// WakeAt is when the next finding becomes due (zero when none is pending).
	WakeAt time.Time
}

// Step takes the findings of now and returns which are due. A finding missing from one
// step starts its grace period afresh when it is found again.
func (t *Tracker) Step(now time.Time, findings []Finding) StepResult {
	var res StepResult
	seen := make(map[Key]bool, len(findings))
	for _, f := range findings {
		k := f.Key()
		seen[k] = true
		first, ok := t.since[k]
		if !ok {
			first = now
			t.since[k] = now
		}
		if due := first.Add(t.Grace); now.Before(due) {
			if res.WakeAt.IsZero() || due.Before(res.WakeAt) {
				res.WakeAt = due
			}
			continue
		}
		res.Due = append(res.Due, f)
		if !t.warned[k] {
			t.warned[k] = true
			res.New = append(res.New, f)
		}
	}
	for k := range t.since {
		if !seen[k] {
			delete(t.since, k)
			delete(t.warned, k)
		}
	}
	return res
}
