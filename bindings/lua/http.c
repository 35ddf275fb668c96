/*
 * lcmcoord.http.request: one HTTP request to any URL from a script, on the same engine,
 * connections, TLS rules and redaction as the coordination client: credentials (an auth
 * object or an `authentication` table) go only to the URL's own origin, redirects are not
 * followed, bodies are capped, and a retry policy and one deadline bound the whole.
 */
#include <string.h>
#include <strings.h>

#include "binding.h"

static const char *const request_fields[] = {"method", "url",      "headers", "body",
                                             "json",   "auth",     "tls",     "timeout",
                                             "retry",  "max_body", NULL};

static int request_error(lua_State *L, const char *field, const char *expected)
{
    return luaL_argerror(L, 1, lua_pushfstring(L, "%s: %s expected", field, expected));
}

/* Header lines "Name: value" from the `headers` table, kept alive in `keep`. */
static const char **read_headers(lua_State *L, int keep, int *has_content_type, int *has_accept)
{
    if (lua_getfield(L, 1, "headers") == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        request_error(L, "headers", "table");
    int t = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        n++;
        lua_pop(L, 1);
    }
    const char **lines = lua_newuserdatauv(L, (n + 1) * sizeof *lines, 0);
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
            request_error(L, "headers", "table of strings");
        const char *name = lua_tostring(L, -2);
        if (strpbrk(name, ":\r\n") || strpbrk(lua_tostring(L, -1), "\r\n"))
            request_error(L, "headers", "names and values without ':' or line breaks");
        *has_content_type |= strcasecmp(name, "content-type") == 0;
        *has_accept |= strcasecmp(name, "accept") == 0;
        lua_pushfstring(L, "%s: %s", name, lua_tostring(L, -1));
        lines[i++] = lua_tostring(L, -1);
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
        lua_pop(L, 1);
    }
    lines[i] = NULL;
    lua_pop(L, 1);
    return lines;
}

/* What lcmcoord.http.request returns for lcmc_request's outcome (the response in the
 * guard at the top of the stack, or none). */
static int request_results(lua_State *L, lcmc_engine *engine, lcmc_status status,
                           lcmc_lua_guard *guard)
{
    if (guard->response == NULL) {
        lua_pushnil(L);
        lcmc_lua_push_error(L, lcmc_engine_last_error(engine), status);
        return 2;
    }
    if (status != LCMC_OK) {
        lua_pushnil(L);
        lcmc_lua_push_error(L, lcmc_response_error(guard->response), status);
        lcmc_lua_guard_release(guard);
        return 2;
    }
    lcmc_lua_push_response(L, guard->response);
    lcmc_lua_guard_release(guard);
    return 1;
}

/* Inside a task: the request ended, the coroutine resumed. */
static int request_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    lcmc_lua_guard *guard = lua_touserdata(L, (int)ctx);
    lcmc_lua_task *task = lcmc_lua_task_of(L);
    lcmc_status outcome = lcmc_lua_task_take_response(task, &guard->response);
    lua_settop(L, (int)ctx);
    return request_results(L, lcmc_lua_engine(L), outcome, guard);
}

