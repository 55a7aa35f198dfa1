package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

func TestDrawsFromRecords(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	t.Setenv(benchdata.Env, data)
	for _, c := range []string{"node link cut", "speaker SIGTERM (graceful)"} {
		rec := benchdata.B1{Case: c, HandoverMs: []float64{300, 320, 410}, GapMs: []float64{0, 5, 10},
			Timeline: []benchdata.TimelinePoint{{Ms: -100, OKFraction: 1, Probes: 30}, {Ms: 0, OKFraction: 0.2, Probes: 30}, {Ms: 400, OKFraction: 1, Probes: 30}}}
		if err := benchdata.Append("b1", rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{1000, 5000} {
		if err := benchdata.Append("b6", benchdata.B6{Services: n, FloorSeconds: float64(n) / 100, LoadstoneSecs: float64(n) / 90}); err != nil {
			t.Fatal(err)
		}
	}
	files, err := run(data, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("wrote %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "<svg") {
			t.Errorf("%s is not an SVG", f)
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, "b1-handover.svg"))
	if !strings.Contains(string(b), "node link cut (3 runs)") {
		t.Error("handover plot lacks the case label")
	}
}

func TestNoRecordsNoPictures(t *testing.T) {
	files, err := run(t.TempDir(), t.TempDir())
	if err != nil || len(files) != 0 {
		t.Errorf("files %v, err %v", files, err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "b6.jsonl"), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(bad, t.TempDir()); err == nil || !strings.Contains(err.Error(), "b6.jsonl:1") {
		t.Errorf("a broken record: %v", err)
	}
}
