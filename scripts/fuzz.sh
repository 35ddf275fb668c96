#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan in
# build-fuzz/, and runs each for LCMCOORD_FUZZ_SECONDS (default 60) starting from a copy
# of its seed corpus. A crash stops the run with the reproducer's path: copy it into
# tests/fuzz/corpus/<target>/ so that every later build replays it as a regression test.
#   scripts/fuzz.sh                      # every target, 60 s each
#   LCMCOORD_FUZZ_SECONDS=3600 scripts/fuzz.sh location   # one target, an hour
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"

missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  run_as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  echo "fuzz: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive run_as_root apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

build="$root/build-fuzz"
seconds=${LCMCOORD_FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(location lcmcoord token request em_form retry_after vnfc_param serve_auth serve_request)

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DLCMCOORD_WERROR=ON \
  -DLCMCOORD_SANITIZE=fuzzer-no-link,address,undefined -DLCMCOORD_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
printf '%-12s %12s %8s  %s\n' target executions seconds result
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp "$root/tests/fuzz/corpus/$t/"* "$work/$t/"
  log="$work/$t.log"
  if (cd "$work" && "$build/bin/fuzz_$t" -max_total_time="$seconds" -max_len=65536 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work/$t") >"$log" 2>&1; then
    result=ok
  else
    found=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null || true)
    result="CRASH: ${found%%$'\n'*} (log: see above)"
    status=1
    tail -40 "$log" >&2
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  printf '%-12s %12s %8s  %s\n' "$t" "${runs:-?}" "$seconds" "$result"
done
exit $status
