/*
 * The VNFC parameters a CoordinateVNF script receives on stdin, checked before the script
 * runs: JSON, an object, the fields every script needs (`endpoint`, `LcmCoordRequest`, and
 * `authentication` when given) and a usable `timeout`, so that a VNFM that passes something
 * malformed learns which field is wrong (exit 2) instead of the script failing later with a Lua
 * error.
 */
#include <stdio.h>
#include <string.h>

#include "params.h"
#include "lcmcoord_lua.h"

static int say(char *why, size_t why_size, const char *text)
{
    snprintf(why, why_size, "%s", text);
    return -1;
}

int lcmc_params_push(lua_State *L, const char *text, size_t length, int check_fields, char *why,
                     size_t why_size)
{
    size_t skip = 0;
    while (skip < length && strchr(" \t\r\n", text[skip]) != NULL)
        skip++;
    if (skip == length)
        return say(why, why_size, "stdin is empty (expected the VNFC parameters as a JSON object)");
    if (!lcmc_lua_json_decode(L, text, length)) {
        snprintf(why, why_size, "stdin is not valid JSON: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    /* Only an object is a parameter dict (an array decodes to a marked table). */
    if (!lua_istable(L, -1) || lcmc_lua_json_is_array(L, -1)) {
        lua_pop(L, 1);
        return say(why, why_size, "stdin is not a JSON object");
    }
    if (!check_fields)
        return 0;
    static const struct {
        const char *name;
        int type;
        int optional; /* absent or null: the EM takes no credentials (docs/lua-api.md) */
    } required[] = {
        {"endpoint", LUA_TSTRING, 0},
        {"authentication", LUA_TTABLE, 1},
        {"LcmCoordRequest", LUA_TTABLE, 0},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int type = lua_getfield(L, -1, required[i].name);
        int is_null = type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL;
        lua_pop(L, 1);
        if (required[i].optional && (type == LUA_TNIL || is_null))
            continue;
        if (type == LUA_TNIL) {
            snprintf(why, why_size, "the VNFC parameters have no '%s'", required[i].name);
            lua_pop(L, 1);
            return -1;
        }
        if (type != required[i].type) {
            snprintf(why, why_size, "the VNFC parameters' '%s' must be %s", required[i].name,
                     required[i].type == LUA_TSTRING ? "a string" : "an object");
            lua_pop(L, 1);
            return -1;
        }
    }
    /* A timeout the script cannot use would silently become the default (3600 s): "30s"
     * is the operator's mistake, and they should hear of it. */
    int type = lua_getfield(L, -1, "timeout");
    int is_null = type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL;
    double timeout = type == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    if (type != LUA_TNIL && !is_null && !(timeout > 0 && timeout <= LCMC_PARAMS_TIMEOUT_MAX)) {
        snprintf(why, why_size,
                 "the VNFC parameters' 'timeout' must be a positive number of seconds up to %g "
                 "(or null for the default 3600)",
                 LCMC_PARAMS_TIMEOUT_MAX);
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}
