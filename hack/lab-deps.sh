#!/usr/bin/env bash
# Installs the Debian packages the lab needs (iproute2, nftables, FRR, BIRD, curl, ping,
# conntrack, openssl), only those that are missing, after a single `apt-get update`.
# Safe to run again: with everything present it does nothing and touches no network.
set -euo pipefail

log() { printf '[lab-deps] %s\n' "$*" >&2; }

# package -> a file that proves it is installed
declare -A PROOF=(
  [iproute2]=/usr/sbin/ip
  [nftables]=/usr/sbin/nft
  [frr]=/usr/lib/frr/bgpd
  [bird2]=/usr/sbin/bird
  [curl]=/usr/bin/curl
  [iputils-ping]=/usr/bin/ping
  [conntrack]=/usr/sbin/conntrack
  [openssl]=/usr/bin/openssl
  [procps]=/usr/bin/pgrep
  [ethtool]=/usr/sbin/ethtool
)

missing=()
for p in "${!PROOF[@]}"; do
  [ -e "${PROOF[$p]}" ] || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  log "all lab packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "missing packages: ${missing[*]}; run as root (the lab needs root anyway)"
  exit 1
fi

# Another apt may be running (other tools on the same machine): wait for its lock.
wait_apt() {
  command -v fuser >/dev/null || return 0
  local i
  for i in $(seq 1 300); do
    if ! fuser /var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock >/dev/null 2>&1; then return 0; fi
    [ "$i" = 1 ] && log "waiting for another apt/dpkg to finish"
    sleep 1
  done
}

export DEBIAN_FRONTEND=noninteractive
# FRR's and BIRD's packages would start their daemons in the root namespace; the lab runs
# them only inside its own namespaces. Unless a policy already exists, forbid starting
# services for the duration of the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
log "installing: ${missing[*]}"
wait_apt
apt-get update -qq
wait_apt
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
log "done"
