package routes_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/observe/observetest"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

// TestGatedByDataplane: an IP a Service serves through the dataplane (mode pods or
// nodeport) is advertised only once this node's dataplane carries it; IPs in mode off
// are not affected; an aggregate still goes out for the other IPs in it.
func TestGatedByDataplane(t *testing.T) {
	dp := netip.MustParseAddr("203.0.113.10")  // mode pods
	np := netip.MustParseAddr("203.0.113.11")  // mode nodeport
	off := netip.MustParseAddr("203.0.113.77") // mode off, kube-proxy
	c := observetest.New().Address("n1", netip.MustParseAddr("192.0.2.11")).
		Service("default", "dp", "n1", dp).Mode("default", "dp", "pods").
		Service("default", "np", "n1", np).Mode("default", "np", "nodeport").
		Service("default", "off", "n1", off).Mode("default", "off", "off").
		Peer("r4", v1beta1.BGPPeerSpec{MyASN: 64500, PeerASN: 64501, PeerAddress: "192.0.2.1"}).
		BGPAdvertisement("hosts", v1beta1.BGPAdvertisementSpec{})
	s := c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	prefixes := func(carried map[netip.Addr]bool) []netip.Prefix {
		in := routes.FromSnapshot(s, s.Alive, nil, nil)
		in.Carried = carried
		var out []netip.Prefix
		for _, p := range routes.Compute(in).Paths["r4"] {
			out = append(out, p.Prefix)
		}
		return out
	}
	host := func(ip netip.Addr) netip.Prefix { return netip.PrefixFrom(ip, 32) }
	for _, tc := range []struct {
		name    string
		carried map[netip.Addr]bool
		want    []netip.Prefix
	}{
		{name: "nothing carried: only the mode-off IP", want: []netip.Prefix{host(off)}},
		{name: "pods IP carried", carried: map[netip.Addr]bool{dp: true}, want: []netip.Prefix{host(dp), host(off)}},
		{name: "both carried", carried: map[netip.Addr]bool{dp: true, np: true}, want: []netip.Prefix{host(dp), host(np), host(off)}},
		{name: "carrying a mode-off IP changes nothing", carried: map[netip.Addr]bool{off: true}, want: []netip.Prefix{host(off)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, prefixes(tc.carried), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("advertised (-want +got):\n%s", diff)
			}
		})
	}

	// An aggregate of the two dataplane IPs goes out as soon as one of them is carried.
	c.Lists.BGPAdvertisements = nil
	c.Lists.Services = c.Lists.Services[:2]
	c.BGPAdvertisement("agg", v1beta1.BGPAdvertisementSpec{AggregationLength: ptrInt32(24)})
	s = c.Snapshot("n1", observetest.View{Alive: []string{"n1"}})
	agg := netip.MustParsePrefix("203.0.113.0/24")
	if got := prefixes(nil); len(got) != 0 {
		t.Errorf("aggregate with nothing carried: %v, want none", got)
	}
	if diff := cmp.Diff([]netip.Prefix{agg}, prefixes(map[netip.Addr]bool{np: true}), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("aggregate with one IP carried (-want +got):\n%s", diff)
	}
}

func ptrInt32(v int32) *int32 { return &v }
