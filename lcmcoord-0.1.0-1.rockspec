-- luarocks rockspec of the `lcmcoord` Lua module, built against an installed liblcmcoord
-- (the C runtime: `apt-get install ./lcmcoord_*.deb`, or `cmake --install`). Only the Lua
-- binding (bindings/lua) is compiled here; the runtime stays the system's, so a script under
-- a stock lua5.4 and `lcmcoord run` use the same library.
--
--   luarocks make lcmcoord-0.1.0-1.rockspec                 # from a source checkout
--   luarocks make lcmcoord-0.1.0-1.rockspec LCMCOORD_DIR=/opt/lcmcoord
--
-- The source list must match LCMC_LUA_SOURCES in bindings/lua/CMakeLists.txt (the test
-- suite checks it, and compiles these sources the way the builtin backend does).
rockspec_format = "3.0"
package = "lcmcoord"
version = "0.1.0-1"

source = {
   -- A release tarball of the repository (git archive --prefix=lcmcoord-0.1.0/ HEAD).
   url = "lcmcoord-0.1.0.tar.gz",
   dir = "lcmcoord-0.1.0",
}

description = {
   summary = "ETSI NFV-SOL 002 VNF LCM Coordination API client for CoordinateVNF scripts",
   detailed = [[
lcmcoord talks to a VNF's element manager over the VNF LCM Coordination API on behalf of
a VNFM (such as OpenStack Tacker): synchronous and asynchronous coordinations, Retry-After,
one wall-clock deadline, OAuth 2.0 and mutual TLS, plus HTTP, retry, SSH and logging
primitives for scripts. This rock is the Lua binding over the system's liblcmcoord.
]],
   license = "Apache-2.0",
   labels = { "nfv", "etsi", "tacker", "http" },
}

dependencies = {
   "lua >= 5.4, < 5.5",
}

external_dependencies = {
   LCMCOORD = {
      header = "lcmcoord/lcmcoord.h",
      library = "lcmcoord",
   },
}

build = {
   type = "builtin",
   modules = {
      lcmcoord = {
         sources = {
            "bindings/lua/batch.c",
            "bindings/lua/client.c",
            "bindings/lua/credentials.c",
            "bindings/lua/engine.c",
            "bindings/lua/errors.c",
            "bindings/lua/fields.c",
            "bindings/lua/guard.c",
            "bindings/lua/http.c",
            "bindings/lua/json.c",
            "bindings/lua/module.c",
            "bindings/lua/request.c",
            "bindings/lua/response.c",
            "bindings/lua/retry.c",
            "bindings/lua/script.c",
            "bindings/lua/ssh.c",
            "bindings/lua/task.c",
         },
         defines = { "_POSIX_C_SOURCE=200809L" },
         incdirs = { "bindings/lua", "$(LCMCOORD_INCDIR)" },
         libdirs = { "$(LCMCOORD_LIBDIR)" },
         libraries = { "lcmcoord", "jansson" },
      },
   },
   copy_directories = { "docs" },
}
