// Package routes decides, as a pure function of the speaker's snapshot, what this node
// does in BGP mode: which sessions it opens (Peer, with BFD parameters and the resolved
// password) and, per session, which prefixes it advertises with which attributes (Path).
//
// It imports no BGP library: package bgp turns a Plan into gobgp calls, and package bfd
// runs the BFD sessions a Plan asks for. Time and I/O stay outside; the BFD states that
// strict mode needs come in as input.
package routes
