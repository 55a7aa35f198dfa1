package agent

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/bfd"
	"github.com/loadstone-lb/loadstone/speaker/bgp"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// recordingBGP is the BGP server's side the announcer uses: it keeps the plans applied
// and the resets, and reports one Established session per planned peer.
type recordingBGP struct {
	plans    []routes.Plan
	resets   []string
	problems []routes.Problem
}

func (r *recordingBGP) Apply(_ context.Context, p routes.Plan) error {
	r.plans = append(r.plans, p)
	return nil
}

func (r *recordingBGP) Sessions() []bgp.Session {
	var out []bgp.Session
	p := r.plans[len(r.plans)-1]
	for _, peer := range p.Peers {
		s := bgp.Session{Peer: peer.Name, Address: peer.Address, State: bgp.StateEstablished}
		for _, path := range p.Paths[peer.Name] {
			s.Advertised = append(s.Advertised, bgp.Advertised{Path: path})
		}
		out = append(out, s)
	}
	return out
}

func (r *recordingBGP) Problems() []routes.Problem { return r.problems }

func (r *recordingBGP) ResetPeer(name, _ string) error {
	r.resets = append(r.resets, name)
	return nil
}

// settableBFD keeps the configs Set asks for and reports each in the state the test sets.
type settableBFD struct {
	cfgs  []bfd.SessionConfig
	state bfd.State
}

func (f *settableBFD) Set(c []bfd.SessionConfig) error { f.cfgs = c; return nil }

func (f *settableBFD) Sessions() []bfd.Status {
	var out []bfd.Status
	for _, c := range f.cfgs {
		out = append(out, bfd.Status{Peer: c.Peer, State: f.state})
	}
	return out
}

// The BGP announcer: the plan's BFD sessions go to the BFD manager with the profile's
// timers; strict mode follows the BFD state the manager reports (no paths until Up); the
// report carries each session with its BFD state and the server's problems; a BFD session
// going Down from Up resets its BGP session, and only that transition does.
func TestBGPAnnouncer(t *testing.T) {
	router := netip.MustParseAddr("192.0.2.1")
	c := observetest.New().
		Service("default", "web", "n1", observetest.IP4).Mode("default", "web", "off"). // not gated on a dataplane
		Address("n1", netip.MustParseAddr("192.0.2.11")).
		BFDProfile("fast", v1beta1.BFDProfileSpec{ReceiveInterval: ptr.To[int32](100), TransmitInterval: ptr.To[int32](200), DetectMultiplier: ptr.To[int32](3)}).
		Peer("tor", v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: router.String(), BFDProfile: "fast", StrictBFD: true}).
		BGPAdvertisement("all", v1beta1.BGPAdvertisementSpec{})
	alive := map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true}
	srv := &recordingBGP{problems: []routes.Problem{{Kind: routes.KindBGPPeer, Name: "tor", Reason: "RouterIDChangePending", Message: "later"}}}
	fb := &settableBFD{state: bfd.StateDown}
	an := &BGP{Server: srv, BFD: fb}
	apply := func() Report {
		t.Helper()
		r := an.Apply(context.Background(), Decision{Snapshot: c.Snapshot("n1", observetest.View{Alive: []string{"n1", "n2", "n3", "n4"}}), Alive: alive})
		if len(r.Errors) > 0 {
			t.Fatalf("errors: %v", r.Errors)
		}
		return r
	}

	r := apply()
	want := []bfd.SessionConfig{{Peer: router, DesiredMinTx: 200 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3, MinimumTTL: 254}} // 254: the model's default
	if d := cmp.Diff(want, fb.cfgs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("BFD sessions (-want +got):\n%s", d)
	}
	if n := len(srv.plans[0].Paths["tor"]); n != 0 {
		t.Errorf("strict peer with BFD down got %d paths, want none", n)
	}
	s := r.BGP.Sessions
	if len(s) != 1 || s[0].BFDState != v1beta1.BFDStateDown || s[0].BFDProfile != "fast" || s[0].State != v1beta1.BGPStateEstablished {
		t.Fatalf("sessions %+v", s)
	}
	if !slices.Contains(s[0].Problems, "later") || !slices.ContainsFunc(r.BGP.Problems, func(p routes.Problem) bool { return p.Reason == "RouterIDChangePending" }) {
		t.Errorf("the server's problem is missing from the report: %+v / %+v", s[0].Problems, r.BGP.Problems)
	}

	fb.state = bfd.StateUp
	apply()
	if got := srv.plans[1].Paths["tor"]; len(got) != 1 || got[0].Prefix != netip.PrefixFrom(observetest.IP4, 32) {
		t.Errorf("strict peer with BFD up: paths %+v, want the Service's /32", got)
	}

	triggers := 0
	trigger := func() { triggers++ }
	an.OnBFDChange(bfd.Change{Peer: router, Old: bfd.StateInit, New: bfd.StateDown}, trigger)
	if len(srv.resets) != 0 {
		t.Errorf("Init → Down reset the BGP session: %v", srv.resets)
	}
	an.OnBFDChange(bfd.Change{Peer: router, Old: bfd.StateUp, New: bfd.StateDown, Diag: bfd.DiagControlDetectionExpired}, trigger)
	if !slices.Equal(srv.resets, []string{"tor"}) {
		t.Errorf("Up → Down resets %v, want [tor]", srv.resets)
	}
	if triggers != 2 {
		t.Errorf("%d syncs asked for, want one per change", triggers)
	}
}
