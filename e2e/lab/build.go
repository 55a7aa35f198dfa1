package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// binaries are the project's programs the lab runs, built from the tree (or given in
// Config.Prebuilt). Every one is required: Up fails when one does not build.
type binaries struct {
	lab, nodeagent, controller, speaker string
}

// buildAll starts `go build` of the lab command, node agent, controller and speaker in the
// background (one after the other: the machine has two cores) and returns a function that
// waits for them. The first program that does not build ends it with an error.
func (l *Lab) buildAll(ctx context.Context) func() (binaries, error) {
	type result struct {
		b   binaries
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var b binaries
		for _, p := range []struct {
			name, pkg string
			bin       *string
		}{
			{"lab", "./e2e/cmd/lab", &b.lab},
			{"nodeagent", "./e2e/cmd/nodeagent", &b.nodeagent},
			{"controller", "./controller", &b.controller},
			{"speaker", "./speaker", &b.speaker},
		} {
			if bin, ok := l.cfg.Prebuilt[p.name]; ok {
				*p.bin = bin
				continue
			}
			t0 := time.Now()
			bin, err := l.buildOne(ctx, p.name, p.pkg)
			if err != nil {
				ch <- result{err: err}
				return
			}
			// A cold build cache takes minutes on 2 cores: say what took the time.
			if d := time.Since(t0); d > 5*time.Second {
				l.log.Info("built from the tree", "program", p.name, "seconds", fmt.Sprintf("%.0f", d.Seconds()))
			}
			*p.bin = bin
		}
		ch <- result{b: b}
	}()
	return func() (binaries, error) {
		r := <-ch
		return r.b, r.err
	}
}

// buildOne builds one program into the lab's bin directory and returns its path.
func (l *Lab) buildOne(ctx context.Context, name, pkg string) (string, error) {
	out := filepath.Join(l.cfg.Dir, "bin", name)
	// run's error repeats all of go build's output: keep its first lines instead.
	msg, err := run(ctx, "sh", "-c", "cd \"$0\" && go build -o \"$1\" \"$2\"", l.cfg.RepoRoot, out, pkg)
	if err != nil {
		lines := strings.Split(strings.TrimSpace(msg), "\n")
		if len(lines) > 8 {
			lines = append(lines[:8], "...")
		}
		return "", fmt.Errorf("go build %s failed:\n%s", pkg, strings.Join(lines, "\n"))
	}
	return out, nil
}

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
