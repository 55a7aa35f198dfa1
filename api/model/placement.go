package model

import (
	"maps"
	"net/netip"
	"slices"
)

// Contains reports whether ip lies in one of the pool's ranges.
func (p *Pool) Contains(ip netip.Addr) bool {
	for _, r := range p.Ranges {
		if r.First.BitLen() == ip.BitLen() && r.First.Compare(ip) <= 0 && ip.Compare(r.Last) <= 0 {
			return true
		}
	}
	return false
}

// PoolOf places an LB IP in its pool: the first of the annotated pools that contains it,
// else the first pool (by name) whose ranges contain it, else "". The speakers (layer 2,
// BGP, dataplane) and the controller's coverage check all place IPs with it, so they agree.
func (c *Config) PoolOf(ip netip.Addr, annotated ...string) string {
	for _, name := range annotated {
		if p := c.Pools[name]; p != nil && p.Contains(ip) {
			return name
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Pools)) {
		if c.Pools[name].Contains(ip) {
			return name
		}
	}
	return ""
}
