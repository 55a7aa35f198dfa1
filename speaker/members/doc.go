// Package members runs the speakers' membership protocol. It is the only package that
// imports github.com/hashicorp/memberlist; the rest of the speaker sees a set of live node
// names (Alive), a change signal (Changes) and a degraded flag (Degraded).
//
// Discovery: the caller supplies Config.Peers, a function returning the addresses of the
// other speakers (the speaker uses the InternalIP of every Node, because its pods may not
// exist, as in the lab). Members joins them at start and every RejoinInterval re-joins the
// ones that are not alive, which also heals partitions: a node cut off declares everyone
// dead and would otherwise never talk to them again.
//
// Gossip is encrypted (AES-GCM, memberlist's keyring) with Config.Key and accepted with
// Config.SecondaryKeys too; the speaker reads them from the memberlist Secret (format in
// internal/gossipkey; the controller creates it) and follows its changes with SetKeys. A
// new primary key is accepted at once and used for encryption only after
// Config.KeySwitchDelay, a dropped key is still accepted for twice that: a rotation in
// which the Secret reaches speakers at slightly different times does not look like dead
// nodes to anyone. See docs/speaker.md for the timers of FastTiming.
//
// Stop (SIGTERM) leaves the cluster (a "left" broadcast, so peers act at once rather than
// after a failure detection) and shuts down. Crash (Shutdown without Leave) is detected by
// probes and suspicion.
//
// Degraded mode: when memberlist cannot start, or when after StartupGrace it has never
// reached a peer although peers were discovered, Degraded() is true, the
// loadstone_speaker_members_degraded gauge is 1 and a warning is logged; the speaker then treats
// Node readiness as liveness.
package members
