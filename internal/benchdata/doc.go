// Package benchdata records benchmark samples for the pictures `make bench` draws
// (bench/plot). A benchmark appends one JSON line per record to
// $LOADSTONE_BENCH_DATA/<name>.jsonl; without that variable nothing is written.
package benchdata
