package logging

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// version is the release this binary was built from and commit the VCS revision; `make
// build` sets both with -ldflags -X. Without commit, the revision Go stamped into the
// binary (vcs.revision) is used, when there is one.
var (
	version = "dev"
	commit  = ""
)

// levelNames are the values --log-level accepts, in order of severity.
var levelNames = []struct {
	name  string
	level slog.Level
}{{"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}}

// ParseLevel parses a --log-level value: debug, info, warn or error (any case).
func ParseLevel(s string) (slog.Level, error) {
	for _, l := range levelNames {
		if strings.EqualFold(s, l.name) {
			return l.level, nil
		}
	}
	return 0, fmt.Errorf("invalid log level %q: want debug, info, warn or error", s)
}

// levelValue is the flag.Value of --log-level.
type levelValue struct{ level *slog.Level }

func (v levelValue) String() string {
	if v.level == nil {
		return "info"
	}
	for _, l := range levelNames {
		if l.level == *v.level {
			return l.name
		}
	}
	return v.level.String()
}

func (v levelValue) Set(s string) error {
	l, err := ParseLevel(s)
	if err != nil {
		return err
	}
	*v.level = l
	return nil
}

// Flags holds the values of the flags AddFlags registers.
type Flags struct {
	// Level is the --log-level value (default info).
	Level slog.Level
	// Version is true when --version was given.
	Version bool
}

// AddFlags registers --log-level, -v (the same as --log-level=debug; the later of the two
// wins) and --version on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{Level: slog.LevelInfo}
	fs.Var(levelValue{&f.Level}, "log-level", "log level: debug, info, warn or error")
	fs.BoolFunc("v", "debug logs (the same as --log-level=debug)", func(s string) error {
		on, err := parseBool(s)
		if err == nil && on {
			f.Level = slog.LevelDebug
		}
		return err
	})
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
	return f
}

// parseBool parses a boolean flag's value the way package flag does.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "t", "true":
		return true, nil
	case "0", "f", "false":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", s)
}

// Config configures Setup.
type Config struct {
	// Output receives the JSON records (default os.Stderr).
	Output io.Writer
	// Level is the least level written (nil: info); a *slog.LevelVar changes it later.
	Level slog.Leveler
	// Attrs are key-value pairs added to every record, klog's and controller-runtime's
	// included (the speaker adds its node).
	Attrs []any
}

// Setup returns the process's logger and installs its handler as controller-runtime's,
// klog's and slog's default logger (which package log writes through too). Call it once,
// first thing in main, before anything logs.
func Setup(cfg Config) *slog.Logger {
	out := cfg.Output
	if out == nil {
		out = os.Stderr
	}
	log := slog.New(debugLevels{slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.Level})}).With(cfg.Attrs...)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	// Also as klog's contextual logger, so klog.FromContext and klog.Background skip the
	// detour through klog's formatter.
	klog.SetSlogLogger(log)
	slog.SetDefault(log)
	return log
}

// Build describes the running binary.
type Build struct {
	// Version is the release set at link time, "dev" otherwise.
	Version string
	// Commit is the VCS revision the binary was built from ("" when unknown), with the
	// suffix "-dirty" when the tree had uncommitted changes (as far as Go's stamp or the
	// Makefile know).
	Commit string
	// GoVersion is the Go toolchain that built it.
	GoVersion string
}

// ReadBuild returns the running binary's build description.
func ReadBuild() Build {
	b := Build{Version: version, Commit: commit, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if b.Commit != "" || !ok {
		return b
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if b.Commit != "" && dirty {
		b.Commit += "-dirty"
	}
	return b
}

// String is b for --version: "version v1.2.3, commit 0123abc, go1.26.0".
func (b Build) String() string {
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("version %s, commit %s, %s", b.Version, commit, b.GoVersion)
}

// LogAttrs are b as key-value pairs for a log record.
func (b Build) LogAttrs() []any {
	return []any{"version", b.Version, "commit", b.Commit, "goVersion", b.GoVersion}
}

// debugLevels writes every level between debug and info as DEBUG. logr (controller-runtime,
// klog's contextual loggers) maps V(n) to slog level -n, so V(1) would read "DEBUG+3";
// the filter still sees the real level.
type debugLevels struct{ slog.Handler }

func (h debugLevels) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug && r.Level < slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h debugLevels) WithAttrs(attrs []slog.Attr) slog.Handler {
	return debugLevels{h.Handler.WithAttrs(attrs)}
}

func (h debugLevels) WithGroup(name string) slog.Handler {
	return debugLevels{h.Handler.WithGroup(name)}
}
