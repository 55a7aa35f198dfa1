package model

import (
	"strings"
	"testing"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

func TestDefaultDataplaneModeIsPods(t *testing.T) {
	// An unannotated Service in a pool without the field is carried by Loadstone's own
	// dataplane (ipMode Proxy). Changing the default changes what every such Service gets:
	// change this test only with intent.
	if DefaultDataplaneMode != ModePods {
		t.Fatalf("DefaultDataplaneMode = %q, want pods", DefaultDataplaneMode)
	}
}

func TestDataplaneMode(t *testing.T) {
	cfg := &Config{Pools: map[string]*Pool{
		"unset":    {Name: "unset"},
		"pods":     {Name: "pods", DataplaneMode: ModePods},
		"nodeport": {Name: "nodeport", DataplaneMode: ModeNodePort},
		"off":      {Name: "off", DataplaneMode: ModeOff},
	}}
	ann := func(v string) map[string]string { return map[string]string{v1beta1.AnnotationDataplaneMode: v} }
	other := map[string]string{v1beta1.AnnotationAddressPool: "pods", "example.com/x": "nodeport"}
	tests := []struct {
		name        string
		cfg         *Config
		pool        string
		annotations map[string]string
		want        Mode
		wantErr     string
	}{
		{name: "no field, no annotation: default", cfg: cfg, pool: "unset", want: DefaultDataplaneMode},
		{name: "nil annotations", cfg: cfg, pool: "pods", annotations: nil, want: ModePods},
		{name: "pool pods", cfg: cfg, pool: "pods", annotations: map[string]string{}, want: ModePods},
		{name: "pool nodeport", cfg: cfg, pool: "nodeport", want: ModeNodePort},
		{name: "pool off", cfg: cfg, pool: "off", want: ModeOff},
		{name: "other annotations do not count", cfg: cfg, pool: "off", annotations: other, want: ModeOff},
		{name: "annotation over pool", cfg: cfg, pool: "off", annotations: ann("pods"), want: ModePods},
		{name: "annotation nodeport over pods", cfg: cfg, pool: "pods", annotations: ann("nodeport"), want: ModeNodePort},
		{name: "annotation off over pods", cfg: cfg, pool: "pods", annotations: ann("off"), want: ModeOff},
		{name: "annotation over default", cfg: cfg, pool: "unset", annotations: ann("pods"), want: ModePods},
		{name: "unknown pool: default", cfg: cfg, pool: "gone", want: DefaultDataplaneMode},
		{name: "no pool name: default", cfg: cfg, pool: "", want: DefaultDataplaneMode},
		{name: "nil config: default", cfg: nil, pool: "pods", want: DefaultDataplaneMode},
		{name: "nil config, annotation", cfg: nil, pool: "pods", annotations: ann("nodeport"), want: ModeNodePort},
		{name: "invalid annotation: error, mode without it", cfg: cfg, pool: "nodeport", annotations: ann("kube-proxy"),
			want: ModeNodePort, wantErr: `annotation loadstone.io/dataplane-mode: dataplane mode "kube-proxy" is not one of pods, nodeport or off`},
		{name: "case matters", cfg: cfg, pool: "pods", annotations: ann("Off"), want: ModePods, wantErr: `"Off" is not one of`},
		{name: "empty annotation is invalid", cfg: cfg, pool: "unset", annotations: ann(""), want: DefaultDataplaneMode, wantErr: `"" is not one of`},
		{name: "a bare off read by YAML as false gets a hint", cfg: cfg, pool: "pods", annotations: ann("false"), want: ModePods,
			wantErr: `"false" is not one of pods, nodeport or off (YAML reads a bare off as false: write "off" in quotes)`},
		{name: "spaces are not trimmed", cfg: cfg, pool: "off", annotations: ann(" pods"), want: ModeOff, wantErr: `" pods" is not one of`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DataplaneMode(tc.cfg, tc.pool, tc.annotations)
			if got != tc.want {
				t.Errorf("mode = %q, want %q", got, tc.want)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestModeServes(t *testing.T) {
	for m, want := range map[Mode]bool{ModePods: true, ModeNodePort: true, ModeOff: false, "": false, "x": false} {
		if got := m.Serves(); got != want {
			t.Errorf("%q.Serves() = %v, want %v", m, got, want)
		}
	}
}

func TestBuildPoolDataplaneMode(t *testing.T) {
	withMode := func(p v1beta1.IPAddressPool, m v1beta1.DataplaneMode) v1beta1.IPAddressPool {
		p.Spec.DataplaneMode = m
		return p
	}
	cfg, problems := Build(Snapshot{Pools: []v1beta1.IPAddressPool{
		withMode(pool("a", 0, "203.0.113.0/28"), v1beta1.DataplaneModePods),
		withMode(pool("b", 0, "203.0.113.16/28"), v1beta1.DataplaneModeNodePort),
		withMode(pool("c", 0, "203.0.113.32/28"), v1beta1.DataplaneModeOff),
		pool("d", 0, "203.0.113.48/28"),
	}})
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	for name, want := range map[string]Mode{"a": ModePods, "b": ModeNodePort, "c": ModeOff, "d": ""} {
		if got := cfg.Pools[name].DataplaneMode; got != want {
			t.Errorf("pool %s: DataplaneMode = %q, want %q", name, got, want)
		}
	}

	// A bad value (the API server's enum rejects it; an older CRD might not) is a problem of
	// the pool, which keeps its last good version: the mode in force does not change.
	next, problems := Build(Snapshot{Previous: cfg, Pools: []v1beta1.IPAddressPool{
		withMode(pool("a", 0, "203.0.113.0/28"), "xdp"),
		withMode(pool("b", 0, "203.0.113.16/28"), v1beta1.DataplaneModeOff),
		withMode(pool("c", 0, "203.0.113.32/28"), v1beta1.DataplaneModeOff),
		pool("d", 0, "203.0.113.48/28"),
	}})
	if len(problems) != 1 || problems[0].Field != "spec.dataplaneMode" || !strings.Contains(problems[0].Message, `"xdp" is not one of pods, nodeport or off`) {
		t.Fatalf("problems = %v, want one about spec.dataplaneMode of pool a", problems)
	}
	if got := next.Pools["a"].DataplaneMode; got != ModePods {
		t.Errorf("pool a after a bad edit: %q, want its last good mode pods", got)
	}
	// A mode change alone is a change of the pool (it is not "unchanged" against Previous).
	if got := next.Pools["b"].DataplaneMode; got != ModeOff {
		t.Errorf("pool b after editing its mode: %q, want off", got)
	}
	if equalPool(cfg.Pools["b"], next.Pools["b"]) {
		t.Error("equalPool ignores the dataplane mode")
	}
}
