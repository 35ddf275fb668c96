/*
 * The one engine of a Lua state. Every client a script makes runs on it, so that a host can
 * interrupt all of them from a signal handler and write one record of all coordinations.
 * It lives in a userdata held by the registry, made on first use; its __gc frees it when
 * the state is closed. Clients are made after it and Lua finalizes in reverse order, so
 * every client is freed before the engine, as the runtime requires.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"

#define ENGINE_KEY "lcmcoord.engine.instance" /* not the metatable's name */

typedef struct engine_box {
    lcmc_engine *engine;
    lcmc_tls_options tls;            /* defaults for clients; the strings are owned here */
    lcmc_lua_client_defaults client; /* timing defaults for clients, from the host */
} engine_box;

static void clear_tls(lcmc_tls_options *tls)
{
    free((char *)tls->cacert);
    free((char *)tls->capath);
    free((char *)tls->cert);
    free((char *)tls->key);
    free((char *)tls->key_password);
    memset(tls, 0, sizeof *tls);
}

static int engine_gc(lua_State *L)
{
    engine_box *box = luaL_checkudata(L, 1, LCMC_LUA_ENGINE_MT);
    clear_tls(&box->tls);
    lcmc_engine_free(box->engine);
    box->engine = NULL;
    return 0;
}

void lcmc_lua_engine_open(lua_State *L)
{
    if (luaL_newmetatable(L, LCMC_LUA_ENGINE_MT)) {
        lua_pushcfunction(L, engine_gc);
        lua_setfield(L, -2, "__gc");
        /* Scripts never see the box; this keeps getmetatable from exposing __gc if one
         * reaches it through debug functions. */
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

/* The box of this state, made (empty, with its metatable) when missing. */
static engine_box *get_box(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, ENGINE_KEY);
    engine_box *box = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (box != NULL)
        return box;
    /* A host may ask before `require "lcmcoord"` has run. */
    lcmc_lua_engine_open(L);
    box = lua_newuserdatauv(L, sizeof *box, 0);
    memset(box, 0, sizeof *box);
    luaL_setmetatable(L, LCMC_LUA_ENGINE_MT);
    lua_setfield(L, LUA_REGISTRYINDEX, ENGINE_KEY);
    return box;
}

/* Under a stock interpreter nobody else sets a log: warnings (credentials over plain
 * http, TLS verification off) and script errors still deserve stderr. A host replaces it. */
static void log_to_stderr(void *userdata, lcmc_log_level level, const char *message)
{
    (void)userdata;
    fprintf(stderr, "lcmcoord: %s%s\n", level == LCMC_LOG_WARN ? "warning: " : "", message);
}

lcmc_engine *lcmc_lua_engine(lua_State *L)
{
    engine_box *box = get_box(L);
    if (box->engine == NULL) {
        lcmc_status status = lcmc_engine_new(&box->engine);
        if (status != LCMC_OK) {
            box->engine = NULL;
            lcmc_lua_push_status_error(L, status, "cannot create the lcmcoord engine", NULL, NULL);
            lua_error(L);
        }
        lcmc_engine_set_log(box->engine, log_to_stderr, NULL, LCMC_LOG_WARN);
    }
    return box->engine;
}

static int copy_string(const char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 1;
    *dst = strdup(src);
    return *dst != NULL;
}

void lcmc_lua_set_default_tls(lua_State *L, const lcmc_tls_options *tls)
{
    engine_box *box = get_box(L);
    clear_tls(&box->tls);
    if (tls == NULL)
        return;
    lcmc_tls_options copy = {0};
    copy.insecure = tls->insecure;
    if (!copy_string(&copy.cacert, tls->cacert) || !copy_string(&copy.capath, tls->capath) ||
        !copy_string(&copy.cert, tls->cert) || !copy_string(&copy.key, tls->key) ||
        !copy_string(&copy.key_password, tls->key_password)) {
        clear_tls(&copy);
        luaL_error(L, "not enough memory");
    }
    box->tls = copy;
}

const lcmc_tls_options *lcmc_lua_default_tls(lua_State *L)
{
    return &get_box(L)->tls;
}

void lcmc_lua_set_default_client_options(lua_State *L, const lcmc_lua_client_defaults *defaults)
{
    engine_box *box = get_box(L);
    memset(&box->client, 0, sizeof box->client);
    if (defaults != NULL)
        box->client = *defaults;
}

const lcmc_lua_client_defaults *lcmc_lua_default_client_options(lua_State *L)
{
    return &get_box(L)->client;
}

int lcmc_lua_engine_record(lua_State *L)
{
    lcmc_engine *engine = lcmc_lua_engine(L);
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    lcmc_status status = lcmc_engine_record_value(engine, &guard->value);
    if (status != LCMC_OK) {
        lcmc_lua_guard_release(guard);
        lcmc_lua_push_status_error(L, status, NULL, NULL, NULL);
        return lua_error(L);
    }
    if (!lcmc_lua_push_json(L, guard->value))
        return luaL_error(L, "cannot convert the record: %s", lua_tostring(L, -1));
    lcmc_lua_guard_release(guard);
    return 1;
}
