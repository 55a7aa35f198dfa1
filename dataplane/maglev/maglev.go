package maglev

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Backend is one destination a table can select.
type Backend struct {
	// ID identifies the backend and is the only input to its hashes, e.g.
	// "10.0.0.1:8080" or a pod UID. Every node must use the same ID for the same backend.
	ID string
	// Weight is the backend's relative share of the table; 0 and 1 both mean one share.
	// Negative weights are an error.
	Weight int
}

// MaxWeight bounds Backend.Weight, so that one heavy backend cannot make Build loop over
// billions of empty turns; weights are relative, so this costs no expressiveness.
const MaxWeight = 1 << 16

// Errors returned by Build (wrapped, use errors.Is).
var (
	ErrNotPrime        = errors.New("table size is not prime")
	ErrNoBackends      = errors.New("no backends")
	ErrTooManyBackends = errors.New("more backends than table entries")
	ErrBadBackend      = errors.New("invalid backend")
)

// Table is a Maglev lookup table: Entries[i] is an index into Backends.
type Table struct {
	// Backends are the input backends, deduplicated and sorted by ID, with weights
	// normalised (0 becomes 1, then all divided by their greatest common divisor).
	Backends []Backend
	// Entries has a prime length M; every element is a valid index into Backends.
	Entries []int32
}

// Lookup returns the index into t.Backends for a flow whose hash is h: Entries[h mod M].
// The caller hashes the flow (for example the 5-tuple, or only the source address for
// ClientIP affinity) with a seed fixed cluster-wide, so every node picks the same backend.
func (t *Table) Lookup(h uint64) int {
	return int(t.Entries[h%uint64(len(t.Entries))])
}

// Counts returns how many entries each backend holds, indexed like t.Backends.
func (t *Table) Counts() []int {
	c := make([]int, len(t.Backends))
	for _, e := range t.Entries {
		c[e]++
	}
	return c
}

// Build computes the Maglev table of size m for backends. The result depends only on the
// set of backends (IDs and weights) and m, never on the order of the input slice: the
// backends are sorted by ID and duplicates merged (a duplicated ID keeps its largest
// weight). m must be prime and at least the number of distinct backends; Size picks one.
func Build(backends []Backend, m int) (*Table, error) {
	if !IsPrime(m) {
		return nil, fmt.Errorf("maglev: table size %d: %w", m, ErrNotPrime)
	}
	bs, err := normalise(backends)
	if err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("maglev: %w", ErrNoBackends)
	}
	if len(bs) > m {
		return nil, fmt.Errorf("maglev: %d backends, table size %d: %w", len(bs), m, ErrTooManyBackends)
	}
	return &Table{Backends: bs, Entries: populate(bs, m)}, nil
}

// normalise validates, sorts and deduplicates backends and reduces their weights.
func normalise(in []Backend) ([]Backend, error) {
	bs := make([]Backend, 0, len(in))
	for _, b := range in {
		if b.ID == "" {
			return nil, fmt.Errorf("maglev: empty ID: %w", ErrBadBackend)
		}
		if b.Weight < 0 || b.Weight > MaxWeight {
			return nil, fmt.Errorf("maglev: backend %q: weight %d outside [0, %d]: %w", b.ID, b.Weight, MaxWeight, ErrBadBackend)
		}
		if b.Weight == 0 {
			b.Weight = 1
		}
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b Backend) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return b.Weight - a.Weight // largest weight first, kept by the dedupe below
	})
	bs = slices.CompactFunc(bs, func(a, b Backend) bool { return a.ID == b.ID })
	g := 0
	for _, b := range bs {
		g = gcd(g, b.Weight)
	}
	if g > 1 {
		for i := range bs {
			bs[i].Weight /= g
		}
	}
	return bs, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// populate fills a table of prime size m (Eisenbud et al., §3.4, Pseudocode 1).
//
// Backend i's preference list is permutation[i][j] = (offset_i + j·skip_i) mod m with
// offset_i = h1(ID) mod m and skip_i = h2(ID) mod (m-1) + 1; as m is prime and
// 1 ≤ skip_i < m, it visits every slot once. Backends take turns in ID order; a turn
// claims the next slot of the backend's list that is still empty.
//
// Weights: with W the largest (reduced) weight, one round is W passes; in pass s
// (0 ≤ s < W) every backend whose weight exceeds s takes one turn, in ID order. A
// backend of weight w thus takes w turns per round, and its share of the table is
// w/Σw up to one round's worth of slots. Pass 0 gives every backend a turn, so each
// one holds at least one slot whenever m ≥ N. With all weights equal this is exactly
// the paper's algorithm.
func populate(bs []Backend, m int) []int32 {
	um := uint64(m)
	prefs := make([]pref, len(bs))
	for i, b := range bs {
		prefs[i] = pref{
			offset: hashID(offsetSeed, b.ID) % um,
			skip:   hashID(skipSeed, b.ID)%(um-1) + 1,
			weight: b.Weight,
		}
	}
	return fill(prefs, m)
}

// pref is one backend's preference list (offset, skip) and its weight ≥ 1.
type pref struct {
	offset, skip uint64
	weight       int
}

// fill runs the turn-taking of populate over preference lists given directly, so that
// tests can check it against tables computed by hand. It requires a prime m ≥ len(ps) ≥ 1,
// offsets < m, 1 ≤ skips < m and weights ≥ 1.
func fill(ps []pref, m int) []int32 {
	n := len(ps)
	um := uint64(m)
	pos := make([]uint64, n) // next entry of backend i's preference list
	maxW := 0
	for i, p := range ps {
		pos[i] = p.offset
		maxW = max(maxW, p.weight)
	}
	entries := make([]int32, m)
	for i := range entries {
		entries[i] = -1
	}
	// active holds, for the current pass, the backends that take a turn in it; it
	// shrinks as the pass number grows past their weights and is reset every round.
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	active := make([]int32, 0, n)
	filled := 0
	for {
		active = append(active[:0], all...)
		for s := 0; s < maxW; s++ {
			if s > 0 {
				active = slices.DeleteFunc(active, func(i int32) bool { return ps[i].weight <= s })
			}
			for _, i := range active {
				c := pos[i]
				for entries[c] >= 0 {
					c += ps[i].skip
					if c >= um {
						c -= um
					}
				}
				entries[c] = i
				c += ps[i].skip
				if c >= um {
					c -= um
				}
				pos[i] = c
				filled++
				if filled == m {
					return entries
				}
			}
		}
	}
}
