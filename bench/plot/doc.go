// Command plot draws the pictures of `make bench` from the records the benchmarks wrote
// (internal/benchdata): the B1 failover timeline and handover distribution, and B6's time
// to assign all Services against the floor. It writes SVG files next to bench/results.md.
//
//	go run ./bench/plot -data bench/data -out bench
package main
