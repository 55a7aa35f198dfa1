package bgp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/loadstone-lb/loadstone/speaker/routes"
)

func TestBackoffDelay(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {2, 0},
		{3, 2 * time.Second}, {4, 4 * time.Second}, {5, 8 * time.Second}, {6, 16 * time.Second},
		{8, 64 * time.Second}, {9, 2 * time.Minute}, {10, 2 * time.Minute}, {1000, 2 * time.Minute},
	} {
		if got := backoffDelay(tc.failures); got != tc.want {
			t.Errorf("backoffDelay(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

// A peer that refuses connections (nothing listens on its port on loopback) fails over and
// over: after the free failures the server holds it administratively down, then lets it
// try again; a peer configured anew starts from zero.
func TestFailingPeerIsHeldDownThenRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an in-process gobgp for several seconds")
	}
	s := New(Config{})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	peer := routes.Peer{Name: "nobody", Address: netip.MustParseAddr("127.0.0.1"), Port: 1, MyASN: 64512, PeerASN: 64500,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: time.Second}
	ctx := context.Background()
	if err := s.Apply(ctx, routes.Plan{RouterID: netip.MustParseAddr("192.0.2.11"), Peers: []routes.Peer{peer}}); err != nil {
		t.Fatal(err)
	}
	adminDown := func() bool {
		down := false
		_ = s.bgp.ListPeer(ctx, &api.ListPeerRequest{Address: "127.0.0.1"}, func(p *api.Peer) {
			down = p.GetState().GetAdminState() == api.PeerState_DOWN
		})
		return down
	}
	waitFor(t, "the failing peer held down", 60*time.Second, adminDown)
	s.stateMu.Lock()
	failures := s.backoff["127.0.0.1"].failures
	s.stateMu.Unlock()
	if failures <= freeFailures {
		t.Errorf("held down after %d failures, want more than %d", failures, freeFailures)
	}
	if err := s.Sessions()[0].LastError; err == "" {
		t.Error("no last error for a peer that refuses connections")
	}
	waitFor(t, "the peer enabled again after its hold", 60*time.Second, func() bool { return !adminDown() })

	// Configured anew (a changed ASN re-creates it): the count starts over.
	peer.PeerASN = 64501
	if err := s.Apply(ctx, routes.Plan{RouterID: netip.MustParseAddr("192.0.2.11"), Peers: []routes.Peer{peer}}); err != nil {
		t.Fatal(err)
	}
	s.stateMu.Lock()
	b := s.backoff["127.0.0.1"]
	s.stateMu.Unlock()
	if b != nil && b.failures > freeFailures {
		t.Errorf("a re-created peer kept %d failures", b.failures)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
