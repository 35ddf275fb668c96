#!/usr/bin/env bash
# Builds lcmcoord and runs every test suite (cmocka, busted, end-to-end). This is the
# README's test command and what CI runs. Set LCMCOORD_SANITIZE=address,undefined to
# build and test with sanitizers (in build-sanitize/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"

build="$root/build"
config=()
if [ -n "${LCMCOORD_SANITIZE:-}" ]; then
  build="$root/build-sanitize"
  config+=("-DLCMCOORD_SANITIZE=$LCMCOORD_SANITIZE" -DCMAKE_BUILD_TYPE=Debug)
fi
cmake -S "$root" -B "$build" -DLCMCOORD_WERROR=ON "${config[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
# Most end-to-end tests spend their time waiting on servers and timers, not on a core: two
# tests per core keep the machine busy. A machine running twice the tests at once is a
# slower machine to each of them, so their wall-clock bounds stretch by the same factor.
cores=$(nproc)
jobs=${LCMCOORD_TEST_JOBS:-$((cores * 2))}
export LCMCOORD_TIME_FACTOR
LCMCOORD_TIME_FACTOR=$(awk -v f="${LCMCOORD_TIME_FACTOR:-1}" -v j="$jobs" -v c="$cores" \
  'BEGIN { s = j / c; if (s < 1) s = 1; print f * s }')
ctest --output-on-failure -j "$jobs" "$@"
