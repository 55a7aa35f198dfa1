package maglev

import "testing"

func TestIsPrimeAgainstSieve(t *testing.T) {
	const limit = 70000
	composite := make([]bool, limit)
	for i := 2; i*i < limit; i++ {
		if !composite[i] {
			for j := i * i; j < limit; j += i {
				composite[j] = true
			}
		}
	}
	for n := -3; n < limit; n++ {
		want := n >= 2 && !composite[n]
		if got := IsPrime(n); got != want {
			t.Fatalf("IsPrime(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestNextPrevPrime(t *testing.T) {
	tests := []struct{ n, next, prev int }{
		{-5, 2, 0}, {0, 2, 0}, {1, 2, 0}, {2, 2, 2}, {3, 3, 3}, {4, 5, 3}, {8, 11, 7},
		{250, 251, 241}, {256, 257, 251}, {16380, 16381, 16369}, {16384, 16411, 16381},
		{65536, 65537, 65521}, {65537, 65537, 65537},
	}
	for _, tc := range tests {
		if got := NextPrime(tc.n); got != tc.next {
			t.Errorf("NextPrime(%d) = %d, want %d", tc.n, got, tc.next)
		}
		if got := PrevPrime(tc.n); got != tc.prev {
			t.Errorf("PrevPrime(%d) = %d, want %d", tc.n, got, tc.prev)
		}
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		name              string
		n, minFactor, max int
		want              int
		wantErr           bool
	}{
		{name: "no backends", n: 0, want: 251},
		{name: "two backends", n: 2, want: 251},
		{name: "three backends need 300", n: 3, want: 509},
		{name: "ten", n: 10, want: 1021},
		{name: "100 need 10000", n: 100, want: 16381},
		{name: "163 still fit 16381", n: 163, want: 16381},
		{name: "164 need 16400", n: 164, want: 32749},
		{name: "655 fit 65521", n: 655, want: 65521},
		{name: "656 hit the cap", n: 656, want: 65537},
		{name: "1000 capped", n: 1000, want: 65537},
		{name: "65537 backends fill the cap", n: 65537, want: 65537},
		{name: "65538 backends do not fit", n: 65538, wantErr: true},
		{name: "defaults spelled out", n: 100, minFactor: 100, max: 65537, want: 16381},
		{name: "factor 10", n: 100, minFactor: 10, want: 1021},
		{name: "Cilium's cap", n: 1000, max: CiliumDefaultSize, want: 16381},
		{name: "cap not prime rounds down", n: 1000, max: 20000, want: 19997},
		{name: "cap below the ladder", n: 1, max: 100, want: 97},
		{name: "cap below the backends", n: 200, max: 100, wantErr: true},
		{name: "cap with no prime", n: 1, max: 1, wantErr: true},
		{name: "negative backends", n: -1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Size(tc.n, tc.minFactor, tc.max)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Size(%d, %d, %d) error = %v, wantErr %v", tc.n, tc.minFactor, tc.max, err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("Size(%d, %d, %d) = %d, want %d", tc.n, tc.minFactor, tc.max, got, tc.want)
			}
			if err == nil && !IsPrime(got) {
				t.Errorf("Size(%d, %d, %d) = %d, not prime", tc.n, tc.minFactor, tc.max, got)
			}
		})
	}
}

func TestSizeIsMonotonicAndBuildable(t *testing.T) {
	prev := 0
	for n := 1; n <= 2000; n++ {
		m, err := Size(n, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if m < prev {
			t.Fatalf("Size(%d) = %d < Size(%d) = %d", n, m, n-1, prev)
		}
		if m < n || (m < DefaultMaxSize && m < 100*n) {
			t.Fatalf("Size(%d) = %d: below 100·N without hitting the cap", n, m)
		}
		prev = m
	}
}