/* lcmcoord.http.request{...} -> response table | nil, err */
int lcmc_lua_http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lcmc_lua_check_fields(L, 1, 1, request_fields, "field");
    lua_newtable(L);
    int keep = lua_gettop(L);

    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    if (lua_getfield(L, 1, "url") != LUA_TSTRING)
        request_error(L, "url", "string");
    o.url = lua_tostring(L, -1);
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    if (lua_getfield(L, 1, "method") != LUA_TNIL) {
        if (!lua_isstring(L, -1) || lua_rawlen(L, -1) == 0)
            request_error(L, "method", "string");
        o.method = lua_tostring(L, -1);
    }
    lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);

    int has_content_type = 0, has_accept = 0;
    const char **headers = read_headers(L, keep, &has_content_type, &has_accept);

    int has_body = lua_getfield(L, 1, "body") != LUA_TNIL;
    int has_json = lua_getfield(L, 1, "json") != LUA_TNIL;
    if (has_body && has_json)
        return luaL_argerror(L, 1, "body and json: give one of them");
    if (has_body) {
        /* A string only: a number would be converted into a string nothing keeps alive. */
        if (lua_type(L, -2) != LUA_TSTRING)
            request_error(L, "body", "string");
        o.body = lua_tolstring(L, -2, &o.body_length);
    } else if (has_json) {
        o.body = lcmc_lua_json_encode(L, -1, &o.body_length);
        if (o.body == NULL)
            return luaL_argerror(L, 1, lua_pushfstring(L, "json: %s", lua_tostring(L, -1)));
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
    }
    lua_pop(L, 2);
    if (has_json && (!has_content_type || !has_accept)) {
        /* A json= body says what it is, and that JSON is expected back. */
        size_t n = 0;
        for (const char **h = headers; h && *h; h++)
            n++;
        const char **more = lua_newuserdatauv(L, (n + 3) * sizeof *more, 0);
        lua_rawseti(L, keep, (lua_Integer)luaL_len(L, keep) + 1);
        size_t i = 0;
        for (const char **h = headers; h && *h; h++)
            more[i++] = *h;
        if (!has_content_type)
            more[i++] = "Content-Type: application/json";
        if (!has_accept)
            more[i++] = "Accept: application/json";
        more[i] = NULL;
        headers = more;
    }
    o.headers = headers;

    lcmc_tls_options tls = {0};
    lcmc_lua_read_tls(L, 1, 1, keep, &tls);
    o.tls = &tls;
    if (lua_getfield(L, 1, "timeout") != LUA_TNIL) {
        if (!lua_isnumber(L, -1) || !lcmc_lua_seconds_ok(lua_tonumber(L, -1), 0))
            request_error(L, "timeout",
                          "positive number of seconds up to " LCMC_LUA_MAX_SECONDS_TEXT);
        o.timeout = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "max_body") != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0)
            request_error(L, "max_body", "positive integer");
        o.max_body = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    lcmc_retry_policy policy;
    if (lua_getfield(L, 1, "retry") != LUA_TNIL) {
        lcmc_lua_check_policy(L, -1, 1, &policy);
        o.retry = &policy;
    }
    lua_pop(L, 1);

    lcmc_engine *engine = lcmc_lua_engine(L);
    /* Made first: nothing may raise between making credentials and freeing them. */
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    lcmc_credentials *made = NULL;
    if (lua_getfield(L, 1, "auth") != LUA_TNIL) {
        o.credentials = lcmc_lua_to_credentials(L, -1);
        if (o.credentials == NULL) {
            /* An `authentication` table: credentials for this request alone. */
            if (!lua_istable(L, -1))
                request_error(L, "auth", "lcmcoord.auth or authentication table");
            const char *json = lcmc_lua_json_encode(L, -1, NULL);
            if (json == NULL)
                return luaL_argerror(L, 1, lua_pushfstring(L, "auth: %s", lua_tostring(L, -1)));
            lcmc_status status = lcmc_credentials_new(&made, engine, json, &tls);
            if (status != LCMC_OK) {
                lcmc_lua_push_error(L, lcmc_engine_last_error(engine), status);
                return lua_error(L);
            }
            lua_pop(L, 1);
            o.credentials = made;
        }
    }
    /* The auth value stays on the stack: inside a task other code runs while the request
     * is in flight, and an auth object must not be collected under it. */

    lcmc_lua_task *task = lcmc_lua_current_task(L);
    if (task != NULL) {
        /* The guard's place on the stack, which the continuation finds unchanged. */
        return lcmc_lua_task_request(L, task, &o, made, request_resumed,
                                     (lua_KContext)lua_absindex(L, -2));
    }
    lcmc_status status = lcmc_request(engine, &o, &guard->response);
    lcmc_credentials_free(made);
    return request_results(L, engine, status, guard);
}

void lcmc_lua_open_http(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lcmc_lua_http_request);
    lua_setfield(L, -2, "request");
}
