package model

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// ParseAddresses parses one entry of an IPAddressPool's spec.addresses: a CIDR
// ("203.0.113.0/24", "2001:db8:100::/64") or an inclusive range of two addresses of one
// family ("203.0.113.10-203.0.113.20", spaces around the dash allowed). It returns the
// addresses as Ranges (one today; a slice so that callers need not care how an entry is
// split). The rules are the CRD's: no address bits after the prefix length, no zones, no
// IPv4-mapped IPv6 addresses, the first address of a range not above the last.
func ParseAddresses(entry string) ([]Range, error) {
	s := strings.TrimSpace(entry)
	if s == "" {
		return nil, fmt.Errorf("empty address entry")
	}
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, errA := parseAddr(strings.TrimSpace(first))
		b, errB := parseAddr(strings.TrimSpace(last))
		if errA != nil || errB != nil || strings.Contains(last, "-") {
			return nil, fmt.Errorf("%q is neither a CIDR such as 203.0.113.0/24 nor a range of two addresses such as 203.0.113.10-203.0.113.20", entry)
		}
		if a.Is4() != b.Is4() {
			return nil, fmt.Errorf("range %q mixes IPv4 and IPv6: both ends of a range must be of one family", entry)
		}
		if a.Compare(b) > 0 {
			return nil, fmt.Errorf("range %q is reversed: the first address must not be above the last", entry)
		}
		return []Range{{First: a, Last: b}}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is4In6() {
		return nil, fmt.Errorf("%q is neither a CIDR such as 203.0.113.0/24 nor a range of two addresses such as 203.0.113.10-203.0.113.20", entry)
	}
	if p.Masked() != p {
		return nil, fmt.Errorf("%q has address bits set after the prefix length: use %s", entry, p.Masked())
	}
	return []Range{PrefixRange(p)}, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("%q: zones and IPv4-mapped IPv6 addresses are not allowed", s)
	}
	return a, nil
}

// PrefixRange returns the Range of all addresses of a masked prefix.
func PrefixRange(p netip.Prefix) Range {
	p = p.Masked()
	first := p.Addr()
	b := first.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return Range{First: first, Last: last}
}

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return r.First.Is4() == a.Is4() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Overlaps reports whether r and o share an address.
func (r Range) Overlaps(o Range) bool {
	return r.First.Is4() == o.First.Is4() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// String formats r as one address, as a CIDR when r is exactly one prefix, or as
// "first-last".
func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	if ps := r.Prefixes(); len(ps) == 1 {
		return ps[0].String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// Prefixes returns the shortest list of prefixes that covers exactly r, in order.
func (r Range) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	cur := r.First
	for {
		bits := cur.BitLen()
		// Grow the prefix while it starts at cur and stays within r.
		for bits > 0 {
			p := netip.PrefixFrom(cur, bits-1)
			if p.Masked().Addr() != cur || PrefixRange(p).Last.Compare(r.Last) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(cur, bits)
		out = append(out, p)
		last := PrefixRange(p).Last
		if last.Compare(r.Last) >= 0 {
			return out
		}
		cur = last.Next()
	}
}

var (
	standardCommunity = regexp.MustCompile(`^([0-9]{1,5}):([0-9]{1,5})$`)
	largeCommunity    = regexp.MustCompile(`^(?:large:)?([0-9]{1,10}):([0-9]{1,10}):([0-9]{1,10})$`)
	aliasName         = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// ParseCommunity parses a community value: standard "AA:NN" (each part 0 to 65535) or large
// "A:B:C" (each part 0 to 4294967295; MetalLB's "large:A:B:C" too).
func ParseCommunity(s string) (CommunityValue, error) {
	if m := standardCommunity.FindStringSubmatch(s); m != nil {
		hi, errH := strconv.ParseUint(m[1], 10, 16)
		lo, errL := strconv.ParseUint(m[2], 10, 16)
		if errH == nil && errL == nil {
			return CommunityValue{Standard: uint32(hi)<<16 | uint32(lo)}, nil
		}
	}
	if m := largeCommunity.FindStringSubmatch(s); m != nil {
		var v CommunityValue
		v.Large = true
		ok := true
		for i := range 3 {
			n, err := strconv.ParseUint(m[i+1], 10, 32)
			ok = ok && err == nil
			v.LargeVal[i] = uint32(n)
		}
		if ok {
			return v, nil
		}
	}
	return CommunityValue{}, fmt.Errorf("%q is not a community value: use AA:NN (each part 0-65535) or a large community A:B:C (each part 0-4294967295)", s)
}

// String formats a community as "AA:NN" or "A:B:C".
func (c CommunityValue) String() string {
	if c.Large {
		return fmt.Sprintf("%d:%d:%d", c.LargeVal[0], c.LargeVal[1], c.LargeVal[2])
	}
	return fmt.Sprintf("%d:%d", c.Standard>>16, c.Standard&0xffff)
}

// IsAliasName reports whether s is a valid Community alias name.
func IsAliasName(s string) bool { return len(s) <= 63 && aliasName.MatchString(s) }
