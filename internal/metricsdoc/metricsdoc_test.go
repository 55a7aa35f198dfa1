package metricsdoc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestDescribe(t *testing.T) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a_total", Help: `say "hi"`}, []string{"x", "y"})
	ds := Describe(v)
	if len(ds) != 1 || ds[0].Name != "a_total" || ds[0].Help != `say "hi"` || !slices.Equal(ds[0].Labels, []string{"x", "y"}) || ds[0].Type == nil {
		t.Fatalf("Describe = %+v", ds)
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "b", Help: "h", ConstLabels: prometheus.Labels{"k": "v"}}, func() float64 { return 1 })
	ds = Describe(g)
	if len(ds) != 1 || ds[0].Name != "b" || len(ds[0].Labels) != 0 || ds[0].Type != nil {
		t.Fatalf("Describe = %+v", ds)
	}
}

// TestLintFindsChildlessVectors: a misnamed vector is found even without series, which
// a scrape would not show; a well-named one is not flagged.
func TestLintFindsChildlessVectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := NewRecorder(reg)
	rec.MustRegister(
		prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_things_total", Help: "h"}, []string{"l"}),
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_requests", Help: "h"}, []string{"l"}),
		prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x_latency_milliseconds", Help: "h"}, []string{"l"}),
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_good_total", Help: "h"}, []string{"l"}),
	)
	problems, untyped, err := Lint(reg, rec)
	if err != nil || len(untyped) != 0 {
		t.Fatal(err, untyped)
	}
	got := map[string]bool{}
	for _, p := range problems {
		got[p.Metric] = true
	}
	for _, bad := range []string{"x_things_total", "x_requests", "x_latency_milliseconds"} {
		if !got[bad] {
			t.Errorf("promlint did not flag %s; problems %v", bad, problems)
		}
	}
	if got["x_good_total"] {
		t.Errorf("flagged x_good_total: %v", problems)
	}
}

func TestDocumented(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.md")
	doc := "# M\n\n| metric | type |\n|---|---|\n| `not_in_a_section` | gauge |\n\n" +
		"## Both binaries\n\n| metric | type |\n|---|---|\n| `b_info` | gauge |\n\n" +
		"## Controller (x)\n\n| `c_total` | counter |\n\n## Speaker\n\n### Sub\n\n| `s_total` | counter |\n\n" +
		"## Dataplane\n\n| `d_total` | counter |\n\n## Renamed\n\n| `old` | `new` |\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Documented(path)
	if err != nil {
		t.Fatal(err)
	}
	if c := got[Controller]; !slices.Equal(c, []string{"b_info", "c_total"}) {
		t.Errorf("controller %v", c)
	}
	if s := got[Speaker]; !slices.Equal(s, []string{"b_info", "s_total", "d_total"}) {
		t.Errorf("speaker %v", s)
	}
}

// TestDocument: the real document lists metrics for both binaries, each once per
// binary, all with Loadstone's prefix. (Which ones exist is checked by the binaries'
// tests: controller/app and speaker.)
func TestDocument(t *testing.T) {
	got, err := Documented(DocPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []Binary{Controller, Speaker} {
		if len(got[b]) < 5 {
			t.Errorf("%s: only %v", b, got[b])
		}
		seen := map[string]bool{}
		for _, n := range got[b] {
			if seen[n] {
				t.Errorf("%s: %s listed twice", b, n)
			}
			seen[n] = true
			if !strings.HasPrefix(n, "loadstone_") {
				t.Errorf("%s: %s lacks the loadstone_ prefix", b, n)
			}
		}
	}
}
