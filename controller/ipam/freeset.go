package ipam

import "github.com/google/btree"

// span is an inclusive interval of addresses.
type span struct{ first, last u128 }

func (s span) size() u128 { return s.last.sub(s.first).inc() }

// freeSet is a set of addresses kept as disjoint, non-adjacent intervals in a B-tree
// ordered by their first address. Every operation is O(log n) in the number of intervals;
// nothing scans the pool.
type freeSet struct {
	t *btree.BTreeG[span]
	n u128 // number of addresses in the set
}

func newFreeSet() *freeSet {
	return &freeSet{t: btree.NewG(16, func(a, b span) bool { return a.first.less(b.first) })}
}

// containing returns the interval holding x.
func (f *freeSet) containing(x u128) (span, bool) {
	var got span
	found := false
	f.t.DescendLessOrEqual(span{first: x}, func(s span) bool {
		if !s.last.less(x) {
			got, found = s, true
		}
		return false
	})
	return got, found
}

func (f *freeSet) contains(x u128) bool {
	_, ok := f.containing(x)
	return ok
}

// add inserts the interval s, which must not overlap the set, merging with neighbours.
func (f *freeSet) add(s span) {
	f.n = f.n.add(s.size())
	if s.first != (u128{}) {
		if prev, ok := f.containing(s.first.dec()); ok {
			f.t.Delete(prev)
			s.first = prev.first
		}
	}
	if s.last != (u128{^uint64(0), ^uint64(0)}) {
		if next, ok := f.t.Get(span{first: s.last.inc()}); ok {
			f.t.Delete(next)
			s.last = next.last
		}
	}
	f.t.ReplaceOrInsert(s)
}

// take removes x from the set; it reports false if x was not in it.
func (f *freeSet) take(x u128) bool {
	s, ok := f.containing(x)
	if !ok {
		return false
	}
	f.t.Delete(s)
	if s.first.less(x) {
		f.t.ReplaceOrInsert(span{s.first, x.dec()})
	}
	if x.less(s.last) {
		f.t.ReplaceOrInsert(span{x.inc(), s.last})
	}
	f.n = f.n.dec()
	return true
}

// lowest returns the lowest address in the set.
func (f *freeSet) lowest() (u128, bool) {
	s, ok := f.t.Min()
	return s.first, ok
}
