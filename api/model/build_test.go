package model

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

var (
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cmpOpts = cmp.Options{addrCmp, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b labels.Selector) bool { return a.String() == b.String() })}
)

// meta gives an object a name and a creation time `age` minutes after t0 (a larger age is
// a newer object).
func meta(name string, age int, kv ...string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Minute))}
	if len(kv) > 0 {
		m.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m.Labels[kv[i]] = kv[i+1]
		}
	}
	return m
}

func pool(name string, age int, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: meta(name, age), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func peer(name string, age int, addr string, mut ...func(*v1beta1.BGPPeerSpec)) v1beta1.BGPPeer {
	p := v1beta1.BGPPeer{ObjectMeta: meta(name, age), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: addr}}
	for _, m := range mut {
		m(&p.Spec)
	}
	return p
}

func l2(name string, pools ...string) v1beta1.L2Advertisement {
	return v1beta1.L2Advertisement{ObjectMeta: meta(name, 0), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
}

func bgpAdv(name string, mut func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
	a := v1beta1.BGPAdvertisement{ObjectMeta: meta(name, 0)}
	if mut != nil {
		mut(&a.Spec)
	}
	return a
}

func ptr[T any](v T) *T { return &v }

func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}

func sel(t *testing.T, s string) labels.Selector {
	t.Helper()
	l, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// inForce lists the names of the objects of each kind in cfg.
func inForce(cfg *Config) map[string][]string {
	out := map[string][]string{}
	add := func(kind string, names []string) {
		if len(names) > 0 {
			out[kind] = names
		}
	}
	add(KindIPAddressPool, slices.Sorted(maps.Keys(cfg.Pools)))
	add(KindL2Advertisement, slices.Sorted(maps.Keys(cfg.L2Advertisements)))
	add(KindBGPPeer, slices.Sorted(maps.Keys(cfg.BGPPeers)))
	add(KindBGPAdvertisement, slices.Sorted(maps.Keys(cfg.BGPAdvertisements)))
	add(KindBFDProfile, slices.Sorted(maps.Keys(cfg.BFDProfiles)))
	add(KindCommunity, slices.Sorted(maps.Keys(cfg.Communities)))
	return out
}

func TestBuildFullConfig(t *testing.T) {
	public := pool("public", 0, "203.0.113.0/25", "2001:db8:100::/64")
	public.Labels = map[string]string{"announce": "bgp"}
	public.Spec.AvoidBuggyIPs = true
	team := pool("team", 1, "203.0.113.200-203.0.113.250")
	team.Spec.AutoAssign = ptr(false)
	team.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 10, Namespaces: []string{"payments"},
		ServiceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"api"}}}}}}
	router := peer("router", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) {
		s.HoldTime, s.BFDProfile = dur("9s"), "fast"
		s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "bgp", Namespace: "loadstone-system"}
	})
	snap := Snapshot{
		Pools:            []v1beta1.IPAddressPool{team, public},
		L2Advertisements: []v1beta1.L2Advertisement{l2("all"), l2("lan", "public")},
		BGPPeers:         []v1beta1.BGPPeer{router},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("to-router", func(s *v1beta1.BGPAdvertisementSpec) {
			s.IPAddressPoolSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"announce": "bgp"}}}
			s.Peers = []string{"router"}
			s.Communities = []string{"64500:100", "no-export", "large:64512:1:2"}
			s.AggregationLength, s.LocalPref = ptr[int32](25), ptr[int64](100)
		})},
		BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: meta("fast", 0), Spec: v1beta1.BFDProfileSpec{ReceiveInterval: ptr[int32](100), TransmitInterval: ptr[int32](100)}}},
		Communities: []v1beta1.Community{{ObjectMeta: meta("wk", 0), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "no-export", Value: "65535:65281"}}}}},
	}
	cfg, problems := Build(snap)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	want := &Config{
		Pools: map[string]*Pool{
			"public": {Name: "public", AutoAssign: true, AvoidBuggyIPs: true, Ranges: []Range{
				rng("203.0.113.0", "203.0.113.127"), rng("2001:db8:100::", "2001:db8:100::ffff:ffff:ffff:ffff")},
				CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/25"), netip.MustParsePrefix("2001:db8:100::/64")}},
			"team": {Name: "team", Ranges: []Range{rng("203.0.113.200", "203.0.113.250")},
				Allocation: &ServiceAllocation{Priority: 10, Namespaces: []string{"payments"}, ServiceSelectors: []labels.Selector{sel(t, "tier in (api)")}}},
		},
		L2Advertisements: map[string]*L2Advertisement{
			"all": {Name: "all", Pools: []string{"public", "team"}},
			"lan": {Name: "lan", Pools: []string{"public"}},
		},
		BGPPeers: map[string]*BGPPeer{"router": {Name: "router", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("192.0.2.1"), Port: 179,
			HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 10 * time.Second, BFDProfile: "fast",
			PasswordSecret: &SecretRef{Namespace: "loadstone-system", Name: "bgp", Key: "password"}}},
		BGPAdvertisements: map[string]*BGPAdvertisement{"to-router": {Name: "to-router", Pools: []string{"public"}, AggregationLength: 25, AggregationLengthV6: 128,
			LocalPref: 100, Peers: []string{"router"}, Communities: []CommunityValue{{Standard: 64500<<16 | 100}, {Standard: 0xffffff01}, {Large: true, LargeVal: [3]uint32{64512, 1, 2}}}}},
		BFDProfiles:     map[string]*BFDProfile{"fast": {Name: "fast", ReceiveInterval: 100 * time.Millisecond, TransmitInterval: 100 * time.Millisecond, DetectMultiplier: 3, MinimumTTL: 254}},
		Communities:     map[string]CommunityValue{"no-export": {Standard: 0xffffff01}},
		CommunityOwners: map[string]string{"no-export": "wk"},
	}
	if d := cmp.Diff(want, cfg, cmpOpts); d != "" {
		t.Errorf("Build (-want +got):\n%s", d)
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name string
		// prev, when set, is built first; its Config is the Previous of snap.
		prev *Snapshot
		snap Snapshot
		want []Problem
		// inForce is the names of the objects in the Config, per kind.
		inForce map[string][]string
		check   func(t *testing.T, cfg *Config)
	}{
		{
			name:    "empty",
			inForce: map[string][]string{},
		},
		{
			name: "overlapping pools: the newer one is broken",
			snap: Snapshot{Pools: []v1beta1.IPAddressPool{pool("b-newer", 2, "203.0.113.128/25"), pool("a-older", 1, "203.0.113.0/24")}},
			want: []Problem{{Kind: KindIPAddressPool, Name: "b-newer", Field: "spec.addresses",
				Message: `203.0.113.128/25 overlaps 203.0.113.0/24 of IPAddressPool "a-older"; pools must not share addresses`}},
			inForce: map[string][]string{KindIPAddressPool: {"a-older"}},
		},
		{
			name: "overlapping pools of the same age: the name sorting first wins",
			snap: Snapshot{Pools: []v1beta1.IPAddressPool{pool("z", 1, "2001:db8:100::/64"), pool("a", 1, "2001:db8:100::5-2001:db8:100::6")}},
			want: []Problem{{Kind: KindIPAddressPool, Name: "z", Field: "spec.addresses",
				Message: `2001:db8:100::/64 overlaps 2001:db8:100::5-2001:db8:100::6 of IPAddressPool "a"; pools must not share addresses`}},
			inForce: map[string][]string{KindIPAddressPool: {"a"}},
		},
		{
			name: "an older pool edited to overlap a working one is the broken one, and keeps its last good version",
			prev: &Snapshot{Pools: []v1beta1.IPAddressPool{pool("old", 1, "203.0.113.0/26"), pool("new", 2, "203.0.113.128/25")}},
			snap: Snapshot{Pools: []v1beta1.IPAddressPool{pool("old", 1, "203.0.113.0/24"), pool("new", 2, "203.0.113.128/25")}},
			want: []Problem{{Kind: KindIPAddressPool, Name: "old", Field: "spec.addresses",
				Message: `203.0.113.0/24 overlaps 203.0.113.128/25 of IPAddressPool "new"; pools must not share addresses`}},
			inForce: map[string][]string{KindIPAddressPool: {"new", "old"}},
			check: func(t *testing.T, cfg *Config) {
				if got := cfg.Pools["old"].Ranges; !slices.Equal(got, []Range{rng("203.0.113.0", "203.0.113.63")}) {
					t.Errorf("old pool in force: %v, want its last good 203.0.113.0/26", got)
				}
			},
		},
		{
			name: "a pool kept at its last good version is not pushed out by an older pool's edit",
			prev: &Snapshot{Pools: []v1beta1.IPAddressPool{pool("older", 1, "203.0.113.0/25"), pool("newer", 2, "203.0.113.128/25")}},
			snap: Snapshot{Pools: []v1beta1.IPAddressPool{pool("older", 1, "203.0.113.0/24"), pool("newer", 2, "203.0.113.128/33")}},
			want: []Problem{
				{Kind: KindIPAddressPool, Name: "newer", Field: "spec.addresses[0]", Message: `"203.0.113.128/33" is neither a CIDR such as 203.0.113.0/24 nor a range of two addresses such as 203.0.113.10-203.0.113.20`},
				{Kind: KindIPAddressPool, Name: "older", Field: "spec.addresses", Message: `203.0.113.0/24 overlaps 203.0.113.128/25 of IPAddressPool "newer"; pools must not share addresses`},
			},
			inForce: map[string][]string{KindIPAddressPool: {"newer", "older"}},
			check: func(t *testing.T, cfg *Config) {
				if got := cfg.Pools["newer"].Ranges; !slices.Equal(got, []Range{rng("203.0.113.128", "203.0.113.255")}) {
					t.Errorf("newer pool in force: %v, want its last good 203.0.113.128/25", got)
				}
				if got := cfg.Pools["older"].Ranges; !slices.Equal(got, []Range{rng("203.0.113.0", "203.0.113.127")}) {
					t.Errorf("older pool in force: %v, want its last good 203.0.113.0/25", got)
				}
			},
		},
		{
			name: "overlap inside one pool",
			snap: Snapshot{Pools: []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.0/24", "203.0.113.10-203.0.113.20")}},
			want: []Problem{{Kind: KindIPAddressPool, Name: "p", Field: "spec.addresses[1]",
				Message: `"203.0.113.10-203.0.113.20" overlaps "203.0.113.0/24" (spec.addresses[0]) of the same pool`}},
			inForce: map[string][]string{},
		},
		{
			name: "a typo keeps the last good pool in force",
			prev: &Snapshot{Pools: []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.0/24")}},
			snap: Snapshot{Pools: []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.0/42")}},
			want: []Problem{{Kind: KindIPAddressPool, Name: "p", Field: "spec.addresses[0]",
				Message: `"203.0.113.0/42" is neither a CIDR such as 203.0.113.0/24 nor a range of two addresses such as 203.0.113.10-203.0.113.20`}},
			inForce: map[string][]string{KindIPAddressPool: {"p"}},
			check: func(t *testing.T, cfg *Config) {
				if got := cfg.Pools["p"].Ranges; !slices.Equal(got, []Range{rng("203.0.113.0", "203.0.113.255")}) {
					t.Errorf("pool in force: %v", got)
				}
			},
		},
		{
			name:    "a deleted object is gone although it was in force",
			prev:    &Snapshot{Pools: []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.0/24")}},
			inForce: map[string][]string{},
		},
		{
			name: "unknown references",
			snap: Snapshot{
				Pools:            []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.0/24")},
				L2Advertisements: []v1beta1.L2Advertisement{l2("l2", "p", "nope")},
				BGPPeers:         []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" })},
				BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("adv", func(s *v1beta1.BGPAdvertisementSpec) {
					s.Peers = []string{"r", "r2"}
					s.Communities = []string{"blue"}
				})},
			},
			want: []Problem{
				{Kind: KindBGPAdvertisement, Name: "adv", Field: "spec.communities[0]", Message: `community alias "blue" is not defined by any valid Community`},
				{Kind: KindBGPAdvertisement, Name: "adv", Field: "spec.peers[0]", Message: `BGPPeer "r" is not valid (see its Valid condition), so this object cannot use it`},
				{Kind: KindBGPAdvertisement, Name: "adv", Field: "spec.peers[1]", Message: `BGPPeer "r2" does not exist`},
				{Kind: KindBGPPeer, Name: "r", Field: "spec.bfdProfile", Message: `BFDProfile "fast" does not exist`},
				{Kind: KindL2Advertisement, Name: "l2", Field: "spec.ipAddressPools[1]", Message: `IPAddressPool "nope" does not exist`},
			},
			inForce: map[string][]string{KindIPAddressPool: {"p"}},
		},
		{
			name: "an advertisement naming a broken pool is broken too",
			snap: Snapshot{
				Pools:            []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.5/24")},
				L2Advertisements: []v1beta1.L2Advertisement{l2("l2", "p")},
			},
			want: []Problem{
				{Kind: KindIPAddressPool, Name: "p", Field: "spec.addresses[0]", Message: `"203.0.113.5/24" has address bits set after the prefix length: use 203.0.113.0/24`},
				{Kind: KindL2Advertisement, Name: "l2", Field: "spec.ipAddressPools[0]", Message: `IPAddressPool "p" is not valid (see its Valid condition), so this object cannot use it`},
			},
			inForce: map[string][]string{},
		},
		{
			name: "duplicate peers: same address and port from every node",
			snap: Snapshot{BGPPeers: []v1beta1.BGPPeer{
				peer("b", 2, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.PeerASN = 64501 }),
				peer("a", 1, "192.0.2.1"),
				peer("other-port", 3, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.PeerPort = ptr[int32](1179) }),
			}},
			want: []Problem{{Kind: KindBGPPeer, Name: "b", Field: "spec.peerAddress",
				Message: `duplicates BGPPeer "a": same peerAddress 192.0.2.1 and peerPort 179 from the same nodes`}},
			inForce: map[string][]string{KindBGPPeer: {"a", "other-port"}},
		},
		{
			name: "peers to one router from different node sets are not duplicates; all nodes and some nodes are",
			snap: Snapshot{BGPPeers: []v1beta1.BGPPeer{
				peer("rack1", 1, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) {
					s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "1"}}}
				}),
				peer("rack2", 2, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) {
					s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "2"}}}
				}),
				peer("rack1-again", 3, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) {
					s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "1"}}}
				}),
				peer("everyone", 4, "192.0.2.1"),
			}},
			want: []Problem{
				{Kind: KindBGPPeer, Name: "everyone", Field: "spec.peerAddress", Message: `duplicates BGPPeer "rack1": same peerAddress 192.0.2.1 and peerPort 179 from the same nodes`},
				{Kind: KindBGPPeer, Name: "rack1-again", Field: "spec.peerAddress", Message: `duplicates BGPPeer "rack1": same peerAddress 192.0.2.1 and peerPort 179 from the same nodes`},
			},
			inForce: map[string][]string{KindBGPPeer: {"rack1", "rack2"}},
		},
		{
			name: "peer checks on one object",
			snap: Snapshot{BGPPeers: []v1beta1.BGPPeer{
				peer("p", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) {
					s.MyASN, s.PeerASN = 0, 0
					s.PeerPort = ptr[int32](70000)
					s.SourceAddress = "2001:db8:1::11"
					s.RouterID = "2001:db8::1"
					s.HoldTime, s.KeepaliveTime, s.ConnectTime = dur("2s"), dur("100s"), dur("1500ms")
					s.Password, s.PasswordSecret = "x", &v1beta1.SecretKeyReference{Name: "s", Namespace: "n"}
				}),
			}},
			want: []Problem{
				{Kind: KindBGPPeer, Name: "p", Field: "spec.myASN", Message: "myASN must be an AS number from 1 to 4294967295, not 0"},
				{Kind: KindBGPPeer, Name: "p", Field: "spec.peerASN", Message: "peerASN must be an AS number from 1 to 4294967295, not 0"},
				{Kind: KindBGPPeer, Name: "p", Field: "spec.peerPort", Message: "peerPort must be a TCP port from 1 to 65535, not 70000"},
				{Kind: KindBGPPeer, Name: "p", Field: "spec.sourceAddress", Message: "sourceAddress and peerAddress must be of the same family (both IPv4 or both IPv6)"},
				{Kind: KindBGPPeer, Name: "p", Field: "spec.routerID", Message: `routerID "2001:db8::1" is not an IPv4 address; a BGP identifier is 32 bits, written as IPv4`},
				{Kind: KindBGPPeer, Name: "p", Field: "spec.holdTime", Message: "holdTime must be 0s or between 3s and 65535s, not 2s"},
				{Kind: KindBGPPeer, Name: "p", Field: "spec.keepaliveTime", Message: "keepaliveTime must be above 0s and below holdTime (1m30s), or 0s when holdTime is 0s; it is 1m40s"},
				{Kind: KindBGPPeer, Name: "p", Field: "spec.connectTime", Message: "connectTime must be a whole number of seconds from 1s to 65535s, not 1.5s"},
				{Kind: KindBGPPeer, Name: "p", Field: "spec", Message: "set password or passwordSecret, not both"},
			},
			inForce: map[string][]string{},
		},
		{
			name: "peer timer defaults",
			snap: Snapshot{BGPPeers: []v1beta1.BGPPeer{
				peer("default", 0, "192.0.2.1"),
				peer("fast", 0, "192.0.2.2", func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur("10s") }),
				peer("none", 0, "192.0.2.3", func(s *v1beta1.BGPPeerSpec) { s.HoldTime, s.KeepaliveTime = dur("0s"), dur("0s") }),
			}},
			inForce: map[string][]string{KindBGPPeer: {"default", "fast", "none"}},
			check: func(t *testing.T, cfg *Config) {
				for name, want := range map[string][2]time.Duration{"default": {90 * time.Second, 30 * time.Second}, "fast": {10 * time.Second, 3 * time.Second}, "none": {0, 0}} {
					p := cfg.BGPPeers[name]
					if p.HoldTime != want[0] || p.KeepaliveTime != want[1] {
						t.Errorf("%s: hold %s keepalive %s, want %s %s", name, p.HoldTime, p.KeepaliveTime, want[0], want[1])
					}
				}
			},
		},
		{
			name: "a broken peer keeps its last good version, without a BFD profile that is gone",
			prev: &Snapshot{
				BGPPeers:    []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" })},
				BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: meta("fast", 0)}},
			},
			snap:    Snapshot{BGPPeers: []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" })}},
			want:    []Problem{{Kind: KindBGPPeer, Name: "r", Field: "spec.bfdProfile", Message: `BFDProfile "fast" does not exist`}},
			inForce: map[string][]string{KindBGPPeer: {"r"}},
			check: func(t *testing.T, cfg *Config) {
				if got := cfg.BGPPeers["r"].BFDProfile; got != "" {
					t.Errorf("BFDProfile of the kept peer = %q, want none", got)
				}
			},
		},
		{
			name: "strictBFD converts with its profile; without one it is a problem",
			snap: Snapshot{
				BGPPeers: []v1beta1.BGPPeer{
					peer("strict", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile, s.StrictBFD = "fast", true }),
					peer("loose", 0, "192.0.2.2", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" }),
					peer("no-profile", 0, "192.0.2.3", func(s *v1beta1.BGPPeerSpec) { s.StrictBFD = true }),
				},
				BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: meta("fast", 0)}},
			},
			want: []Problem{{Kind: KindBGPPeer, Name: "no-profile", Field: "spec.strictBFD",
				Message: "strictBFD needs bfdProfile: without a BFD session there is nothing to wait for"}},
			inForce: map[string][]string{KindBGPPeer: {"loose", "strict"}, KindBFDProfile: {"fast"}},
			check: func(t *testing.T, cfg *Config) {
				if !cfg.BGPPeers["strict"].StrictBFD || cfg.BGPPeers["loose"].StrictBFD {
					t.Errorf("StrictBFD: strict %v, loose %v", cfg.BGPPeers["strict"].StrictBFD, cfg.BGPPeers["loose"].StrictBFD)
				}
			},
		},
		{
			name: "turning strictBFD on is a change that takes effect",
			prev: &Snapshot{
				BGPPeers:    []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" })},
				BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: meta("fast", 0)}},
			},
			snap: Snapshot{
				BGPPeers:    []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile, s.StrictBFD = "fast", true })},
				BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: meta("fast", 0)}},
			},
			inForce: map[string][]string{KindBGPPeer: {"r"}, KindBFDProfile: {"fast"}},
			check: func(t *testing.T, cfg *Config) {
				if !cfg.BGPPeers["r"].StrictBFD {
					t.Error("StrictBFD of r is false, want the new spec's true")
				}
			},
		},
		{
			name: "a strict peer kept at its last good version loses strict mode with its gone profile",
			prev: &Snapshot{
				BGPPeers:    []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile, s.StrictBFD = "fast", true })},
				BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: meta("fast", 0)}},
			},
			snap:    Snapshot{BGPPeers: []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile, s.StrictBFD = "fast", true })}},
			want:    []Problem{{Kind: KindBGPPeer, Name: "r", Field: "spec.bfdProfile", Message: `BFDProfile "fast" does not exist`}},
			inForce: map[string][]string{KindBGPPeer: {"r"}},
			check: func(t *testing.T, cfg *Config) {
				if p := cfg.BGPPeers["r"]; p.BFDProfile != "" || p.StrictBFD {
					t.Errorf("kept peer: BFDProfile %q StrictBFD %v, want neither (a gone profile must not withdraw routes)", p.BFDProfile, p.StrictBFD)
				}
			},
		},
		{
			name: "community alias defined twice: the newer Community is broken",
			snap: Snapshot{Communities: []v1beta1.Community{
				{ObjectMeta: meta("new", 2), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "gold", Value: "64500:2"}, {Name: "silver", Value: "64500:3"}}}},
				{ObjectMeta: meta("old", 1), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "gold", Value: "64500:1"}}}},
			}},
			want: []Problem{{Kind: KindCommunity, Name: "new", Field: "spec.communities",
				Message: `alias "gold" is already defined by Community "old"; alias names must be unique`}},
			inForce: map[string][]string{KindCommunity: {"gold"}},
		},
		{
			name: "bad community values and names",
			snap: Snapshot{Communities: []v1beta1.Community{
				{ObjectMeta: meta("c", 0), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "Gold", Value: "1:1"}, {Name: "x", Value: "70000:1"}}}},
			}},
			want: []Problem{
				{Kind: KindCommunity, Name: "c", Field: "spec.communities[0].name", Message: `alias name "Gold" must be lowercase letters, digits and - (starting and ending with a letter or digit)`},
				{Kind: KindCommunity, Name: "c", Field: "spec.communities[1].value", Message: `"70000:1" is not a community value: use AA:NN (each part 0-65535) or a large community A:B:C (each part 0-4294967295)`},
			},
			inForce: map[string][]string{},
		},
		{
			name: "aggregation length shorter than the pool's prefix",
			snap: Snapshot{
				Pools: []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.0/25", "2001:db8:100::/64")},
				BGPAdvertisements: []v1beta1.BGPAdvertisement{
					bgpAdv("v4", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = ptr[int32](24) }),
					bgpAdv("v6", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLengthV6 = ptr[int32](48) }),
					bgpAdv("ok", func(s *v1beta1.BGPAdvertisementSpec) {
						s.AggregationLength, s.AggregationLengthV6 = ptr[int32](25), ptr[int32](64)
					}),
				},
			},
			want: []Problem{
				{Kind: KindBGPAdvertisement, Name: "v4", Field: "spec.aggregationLength",
					Message: `aggregationLength 24 is shorter than prefix 203.0.113.0/25 of IPAddressPool "p": the announcement would cover addresses outside the pool`},
				{Kind: KindBGPAdvertisement, Name: "v6", Field: "spec.aggregationLengthV6",
					Message: `aggregationLengthV6 48 is shorter than prefix 2001:db8:100::/64 of IPAddressPool "p": the announcement would cover addresses outside the pool`},
			},
			inForce: map[string][]string{KindIPAddressPool: {"p"}, KindBGPAdvertisement: {"ok"}},
		},
		{
			name: "a broken advertisement whose peers are all gone is left out rather than sent to every peer",
			prev: &Snapshot{
				BGPPeers:          []v1beta1.BGPPeer{peer("r", 0, "192.0.2.1")},
				BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("adv", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"r"} })},
			},
			snap: Snapshot{
				BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("adv", func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"r"} })},
			},
			want:    []Problem{{Kind: KindBGPAdvertisement, Name: "adv", Field: "spec.peers[0]", Message: `BGPPeer "r" does not exist`}},
			inForce: map[string][]string{},
		},
		{
			name: "bad selectors and interfaces",
			snap: Snapshot{L2Advertisements: []v1beta1.L2Advertisement{{ObjectMeta: meta("l2", 0), Spec: v1beta1.L2AdvertisementSpec{
				NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpIn}}}},
				Interfaces:    []string{"eth0", "eth/1"},
			}}}},
			want: []Problem{
				{Kind: KindL2Advertisement, Name: "l2", Field: "spec.nodeSelectors[0]", Message: `not a label selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`},
				{Kind: KindL2Advertisement, Name: "l2", Field: "spec.interfaces[1]", Message: `"eth/1" is not an interface name (letters, digits, -, _ and ., at most 15 characters)`},
			},
			inForce: map[string][]string{},
		},
		{
			name: "BFD bounds",
			snap: Snapshot{BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: meta("b", 0), Spec: v1beta1.BFDProfileSpec{
				ReceiveInterval: ptr[int32](5), TransmitInterval: ptr[int32](60001), DetectMultiplier: ptr[int32](1), MinimumTTL: ptr[int32](255)}}}},
			want: []Problem{
				{Kind: KindBFDProfile, Name: "b", Field: "spec.receiveInterval", Message: "receiveInterval must be from 10 to 60000 milliseconds, not 5"},
				{Kind: KindBFDProfile, Name: "b", Field: "spec.transmitInterval", Message: "transmitInterval must be from 10 to 60000 milliseconds, not 60001"},
				{Kind: KindBFDProfile, Name: "b", Field: "spec.detectMultiplier", Message: "detectMultiplier must be from 2 to 255, not 1"},
				{Kind: KindBFDProfile, Name: "b", Field: "spec.minimumTtl", Message: "minimumTtl must be from 1 to 254, not 255"},
			},
			inForce: map[string][]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := tc.snap
			if tc.prev != nil {
				prev, ps := Build(*tc.prev)
				if len(ps) != 0 {
					t.Fatalf("previous snapshot has problems: %v", ps)
				}
				snap.Previous = prev
			}
			cfg, got := Build(snap)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.inForce, inForce(cfg)); d != "" {
				t.Errorf("objects in force (-want +got):\n%s", d)
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
			checkInvariants(t, cfg)
		})
	}
}

