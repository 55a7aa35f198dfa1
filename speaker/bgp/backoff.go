package bgp

import (
	"context"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// Failing peers are retried with exponential backoff. gobgp on its own retries at a fixed
// pace (every connect-retry time while the peer does not answer; 5 s after a session
// error), which hammers a router that refuses us (a wrong ASN or password) forever. Each
// failure gobgp logs for a peer (a connect error, a NOTIFICATION, a session error) counts;
// the first freeFailures failures cost nothing more than gobgp's own pace, and every
// later one holds the peer administratively down for backoffDelay before gobgp tries
// again. Reaching Established, or the peer being configured anew, clears the count.
const (
	freeFailures = 2
	backoffBase  = 2 * time.Second
	backoffMax   = 2 * time.Minute
)

// backoffDelay is how long a peer with this many consecutive failures is held down: zero
// for the first freeFailures, then backoffBase doubling up to backoffMax.
func backoffDelay(failures int) time.Duration {
	n := failures - freeFailures
	if n <= 0 {
		return 0
	}
	d := backoffBase
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// peerBackoff is one peer's failure count and the hold in force.
type peerBackoff struct {
	failures int
	held     bool
	timer    *time.Timer
}

// onFailure counts a failure that gobgp logged for the neighbor at addr and, past the free
// ones, holds the peer down for the backoff delay. It is called from gobgp's goroutines,
// so the gobgp calls run on a goroutine of their own.
func (s *Server) onFailure(addr string) {
	s.stateMu.Lock()
	if s.stopped {
		s.stateMu.Unlock()
		return
	}
	name, known := s.names[addr]
	if !known {
		s.stateMu.Unlock()
		return
	}
	b := s.backoff[addr]
	if b == nil {
		b = &peerBackoff{}
		s.backoff[addr] = b
	}
	b.failures++
	d := backoffDelay(b.failures)
	if d == 0 || b.held {
		s.stateMu.Unlock()
		return
	}
	b.held = true
	failures := b.failures
	s.stateMu.Unlock()
	s.log.Info("BGP peer keeps failing; holding it down before the next attempt", "peer", name, "address", addr,
		"failures", failures, "retryIn", d.String(), "lastError", s.logs.lastError(addr))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.bgp.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr}); err != nil {
			s.log.Warn("holding a failing BGP peer down failed", "peer", name, "err", err)
		}
		s.stateMu.Lock()
		current, stopped := s.backoff[addr] == b, s.stopped
		if current && !stopped {
			b.timer = time.AfterFunc(d, func() { s.release(addr, b) })
		}
		s.stateMu.Unlock()
		if !current && !stopped {
			// The peer was configured anew meanwhile: undo the hold.
			if err := s.bgp.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr}); err != nil {
				s.log.Debug("enabling a re-configured BGP peer", "address", addr, "err", err)
			}
		}
	}()
}

// release ends a backoff hold: the peer is enabled again, and gobgp tries at once.
func (s *Server) release(addr string, b *peerBackoff) {
	s.stateMu.Lock()
	if s.stopped || s.backoff[addr] != b {
		s.stateMu.Unlock()
		return
	}
	b.held, b.timer = false, nil
	s.stateMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.bgp.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr}); err != nil {
		s.log.Warn("enabling a BGP peer after its backoff failed", "address", addr, "err", err)
	}
}

// resetBackoff forgets a neighbor's failures (Established, or configured anew). A hold in
// force is released by its timer being dropped: the caller (re)configures the peer
// enabled. Callers hold stateMu.
func (s *Server) resetBackoffLocked(addr string) {
	if b := s.backoff[addr]; b != nil && b.timer != nil {
		b.timer.Stop()
	}
	delete(s.backoff, addr)
}
