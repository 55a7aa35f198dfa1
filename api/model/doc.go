// Package model turns a snapshot of all Loadstone configuration objects (api/v1beta1) into
// a validated internal Config of netip and plain Go types, and runs the checks that span
// objects: overlapping pools, references to unknown pools, peers, profiles and community
// aliases, duplicate peers.
//
// It is pure: no client, no clock, no logging. The controller and the speaker both build
// their view of the configuration with it, so they agree on what is valid. An object that
// fails validation keeps its last good version (when there is one) so that a typo never
// withdraws live IPs; its problems are returned per object, for conditions and Events.
package model
