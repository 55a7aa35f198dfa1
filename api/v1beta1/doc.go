// Package v1beta1 holds the Go types of Loadstone's CRDs, API group loadstone.io, version
// v1beta1: the configuration kinds IPAddressPool, L2Advertisement, BGPPeer,
// BGPAdvertisement, BFDProfile and Community (all cluster-scoped; the vocabulary follows
// MetalLB's so that operators recognise it), and the status kinds the speakers write:
// ServiceL2Status (namespaced, one per Service and announcing node) and BGPSessionStatus
// (cluster-scoped, one per node and BGPPeer).
//
// The types carry kubebuilder markers; hack/generate.sh runs a pinned controller-gen to
// produce zz_generated.deepcopy.go here and the CRD manifests in config/crd/bases. Those
// files are never edited by hand; a test fails when they drift.
//
// Everything that can be checked on one object is checked by the API server through the
// OpenAPI schema and CEL rules in these markers (address syntax, ranges, ASNs, ports, timers,
// BFD bounds, community syntax, selector shapes), each with a message a person understands.
// Checks that span objects (overlapping pools, references to unknown pools, peers, profiles
// or community aliases, duplicate peers) live in package api/model, which also re-checks
// everything here, because the controller and the speaker must never trust their input.
//
// How the address rules of IPAddressPool work (CEL has no ordering of IP addresses, and
// the API server rejects rules whose estimated cost is too high): a range "a-b" is split
// with indexOf/substring (never split(), whose elements have no size bound for the cost
// estimator). Its order is checked with the CIDR library alone: the longest common prefix
// length p of a and b is the number of prefix lengths k (0..32 or 0..128, from a literal
// list of strings, since string(int) has no size bound either) for which cidr(a/k)
// contains b; a <= b exactly when a and b are equal or bit p+1 of a is 0, which holds when
// cidr(a/(p+1)).masked() contains the network address of a/p. config/crd_test.go checks
// this against netip's order on random pairs through the real API server. Entries, lists
// and strings carry maxItems/maxLength so that every rule fits the cost budget; label
// selector schemas are bounded after generation by api/internal/crdbounds.
//
// +kubebuilder:object:generate=true
// +groupName=loadstone.io
package v1beta1