func TestValidCondition(t *testing.T) {
	prev, _ := Build(Snapshot{Pools: []v1beta1.IPAddressPool{pool("p", 0, "203.0.113.0/24")}})
	cfg, problems := Build(Snapshot{Previous: prev, Pools: []v1beta1.IPAddressPool{
		pool("p", 0, "203.0.113.0/42"), pool("q", 0, "198.51.100.300/32"), pool("ok", 0, "198.51.100.0/30")}})
	tests := []struct {
		name   string
		status metav1.ConditionStatus
		reason string
		msg    string
	}{
		{"p", metav1.ConditionFalse, v1beta1.ReasonLastGoodInForce, `spec.addresses[0]: "203.0.113.0/42" is neither a CIDR such as 203.0.113.0/24 nor a range of two addresses such as 203.0.113.10-203.0.113.20; the last good version stays in force`},
		{"q", metav1.ConditionFalse, v1beta1.ReasonInvalid, `spec.addresses[0]: "198.51.100.300/32" is neither a CIDR such as 203.0.113.0/24 nor a range of two addresses such as 203.0.113.10-203.0.113.20; not in force`},
		{"ok", metav1.ConditionTrue, v1beta1.ReasonValid, "in force"},
	}
	for _, tc := range tests {
		c := ValidCondition(cfg, problems, KindIPAddressPool, tc.name, 7)
		want := metav1.Condition{Type: v1beta1.ConditionValid, Status: tc.status, Reason: tc.reason, Message: tc.msg, ObservedGeneration: 7}
		if d := cmp.Diff(want, c); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

// TestBuildIgnoresOrder checks that the order of objects in the Snapshot changes nothing.
func TestBuildIgnoresOrder(t *testing.T) {
	snap := Snapshot{
		Pools: []v1beta1.IPAddressPool{pool("a", 1, "203.0.113.0/25"), pool("b", 1, "203.0.113.64/26"), pool("c", 2, "203.0.113.128/25"),
			pool("d", 0, "203.0.113.200-203.0.113.210"), pool("e", 3, "2001:db8:100::/64")},
		BGPPeers:         []v1beta1.BGPPeer{peer("p1", 1, "192.0.2.1"), peer("p2", 1, "192.0.2.1"), peer("p3", 0, "192.0.2.2")},
		L2Advertisements: []v1beta1.L2Advertisement{l2("x"), l2("y", "a", "c")},
	}
	want, wantProblems := Build(snap)
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		s := snap
		s.Pools, s.BGPPeers, s.L2Advertisements = slices.Clone(s.Pools), slices.Clone(s.BGPPeers), slices.Clone(s.L2Advertisements)
		r.Shuffle(len(s.Pools), func(i, j int) { s.Pools[i], s.Pools[j] = s.Pools[j], s.Pools[i] })
		r.Shuffle(len(s.BGPPeers), func(i, j int) { s.BGPPeers[i], s.BGPPeers[j] = s.BGPPeers[j], s.BGPPeers[i] })
		r.Shuffle(len(s.L2Advertisements), func(i, j int) {
			s.L2Advertisements[i], s.L2Advertisements[j] = s.L2Advertisements[j], s.L2Advertisements[i]
		})
		got, gotProblems := Build(s)
		if d := cmp.Diff(want, got, cmpOpts); d != "" {
			t.Fatalf("config depends on order (-first +shuffled):\n%s", d)
		}
		if d := cmp.Diff(wantProblems, gotProblems); d != "" {
			t.Fatalf("problems depend on order (-first +shuffled):\n%s", d)
		}
	}
}

// checkInvariants asserts what every Config from Build guarantees.
func checkInvariants(t testing.TB, cfg *Config) {
	t.Helper()
	var all []ownedRange
	for name, p := range cfg.Pools {
		if p.Name != name {
			t.Errorf("pool %q holds name %q", name, p.Name)
		}
		for i, r := range p.Ranges {
			if !r.First.IsValid() || r.First.Is4() != r.Last.Is4() || r.First.Compare(r.Last) > 0 {
				t.Errorf("pool %q: bad range %v", name, r)
			}
			if i > 0 && compareRange(p.Ranges[i-1], r) > 0 {
				t.Errorf("pool %q: ranges not sorted: %v", name, p.Ranges)
			}
			all = append(all, ownedRange{r, name})
		}
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if all[i].Overlaps(all[j].Range) {
				t.Errorf("ranges overlap in the Config: %v (%s) and %v (%s)", all[i].Range, all[i].pool, all[j].Range, all[j].pool)
			}
		}
	}
	for name, a := range cfg.L2Advertisements {
		for _, p := range a.Pools {
			if cfg.Pools[p] == nil {
				t.Errorf("L2Advertisement %q names pool %q, which is not in the Config", name, p)
			}
		}
	}
	for name, a := range cfg.BGPAdvertisements {
		for _, p := range a.Pools {
			if cfg.Pools[p] == nil {
				t.Errorf("BGPAdvertisement %q names pool %q, which is not in the Config", name, p)
			}
		}
		for _, p := range a.Peers {
			if cfg.BGPPeers[p] == nil {
				t.Errorf("BGPAdvertisement %q names peer %q, which is not in the Config", name, p)
			}
		}
	}
	for name, p := range cfg.BGPPeers {
		if p.BFDProfile != "" && cfg.BFDProfiles[p.BFDProfile] == nil {
			t.Errorf("BGPPeer %q names BFD profile %q, which is not in the Config", name, p.BFDProfile)
		}
		if p.StrictBFD && p.BFDProfile == "" {
			t.Errorf("BGPPeer %q is strictBFD without a BFD profile: it would never advertise", name)
		}
	}
	for alias := range cfg.Communities {
		if cfg.CommunityOwners[alias] == "" {
			t.Errorf("alias %q has no owner", alias)
		}
	}
}

