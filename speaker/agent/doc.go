// Package agent is the speaker's layer-2 reconcile loop: it observes Services,
// EndpointSlices, Nodes, IPAddressPools and L2Advertisements through a controller-runtime
// cache, and membership through package members; computes this node's announcements with
// package announce (pure); applies them to a package layer2 Announcer (idempotent); and
// reports: one ServiceL2Status per (Service, announcing node), an Event on the Service
// when its announcer changes, Events for problems (missing interface, IP in no pool), and
// duplicate-owner Events with the tie-break of announce.ResolveConflict.
//
// Handlers only record that something changed; one goroutine syncs, at most once per
// MinSyncInterval, and at least once per ResyncPeriod.
package agent
