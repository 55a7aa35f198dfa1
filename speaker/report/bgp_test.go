package report

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

var (
	bgpT0  = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	router = netip.MustParseAddr("192.0.2.254")
	self4  = netip.MustParseAddr("192.0.2.11")
)

// apiRoundTrip returns the objects as a client reads them back from the API server: through
// JSON (times in whole seconds, in the local zone).
func apiRoundTrip(t *testing.T, sts ...*v1beta1.BGPSessionStatus) []v1beta1.BGPSessionStatus {
	t.Helper()
	out := make([]v1beta1.BGPSessionStatus, 0, len(sts))
	for _, st := range sts {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back v1beta1.BGPSessionStatus
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		out = append(out, back)
	}
	return out
}

func established(peer string, addr netip.Addr) BGPSession {
	return BGPSession{Peer: peer, Address: addr, State: v1beta1.BGPStateEstablished,
		EstablishedSince: bgpT0.Add(123456789 * time.Nanosecond), NegotiatedHold: 9 * time.Second, NegotiatedKeepalive: 3 * time.Second,
		BFDProfile: "fast", BFDState: v1beta1.BFDStateUp,
		Advertised: []AdvertisedPath{
			{Prefix: netip.MustParsePrefix("203.0.113.10/32"), NextHop: self4, Communities: []uint32{64500<<16 | 100, 0xffffff01, 64500<<16 | 100},
				LargeCommunities: [][3]uint32{{64512, 1, 2}}, LocalPref: 200, HasLocalPref: true, LinkBandwidth: 2.5},
			{Prefix: netip.MustParsePrefix("203.0.113.0/25"), NextHop: self4},
		}}
}

// steady runs BGPStatuses and publishes what it decides, as the agent would, returning the
// objects as read back.
func steady(t *testing.T, now time.Time, sessions []BGPSession, existing []v1beta1.BGPSessionStatus) []v1beta1.BGPSessionStatus {
	t.Helper()
	p := BGPStatuses(now, "n1", "uid-n1", sessions, existing)
	byName := map[string]*v1beta1.BGPSessionStatus{}
	for i := range existing {
		byName[existing[i].Name] = &existing[i]
	}
	for _, st := range p.Create {
		byName[st.Name] = st
	}
	for _, u := range p.Update {
		byName[u.New.Name] = u.New
	}
	for _, st := range p.Delete {
		delete(byName, st.Name)
	}
	var all []*v1beta1.BGPSessionStatus
	for _, st := range byName {
		all = append(all, st)
	}
	return apiRoundTrip(t, all...)
}

func TestBGPStatusesRender(t *testing.T) {
	p := BGPStatuses(bgpT0, "n1", "uid-n1", []BGPSession{established("router", router)}, nil)
	if len(p.Create) != 1 || len(p.Update)+len(p.Delete) != 0 {
		t.Fatalf("plan %+v", p)
	}
	got := p.Create[0]
	lp, bw := int64(200), int64(3) // 2.5 rounds away from zero
	since := metav1.NewTime(bgpT0)
	want := &v1beta1.BGPSessionStatus{
		ObjectMeta: metav1.ObjectMeta{Name: "n1.router",
			Labels:          map[string]string{v1beta1.LabelStatusNode: "n1", v1beta1.LabelStatusPeer: "router"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: "uid-n1"}}},
		Status: v1beta1.BGPSessionStatusStatus{
			Node: "n1", Peer: "router", PeerAddress: "192.0.2.254", SessionState: v1beta1.BGPStateEstablished,
			EstablishedSince: &since, NegotiatedHoldTime: &metav1.Duration{Duration: 9 * time.Second}, NegotiatedKeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
			BFDState: v1beta1.BFDStateUp, BFDProfile: "fast", AdvertisedCount: 2,
			Advertised: []v1beta1.AdvertisedPath{
				{Prefix: "203.0.113.0/25", NextHop: "192.0.2.11"},
				{Prefix: "203.0.113.10/32", NextHop: "192.0.2.11", Communities: []string{"64500:100", "65535:65281"},
					LargeCommunities: []string{"64512:1:2"}, LocalPref: &lp, LinkBandwidth: &bw},
			},
			Conditions: []metav1.Condition{{Type: v1beta1.ConditionConfigured, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonConfigured,
				Message: "the session is set up as its BGPPeer says", LastTransitionTime: metav1.NewTime(bgpT0)}},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("created object (-want +got):\n%s", d)
	}
}

