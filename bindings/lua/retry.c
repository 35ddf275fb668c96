/*
 * lcmcoord.retry: retry policies for scripts, the same lcmc_retry_policy the engine uses
 * for its own retries, so there is one definition of "try again". policy:run(fn) calls
 * fn(attempt) until it succeeds or the policy gives up; http.request takes a policy (or
 * the table that would make one) as its `retry` option.
 */
#include <string.h>

#include "binding.h"

#define POLICY_MT "lcmcoord.retry_policy"

/* Caps on what a script may ask for: more attempts than this is "no limit" in all but
 * name (attempts = 0 says it), and a larger multiplier only reaches `max` sooner. */
#define LCMC_RETRY_MAX_ATTEMPTS        1000000
#define LCMC_RETRY_MAX_ATTEMPTS_TEXT   "1000000"
#define LCMC_RETRY_MAX_MULTIPLIER      1000
#define LCMC_RETRY_MAX_MULTIPLIER_TEXT "1000"

static const char *const policy_fields[] = {"attempts",           "deadline", "base",  "max",
                                            "multiplier",         "jitter",   "floor", "retry_on",
                                            "honour_retry_after", NULL};

static int policy_error(lua_State *L, int arg, const char *field, const char *expected)
{
    return luaL_argerror(L, arg, lua_pushfstring(L, "retry.%s: %s expected", field, expected));
}

/* A number in [0, max]: NaN, the infinities and huge values are refused here, so that
 * nothing later converts them or multiplies them into an overflow. */
static double number_field(lua_State *L, int t, int arg, const char *field, double fallback,
                           double max, const char *expected)
{
    double value = fallback;
    if (lua_getfield(L, t, field) != LUA_TNIL) {
        if (!lua_isnumber(L, -1))
            policy_error(L, arg, field, "number");
        value = lua_tonumber(L, -1);
        if (!(value >= 0 && value <= max))
            policy_error(L, arg, field, expected);
    }
    lua_pop(L, 1);
    return value;
}

#define SECONDS_EXPECTED "number of seconds from 0 to " LCMC_LUA_MAX_SECONDS_TEXT

/* attempts: a whole number (3.0 from JSON is 3) that fits the policy's int. */
static int attempts_field(lua_State *L, int t, int arg, int fallback)
{
    int value = fallback;
    if (lua_getfield(L, t, "attempts") != LUA_TNIL) {
        int whole = 0;
        lua_Integer n = lua_tointegerx(L, -1, &whole);
        if (lua_type(L, -1) != LUA_TNUMBER || !whole || n < 0 || n > LCMC_RETRY_MAX_ATTEMPTS)
            policy_error(L, arg, "attempts", "integer from 0 to " LCMC_RETRY_MAX_ATTEMPTS_TEXT);
        value = (int)n;
    }
    lua_pop(L, 1);
    return value;
}

/* Fills `policy` from the table at t (fields as lcmcoord.retry.policy documents). */
static void policy_from_table(lua_State *L, int t, int arg, lcmc_retry_policy *policy)
{
    lcmc_retry_policy defaults = LCMC_RETRY_POLICY_INIT;
    *policy = defaults;
    lcmc_lua_check_fields(L, t, arg, policy_fields, "retry policy field");
    policy->attempts = attempts_field(L, t, arg, policy->attempts);
    policy->deadline = number_field(L, t, arg, "deadline", policy->deadline, LCMC_LUA_MAX_SECONDS,
                                    SECONDS_EXPECTED);
    policy->base =
        number_field(L, t, arg, "base", policy->base, LCMC_LUA_MAX_SECONDS, SECONDS_EXPECTED);
    policy->max =
        number_field(L, t, arg, "max", policy->max, LCMC_LUA_MAX_SECONDS, SECONDS_EXPECTED);
    policy->multiplier =
        number_field(L, t, arg, "multiplier", policy->multiplier, LCMC_RETRY_MAX_MULTIPLIER,
                     "number from 0 to " LCMC_RETRY_MAX_MULTIPLIER_TEXT);
    policy->jitter = number_field(L, t, arg, "jitter", policy->jitter, 1, "number from 0 to 1");
    policy->floor =
        number_field(L, t, arg, "floor", policy->floor, LCMC_LUA_MAX_SECONDS, SECONDS_EXPECTED);
    if (lua_getfield(L, t, "honour_retry_after") != LUA_TNIL) {
        if (!lua_isboolean(L, -1))
            policy_error(L, arg, "honour_retry_after", "boolean");
        policy->honour_retry_after = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "retry_on") != LUA_TNIL) {
        if (!lua_istable(L, -1))
            policy_error(L, arg, "retry_on", "list of statuses and \"transport\"");
        memset(policy->retry_on, 0, sizeof policy->retry_on);
        policy->retry_on_transport = 0;
        int n = 0;
        lua_Integer len = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_geti(L, -1, i);
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "transport") == 0)
                policy->retry_on_transport = 1;
            else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 100 &&
                     lua_tointeger(L, -1) <= 599 && n < LCMC_RETRY_MAX_STATUSES - 1)
                policy->retry_on[n++] = (int)lua_tointeger(L, -1);
            else
                policy_error(L, arg, "retry_on", "list of statuses (100-599) and \"transport\"");
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

void lcmc_lua_check_policy(lua_State *L, int idx, int arg, lcmc_retry_policy *policy)
{
    lcmc_retry_policy *existing = luaL_testudata(L, idx, POLICY_MT);
    if (existing != NULL) {
        *policy = *existing;
        return;
    }
    luaL_argexpected(L, lua_istable(L, idx), arg, "lcmcoord.retry_policy or table");
    policy_from_table(L, lua_absindex(L, idx), arg, policy);
}

