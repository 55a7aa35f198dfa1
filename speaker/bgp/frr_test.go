package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loadstone-lb/loadstone/internal/testwait"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// frrConf is the router: AS 64500, passive towards the node (it never dials), one
// neighbor per node source address, each a different case.
const frrConf = `frr defaults traditional
hostname lsbgp-router
log stdout debugging
!
router bgp 64500
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 neighbor 192.0.2.10 remote-as 64600
 neighbor 192.0.2.10 passive
 neighbor 192.0.2.10 timers 3 9
 neighbor 192.0.2.11 remote-as 64500
 neighbor 192.0.2.11 passive
 neighbor 192.0.2.11 timers 3 9
 neighbor 192.0.2.12 remote-as 64600
 neighbor 192.0.2.12 passive
 neighbor 192.0.2.12 password s3cret
 neighbor 192.0.2.13 remote-as 64601
 neighbor 192.0.2.13 passive
 neighbor 192.0.2.14 remote-as 64600
 neighbor 192.0.2.14 passive
 neighbor 2001:db8:1::10 remote-as 64600
 neighbor 2001:db8:1::10 passive
 neighbor 2001:db8:1::10 timers 3 9
 !
 address-family ipv4 unicast
  neighbor 192.0.2.10 activate
  neighbor 192.0.2.11 activate
  neighbor 192.0.2.12 activate
  neighbor 192.0.2.13 activate
  neighbor 192.0.2.14 activate
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor 2001:db8:1::10 activate
 exit-address-family
!
`

// TestFRR runs our gobgp against FRR (zebra + bgpd) in a router netns.
func TestFRR(t *testing.T) {
	l := newRouterLab(t, "vtysh", "/usr/lib/frr/bgpd", "/usr/lib/frr/zebra")
	vty := l.startFRR(t, frrConf)
	l.runChild(t, "TestFRRChild", childSpec{VtyDir: vty, FRRLog: filepath.Join(l.dir, "bgpd.log")})
}

type frr struct {
	t   *testing.T
	dir string
}

func (f frr) json(cmd string, v any) error {
	out, err := cmdOut("vtysh", "--vty_socket", f.dir, "-c", cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd, err, out)
	}
	return nil
}

// frrPath is the part of FRR's `show bgp <afi> unicast <prefix> json` path we check.
type frrPath struct {
	Peer struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
	Nexthops []struct {
		IP string `json:"ip"`
	} `json:"nexthops"`
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity *struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	ExtendedCommunity *struct {
		String string `json:"string"`
	} `json:"extendedCommunity"`
	Origin string  `json:"origin"`
	LocPrf *uint32 `json:"locPrf"`
	Stale  bool    `json:"stale"`
}

// seen is a route as the router holds it from one neighbor, in a comparable form.
type seen struct {
	NextHop, Communities, Large, Ext string
	LocalPref                        uint32
	// NotIGP is set when the origin is not IGP (the wire always carries IGP).
	NotIGP string
	Stale  bool
}

var frrHuman = regexp.MustCompile(` \([^)]*\)`)

// routes returns the paths FRR holds for prefix, by neighbor address.
func (f frr) routes(prefix string) (map[string]seen, error) {
	afi := "ipv4"
	if strings.Contains(prefix, ":") {
		afi = "ipv6"
	}
	var r struct {
		Paths []frrPath `json:"paths"`
	}
	if err := f.json(fmt.Sprintf("show bgp %s unicast %s json", afi, prefix), &r); err != nil {
		return nil, err
	}
	out := map[string]seen{}
	for _, p := range r.Paths {
		s := seen{Stale: p.Stale}
		if p.Origin != "IGP" {
			s.NotIGP = p.Origin
		}
		if len(p.Nexthops) > 0 {
			s.NextHop = p.Nexthops[0].IP
		}
		if p.Community != nil {
			s.Communities = p.Community.String
		}
		if p.LargeCommunity != nil {
			s.Large = p.LargeCommunity.String
		}
		if p.ExtendedCommunity != nil {
			// Drop FRR's human rendering of the bandwidth ("(1.000 Gbps)").
			s.Ext = frrHuman.ReplaceAllString(p.ExtendedCommunity.String, "")
		}
		if p.LocPrf != nil {
			s.LocalPref = *p.LocPrf
		}
		out[p.Peer.PeerID] = s
	}
	return out, nil
}

