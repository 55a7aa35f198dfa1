// Package pools turns IPAddressPool objects into the allocator's pool configuration,
// writes IPAddressPool status, and writes the Valid condition of every other configuration
// object (L2Advertisement, BGPPeer, BGPAdvertisement, Community; BFDProfile has no status
// and gets Events only). Earlier versions also set Programmed=False, reason
// NotImplemented, on the BGP kinds while BGP was not implemented; this one deletes that
// condition wherever it is still found (desiredConditions). Whether a node carries a
// BGPPeer out is in that node's BGPSessionStatus, written by the speaker.
//
// Config (one reconcile key for the whole set): on any spec change of any configuration
// object (or a label change of a pool), model.Build checks every object (on its own, then
// against the others) against the previous result. Only the pools in force reach the
// allocator; every object, of any kind, gets its Valid condition from the same Build. An
// object whose current spec is bad keeps its last good version in force (condition
// Valid=False, reason LastGoodInForce) or, if it never had one, is left out (reason
// Invalid); either way it gets a Warning Event InvalidConfiguration, once per distinct
// problem. When two pools overlap, the one already in force wins, then the older one, then
// the name that sorts first. Nothing already allocated is withdrawn because of a bad
// object. The pools in force go to the Service reconciler (Allocator.SetPools).
//
// Status: usage and condition changes only raise a flag; a single leader-only writer wakes
// at most once per interval and writes, with a merge patch (no resourceVersion, so no
// conflicts), only the pools whose status differs and the status.conditions of the other
// objects whose conditions differ. 10k allocations thus cost a handful of pool
// writes, never one per Service.
package pools
