// Package bgp holds the lab's end-to-end tests of BGP mode: the router (FRR) learns LB
// IPs from every eligible node, spreads traffic over them by (weighted) ECMP, drops a
// failed node through BFD, and keeps sessions across configuration changes and graceful
// restarts. It also holds benchmark B2 (BGP failover after a silent node link cut:
// Loadstone's speaker with BFD and with the hold timer only, FRR↔FRR as the reference);
// benchmark B9 (BGP scale) is in e2e/bgp/b9, which needs no lab. The router settings
// they rely on are in docs/bgp-lab.md.
package bgp
