package ipam

import (
	"encoding/binary"
	"math"
	"math/big"
	"net/netip"
)

// u128 is an address (or a count of addresses) as a 128-bit unsigned integer. IPv4
// addresses use the low 32 bits; the two families never share a structure, so they are
// never compared with each other.
type u128 struct{ hi, lo uint64 }

func fromAddr(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func (u u128) addr(f Family) netip.Addr {
	if f == IPv4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) less(v u128) bool { return u.cmp(v) < 0 }

func (u u128) inc() u128 {
	lo := u.lo + 1
	hi := u.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

func (u u128) dec() u128 {
	lo := u.lo - 1
	hi := u.hi
	if u.lo == 0 {
		hi--
	}
	return u128{hi, lo}
}

func (u u128) add(v u128) u128 {
	lo := u.lo + v.lo
	hi := u.hi + v.hi
	if lo < u.lo {
		hi++
	}
	return u128{hi, lo}
}

func (u u128) sub(v u128) u128 {
	lo := u.lo - v.lo
	hi := u.hi - v.hi
	if u.lo < v.lo {
		hi--
	}
	return u128{hi, lo}
}

// Count is a number of addresses; an IPv6 pool can hold more than 2^64.
type Count struct{ v u128 }

// Uint64 returns the count, saturated at math.MaxUint64.
func (c Count) Uint64() uint64 {
	if c.v.hi != 0 {
		return math.MaxUint64
	}
	return c.v.lo
}

// Float64 returns the count as a float (for metrics).
func (c Count) Float64() float64 {
	return float64(c.v.hi)*math.Exp2(64) + float64(c.v.lo)
}

// String returns the exact count in decimal.
func (c Count) String() string {
	b := new(big.Int).SetUint64(c.v.hi)
	b.Lsh(b, 64)
	b.Or(b, new(big.Int).SetUint64(c.v.lo))
	return b.String()
}
