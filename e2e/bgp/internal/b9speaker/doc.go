// Command b9speaker is benchmark B9's BGP speaker: the speaker's own BGP code
// (speaker/bgp.Server, an embedded gobgp) in a process of its own, so that the benchmark
// can measure its CPU time and peak memory. The benchmark runs it inside the node's
// network namespace (`ip netns exec NS b9speaker ...`; gobgp's sockets must be created
// there) and drives it over stdin/stdout.
//
// It runs one session to the router given by its flags and advertises N /32 prefixes
// from the benchmarking range 198.18.0.0/15 (RFC 2544): 198.18.0.0, 198.18.0.1, ...
//
// # Protocol
//
// One command per line on stdin; one JSON object (Reply) per command on stdout:
//
//	establish  apply the plan without paths and wait until the session is Established
//	announce   apply the plan with the N paths
//	withdraw   apply the plan without paths
//	stats      report the CPU time and peak RSS so far
//	quit       close the server (withdraws, Cease) and exit
//
// Every reply carries the process's CPU time and peak RSS at the time it is written;
// announce and withdraw also carry when the Apply call started and how long it took.
// Logs go to stderr.
package main
