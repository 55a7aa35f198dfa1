package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

func TestDrawsB9(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	t.Setenv(benchdata.Env, data)
	for _, c := range []string{"FRR ← Loadstone", "BIRD ← Loadstone"} {
		rec := benchdata.B9{Case: c, Prefixes: 10000, InstallMs: []float64{1600, 1800, 3500}, WithdrawMs: []float64{900, 1000, 1100},
			CPUAnnounceS: []float64{0.9, 1, 1.1}, CPUWithdrawS: []float64{0.5, 0.5, 0.6}, PeakRSSMiB: []float64{60, 62, 64}}
		if err := benchdata.Append("b9", rec); err != nil {
			t.Fatal(err)
		}
	}
	files, err := run(data, out)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(out, "b9-install.svg")
	if len(files) != 1 || files[0] != want {
		t.Fatalf("wrote %v, want [%s]", files, want)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"<svg", "← Loadstone", "3 runs", "target: 10k prefixes installed"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("the B9 picture lacks %q", s)
		}
	}
}
