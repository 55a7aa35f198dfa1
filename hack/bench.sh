#!/usr/bin/env bash
# Runs the benchmarks and writes bench/results.md: a header with the machine, date and
# commit, then each benchmark's raw `go test -bench` output (benchstat-compatible).
# Lab benchmarks (failover, scale against the API server) run when LOADSTONE_BENCH=1,
# which this script sets; they print their own tables.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results.md
mkdir -p bench
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# Benchmark results"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3-)"
  echo "- command: make bench (hack/bench.sh)"
  echo
} >"$tmp"
# Raw samples for the pictures (internal/benchdata), fresh for this run.
export LOADSTONE_BENCH_DATA="$PWD/bench/data"
rm -rf "$LOADSTONE_BENCH_DATA"
pkgs=$(go list ./... | while read -r p; do
  d=$(go list -f '{{.Dir}}' "$p")
  grep -lq '^func Benchmark' "$d"/*_test.go 2>/dev/null && echo "$p"
done || true)
for p in $pkgs; do
  echo "[bench] $p" >&2
  {
    echo "## $p"
    echo
    echo '```'
    # Lab benchmarks (e2e/...) bring a lab up: one lab at a time on this machine.
    lock=()
    case $p in */e2e/*) lock=(flock /tmp/loadstone-lab.lock) ;; esac
    LOADSTONE_BENCH=1 "${lock[@]}" go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-1}" -timeout 60m "$p" 2>&1 | tee -a /dev/stderr
    echo '```'
    echo
  } >>"$tmp"
done
echo "[bench] drawing the pictures" >&2
{
  echo "## Pictures"
  echo
  for f in $(go run ./bench/plot -data "$LOADSTONE_BENCH_DATA" -out bench); do
    echo "![$(basename "$f" .svg)]($(basename "$f"))"
    echo
  done
  echo "Raw samples: bench/data/*.jsonl."
} >>"$tmp"
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "[bench] wrote $out" >&2
