#!/usr/bin/env bash
# Installs what tests and the lab need from outside the Go module proxy: Debian packages
# (hack/lab-deps.sh lists them; only missing ones are installed). Go itself must be present.
set -euo pipefail
command -v go >/dev/null || { echo "[deps] Go is required (https://go.dev/doc/install)" >&2; exit 1; }
exec "$(dirname "$0")/lab-deps.sh"
