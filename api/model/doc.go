// Package model turns a snapshot of all Loadstone configuration objects (api/v1beta1) into
// a validated internal Config of netip and plain Go types, and runs the checks that span
// objects: overlapping pools, references to unknown pools, peers, profiles and community
// aliases, duplicate peers.
//
// It is pure: no client, no clock, no logging. The controller and the speaker both build
// their view of the configuration with it, so they agree on what is valid. An object that
// fails validation keeps its last good version (when there is one) so that a typo never
// withdraws live IPs; its problems are returned per object, for conditions and Events.
//
// Data flow:
//
//	Snapshot{objects..., Previous: last Config} --Build--> (*Config, []Problem)
//	ValidCondition(cfg, problems, kind, name, generation) --> the object's Valid condition
//
// Decisions (the details are on Build):
//   - Conflicts are blamed on the object that changed (its current spec differs from its
//     version in Previous) over one whose version in force stays (unchanged, or broken
//     and kept at its last good version), then on the newer one (creationTimestamp), then
//     on the name that sorts last. Editing an object never knocks out what is live.
//   - Two BGPPeers are duplicates when peerAddress and peerPort are equal and they may
//     run on the same node: either has no nodeSelectors, or both have the same ones.
//   - A reference must resolve to an object in the resulting Config, so every name the
//     Config holds resolves within it. "All pools" (an advertisement with neither
//     ipAddressPools nor selectors) is expanded to the explicit list of pool names.
//   - Defaults the CRD leaves to the model: peerPort 179, holdTime 90s, keepaliveTime a
//     third of holdTime, connectTime 10s, BFD 300 ms x 3 with minimum TTL 254,
//     aggregation lengths 32 and 128.
//
// DataplaneMode is the one place where a Service's dataplane mode (pods, nodeport, off) is
// resolved from its loadstone.io/dataplane-mode annotation, its pool's spec.dataplaneMode
// and DefaultDataplaneMode; the controller derives ipMode from it, the speaker what its
// dataplane programs.
//
// ParseAddresses and ParseCommunity are the one place where pool entries and community
// values are parsed; other packages use them rather than parsing on their own.
package model
