#!/usr/bin/env bash
# The README's demo: builds lcmcoord, starts the built-in EM simulator on a free loopback
# port, and runs the sample CoordinateVNF script (scripts/coordinate_vnf.lua) against it
# the way a VNFM would: parameters as JSON on stdin, the answer in the exit status and
# stderr. Three EMs in turn: one that agrees at once, one that is busy twice (503 +
# Retry-After) then agrees, and one that answers asynchronously and then refuses (ABORT).
# Each command is shown (`$ ...`) exactly as it is run, the EM's port being the free one it
# got. With LCMCOORD_BIN set, that program is used and nothing is built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${LCMCOORD_BIN-}" ]; then
  lcmcoord=$LCMCOORD_BIN
else
  "$root/scripts/setup.sh"
  cmake -S "$root" -B "$root/build" -DLCMCOORD_WERROR=ON >/dev/null
  cmake --build "$root/build" -j "$(nproc)" >/dev/null
  lcmcoord="$root/build/bin/lcmcoord"
fi
work=$(mktemp -d)
em_pid=
cleanup() {
  [ -n "$em_pid" ] && kill "$em_pid" 2>/dev/null && wait "$em_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Prints `$ lcmcoord ARGS...` the way a shell would take it back.
show() {
  printf '$ lcmcoord'
  printf ' %q' "$@"
}

start_em() {
  show em --listen 127.0.0.1:0 --basic tacker:tacker "$@"
  echo " &"
  "$lcmcoord" em --listen 127.0.0.1:0 --basic tacker:tacker "$@" >"$work/em.out" 2>"$work/em.log" &
  em_pid=$!
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on //p' "$work/em.out")
    [ -n "$url" ] && return 0
    sleep 0.05
  done
  echo "demo: the EM simulator did not start" >&2
  cat "$work/em.log" >&2
  exit 1
}

stop_em() {
  kill "$em_pid" && wait "$em_pid" || true
  em_pid=
}

coordinate() {
  local title=$1
  shift
  echo
  echo "=== $title"
  start_em "$@"
  echo "\$ sed 's|http://127.0.0.1:6789|$url|' scripts/examples/vnfc_param.json > param.json"
  sed "s|http://127.0.0.1:6789|$url|" "$root/scripts/examples/vnfc_param.json" >"$work/param.json"
  show run -v scripts/coordinate_vnf.lua
  echo " < param.json"
  local status=0
  (cd "$root" && "$lcmcoord" run -v scripts/coordinate_vnf.lua <"$work/param.json") || status=$?
  echo "exit status: $status"
  echo "--- what the EM received:"
  sed 's/^/    /' "$work/em.log"
  stop_em
}

coordinate "An EM that agrees at once (201 Created, CONTINUE)" --mode sync
coordinate "A busy EM: 503 + Retry-After twice, then CONTINUE" --mode sync --rejects 2 --retry-after 1
coordinate "An asynchronous EM: 202 + Location, two polls, then ABORT" \
  --mode async --polls 2 --retry-after 1 --result ABORT
