package model

import (
	"net/netip"
	"testing"
)

func TestPoolOf(t *testing.T) {
	rng := func(a, b string) Range { return Range{First: netip.MustParseAddr(a), Last: netip.MustParseAddr(b)} }
	cfg := &Config{Pools: map[string]*Pool{
		"b-wide":  {Name: "b-wide", Ranges: []Range{rng("203.0.113.0", "203.0.113.255")}},
		"a-small": {Name: "a-small", Ranges: []Range{rng("203.0.113.10", "203.0.113.20")}},
		"v6":      {Name: "v6", Ranges: []Range{rng("2001:db8::", "2001:db8::ffff")}},
	}}
	for _, tc := range []struct {
		ip        string
		annotated []string
		want      string
	}{
		{"203.0.113.15", nil, "a-small"},                       // first by name
		{"203.0.113.15", []string{"b-wide"}, "b-wide"},         // the annotation wins
		{"203.0.113.30", []string{"a-small"}, "b-wide"},        // an annotated pool without it is skipped
		{"203.0.113.15", []string{"gone", "b-wide"}, "b-wide"}, // unknown names are skipped
		{"2001:db8::1", nil, "v6"},
		{"198.51.100.1", nil, ""},
		{"::ffff:203.0.113.15", nil, ""}, // another family never matches
	} {
		if got := cfg.PoolOf(netip.MustParseAddr(tc.ip), tc.annotated...); got != tc.want {
			t.Errorf("PoolOf(%s, %v) = %q, want %q", tc.ip, tc.annotated, got, tc.want)
		}
	}
}