func TestBGPStatusesDiff(t *testing.T) {
	later := bgpT0.Add(time.Minute)
	idle := BGPSession{Peer: "router", Address: router, State: v1beta1.BGPStateActive, LastError: "dial tcp 192.0.2.254:179: connection refused",
		BFDProfile: "fast", BFDState: v1beta1.BFDStateDown, BFDLastDownDiag: "ControlDetectionTimeExpired", BFDLastDown: bgpT0.Add(500 * time.Millisecond)}
	type counts struct{ Create, Update, Delete []string }
	tests := []struct {
		name string
		// before is published (as the agent would) first; then sessions are diffed at later.
		before, sessions []BGPSession
		// others are more existing objects, of other nodes.
		others []v1beta1.BGPSessionStatus
		want   counts
		check  func(t *testing.T, p BGPStatusPlan)
	}{
		{name: "nothing to do", want: counts{}},
		{name: "a steady session writes nothing, sub-second times included",
			before: []BGPSession{established("router", router), {Peer: "other", Address: netip.MustParseAddr("2001:db8::1"), State: v1beta1.BGPStateIdle}},
			// the same, with the peers in another order
			sessions: []BGPSession{{Peer: "other", Address: netip.MustParseAddr("2001:db8::1"), State: v1beta1.BGPStateIdle}, established("router", router)},
		},
		{name: "a peer listed twice: the first one counts",
			before:   []BGPSession{established("router", router)},
			sessions: []BGPSession{established("router", router), idle},
		},
		{name: "a new peer is created, a gone one deleted",
			before:   []BGPSession{established("router", router)},
			sessions: []BGPSession{established("router2", netip.MustParseAddr("192.0.2.253"))},
			want:     counts{Create: []string{"n1.router2"}, Delete: []string{"n1.router"}},
		},
		{name: "other nodes' objects are not touched",
			others: []v1beta1.BGPSessionStatus{{ObjectMeta: metav1.ObjectMeta{Name: "n2.router", Labels: map[string]string{v1beta1.LabelStatusNode: "n2"}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "n10.router", Labels: map[string]string{v1beta1.LabelStatusNode: "n10"}}}},
			sessions: []BGPSession{established("router", router)},
			want:     counts{Create: []string{"n1.router"}},
		},
		{name: "session drops: state, error and BFD change; timers and since go; Configured keeps its time",
			before:   []BGPSession{established("router", router)},
			sessions: []BGPSession{idle},
			want:     counts{Update: []string{"n1.router"}},
			check: func(t *testing.T, p BGPStatusPlan) {
				st := p.Update[0].New.Status
				if st.SessionState != v1beta1.BGPStateActive || st.EstablishedSince != nil || st.NegotiatedHoldTime != nil || st.NegotiatedKeepaliveTime != nil ||
					st.LastError != idle.LastError || st.BFDState != v1beta1.BFDStateDown || st.BFDLastDownDiagnostic != "ControlDetectionTimeExpired" ||
					st.BFDLastDownTime == nil || !st.BFDLastDownTime.Equal(&metav1.Time{Time: bgpT0}) || st.AdvertisedCount != 0 || st.Advertised != nil {
					t.Errorf("status %+v", st)
				}
				if c := meta.FindStatusCondition(st.Conditions, v1beta1.ConditionConfigured); c == nil || !c.LastTransitionTime.Time.Equal(bgpT0) {
					t.Errorf("Configured %+v, want its first transition time kept", c)
				}
			},
		},
		{name: "a problem turns Configured False at now, with the messages sorted and deduplicated",
			before: []BGPSession{established("router", router)},
			sessions: []BGPSession{func() BGPSession {
				s := established("router", router)
				s.Problems = []string{`Secret loadstone-system/bgp has no key "password"`, `BFDProfile "fast" does not exist`, `BFDProfile "fast" does not exist`}
				return s
			}()},
			want: counts{Update: []string{"n1.router"}},
			check: func(t *testing.T, p BGPStatusPlan) {
				c := meta.FindStatusCondition(p.Update[0].New.Status.Conditions, v1beta1.ConditionConfigured)
				want := `BFDProfile "fast" does not exist; Secret loadstone-system/bgp has no key "password"`
				if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1beta1.ReasonConfigurationProblem || c.Message != want || !c.LastTransitionTime.Time.Equal(later) {
					t.Errorf("Configured %+v", c)
				}
			},
		},
		{name: "a changed attribute of one path is an update",
			before: []BGPSession{established("router", router)},
			sessions: []BGPSession{func() BGPSession {
				s := established("router", router)
				s.Advertised[0].LinkBandwidth = 4
				return s
			}()},
			want: counts{Update: []string{"n1.router"}},
		},
		{name: "a re-established session reports its new since",
			before: []BGPSession{established("router", router)},
			sessions: []BGPSession{func() BGPSession {
				s := established("router", router)
				s.EstablishedSince = later
				return s
			}()},
			want: counts{Update: []string{"n1.router"}},
			check: func(t *testing.T, p BGPStatusPlan) {
				if !p.Update[0].New.Status.EstablishedSince.Time.Equal(later) {
					t.Errorf("since %v", p.Update[0].New.Status.EstablishedSince)
				}
			},
		},
	}
	names := func(sts []*v1beta1.BGPSessionStatus) []string {
		out := []string{}
		for _, st := range sts {
			out = append(out, st.Name)
		}
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			existing := append(steady(t, bgpT0, tc.before, nil), tc.others...)
			p := BGPStatuses(later, "n1", "uid-n1", tc.sessions, existing)
			got := counts{Create: names(p.Create), Delete: names(p.Delete), Update: []string{}}
			for _, u := range p.Update {
				got.Update = append(got.Update, u.New.Name)
				if u.Old.Name != u.New.Name {
					t.Errorf("update of %s to %s", u.Old.Name, u.New.Name)
				}
			}
			want := tc.want
			for _, l := range []*[]string{&want.Create, &want.Update, &want.Delete} {
				if *l == nil {
					*l = []string{}
				}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
			// Whatever was decided, publishing it makes the next diff empty.
			if p2 := BGPStatuses(later, "n1", "uid-n1", tc.sessions, append(steady(t, later, tc.sessions, existing), tc.others...)); !p2.Empty() {
				t.Errorf("after publishing, a second diff is not empty: %+v", p2)
			}
		})
	}
}