// connections returns FRR's count of established connections per neighbor: it grows
// with every session reset.
func (f frr) connections() (map[string]int, error) {
	var r map[string]struct {
		ConnectionsEstablished int `json:"connectionsEstablished"`
	}
	if err := f.json("show bgp neighbors json", &r); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for k, v := range r {
		out[k] = v.ConnectionsEstablished
	}
	return out, nil
}

// expectRoutes waits until FRR holds exactly want for each prefix (neighbor → route).
func (f frr) expectRoutes(what string, want map[string]map[string]seen) {
	f.t.Helper()
	testwait.For(f.t, what, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		var diffs []string
		for prefix, w := range want {
			got, err := f.routes(prefix)
			if err != nil {
				return false, err.Error()
			}
			if d := cmp.Diff(w, got); d != "" {
				diffs = append(diffs, prefix+" (-want +got):\n"+d)
			}
		}
		return len(diffs) == 0, strings.Join(diffs, "\n")
	})
}

func comm(a, n uint32) uint32 { return a<<16 | n }

var (
	ebgp4 = routes.Peer{Name: "ebgp4", Address: netip.MustParseAddr("192.0.2.1"), SourceAddress: netip.MustParseAddr("192.0.2.10"),
		MyASN: 64600, PeerASN: 64500, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: time.Second}
	ibgp4 = routes.Peer{Name: "ibgp4", Address: netip.MustParseAddr("192.0.2.2"), SourceAddress: netip.MustParseAddr("192.0.2.11"),
		MyASN: 64500, PeerASN: 64500, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: time.Second,
		GracefulRestart: true}
	md5 = routes.Peer{Name: "md5", Address: netip.MustParseAddr("192.0.2.3"), SourceAddress: netip.MustParseAddr("192.0.2.12"),
		MyASN: 64600, PeerASN: 64500, ConnectTime: time.Second, Password: "wrong"}
	badASN = routes.Peer{Name: "badasn", Address: netip.MustParseAddr("192.0.2.4"), SourceAddress: netip.MustParseAddr("192.0.2.13"),
		MyASN: 64602, PeerASN: 64500, ConnectTime: time.Second}
	// wrongPeerASN expects AS 64501 where the router is 64500: we send the NOTIFICATION.
	wrongPeerASN = routes.Peer{Name: "wrongpeerasn", Address: netip.MustParseAddr("192.0.2.5"), SourceAddress: netip.MustParseAddr("192.0.2.14"),
		MyASN: 64600, PeerASN: 64501, ConnectTime: time.Second}
	ebgp6 = routes.Peer{Name: "ebgp6", Address: netip.MustParseAddr("2001:db8:1::1"), SourceAddress: netip.MustParseAddr("2001:db8:1::10"),
		MyASN: 64600, PeerASN: 64500, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: time.Second}
)

func session(ss []Session, name string) (Session, bool) {
	for _, s := range ss {
		if s.Peer == name {
			return s, true
		}
	}
	return Session{}, false
}

func waitSession(t *testing.T, srv *Server, name, what string, cond func(Session) bool) Session {
	t.Helper()
	var last Session
	testwait.For(t, what, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		s, ok := session(srv.Sessions(), name)
		last = s
		return ok && cond(s), fmt.Sprintf("%+v", s)
	})
	return last
}

func established(s Session) bool { return s.State == StateEstablished }

