// Package bfd is Loadstone's own Bidirectional Forwarding Detection (RFC 5880, single hop
// over UDP per RFC 5881): gobgp v3 has none. The speaker runs one session per BGP peer
// that has a BFDProfile, resets the BGP session as soon as BFD goes Down, and in strict
// mode advertises only while BFD is Up.
//
// Layers, like mdlayher/arp:
//
//   - packet.go: the control packet codec; Parse applies the reception checks of RFC 5880
//     §6.8.6 that need no session.
//   - session.go: Session, the pure state machine of one session with time as input (no
//     clock, no I/O, no goroutines): the variables of §6.8.1, the state machine of §6.2 and
//     §6.8.6, timer negotiation (§6.8.2), timer changes by Poll Sequence (§6.5, §6.8.3),
//     the detection time (§6.8.4), transmission with jitter (§6.8.7), the passive role
//     (§6.1) and diagnostics 1, 3 and 7. Receive feeds it packets, Tick returns what to
//     send and when to call again.
//   - conn.go: Network, the injected socket factory, and UDPNetwork, the kernel's UDP:
//     receive on port 3784 (IPv4 and IPv6) with the TTL / hop limit of every packet, send
//     from a per-session socket bound to the local address and a source port in
//     49152–65535 with TTL / hop limit 255.
//   - manager.go: Manager, which reconciles the sessions a Set asks for (receive sockets
//     open only while a session of their family exists: an idle speaker holds no port 3784), demultiplexes
//     received packets (by Your Discriminator, else by peer and local address), drops
//     those below the session's minimum TTL (GTSM, RFC 5881 §5), drives every session's
//     timers from one loop on an injected clock and reports each transition through
//     OnChange. Goroutines: one receive loop per address family and the timer loop.
//   - metrics.go: loadstone_speaker_bfd_* (sessions by state, transitions, packets
//     received, sent and discarded by reason, send errors).
//
// Not implemented: authentication (a packet with the A bit is discarded), the echo
// function (Required Min Echo RX is sent as 0), demand mode (the D bit is never set and
// ignored when received), multihop (RFC 5883, port 4784) and the C bit.
//
// While a session is not Up it sends at most once a second (§6.8.3); on reaching Up it
// starts a Poll Sequence to the configured timers. A larger Desired Min TX and a smaller
// Required Min RX take effect only when the Final arrives, the reverse at once. A state
// change and the Final answering a Poll are sent at once, outside the periodic schedule.
package bfd
