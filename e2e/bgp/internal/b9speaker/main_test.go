package main

import (
	"net/netip"
	"testing"
)

func TestPrefixes(t *testing.T) {
	ps, err := prefixes(70000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 70000 {
		t.Fatalf("got %d prefixes", len(ps))
	}
	seen := map[netip.Prefix]bool{}
	for _, p := range ps {
		if p.Prefix.Bits() != 32 || !benchRange.Contains(p.Prefix.Addr()) || seen[p.Prefix] {
			t.Fatalf("bad or repeated prefix %v", p.Prefix)
		}
		seen[p.Prefix] = true
	}
	if ps[0].Prefix != netip.MustParsePrefix("198.18.0.0/32") || ps[69999].Prefix != netip.MustParsePrefix("198.19.17.111/32") {
		t.Errorf("first %v, last %v", ps[0].Prefix, ps[69999].Prefix)
	}
	if _, err := prefixes(1 << 17); err != nil {
		t.Errorf("the whole /15: %v", err)
	}
	for _, n := range []int{-1, 1<<17 + 1} {
		if _, err := prefixes(n); err == nil {
			t.Errorf("prefixes(%d): no error", n)
		}
	}
}
