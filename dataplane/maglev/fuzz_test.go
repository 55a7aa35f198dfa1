package maglev

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// fuzzBackends decodes data into backends: records separated by '\n', each a weight byte
// followed by the ID. The weight byte is taken modulo 8, and 7 means an invalid -1.
func fuzzBackends(data []byte) []Backend {
	var bs []Backend
	for rec := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(rec) == 0 {
			continue
		}
		w := int(rec[0] % 8)
		if w == 7 {
			w = -1
		}
		bs = append(bs, Backend{ID: string(rec[1:]), Weight: w})
	}
	return bs
}

func FuzzBuild(f *testing.F) {
	f.Add([]byte("\x0110.0.0.1:8080\n\x0010.0.0.2:8080\n\x0310.0.0.3:8080"), uint16(13))
	f.Add([]byte("\x01a\n\x01a\n\x02b"), uint16(7))
	f.Add([]byte("\x01a\n\x01b\n\x01c"), uint16(3))
	f.Add([]byte("\x01a\n\x01b\n\x01c"), uint16(2))
	f.Add([]byte("\x06x\n\x01y"), uint16(100))
	f.Add([]byte("\x07neg"), uint16(251))
	f.Add([]byte("\x01"), uint16(5))
	f.Add([]byte{}, uint16(11))
	f.Fuzz(func(t *testing.T, data []byte, mSeed uint16) {
		bs := fuzzBackends(data)
		m := int(mSeed % 2048)
		tab, err := Build(bs, m)
		if err != nil {
			if tab != nil {
				t.Fatalf("table returned with error %v", err)
			}
			if !errors.Is(err, ErrNotPrime) && !errors.Is(err, ErrNoBackends) &&
				!errors.Is(err, ErrTooManyBackends) && !errors.Is(err, ErrBadBackend) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(tab.Entries) != m {
			t.Fatalf("%d entries, want %d", len(tab.Entries), m)
		}
		if !slices.IsSortedFunc(tab.Backends, func(a, b Backend) int {
			return bytes.Compare([]byte(a.ID), []byte(b.ID))
		}) {
			t.Fatalf("backends not sorted: %v", tab.Backends)
		}
		for i := 1; i < len(tab.Backends); i++ {
			if tab.Backends[i].ID == tab.Backends[i-1].ID {
				t.Fatalf("duplicate backend %q", tab.Backends[i].ID)
			}
		}
		counts := make([]int, len(tab.Backends))
		for i, e := range tab.Entries {
			if e < 0 || int(e) >= len(tab.Backends) {
				t.Fatalf("entry %d = %d, outside [0, %d)", i, e, len(tab.Backends))
			}
			counts[e]++
		}
		// M ≥ N here (Build checked it): every backend holds at least one entry.
		for i, c := range counts {
			if c == 0 {
				t.Fatalf("backend %q (weight %d) holds no entry of %d", tab.Backends[i].ID, tab.Backends[i].Weight, m)
			}
		}
		// Input order is irrelevant.
		rev := slices.Clone(bs)
		slices.Reverse(rev)
		again, err := Build(rev, m)
		if err != nil {
			t.Fatalf("reversed input: %v", err)
		}
		if !slices.Equal(tab.Entries, again.Entries) || !slices.Equal(tab.Backends, again.Backends) {
			t.Fatal("reversed input built a different table")
		}
	})
}
