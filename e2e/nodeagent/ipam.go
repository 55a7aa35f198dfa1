package nodeagent

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrPoolFull is returned by Pool.Allocate when every usable address is taken.
var ErrPoolFull = errors.New("no free address in pod CIDR")

// Pool hands out pod addresses from one pod CIDR. It is a plain data structure (no I/O):
// the agent persists its allocations in the state directory and replays them with Reserve
// after a restart.
//
// The network address and the first address (the bridge's, the pods' gateway) are never
// handed out, nor, for IPv4, the broadcast address. Allocation continues after the last
// address handed out and wraps around, so a released address is reused as late as possible
// (a new pod gets a new IP, as on a real cluster).
type Pool struct {
	prefix    netip.Prefix
	gateway   netip.Addr
	broadcast netip.Addr // invalid for IPv6
	last      netip.Addr
	used      map[netip.Addr]struct{}
}

// NewPool returns an empty pool for prefix, which must be a masked IPv4 prefix of at most
// /30 or an IPv6 prefix of at most /126.
func NewPool(prefix netip.Prefix) (*Pool, error) {
	if !prefix.IsValid() {
		return nil, errors.New("invalid pod CIDR")
	}
	if prefix.Masked() != prefix {
		return nil, fmt.Errorf("pod CIDR %s has host bits set (want %s)", prefix, prefix.Masked())
	}
	bits := prefix.Addr().BitLen()
	if prefix.Bits() > bits-2 {
		return nil, fmt.Errorf("pod CIDR %s is too small", prefix)
	}
	p := &Pool{
		prefix:  prefix,
		gateway: prefix.Addr().Next(),
		used:    map[netip.Addr]struct{}{},
	}
	if prefix.Addr().Is4() {
		p.broadcast = lastAddr(prefix)
	}
	p.last = p.gateway
	return p, nil
}

// Gateway returns the pool's first address, which the node's bridge holds.
func (p *Pool) Gateway() netip.Addr { return p.gateway }

// Prefix returns the pool's CIDR.
func (p *Pool) Prefix() netip.Prefix { return p.prefix }

// Last returns the address most recently allocated (or reserved as the last one).
func (p *Pool) Last() netip.Addr { return p.last }

// SetLast sets where the next search starts; addresses outside the pool are ignored.
func (p *Pool) SetLast(a netip.Addr) {
	if p.prefix.Contains(a) {
		p.last = a
	}
}

// Len returns the number of allocated addresses.
func (p *Pool) Len() int { return len(p.used) }

// Usable returns how many addresses the pool can hand out in total (capped at maxInt32).
func (p *Pool) Usable() int {
	hostBits := p.prefix.Addr().BitLen() - p.prefix.Bits()
	if hostBits >= 31 {
		return 1<<31 - 1
	}
	n := 1<<hostBits - 2 // network and gateway
	if p.broadcast.IsValid() {
		n--
	}
	return n
}

func (p *Pool) reserved(a netip.Addr) bool {
	return a == p.prefix.Addr() || a == p.gateway || a == p.broadcast
}

// Reserve marks a as allocated, for replaying persisted allocations.
func (p *Pool) Reserve(a netip.Addr) error {
	if !p.prefix.Contains(a) {
		return fmt.Errorf("address %s is not in pod CIDR %s", a, p.prefix)
	}
	if p.reserved(a) {
		return fmt.Errorf("address %s is reserved in pod CIDR %s", a, p.prefix)
	}
	if _, ok := p.used[a]; ok {
		return fmt.Errorf("address %s is already allocated", a)
	}
	p.used[a] = struct{}{}
	return nil
}

// Release frees a; releasing a free address does nothing.
func (p *Pool) Release(a netip.Addr) { delete(p.used, a) }

// Allocate returns the next free address after the last one handed out.
func (p *Pool) Allocate() (netip.Addr, error) {
	// Among len(used)+4 consecutive candidates at least one is neither used nor reserved,
	// unless the pool is full; so the search is O(allocated), even in a /64.
	limit := len(p.used) + 4
	if u := p.Usable() + 3; u < limit {
		limit = u
	}
	a := p.last
	for range limit {
		a = a.Next()
		if !a.IsValid() || !p.prefix.Contains(a) {
			a = p.prefix.Addr()
		}
		if p.reserved(a) {
			continue
		}
		if _, ok := p.used[a]; ok {
			continue
		}
		p.used[a] = struct{}{}
		p.last = a
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w %s (%d allocated)", ErrPoolFull, p.prefix, len(p.used))
}

// lastAddr returns the highest address of prefix.
func lastAddr(prefix netip.Prefix) netip.Addr {
	b := prefix.Addr().AsSlice()
	bits := prefix.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
