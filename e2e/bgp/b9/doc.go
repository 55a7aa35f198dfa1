// Package b9 holds benchmark B9 (shared/BENCHMARKS.md): BGP scale. The speaker's BGP code
// (speaker/bgp.Server, run by e2e/bgp/internal/b9speaker in a process of its own)
// announces 10,000 /32 prefixes to FRR and to BIRD 2, each in network namespaces the
// benchmark creates; it measures the time from the Apply call until every prefix is in
// the router's kernel routing table, the time to withdraw them all, and the speaker's CPU
// time and peak RSS, with FRR's own speaker (zebra + bgpd) as the reference. It needs no
// lab cluster; it lives apart from package e2e/bgp because that package's TestMain brings
// the lab up.
package b9
