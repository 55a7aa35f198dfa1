package routes_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// TestFromSnapshot runs the speaker's path: CRD objects through observe.Build (the model
// resolves community aliases and BFD profiles, observe reads the Secret, the node's
// addresses and the endpoint counts) into Compute.
func TestFromSnapshot(t *testing.T) {
	c := observetest.New().
		Address("n1", netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8::11")).
		// Mode off: kube-proxy serves them, so no dataplane gates their routes here
		// (TestGatedByDataplane covers the gate).
		Service("shop", "local", "", observetest.IP4, observetest.IP6).Local("shop", "local").Mode("shop", "local", "off").
		Endpoints("shop", "local", "n1", 2, 3).Endpoints("shop", "local", "n2", 1, 0).
		Service("default", "web", "n3", netip.MustParseAddr("203.0.113.77")).Mode("default", "web", "off").
		BFDProfile("fast", v1beta1.BFDProfileSpec{}).
		Community("aliases", v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{
			{Name: "edge", Value: "65000:100"}, {Name: "big", Value: "large:64500:1:2"}}}).
		Peer("r4", v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "192.0.2.1", BFDProfile: "fast", StrictBFD: true,
			PasswordSecret: &v1beta1.SecretKeyReference{Namespace: "loadstone-system", Name: "bgp"}}).
		Peer("r6", v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64500, PeerAddress: "2001:db8::1"}).
		BGPAdvertisement("all", v1beta1.BGPAdvertisementSpec{Communities: []string{"edge", "big", "65000:7"}}).
		Secret("loadstone-system", "bgp", map[string]string{"password": "pw"})
	s := c.Snapshot("n1", observetest.View{Alive: []string{"n1", "n2", "n3"}})
	if len(s.ConfigProblems) != 0 {
		t.Fatalf("config problems %v", s.ConfigProblems)
	}
	got := routes.Compute(routes.FromSnapshot(s, s.Alive, map[string]bool{"r4": true}, nil))

	web := types.NamespacedName{Namespace: "default", Name: "web"}
	local := types.NamespacedName{Namespace: "shop", Name: "local"}
	attrs := func(p routes.Path) routes.Path {
		p.Communities = []uint32{65000<<16 | 7, 65000<<16 | 100}
		p.LargeCommunities = [][3]uint32{{64500, 1, 2}}
		return p
	}
	want := routes.Plan{
		RouterID: netip.MustParseAddr("192.0.2.11"),
		Peers: []routes.Peer{
			{Name: "r4", Address: netip.MustParseAddr("192.0.2.1"), Port: 179, MyASN: 64500, PeerASN: 64501,
				HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second, Password: "pw",
				BFD: &routes.BFD{Profile: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond,
					DetectMultiplier: 3, MinimumTTL: 254, Strict: true}},
			{Name: "r6", Address: netip.MustParseAddr("2001:db8::1"), Port: 179, MyASN: 64500, PeerASN: 64500,
				HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second},
		},
		Paths: map[string][]routes.Path{
			"r4": {
				attrs(routes.Path{Prefix: netip.MustParsePrefix("203.0.113.10/32"), LinkBandwidth: 2 * routes.BandwidthPerEndpoint, Services: []types.NamespacedName{local}}),
				attrs(routes.Path{Prefix: netip.MustParsePrefix("203.0.113.77/32"), Services: []types.NamespacedName{web}}),
			},
			"r6": {attrs(routes.Path{Prefix: netip.MustParsePrefix("2001:db8:100::10/128"), LinkBandwidth: 2 * routes.BandwidthPerEndpoint, Services: []types.NamespacedName{local}})},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}

	// Strict: the same with r4's BFD down, and the Secret gone keeps the previous r4.
	c.Lists.Secrets = nil
	s = c.Snapshot("n1", observetest.View{Alive: []string{"n1", "n2", "n3"}})
	next := routes.Compute(routes.FromSnapshot(s, s.Alive, map[string]bool{"r4": false}, &got))
	delete(want.Paths, "r4")
	want.Problems = []routes.Problem{{Kind: routes.KindBGPPeer, Name: "r4", Reason: routes.ReasonPasswordSecretMissing,
		Message: `Secret loadstone-system/bgp or its key "password" is missing; the session keeps its previous configuration`}}
	if diff := cmp.Diff(want, next, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("plan without the Secret, BFD down (-want +got):\n%s", diff)
	}
}

// TestFromSnapshotDegraded: without memberlist, Node readiness stands in for liveness.
func TestFromSnapshotDegraded(t *testing.T) {
	c := observetest.New().Address("n1", netip.MustParseAddr("192.0.2.11")).
		Service("default", "web", "n3", observetest.IP4).Mode("default", "web", "off").
		Peer("r4", v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "192.0.2.1"}).
		BGPAdvertisement("all", v1beta1.BGPAdvertisementSpec{})
	s := c.Snapshot("n1", observetest.View{Degraded: true})
	if got := routes.Compute(routes.FromSnapshot(s, s.Alive, nil, nil)); len(got.Paths["r4"]) != 1 {
		t.Errorf("degraded, Node Ready: paths %v, want one", got.Paths)
	}
	s = c.NotReady("n1").Snapshot("n1", observetest.View{Degraded: true})
	if got := routes.Compute(routes.FromSnapshot(s, s.Alive, nil, nil)); len(got.Peers) != 1 || len(got.Paths) != 0 {
		t.Errorf("degraded, Node not Ready: peers %v paths %v, want the session and no paths", got.Peers, got.Paths)
	}
}
