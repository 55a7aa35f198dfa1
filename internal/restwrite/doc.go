// Package restwrite sends the API writes whose response body Loadstone does not use (a
// Service status patch, an Event create) through plain REST clients that check the status
// and skip decoding the returned object. controller-runtime's client always decodes it;
// at 10k allocations that decoding, and the garbage it leaves, is a few percent of the
// controller's CPU.
package restwrite
