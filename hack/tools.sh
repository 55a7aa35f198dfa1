#!/usr/bin/env bash
# Installs the project's Go tools at pinned versions into $LOADSTONE_CACHE/tools/<name>-<version>
# (built from source through the Go module proxy; skipped when already there) and prints the
# path of the requested tool.
#   hack/tools.sh golangci-lint   -> path of the golangci-lint binary
#   hack/tools.sh promtool        -> path of promtool (Prometheus rule checks and unit tests)
set -euo pipefail
CACHE=${LOADSTONE_CACHE:-$HOME/.cache/loadstone}

GOLANGCI_LINT_VERSION=v2.15.0
HELM_VERSION=v3.22.0
PROMTOOL_VERSION=v0.316.0

install_tool() { # name version package
  local dir="$CACHE/tools/$1-$2"
  if [ ! -x "$dir/$1" ]; then
    printf '[tools] installing %s %s (from source, once)\n' "$1" "$2" >&2
    GOBIN="$dir" GOFLAGS=-mod=mod go install "$3@$2" >&2
  fi
  echo "$dir/$1"
}

case "${1:-}" in
golangci-lint) install_tool golangci-lint "$GOLANGCI_LINT_VERSION" github.com/golangci/golangci-lint/v2/cmd/golangci-lint ;;
helm) install_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
promtool) install_tool promtool "$PROMTOOL_VERSION" github.com/prometheus/prometheus/cmd/promtool ;;
*) echo "usage: $0 golangci-lint|helm|promtool" >&2; exit 2 ;;
esac
