package nft

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/loadstone-lb/loadstone/dataplane/plan"
)

// BenchmarkApply measures, in a fresh node netns, a full sync (table rebuilt) and a
// partial sync that changes one Service's backends, for n Services of 3 backends each
// (M = 509: 509·n backend entries).
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{100, 1000} {
		mk := func(extra int) plan.Plan {
			in := plan.Input{Node: "n1", Alive: map[string]bool{"n1": true}}
			for i := range n {
				var eps []plan.Endpoint
				for j := range 3 + extra*boolInt(i == 0) {
					eps = append(eps, plan.Endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Node: "n1",
						Ports: map[string]uint16{"": uint16(8000 + j)}, Ready: true})
				}
				in.Services = append(in.Services, plan.Service{Name: svcName(fmt.Sprint(i)),
					LBIPs: []netip.Addr{netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)})},
					Ports: []plan.Port{{Protocol: plan.TCP, Port: 80}}, Endpoints: eps})
			}
			p, err := plan.Compute(in)
			if err != nil {
				b.Fatal(err)
			}
			return p
		}
		p0, p1 := mk(0), mk(1)
		b.Run(fmt.Sprintf("full/%d", n), func(b *testing.B) {
			l := newLab(b, 0)
			a, err := New(Config{NetNS: int(l.nodeNS)})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := a.Remove(); err != nil {
					b.Fatal(err)
				}
				if err := a.Apply(p0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("one-service/%d", n), func(b *testing.B) {
			l := newLab(b, 0)
			a, err := New(Config{NetNS: int(l.nodeNS)})
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Apply(p0); err != nil {
				b.Fatal(err)
			}
			ps := []plan.Plan{p1, p0}
			i := 0
			for b.Loop() {
				if err := a.Apply(ps[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
