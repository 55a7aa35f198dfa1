// Package readiness holds the /readyz checks of Loadstone's binaries, as
// controller-runtime healthz checkers:
//
//   - CachesSynced: the manager's informer caches have synced once (latched: a cache
//     that synced stays usable; a lost watch is the informer's to repair).
//   - CampaignLock: a leader-election lock that records the elector's first attempt, so
//     a replica is ready once it campaigns, leader or not. A standby that is ready has
//     synced caches and can take over; one that is not has never reached the Lease.
//
// The speaker adds its own check (key loaded, joined to the membership) from
// speaker/agent.
package readiness
