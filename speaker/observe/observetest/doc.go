// Package observetest builds observe.Snapshots for the decide step's tests: a small
// cluster of four Ready nodes (n1..n4), an IPv4 and an IPv6 pool, an L2Advertisement for
// the IPv4 pool, and LoadBalancer Services with ready endpoints, put through the same
// observe.Build as the speaker's loop. Tests add BGP objects (Peer, BGPAdvertisement,
// BFDProfile, Community), Secrets, node addresses (Address), endpoint counts (Endpoints),
// externalTrafficPolicy Local (Local) and unready nodes (NotReady).
//
// For 203.0.113.10 the election ranks n4 n3 n1 n2; for 2001:db8:100::10, n4 n2 n1 n3
// (speaker/election's tests pin both).
package observetest
