/*
 * Turns what the runtime hands back into the plain tables scripts see: a response of a
 * single request ({status, headers, body, json, elapsed, url}) and the LcmCoord of a
 * finished coordination. Tables rather than userdata, so that scripts can print, copy and
 * compare them with ordinary Lua.
 */
#include <ctype.h>
#include <string.h>

#include "binding.h"

/* Headers by lower-case name; repeated headers are joined with ", " as RFC 9110 allows for
 * list-valued fields, so that no value is silently lost. */
static void push_headers(lua_State *L, const lcmc_response *response)
{
    size_t count = lcmc_response_header_count(response);
    lua_createtable(L, 0, (int)(count < 64 ? count : 64));
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL;
        const char *value = NULL;
        lcmc_response_header(response, i, &name, &value);
        if (name == NULL)
            continue;
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (const char *c = name; *c != '\0'; c++)
            luaL_addchar(&b, (char)tolower((unsigned char)*c));
        luaL_pushresult(&b);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushstring(L, value != NULL ? value : "");
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, value != NULL ? value : "");
        }
        lua_rawset(L, -3);
    }
}

void lcmc_lua_push_response(lua_State *L, const lcmc_response *response)
{
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, lcmc_response_status(response));
    lua_setfield(L, -2, "status");
    push_headers(L, response);
    lua_setfield(L, -2, "headers");

    size_t length = 0;
    const char *body = lcmc_response_body(response, &length);
    if (body == NULL)
        length = 0;
    lua_pushlstring(L, body != NULL ? body : "", length);
    lua_setfield(L, -2, "body");
    /* Whatever the Content-Type says: EMs get it wrong often enough (tacker.md, point 5)
     * that the body itself decides. Parsed by the runtime, under its rules. */
    const json_t *value = lcmc_response_body_value(response);
    if (value != NULL) {
        if (lcmc_lua_push_json(L, value))
            lua_setfield(L, -2, "json");
        else
            lua_pop(L, 1);
    }

    lua_pushnumber(L, lcmc_response_elapsed(response));
    lua_setfield(L, -2, "elapsed");
    /* Parsed once here (seconds or HTTP-date), so that retry policies and scripts need no
     * date parser of their own. */
    double retry_after = 0;
    if (lcmc_response_retry_after(response, &retry_after)) {
        lua_pushnumber(L, retry_after);
        lua_setfield(L, -2, "retry_after");
    }
    const char *url = lcmc_response_url(response);
    if (url != NULL) {
        lcmc_lua_push_display_url(L, url);
        lua_setfield(L, -2, "url");
    }
}

int lcmc_lua_push_result(lua_State *L, const lcmc_coordination *coord, lcmc_status status)
{
    const json_t *lcmcoord = status == LCMC_OK ? lcmc_coordination_lcmcoord_value(coord) : NULL;
    if (lcmcoord == NULL) {
        lcmc_lua_push_error(L, lcmc_coordination_error(coord),
                            status != LCMC_OK ? status : LCMC_EPROTOCOL);
        return 0;
    }
    if (!lcmc_lua_push_json(L, lcmcoord)) {
        /* The runtime parsed it under the same depth limit, so this cannot happen; if it
         * did, it would still be a protocol failure from the script's point of view. */
        lua_pushfstring(L, "cannot convert the LcmCoord: %s", lua_tostring(L, -1));
        lcmc_lua_push_status_error(L, LCMC_EPROTOCOL, lua_tostring(L, -1), NULL, NULL);
        lua_replace(L, -3);
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}
