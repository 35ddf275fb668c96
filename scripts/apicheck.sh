#!/usr/bin/env bash
# Runs the Lua specs and the end-to-end suites once against a Lua 5.4 built with
# LUA_USE_APICHECK, where every misuse of the C API (pushing past the stack without
# lua_checkstack, popping what is not there, a bad index) is an assertion instead of silent
# memory corruption. Debian ships no such build, so this script compiles Debian's own lua5.4
# source (same version and patches as liblua5.4-0, so busted's C modules load unchanged) as
# a shared liblua with API checks and an interpreter over it, points pkg-config at it, and
# builds lcmcoord in its own build directory (default build-apicheck/).
#
#   scripts/apicheck.sh [BUILD_DIR] [CTEST_REGEX]
#
# The source comes from LUA_SRC (a directory holding src/lapi.c) or `apt-get source lua5.4`,
# which needs a deb-src line for Debian 12 (see docs/reliability.md). Exit status: ctest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$root/build-apicheck"}
tests=${2:-}
lua="$build/lua-apicheck"
mkdir -p "$lua"

# ---- the Lua source (Debian's, patched) ---------------------------------------------------
src=${LUA_SRC:-}
if [ -z "$src" ]; then
  src=$(ls -d "$lua"/source/lua5.4-*/ 2>/dev/null | head -n 1 || true)
  if [ -z "$src" ]; then
    mkdir -p "$lua/source"
    if ! (cd "$lua/source" && apt-get source -qq lua5.4 >/dev/null 2>&1); then
      echo "apicheck: cannot fetch the lua5.4 source: add a deb-src line for Debian 12 and" \
           "run apt-get update, or set LUA_SRC" >&2
      exit 2
    fi
    src=$(ls -d "$lua"/source/lua5.4-*/ | head -n 1)
  fi
fi
[ -f "$src/src/lapi.c" ] || { echo "apicheck: no Lua source in $src" >&2; exit 2; }

# ---- liblua with API checks, and an interpreter over it -----------------------------------
# Debian's luaconf.h includes a generated header naming the multiarch directory of C modules.
multiarch=$(gcc -print-multiarch)
mkdir -p "$lua/include" "$lua/lib" "$lua/bin" "$lua/obj" "$lua/pkgconfig"
printf '#define DEB_HOST_MULTIARCH "%s"\n' "$multiarch" > "$lua/include/lua5.4-deb-multiarch.h"
cflags=(-O1 -g -fPIC -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -DLUA_USE_APICHECK -I"$lua/include")
if [ ! -f "$lua/lib/liblua5.4-apicheck.so" ]; then
  objects=()
  for file in "$src"/src/*.c; do
    case "$(basename "$file")" in lua.c | luac.c) continue ;; esac
    object="$lua/obj/$(basename "$file" .c).o"
    gcc "${cflags[@]}" -c "$file" -o "$object"
    objects+=("$object")
  done
  gcc -shared -Wl,-soname,liblua5.4-apicheck.so -o "$lua/lib/liblua5.4-apicheck.so" \
      "${objects[@]}" -lm -ldl
  gcc "${cflags[@]}" -o "$lua/bin/lua5.4" "$src/src/lua.c" -L"$lua/lib" \
      -Wl,-rpath,"$lua/lib" -llua5.4-apicheck -lm -ldl
fi
for header in lua.h luaconf.h lualib.h lauxlib.h lua.hpp; do
  [ -f "$src/src/$header" ] && cp "$src/src/$header" "$lua/include/"
done
cat > "$lua/pkgconfig/lua5.4.pc" <<EOF
Name: Lua (API checks)
Description: Debian's Lua 5.4 built with LUA_USE_APICHECK for lcmcoord's apicheck run
Version: 5.4.4
Cflags: -I$lua/include
Libs: -L$lua/lib -Wl,-rpath,$lua/lib -llua5.4-apicheck -lm -ldl
EOF

# ---- lcmcoord against it -------------------------------------------------------------------
# Only Lua is replaced; every other library's pkg-config file stays found.
export PKG_CONFIG_PATH="$lua/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DLCMCOORD_WERROR=ON \
      -DLCMC_LUA_INTERPRETER="$lua/bin/lua5.4" >/dev/null
# The specs and the end-to-end suites need the program and the module only.
cmake --build "$build" -j 2 --target lcmcoord_cli lcmcoord_lua >/dev/null
if ! ldd "$build/bin/lcmcoord" | grep -q liblua5.4-apicheck; then
  echo "apicheck: $build/bin/lcmcoord is not linked against the checking Lua" >&2
  exit 2
fi

# Suites that start `lua5.4` by name get the checking one too.
export PATH="$lua/bin:$PATH"
cd "$build"
if [ -n "$tests" ]; then
  ctest --output-on-failure -R "$tests"
else
  ctest --output-on-failure -L 'lua|e2e'
fi
