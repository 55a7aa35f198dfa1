// Package election decides which node announces an LB IP in layer-2 mode.
//
// It is pure: the input is a snapshot of facts about one IP (the Services that use it and
// the candidate nodes), the output is a typed Result. Every speaker computes the same
// answer from the same inputs, so no coordination is needed beyond agreeing on the facts
// (the API server for Nodes, Services and EndpointSlices; memberlist for liveness).
//
// # Ranking
//
// Candidates are ranked by Rank(node, ip) = sha256(node name || 0x00 || ip.As16()),
// compared as big-endian bytes, lowest first; ties (impossible in practice) fall back to
// the node name. The winner is the first eligible node in that order. Because each
// (node, IP) pair has its own score, IPs spread evenly over nodes, and a change that does
// not alter the eligibility of the winner or of a node ranked above it never moves the IP:
// other Services, other IPs, nodes ranked below the winner, endpoints elsewhere.
// A node that becomes eligible and ranks above the current winner takes the IP (for
// example when it returns after a restart): this keeps the result a function of the
// present facts only, which is what lets a healed partition converge on one owner.
//
// # Eligibility
//
// A node is eligible for an IP when all of these hold:
//   - its speaker is a live member (or, in degraded mode, the caller says so from Node
//     readiness) and its Node is Ready;
//   - it is not labelled node.kubernetes.io/exclude-from-external-load-balancers;
//   - an L2Advertisement for the IP's pool selects it;
//   - for Services with externalTrafficPolicy Local, it has a ready local endpoint.
//
// # Shared IPs
//
// Services sharing an IP are elected together, once per IP, so they always share its
// node. Only Services with at least one ready endpoint ("live" Services) count; with no
// live Service the IP is not announced. The traffic-policy rule is applied to the live
// Services with externalTrafficPolicy Local: a node must have a ready local endpoint for
// every one of them (intersection). If no node satisfies all of them, nodes with a ready
// local endpoint for at least one of them are eligible (union), so that some traffic is
// served rather than none; the Result says which rule was used.
package election
