#!/usr/bin/env bash
# The lcmcoord benchmark (issue 7): one command, about 3-4 minutes on 2 cores.
#
#   bench/run.sh [--runs N] [--repeats N] [--n N] [--only 1,2,3,4,5] [--out FILE|-]
#
# Installs what it needs (scripts/setup.sh, then bench/setup.sh: nginx-light, wrk,
# python3-requests, time, curl), builds lcmcoord in build-bench/ (CMake Release, only the
# program and the Lua module) and installs it under build-bench/install/, then runs
# bench/bench.py, which prints the table and writes
# docs/benchmarks.md. Everything talks to 127.0.0.1 only; the servers it starts (lcmcoord
# em, nginx) are its own children and are stopped by pid. Not part of ctest.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/setup.sh
bench/setup.sh

# -O3 (Release) makes GCC 12 see a maybe-uninitialized value that -O2 does not; with the
# project's -Werror that would stop the build, so that one warning stays a warning here.
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_C_FLAGS=-g -Wno-error=maybe-uninitialized" >/dev/null
cmake --build build-bench --target lcmcoord_cli lcmcoord_lua -j"$(nproc)" >/dev/null

# Measure the installed program, as a VNFM would run it: the build tree's RUNPATH ends in
# ':' (CMake's padding), an empty entry that sends the loader through the current
# directory for every library before the system ones. Fall back to the build tree if the
# install step fails.
binary="$root/build-bench/bin/lcmcoord"
layout=build-tree
if cmake --install build-bench --prefix "$root/build-bench/install" >/dev/null 2>&1; then
  binary="$root/build-bench/install/bin/lcmcoord"
  layout=installed
else
  echo "bench: cmake --install failed; measuring the build tree's binary" >&2
fi

# The libcurl floor of section 5 (bench/curl_floor.c), against the same libcurl.
cc -O2 -Wall -Wextra -o build-bench/curl_floor bench/curl_floor.c -lcurl

exec /usr/bin/python3 bench/bench.py --lcmcoord "$binary" --layout "$layout" \
     --curl-floor "$root/build-bench/curl_floor" \
     --command "bench/run.sh${*:+ $*}" "$@"
