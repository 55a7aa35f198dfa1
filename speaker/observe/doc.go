// Package observe builds the speaker's one immutable input: a Snapshot of the
// configuration model, the LoadBalancer Services with their endpoints, the Nodes, the
// Namespaces being deleted, the published ServiceL2Status objects, the membership view,
// this node and its local interfaces.
//
// Build is a pure function of the lists and readings in its Input: the loop reads the
// informer cache, the membership and the interfaces, and every decision after that
// (package heal, package report, the announcers) works on the Snapshot alone.
package observe
