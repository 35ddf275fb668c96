/*
 * lcmcoord.auth: credentials objects made from the ETSI `authentication` structure, for
 * lcmcoord.http.request and clients alike (they share the engine's token cache). Scripts
 * that must build a request themselves get the Authorization value from :header(); the
 * object itself never shows a secret (its __tostring names only the type).
 */
#include <string.h>

#include "binding.h"

#define CREDENTIALS_MT "lcmcoord.auth"

typedef struct credentials_box {
    lcmc_credentials *credentials;
} credentials_box;

const char *lcmc_lua_credentials_json(lua_State *L, int idx)
{
    if (luaL_testudata(L, idx, CREDENTIALS_MT) == NULL)
        return NULL;
    /* The JSON text it was made from lives in its user value. */
    lua_getiuservalue(L, idx, 1);
    const char *json = lua_tostring(L, -1);
    lua_pop(L, 1);
    return json;
}

lcmc_credentials *lcmc_lua_to_credentials(lua_State *L, int idx)
{
    credentials_box *box = luaL_testudata(L, idx, CREDENTIALS_MT);
    return box ? box->credentials : NULL;
}

static credentials_box *check_open(lua_State *L)
{
    credentials_box *box = luaL_checkudata(L, 1, CREDENTIALS_MT);
    if (box->credentials == NULL)
        luaL_error(L, "attempt to use a closed auth object");
    return box;
}

/* lcmcoord.auth.new(authentication [, tls]) */
static int auth_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_newtable(L); /* keeps strings alive while the runtime reads them */
    int keep = lua_gettop(L);
    lcmc_tls_options tls = {0};
    /* The TLS table is the second argument here; reuse the client's reader on a wrapper. */
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "tls");
    lcmc_lua_read_tls(L, lua_gettop(L), 2, keep, &tls);
    size_t length = 0;
    const char *json = lcmc_lua_json_encode(L, 1, &length);
    if (json == NULL)
        return luaL_argerror(L, 1, lua_pushfstring(L, "authentication: %s", lua_tostring(L, -1)));
    int json_index = lua_gettop(L);

    lcmc_engine *engine = lcmc_lua_engine(L);
    credentials_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    box->credentials = NULL;
    luaL_setmetatable(L, CREDENTIALS_MT);
    lua_pushvalue(L, json_index);
    lua_setiuservalue(L, -2, 1);
    lcmc_status status = lcmc_credentials_new(&box->credentials, engine, json, &tls);
    if (status != LCMC_OK) {
        lcmc_lua_push_error(L, lcmc_engine_last_error(engine), status);
        return lua_error(L);
    }
    return 1;
}

/* auth:header([timeout]) -> "Basic ..."/"Bearer ..." | nil (no credentials) | nil, err */
static int auth_header(lua_State *L)
{
    credentials_box *box = check_open(L);
    double timeout = luaL_optnumber(L, 2, 0);
    luaL_argcheck(L, lcmc_lua_seconds_ok(timeout, 1), 2,
                  "timeout: number of seconds from 0 to " LCMC_LUA_MAX_SECONDS_TEXT " expected");
    char *value = NULL;
    lcmc_engine *engine = lcmc_lua_engine(L);
    lcmc_status status = lcmc_credentials_header(box->credentials, timeout, &value);
    if (status != LCMC_OK) {
        lua_pushnil(L);
        lcmc_lua_push_error(L, lcmc_engine_last_error(engine), status);
        return 2;
    }
    if (value == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, value);
    lcmc_free_secret(value);
    return 1;
}

static int auth_type(lua_State *L)
{
    credentials_box *box = check_open(L);
    lua_pushstring(L, lcmc_credentials_type(box->credentials));
    return 1;
}

static int auth_close(lua_State *L)
{
    credentials_box *box = luaL_checkudata(L, 1, CREDENTIALS_MT);
    lcmc_credentials_free(box->credentials);
    box->credentials = NULL;
    return 0;
}

static int auth_tostring(lua_State *L)
{
    credentials_box *box = luaL_checkudata(L, 1, CREDENTIALS_MT);
    if (box->credentials == NULL)
        lua_pushliteral(L, "lcmcoord.auth (closed)");
    else
        lua_pushfstring(L, "lcmcoord.auth (%s)", lcmc_credentials_type(box->credentials));
    return 1;
}

void lcmc_lua_open_auth(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"header", auth_header}, {"type", auth_type}, {"close", auth_close}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", auth_close}, {"__close", auth_close}, {"__tostring", auth_tostring}, {NULL, NULL}};
    if (luaL_newmetatable(L, CREDENTIALS_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    /* The submodule table: lcmcoord.auth.new */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, auth_new);
    lua_setfield(L, -2, "new");
}
