#!/usr/bin/env bash
# Installs the Debian 12 packages the benchmark needs on top of scripts/setup.sh's:
# nginx-light (the "physical limit" server), wrk (its load generator), python3-requests
# (the Tacker-like client; Debian's own python3 runs it), time (/usr/bin/time) and curl
# (the one-HTTP-call floor). Idempotent and non-interactive like scripts/setup.sh: packages
# already present cost one dpkg query. Run as root (or with sudo available).
set -euo pipefail

packages=(nginx-light wrk python3 python3-requests time curl)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

run_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
echo "bench setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
run_as_root apt-get update -qq
run_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
