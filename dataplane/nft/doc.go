// Package nft installs a dataplane plan (package plan) into Loadstone's own nftables
// table, `inet loadstone`, over netlink (google/nftables), and removes it. It is the
// apply step: New(Config) → Applier; Apply(plan) installs, Resync() makes the next Apply
// a full sync, Remove() deletes the table. Read lists the table back into a plan.
//
// # Table layout
//
// Chains are static: every per-service datum lives in a set or map, so a packet costs a
// fixed number of rule evaluations whatever the number of Services.
//
//	chain filter-prerouting  type filter hook prerouting priority -110   jump firewall
//	chain filter-output      type filter hook output     priority -110   jump firewall
//	chain nat-prerouting     type nat    hook prerouting priority -105   jump services
//	chain nat-output         type nat    hook output     priority -105   jump services
//	chain nat-postrouting    type nat    hook postrouting priority 95    (masquerade rules)
//
//	chain firewall (per family, F = daddr . l4proto . th dport):
//	  F @ranged4 ; F . saddr != @allowed4  counter "source-range-drops"  drop
//	  ct state new ; F @reject4 ; l4proto tcp  counter "rejected"  reject with tcp reset
//	  ct state new ; F @reject4              counter "rejected"  reject with icmpx port-unreachable
//	chain services:
//	  F vmap @services4        (element: goto maglev4-<M>[-clientip])
//	chain maglev4-<M> (one per table size M and hash kind in use, not per Service):
//	  dnat ip to (F map @service-id4) . (jhash(saddr . th sport) mod M seed S) map @backends4
//	chain maglev4-<M>-clientip:  the same with jhash(saddr) (sessionAffinity ClientIP)
//	nat-postrouting:
//	  ct status dnat ; ct original (daddr . proto . proto-dst) @masquerade4 ; daddr @remote4  masquerade
//
// and the same with 6 for IPv6. Sets and maps (4 and 6 variants):
//
//	services    ipv4_addr . inet_proto . inet_service : verdict
//	service-id  ipv4_addr . inet_proto . inet_service : integer (table ID, native-endian)
//	backends    integer . integer (ID . flow hash, native-endian) : ipv4_addr . inet_service
//	reject, ranged, masquerade   ipv4_addr . inet_proto . inet_service
//	allowed     ipv4_addr . inet_proto . inet_service . ipv4_addr, flags interval (prefixes)
//	remote      ipv4_addr
//
// The Maglev lookup is one rule: the ID lookup and the jhash write adjacent 32-bit
// registers, whose concatenation is the backends map's key. jhash returns a host-order
// integer, so the keys are native-endian. Its modulus is a constant of the expression,
// hence one chain per table size; sizes come from maglev.Size's short ladder, so there are
// few. The seed is fixed (Config.Seed, default DefaultSeed) and must be the same on every
// node: nftables' default is a random seed, which would make every node choose
// differently. The kernel reduces the 32-bit hash to [0, M) by multiply-and-shift;
// the tests predict each connection's backend with the same computation.
//
// # Priorities and why
//
// Conntrack runs at -200. The firewall runs at -110, after conntrack and before any
// DNAT (-100), so it still sees the LB IP as destination: source ranges are enforced on
// every packet, rejects only on new connections (established ones to serving-terminating
// endpoints keep going). Our DNAT runs at -105, before kube-proxy's nat chains (dstnat,
// -100): once a connection has a DNAT binding, later nat chains of that hook do not see
// it. Only the first packet of a connection traverses nat chains; the rest follow
// conntrack, so established flows keep their backend when the tables change.
//
// Masquerade: a connection is masqueraded when its original destination is a Cluster
// frontend (or mode nodeport) and the backend it was DNATed to is on another node, so
// replies return through this node. Conntrack's original tuple identifies our traffic,
// so no packet-mark bit is claimed (kube-proxy uses 0x4000 and 0x8000). A Local frontend
// only ever has local backends and keeps the client address.
//
// # Contract with kube-proxy
//
// The controller writes ipMode: Proxy in the status of the LB IPs this dataplane serves;
// kube-proxy then drops those IPs from its own service map and leaves them to us, while
// it keeps serving ClusterIPs, NodePorts and every ipMode: VIP address. We never read or
// write kube-proxy's tables (ip/ip6/inet kube-proxy) or any table but `inet loadstone`.
// Mode nodeport DNATs to other nodes' NodePorts, where their kube-proxy takes over.
//
// # Syncs
//
// A full sync (first Apply, after Resync, Remove or any failure) replaces the table in
// one transaction (add, delete, add table; chains, rules, empty sets, named counters)
// and then adds the elements. A partial sync creates new Maglev chains, then sends only
// changed elements, in phases: first what frontends point at (backend entries, IDs,
// allowed ranges, masquerade data), then the frontends themselves (services, reject,
// ranged), then removals, switches first. A changed map element is deleted and re-added
// in the same batch. Batches hold at most Config.BatchSize (default 1000) elements, and
// the netlink receive buffer is 1 MiB: a larger message gets "message too long", a
// smaller buffer "no buffer space". Any error leaves the applier dirty: the next Apply is
// a full sync. Each sync first reads the named counters into
// loadstone_speaker_dataplane_packets_rejected_total and
// loadstone_speaker_dataplane_packets_dropped_source_range_total.
package nft
