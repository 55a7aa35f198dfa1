package maglev

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

// b7Cases are the (M, N) pairs of BENCHMARKS.md B7 where M ≥ N.
func b7Cases() [][2]int {
	var out [][2]int
	for _, m := range []int{251, CiliumDefaultSize, DefaultMaxSize} {
		for _, n := range []int{3, 100, 1000} {
			if m >= n {
				out = append(out, [2]int{m, n})
			}
		}
	}
	return out
}

func BenchmarkBuild(b *testing.B) {
	for _, c := range b7Cases() {
		m, n := c[0], c[1]
		bs := ids(n)
		b.Run(fmt.Sprintf("M=%d/N=%d", m, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(bs, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuildWeighted(b *testing.B) {
	bs := ids(1000)
	for i := range bs {
		bs[i].Weight = 1 + i%10
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(bs, DefaultMaxSize); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	tab, err := Build(ids(100), CiliumDefaultSize)
	if err != nil {
		b.Fatal(err)
	}
	h := uint64(0x9e3779b97f4a7c15)
	sum := 0
	for b.Loop() {
		h = h*6364136223846793005 + 1442695040888963407
		sum += tab.Lookup(h)
	}
	_ = sum
}

// TestB7Report prints the B7 figures (BENCHMARKS.md): per (M, N), the max/avg share, the
// fraction of entries remapped when k backends fail against the ideal k/N (mean of 5
// random failure sets), the share of surviving backends' entries that moved, and the
// build time measured with testing.Benchmark. It asserts nothing about time.
//
//	LOADSTONE_BENCH=1 go test -run TestB7Report -v ./dataplane/maglev/
func TestB7Report(t *testing.T) {
	if os.Getenv("LOADSTONE_BENCH") != "1" {
		t.Skip("set LOADSTONE_BENCH=1 to print the B7 report")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	t.Logf("%-6s %-5s %-10s %-6s %-9s %-9s %-7s %-10s %s",
		"M", "N", "max/avg", "k", "remapped", "ideal", "ratio", "survivors", "build")
	for _, c := range b7Cases() {
		m, n := c[0], c[1]
		bs := ids(n)
		tab, err := Build(bs, m)
		if err != nil {
			t.Fatal(err)
		}
		share := float64(slices.Max(tab.Counts())) / (float64(m) / float64(n))
		res := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if _, err := Build(bs, m); err != nil {
					b.Fatal(err)
				}
			}
		})
		build := time.Duration(res.NsPerOp())
		for _, k := range failureCounts(n) {
			var changed, collateral float64
			const trials = 5
			for range trials {
				after, err := Build(removeRandom(rng, bs, k), m)
				if err != nil {
					t.Fatal(err)
				}
				ch, co := remap(tab, after)
				changed += ch / trials
				collateral += co / trials
			}
			ideal := float64(k) / float64(n)
			t.Logf("%-6d %-5d %-10.4f %-6d %-9.4f %-9.4f %-7.3f %-10.4f %v",
				m, n, share, k, changed, ideal, changed/ideal, collateral, build)
		}
	}
}

// failureCounts are the k of the report: one backend, 1% and 10% of them (distinct, < n).
func failureCounts(n int) []int {
	var ks []int
	for _, k := range []int{1, n / 100, n / 10} {
		if k >= 1 && k < n && !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	return ks
}
