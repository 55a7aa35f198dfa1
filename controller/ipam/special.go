package ipam

import (
	"net/netip"
	"slices"

	"github.com/loadstone-lb/loadstone/api/model"
)

// specialBlock is a block of addresses that must never be a load balancer IP.
type specialBlock struct {
	prefix netip.Prefix
	what   string
}

// specialBlocks are the special-purpose blocks the allocator never hands out, whatever a
// pool says: a Service holding one of them would capture local or multicast traffic on
// every node (kube-proxy installs its rules for any ingress IP), or could never be
// reached.
var specialBlocks = []specialBlock{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// anycastMaxBits is the longest IPv6 prefix whose first address is its subnet-router
// anycast address (RFC 4291 2.6.1; RFC 6164 exempts /127, and a /128 is one address).
const anycastMaxBits = 126

// SpecialPurpose reports whether ip is never allocated, whichever pool it is in, and what
// it is ("loopback", "multicast", ...). The subnet-router anycast address depends on the
// pool and is not covered here (see Excluded).
func SpecialPurpose(ip netip.Addr) (string, bool) {
	ip = ip.Unmap()
	for _, b := range specialBlocks {
		if b.prefix.Contains(ip) {
			return b.what, true
		}
	}
	return "", false
}

// Exclusion is a part of a pool that the allocator never hands out.
type Exclusion struct {
	// Range lies within one of the pool's ranges.
	Range model.Range
	// What says why: "loopback", "subnet-router anycast of 2001:db8:100::/64", ...
	What string
}

// String formats the exclusion for a condition message: "127.0.0.0/8 (loopback)".
func (e Exclusion) String() string { return e.Range.String() + " (" + e.What + ")" }

// Excluded returns the special-purpose addresses of a pool, sorted by address: the
// intersections of its ranges with the special-purpose blocks (SpecialPurpose), and the
// subnet-router anycast address (the all-zero host part) of every IPv6 entry written as
// a CIDR of length 126 or less (model.Pool.CIDRs). A range a-b is taken as written: it
// loses only the special-purpose blocks, never an anycast address, since its author named
// each address and the range says nothing about the subnet around it. Excluded addresses
// are neither free nor counted in the pool's usage.
func Excluded(p *model.Pool) []Exclusion {
	var out []Exclusion
	for _, r := range p.Ranges {
		for _, b := range specialBlocks {
			br := model.PrefixRange(b.prefix)
			if !r.Overlaps(br) {
				continue
			}
			x := model.Range{First: maxAddr(r.First, br.First), Last: minAddr(r.Last, br.Last)}
			out = append(out, Exclusion{Range: x, What: b.what})
		}
	}
	for _, c := range p.CIDRs {
		if !c.Addr().Is6() || c.Bits() > anycastMaxBits {
			continue
		}
		a := c.Masked().Addr()
		if _, special := SpecialPurpose(a); special {
			continue // already listed as its block
		}
		if !slices.ContainsFunc(p.Ranges, func(r model.Range) bool { return r.Contains(a) }) {
			continue
		}
		out = append(out, Exclusion{Range: model.Range{First: a, Last: a}, What: "subnet-router anycast of " + c.Masked().String()})
	}
	slices.SortFunc(out, func(x, y Exclusion) int {
		if x.Range.First.Is4() != y.Range.First.Is4() {
			if x.Range.First.Is4() {
				return -1
			}
			return 1
		}
		return x.Range.First.Compare(y.Range.First)
	})
	return out
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return b
	}
	return a
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return a
	}
	return b
}
