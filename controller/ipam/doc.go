// Package ipam is the controller's address allocator: a plain data structure with no
// client, no logger and no clock.
//
// The Allocator holds the pools (model.Pool, both families), one free-space structure per
// pool and family (a B-tree of free intervals, so an IPv6 /64 costs one node), the
// allocated addresses with the Services using each, and a sharing-key index. Every
// allocation takes the lowest usable free address of the chosen pool in O(log n), with no
// scan from the start of the pool, so the same sequence of calls always gives the same
// addresses.
//
// Data flow: the reconciler turns a Service into a Request (ParseService), calls Restore
// for the addresses Services already hold (on start, before anything else), Assign for
// each Service it reconciles, Release when a Service stops being ours, and SetPools when
// the validated configuration changes. SetPools releases only the addresses no pool covers
// any more and reports the Services that lost one; the caller assigns them again.
// Failures are *Error values with a typed Reason.
package ipam
