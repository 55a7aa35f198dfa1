package nodeagent

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNewPoolErrors(t *testing.T) {
	tests := []struct {
		name   string
		prefix netip.Prefix
	}{
		{"invalid", netip.Prefix{}},
		{"host bits", netip.MustParsePrefix("198.18.1.5/24")},
		{"too small v4", netip.MustParsePrefix("198.18.1.0/31")},
		{"too small v6", netip.MustParsePrefix("2001:db8::/127")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewPool(tc.prefix); err == nil {
				t.Fatalf("NewPool(%v) succeeded, want error", tc.prefix)
			}
		})
	}
}

func TestPoolAllocate(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		reserve  []string
		last     string // optional SetLast before allocating
		release  []string
		allocate int
		want     []string // addresses allocated, in order; "full" means ErrPoolFull
	}{
		{
			name: "v4 starts after gateway", prefix: "198.18.1.0/24", allocate: 3,
			want: []string{"198.18.1.2", "198.18.1.3", "198.18.1.4"},
		},
		{
			name: "v6 starts after gateway", prefix: "2001:db8:1000:1::/64", allocate: 2,
			want: []string{"2001:db8:1000:1::2", "2001:db8:1000:1::3"},
		},
		{
			name: "skips reserved", prefix: "198.18.1.0/24", reserve: []string{"198.18.1.2", "198.18.1.4"}, allocate: 2,
			want: []string{"198.18.1.3", "198.18.1.5"},
		},
		{
			name: "continues after last, wraps, skips broadcast network gateway", prefix: "198.18.1.0/24", last: "198.18.1.253", allocate: 3,
			want: []string{"198.18.1.254", "198.18.1.2", "198.18.1.3"},
		},
		{
			name: "released address is not reused at once", prefix: "198.18.1.0/29", reserve: []string{"198.18.1.2", "198.18.1.3"}, last: "198.18.1.3",
			release: []string{"198.18.1.2"}, allocate: 2,
			want: []string{"198.18.1.4", "198.18.1.5"},
		},
		{
			name: "v4 /29 fills up then reports full", prefix: "198.18.1.0/29", allocate: 6,
			want: []string{"198.18.1.2", "198.18.1.3", "198.18.1.4", "198.18.1.5", "198.18.1.6", "full"},
		},
		{
			name: "v6 /126 has no broadcast", prefix: "2001:db8::/126", allocate: 3,
			want: []string{"2001:db8::2", "2001:db8::3", "full"},
		},
		{
			name: "v6 wraps at end of /64", prefix: "2001:db8:1000:1::/64", last: "2001:db8:1000:1:ffff:ffff:ffff:ffff", allocate: 1,
			want: []string{"2001:db8:1000:1::2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPool(netip.MustParsePrefix(tc.prefix))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.reserve {
				if err := p.Reserve(netip.MustParseAddr(r)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.last != "" {
				p.SetLast(netip.MustParseAddr(tc.last))
			}
			for _, r := range tc.release {
				p.Release(netip.MustParseAddr(r))
			}
			var got []string
			for range tc.allocate {
				a, err := p.Allocate()
				if errors.Is(err, ErrPoolFull) {
					got = append(got, "full")
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, a.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestPoolReserveErrors(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("198.18.1.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"198.18.2.5", "198.18.1.0", "198.18.1.1", "198.18.1.255"} {
		if err := p.Reserve(netip.MustParseAddr(a)); err == nil {
			t.Errorf("Reserve(%s) succeeded, want error", a)
		}
	}
	if err := p.Reserve(netip.MustParseAddr("198.18.1.9")); err != nil {
		t.Fatal(err)
	}
	if err := p.Reserve(netip.MustParseAddr("198.18.1.9")); err == nil {
		t.Error("second Reserve of the same address succeeded")
	}
	if p.Len() != 1 {
		t.Errorf("Len = %d, want 1", p.Len())
	}
}

func TestPoolUsable(t *testing.T) {
	tests := []struct {
		prefix string
		want   int
	}{
		{"198.18.1.0/24", 253}, {"198.18.1.0/30", 1}, {"2001:db8::/126", 2}, {"2001:db8::/64", 1<<31 - 1},
	}
	for _, tc := range tests {
		p, err := NewPool(netip.MustParsePrefix(tc.prefix))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Usable(); got != tc.want {
			t.Errorf("Usable(%s) = %d, want %d", tc.prefix, got, tc.want)
		}
	}
}
