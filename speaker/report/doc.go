// Package report decides, purely, what the speaker tells the API about its layer-2
// announcements: the ServiceL2Status objects to create, update and delete (including
// the garbage collection of dead nodes' objects), and the Events to emit. The loop
// (package agent) writes what it decides; nothing here does I/O or reads a clock.
//
// Both diffs keep a little memory of their own: Statuses remembers the dead nodes'
// objects it already collected (so a partitioned node that recreates its object is not
// fought over), and Events remembers the last winners and problems (each Event is emitted
// once per change).
package report
