// Package maglev computes Maglev consistent-hashing lookup tables (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016, §3.4). It is
// pure: no I/O, no clock, no logging; the dataplane installs its tables.
//
// # Algorithm
//
// A table has a prime number M of entries. Each backend hashes its ID twice (two
// independent 64-bit hashes with fixed seeds) into offset = h1 mod M and
// skip = h2 mod (M-1) + 1, which define its preference list over the entries,
// (offset + j·skip) mod M for j = 0, 1, ...; as M is prime every list visits every entry
// once. Backends take turns in ID order, and a turn claims the first entry of the
// backend's list that no one holds yet, until the table is full. With equal weights,
// every backend ends with ⌊M/N⌋ or ⌈M/N⌉ entries, so max/avg share ≤ 1 + N/M (≤ 1%
// when M > 100·N). When k of N backends leave, their entries (the ideal k/N) go to the
// others, and since every other backend's preference list is unchanged most of their
// entries stay put, but not all: the turns play out differently near the end of the
// fill, so a few percent of the survivors' entries move too (measured at M = Size(N):
// 0.6% for 1 of 1000 backends, 1.2% for 1 of 100, 2.4% for 10 of 1000, 4% for 100 of
// 1000; TestB7Report prints the figures). The paper makes the same trade, balance over
// minimal disruption, and relies on connection tracking for established flows; so must
// the dataplane.
//
// Weights: a backend of weight w takes w turns per round, spread over the round: a round
// is W passes (W the largest weight) and in pass s every backend of weight > s takes a
// turn. Its share is therefore proportional to its weight, and because pass 0 includes
// everyone each backend holds at least one entry when M ≥ N. Weights are normalised first
// (0 counts as 1, all weights divided by their greatest common divisor), so {2, 2, 2}
// builds the same table as {1, 1, 1}.
//
// # Determinism contract
//
// Build's result depends only on the set of (ID, weight) pairs and M. Input order does not
// matter: backends are sorted by ID and duplicate IDs merged (keeping the largest weight);
// Table.Entries index that sorted list. The hashes (64-bit FNV-1a from a seeded offset
// basis, then the MurmurHash3 finaliser) and their seeds are constants of this package
// and part of the wire contract: every node of a cluster, including nodes that run
// different releases during an upgrade, must compute the same table so that an ECMP
// reshuffle that moves a flow to another node keeps its backend. TestGoldenTable pins the
// output; changing it is a breaking change that needs a migration plan.
//
// # Table size
//
// Size picks M from a ladder of primes just below powers of two (251, 509, 1021, 2039,
// 4093, 8191, 16381, 32749, 65521): the smallest at least minFactor·N (default 100·N),
// capped at the largest prime ≤ max (default DefaultMaxSize = 65537; Cilium's default
// size is 16381). Using a ladder rather than NextPrime(100·N) keeps M fixed while N moves
// within a factor of two, because a new M reshuffles almost every flow. Beyond 655
// backends the default cap holds M below 100·N and the balance bound degrades gracefully
// to 1 + N/M. Build needs M ≥ N.
//
// # Use in the dataplane
//
// The dataplane computes one table per service (Size, then Build) from the ready
// backends and installs it as a map from entry index to backend in Loadstone's nftables
// table (later the same tables feed the eBPF path). A packet's index is a hash of its flow
// reduced to [0, M): the 5-tuple for ordinary services, only the source address for
// ClientIP session affinity. The flow hash must use a seed fixed cluster-wide: nftables'
// jhash expression picks a random seed when none is given, which would make every node
// choose differently. Table.Lookup(h) = Entries[h mod M] is the userspace equivalent
// for a 64-bit flow hash; the kernel's jhash "mod M" reduces a 32-bit hash by
// multiply-and-shift instead, which is just as uniform, so any uniform reduction works as
// long as every node uses the same one.
package maglev
