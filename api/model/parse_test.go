package model

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func rng(first, last string) Range {
	return Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
}

func TestParseAddresses(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Range
		err      string // substring of the error; "" means success
	}{
		{name: "v4 CIDR", in: "203.0.113.0/24", want: []Range{rng("203.0.113.0", "203.0.113.255")}},
		{name: "v4 host", in: "203.0.113.7/32", want: []Range{rng("203.0.113.7", "203.0.113.7")}},
		{name: "v6 CIDR", in: "2001:db8:100::/64", want: []Range{rng("2001:db8:100::", "2001:db8:100::ffff:ffff:ffff:ffff")}},
		{name: "v6 odd length", in: "2001:db8:100::/121", want: []Range{rng("2001:db8:100::", "2001:db8:100::7f")}},
		{name: "whole v4 space", in: "0.0.0.0/0", want: []Range{rng("0.0.0.0", "255.255.255.255")}},
		{name: "range", in: "203.0.113.10-203.0.113.20", want: []Range{rng("203.0.113.10", "203.0.113.20")}},
		{name: "range with spaces", in: " 203.0.113.10 - 203.0.113.20 ", want: []Range{rng("203.0.113.10", "203.0.113.20")}},
		{name: "single-address range", in: "203.0.113.9-203.0.113.9", want: []Range{rng("203.0.113.9", "203.0.113.9")}},
		{name: "v6 range", in: "2001:db8:100::ffff-2001:db8:100:0:1::", want: []Range{rng("2001:db8:100::ffff", "2001:db8:100:0:1::")}},
		{name: "empty", in: " ", err: "empty address entry"},
		{name: "garbage", in: "hello", err: `"hello" is neither a CIDR`},
		{name: "bare address", in: "203.0.113.7", err: "is neither a CIDR"},
		{name: "prefix too long", in: "203.0.113.0/33", err: "is neither a CIDR"},
		{name: "leading zero", in: "203.0.113.010/32", err: "is neither a CIDR"},
		{name: "host bits", in: "203.0.113.5/24", err: `"203.0.113.5/24" has address bits set after the prefix length: use 203.0.113.0/24`},
		{name: "v4-mapped CIDR", in: "::ffff:203.0.113.0/120", err: "is neither a CIDR"},
		{name: "v4-mapped range end", in: "::ffff:203.0.113.1-::ffff:203.0.113.2", err: "is neither a CIDR"},
		{name: "zone", in: "fe80::1%eth0-fe80::2%eth0", err: "is neither a CIDR"},
		{name: "three parts", in: "203.0.113.1-203.0.113.2-203.0.113.3", err: "is neither a CIDR"},
		{name: "CIDR end", in: "203.0.113.0/24-203.0.113.255", err: "is neither a CIDR"},
		{name: "mixed families", in: "203.0.113.1-2001:db8::1", err: "mixes IPv4 and IPv6"},
		{name: "reversed", in: "203.0.113.20-203.0.113.10", err: `range "203.0.113.20-203.0.113.10" is reversed`},
		{name: "reversed v6", in: "2001:db8::2-2001:db8::1", err: "is reversed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAddresses(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseAddresses(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAddresses(%q): %v", tc.in, err)
			}
			if d := cmp.Diff(tc.want, got, addrCmp); d != "" {
				t.Errorf("ParseAddresses(%q) (-want +got):\n%s", tc.in, d)
			}
		})
	}
}

func TestRangePrefixes(t *testing.T) {
	tests := []struct {
		r    Range
		want []string
	}{
		{rng("203.0.113.0", "203.0.113.255"), []string{"203.0.113.0/24"}},
		{rng("203.0.113.9", "203.0.113.9"), []string{"203.0.113.9/32"}},
		{rng("203.0.113.10", "203.0.113.20"), []string{"203.0.113.10/31", "203.0.113.12/30", "203.0.113.16/30", "203.0.113.20/32"}},
		{rng("0.0.0.0", "255.255.255.255"), []string{"0.0.0.0/0"}},
		{rng("2001:db8:100::", "2001:db8:100::ffff:ffff:ffff:ffff"), []string{"2001:db8:100::/64"}},
		{rng("2001:db8::ffff", "2001:db8::1:0"), []string{"2001:db8::ffff/128", "2001:db8::1:0/128"}},
	}
	for _, tc := range tests {
		var got []string
		for _, p := range tc.r.Prefixes() {
			got = append(got, p.String())
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s.Prefixes() (-want +got):\n%s", tc.r, d)
		}
	}
}

func TestParseCommunity(t *testing.T) {
	tests := []struct {
		in   string
		want CommunityValue
		err  bool
	}{
		{in: "64500:100", want: CommunityValue{Standard: 64500<<16 | 100}},
		{in: "0:0", want: CommunityValue{}},
		{in: "65535:65281", want: CommunityValue{Standard: 0xffffff01}},
		{in: "64512:1:2", want: CommunityValue{Large: true, LargeVal: [3]uint32{64512, 1, 2}}},
		{in: "large:4294967295:0:7", want: CommunityValue{Large: true, LargeVal: [3]uint32{4294967295, 0, 7}}},
		{in: "65536:1", err: true},
		{in: "1:65536", err: true},
		{in: "4294967296:1:1", err: true},
		{in: "1:2:3:4", err: true},
		{in: "no-export", err: true},
		{in: "65000:", err: true},
		{in: "", err: true},
	}
	for _, tc := range tests {
		got, err := ParseCommunity(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("ParseCommunity(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCommunity(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := ParseCommunity(got.String()); err != nil || back != got {
			t.Errorf("ParseCommunity(%q.String()=%q) = %+v, %v", tc.in, got.String(), back, err)
		}
	}
}
