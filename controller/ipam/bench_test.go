package ipam

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/loadstone-lb/loadstone/api/model"
)

// BenchmarkAssign measures the cost per allocated IP (ns/IP) for pools of 2^16 and 2^20
// addresses with 10k and 100k Services, and with churn (random releases interleaved, so
// the free set is fragmented).
func BenchmarkAssign(b *testing.B) {
	for _, tc := range []struct {
		bits, n int
		churn   bool
	}{
		{16, 10_000, false},
		{16, 60_000, false},
		{16, 100_000, true},
		{20, 10_000, false},
		{20, 100_000, false},
		{20, 100_000, true},
	} {
		name := fmt.Sprintf("pool=2^%d/services=%d", tc.bits, tc.n)
		if tc.churn {
			name += "/churn"
		}
		b.Run(name, func(b *testing.B) {
			p := pool("p", fmt.Sprintf("10.0.0.0/%d", 32-tc.bits))
			reqs := make([]Request, tc.n)
			for i := range reqs {
				reqs[i] = req(fmt.Sprintf("ns%d/s%d", i%50, i))
			}
			// victims[i] is the Service released after the i-th Assign (churn, odd i): a
			// random one still holding an address, so half of them stay.
			victims := make([]int, tc.n)
			r := rand.New(rand.NewPCG(1, 2))
			var live []int
			for i := range victims {
				live = append(live, i)
				if i%2 == 1 {
					j := r.IntN(len(live))
					victims[i] = live[j]
					live[j] = live[len(live)-1]
					live = live[:len(live)-1]
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				a := New()
				if _, err := a.SetPools([]*model.Pool{p}); err != nil {
					b.Fatal(err)
				}
				for i := range reqs {
					if _, err := a.Assign(reqs[i]); err != nil {
						b.Fatal(err)
					}
					if tc.churn && i%2 == 1 {
						a.Release(reqs[victims[i]].Service)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tc.n), "ns/IP")
		})
	}
}

// BenchmarkSetPools measures a configuration change with 100k allocated addresses.
func BenchmarkSetPools(b *testing.B) {
	a := New()
	mustSet(b, a, pool("p", "10.0.0.0/12"), pool("v6", "2001:db8::/64"))
	for i := range 100_000 {
		if _, err := a.Assign(req(fmt.Sprintf("s%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		extra := fmt.Sprintf("10.%d.0.0/16", 100+i%2)
		if _, err := a.SetPools([]*model.Pool{pool("p", "10.0.0.0/12"), pool("v6", "2001:db8::/64"), pool("x", extra)}); err != nil {
			b.Fatal(err)
		}
	}
}
