package model

import (
	"fmt"
	"testing"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// BenchmarkBuild builds a configuration of n pools (each a /28 of its own and one IPv6
// /120), n/10 peers and an advertisement per peer, with the previous result as Previous,
// as the controller and speaker do on every configuration change.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("pools=%d", n), func(b *testing.B) {
			var s Snapshot
			for i := range n {
				s.Pools = append(s.Pools, pool(fmt.Sprintf("p%d", i), i,
					fmt.Sprintf("10.%d.%d.0/28", i/256, i%256), fmt.Sprintf("2001:db8:100::%x:0/120", i)))
			}
			for i := range n / 10 {
				s.BGPPeers = append(s.BGPPeers, peer(fmt.Sprintf("r%d", i), i, fmt.Sprintf("192.0.2.%d", i+1)))
				s.BGPAdvertisements = append(s.BGPAdvertisements, bgpAdv(fmt.Sprintf("a%d", i), func(sp *v1beta1.BGPAdvertisementSpec) {
					sp.Peers = []string{fmt.Sprintf("r%d", i)}
					sp.Communities = []string{"64500:1"}
				}))
			}
			s.L2Advertisements = []v1beta1.L2Advertisement{l2("all")}
			prev, problems := Build(s)
			if len(problems) != 0 {
				b.Fatalf("problems: %v", problems)
			}
			s.Previous = prev
			b.ReportAllocs()
			for b.Loop() {
				Build(s)
			}
		})
	}
}
