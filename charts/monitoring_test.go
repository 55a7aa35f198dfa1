package charts_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/loadstone-lb/loadstone/internal/testenv"
)

// monitoringObjects returns the rendered objects the monitoring values add.
func monitoringObjects(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	got := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		switch {
		case o.GetKind() == "Service" && strings.HasSuffix(o.GetName(), "-metrics"),
			o.GetKind() == "ConfigMap" && o.GetLabels()["grafana_dashboard"] != "",
			o.GetAPIVersion() == "monitoring.coreos.com/v1":
			got[o.GetKind()+"/"+o.GetName()] = o
		}
	}
	return got
}

func str(t *testing.T, o *unstructured.Unstructured, path ...string) string {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil {
		t.Fatalf("%s %s: %v: %v", o.GetKind(), o.GetName(), path, err)
	}
	s, _ := v.(string)
	return s
}

func endpoint(t *testing.T, o *unstructured.Unstructured, field string) map[string]any {
	t.Helper()
	eps, _, _ := unstructured.NestedSlice(o.Object, "spec", field)
	if len(eps) != 1 {
		t.Fatalf("%s has %d %s, want 1", o.GetKind(), len(eps), field)
	}
	return eps[0].(map[string]any)
}

func TestMonitoringDefaultsRenderNothing(t *testing.T) {
	if got := monitoringObjects(mustRender(t)); len(got) != 0 {
		t.Errorf("default values render monitoring objects: %v", got)
	}
}

