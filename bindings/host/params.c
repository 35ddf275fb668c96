/*
 * The VNFC parameters a CoordinateVNF script receives on stdin, checked before the script
 * runs: JSON, an object, and the fields every script needs (`endpoint`, `authentication`,
 * `LcmCoordRequest`), so that a VNFM that passes something malformed learns which field is
 * wrong (exit 2) instead of the script failing later with a Lua error.
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
    /* cjson gives a table for arrays too; only an object is a parameter dict. */
    if (text[skip] != '{') {
        lua_pop(L, 1);
        return say(why, why_size, "stdin is not a JSON object");
    }
    if (!check_fields)
        return 0;
    static const struct {
        const char *name;
        int type;
        int null_allowed;
    } required[] = {
        {"endpoint", LUA_TSTRING, 0},
        {"authentication", LUA_TTABLE, 1}, /* null: the EM takes no credentials */
        {"LcmCoordRequest", LUA_TTABLE, 0},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        int type = lua_getfield(L, -1, required[i].name);
        int is_null = type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL;
        lua_pop(L, 1);
        if (type == LUA_TNIL) {
            snprintf(why, why_size, "the VNFC parameters have no '%s'", required[i].name);
            lua_pop(L, 1);
            return -1;
        }
        if (type != required[i].type && !(is_null && required[i].null_allowed)) {
            snprintf(why, why_size, "the VNFC parameters' '%s' must be %s", required[i].name,
                     required[i].type == LUA_TSTRING ? "a string" : "an object");
            lua_pop(L, 1);
            return -1;
        }
    }
    return 0;
}