// TestFRRChild runs inside the node netns (see TestFRR).
func TestFRRChild(t *testing.T) {
	spec := childSpecOrSkip(t)
	f := frr{t: t, dir: spec.VtyDir}
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	changes := make(chan struct{}, 1000)
	srv := New(Config{
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Registerer: reg,
		OnChange: func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		},
	})
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = srv.Close(ctx)
		}
	})

	plan := routes.Plan{
		RouterID: netip.MustParseAddr("192.0.2.10"),
		Peers:    []routes.Peer{badASN, ebgp4, ebgp6, ibgp4, md5, wrongPeerASN},
		Paths: map[string][]routes.Path{
			"ebgp4": {
				{Prefix: pfx("203.0.113.0/28"), Communities: []uint32{comm(65000, 200)}},
				{Prefix: pfx("203.0.113.10/32"), Communities: []uint32{comm(65000, 100)}, LargeCommunities: [][3]uint32{{64600, 1, 2}}, LinkBandwidth: 1.25e8},
				{Prefix: pfx("203.0.113.20/32"), Communities: []uint32{comm(65000, 1)}},
			},
			"ibgp4": {
				{Prefix: pfx("203.0.113.11/32"), Communities: []uint32{comm(65000, 300)}, LocalPref: 200, HasLocalPref: true},
				{Prefix: pfx("203.0.113.20/32"), Communities: []uint32{comm(65000, 2)}, LocalPref: 150, HasLocalPref: true},
			},
			"ebgp6": {
				{Prefix: pfx("2001:db8:100::10/128"), Communities: []uint32{comm(65000, 600)}, LargeCommunities: [][3]uint32{{64600, 6, 6}}, LinkBandwidth: 2.5e8},
				{Prefix: pfx("2001:db8:100::/120")},
			},
		},
	}
	if err := srv.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := srv.Apply(ctx, plan); err != nil { // idempotent
		t.Fatalf("Apply again: %v", err)
	}
	for _, name := range []string{"ebgp4", "ibgp4", "ebgp6"} {
		waitSession(t, srv, name, name+" Established", established)
	}
	const (
		n4  = "192.0.2.10"
		n4i = "192.0.2.11"
		n6  = "2001:db8:1::10"
	)
	f.expectRoutes("the first plan at the router", map[string]map[string]seen{
		"203.0.113.0/28": {n4: {NextHop: n4, Communities: "65000:200"}},
		"203.0.113.10/32": {n4: {NextHop: n4, Communities: "65000:100", Large: "64600:1:2",
			Ext: "LB:64600:125000000"}},
		"203.0.113.20/32": {
			n4:  {NextHop: n4, Communities: "65000:1"},
			n4i: {NextHop: n4i, Communities: "65000:2", LocalPref: 150},
		},
		"203.0.113.11/32": {n4i: {NextHop: n4i, Communities: "65000:300", LocalPref: 200}},
		"2001:db8:100::10/128": {n6: {NextHop: n6, Communities: "65000:600", Large: "64600:6:6",
			Ext: "LB:64600:250000000"}},
		"2001:db8:100::/120": {n6: {NextHop: n6}},
	})

	// What Sessions reads back from the Adj-RIB-Out is what was sent.
	s4, _ := session(srv.Sessions(), "ebgp4")
	wantAdv := []Advertised{
		{Path: routes.Path{Prefix: pfx("203.0.113.0/28"), Communities: []uint32{comm(65000, 200)}}, NextHop: netip.MustParseAddr(n4)},
		{Path: routes.Path{Prefix: pfx("203.0.113.10/32"), Communities: []uint32{comm(65000, 100)}, LargeCommunities: [][3]uint32{{64600, 1, 2}}, LinkBandwidth: 1.25e8}, NextHop: netip.MustParseAddr(n4)},
		{Path: routes.Path{Prefix: pfx("203.0.113.20/32"), Communities: []uint32{comm(65000, 1)}}, NextHop: netip.MustParseAddr(n4)},
	}
	if d := cmp.Diff(wantAdv, s4.Advertised, netipCmp); d != "" {
		t.Errorf("ebgp4 Advertised (-want +got):\n%s", d)
	}
	if s4.HoldTime != 9*time.Second || s4.KeepaliveTime != 3*time.Second || s4.EstablishedSince.IsZero() {
		t.Errorf("ebgp4 negotiated timers / since: %+v", s4)
	}
	si, _ := session(srv.Sessions(), "ibgp4")
	wantAdvI := []Advertised{
		{Path: routes.Path{Prefix: pfx("203.0.113.11/32"), Communities: []uint32{comm(65000, 300)}, LocalPref: 200, HasLocalPref: true}, NextHop: netip.MustParseAddr(n4i)},
		{Path: routes.Path{Prefix: pfx("203.0.113.20/32"), Communities: []uint32{comm(65000, 2)}, LocalPref: 150, HasLocalPref: true}, NextHop: netip.MustParseAddr(n4i)},
	}
	if d := cmp.Diff(wantAdvI, si.Advertised, netipCmp); d != "" {
		t.Errorf("ibgp4 Advertised (-want +got):\n%s", d)
	}

	// MD5 mismatch: never Established, and Sessions says why. Wrong ASN: the router's
	// NOTIFICATION.
	m := waitSession(t, srv, "md5", "md5 (wrong password) reports an error", func(s Session) bool { return s.LastError != "" })
	if m.State == StateEstablished {
		t.Errorf("md5 with the wrong password is Established: %+v", m)
	}
	t.Logf("md5 with the wrong password: %s: %s", m.State, m.LastError)
	w := waitSession(t, srv, "wrongpeerasn", "wrongpeerasn reports our NOTIFICATION", func(s Session) bool {
		return strings.Contains(s.LastError, "as number mismatch expected 64501, received 64500")
	})
	t.Logf("wrongpeerasn: %s: %s", w.State, w.LastError)
	// The router refuses our ASN: gobgp does not report a NOTIFICATION it receives
	// before Established, but Sessions says the OPEN was refused.
	b := waitSession(t, srv, "badasn", "badasn reports the refused OPEN", func(s Session) bool {
		return strings.Contains(s.LastError, "refused our OPEN")
	})
	t.Logf("badasn: %s: %s", b.State, b.LastError)

	if got := testutil.ToFloat64(srv.m.sessionUp.WithLabelValues("ebgp4")); got != 1 {
		t.Errorf("session_up{peer=ebgp4} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(srv.m.transitions.WithLabelValues("ebgp4", "Established")); got < 1 {
		t.Errorf("transitions{ebgp4,Established} = %v, want ≥ 1", got)
	}
	if len(changes) == 0 {
		t.Errorf("OnChange was never called")
	}

	before, err := f.connections()
	if err != nil {
		t.Fatal(err)
	}
	// .20 will leave ebgp4 and stay on ibgp4: FRR must see a withdrawal from ebgp4 only.
	// (FRR's lastUpdate cannot tell: it moves on every re-announcement, even one with
	// unchanged attributes, like a soft reset's.) FRR logs received withdrawals.
	if _, err := cmdOut("vtysh", "--vty_socket", f.dir, "-c", "debug bgp updates in"); err != nil {
		t.Fatal(err)
	}

	// Second plan: communities and local-pref change, .20 leaves ebgp4 but stays for
	// ibgp4, .30 is new, the /28 goes away, the password is fixed (that session resets),
	// ebgp4's connect-retry and ebgp6's multihop change (in place), ibgp4 is renamed. None
	// of the established sessions resets.
	plan2 := plan
	e4 := ebgp4
	e4.ConnectTime = 2 * time.Second
	m2 := md5
	m2.Password = "s3cret"
	e6 := ebgp6
	e6.EBGPMultiHop = true // in place: the socket's TTL
	i4 := ibgp4
	i4.Name = "ibgp4-renamed" // same address: bookkeeping only
	plan2.Peers = []routes.Peer{badASN, e4, e6, i4, m2, wrongPeerASN}
	plan2.Paths = map[string][]routes.Path{
		"ebgp4": {
			{Prefix: pfx("203.0.113.10/32"), Communities: []uint32{comm(65000, 101)}, LargeCommunities: [][3]uint32{{64600, 1, 3}}, LinkBandwidth: 2.5e8},
			{Prefix: pfx("203.0.113.30/32")},
		},
		"ibgp4-renamed": {
			{Prefix: pfx("203.0.113.11/32"), Communities: []uint32{comm(65000, 300)}, LocalPref: 250, HasLocalPref: true},
			{Prefix: pfx("203.0.113.20/32"), Communities: []uint32{comm(65000, 2)}, LocalPref: 150, HasLocalPref: true},
		},
		"ebgp6": plan.Paths["ebgp6"][:1],
		"md5":   {{Prefix: pfx("203.0.113.12/32")}},
	}
	if err := srv.Apply(ctx, plan2); err != nil {
		t.Fatalf("Apply plan2: %v", err)
	}
	const n4m = "192.0.2.12"
	f.expectRoutes("the second plan at the router", map[string]map[string]seen{
		"203.0.113.0/28": {},
		"203.0.113.10/32": {n4: {NextHop: n4, Communities: "65000:101", Large: "64600:1:3",
			Ext: "LB:64600:250000000"}},
		"203.0.113.20/32":      {n4i: {NextHop: n4i, Communities: "65000:2", LocalPref: 150}},
		"203.0.113.30/32":      {n4: {NextHop: n4}},
		"203.0.113.11/32":      {n4i: {NextHop: n4i, Communities: "65000:300", LocalPref: 250}},
		"203.0.113.12/32":      {n4m: {NextHop: n4m}},
		"2001:db8:100::/120":   {},
		"2001:db8:100::10/128": {n6: {NextHop: n6, Communities: "65000:600", Large: "64600:6:6", Ext: "LB:64600:250000000"}},
	})
	after, err := f.connections()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := session(srv.Sessions(), "ibgp4-renamed"); !ok {
		t.Errorf("Sessions after the rename: %+v", srv.Sessions())
	}
	withdrawn := func(neighbor string) bool {
		b, err := os.ReadFile(spec.FRRLog)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, neighbor) && strings.Contains(line, "203.0.113.20/32") && strings.Contains(line, "withdrawn") {
				return true
			}
		}
		return false
	}
	testwait.For(t, "FRR logs the withdrawal of 203.0.113.20/32 from ebgp4", 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		return withdrawn(n4 + "("), "not in " + spec.FRRLog
	})
	if withdrawn(n4i + "(") {
		t.Errorf("203.0.113.20/32 was withdrawn from ibgp4 too (and re-announced)")
	}
	for _, n := range []string{n4, n4i, n6} {
		if before[n] == 0 || after[n] != before[n] {
			t.Errorf("neighbor %s: connections established %d before the second plan, %d after: the session reset", n, before[n], after[n])
		}
	}

	// A router ID change needs a restart: kept, reported, nothing reset.
	plan3 := plan2
	plan3.RouterID = netip.MustParseAddr("192.0.2.99")
	if err := srv.Apply(ctx, plan3); err != nil {
		t.Fatalf("Apply plan3: %v", err)
	}
	want := "router ID change from 192.0.2.10 to 192.0.2.99 takes effect when the speaker restarts"
	if ps := srv.Problems(); !slices.ContainsFunc(ps, func(p routes.Problem) bool { return p.Message == want }) {
		t.Errorf("Problems = %+v, want one saying %q", ps, want)
	}

	// ResetPeer resets that session only.
	if err := srv.ResetPeer("ebgp6", "BFD down"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "ebgp6 re-established after ResetPeer", 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		c, err := f.connections()
		if err != nil {
			return false, err.Error()
		}
		s, _ := session(srv.Sessions(), "ebgp6")
		return c[n6] > after[n6] && s.State == StateEstablished, fmt.Sprintf("connections %d, state %s", c[n6], s.State)
	})

	// Close: the graceful-restart session (ibgp4) ends without NOTIFICATION or withdrawal,
	// so the router keeps its routes as stale; the others are withdrawn at once.
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	f.expectRoutes("after Close: graceful-restart routes stale, the others gone", map[string]map[string]seen{
		"203.0.113.10/32":      {},
		"203.0.113.30/32":      {},
		"203.0.113.12/32":      {},
		"2001:db8:100::10/128": {},
		"203.0.113.20/32":      {n4i: {NextHop: n4i, Communities: "65000:2", LocalPref: 150, Stale: true}},
		"203.0.113.11/32":      {n4i: {NextHop: n4i, Communities: "65000:300", LocalPref: 250, Stale: true}},
	})
	if err := srv.Apply(ctx, plan2); err == nil {
		t.Errorf("Apply after Close succeeded")
	}
}