// TestOverlapAgainstBruteForce compares Build's overlap decisions on random pools with a
// plain quadratic greedy: pools in creation order, each accepted when it overlaps none
// accepted before it.
func TestOverlapAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 200 {
		var s Snapshot
		type cand struct {
			name   string
			ranges []Range
		}
		var cands []cand
		for i := range 2 + r.IntN(12) {
			var addrs []string
			var ranges []Range
			for range 1 + r.IntN(3) {
				a, b := r.IntN(64), r.IntN(64)
				if a > b {
					a, b = b, a
				}
				first := netip.AddrFrom4([4]byte{203, 0, 113, byte(a * 4)})
				last := netip.AddrFrom4([4]byte{203, 0, 113, byte(b*4 + 3)})
				if r.IntN(4) == 0 { // some IPv6, which never overlaps IPv4
					first = netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(a)})
					last = netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(b)})
				}
				addrs = append(addrs, first.String()+"-"+last.String())
				ranges = append(ranges, Range{First: first, Last: last})
			}
			name := fmt.Sprintf("p%02d", i)
			s.Pools = append(s.Pools, pool(name, i, addrs...))
			cands = append(cands, cand{name, ranges})
		}
		cfg, _ := Build(s)
		var accepted []Range
		for _, c := range cands {
			self, bad := false, false
			for i, x := range c.ranges {
				for _, y := range c.ranges[i+1:] {
					self = self || x.Overlaps(y)
				}
				for _, y := range accepted {
					bad = bad || x.Overlaps(y)
				}
			}
			want := !self && !bad
			if got := cfg.Pools[c.name] != nil; got != want {
				t.Fatalf("round %d: pool %s %v in force = %v, brute force says %v", round, c.name, c.ranges, got, want)
			}
			if want {
				accepted = append(accepted, c.ranges...)
			}
		}
		checkInvariants(t, cfg)
	}
}

