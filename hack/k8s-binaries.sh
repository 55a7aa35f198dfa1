#!/usr/bin/env bash
# Builds the real Kubernetes and etcd binaries that envtest and the lab use, from source,
# through the Go module proxy. Nothing is downloaded prebuilt.
#
# Each program is built in a throw-away module outside the project (so the project's go.mod
# never sees k8s.io/kubernetes): that module requires k8s.io/kubernetes at $K8S_VERSION and
# replaces every staging module (k8s.io/api, k8s.io/client-go, ...) with its v0.x twin; the
# upstream main.go of each command is copied from the module cache at build time.
#
# Output: $LOADSTONE_CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin, printed on stdout's last
# line. A binary that already exists is not rebuilt.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CACHE=${LOADSTONE_CACHE:-$HOME/.cache/loadstone}
OUT="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
BIN="$OUT/bin"
PROGRAMS=(kube-apiserver kubectl kube-proxy kube-scheduler kube-controller-manager)
if [ "$#" -gt 0 ]; then PROGRAMS=("$@"); fi

log() { printf '[k8s-binaries] %s\n' "$*" >&2; }
mkdir -p "$BIN"

staging_minor=${K8S_VERSION#v1.}
STAGING_VERSION="v0.$staging_minor"

build_k8s() {
  local mod="$OUT/k8s-mod"
  if [ ! -f "$mod/go.sum" ]; then
    log "preparing throw-away module for k8s.io/kubernetes $K8S_VERSION in $mod"
    rm -rf "$mod" && mkdir -p "$mod"
    local dir
    dir=$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
    {
      echo "module loadstone.local/k8sbuild"
      echo
      echo "go $(sed -n 's/^go \(.*\)/\1/p' "$dir/go.mod")"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$STAGING_VERSION"'#p' "$dir/go.mod"
      echo ")"
    } >"$mod/go.mod"
    for p in kube-apiserver kubectl kube-proxy kube-scheduler kube-controller-manager; do
      mkdir -p "$mod/cmd/$p"
      for f in "$dir/cmd/$p"/*.go; do
        case "$f" in *_test.go) continue ;; esac
        install -m 0644 "$f" "$mod/cmd/$p/"
      done
    done
    log "resolving dependencies (go mod tidy)"
    (cd "$mod" && go mod tidy)
  fi
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$staging_minor -X k8s.io/component-base/version.gitTreeState=clean"
  for p in "${PROGRAMS[@]}"; do
    if [ -x "$BIN/$p" ]; then continue; fi
    log "building $p $K8S_VERSION from source (the first, kube-apiserver, takes ~5 min on 2 cores)"
    local start=$SECONDS
    (cd "$mod" && go build -ldflags "$ldflags" -o "$BIN/$p.tmp" "./cmd/$p") && mv "$BIN/$p.tmp" "$BIN/$p"
    log "built $p in $((SECONDS - start)) s"
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return 0
  local mod="$OUT/etcd-mod"
  log "building etcd $ETCD_VERSION from source"
  rm -rf "$mod" && mkdir -p "$mod"
  cat >"$mod/main.go" <<'GO'
// Command etcd runs the etcd server of the pinned go.etcd.io/etcd/server/v3 version.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$mod" && printf 'module loadstone.local/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >go.mod &&
    go mod tidy && go build -ldflags "-s -w" -o "$BIN/etcd.tmp" . && mv "$BIN/etcd.tmp" "$BIN/etcd")
}

want_etcd=0
for p in "${PROGRAMS[@]}"; do [ "$p" = etcd ] && want_etcd=1; done
if [ "$#" -eq 0 ]; then want_etcd=1; fi
if [ "$want_etcd" = 1 ]; then build_etcd; fi
k8s=()
for p in "${PROGRAMS[@]}"; do [ "$p" != etcd ] && k8s+=("$p"); done
if [ "${#k8s[@]}" -gt 0 ]; then PROGRAMS=("${k8s[@]}"); build_k8s; fi
log "binaries ready in $BIN"
echo "$BIN"
