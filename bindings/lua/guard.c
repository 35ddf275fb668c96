/*
 * The guard userdata: owns a coordination, a response, a JSON text or a JSON value that a
 * runtime call handed over while the binding turns it into Lua values (or that the binding
 * is building for the runtime). Building those values can raise
 * (out of memory); the guard's __gc then frees what was handed over instead of leaking it.
 * On the normal path the binding releases the guard as soon as the values are built.
 */
#include <string.h>

#include "binding.h"

void lcmc_lua_guard_release(lcmc_lua_guard *guard)
{
    lcmc_coordination_free(guard->coordination);
    guard->coordination = NULL;
    lcmc_response_free(guard->response);
    guard->response = NULL;
    /* The JSON text of an authentication table holds its passwords. */
    lcmc_free_secret(guard->text);
    guard->text = NULL;
    json_decref(guard->value);
    guard->value = NULL;
}

static int guard_gc(lua_State *L)
{
    lcmc_lua_guard_release(luaL_checkudata(L, 1, LCMC_LUA_GUARD_MT));
    return 0;
}

void lcmc_lua_guard_open(lua_State *L)
{
    if (luaL_newmetatable(L, LCMC_LUA_GUARD_MT)) {
        lua_pushcfunction(L, guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}

lcmc_lua_guard *lcmc_lua_guard_new(lua_State *L)
{
    lcmc_lua_guard_open(L); /* cheap when the metatable exists */
    lcmc_lua_guard *guard = lua_newuserdatauv(L, sizeof *guard, 0);
    memset(guard, 0, sizeof *guard);
    luaL_setmetatable(L, LCMC_LUA_GUARD_MT);
    return guard;
}