func TestBGPStatusesBounds(t *testing.T) {
	s := BGPSession{Peer: "router", Address: router, State: v1beta1.BGPStateEstablished, LastError: strings.Repeat("é", 2000)}
	for i := range 3000 {
		// Built in reverse order, with many communities each.
		p := AdvertisedPath{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24).Masked()}
		if i%2 == 0 {
			p.Prefix = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48)
		}
		for c := range 100 {
			p.Communities = append(p.Communities, uint32(100-c))
			p.LargeCommunities = append(p.LargeCommunities, [3]uint32{1, 2, uint32(100 - c)})
		}
		s.Advertised = append([]AdvertisedPath{p}, s.Advertised...)
	}
	st := BGPStatuses(bgpT0, "n1", "uid", []BGPSession{s}, nil).Create[0].Status
	if st.AdvertisedCount != 3000 || len(st.Advertised) != v1beta1.MaxAdvertisedPaths {
		t.Errorf("count %d, listed %d; want 3000 and %d", st.AdvertisedCount, len(st.Advertised), v1beta1.MaxAdvertisedPaths)
	}
	if st.Advertised[0].Prefix != "10.0.1.0/24" || st.Advertised[len(st.Advertised)-1].Prefix != "10.7.255.0/24" {
		t.Errorf("listed %s .. %s, want the lowest prefixes in order", st.Advertised[0].Prefix, st.Advertised[len(st.Advertised)-1].Prefix)
	}
	for _, p := range st.Advertised {
		if len(p.Communities) != 64 || p.Communities[0] != "0:1" || len(p.LargeCommunities) != 64 || p.LargeCommunities[0] != "1:2:1" {
			t.Fatalf("path %s: %d communities from %s, %d large from %s", p.Prefix, len(p.Communities), p.Communities[0], len(p.LargeCommunities), p.LargeCommunities[0])
		}
	}
	if n := utf8.RuneCountInString(st.LastError); n != 1024 || !utf8.ValidString(st.LastError) || !strings.HasSuffix(st.LastError, "...") {
		t.Errorf("lastError: %d characters, valid UTF-8 %v", n, utf8.ValidString(st.LastError))
	}
}

