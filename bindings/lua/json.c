/*
 * JSON for the Lua module, through lua-cjson: the runtime speaks JSON text, scripts speak
 * tables. The module keeps a private cjson instance in the registry, configured for strict
 * decoding (no NaN, Infinity or hex numbers from the network), so that a script changing
 * the settings of lcmcoord.json or of its own `cjson` cannot change what the module sends.
 */
#include <string.h>

#include "binding.h"

#define JSON_KEY "lcmcoord.json"

/* Calls instance[name](...) with nargs arguments already on the stack; results as lua_call. */
static void call_method(lua_State *L, int instance, const char *name, int nargs, int nresults)
{
    lua_getfield(L, instance, name);
    lua_insert(L, -nargs - 1);
    lua_call(L, nargs, nresults);
}

void lcmc_lua_json_open(lua_State *L)
{
    /* `require` finds the interpreter's own cjson, or the copy the host preloads. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    int cjson = lua_gettop(L);

    call_method(L, cjson, "new", 0, 1);
    int private = lua_gettop(L);
    lua_pushboolean(L, 0);
    call_method(L, private, "decode_invalid_numbers", 1, 0);
    lua_pushboolean(L, 0);
    call_method(L, private, "encode_invalid_numbers", 1, 0);
    lua_pushvalue(L, private);
    lua_setfield(L, LUA_REGISTRYINDEX, JSON_KEY);

    /* The public instance starts with cjson's stock settings, as a script would expect. */
    call_method(L, cjson, "new", 0, 1);
    lua_replace(L, cjson);
    lua_settop(L, cjson);
}

/* Runs the private instance's `name` on the value at idx under lua_pcall: cjson raises on
 * bad input, and that must become a return value here. */
static int protected_call(lua_State *L, const char *name, int idx)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, JSON_KEY);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    lua_pushvalue(L, idx);
    return lua_pcall(L, 1, 1, 0) == LUA_OK;
}

const char *lcmc_lua_json_encode(lua_State *L, int idx, size_t *len)
{
    if (!protected_call(L, "encode", idx)) {
        if (!lua_isstring(L, -1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "cannot encode the value as JSON");
        }
        return NULL;
    }
    return lua_tolstring(L, -1, len);
}

int lcmc_lua_json_decode(lua_State *L, const char *text, size_t len)
{
    lua_pushlstring(L, text, len);
    int ok = protected_call(L, "decode", -1);
    lua_remove(L, -2);
    if (!ok && !lua_isstring(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "cannot decode the text as JSON");
    }
    return ok;
}

int lcmc_lua_is_absent(lua_State *L, int idx)
{
    /* cjson decodes null as a NULL light userdata, so a field that is null in the stdin
     * JSON (e.g. "authentication": null) reads as absent. */
    return lua_isnoneornil(L, idx) ||
           (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL);
}
