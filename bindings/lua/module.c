/*
 * luaopen_lcmcoord: assembles the `lcmcoord` Lua module from its parts (the client type,
 * error values, JSON, the engine of the state). Loaded by a stock interpreter from
 * lib/lua/5.4/lcmcoord.so, or preloaded by the `lcmcoord run` host. See docs/lua-api.md.
 */
#include "binding.h"

int luaopen_lcmcoord(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"create_coordination", lcmc_lua_create_coordination},
        {"client", lcmc_lua_client_new},
        {"is_error", lcmc_lua_is_error_fn},
        {"record", lcmc_lua_engine_record},
        {"request", lcmc_lua_request},
        {NULL, NULL},
    };
    luaL_checkversion(L);
    lcmc_lua_errors_open(L);
    lcmc_lua_engine_open(L);
    lcmc_lua_guard_open(L);
    lcmc_lua_client_open(L);
    lcmc_lua_task_open(L);

    luaL_newlib(L, functions);
    lcmc_lua_json_open(L);
    lua_getfield(L, -1, "null");
    lua_setfield(L, -3, "null");
    lua_setfield(L, -2, "json");
    lcmc_lua_open_auth(L);
    lua_setfield(L, -2, "auth");
    lcmc_lua_open_retry(L);
    lua_setfield(L, -2, "retry");
    lcmc_lua_open_http(L);
    lua_setfield(L, -2, "http");
    lcmc_lua_open_script(L);
    lcmc_lua_open_ssh(L);
    lua_pushliteral(L, LCMC_VERSION_STRING);
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, "lcmcoord " LCMC_VERSION_STRING);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
