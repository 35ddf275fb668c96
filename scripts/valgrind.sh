#!/usr/bin/env bash
# Runs the C suites and the main end-to-end suites with every C program under valgrind
# (memcheck: invalid reads and writes, uninitialised values, definite leaks), in build/.
# A finding makes the program exit 99, which fails its test. Used by .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
if ! command -v valgrind >/dev/null; then
  run_as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  DEBIAN_FRONTEND=noninteractive run_as_root apt-get install -y -qq valgrind >/dev/null
fi
build="$root/build"
cmake -S "$root" -B "$build" -DLCMCOORD_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

valgrind=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite --track-fds=no)
status=0
echo "valgrind: C suites"
for t in "$build"/bin/test_* "$build"/bin/replay_*; do
  args=()
  case "$(basename "$t")" in
    replay_*) args=("$root/tests/fuzz/corpus/$(basename "$t" | sed 's/^replay_//')") ;;
  esac
  # Under valgrind every program runs many times slower: wall-clock bounds stretch.
  if LCMCOORD_TIME_FACTOR=10 "${valgrind[@]}" "$t" "${args[@]}" >/dev/null \
       2>"$build/valgrind-$(basename "$t").log"; then
    echo "  ok    $(basename "$t")"
  else
    echo "  FAIL  $(basename "$t")"; cat "$build/valgrind-$(basename "$t").log"; status=1
  fi
done

echo "valgrind: end-to-end suites (the client under valgrind)"
export LCMCOORD_BIN="$build/bin/lcmcoord" LCMCOORD_SOURCE_DIR="$root" PYTHONDONTWRITEBYTECODE=1
export LUA_CPATH="$build/lib/lua/5.4/?.so;;"
export LCMCOORD_WRAPPER="${valgrind[*]}" LCMCOORD_TIME_FACTOR=10
cd "$root/tests/e2e"
for suite in "$@"; do :; done
suites=("$@")
# With the serve suites' core flows, the server (lcmcoord serve, following its exec of
# lcmcoord-serve) under valgrind too: sync and async answers, busy, ABORT, a hook error, cancel
# and SIGTERM, each server checked at its exit (a finding: exit 99, the test fails).
[ ${#suites[@]} -gt 0 ] || suites=(test_valgrind_flows.py test_serve.SyncAndAsync.test_past_the_budget_is_202_with_location_then_get_202_then_200
  test_serve.Outcomes test_serve.Cancel.test_cancel_is_seen_by_the_hook_and_ends_cancelled_then_409
  test_serve.Lifecycle.test_sigterm_stores_what_is_still_running_as_abort_and_exits_0)
export LCMCOORD_SERVE_WRAPPER="${valgrind[*]} --trace-children=yes"
for suite in "${suites[@]}"; do
  if python3 -m unittest "$suite" 2>"$build/valgrind-$suite.log"; then
    echo "  ok    $suite ($(grep -o 'Ran [0-9]* tests' "$build/valgrind-$suite.log"))"
  else
    echo "  FAIL  $suite"; tail -60 "$build/valgrind-$suite.log"; status=1
  fi
done
exit $status
