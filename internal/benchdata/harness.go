package benchdata

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Require skips a lab benchmark's Test form unless LOADSTONE_BENCH=1 (its Benchmark
// form runs under -bench without it).
func Require(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("LOADSTONE_BENCH") != "1" {
		t.Skipf("benchmark %s: set LOADSTONE_BENCH=1 (or run Benchmark%s with -bench)", name, name)
	}
}

// EnvInt is the positive integer in the environment variable name, or def.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Report prints a benchmark's markdown table and writes it to the file that
// LOADSTONE_BENCH_OUT names, if any.
func Report(tb testing.TB, table string) {
	tb.Helper()
	fmt.Println(table)
	if out := os.Getenv("LOADSTONE_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			tb.Errorf("write %s: %v", out, err)
		}
	}
}
