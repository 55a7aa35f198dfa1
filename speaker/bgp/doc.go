// Package bgp applies a BGP plan (speaker/routes.Plan) to an embedded gobgp v3 server. It
// is the only package that imports gobgp; no gobgp type leaves it.
//
// # Data flow
//
// The speaker's pure decide step produces a Plan: the peers this node opens sessions to
// and, per peer, the paths (prefix + attributes) to advertise. Apply diffs the plan
// against what it applied last (translate.go is the pure half: Peer → gobgp neighbor,
// paths → export-policy groups, the diffs) and makes only the gobgp calls the difference
// needs. Sessions reads the state back from gobgp: session state, negotiated timers, the
// last error, and the Adj-RIB-Out (what the session sends, after policy).
//
// # Lifecycle
//
// One gobgp server per process, created by New and started (StartBgp) at the first Apply
// that has a router ID; it is never restarted in the process. The global AS is a fixed
// placeholder (every peer sets its own local AS from Peer.MyASN). A router ID change after
// the start is not applied: the old one stays and Problems (not an Apply error, which
// would only make the caller retry) reports
// "router ID change from X to Y takes effect when the speaker restarts". gobgp listens on
// no port by default: the node connects out.
//
// # Per-peer attributes: one RIB, per-neighbor export policy
//
// Every advertised prefix is one path in gobgp's global RIB, with origin IGP and an
// unspecified next hop (gobgp sends the session's local address: next-hop-self, in
// MP_REACH_NLRI for IPv6) and no other attribute. What a peer receives is decided by the
// global export policy assignment (default REJECT), which holds one policy per peer with
// paths. Its statements match the peer's address (a neighbor set) and a group of exact
// prefixes (a prefix set), and set that group's communities, large communities,
// link-bandwidth extended community and, on iBGP sessions only, local-pref, then accept.
// gobgp v3 has no per-neighbor export policy for ordinary (non route-server) neighbors;
// neighbor-set conditions in the global policy are how Cilium's BGP control plane does
// per-peer advertisement with it, and route-server mode or VRFs would change the next hop
// and AS path handling. A changed policy is built under new names, swapped into the
// assignment in one call, and the peer gets a soft reset out (gobgp re-sends what the
// policy now accepts): no session reset. The global import policy accepts only our own
// paths, so routes learned from routers never enter the RIB.
//
// gobgp v3 withdraws a path from a peer only when the path is replaced or deleted while
// the peer's export policy rejects the new version and accepts the old one; a soft reset
// out re-sends accepted paths but withdraws nothing. So a RIB path carries a version in
// its ORIGIN (IGP or INCOMPLETE; every export statement sets IGP, so the wire always says
// IGP). When a prefix leaves some peers but stays for others, those peers get a
// transitional policy that still accepts the current version, the path is replaced by
// the other version (those peers get a withdrawal, the others an update with unchanged
// attributes), and the peers then get their final policy. A prefix leaving every peer is
// simply deleted from the RIB under the old policies.
//
// The link-bandwidth community (draft-ietf-idr-link-bandwidth: non-transitive
// two-octet-AS-specific, type 0x40 subtype 0x04, AS = Peer.MyASN or AS_TRANS 23456 when
// it needs four octets, value IEEE 754 float32 bytes/s) is gobgp's LinkBandwidthExtended,
// set through the policy's "lb:AS:value" syntax, which takes whole bytes/s up to 2^32-1
// (about 34 Gbit/s): values are rounded and capped there.
//
// # Which peer changes reset the session
//
// The protocol negotiates some things only when a session opens, so changing them
// re-creates the gobgp neighbor (DeletePeer with a Cease, AddPeer): address, port, local
// or peer ASN, source address, MD5 password (a TCP option on every segment), hold time and
// keepalive (negotiated in OPEN), graceful restart (a capability in OPEN). The
// connect-retry time and eBGP multihop (the socket's TTL) change in place (UpdatePeer); a
// new name for the same address is only recorded. Communities, large communities,
// local-pref, link bandwidth, which prefixes go to which peer, and node selection (which
// decides the paths) never reset a session.
// Each session carries only the address family of the peer's address: IPv4 unicast over
// IPv4, IPv6 unicast over IPv6.
//
// # Shutdown and graceful restart
//
// Close runs before the process exits. For peers with graceful restart (RFC 4724, Restart
// Time 120 s) the TCP connection is aborted without a NOTIFICATION and without
// withdrawals, so the router keeps our routes as stale while the speaker restarts and
// until the new session's End-of-RIB (or the Restart Time) — traffic keeps flowing to a
// node whose dataplane outlives the speaker process. gobgp has no such close (StopBgp and
// DeletePeer always send a Cease), so Close destroys the socket itself (SOCK_DESTROY) and
// disables the peer. For peers without graceful restart every path is withdrawn and then
// gobgp stops, sending a Cease: the router drops our routes at once, which is right when
// nothing will hold them for us.
//
// # Failing peers
//
// Failing peers are retried with exponential backoff (backoff.go): after two failures at
// gobgp's own pace the peer is held administratively down for 2 s, doubling to 2 min.
//
// # Errors and the last error
//
// gobgp's API does not report why a session is down; its log does. The adapter that turns
// gobgp's log into slog records, per neighbor, the last NOTIFICATION sent or received
// (e.g. "OPEN message error: bad peer AS"), connect error (an MD5 mismatch shows as
// connection attempts timing out: the router drops our unsigned SYNs) or down reason.
package bgp
