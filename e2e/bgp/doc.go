// Package bgp holds the lab's end-to-end tests of BGP mode: the router (FRR) learns LB
// IPs from every eligible node, spreads traffic over them by (weighted) ECMP, drops a
// failed node through BFD, and keeps sessions across configuration changes and graceful
// restarts. It also holds benchmarks B2 (BGP failover) and B9 (BGP scale). The router
// settings they rely on are in docs/bgp-lab.md.
package bgp
