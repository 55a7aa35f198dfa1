package maglev

import (
	"fmt"
	"math/bits"
)

const (
	// DefaultMinFactor is the table size per backend below which Maglev's balance
	// guarantee weakens: with M > 100·N every backend holds within 1% of its share.
	DefaultMinFactor = 100
	// DefaultMaxSize caps the table size (2^16+1, a prime): it bounds the map elements
	// per service the dataplane installs on every node, and still gives 655 backends
	// the 100× factor.
	DefaultMaxSize = 65537
	// CiliumDefaultSize is Cilium's default Maglev table size, for reference.
	CiliumDefaultSize = 16381
	// MinSize is the smallest table Size returns.
	MinSize = 251
)

// IsPrime reports whether n is prime.
func IsPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := 3; d <= n/d; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// NextPrime returns the smallest prime ≥ n.
func NextPrime(n int) int {
	if n <= 2 {
		return 2
	}
	if n%2 == 0 {
		n++
	}
	for !IsPrime(n) {
		n += 2
	}
	return n
}

// PrevPrime returns the largest prime ≤ n, or 0 when n < 2.
func PrevPrime(n int) int {
	for ; n >= 2; n-- {
		if IsPrime(n) {
			return n
		}
	}
	return 0
}

// Size chooses the table size for nBackends backends: the smallest prime of the ladder
// 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, ... (the largest prime below
// each power of two from 2^8) that is at least minFactor·nBackends, capped at the largest
// prime ≤ max. Choosing from a ladder instead of NextPrime(minFactor·nBackends) keeps M
// unchanged while the backend count moves within a factor of two: a change of M
// reshuffles almost every entry, a change of backends only its share.
//
// minFactor ≤ 0 means DefaultMinFactor; max ≤ 0 means DefaultMaxSize. Size is a pure
// function of its arguments, so nodes that agree on the backends agree on M. It returns
// an error when no prime ≤ max can hold nBackends backends.
func Size(nBackends, minFactor, max int) (int, error) {
	if minFactor <= 0 {
		minFactor = DefaultMinFactor
	}
	if max <= 0 {
		max = DefaultMaxSize
	}
	if nBackends < 0 {
		return 0, fmt.Errorf("maglev: negative backend count %d", nBackends)
	}
	capPrime := PrevPrime(max)
	if capPrime == 0 {
		return 0, fmt.Errorf("maglev: no prime table size ≤ max %d", max)
	}
	want := uint64(nBackends) * uint64(minFactor)
	m := capPrime
	for k := bits.Len(uint(MinSize)); k < 63; k++ {
		p := PrevPrime(1<<k - 1)
		if p > capPrime {
			break
		}
		if uint64(p) >= want {
			m = p
			break
		}
	}
	if m < nBackends {
		return 0, fmt.Errorf("maglev: %d backends need a table of at least %d entries, max is %d", nBackends, nBackends, max)
	}
	return m, nil
}
