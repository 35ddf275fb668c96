/*
 * Error values of the Lua module: one table per failure, {kind, message, status, problem,
 * method, url}, sharing the metatable "lcmcoord.error" whose __tostring is the message, so
 * that `assert(c:coordinate(r))`, `error(err)` and the host's one-line report all read
 * well. The fields come from the runtime's lcmc_error, whose messages never carry
 * credentials; nothing else is added here.
 */
#include <string.h>

#include "binding.h"

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "lcmcoord error");
    }
    return 1;
}

void lcmc_lua_errors_open(lua_State *L)
{
    if (luaL_newmetatable(L, LCMC_LUA_ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

static void set_string(lua_State *L, const char *field, const char *value)
{
    if (value == NULL)
        return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, field);
}

void lcmc_lua_push_status_error(lua_State *L, lcmc_status status, const char *message,
                                const char *method, const char *url)
{
    lua_createtable(L, 0, 6);
    set_string(L, "kind", lcmc_status_name(status));
    set_string(L, "message", message != NULL ? message : lcmc_strerror(status));
    set_string(L, "method", method);
    if (url != NULL) {
        lcmc_lua_push_display_url(L, url);
        lua_setfield(L, -2, "url");
    }
    luaL_setmetatable(L, LCMC_LUA_ERROR_MT);
}

#define INTERRUPT_OUTCOME_KEY "lcmcoord.interrupt_outcome"

/* An interrupted coordination's error says what became of the EM's side ("; the EM was
 * asked to cancel", "; the EM may hold a coordination that could not be cancelled ..."). A
 * host's own interrupt (a hook raising "interrupted" as the script resumes) replaces the
 * error the script saw, so the outcome is kept here for the host's report. A coordination
 * that may be left behind outranks one that was cancelled. */
static void remember_interrupt_outcome(lua_State *L, const char *message)
{
    static const char prefix[] = "interrupted;";
    if (strncmp(message, prefix, sizeof prefix - 1) != 0)
        return;
    lua_getfield(L, LUA_REGISTRYINDEX, INTERRUPT_OUTCOME_KEY);
    const char *kept = lua_tostring(L, -1);
    int keep_old = kept != NULL && strstr(kept, "may hold") != NULL && !strstr(message, "may hold");
    lua_pop(L, 1);
    if (keep_old)
        return;
    lua_pushstring(L, message);
    lua_setfield(L, LUA_REGISTRYINDEX, INTERRUPT_OUTCOME_KEY);
}

const char *lcmc_lua_interrupt_outcome(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, INTERRUPT_OUTCOME_KEY);
    const char *kept = lua_tostring(L, -1); /* the registry keeps the string alive */
    lua_pop(L, 1);
    return kept;
}

void lcmc_lua_push_error(lua_State *L, const lcmc_error *err, lcmc_status fallback)
{
    if (err == NULL) {
        lcmc_lua_push_status_error(L, fallback, NULL, NULL, NULL);
        return;
    }
    lcmc_status status = lcmc_error_status(err);
    if (status == LCMC_OK)
        status = fallback;
    if (status == LCMC_ECANCELLED)
        remember_interrupt_outcome(L, lcmc_error_message(err));
    lcmc_lua_push_status_error(L, status, lcmc_error_message(err), lcmc_error_method(err),
                               lcmc_error_url(err));
    int http_status = lcmc_error_http_status(err);
    if (http_status > 0) {
        lua_pushinteger(L, http_status);
        lua_setfield(L, -2, "status");
    }
    const json_t *problem = lcmc_error_problem_value(err);
    if (problem != NULL) {
        /* One that cannot be converted is left out rather than failing the report of the
         * original error (the runtime parsed it under the same limits: it can be). */
        if (lcmc_lua_push_json(L, problem))
            lua_setfield(L, -2, "problem");
        else
            lua_pop(L, 1);
    }
}

void lcmc_lua_push_display_url(lua_State *L, const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *authority = scheme_end != NULL ? scheme_end + 3 : url;
    size_t authority_len = strcspn(authority, "/?#");
    const char *at = memchr(authority, '@', authority_len);
    if (at == NULL) {
        lua_pushstring(L, url);
        return;
    }
    lua_pushlstring(L, url, (size_t)(authority - url));
    lua_pushliteral(L, "***");
    lua_pushstring(L, at);
    lua_concat(L, 3);
}

int lcmc_lua_is_error(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, LCMC_LUA_ERROR_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

int lcmc_lua_is_error_fn(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, lcmc_lua_is_error(L, 1));
    return 1;
}

int lcmc_lua_error_status(lua_State *L, int idx, lcmc_status *status)
{
    if (!lcmc_lua_is_error(L, idx))
        return 0;
    lua_getfield(L, idx, "kind");
    const char *kind = lua_tostring(L, -1);
    lcmc_status found = LCMC_EPROTOCOL;
    for (int s = LCMC_OK; kind != NULL && s <= LCMC_ENOMEM; s++) {
        if (strcmp(kind, lcmc_status_name((lcmc_status)s)) == 0) {
            found = (lcmc_status)s;
            break;
        }
    }
    lua_pop(L, 1);
    if (status != NULL)
        *status = found;
    return 1;
}
