package metricsdoc

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// Binary names a binary in docs/metrics.md.
type Binary string

// The binaries.
const (
	Controller Binary = "controller"
	Speaker    Binary = "speaker"
)

// Described is what a registered collector describes of one metric.
type Described struct {
	Name   string
	Help   string
	Labels []string // variable labels
	// Type is known for the client library's vectors (which may have no series yet);
	// nil otherwise.
	Type *dto.MetricType
}

// Recorder is a prometheus.Registerer that registers on another and remembers what
// every collector registered through it describes.
type Recorder struct {
	inner prometheus.Registerer

	mu    sync.Mutex
	names map[string]Described
}

var _ prometheus.Registerer = (*Recorder)(nil)

// NewRecorder returns a Recorder registering on inner.
func NewRecorder(inner prometheus.Registerer) *Recorder {
	return &Recorder{inner: inner, names: map[string]Described{}}
}

// Register implements prometheus.Registerer.
func (r *Recorder) Register(c prometheus.Collector) error {
	if err := r.inner.Register(c); err != nil {
		return err
	}
	ds := Describe(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range ds {
		r.names[d.Name] = d
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *Recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer; what was recorded stays.
func (r *Recorder) Unregister(c prometheus.Collector) bool { return r.inner.Unregister(c) }

// Described returns what the registered collectors described, by metric name.
func (r *Recorder) Described() map[string]Described {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.names)
}

// descRE reads prometheus.Desc.String(), the only public view of a Desc.
var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), .*variableLabels: \{([^}]*)\}\}$`)

// Describe returns the metrics c describes.
func Describe(c prometheus.Collector) []Described {
	var typ *dto.MetricType
	switch c.(type) {
	case *prometheus.CounterVec:
		typ = dto.MetricType_COUNTER.Enum()
	case *prometheus.GaugeVec:
		typ = dto.MetricType_GAUGE.Enum()
	case *prometheus.HistogramVec:
		typ = dto.MetricType_HISTOGRAM.Enum()
	case *prometheus.SummaryVec:
		typ = dto.MetricType_SUMMARY.Enum()
	}
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var out []Described
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			// An invalid Desc (its String has the error instead); registration failed already.
			continue
		}
		var name, help string
		fmt.Sscanf(m[1], "%q", &name) //nolint:errcheck // the regexp matched a quoted string
		fmt.Sscanf(m[2], "%q", &help) //nolint:errcheck
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		out = append(out, Described{Name: name, Help: help, Labels: labels, Type: typ})
	}
	return out
}

// DocPath is the path of docs/metrics.md in this source tree.
func DocPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs", "metrics.md")
}

// Documented reads the metrics document at path and returns, for each binary, the
// metric names its tables list. A "## " section belongs to the binaries its title
// starts with: "Both binaries", "Controller", "Speaker" or "Dataplane" (in the speaker);
// other sections (renames, notes) are not read. A table row's first column is its
// metric, in backquotes.
func Documented(path string) (map[Binary][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[Binary][]string{}
	var in []Binary
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if title, ok := strings.CutPrefix(line, "## "); ok {
			in = sectionBinaries(title)
			continue
		}
		cols := strings.Split(line, "|")
		if len(in) == 0 || len(cols) < 3 || strings.TrimSpace(cols[0]) != "" {
			continue
		}
		first := strings.TrimSpace(cols[1])
		name, ok := strings.CutPrefix(first, "`")
		if !ok || !strings.HasSuffix(name, "`") {
			continue
		}
		name = strings.TrimSuffix(name, "`")
		for _, b := range in {
			out[b] = append(out[b], name)
		}
	}
	return out, sc.Err()
}

func sectionBinaries(title string) []Binary {
	switch {
	case strings.HasPrefix(title, "Both binaries"):
		return []Binary{Controller, Speaker}
	case strings.HasPrefix(title, "Controller"):
		return []Binary{Controller}
	case strings.HasPrefix(title, "Speaker"), strings.HasPrefix(title, "Dataplane"):
		return []Binary{Speaker}
	}
	return nil
}

// Lint runs promlint on every family g gathers and on every metric rec recorded that g
// did not gather (a vector without series), built from its description; metrics of
// unknown type without series cannot be linted and are returned apart.
func Lint(g prometheus.Gatherer, rec *Recorder) (problems []promlint.Problem, untyped []string, err error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, nil, err
	}
	gathered := map[string]bool{}
	for _, mf := range mfs {
		gathered[mf.GetName()] = true
	}
	if rec != nil {
		for name, d := range rec.Described() {
			if gathered[name] {
				continue
			}
			if d.Type == nil {
				untyped = append(untyped, name)
				continue
			}
			mfs = append(mfs, synthesize(d))
		}
	}
	slices.Sort(untyped)
	problems, err = promlint.NewWithMetricFamilies(mfs).Lint()
	return problems, untyped, err
}

// synthesize builds a family of one series from d, for the linter.
func synthesize(d Described) *dto.MetricFamily {
	m := &dto.Metric{}
	for _, l := range d.Labels {
		m.Label = append(m.Label, &dto.LabelPair{Name: &l, Value: new("x")})
	}
	switch *d.Type {
	case dto.MetricType_COUNTER:
		m.Counter = &dto.Counter{Value: new(0.0)}
	case dto.MetricType_GAUGE:
		m.Gauge = &dto.Gauge{Value: new(0.0)}
	case dto.MetricType_HISTOGRAM:
		m.Histogram = &dto.Histogram{SampleCount: new(uint64(0)), SampleSum: new(0.0)}
	case dto.MetricType_SUMMARY:
		m.Summary = &dto.Summary{SampleCount: new(uint64(0)), SampleSum: new(0.0)}
	}
	return &dto.MetricFamily{Name: &d.Name, Help: &d.Help, Type: d.Type, Metric: []*dto.Metric{m}}
}

// Check fails t when a metric rec recorded for binary is missing from docs/metrics.md,
// when the document lists one for binary that rec did not record, or when promlint
// finds a problem with any metric g gathers or rec recorded.
func Check(t testing.TB, binary Binary, g prometheus.Gatherer, rec *Recorder) {
	t.Helper()
	doc, err := Documented(DocPath())
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, n := range doc[binary] {
		if documented[n] {
			t.Errorf("docs/metrics.md lists %s twice for the %s", n, binary)
		}
		documented[n] = true
	}
	registered := rec.Described()
	if len(registered) == 0 {
		t.Fatalf("the %s registered no metric through the recorder", binary)
	}
	for _, n := range slices.Sorted(maps.Keys(registered)) {
		if !documented[n] {
			t.Errorf("the %s registers %s, which docs/metrics.md does not list", binary, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(documented)) {
		if _, ok := registered[n]; !ok {
			t.Errorf("docs/metrics.md lists %s for the %s, which does not register it", n, binary)
		}
	}
	problems, untyped, err := Lint(g, rec)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(untyped) > 0 {
		t.Errorf("metrics of unknown type without series, not linted: %v", untyped)
	}
}
