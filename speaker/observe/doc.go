// Package observe builds the speaker's one immutable input: a Snapshot of the
// configuration model (pools, L2 and BGP advertisements, BGP peers, BFD profiles,
// communities), the LoadBalancer Services with their endpoints (which nodes hold ready
// ones, and how many), the Nodes, the Namespaces being deleted, the published
// ServiceL2Status objects, the membership view, this node, its InternalIPs and local
// interfaces, and the BGP passwords read from the Secrets the peers name.
//
// For the node dataplane (package dataplane/plan) each Service also carries a Dataplane:
// the effective mode of each LB IP (pods, nodeport or off: api/model.DataplaneMode of the
// IP's pool and the loadstone.io/dataplane-mode annotation, default off), ports with their
// NodePorts and targetPorts, loadBalancerSourceRanges, ClientIP affinity and its
// EndpointSlice endpoints (address, target port per port name, node, ready / serving /
// terminating). The Snapshot adds every node's InternalIPs (nodeport mode) and Gated, the
// LB IPs that some Service serves through the dataplane: those are announced only once
// this node's dataplane carries them.
//
// Build is a pure function of the lists and readings in its Input: the loop reads the
// informer cache, the membership and the interfaces, and every decision after that
// (package heal, package report, the announcers, package routes) works on the Snapshot
// alone.
package observe
