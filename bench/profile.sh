#!/usr/bin/env bash
# Client-side profiles of the batch path (see bench/profile.py): perf sampling, callgrind
# instruction counts and the massif heap peak of one coordinate_all against nginx on
# loopback. Installs linux-perf and valgrind if missing, builds build-bench/ like
# bench/run.sh. About a minute on 2 cores.
#
#   bench/profile.sh [--n N] [--only perf,callgrind,massif,floor]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/setup.sh
bench/setup.sh
missing=()
for p in linux-perf valgrind; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  run_as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  export DEBIAN_FRONTEND=noninteractive
  run_as_root apt-get update -qq
  run_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_C_FLAGS=-g -Wno-error=maybe-uninitialized" >/dev/null
cmake --build build-bench --target lcmcoord_cli -j"$(nproc)" >/dev/null

cc -O2 -Wall -Wextra -o build-bench/curl_floor bench/curl_floor.c -lcurl

exec /usr/bin/python3 bench/profile.py --lcmcoord "$root/build-bench/bin/lcmcoord" \
     --curl-floor "$root/build-bench/curl_floor" "$@"
