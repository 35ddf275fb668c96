/*
 * Small things every script needs, on the module's engine so they behave like the rest:
 * lcmcoord.sleep (ends early, with an error value, when the host is interrupted),
 * lcmcoord.now (a monotonic clock for measuring), and lcmcoord.log (lines through the
 * engine's log, so that they follow -v and look like the runtime's own).
 */
#include "binding.h"

/* What lcmcoord.sleep returns for a status of lcmc_engine_sleep. */
static int sleep_results(lua_State *L, lcmc_status status)
{
    if (status != LCMC_OK) {
        lua_pushnil(L);
        lcmc_lua_push_status_error(
            L, status, status == LCMC_ECANCELLED ? "interrupted while sleeping" : NULL, NULL, NULL);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int sleep_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return sleep_results(L, lcmc_lua_task_sleep_result(lcmc_lua_task_of(L)));
}

/* lcmcoord.sleep(seconds) -> true | nil, err */
static int script_sleep(lua_State *L)
{
    double seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, lcmc_lua_seconds_ok(seconds, 1), 1,
                  "seconds: number from 0 to " LCMC_LUA_MAX_SECONDS_TEXT " expected");
    lcmc_engine *engine = lcmc_lua_engine(L);
    lcmc_lua_task *task = lcmc_lua_current_task(L);
    if (task != NULL)
        return lcmc_lua_task_sleep(L, task, seconds, sleep_resumed, 0);
    return sleep_results(L, lcmc_engine_sleep(engine, seconds));
}

/* lcmcoord.now() -> seconds on a monotonic clock */
static int script_now(lua_State *L)
{
    lua_pushnumber(L, lcmc_now());
    return 1;
}

/* log.info/warn/error/debug(format, ...): string.format, then one log line. */
static int script_log(lua_State *L)
{
    lcmc_log_level level = (lcmc_log_level)lua_tointeger(L, lua_upvalueindex(1));
    luaL_checkstring(L, 1);
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "format");
    lua_insert(L, 1);
    lua_pop(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    lcmc_engine_log(lcmc_lua_engine(L), level, lua_tostring(L, -1));
    return 0;
}

void lcmc_lua_open_script(lua_State *L)
{
    lua_pushcfunction(L, script_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushcfunction(L, script_now);
    lua_setfield(L, -2, "now");
    static const struct {
        const char *name;
        lcmc_log_level level;
    } levels[] = {{"error", LCMC_LOG_ERROR},
                  {"warn", LCMC_LOG_WARN},
                  {"info", LCMC_LOG_INFO},
                  {"debug", LCMC_LOG_DEBUG}};
    lua_createtable(L, 0, 4);
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        lua_pushinteger(L, levels[i].level);
        lua_pushcclosure(L, script_log, 1);
        lua_setfield(L, -2, levels[i].name);
    }
    lua_setfield(L, -2, "log");
}