func TestBGPSessionNames(t *testing.T) {
	long := func(prefix string, n int) string { return prefix + strings.Repeat("x", n-len(prefix)) }
	pairs := [][2]string{
		{"n1", "router"},
		{"a.b", "c"}, {"a", "b.c"}, // no two pairs share a name
		{"ip-10-0-0-1.ec2.internal", "tor-1.rack-7"},
		{long("node-", 200), long("peer-", 200)},
		{long("node-", 200), long("peer-", 199)},
		{strings.Repeat("n", 241) + "-" + strings.Repeat("x", 10), "p"}, // the name is cut at a dash
		{strings.Repeat("n", 51) + "-" + strings.Repeat("x", 20), "p"},  // the label value is cut at a dash
		{long("n.", 250), long("peer.", 253)},
		{long("node-", 253), long("p", 253)},
	}
	seen := map[string][2]string{}
	for _, pr := range pairs {
		name := BGPSessionName(pr[0], pr[1])
		if errs := validation.IsDNS1123Subdomain(name); len(errs) != 0 {
			t.Errorf("%q for %q: %v", name, pr, errs)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("%q for both %q and %q", name, pr, other)
		}
		seen[name] = pr
		if BGPSessionName(pr[0], pr[1]) != name {
			t.Errorf("%q: not deterministic", pr)
		}
		for _, n := range pr {
			v := LabelValue(n)
			if errs := validation.IsValidLabelValue(v); len(errs) != 0 {
				t.Errorf("label value %q for %q: %v", v, n, errs)
			}
			if len(n) <= 63 && v != n {
				t.Errorf("label value %q for %q, want the name itself", v, n)
			}
		}
	}
	if got := BGPSessionName("n1", "router"); got != "n1.router" {
		t.Errorf("plain name %q", got)
	}
	if a, b := LabelValue(long("n", 100)), LabelValue(long("n", 101)); a == b {
		t.Errorf("long names share label value %q", a)
	}
	if got := BGPSessionName("ip-10-0-0-1.ec2.internal", "tor"); !strings.HasPrefix(got, "ip-10-0-0-1.ec2.internal.tor-") {
		t.Errorf("dotted node name %q, want the readable start kept", got)
	}
}

func ExampleBGPSessionName() {
	fmt.Println(BGPSessionName("worker-1", "tor-a"))
	fmt.Println(len(BGPSessionName("worker-1.example.net", "tor-a")) == len("worker-1.example.net.tor-a-")+10)
	// Output:
	// worker-1.tor-a
	// true
}
