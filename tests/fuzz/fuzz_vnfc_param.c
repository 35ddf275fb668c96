/*
 * Fuzz target: the VNFC parameters `lcmcoord run` reads on stdin, decoded with the Lua
 * module's JSON and checked for the fields every CoordinateVNF script needs.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz.h"
#include "host/params.h"
#include "lcmcoord_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
        /* As the host does: the module alone, which carries its own JSON. */
        luaL_requiref(L, "lcmcoord", luaopen_lcmcoord, 0);
        lua_pop(L, 1);
    }
    char why[256];
    int top = lua_gettop(L);
    lcmc_params_push(L, (const char *)data, size, 1, why, sizeof why);
    lua_settop(L, top);
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