/* lcmcoord.retry.policy{...} */
static int policy_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lcmc_retry_policy policy;
    policy_from_table(L, 1, 1, &policy);
    lcmc_retry_policy *box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = policy;
    luaL_setmetatable(L, POLICY_MT);
    return 1;
}

/* What one call of fn said, as the policy sees it: returns 1 when it is a failure the
 * policy may retry (outcome filled), 0 when fn succeeded or failed for good. */
static int read_outcome(lua_State *L, int first, lcmc_retry_outcome *outcome)
{
    if (lua_istable(L, first) && !lcmc_lua_is_error(L, first)) {
        /* A response table: its status decides. */
        if (lua_getfield(L, first, "status") != LUA_TNUMBER) {
            lua_pop(L, 1);
            return 0;
        }
        outcome->status = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (lua_getfield(L, first, "retry_after") == LUA_TNUMBER) {
            outcome->retry_after_present = 1;
            outcome->retry_after = lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
        return 1;
    }
    if (lua_isnil(L, first) && lcmc_lua_is_error(L, first + 1)) {
        lua_getfield(L, first + 1, "kind");
        outcome->transport_failure =
            lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "transport") == 0;
        lua_pop(L, 1);
        lua_getfield(L, first + 1, "status");
        outcome->status = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}

/* policy:run(fn) -> what fn returned last. Inside a task (task.c) fn may yield (it is
 * called with lua_callk) and so do the waits between attempts; the stack is the same
 * either way: 1 the policy, 2 fn, 3 the time of the first attempt, then fn's results. */

/* What the attempt that just returned asks for: >= 0, the number of results to return
 * (success, or a failure the policy gives up on); -1, another attempt after *wait. */
static int judge_attempt(lua_State *L, int attempt, double *wait)
{
    lcmc_retry_policy *policy = lua_touserdata(L, 1);
    int results = lua_gettop(L) - 3;
    /* A call with LUA_MULTRET leaves no free slot above fn's results, however many they
     * are: room for what is pushed below (reading the outcome, an error value) must be
     * asked for. */
    luaL_checkstack(L, LUA_MINSTACK, "too many results from the function policy:run called");
    lcmc_retry_outcome outcome = {0};
    outcome.attempt = attempt;
    if (results == 0 || !read_outcome(L, 4, &outcome))
        return results;
    outcome.elapsed = lcmc_now() - lua_tonumber(L, 3);
    *wait = lcmc_retry_next_wait(policy, &outcome, lcmc_engine_random(lcmc_lua_engine(L)));
    return *wait < 0 ? results : -1;
}

static int interrupted_wait(lua_State *L)
{
    lua_pushnil(L);
    lcmc_lua_push_status_error(L, LCMC_ECANCELLED, "interrupted while waiting to retry", NULL,
                               NULL);
    return 2;
}

static int attempt_returned(lua_State *L, int status, lua_KContext ctx);
static int wait_ended(lua_State *L, int status, lua_KContext ctx);

/* Runs attempts from `attempt` on until one is the last. */
static int run_attempts(lua_State *L, int attempt)
{
    for (;; attempt++) {
        lua_settop(L, 3);
        lua_pushvalue(L, 2);
        lua_pushinteger(L, attempt);
        lua_callk(L, 1, LUA_MULTRET, (lua_KContext)attempt, attempt_returned);
        double wait = 0;
        int results = judge_attempt(L, attempt, &wait);
        if (results >= 0)
            return results;
        lcmc_lua_task *task = lcmc_lua_current_task(L);
        if (task != NULL) {
            lua_settop(L, 3);
            return lcmc_lua_task_sleep(L, task, wait, wait_ended, (lua_KContext)attempt);
        }
        if (lcmc_engine_sleep(lcmc_lua_engine(L), wait) != LCMC_OK)
            return interrupted_wait(L);
    }
}

/* fn yielded (inside a task) and has now returned. */
static int attempt_returned(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    int attempt = (int)ctx;
    double wait = 0;
    int results = judge_attempt(L, attempt, &wait);
    if (results >= 0)
        return results;
    lcmc_lua_task *task = lcmc_lua_current_task(L);
    if (task != NULL) {
        lua_settop(L, 3);
        return lcmc_lua_task_sleep(L, task, wait, wait_ended, ctx);
    }
    if (lcmc_engine_sleep(lcmc_lua_engine(L), wait) != LCMC_OK)
        return interrupted_wait(L);
    return run_attempts(L, attempt + 1);
}

/* The wait between two attempts ended inside a task. */
static int wait_ended(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    if (lcmc_lua_task_sleep_result(lcmc_lua_task_of(L)) != LCMC_OK)
        return interrupted_wait(L);
    return run_attempts(L, (int)ctx + 1);
}

static int policy_run(lua_State *L)
{
    luaL_checkudata(L, 1, POLICY_MT);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lcmc_lua_engine(L);
    lua_pushnumber(L, lcmc_now());
    return run_attempts(L, 1);
}

static int policy_tostring(lua_State *L)
{
    lcmc_retry_policy *p = luaL_checkudata(L, 1, POLICY_MT);
    lua_pushfstring(L, "lcmcoord.retry_policy (%d attempts, base %f s)", p->attempts, p->base);
    return 1;
}

void lcmc_lua_open_retry(lua_State *L)
{
    static const luaL_Reg methods[] = {{"run", policy_run}, {NULL, NULL}};
    if (luaL_newmetatable(L, POLICY_MT)) {
        lua_pushcfunction(L, policy_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, policy_new);
    lua_setfield(L, -2, "policy");
}
