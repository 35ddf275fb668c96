#!/usr/bin/env bash
# The lcmcoord benchmark (issues 7 and 13): one command, about 3-4 minutes on 2 cores.
#
#   bench/run.sh [--baseline REV] [--runs N] [--repeats N] [--n N] [--only 1,2,3,4,5]
#                [--out FILE|-] [--json FILE]
#
# The issue 13 targets, each a ratio measured in the same run: the client's rate against a
# fixed-response nginx over a bare libcurl multi loop's (bench/curl_floor.c), round by
# round (section 5); the client's CPU over the EM's for 10,000 sync coordinations (2); one
# `lcmcoord run` against the `curl` CLI, wall time and peak RSS (1). --baseline REV also
# builds revision REV (git archive, into build-bench-base/) and measures it in the same
# run, its runs alternating with the current tree's: before/after without the machine's
# mood in between.
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
# The program, the Lua module and, where the EM simulator is a program of its own
# (lcmcoord-em, issue 13), that program: `lcmcoord em` runs it.
build_program() {
  local targets=(lcmcoord_cli lcmcoord_lua)
  # (The whole list is read first: grep -q would end the pipe early, and pipefail fail it.)
  if cmake --build "$1" --target help | grep -c '\blcmcoord_em_program\b' >/dev/null; then
    targets+=(lcmcoord_em_program)
  fi
  cmake --build "$1" --target "${targets[@]}" -j"$(nproc)" >/dev/null
}

cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_C_FLAGS=-g -Wno-error=maybe-uninitialized" >/dev/null
build_program build-bench

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

# --baseline REV: that revision, built and installed the same way, next to this one.
command="bench/run.sh${*:+ $*}"
passed=()
baseline=()
while [ $# -gt 0 ]; do
  if [ "$1" = --baseline ] && [ $# -ge 2 ]; then
    rev="$(git rev-parse --short "$2")"
    base="$root/build-bench-base"
    rm -rf "$base/src"
    mkdir -p "$base/src"
    git archive "$rev" | tar -x -C "$base/src"
    cmake -S "$base/src" -B "$base/build" -DCMAKE_BUILD_TYPE=Release \
          "-DCMAKE_C_FLAGS=-g -Wno-error=maybe-uninitialized" >/dev/null
    build_program "$base/build"
    cmake --install "$base/build" --prefix "$base/install" >/dev/null
    baseline=(--baseline "$base/install/bin/lcmcoord" --baseline-label "$rev")
    shift 2
  else
    passed+=("$1")
    shift
  fi
done

exec /usr/bin/python3 bench/bench.py --lcmcoord "$binary" --layout "$layout" \
     --curl-floor "$root/build-bench/curl_floor" "${baseline[@]}" \
     --command "$command" "${passed[@]}"
