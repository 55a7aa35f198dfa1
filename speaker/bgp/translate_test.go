package bgp

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	pkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// asJSON renders gobgp API messages for cmp.Diff (their generated structs hold
// unexported protobuf state that cmp refuses to compare).
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// netipCmp compares netip values by value (their fields are unexported).
var netipCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

var (
	v4peer = routes.Peer{
		Name: "tor-a", Address: netip.MustParseAddr("192.0.2.1"), Port: 179, MyASN: 64600, PeerASN: 64500,
		SourceAddress: netip.MustParseAddr("192.0.2.10"), HoldTime: 9 * time.Second,
		KeepaliveTime: 3 * time.Second, ConnectTime: 1500 * time.Millisecond,
	}
	v6peer = routes.Peer{
		Name: "tor-a6", Address: netip.MustParseAddr("2001:db8:1::1"), MyASN: 4200000001, PeerASN: 64500,
	}
	ibgpPeer = routes.Peer{
		Name: "rr", Address: netip.MustParseAddr("192.0.2.2"), MyASN: 64500, PeerASN: 64500,
	}
)

func TestPeerConfig(t *testing.T) {
	gr := v4peer
	gr.Password, gr.EBGPMultiHop, gr.GracefulRestart = "s3cret", true, true
	tests := []struct {
		name string
		in   routes.Peer
		want *api.Peer
	}{{
		name: "IPv4 eBGP with everything",
		in:   gr,
		want: &api.Peer{
			Conf: &api.PeerConf{NeighborAddress: "192.0.2.1", PeerAsn: 64500, LocalAsn: 64600, AuthPassword: "s3cret"},
			Timers: &api.Timers{Config: &api.TimersConfig{
				HoldTime: 9, KeepaliveInterval: 3, ConnectRetry: 2, IdleHoldTimeAfterReset: 1,
			}},
			Transport:       &api.Transport{RemotePort: 179, LocalAddress: "192.0.2.10"},
			EbgpMultihop:    &api.EbgpMultihop{Enabled: true, MultihopTtl: 255},
			GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 120},
			AfiSafis: []*api.AfiSafi{{
				Config:            &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true},
				MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
			}},
		},
	}, {
		name: "IPv6 peer gets only IPv6 unicast, gobgp defaults for zero timers",
		in:   v6peer,
		want: &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: "2001:db8:1::1", PeerAsn: 64500, LocalAsn: 4200000001},
			Timers:    &api.Timers{Config: &api.TimersConfig{IdleHoldTimeAfterReset: 1}},
			Transport: &api.Transport{},
			AfiSafis: []*api.AfiSafi{{
				Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true},
			}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(asJSON(t, tt.want), asJSON(t, peerConfig(tt.in))); d != "" {
				t.Errorf("peerConfig (-want +got):\n%s", d)
			}
		})
	}
}

