// Package plan is the dataplane's decide step: a pure function from a snapshot of
// Services, endpoints, live members and this node's name to the desired content of
// Loadstone's nftables sets and maps (see package nft for the table that holds them). No
// I/O, no clock, no logging; the result is plain data compared with cmp.Diff.
//
// # What it decides
//
// For every Service port whose mode is not off, and each address family of its LB IPs,
// the frontends (LB IP · protocol · port) and their backends:
//
//   - Mode pods: pod IP:targetPort (resolved per endpoint). Endpoints of nodes that
//     membership says are not alive are dropped at once (this node is always alive), and
//     come back when their node is alive and they are ready. externalTrafficPolicy Local
//     keeps only this node's endpoints; Cluster keeps all. Ready, non-terminating
//     endpoints are used; if there is none, serving-terminating ones (as kube-proxy does).
//   - Mode nodeport: the NodePort on an address of the right family of every node that
//     has such endpoints (the external-load-balancer model). Such traffic is always
//     masqueraded, so with Local the client address is lost on the forwarded hop.
//   - No backend: the frontend goes to Reject (TCP RST / ICMP port unreachable).
//
// The backends of one port and family form a Maglev table (package maglev), sized by
// maglev.Size from the backend count, hashed on "addr:port" strings: every node computes
// the same table from the same backends, so a flow that ECMP moves to another node keeps
// its backend. Each table has a small integer ID, kept across calls through Input.IDs /
// Plan.IDs so that a change to one Service touches only its own elements.
//
// Masquerade lists frontends with externalTrafficPolicy Cluster (or mode nodeport);
// Remote lists backend addresses on other nodes. The applier masquerades a connection
// only when both hold: a Cluster flow DNATed to a pod on this node keeps its client IP.
//
// loadBalancerSourceRanges become Ranged (frontends that are restricted) and Allowed
// (frontend · source prefix); Local policy and ranges apply whether or not there are
// backends, so a restricted Service without endpoints still drops foreign sources.
package plan
