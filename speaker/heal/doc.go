// Package heal is the layer-2 heal policy: a pure state machine that turns the election
// (announce.Compute) into what this node answers for, and when it sends gratuitous
// rounds for IPs it already holds. Time is an input: Step(now, snapshot, applied,
// events) returns the desired state and when to be called again, so a test replays an
// incident step by step.
//
// The rules (docs/speaker.md, "After a partition heals" and "Duplicate owners"):
//
//   - Death debounce: a member that was alive at the last step and is missing now counts
//     as alive for DeathDebounce more (a node back from a partition gossips everyone's
//     death; the victims refute it within milliseconds).
//   - Reclaim: when a peer (re)appears, or a live node releases an IP we hold, one
//     gratuitous round ReclaimDelay later, for what this node still holds then.
//   - Duplicate owner: one decision per IP per ConflictInterval
//     (announce.ResolveConflict). Yield withholds the IP until the winner is a live
//     member, at most HoldDown; Defend re-announces it. Whatever the decision, an IP this
//     node still announces after the step is re-announced (reassert).
//
// The machine keeps only its own memory (previous alive set, hold-downs, the pending
// round); it does no I/O and reads no clock.
package heal
