package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"

	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// These tests run a real gobgp server in the test process, without sessions (gobgp never
// listens and the peers' addresses are never reached in time), and read gobgp's own
// state back: the RIB, the policies, the defined sets, the neighbors.

// gobgpState is what an Apply leaves in gobgp, in comparable form.
type gobgpState struct {
	RIB      []string          // global RIB prefixes
	Export   []string          // global export assignment, in order
	Default  string            // its default action
	Policies []string          // every policy
	Sets     []string          // every defined set, "type/name"
	Peers    map[string]string // address → "localASN peerASN password"
}

func readState(t *testing.T, s *Server) gobgpState {
	t.Helper()
	ctx := context.Background()
	var st gobgpState
	for _, fam := range []family{ipv4, ipv6} {
		if err := s.bgp.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam.api()}, func(d *api.Destination) {
			st.RIB = append(st.RIB, d.Prefix)
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(st.RIB)
	if err := s.bgp.ListPolicyAssignment(ctx, &api.ListPolicyAssignmentRequest{Name: globalTable, Direction: api.PolicyDirection_EXPORT}, func(a *api.PolicyAssignment) {
		st.Default = a.DefaultAction.String()
		for _, p := range a.Policies {
			st.Export = append(st.Export, p.Name)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.bgp.ListPolicy(ctx, &api.ListPolicyRequest{}, func(p *api.Policy) { st.Policies = append(st.Policies, p.Name) }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(st.Policies)
	for _, typ := range []api.DefinedType{api.DefinedType_PREFIX, api.DefinedType_NEIGHBOR} {
		if err := s.bgp.ListDefinedSet(ctx, &api.ListDefinedSetRequest{DefinedType: typ}, func(d *api.DefinedSet) {
			st.Sets = append(st.Sets, typ.String()+"/"+d.Name)
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(st.Sets)
	st.Peers = map[string]string{}
	if err := s.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		st.Peers[p.Conf.NeighborAddress] = strings.Join([]string{
			itoa(p.Conf.LocalAsn), itoa(p.Conf.PeerAsn), p.Conf.AuthPassword,
		}, " ")
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func newTestServer(t *testing.T) *Server {
	t.Helper()
	s := New(Config{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// unreachable peers: TEST-NET addresses nothing in this process's netns answers on
// quickly enough to matter; the sessions stay down, which these tests do not look at.
var (
	peerA = routes.Peer{Name: "a", Address: netip.MustParseAddr("198.51.100.1"), MyASN: 64600, PeerASN: 64500, ConnectTime: time.Hour}
	peerB = routes.Peer{Name: "b", Address: netip.MustParseAddr("198.51.100.2"), MyASN: 64600, PeerASN: 64501, ConnectTime: time.Hour, Password: "x"}
	peer6 = routes.Peer{Name: "c", Address: netip.MustParseAddr("2001:db8:2::1"), MyASN: 64600, PeerASN: 64500, ConnectTime: time.Hour}
)

func TestApplyIncremental(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an embedded gobgp server")
	}
	s := newTestServer(t)
	ctx := context.Background()
	plan := routes.Plan{
		RouterID: netip.MustParseAddr("192.0.2.10"),
		Peers:    []routes.Peer{peerA, peerB, peer6},
		Paths: map[string][]routes.Path{
			"a": {{Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("203.0.113.2/32"), Communities: []uint32{1}}},
			"b": {{Prefix: pfx("203.0.113.2/32")}},
			"c": {{Prefix: pfx("2001:db8:100::1/128")}, {Prefix: pfx("203.0.113.9/32")}}, // wrong family: dropped
		},
	}
	if err := s.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	want := gobgpState{
		RIB:      []string{"2001:db8:100::1/128", "203.0.113.1/32", "203.0.113.2/32"},
		Export:   []string{"loadstone-export-1", "loadstone-export-2", "loadstone-export-3"},
		Default:  "REJECT",
		Policies: []string{"loadstone-export-1", "loadstone-export-2", "loadstone-export-3", "loadstone-import"},
		Sets: []string{
			"NEIGHBOR/loadstone-export-1-nb", "NEIGHBOR/loadstone-export-2-nb", "NEIGHBOR/loadstone-export-3-nb",
			"PREFIX/loadstone-export-1-p0", "PREFIX/loadstone-export-1-p1", "PREFIX/loadstone-export-2-p0", "PREFIX/loadstone-export-3-p0",
		},
		Peers: map[string]string{"198.51.100.1": "64600 64500 ", "198.51.100.2": "64600 64501 x", "2001:db8:2::1": "64600 64500 "},
	}
	if d := cmp.Diff(want, readState(t, s)); d != "" {
		t.Fatalf("after the first Apply (-want +got):\n%s", d)
	}

	// The same plan again changes nothing (no new policy generation).
	if err := s.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, readState(t, s)); d != "" {
		t.Fatalf("after the same plan again (-want +got):\n%s", d)
	}

	// b's attributes change (only b's policy is rebuilt, its old objects deleted);
	// c leaves (its neighbor, policy and path go); a keeps everything.
	plan.Peers = []routes.Peer{peerA, peerB}
	plan.Paths = map[string][]routes.Path{
		"a": plan.Paths["a"],
		"b": {{Prefix: pfx("203.0.113.2/32"), Communities: []uint32{2}}},
	}
	if err := s.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	want = gobgpState{
		RIB:      []string{"203.0.113.1/32", "203.0.113.2/32"},
		Export:   []string{"loadstone-export-1", "loadstone-export-4"},
		Default:  "REJECT",
		Policies: []string{"loadstone-export-1", "loadstone-export-4", "loadstone-import"},
		Sets: []string{
			"NEIGHBOR/loadstone-export-1-nb", "NEIGHBOR/loadstone-export-4-nb",
			"PREFIX/loadstone-export-1-p0", "PREFIX/loadstone-export-1-p1", "PREFIX/loadstone-export-4-p0",
		},
		Peers: map[string]string{"198.51.100.1": "64600 64500 ", "198.51.100.2": "64600 64501 x"},
	}
	if d := cmp.Diff(want, readState(t, s)); d != "" {
		t.Fatalf("after the third Apply (-want +got):\n%s", d)
	}
	if got := s.Sessions(); len(got) != 2 || got[0].Peer != "a" || got[1].Peer != "b" || got[0].State == StateEstablished {
		t.Errorf("Sessions = %+v, want a and b, not Established", got)
	}

	// Everything goes.
	if err := s.Apply(ctx, routes.Plan{RouterID: plan.RouterID}); err != nil {
		t.Fatal(err)
	}
	want = gobgpState{Default: "REJECT", Policies: []string{"loadstone-import"}, Peers: map[string]string{}}
	if d := cmp.Diff(want, readState(t, s)); d != "" {
		t.Fatalf("after the empty plan (-want +got):\n%s", d)
	}
}

// TestApplyRepairsAfterError makes an Apply fail halfway (a neighbor the plan adds is
// already in gobgp, so AddPeer fails after the policies changed) and checks that the next
// Apply converges and leaves no stale policy objects.
func TestApplyRepairsAfterError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an embedded gobgp server")
	}
	s := newTestServer(t)
	ctx := context.Background()
	plan := routes.Plan{
		RouterID: netip.MustParseAddr("192.0.2.10"),
		Peers:    []routes.Peer{peerA, peerB},
		Paths: map[string][]routes.Path{
			"a": {{Prefix: pfx("203.0.113.1/32")}},
			"b": {{Prefix: pfx("203.0.113.2/32")}},
		},
	}
	if err := s.Apply(ctx, routes.Plan{RouterID: plan.RouterID}); err != nil {
		t.Fatal(err)
	}
	if err := s.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(peerB)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, plan); err == nil {
		t.Fatal("Apply succeeded although gobgp already had neighbor b")
	}
	if err := s.bgp.DeletePeer(ctx, &api.DeletePeerRequest{Address: peerKey(peerB)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, plan); err != nil {
		t.Fatalf("Apply after the obstacle went: %v", err)
	}
	want := gobgpState{
		RIB:      []string{"203.0.113.1/32", "203.0.113.2/32"},
		Export:   []string{"loadstone-export-3", "loadstone-export-4"},
		Default:  "REJECT",
		Policies: []string{"loadstone-export-3", "loadstone-export-4", "loadstone-import"},
		Sets: []string{"NEIGHBOR/loadstone-export-3-nb", "NEIGHBOR/loadstone-export-4-nb",
			"PREFIX/loadstone-export-3-p0", "PREFIX/loadstone-export-4-p0"},
		Peers: map[string]string{"198.51.100.1": "64600 64500 ", "198.51.100.2": "64600 64501 x"},
	}
	if d := cmp.Diff(want, readState(t, s)); d != "" {
		t.Fatalf("after the repair (-want +got):\n%s", d)
	}
	if err := s.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, readState(t, s)); d != "" {
		t.Fatalf("after the same plan again (-want +got):\n%s", d)
	}
}

func TestRouterIDChangeIsAProblem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an embedded gobgp server")
	}
	s := newTestServer(t)
	ctx := context.Background()
	if err := s.Apply(ctx, routes.Plan{}); err != nil {
		t.Fatal(err)
	}
	if ps := s.Problems(); len(ps) != 1 || ps[0].Reason != "NoRouterID" {
		t.Errorf("without a router ID: Problems = %+v", ps)
	}
	if err := s.Apply(ctx, routes.Plan{RouterID: netip.MustParseAddr("192.0.2.10")}); err != nil {
		t.Fatal(err)
	}
	if ps := s.Problems(); len(ps) != 0 {
		t.Errorf("started: Problems = %+v", ps)
	}
	if err := s.Apply(ctx, routes.Plan{RouterID: netip.MustParseAddr("192.0.2.11")}); err != nil {
		t.Fatal(err)
	}
	want := []routes.Problem{{Kind: "Speaker", Name: "bgp", Reason: "RouterIDChangePending",
		Message: "router ID change from 192.0.2.10 to 192.0.2.11 takes effect when the speaker restarts"}}
	if d := cmp.Diff(want, s.Problems()); d != "" {
		t.Errorf("Problems (-want +got):\n%s", d)
	}
	r, err := s.bgp.GetBgp(ctx, &api.GetBgpRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Global.RouterId != "192.0.2.10" {
		t.Errorf("gobgp's router ID = %s, want the first one kept", r.Global.RouterId)
	}
}
