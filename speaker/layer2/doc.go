// Package layer2 answers ARP (IPv4) and NDP (IPv6) for the LB IPs this node announces.
//
// Layers, like github.com/mdlayher/arp (which it uses for ARP):
//   - core.go: pure decisions. HandleARP takes one ARP packet and its Ethernet frame (what
//     arp.Client.Read returns), HandleNDPFrame one received Ethernet frame; both take the
//     owned set and return a typed Decision (Reply with what to send, Duplicate, NotOwned,
//     Ignore). GratuitousARP and UnsolicitedNA build takeover messages. Fuzzed.
//   - conn.go: the real sockets, behind small interfaces. ARP: an arp.Client over a
//     github.com/mdlayher/packet socket bound to the interface and EtherType 0x0806 (on an
//     interface without an IPv4 address, which arp.New refuses, the same socket with
//     arp's codecs). NDP: a packet socket with a classic BPF filter passing only ICMPv6
//     NS/NA (so unicast NUD probes to an LB IP, which the IP stack drops because the IP is
//     not local, are answered too), and a github.com/mdlayher/ndp socket to send and to
//     join the solicited-node multicast group of each owned IPv6.
//   - announcer.go: Announcer.Apply(Desired) takes the whole desired state (IP → interfaces;
//     no interface means the one holding the route to the IP, found by a netlink route
//     lookup), opens and closes per-interface responders, and diffs owned sets. A lost IP is
//     removed from the owned set (an atomic copy-on-write map read by the reader goroutines)
//     before anything else, so it stops being answered at once. A gained IP gets a burst of
//     Config.GratuitousCount gratuitous messages, one every GratuitousInterval (default 4
//     over 1.5 s): ARP in the request form (op 1, sender IP = target IP, broadcast) and
//     unsolicited NA to ff02::1 with the override flag.
//
// Time: every timed behaviour (the bursts; there is no other) runs on Config.Clock
// (k8s.io/utils/clock), so tests step a fake clock. One goroutine per interface sends
// the bursts: each round sends everything due at the clock's present time in IP order, and
// a burst stopped by stopBurst sends nothing after it returns.
//
// When a frame from another link-layer address claims an owned IP, the Announcer counts it
// and calls Config.OnConflict; the tie-break (who keeps the IP) is the caller's, see
// docs/speaker.md.
//
// Sockets are opened in the network namespace of the thread calling Apply.
package layer2
