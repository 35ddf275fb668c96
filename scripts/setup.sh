#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and running the demo of
# lcmcoord needs. Idempotent and non-interactive: packages already present are not
# touched, so a second run costs one dpkg query. Run as root (or with sudo available).
# The list and the reason for each package live in vendor/README.md.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ca-certificates
  liblua5.4-dev lua5.4
  libcurl4-openssl-dev curl
  libssl-dev openssl
  libjansson-dev libyajl-dev
  libmicrohttpd-dev libgnutls28-dev
  libedit-dev
  libcmocka-dev
  lua-busted
  python3
  libssh2-1-dev openssh-server openssh-client
  groff-base
  libsqlite3-dev libpq-dev postgresql
  libjwt-dev libcrypt-dev
)

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
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
run_as_root apt-get update -qq
run_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
