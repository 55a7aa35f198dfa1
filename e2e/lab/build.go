package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// goPrograms are the project's programs the lab builds from the tree: name → package.
var goPrograms = []struct{ name, pkg string }{
	{"lab", "./e2e/cmd/lab"},
	{"nodeagent", "./e2e/cmd/nodeagent"},
	{"controller", "./controller"},
	{"speaker", "./speaker"},
}

// buildAll starts `go build` of the node agent, controller and speaker in the background
// (one after the other: the machine has two cores) and returns a function that waits for
// them and yields name → binary for those that built. A program whose package is not in
// the tree, or does not compile, is recorded in State().Missing with the reason.
func (l *Lab) buildAll(ctx context.Context) func() map[string]string {
	ch := make(chan map[string]string, 1)
	go func() {
		bins := map[string]string{}
		for _, p := range goPrograms {
			if bin, ok := l.cfg.Prebuilt[p.name]; ok {
				bins[p.name] = bin
				continue
			}
			t0 := time.Now()
			if reason := l.buildOne(ctx, p.name, p.pkg); reason != "" {
				_ = l.state.setMissing(p.name, reason)
				continue
			}
			// A cold build cache takes minutes on 2 cores: say what took the time.
			if d := time.Since(t0); d > 5*time.Second {
				l.log.Info("built from the tree", "program", p.name, "seconds", fmt.Sprintf("%.0f", d.Seconds()))
			}
			bins[p.name] = filepath.Join(l.cfg.Dir, "bin", p.name)
		}
		ch <- bins
	}()
	return func() map[string]string { return <-ch }
}

// buildOne builds one program and returns "" or why it could not.
func (l *Lab) buildOne(ctx context.Context, name, pkg string) string {
	dir := filepath.Join(l.cfg.RepoRoot, pkg)
	if !hasMainPackage(dir) {
		return "package " + pkg + " (main) is not in the tree yet"
	}
	out := filepath.Join(l.cfg.Dir, "bin", name)
	msg, err := run(ctx, "sh", "-c", "cd \"$0\" && go build -o \"$1\" \"$2\"", l.cfg.RepoRoot, out, pkg)
	if err != nil {
		lines := strings.Split(strings.TrimSpace(msg), "\n")
		if len(lines) > 8 {
			lines = append(lines[:8], "...")
		}
		return "go build " + pkg + " failed:\n" + strings.Join(lines, "\n")
	}
	return ""
}

// hasMainPackage reports whether dir holds a non-test Go file of package main.
func hasMainPackage(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err == nil && (strings.Contains(string(b), "\npackage main") || strings.HasPrefix(string(b), "package main")) {
			return true
		}
	}
	return false
}

// HasMainPackage reports whether the repository has a main package at pkg ("./speaker").
func HasMainPackage(repo, pkg string) bool { return hasMainPackage(filepath.Join(repo, pkg)) }

// RepoRoot returns the repository the lab builds from.
func (l *Lab) RepoRoot() string { return l.cfg.RepoRoot }

// ParsePrebuilt parses "name=path,name=path" (the --prebuilt flag and
// $LOADSTONE_LAB_PREBUILT) into Config.Prebuilt.
func ParsePrebuilt(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		name, path, ok := strings.Cut(kv, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("prebuilt %q: want name=path", kv)
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("prebuilt %s: %w", name, err)
		}
		out[name] = path
	}
	return out, nil
}
