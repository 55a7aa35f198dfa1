// Package agent is the speaker's loop: observe → decide → apply → report.
//
//   - Observe: informer handlers (Services, EndpointSlices, Nodes, Namespaces,
//     IPAddressPools, L2Advertisements, ServiceL2Statuses) and membership changes only add
//     the queue's one key; ServiceL2Status updates that drop an IP and the layer-2
//     announcer's duplicate-owner reports are also queued as heal events. A sync reads the
//     membership, the cache and the interfaces, and builds an observe.Snapshot (pure).
//   - Decide: heal.Step (pure, time passed in) runs the election (announce.Compute) on
//     the debounced view and applies the heal rules; it returns the layer-2 state and
//     when to run again.
//   - Apply: every Announcer gets the Decision and reports what it really applied; one
//     failing announcer does not stop the others. Layer2 adapts speaker/layer2, BGP
//     speaker/bgp and speaker/bfd, Dataplane dataplane/plan and dataplane/nft. The
//     dataplane (Config.Dataplane) goes first: announce only when ready, so an LB IP in
//     Snapshot.Gated (served by the dataplane: mode pods or nodeport) is left out of
//     layer 2's desired set and withheld by BGP until the dataplane's Report.Carried
//     lists it. The election is not changed by this: the elected node just does not
//     answer yet (as under a heal hold-down), and the status shows the IP as not
//     announced.
//   - Report: report.Statuses and report.Events (pure) decide the ServiceL2Status writes
//     and the Events; the agent writes them.
//
// The loop is a client-go rate-limited workqueue: syncs are coalesced (MinSyncInterval),
// re-queued at the policy's wake time, retried with exponential backoff after a failure,
// and run at least once per ResyncPeriod. Every wait uses the injected clock, so tests
// drive the loop with a fake one. The membership runnable (Membership) starts memberlist
// once the gossip key is readable and hands it to the agent.
package agent