func TestComparePeer(t *testing.T) {
	mod := func(f func(*routes.Peer)) routes.Peer {
		p := v4peer
		f(&p)
		return p
	}
	tests := []struct {
		name string
		new  routes.Peer
		want peerChange
	}{
		{"same", v4peer, peerSame},
		{"BFD only", mod(func(p *routes.Peer) { p.BFD = &routes.BFD{Profile: "fast"} }), peerSame},
		{"sub-second timer change rounding to the same seconds", mod(func(p *routes.Peer) { p.HoldTime = 8500 * time.Millisecond }), peerSame},
		{"connect retry", mod(func(p *routes.Peer) { p.ConnectTime = 5 * time.Second }), peerInPlace},
		{"multihop", mod(func(p *routes.Peer) { p.EBGPMultiHop = true }), peerInPlace},
		{"renamed", mod(func(p *routes.Peer) { p.Name = "tor-b" }), peerSame},
		{"address", mod(func(p *routes.Peer) { p.Address = netip.MustParseAddr("192.0.2.3") }), peerRecreate},
		{"port", mod(func(p *routes.Peer) { p.Port = 1179 }), peerRecreate},
		{"my ASN", mod(func(p *routes.Peer) { p.MyASN = 64601 }), peerRecreate},
		{"peer ASN", mod(func(p *routes.Peer) { p.PeerASN = 64501 }), peerRecreate},
		{"source", mod(func(p *routes.Peer) { p.SourceAddress = netip.Addr{} }), peerRecreate},
		{"password", mod(func(p *routes.Peer) { p.Password = "x" }), peerRecreate},
		{"hold", mod(func(p *routes.Peer) { p.HoldTime = 90 * time.Second }), peerRecreate},
		{"keepalive", mod(func(p *routes.Peer) { p.KeepaliveTime = 30 * time.Second }), peerRecreate},
		{"graceful restart", mod(func(p *routes.Peer) { p.GracefulRestart = true }), peerRecreate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := comparePeer(v4peer, tt.new); got != tt.want {
				t.Errorf("comparePeer = %d, want %d", got, tt.want)
			}
		})
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestExportGroups(t *testing.T) {
	paths := []routes.Path{
		{Prefix: pfx("203.0.113.20/32"), Communities: []uint32{65000<<16 | 2, 65000<<16 | 1}, LinkBandwidth: 1.25e8},
		{Prefix: pfx("203.0.113.0/28"), LocalPref: 200, HasLocalPref: true},
		{Prefix: pfx("203.0.113.10/32"), Communities: []uint32{65000<<16 | 1, 65000<<16 | 2}, LinkBandwidth: 1.25e8 + 0.4},
		{Prefix: pfx("2001:db8:100::10/128"), Communities: []uint32{1}},
		{Prefix: pfx("203.0.113.30/32"), LargeCommunities: [][3]uint32{{64600, 2, 1}, {64600, 1, 2}}, LinkBandwidth: 1e11},
	}
	tests := []struct {
		name string
		peer routes.Peer
		want []exportGroup
	}{{
		name: "eBGP: same attributes grouped, local-pref dropped, other family dropped, bandwidth capped",
		peer: v4peer,
		want: []exportGroup{
			{Attrs: attrs{}, Prefixes: []netip.Prefix{pfx("203.0.113.0/28")}},
			{Attrs: attrs{Communities: []uint32{65000<<16 | 1, 65000<<16 | 2}, LinkBandwidth: 125000000},
				Prefixes: []netip.Prefix{pfx("203.0.113.10/32"), pfx("203.0.113.20/32")}},
			{Attrs: attrs{LargeCommunities: [][3]uint32{{64600, 1, 2}, {64600, 2, 1}}, LinkBandwidth: math.MaxUint32},
				Prefixes: []netip.Prefix{pfx("203.0.113.30/32")}},
		},
	}, {
		name: "iBGP keeps local-pref",
		peer: ibgpPeer,
		want: []exportGroup{
			{Attrs: attrs{LocalPref: 200, HasLocalPref: true}, Prefixes: []netip.Prefix{pfx("203.0.113.0/28")}},
			{Attrs: attrs{Communities: []uint32{65000<<16 | 1, 65000<<16 | 2}, LinkBandwidth: 125000000},
				Prefixes: []netip.Prefix{pfx("203.0.113.10/32"), pfx("203.0.113.20/32")}},
			{Attrs: attrs{LargeCommunities: [][3]uint32{{64600, 1, 2}, {64600, 2, 1}}, LinkBandwidth: math.MaxUint32},
				Prefixes: []netip.Prefix{pfx("203.0.113.30/32")}},
		},
	}, {
		name: "IPv6 session gets only IPv6",
		peer: v6peer,
		want: []exportGroup{{Attrs: attrs{Communities: []uint32{1}}, Prefixes: []netip.Prefix{pfx("2001:db8:100::10/128")}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, exportGroups(tt.peer, paths), netipCmp); d != "" {
				t.Errorf("exportGroups (-want +got):\n%s", d)
			}
		})
	}
}

func TestExportPolicy(t *testing.T) {
	groups := []exportGroup{
		{Attrs: attrs{}, Prefixes: []netip.Prefix{pfx("203.0.113.0/28")}},
		{Attrs: attrs{
			Communities: []uint32{65000<<16 | 1}, LargeCommunities: [][3]uint32{{64600, 1, 2}},
			LocalPref: 200, HasLocalPref: true, LinkBandwidth: 125000000,
		}, Prefixes: []netip.Prefix{pfx("203.0.113.10/32"), pfx("203.0.113.20/32")}},
	}
	peer := v6peer
	peer.Address = netip.MustParseAddr("::ffff:192.0.2.1") // a 4-in-6 address is the IPv4 one
	sets, pol := exportPolicy(peer, groups, namesFor(7),
		transits([]netip.Prefix{pfx("203.0.113.30/32"), pfx("203.0.113.31/32")},
			map[netip.Prefix]uint8{pfx("203.0.113.30/32"): originIGP, pfx("203.0.113.31/32"): originIncomplete})...)
	wantSets := []*api.DefinedSet{
		{DefinedType: api.DefinedType_NEIGHBOR, Name: "loadstone-export-7-nb", List: []string{"192.0.2.1/32"}},
		{DefinedType: api.DefinedType_PREFIX, Name: "loadstone-export-7-p0", Prefixes: []*api.Prefix{
			{IpPrefix: "203.0.113.0/28", MaskLengthMin: 28, MaskLengthMax: 28}}},
		{DefinedType: api.DefinedType_PREFIX, Name: "loadstone-export-7-p1", Prefixes: []*api.Prefix{
			{IpPrefix: "203.0.113.10/32", MaskLengthMin: 32, MaskLengthMax: 32},
			{IpPrefix: "203.0.113.20/32", MaskLengthMin: 32, MaskLengthMax: 32}}},
		{DefinedType: api.DefinedType_PREFIX, Name: "loadstone-export-7-p2", Prefixes: []*api.Prefix{
			{IpPrefix: "203.0.113.30/32", MaskLengthMin: 32, MaskLengthMax: 32}}},
		{DefinedType: api.DefinedType_PREFIX, Name: "loadstone-export-7-p3", Prefixes: []*api.Prefix{
			{IpPrefix: "203.0.113.31/32", MaskLengthMin: 32, MaskLengthMax: 32}}},
	}
	cond := func(i string) *api.Conditions {
		return &api.Conditions{
			NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: "loadstone-export-7-nb"},
			PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: "loadstone-export-7-p" + i},
		}
	}
	igp := &api.OriginAction{Origin: api.RouteOriginType_ORIGIN_IGP}
	withOrigin := func(c *api.Conditions, o api.RouteOriginType) *api.Conditions { c.Origin = o; return c }
	wantPol := &api.Policy{Name: "loadstone-export-7", Statements: []*api.Statement{
		{Name: "loadstone-export-7-s0", Conditions: cond("0"), Actions: &api.Actions{RouteAction: api.RouteAction_ACCEPT, OriginAction: igp}},
		{Name: "loadstone-export-7-s1", Conditions: cond("1"), Actions: &api.Actions{
			RouteAction:    api.RouteAction_ACCEPT,
			OriginAction:   igp,
			Community:      &api.CommunityAction{Type: api.CommunityAction_REPLACE, Communities: []string{"65000:1"}},
			LargeCommunity: &api.CommunityAction{Type: api.CommunityAction_REPLACE, Communities: []string{"64600:1:2"}},
			// MyASN 4200000001 does not fit in two octets: AS_TRANS.
			ExtCommunity: &api.CommunityAction{Type: api.CommunityAction_REPLACE, Communities: []string{"lb:23456:125000000"}},
			LocalPref:    &api.LocalPrefAction{Value: 200},
		}},
		// Transitional: accept the current version of prefixes leaving the peer.
		{Name: "loadstone-export-7-s2", Conditions: withOrigin(cond("2"), api.RouteOriginType_ORIGIN_IGP),
			Actions: &api.Actions{RouteAction: api.RouteAction_ACCEPT, OriginAction: igp}},
		{Name: "loadstone-export-7-s3", Conditions: withOrigin(cond("3"), api.RouteOriginType_ORIGIN_INCOMPLETE),
			Actions: &api.Actions{RouteAction: api.RouteAction_ACCEPT, OriginAction: igp}},
	}}
	if d := cmp.Diff(asJSON(t, wantSets), asJSON(t, sets)); d != "" {
		t.Errorf("sets (-want +got):\n%s", d)
	}
	if d := cmp.Diff(asJSON(t, wantPol), asJSON(t, pol)); d != "" {
		t.Errorf("policy (-want +got):\n%s", d)
	}
}

