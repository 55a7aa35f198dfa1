package plan

import (
	"fmt"
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkCompute: the decide step for n Services of 3 endpoints each (one TCP port,
// IPv4), the pure part of a B5 full sync.
func BenchmarkCompute(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			in := Input{Node: "n1", Alive: map[string]bool{"n1": true, "n2": true, "n3": true}}
			for i := range n {
				var eps []Endpoint
				for j := range 3 {
					eps = append(eps, Endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).Next().Next(),
						Node: fmt.Sprintf("n%d", j+1), Ports: map[string]uint16{"": uint16(8000 + j)}, Ready: true})
				}
				in.Services = append(in.Services, Service{Name: types.NamespacedName{Namespace: "b", Name: fmt.Sprint(i)},
					LBIPs: []netip.Addr{netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)})},
					Ports: []Port{{Protocol: TCP, Port: 80}}, Endpoints: eps})
			}
			p, err := Compute(in)
			if err != nil {
				b.Fatal(err)
			}
			in.IDs = p.IDs
			b.ResetTimer()
			for b.Loop() {
				if _, err := Compute(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
