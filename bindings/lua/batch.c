/*
 * client:coordinate_all(reqs [, opts]): many coordinations at once on the one engine, each
 * under its own deadline, sharing the client's connections and token. The runtime does the
 * concurrency; this file only turns a list of request tables into coordinations and their
 * outcomes back into a list, in input order. A batch userdata owns the coordinations, so
 * that a Lua error in between frees them at the next collection.
 */
#include <stdlib.h>
#include <string.h>

#include "binding.h"

#define BATCH_MT "lcmcoord.batch"

typedef struct batch {
    size_t count;
    lcmc_coordination **coordinations;
} batch;

static int batch_gc(lua_State *L)
{
    batch *b = luaL_checkudata(L, 1, BATCH_MT);
    for (size_t i = 0; i < b->count; i++)
        lcmc_coordination_free(b->coordinations[i]);
    free(b->coordinations);
    b->coordinations = NULL;
    b->count = 0;
    return 0;
}

static batch *new_batch(lua_State *L, size_t count)
{
    if (luaL_newmetatable(L, BATCH_MT)) {
        lua_pushcfunction(L, batch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    batch *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->count = 0;
    b->coordinations = NULL;
    luaL_setmetatable(L, BATCH_MT);
    if (count > 0 && (b->coordinations = calloc(count, sizeof *b->coordinations)) == NULL)
        luaL_error(L, "not enough memory");
    b->count = count;
    return b;
}

/* push_outcome(coordination, i, results): results[i] = {coord=} or {err=} (NULL: no
 * memory for the coordination). Called protected: it allocates. */
static int push_outcome(lua_State *L)
{
    lcmc_coordination *coord = lua_touserdata(L, 1);
    lua_Integer i = lua_tointeger(L, 2);
    lua_createtable(L, 0, 1);
    if (coord == NULL) {
        lcmc_lua_push_status_error(L, LCMC_ENOMEM, NULL, NULL, NULL);
        lua_setfield(L, -2, "err");
    } else if (lcmc_lua_push_result(L, coord, lcmc_coordination_status(coord))) {
        lua_setfield(L, -2, "coord");
    } else {
        lua_setfield(L, -2, "err");
    }
    lua_rawseti(L, 3, i);
    return 0;
}

/* client:coordinate_all(reqs [, {timeout=, max_connections=}]) -> {{coord=}|{err=}, ...} */
int lcmc_lua_client_coordinate_all(lua_State *L)
{
    lcmc_client *client = lcmc_lua_to_client(L, 1);
    if (client == NULL) {
        luaL_checkudata(L, 1, LCMC_LUA_CLIENT_MT);
        return luaL_error(L, "attempt to use a closed client");
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    double timeout = 0;
    lua_Integer max_connections = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "timeout");
        if (!lua_isnil(L, -1)) {
            timeout = lua_tonumber(L, -1);
            luaL_argcheck(L, lua_isnumber(L, -1) && lcmc_lua_seconds_ok(timeout, 0), 3,
                          "timeout: positive number of seconds up to " LCMC_LUA_MAX_SECONDS_TEXT
                          " expected");
        }
        lua_getfield(L, 3, "max_connections");
        if (!lua_isnil(L, -1)) {
            /* 2.0 is as good as 2: a whole float is a whole number. */
            int whole = 0;
            max_connections = lua_tointegerx(L, -1, &whole);
            luaL_argcheck(L, whole && max_connections > 0, 3,
                          "max_connections: positive integer expected");
        }
        lua_pop(L, 2);
    }
    lua_Integer n = luaL_len(L, 2);
    /* A __len may say anything; the count sizes arrays below. */
    luaL_argcheck(L, n >= 0 && n <= 1 << 24, 2, "between 0 and 16777216 requests expected");
    /* Convert everything first: a bad request raises before anything is sent. Each value
     * is held by a guard, freed with it if a Lua error comes in between. */
    lua_createtable(L, (int)(n < 1 << 20 ? n : 0), 0);
    int values = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, 2, i) != LUA_TTABLE)
            return luaL_argerror(L, 2, lua_pushfstring(L, "request %d is not a table", (int)i));
        lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
        if (!lcmc_lua_to_json(L, -2, guard))
            return luaL_argerror(L, 2,
                                 lua_pushfstring(L, "request %d: %s", (int)i, lua_tostring(L, -1)));
        lua_rawseti(L, values, i);
        lua_pop(L, 1);
    }
    lcmc_engine *engine = lcmc_lua_engine(L);
    /* For this batch only: other clients of the state keep the engine's setting. */
    long previous_connections = lcmc_engine_max_host_connections(engine);
    if (max_connections > 0)
        lcmc_engine_set_max_host_connections(engine, (long)max_connections);
    batch *b = new_batch(L, (size_t)n);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, values, i);
        lcmc_lua_guard *guard = lua_touserdata(L, -1);
        lcmc_coordination_start_value(&b->coordinations[i - 1], client, guard->value, timeout);
        /* The runtime has written the body it sends: the value can go now. */
        lcmc_lua_guard_release(guard);
        lua_pop(L, 1);
    }
    /* Each result is copied out as soon as its coordination is done, while the others go
     * on (waiting on one runs the engine for all): a finished coordination's LcmCoord is
     * freed then, so 10,000 of them are never held at once. */
    lua_createtable(L, (int)(n < 1 << 20 ? n : 0), 0);
    int results = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lcmc_coordination *coord = b->coordinations[i - 1];
        if (coord != NULL)
            lcmc_coordination_wait(coord);
        lua_pushcfunction(L, push_outcome);
        lua_pushlightuserdata(L, coord);
        lua_pushinteger(L, i);
        lua_pushvalue(L, results);
        if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
            /* Out of memory (or interrupted): the others end as they would have, then the
             * error goes on; the batch's collection frees them. */
            lcmc_engine_run(engine);
            lcmc_engine_set_max_host_connections(engine, previous_connections);
            return lua_error(L);
        }
        /* Copied out: free it now rather than hold every coordination until the end. */
        lcmc_coordination_free(coord);
        b->coordinations[i - 1] = NULL;
    }
    lcmc_engine_run(engine); /* anything they left (a cancel still out) */
    lcmc_engine_set_max_host_connections(engine, previous_connections);
    /* The coordinations go before their client may: the results are copied out. */
    lua_pushcfunction(L, batch_gc);
    lua_pushvalue(L, -3);
    lua_call(L, 1, 0);
    return 1;
}