func TestLostPrefixes(t *testing.T) {
	g := func(ps ...string) []exportGroup {
		var out []netip.Prefix
		for _, p := range ps {
			out = append(out, pfx(p))
		}
		return []exportGroup{{Prefixes: out}}
	}
	old := map[string][]exportGroup{"a": g("203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"), "b": g("203.0.113.1/32")}
	nw := map[string][]exportGroup{"a": g("203.0.113.1/32"), "b": g("203.0.113.1/32", "203.0.113.2/32")}
	rib := ribPrefixes(nw)
	// .2 leaves a but stays for b: lost. .3 leaves the RIB: a plain withdrawal. .1 stays.
	if d := cmp.Diff(map[string][]netip.Prefix{"a": {pfx("203.0.113.2/32")}}, lostPrefixes(old, nw, rib), netipCmp); d != "" {
		t.Errorf("lostPrefixes (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[netip.Prefix]bool{pfx("203.0.113.1/32"): true, pfx("203.0.113.2/32"): true}, rib, netipCmp); d != "" {
		t.Errorf("ribPrefixes (-want +got):\n%s", d)
	}
}

// TestParseAdvertised builds paths the way gobgp's Adj-RIB-Out hands them out and parses
// them back.
func TestParseAdvertised(t *testing.T) {
	v4 := pkt.NewIPAddrPrefix(32, "203.0.113.10")
	v6 := pkt.NewIPv6AddrPrefix(128, "2001:db8:100::10")
	lbBytes := make([]byte, 7)
	lbBytes[0] = byte(pkt.EC_SUBTYPE_LINK_BANDWIDTH)
	bits := math.Float32bits(5e8)
	lbBytes[3], lbBytes[4], lbBytes[5], lbBytes[6] = byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits)
	tests := []struct {
		name  string
		nlri  pkt.AddrPrefixInterface
		attrs []pkt.PathAttributeInterface
		want  Advertised
	}{{
		name: "IPv4 with everything",
		nlri: v4,
		attrs: []pkt.PathAttributeInterface{
			pkt.NewPathAttributeOrigin(0),
			pkt.NewPathAttributeNextHop("192.0.2.10"),
			pkt.NewPathAttributeCommunities([]uint32{65000<<16 | 2, 65000<<16 | 1}),
			pkt.NewPathAttributeLargeCommunities([]*pkt.LargeCommunity{pkt.NewLargeCommunity(64600, 1, 2)}),
			pkt.NewPathAttributeLocalPref(200),
			pkt.NewPathAttributeExtendedCommunities([]pkt.ExtendedCommunityInterface{pkt.NewLinkBandwidthExtended(64600, 1.25e8)}),
		},
		want: Advertised{Path: routes.Path{
			Prefix: pfx("203.0.113.10/32"), Communities: []uint32{65000<<16 | 1, 65000<<16 | 2},
			LargeCommunities: [][3]uint32{{64600, 1, 2}}, LocalPref: 200, HasLocalPref: true, LinkBandwidth: 1.25e8,
		}, NextHop: netip.MustParseAddr("192.0.2.10")},
	}, {
		name: "IPv6, next hop in MP_REACH, link bandwidth left opaque",
		nlri: v6,
		attrs: []pkt.PathAttributeInterface{
			pkt.NewPathAttributeMpReachNLRI("2001:db8:1::10", []pkt.AddrPrefixInterface{v6}),
			pkt.NewPathAttributeExtendedCommunities([]pkt.ExtendedCommunityInterface{
				&pkt.UnknownExtended{Type: pkt.EC_TYPE_NON_TRANSITIVE_LINK_BANDWIDTH, Value: lbBytes}}),
		},
		want: Advertised{Path: routes.Path{Prefix: pfx("2001:db8:100::10/128"), LinkBandwidth: 5e8},
			NextHop: netip.MustParseAddr("2001:db8:1::10")},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := apiutil.NewPath(tt.nlri, false, tt.attrs, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseAdvertised(p)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, netipCmp); d != "" {
				t.Errorf("parseAdvertised (-want +got):\n%s", d)
			}
		})
	}
}

