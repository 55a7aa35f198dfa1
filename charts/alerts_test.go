package charts_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

func filesDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "loadstone", "files") }

// promtoolBinary finds the pinned promtool: LOADSTONE_PROMTOOL (make test sets it), else
// hack/tools.sh builds or finds it.
func promtoolBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LOADSTONE_PROMTOOL"); p != "" {
		return p
	}
	if testing.Short() {
		t.Skip("promtool: set LOADSTONE_PROMTOOL (make test does); not needed with -short")
	}
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "hack", "tools.sh"), "promtool")
	cmd.Dir = testenv.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/tools.sh promtool: %v: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtoolBinary(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRulesPromtool: alerts.yaml is a valid rule file and its unit tests pass.
func TestAlertRulesPromtool(t *testing.T) {
	runPromtool(t, filesDir(), "check", "rules", "alerts.yaml")
	runPromtool(t, filesDir(), "test", "rules", "alerts_test.yaml")
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filesDir(), "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	if len(rf.Groups) == 0 {
		t.Fatal("alerts.yaml has no rule group")
	}
	return rf
}

// documentedMetrics reads the metric names and types of docs/metrics.md's tables (first
// and second columns), leaving out the table of renamed (old) names.
func documentedMetrics(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(loadstone_[a-z0-9_]+)` \\| (counter|gauge|histogram) \\|")
	names := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## Renamed") {
			break
		}
		if m := row.FindStringSubmatch(line); m != nil {
			names[m[1]] = m[2]
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d metrics in docs/metrics.md: has its table format changed?", len(names))
	}
	return names
}

var metricName = regexp.MustCompile(`loadstone_[a-z0-9_]+`)

// undocumented returns the loadstone_ metrics expr names that docs/metrics.md does not
// list (a histogram's _bucket, _sum and _count series count as the histogram).
func undocumented(doc map[string]string, expr string) []string {
	var missing []string
	for _, n := range metricName.FindAllString(expr, -1) {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(n, suf); ok && doc[s] == "histogram" {
				base = s
			}
		}
		if doc[base] == "" || (base == n && doc[n] == "histogram") {
			missing = append(missing, n)
		}
	}
	return missing
}

func TestUndocumentedCatchesUnknownNames(t *testing.T) {
	doc := map[string]string{"loadstone_a_seconds": "histogram", "loadstone_b": "gauge"}
	got := undocumented(doc, `rate(loadstone_a_seconds_bucket[5m]) + loadstone_b_count + loadstone_c + loadstone_a_seconds_sum + loadstone_b + loadstone_a_seconds`)
	if want := []string{"loadstone_b_count", "loadstone_c", "loadstone_a_seconds"}; !slices.Equal(got, want) {
		t.Errorf("undocumented = %v, want %v", got, want)
	}
}

// TestAlertsAreWellFormed: every alert names only documented metrics, has a severity,
// a summary and a description, and alerts_test.yaml tests it both firing and silent.
func TestAlertsAreWellFormed(t *testing.T) {
	doc := documentedMetrics(t)
	rf := readRules(t)
	tb, err := os.ReadFile(filepath.Join(filesDir(), "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tb, &tests); err != nil {
		t.Fatalf("alerts_test.yaml: %v", err)
	}
	firing, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if m := undocumented(doc, r.Expr); len(m) > 0 {
				t.Errorf("alert %s uses metrics not in docs/metrics.md: %v", r.Alert, m)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, a)
				}
			}
			if !firing[r.Alert] || !silent[r.Alert] {
				t.Errorf("alert %s: alerts_test.yaml tests it firing %v, silent %v; want both", r.Alert, firing[r.Alert], silent[r.Alert])
			}
		}
	}
	if n < 10 {
		t.Errorf("alerts.yaml has %d alerts, want at least 10", n)
	}
}

// dashboardExprs returns every query of the dashboard's panels.
func dashboardExprs(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard has title %q, uid %q; want both", d.Title, d.UID)
	}
	exprs := map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without a query", p.Title)
			}
			exprs[p.Title] = append(exprs[p.Title], tg.Expr)
		}
		if len(exprs[p.Title]) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	return exprs
}

// TestDashboardNamesOnlyDocumentedMetrics: every metric a dashboard query names is in
// docs/metrics.md, and the dashboard shows what the chart promises.
func TestDashboardNamesOnlyDocumentedMetrics(t *testing.T) {
	doc := documentedMetrics(t)
	b, err := os.ReadFile(filepath.Join(filesDir(), "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for title, exprs := range dashboardExprs(t, b) {
		for _, e := range exprs {
			if m := undocumented(doc, e); len(m) > 0 {
				t.Errorf("panel %q uses metrics not in docs/metrics.md: %v", title, m)
			}
			for _, n := range metricName.FindAllString(e, -1) {
				used[n] = true
			}
		}
	}
	for _, want := range []string{"loadstone_controller_pool_addresses_in_use", "loadstone_controller_services_unsatisfied",
		"loadstone_speaker_announced", "loadstone_speaker_layer2_failovers_total", "loadstone_speaker_layer2_handovers_total",
		"loadstone_speaker_bgp_session_up", "loadstone_speaker_bfd_sessions", "loadstone_dataplane_sync_duration_seconds_bucket",
		"loadstone_dataplane_sync_failures_total", "loadstone_build_info"} {
		if !used[want] {
			t.Errorf("dashboard shows no %s", want)
		}
	}
}

// TestDashboardQueriesParse: every dashboard query is valid PromQL, checked by promtool
// as recording rules (Grafana's $__rate_interval replaced by a duration).
func TestDashboardQueriesParse(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(filesDir(), "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for _, exprs := range dashboardExprs(t, b) {
		for _, e := range exprs {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", len(rules)), Expr: strings.ReplaceAll(e, "$__rate_interval", "5m")})
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard-rules.yaml"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "dashboard-rules.yaml")
}
