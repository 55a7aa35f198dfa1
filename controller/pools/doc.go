// Package pools turns IPAddressPool objects into the allocator's pool configuration and
// writes IPAddressPool status.
//
// Config (one reconcile key for the whole set): on any spec change of any IPAddressPool,
// model.Build checks every pool (on its own, then overlaps between pools) against the
// previous result. A pool whose current spec is bad keeps its last good version in force
// (condition Valid=False, reason LastGoodInForce) or, if it never had one, is left out
// (reason Invalid); either way it gets a Warning Event InvalidConfiguration, once per
// distinct problem. When two pools overlap, the one already in force wins, then the older
// one, then the name that sorts first. Nothing already allocated is withdrawn because of a
// bad object. The pools in force go to the Service reconciler (Allocator.SetPools).
//
// Status: usage changes only raise a flag; a single leader-only writer wakes at most once
// per interval and writes, with a merge patch (no resourceVersion, so no conflicts), only
// the pools whose status differs. 10k allocations thus cost a handful of pool writes,
// never one per Service.
package pools
