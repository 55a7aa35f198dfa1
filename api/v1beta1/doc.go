// Package v1beta1 holds the Go types of Loadstone's configuration CRDs, API group
// loadstone.io, version v1beta1: IPAddressPool, L2Advertisement, BGPPeer, BGPAdvertisement,
// BFDProfile and Community. All are cluster-scoped. The vocabulary follows MetalLB's so that
// operators recognise it.
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
// +kubebuilder:object:generate=true
// +groupName=loadstone.io
package v1beta1
