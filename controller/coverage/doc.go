// Package coverage makes "allocated but announced by nobody" visible. The controller
// allocates an LB IP without knowing whether any speaker will announce it; when nothing
// can (no L2Advertisement or BGPAdvertisement covers the IP's pool, or no node is
// eligible for any advertisement that does), the IP is silently unreachable. This
// package finds such IPs and the L2Advertisement interfaces that no reporting node has.
//
// Data flow, in the controller's leader:
//
//  1. Observe: every Interval the Reconciler lists, from the manager's cache, the
//     configuration objects (built into an api/model.Config with model.Build, keeping its
//     own last good configuration, as the speaker does), the Loadstone Services with LB
//     IPs, the EndpointSlices, the Nodes, and what the speakers publish: the IPs listed by
//     ServiceL2Status objects and the prefixes advertised on Established sessions of
//     BGPSessionStatus objects.
//  2. Compute (pure): Unannounced(Input) → []Finding, one per (Service, IP) with a Reason
//     (NoPool, NoAdvertisement, NoEligibleNode from the configuration; NotAnnounced when
//     nodes are eligible but no speaker publishes the IP) and a message; InterfaceConditions →
//     the InterfacesFound condition of each L2Advertisement that names interfaces.
//  3. Grace (pure): Tracker.Step(now, findings) keeps the time each finding was first
//     seen and returns the ones older than Grace (a just-allocated IP, or an
//     advertisement created a moment after the pool, must not warn) and those that just
//     became so.
//  4. Apply: one Warning Event per finding when it becomes due (again if it goes away
//     and comes back), the gauge loadstone_controller_ips_unannounced{reason}, and a
//     merge patch of the L2Advertisements' status.conditions where InterfacesFound
//     differs (the other conditions, such as Valid, are kept as read).
//
// What "eligible" means mirrors the speakers' rules (speaker/announce, speaker/routes)
// on the data the controller has: a node is eligible for an advertisement when its Node
// is Ready, it does not carry node.kubernetes.io/exclude-from-external-load-balancers,
// the advertisement's nodeSelectors select it (none: every node), for a BGPAdvertisement
// at least one of its peers (none named: all peers) selects it, and, for a Service with
// externalTrafficPolicy Local, it holds a ready endpoint of the Service. Speaker liveness
// (memberlist) is not known to the controller and is not checked. A Service with
// externalTrafficPolicy Cluster and no ready endpoint at all is not reported: no speaker
// announces it, by design, until it has one.
package coverage
