// Package routes decides, as a pure function of the speaker's snapshot, what this node
// does in BGP mode: which sessions it opens (Peer, with BFD parameters and the resolved
// password) and, per session, which prefixes it advertises with which attributes (Path).
//
// It imports no BGP library: package bgp turns a Plan into gobgp calls, and package bfd
// runs the BFD sessions a Plan asks for. Time and I/O stay outside; the BFD states that
// strict mode needs come in as input. The loop calls
//
//	plan := routes.Compute(routes.FromSnapshot(&snap, alive, bfdUp, &lastPlan))
//
// with the same alive set it gives layer 2. Compute is deterministic: the order of the
// input's lists does not matter, and every list in the Plan is sorted.
//
// # Sessions
//
//   - Peers: every BGPPeer of the Config whose nodeSelectors match this node's labels (one
//     matching selector is enough; none: every node). The node's Node object must be in
//     the input: without it (the node is being deleted) the Plan is empty.
//   - BFD: the peer's BFDProfile is inlined; Strict comes from the peer's strictBFD. A
//     peer with strictBFD but no profile has no BFD session and no strict mode (the model
//     rejects that combination).
//   - Password: the inline password, else the bytes of the passwordSecret's key. A Secret
//     or key that is missing, or an empty value, is a PasswordSecretMissing problem; the
//     peer then keeps its whole version from the previous Plan (last good, as in the
//     model: a deleted Secret never drops a live session nor its routes), or, when it had
//     none, is left out. Which namespaces' Secrets are visible is the caller's concern.
//   - Router ID (one per node, as gobgp runs one server): the routerID the peers selecting
//     this node set; if they disagree, the lowest, with a RouterIDConflict problem on each
//     peer that sets another. Else the node's IPv4 InternalIP. Else (an IPv6-only node and
//     no routerID) a NoRouterID problem per peer and no sessions at all.
//
// # What is advertised
//
// An LB IP is placed in its pool as layer 2 places it (announce.PoolOf: the
// allocated-from-pool annotation when that pool holds the IP, else the containing pool).
// It is advertised from this node when all of these hold:
//   - a BGPAdvertisement covers the pool and its nodeSelectors select this node;
//   - this node's member is alive (in degraded mode: its Node is Ready), its Node is
//     Ready and it does not carry the exclude-from-external-load-balancers label;
//   - one of the Services using the IP is served here: it has a ready endpoint somewhere
//     (ready unset counts as ready), and, with externalTrafficPolicy Local, on this node.
//     An IP whose Services have no ready endpoint at all is withdrawn everywhere. Shared
//     IPs are advertised when any of their Services is served here; Path.Services lists
//     only those;
//   - announce only when ready: an IP in Gated (a Service uses it in dataplane mode pods
//     or nodeport) is advertised only when this node's dataplane carries it (Carried).
//     FromSnapshot fills Gated; the caller sets Carried from the dataplane's report. In
//     an aggregate, such an IP only stops counting: the aggregate still goes out for the
//     other IPs in it.
//
// Each selecting advertisement turns the IP into the covering prefix of its
// aggregationLength (IPv4) or aggregationLengthV6, advertised once per peer however many
// IPs fall in it, to the advertisement's peers (all of this node's peers when it names
// none; names of peers not open here are skipped). A prefix goes only to peers of its own
// address family: IPv4 prefixes to peers with an IPv4 peerAddress, IPv6 to IPv6 ones
// (no multiprotocol next-hop games: the next hop is the session's own address). Two
// advertisements with different lengths give both prefixes.
//
// # Attributes
//
// Per (peer, prefix), over every advertisement that gives the prefix to that peer:
//   - communities and large communities (aliases already resolved by the model) are merged,
//     sorted and deduplicated;
//   - LOCAL_PREF is sent to iBGP peers only, the highest localPref among the
//     advertisements that set one (0 means unset);
//   - link bandwidth is sent only on host routes (/32, /128) of IPs whose live Services are
//     all externalTrafficPolicy Local: BandwidthPerEndpoint (125000 bytes/s = 1 Mbit/s)
//     times this node's ready endpoints of those Services. Routers weight next hops by
//     the ratio, so traffic follows the endpoints; 1 Mbit/s per endpoint reads naturally
//     on a router ("3.000 Mbps") and survives routers that keep bandwidth in kbit/s or
//     Mbit/s. Cluster traffic, a Cluster Service sharing the IP, or an aggregate: no
//     link bandwidth (every node can serve all of it, or the prefix mixes IPs).
//
// Strict mode: a peer whose BFD is Strict and not Up (BFDUp false or absent) gets no paths
// while its session runs; the paths come back once BFD is Up.
//
// # Problems
//
// Besides the peer problems above, LocalTrafficAggregated (on the Service): a live Local
// Service with no ready endpoint on this node has an LB IP inside an aggregate this node
// advertises, and no BGPAdvertisement of the IP's pool announces host routes of its
// family (a host route elsewhere would win at the router by longest match). Traffic to
// that IP can then reach this node and find no endpoint. It is computed before strict
// mode, so it does not come and go with BFD. An IP in no pool is not reported here
// (layer 2 reports IPNotInPool for every IP).
package routes
