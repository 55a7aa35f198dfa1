// Package events emits events.k8s.io/v1 Events for Loadstone's components.
//
// It replaces client-go's events broadcaster for one reason: that broadcaster keeps every
// Event it sent for at least six minutes (to turn repeats into a series), which at 10k
// Service allocations is tens of MiB of heap for Events that never repeat. Here the
// memory is bounded: a fixed-size queue feeds a few writer goroutines (an Event that finds
// the queue full is dropped and counted), and a fixed-size LRU suppresses an exact repeat
// (same object, type, reason and note) within a window instead of building a series.
// Only an Event that was written (or still waits in the queue) suppresses its repeats: one
// that was dropped or whose write failed is written when it happens again.
package events