func TestMonitoringObjects(t *testing.T) {
	objs := mustRender(t, "metrics.service.enabled=true", "metrics.serviceMonitor.enabled=true",
		"metrics.serviceMonitor.labels.release=kps", "metrics.podMonitor.enabled=true",
		"metrics.podMonitor.authorizationSecret.name=scrape-token", "prometheusRule.enabled=true",
		"prometheusRule.labels.release=kps", "dashboard.enabled=true")
	got := monitoringObjects(objs)
	want := map[string]string{
		"Service/loadstone-controller-metrics": "v1", "Service/loadstone-speaker-metrics": "v1",
		"ServiceMonitor/loadstone": "monitoring.coreos.com/v1", "PodMonitor/loadstone": "monitoring.coreos.com/v1",
		"PrometheusRule/loadstone": "monitoring.coreos.com/v1", "ConfigMap/loadstone-dashboard": "v1",
	}
	for k, api := range want {
		o := got[k]
		if o == nil {
			t.Errorf("no %s rendered (got %v)", k, got)
			continue
		}
		if o.GetAPIVersion() != api || o.GetNamespace() != "loadstone-system" {
			t.Errorf("%s: apiVersion %q namespace %q, want %q loadstone-system", k, o.GetAPIVersion(), o.GetNamespace(), api)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rendered %d monitoring objects, want %d: %v", len(got), len(want), got)
	}
	if t.Failed() {
		return
	}

	// The Services select each component's pods on their metrics port.
	for _, c := range []string{"controller", "speaker"} {
		svc := got["Service/loadstone-"+c+"-metrics"]
		if s := str(t, svc, "spec", "selector", "app.kubernetes.io/component"); s != c {
			t.Errorf("%s selects component %q", svc.GetName(), s)
		}
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		if len(ports) != 1 || ports[0].(map[string]any)["targetPort"] != "metrics" || fmt.Sprint(ports[0].(map[string]any)["port"]) != "7472" {
			t.Errorf("%s ports %v, want metrics 7472", svc.GetName(), ports)
		}
	}
	// Secure metrics: https, self-signed certificate, a bearer token.
	sm := got["ServiceMonitor/loadstone"]
	if sm.GetLabels()["release"] != "kps" {
		t.Errorf("ServiceMonitor labels %v lack release=kps", sm.GetLabels())
	}
	ep := endpoint(t, sm, "endpoints")
	if ep["port"] != "metrics" || ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" ||
		!reflect.DeepEqual(ep["tlsConfig"], map[string]any{"insecureSkipVerify": true}) {
		t.Errorf("ServiceMonitor endpoint %v, want port metrics, https, the token file, insecureSkipVerify", ep)
	}
	pm := endpoint(t, got["PodMonitor/loadstone"], "podMetricsEndpoints")
	if pm["port"] != "metrics" || pm["scheme"] != "https" ||
		!reflect.DeepEqual(pm["authorization"], map[string]any{"type": "Bearer", "credentials": map[string]any{"name": "scrape-token", "key": "token"}}) {
		t.Errorf("PodMonitor endpoint %v, want port metrics, https, Bearer from scrape-token", pm)
	}
	// The monitors select this release's objects.
	for _, k := range []string{"ServiceMonitor/loadstone", "PodMonitor/loadstone"} {
		if s := str(t, got[k], "spec", "selector", "matchLabels", "app.kubernetes.io/instance"); s != "loadstone" {
			t.Errorf("%s selects instance %q, want loadstone", k, s)
		}
	}

	// The PrometheusRule's spec is files/alerts.yaml, unchanged by templating.
	pr := got["PrometheusRule/loadstone"]
	if pr.GetLabels()["release"] != "kps" {
		t.Errorf("PrometheusRule labels %v lack release=kps", pr.GetLabels())
	}
	raw, err := os.ReadFile(filepath.Join(filesDir(), "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var fileSpec map[string]any
	if err := yaml.Unmarshal(raw, &fileSpec); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pr.Object["spec"], fileSpec) {
		t.Error("PrometheusRule spec differs from files/alerts.yaml")
	}

	// The dashboard ConfigMap carries dashboard.json byte for byte, with the sidecar label.
	cm := got["ConfigMap/loadstone-dashboard"]
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v, want grafana_dashboard=1", cm.GetLabels())
	}
	dash, err := os.ReadFile(filepath.Join(filesDir(), "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if str(t, cm, "data", "loadstone.json") != string(dash) {
		t.Error("dashboard ConfigMap data loadstone.json differs from files/dashboard.json")
	}
}

func TestMonitoringPlainHTTP(t *testing.T) {
	got := monitoringObjects(mustRender(t, "metrics.secure=false", "metrics.service.enabled=true",
		"metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true", "metrics.serviceMonitor.interval=30s"))
	for k, field := range map[string]string{"ServiceMonitor/loadstone": "endpoints", "PodMonitor/loadstone": "podMetricsEndpoints"} {
		o := got[k]
		if o == nil {
			t.Fatalf("no %s rendered", k)
		}
		ep := endpoint(t, o, field)
		if ep["scheme"] != "http" || ep["tlsConfig"] != nil || ep["bearerTokenFile"] != nil || ep["authorization"] != nil {
			t.Errorf("%s endpoint %v, want plain http without TLS or token", k, ep)
		}
	}
	if ep := endpoint(t, got["ServiceMonitor/loadstone"], "endpoints"); ep["interval"] != "30s" {
		t.Errorf("ServiceMonitor interval %v, want 30s", ep["interval"])
	}
}

func TestMonitoringRefusesUselessSettings(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"metrics.enabled=false", "metrics.service.enabled=true"}, "need metrics.enabled=true"},
		{[]string{"metrics.serviceMonitor.enabled=true"}, "needs metrics.service.enabled=true"},
		{[]string{"metrics.podMonitor.enabled=true"}, "needs metrics.podMonitor.authorizationSecret.name"},
		{[]string{"prometheusRule.enable=true"}, "additional properties 'enable' not allowed"},
		{[]string{"metrics.serviceMonitor.interval=often"}, "at '/metrics/serviceMonitor/interval'"},
	} {
		_, stderr, err := render(t, tc.set...)
		if err == nil {
			t.Errorf("--set %v rendered", tc.set)
			continue
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("--set %v: helm said %q, want it to contain %q", tc.set, stderr, tc.want)
		}
	}
}

// TestMonitoringRulesAsRendered: the rules as the PrometheusRule carries them pass promtool.
func TestMonitoringRulesAsRendered(t *testing.T) {
	objs := mustRender(t, "prometheusRule.enabled=true")
	pr := monitoringObjects(objs)["PrometheusRule/loadstone"]
	if pr == nil {
		t.Fatal("no PrometheusRule rendered")
	}
	b, err := yaml.Marshal(pr.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "rules.yaml")
}

// TestMonitoringCoreObjectsAccepted: the metrics Services and the dashboard ConfigMap pass
// the real API server's validation (server-side dry run). The monitoring.coreos.com
// objects need prometheus-operator's CRDs, which envtest does not have.
func TestMonitoringCoreObjectsAccepted(t *testing.T) {
	objs := mustRender(t, "metrics.service.enabled=true", "dashboard.enabled=true")
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName("loadstone-system")
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range monitoringObjects(objs) {
		n++
		if err := env.Client.Create(ctx, o, client.DryRunAll); err != nil {
			t.Errorf("%s %s rejected by the API server: %v", o.GetKind(), o.GetName(), err)
		}
	}
	if n != 3 {
		t.Errorf("dry-ran %d objects, want 3 (two Services, one ConfigMap)", n)
	}
}
