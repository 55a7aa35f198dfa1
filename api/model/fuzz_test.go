package model

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// FuzzParseAddresses checks that any accepted entry is a well-formed range whose prefix
// decomposition covers it exactly, and that its text form parses back to the same range.
func FuzzParseAddresses(f *testing.F) {
	for _, s := range []string{
		"203.0.113.0/24", "2001:db8:100::/64", "203.0.113.10-203.0.113.20", " 203.0.113.10 - 203.0.113.20 ",
		"2001:db8:100::ffff-2001:db8:100:0:1::", "0.0.0.0/0", "::/0", "203.0.113.5/24", "203.0.113.20-203.0.113.10",
		"203.0.113.1-2001:db8::1", "::ffff:1.2.3.4/128", "fe80::1%eth0-fe80::2", "1-2-3", "-", "/", "::-::",
		"255.255.255.255-255.255.255.255", "::1.2.3.4-::1.2.3.5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseAddresses(s)
		if err != nil {
			if rs != nil {
				t.Fatalf("ParseAddresses(%q) returned ranges with an error", s)
			}
			return
		}
		if len(rs) != 1 {
			t.Fatalf("ParseAddresses(%q) = %v", s, rs)
		}
		r := rs[0]
		if !r.First.IsValid() || r.First.Is4() != r.Last.Is4() || r.First.Compare(r.Last) > 0 || r.First.Zone() != "" {
			t.Fatalf("ParseAddresses(%q) = bad range %v", s, r)
		}
		ps := r.Prefixes()
		next := r.First
		for i, p := range ps {
			pr := PrefixRange(p)
			if pr.First != next || pr.Last.Compare(r.Last) > 0 {
				t.Fatalf("%v.Prefixes() = %v: prefix %d does not continue the cover", r, ps, i)
			}
			next = pr.Last.Next()
		}
		if PrefixRange(ps[len(ps)-1]).Last != r.Last {
			t.Fatalf("%v.Prefixes() = %v does not reach the end", r, ps)
		}
		forms := []string{r.First.String() + "-" + r.Last.String()}
		if r.First != r.Last { // a single address prints bare, which is not an entry
			forms = append(forms, r.String())
		}
		for _, form := range forms {
			back, err := ParseAddresses(form)
			if err != nil || len(back) != 1 || back[0] != r {
				t.Fatalf("ParseAddresses(%q) (from %q) = %v, %v", form, s, back, err)
			}
		}
	})
}

// FuzzBuild builds configurations from fuzzed address entries, peers and references, twice
// (the second time with the first result as Previous and a mutated snapshot), and checks
// the Config's invariants: no overlapping pools, every name resolves, and a Build on an
// unchanged snapshot with its own result as Previous is stable.
func FuzzBuild(f *testing.F) {
	f.Add("203.0.113.0/24", "203.0.113.128/25", "2001:db8:100::/64", "192.0.2.1", "p0", uint8(0))
	f.Add("203.0.113.0/24", "198.51.100.0/24", "203.0.113.7-203.0.113.9", "192.0.2.1", "p1", uint8(7))
	f.Add("203.0.113.5/24", "2001:db8:100::1-2001:db8:100::", "bad", "2001:db8:1::1", "none", uint8(255))
	f.Fuzz(func(t *testing.T, a, b, c, peerAddr, ref string, seed uint8) {
		entries := []string{a, b, c}
		mk := func(rot int) Snapshot {
			var s Snapshot
			for i := range 3 {
				addrs := []string{entries[(i+rot)%3]}
				if seed&(1<<i) != 0 {
					addrs = append(addrs, entries[(i+rot+1)%3])
				}
				p := pool("p"+string(rune('0'+i)), int(seed>>4)*i%3, addrs...)
				s.Pools = append(s.Pools, p)
			}
			for i := range 2 {
				s.BGPPeers = append(s.BGPPeers, peer("r"+string(rune('0'+i)), i, peerAddr, func(sp *v1beta1.BGPPeerSpec) {
					if seed&(8<<i) != 0 {
						sp.BFDProfile = ref
					}
				}))
			}
			s.BFDProfiles = []v1beta1.BFDProfile{{ObjectMeta: metav1.ObjectMeta{Name: "p0"}}}
			s.L2Advertisements = []v1beta1.L2Advertisement{l2("l2", ref), l2("all")}
			s.BGPAdvertisements = []v1beta1.BGPAdvertisement{bgpAdv("adv", func(sp *v1beta1.BGPAdvertisementSpec) {
				sp.Peers = []string{"r0", ref}
				sp.Communities = []string{strings.ToLower(ref), "64500:1"}
				sp.AggregationLength = int32Ptr(int32(seed % 40))
			})}
			return s
		}
		first, _ := Build(mk(0))
		checkInvariants(t, first)
		s := mk(int(seed) % 3)
		s.Previous = first
		second, problems := Build(s)
		checkInvariants(t, second)
		for _, p := range problems {
			if p.Kind == "" || p.Name == "" || p.Message == "" {
				t.Fatalf("incomplete problem %+v", p)
			}
		}
		s.Previous = second
		third, problems3 := Build(s)
		checkInvariants(t, third)
		if d := cmp.Diff(second, third, cmpOpts); d != "" {
			t.Fatalf("Build is not stable on its own result (-second +third):\n%s", d)
		}
		if d := cmp.Diff(problems, problems3); d != "" {
			t.Fatalf("problems not stable (-second +third):\n%s", d)
		}
	})
}

func int32Ptr(v int32) *int32 { return &v }
