package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	stdlog "log"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"DEBUG", slog.LevelDebug, false},
		{"Warn", slog.LevelWarn, false},
		{"warning", 0, true},
		{"info+2", 0, true}, // slog.Level's own text form; not a documented value
		{"", 0, true},
		{"trace", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLevel(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseLevel(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "want debug, info, warn or error") {
					t.Errorf("error %q does not list the valid levels", err)
				}
				return
			}
			if got != tc.want {
				t.Errorf("ParseLevel(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestAddFlags(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantLevel   slog.Level
		wantVersion bool
		wantErr     string
	}{
		{"default", nil, slog.LevelInfo, false, ""},
		{"log-level", []string{"--log-level=warn"}, slog.LevelWarn, false, ""},
		{"single dash", []string{"-log-level", "error"}, slog.LevelError, false, ""},
		{"v alias", []string{"-v"}, slog.LevelDebug, false, ""},
		{"v false", []string{"-v=false"}, slog.LevelInfo, false, ""},
		{"later wins", []string{"-v", "--log-level=error"}, slog.LevelError, false, ""},
		{"later wins v", []string{"--log-level=error", "-v"}, slog.LevelDebug, false, ""},
		{"version", []string{"--version"}, slog.LevelInfo, true, ""},
		{"invalid", []string{"--log-level=verbose"}, 0, false, `invalid value "verbose" for flag -log-level: invalid log level "verbose": want debug, info, warn or error`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := AddFlags(fs)
			err := fs.Parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Level != tc.wantLevel || f.Version != tc.wantVersion {
				t.Errorf("level %v version %v, want %v %v", f.Level, f.Version, tc.wantLevel, tc.wantVersion)
			}
		})
	}
}

// records decodes the JSON lines in buf.
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(buf)
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("output is not JSON lines: %v", err)
		}
		out = append(out, m)
	}
}

// TestSetupRoutesEverything: klog (legacy and structured calls, as client-go and leader
// election use them), controller-runtime's logger, slog's default and package log, and the
// returned logger all write JSON records through the one handler, with the level filter and the common attributes.
// Not parallel: Setup installs process-wide loggers.
func TestSetupRoutesEverything(t *testing.T) {
	prevDefault := slog.Default()
	var buf bytes.Buffer
	var level slog.LevelVar // info
	log := Setup(Config{Output: &buf, Level: &level, Attrs: []any{"node", "n1"}})
	t.Cleanup(func() { klog.ClearLogger(); slog.SetDefault(prevDefault) })

	klog.Info("attempting to acquire leader lease loadstone-system/loadstone-controller...")
	klog.InfoS("Caches populated", "type", "*v1.Service")
	klog.ErrorS(errors.New("connection refused"), "Failed to watch", "reflector", "r")
	klog.V(2).Info("request trace") // legacy verbosity stays 0: dropped
	klog.Background().V(4).Info("contextual debug")
	ctrl.Log.WithName("manager").Info("Starting workers", "worker count", 16)
	ctrl.Log.V(1).Info("controller-runtime debug")
	log.Debug("own debug")
	log.Warn("own warning", "service", "ns/s")
	stdlog.Print("package log line")
	slog.Error("slog default", "err", "boom")
	klog.Flush()

	type rec struct{ msg, level, extraKey, extraVal string }
	want := []rec{
		{"attempting to acquire leader lease loadstone-system/loadstone-controller...", "INFO", "", ""},
		{"Caches populated", "INFO", "type", "*v1.Service"},
		{"Failed to watch", "ERROR", "err", "connection refused"},
		{"Starting workers", "INFO", "logger", "manager"},
		{"own warning", "WARN", "service", "ns/s"},
		{"package log line", "INFO", "", ""},
		{"slog default", "ERROR", "err", "boom"},
	}
	got := records(t, &buf)
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g["msg"] != w.msg || g["level"] != w.level || g["node"] != "n1" {
			t.Errorf("record %d = %v, want msg %q level %s node n1", i, g, w.msg, w.level)
		}
		if w.extraKey != "" && g[w.extraKey] != w.extraVal {
			t.Errorf("record %d = %v, want %s=%q", i, g, w.extraKey, w.extraVal)
		}
	}

	// At debug the V(n) records pass too, still as JSON.
	buf.Reset()
	level.Set(slog.LevelDebug)
	klog.Background().V(4).Info("contextual debug")
	ctrl.Log.V(1).Info("controller-runtime debug")
	klog.V(2).Info("request trace") // still dropped by klog's own verbosity
	got = records(t, &buf)
	if len(got) != 2 || got[0]["msg"] != "contextual debug" || got[0]["level"] != "DEBUG" ||
		got[1]["msg"] != "controller-runtime debug" || got[1]["level"] != "DEBUG" || got[1]["node"] != "n1" {
		t.Errorf("debug records %v, want the contextual klog one and controller-runtime's, both DEBUG", got)
	}
}

func TestReadBuild(t *testing.T) {
	b := ReadBuild()
	if b.Version != version || b.GoVersion == "" {
		t.Errorf("ReadBuild() = %+v", b)
	}
	s := b.String()
	if !strings.HasPrefix(s, "version "+version+", commit ") || !strings.HasSuffix(s, b.GoVersion) {
		t.Errorf("String() = %q", s)
	}
	attrs := b.LogAttrs()
	if len(attrs) != 6 || attrs[0] != "version" || attrs[2] != "commit" || attrs[4] != "goVersion" {
		t.Errorf("LogAttrs() = %v", attrs)
	}
}
