package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

func TestDrawsB2(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	t.Setenv(benchdata.Env, data)
	for _, c := range []benchdata.B2{
		{Case: "Loadstone speaker, BFD 100 ms x 3", Nexthops: 3, RecoveryMs: []float64{0, 250, 280}, WithdrawalMs: []float64{240, 260, 290},
			Timeline: []benchdata.TimelinePoint{{Ms: -100, OKFraction: 1, Probes: 30}, {Ms: 0, OKFraction: 0.6, Probes: 30}, {Ms: 400, OKFraction: 1, Probes: 30}}},
		{Case: "Loadstone speaker, hold timer 3/9 s (no BFD)", Nexthops: 3, RecoveryMs: []float64{7000, 8500}, WithdrawalMs: []float64{7000, 8500},
			Timeline: []benchdata.TimelinePoint{{Ms: 0, OKFraction: 0.6, Probes: 30}, {Ms: 9000, OKFraction: 1, Probes: 30}}},
	} {
		if err := benchdata.Append("b2", c); err != nil {
			t.Fatal(err)
		}
	}
	files, err := run(data, out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(out, "b2-failover.svg"), filepath.Join(out, "b2-timeline.svg")}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	b, err := os.ReadFile(want[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"<svg", "3 next hops, 3 runs", "hold timer 3/9 s (no BFD)", "target with BFD: 300 ms p99"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("b2-failover.svg lacks %q", s)
		}
	}
}
