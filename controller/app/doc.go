// Package app wires the controller's reconcilers into a controller-runtime manager: the
// Service reconciler (package service, which owns the allocator) and the pool reconciler
// (package pools), connected so that allocation changes trigger coalesced pool status
// writes and pool changes reach the allocator. main only parses flags and calls Setup;
// the envtest tests in this package start exactly the same wiring against the real API
// server, and BenchmarkE2EAllocation runs the built binary (benchmark B6).
package app
