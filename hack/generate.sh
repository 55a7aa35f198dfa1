#!/usr/bin/env bash
# Regenerates the files that come from the API types, with controller-gen at a pinned version:
#   api/v1beta1/zz_generated.deepcopy.go   (deepcopy functions)
#   config/crd/bases/loadstone.io_*.yaml   (CRD manifests, one per kind; label selector
#                                           schemas then bounded by api/internal/crdbounds)
#
# Usage: hack/generate.sh [OUTDIR]
#   Without OUTDIR the files are written in place (what `make generate` does). With OUTDIR the
#   same relative paths are written under OUTDIR and the work tree is left alone; the drift
#   test (config/drift_test.go) uses that and compares.
#
# controller-gen is built from source through the Go module proxy into
# $LOADSTONE_CACHE/tools/controller-gen-$CONTROLLER_GEN_VERSION, once.
set -euo pipefail

CONTROLLER_GEN_VERSION=${CONTROLLER_GEN_VERSION:-v0.23.0}
CACHE=${LOADSTONE_CACHE:-$HOME/.cache/loadstone}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

bindir="$CACHE/tools/controller-gen-$CONTROLLER_GEN_VERSION"
CG="$bindir/controller-gen"
if [ ! -x "$CG" ]; then
  printf '[generate] installing controller-gen %s (from source, once)\n' "$CONTROLLER_GEN_VERSION" >&2
  GOBIN="$bindir" GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION" >&2
fi

cd "$ROOT"
mkdir -p "$OUT/api/v1beta1" "$OUT/config/crd/bases"
# A kind that was removed must not leave its CRD behind.
rm -f "$OUT"/config/crd/bases/loadstone.io_*.yaml
"$CG" object:headerFile=hack/boilerplate.go.txt paths=./api/v1beta1/... output:object:dir="$OUT/api/v1beta1"
"$CG" crd paths=./api/v1beta1/... output:crd:dir="$OUT/config/crd/bases"
# Bound label selector schemas so that CEL rules on selectors fit the API server's cost budget.
go run ./api/internal/crdbounds "$OUT"/config/crd/bases/loadstone.io_*.yaml
printf '[generate] wrote %s/api/v1beta1/zz_generated.deepcopy.go and %s/config/crd/bases\n' "$OUT" "$OUT" >&2
