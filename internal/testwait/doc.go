// Package testwait polls a condition in tests. The timeout only bounds a failing test: it
// is never a performance assertion (those live in benchmarks).
package testwait
