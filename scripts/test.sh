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
ctest --output-on-failure -j "$(nproc)" "$@"