func TestRibPathRoundTrip(t *testing.T) {
	for _, s := range []string{"203.0.113.0/28", "2001:db8:100::/120"} {
		p, err := ribPath(pfx(s), originIncomplete, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseAdvertised(p)
		if err != nil {
			t.Fatal(err)
		}
		want := Advertised{Path: routes.Path{Prefix: pfx(s)}, NextHop: netip.IPv4Unspecified()}
		if pfx(s).Addr().Is6() {
			want.NextHop = netip.IPv6Unspecified()
		}
		if d := cmp.Diff(want, got, netipCmp); d != "" {
			t.Errorf("%s (-want +got):\n%s", s, d)
		}
	}
}

func TestLogAdapterRecordsSessionErrors(t *testing.T) {
	a := newLogAdapter(slog.New(slog.DiscardHandler))
	peer := func(f gobgplog.Fields) gobgplog.Fields { f["Topic"] = "Peer"; f["Key"] = "192.0.2.1"; return f }
	a.Debug("failed to connect", peer(gobgplog.Fields{"Error": "dial tcp 192.0.2.1:179: i/o timeout"}))
	if got, want := a.lastError("192.0.2.1"), "connect: dial tcp 192.0.2.1:179: i/o timeout"; got != want {
		t.Errorf("after a connect failure: %q, want %q", got, want)
	}
	a.Warn("received notification", peer(gobgplog.Fields{"Code": uint8(2), "Subcode": uint8(2), "Data": []byte{}}))
	a.Debug("state changed", peer(gobgplog.Fields{"old": "BGP_FSM_ESTABLISHED", "new": "BGP_FSM_IDLE", "reason": "notification-received open message error"}))
	if got, want := a.lastError("192.0.2.1"), "received notification: "+pkt.NewNotificationErrorCode(2, 2).String(); got != want {
		t.Errorf("after a NOTIFICATION and the down that follows: %q, want %q", got, want)
	}
	a.Info("Peer Up", peer(gobgplog.Fields{}))
	a.Debug("state changed", peer(gobgplog.Fields{"new": "BGP_FSM_ACTIVE", "reason": "idle-hold-timer-expired"}))
	a.Debug("state changed", peer(gobgplog.Fields{"new": "BGP_FSM_IDLE", "reason": "hold-timer-expired"}))
	if got, want := a.lastError("192.0.2.1"), "session down: hold-timer-expired"; got != want {
		t.Errorf("after a hold timer expiry: %q, want %q", got, want)
	}
	a.Info("some other message", gobgplog.Fields{"Topic": "Peer", "Key": "192.0.2.2"})
	if got := a.lastError("192.0.2.2"); got != "" {
		t.Errorf("unrelated messages recorded %q", got)
	}
	// Our NOTIFICATION and the end of the attempt, in either order: the NOTIFICATION wins.
	mismatch := fmt.Errorf("as number mismatch expected 64501, received 64500")
	for _, order := range [][]string{{"notification", "down"}, {"down", "notification"}} {
		a.Debug("state changed", peer(gobgplog.Fields{"old": "BGP_FSM_IDLE", "new": "BGP_FSM_ACTIVE"}))
		for _, step := range order {
			if step == "notification" {
				a.Warn("sent notification", peer(gobgplog.Fields{"Data": mismatch}))
			} else {
				a.Debug("state changed", peer(gobgplog.Fields{"old": "BGP_FSM_OPENSENT", "new": "BGP_FSM_IDLE", "reason": "invalid-msg"}))
			}
		}
		if got, want := a.lastError("192.0.2.1"), "sent notification: "+mismatch.Error(); got != want {
			t.Errorf("order %v: %q, want %q", order, got, want)
		}
	}
	// A later attempt ending without a NOTIFICATION of ours replaces it.
	a.Debug("state changed", peer(gobgplog.Fields{"old": "BGP_FSM_IDLE", "new": "BGP_FSM_ACTIVE"}))
	a.Debug("state changed", peer(gobgplog.Fields{"old": "BGP_FSM_OPENCONFIRM", "new": "BGP_FSM_IDLE", "reason": "invalid-msg"}))
	if got := a.lastError("192.0.2.1"); !strings.HasPrefix(got, "session down: invalid-msg in OPENCONFIRM (the peer likely refused our OPEN") {
		t.Errorf("after a refused OPEN: %q", got)
	}
	a.forget("192.0.2.1")
	if got := a.lastError("192.0.2.1"); got != "" {
		t.Errorf("after forget: %q", got)
	}
}
