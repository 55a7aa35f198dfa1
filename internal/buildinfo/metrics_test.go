package buildinfo

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/loadstone-lb/loadstone/internal/logging"
)

func TestCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(logging.Build{Version: "v1.2.3", Commit: "0123abc-dirty", GoVersion: "go1.26.0"}))
	want := `
# HELP loadstone_build_info Always 1; the labels say what the binary was built from: the release (version), the VCS revision and the Go toolchain (goversion).
# TYPE loadstone_build_info gauge
loadstone_build_info{goversion="go1.26.0",revision="0123abc-dirty",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), Name); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterRunningBinary(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("got %d families, want 1 with one series", len(mfs))
	}
	b := logging.ReadBuild()
	got := map[string]string{}
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	if got["version"] != b.Version || got["revision"] != b.Commit || got["goversion"] != b.GoVersion || b.GoVersion == "" {
		t.Errorf("labels %v, want version %q revision %q goversion %q", got, b.Version, b.Commit, b.GoVersion)
	}
	// A second registration on the same registry is refused, not silently doubled.
	if err := Register(reg); err == nil {
		t.Error("second Register succeeded")
	}
}