// TestPoolCIDRs: the entries written as a CIDR are recorded (sorted, IPv4 first), the
// ranges are not, even one that spans exactly one prefix; a change between the two forms
// is a change of the pool.
func TestPoolCIDRs(t *testing.T) {
	p := pool("p", 1, "2001:db8:100::/64", "203.0.113.10-203.0.113.20", "2001:db8:200::-2001:db8:200::ff", "198.51.100.0/24")
	cfg, problems := Build(Snapshot{Pools: []v1beta1.IPAddressPool{p}})
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:100::/64")}
	if got := cfg.Pools["p"].CIDRs; !slices.Equal(got, want) {
		t.Errorf("CIDRs = %v, want %v", got, want)
	}
	asRange := pool("p", 1, "2001:db8:100::-2001:db8:100::ffff:ffff:ffff:ffff")
	asCIDR := pool("p", 1, "2001:db8:100::/64")
	a, _ := Build(Snapshot{Pools: []v1beta1.IPAddressPool{asRange}})
	b, _ := Build(Snapshot{Pools: []v1beta1.IPAddressPool{asCIDR}})
	if !slices.Equal(a.Pools["p"].Ranges, b.Pools["p"].Ranges) {
		t.Fatalf("the range and the CIDR cover different addresses: %v, %v", a.Pools["p"].Ranges, b.Pools["p"].Ranges)
	}
	if equalPool(a.Pools["p"], b.Pools["p"]) {
		t.Errorf("a range and the CIDR it spans compare equal: the subnet-router anycast rule tells them apart")
	}
}
