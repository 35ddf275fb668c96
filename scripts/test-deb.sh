#!/usr/bin/env bash
# Builds lcmcoord's Debian package with CPack, installs it with apt-get as a clean Debian 12
# machine would, checks the installed program from its installed paths (the version, the
# sample script and the Tacker drop-in against `lcmcoord em`, which runs the separately
# installed EM simulator; that `lcmcoord` links no server library; the Lua module under the
# stock lua5.4), then removes the package. Idempotent: a package left installed by an earlier,
# interrupted run is removed first, and the package is removed whatever happens. Needs root
# (or sudo). Usage: scripts/test-deb.sh [BUILD_DIR]   (default: build-deb/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$root/build-deb"}

run_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
say() { echo "test-deb: $*" >&2; }

"$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DLCMCOORD_BUILD_TESTS=OFF -DLCMCOORD_SANITIZE= -DLCMCOORD_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
rm -f "$build"/lcmcoord_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/lcmcoord_*.deb)
say "built $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"

work=$(mktemp -d)
em_pid=
serve_pid=
cleanup() {
  if [ -n "$em_pid" ]; then kill "$em_pid" 2>/dev/null || true; wait "$em_pid" 2>/dev/null || true; fi
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  if dpkg-query -W -f='${Status}' lcmcoord 2>/dev/null | grep -q 'install ok installed'; then
    run_as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lcmcoord >/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if dpkg-query -W -f='${Status}' lcmcoord 2>/dev/null | grep -q 'install ok installed'; then
  say "removing an lcmcoord package left installed"
  run_as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lcmcoord >/dev/null
fi
run_as_root env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
say "installed"

# Everything from the installed paths, nothing from the build tree.
test "$(command -v lcmcoord)" = /usr/bin/lcmcoord
/usr/bin/lcmcoord --version | grep -qx 'lcmcoord 0.1.0'
share=/usr/share/lcmcoord
for f in "$share/scripts/coordinate_vnf.lua" "$share/scripts/tacker/coordinate_vnf.py" \
  "$share/lcmcoord.conf.example" "$share/lua-annotations/lcmcoord.lua" \
  /usr/share/man/man1/lcmcoord.1 /usr/share/bash-completion/completions/lcmcoord \
  /usr/share/zsh/vendor-completions/_lcmcoord; do
  test -f "$f" || { say "missing $f"; exit 1; }
done
# The EM simulator is its own program; the client a VNFM runs names no server library.
test -x /usr/libexec/lcmcoord/lcmcoord-em || { say "missing /usr/libexec/lcmcoord/lcmcoord-em"; exit 1; }
# `lcmcoord serve`: its program, its unit (which must parse) and its hook examples.
test -x /usr/libexec/lcmcoord/lcmcoord-serve || { say "missing /usr/libexec/lcmcoord/lcmcoord-serve"; exit 1; }
unit=/usr/lib/systemd/system/lcmcoord-serve.service
test -f "$unit" || { say "missing $unit"; exit 1; }
grep -qx 'ExecStart=/usr/bin/lcmcoord serve --config /etc/lcmcoord/serve.conf' "$unit"
if command -v systemd-analyze >/dev/null; then systemd-analyze verify "$unit" >&2 || true; fi
test -f "$share/scripts/serve/drain_lb.lua" || { say "missing the serve hook examples"; exit 1; }
if readelf -d /usr/bin/lcmcoord "$(ldd /usr/bin/lcmcoord | awk '$1 ~ /^liblcmcoord/ {print $3}')" |
  grep -E 'NEEDED.*lib(microhttpd|gnutls|sqlite|pq|jwt)'; then
  say "/usr/bin/lcmcoord or its liblcmcoord links a server library"; exit 1
fi

# The EM simulator on a free port; its first line names the URL.
mkfifo "$work/em.out"
/usr/bin/lcmcoord em --listen 127.0.0.1:0 --basic tacker:tacker >"$work/em.out" 2>"$work/em.err" &
em_pid=$!
read -r _ _ url <"$work/em.out"
say "lcmcoord em at $url"
sed "s|http://127.0.0.1:6789|$url|" "$share/scripts/examples/vnfc_param.json" >"$work/param.json"

/usr/bin/lcmcoord run "$share/scripts/coordinate_vnf.lua" <"$work/param.json"
say "the sample script ran: CONTINUE"

python3 -c 'import json, pickle, sys; pickle.dump(json.load(open(sys.argv[1])), sys.stdout.buffer)' \
  "$work/param.json" | TACKER_CONF=/nonexistent python3 "$share/scripts/tacker/coordinate_vnf.py"
say "the Tacker drop-in ran: CONTINUE"

lua5.4 -e 'assert(require("lcmcoord").version == "0.1.0")'
say "the Lua module loads in lua5.4"

# `lcmcoord serve` from the installed paths: one coordination with the installed client.
printf 'return {decide = function() return {result = "CONTINUE"} end}\n' >"$work/hooks.lua"
mkfifo "$work/serve.out"
/usr/bin/lcmcoord serve --listen 127.0.0.1:0 --hooks "$work/hooks.lua" \
  --store "sqlite:$work/serve.db" >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
read -r _ _ serve_url <"$work/serve.out"
/usr/bin/lcmcoord coordinate --endpoint "$serve_url" --action prv.example.check | grep -q CONTINUE
kill "$serve_pid"
wait "$serve_pid"
serve_pid=
say "lcmcoord serve answered the installed client: CONTINUE"

kill "$em_pid"
wait "$em_pid" || true
em_pid=
cleanup
trap - EXIT
if dpkg-query -W -f='${Status}' lcmcoord 2>/dev/null | grep -q 'install ok installed'; then
  say "the package is still installed"
  exit 1
fi
test ! -e /usr/bin/lcmcoord
echo "test-deb: 1 passed, 0 failed"
