/*
 * Lua scenarios for the EM simulator: a file returning `function(req) ... end` that may
 * decide the answer to any request the command-line options cannot describe (the third
 * POST aborts, two 503s then async, a garbage Retry-After...). Returning nothing falls
 * through to the options, so scenarios only say what is special. Calls run in a pool of
 * Lua states (one per scenario thread of the server at most, made when first needed, each
 * running the same file), so no lock is held while user code runs and one slow call holds
 * up no other;
 * em.state is shared between them as JSON values under a short lock. Every call is bounded:
 *  - time: a count hook raises once the deadline passes and again on every later tick, and
 *    pcall, xpcall and coroutine.resume re-raise after it, so no Lua code can catch it;
 *    __gc metamethods (run with hooks off) are refused. The library functions that can
 *    work long in C, where no hook fires (string.rep, table.move/concat/sort..., the
 *    matchers, load, collectgarbage), estimate their work first and raise the deadline
 *    error when it cannot be done in the time left, so no call overruns its deadline by
 *    more than EM_SCENARIO_MARGIN_MS; the matchers also refuse subject/pattern
 *    pairs whose worst-case backtracking exceeds a step budget;
 *  - memory: the state's allocator refuses to grow past EM_SCENARIO_MEMORY, and what is
 *    copied out of the state (JSON bodies and values, em.state, headers) has byte budgets
 *    of its own, since a table shared in many places is copied whole at each;
 *  - reach: no io, package or debug; os has only time, clock, date and difftime; load
 *    takes text only and string.dump is gone.
 * Everything that can raise runs under lua_pcall, and no C allocation is held across a
 * call that can raise.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "em.h"

#define MAX_ENCODE_DEPTH 200

/* Worst-case steps a string matcher may be asked to take in one call (about 0.1 s). */
#define MATCH_STEP_BUDGET 1e8

/* The deadline hook looks at the clock every this many VM instructions. The slowest single
 * instructions (comparing or concatenating strings of tens of MiB) take a few ms, so a
 * runaway loop is seen well within the margin. */
#define HOOK_INSTRUCTIONS 100

/* Work done in C without returning to the VM is counted in steps of 20 ns: what a slow,
 * loaded machine takes to copy or convert a byte or two, to make one repetition of
 * string.rep, to take 4 matcher steps, to compare 32 bytes; an element moved or looked up
 * in a table is 20 steps. A library call whose work cannot fit in the time left raises
 * the deadline error before it starts. Measured on the development machine (2 shared
 * cores), the work takes 1.5 to 20 times less than estimated (docs/em.md). */
#define WORK_STEPS_PER_SECOND   5e7
#define STEPS_PER_ELEMENT       20.0
#define MATCH_STEPS_PER_STEP    4.0
#define BYTES_COMPARED_PER_STEP 32.0
/* Small charges (one sort comparison) are summed and looked at in batches this large. */
#define WORK_CHECK_BATCH 1e5

/* What may leave a state as JSON in one conversion (a body, an em.state value, a request
 * for em.lcmcoord), estimated as the C copy costs: ENCODE_NODE_BYTES per value plus its
 * string and key bytes. A table referenced twice is copied twice, so this, not the Lua
 * heap cap, is what bounds the copy. */
#define ENCODE_NODE_BYTES 48u

/* The response headers a scenario returns, in all (names and values). */
#define MAX_SCENARIO_HEADER_BYTES (64u * 1024u)

/* One Lua state running the scenario; the pool hands each call an idle one. */
struct lua_box {
    struct em_scenario *pool;
    struct lua_box *next; /* in the pool's idle list */
    lua_State *L;
    int fn_ref;
    struct em *em;
    struct timespec deadline; /* CLOCK_MONOTONIC */
    bool expired;             /* the deadline passed: nothing may run on */
    double pending_steps;     /* small charges not yet compared with the clock */
    size_t heap, heap_max;    /* bytes the Lua state holds, and its cap */
};

/* The scenario: a pool of Lua states, each a copy of the same file, so that no lock is held
 * while user code runs; em.state lives here, shared, as JSON values. */
struct em_scenario {
    pthread_mutex_t mu; /* the pool; never held while Lua runs */
    pthread_cond_t idle_cv;
    struct lua_box *idle;
    unsigned created, max;
    char *chunkname; /* "@file" or the buffer's name */
    char *src;
    size_t len;
    struct em *em;
    pthread_mutex_t state_mu; /* em.state; held only to get or set one value */
    json_t *state;
    json_t *state_costs;  /* key -> what its value costs (ENCODE_NODE_BYTES...), for the budget */
    size_t state_bytes;   /* the sum of state_costs, at most EM_SCENARIO_STATE_BYTES */
    atomic_bool stopping; /* shutdown: every call is past its deadline */
};

/* Lua has no null; JSON nulls become this sentinel, exposed as em.null. */
static char null_sentinel;

static struct lua_box *scenario_of(lua_State *L)
{
    return *(struct lua_box **)lua_getextraspace(L);
}

static void deadline_hook(lua_State *L, lua_Debug *ar);

static void arm_deadline(struct lua_box *sc)
{
    clock_gettime(CLOCK_MONOTONIC, &sc->deadline);
    sc->deadline.tv_sec += EM_SCENARIO_DEADLINE_MS / 1000;
    sc->deadline.tv_nsec += (EM_SCENARIO_DEADLINE_MS % 1000) * 1000000L;
    if (sc->deadline.tv_nsec >= 1000000000L) {
        sc->deadline.tv_sec++;
        sc->deadline.tv_nsec -= 1000000000L;
    }
    sc->expired = false;
    sc->pending_steps = 0;
    lua_sethook(sc->L, deadline_hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
}

static int raise_deadline(lua_State *L)
{
    return luaL_error(L, "scenario ran longer than %d ms", EM_SCENARIO_DEADLINE_MS);
}

/* From now on every instruction of this coroutine raises, wherever a pcall might have
 * caught the error (the others see `expired` on their next tick). */
static void expire(lua_State *L)
{
    scenario_of(L)->expired = true;
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1);
}

static double seconds_left(const struct lua_box *box)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(box->deadline.tv_sec - now.tv_sec) +
           (double)(box->deadline.tv_nsec - now.tv_nsec) / 1e9;
}

/* Charges `steps` of work about to be done in C: raises the deadline error now when it
 * cannot be done in the time left, instead of overrunning the deadline doing it. */
static void charge(lua_State *L, double steps, const char *what)
{
    struct lua_box *box = scenario_of(L);
    box->pending_steps += steps;
    if (!box->expired && box->pending_steps < WORK_CHECK_BATCH)
        return;
    double needed = box->pending_steps / WORK_STEPS_PER_SECOND;
    box->pending_steps = 0;
    if (box->expired || atomic_load(&box->pool->stopping) || needed > seconds_left(box)) {
        expire(L);
        luaL_error(L, "scenario ran longer than %d ms (%s would not end before the deadline)",
                   EM_SCENARIO_DEADLINE_MS, what);
    }
}

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct lua_box *sc = scenario_of(L);
    if (!sc->expired) {
        /* Shutdown (em_scenario_stop_calls) moves every deadline to now. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!atomic_load(&sc->pool->stopping) &&
            (now.tv_sec < sc->deadline.tv_sec ||
             (now.tv_sec == sc->deadline.tv_sec && now.tv_nsec <= sc->deadline.tv_nsec)))
            return;
        expire(L);
    }
    raise_deadline(L);
}

/* Past the cap, what the deadline's error may still take once the deadline has passed
 * (nothing else runs then): a full state still reports "ran longer than", not memory. */
#define EXPIRED_RESERVE (64u * 1024u)

/* The state's allocator: counts what the state holds and refuses to pass its cap. */
static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lua_box *sc = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        sc->heap -= old;
        return NULL;
    }
    size_t cap = sc->heap_max + (sc->expired ? EXPIRED_RESERVE : 0);
    if (nsize > old && (sc->heap > cap || nsize - old > cap - sc->heap))
        return NULL; /* Lua raises "not enough memory" */
    void *p = realloc(ptr, nsize);
    if (p)
        sc->heap = sc->heap - old + nsize;
    return p;
}

/* ---- JSON <-> Lua ---- */

static void json_to_lua(lua_State *L, const json_t *j)
{
    luaL_checkstack(L, 4, "JSON nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_foreach((json_t *)j, key, v)
        {
            json_to_lua(L, v);
            lua_setfield(L, -2, key);
        }
        break;
    }
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(j), 0);
        for (size_t i = 0; i < json_array_size(j); i++) {
            json_to_lua(L, json_array_get(j, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(j));
        break;
    case JSON_NULL:
        lua_pushlightuserdata(L, &null_sentinel);
        break;
    }
}

/* What one Lua -> JSON conversion may still copy, and the tables being encoded (the path
 * from the root), to tell a cycle from a table shared in several places. */
struct encode_budget {
    size_t bytes_left;
    size_t used;
    unsigned long values; /* converted so far: the clock is looked at every 4096 */
    struct lua_box *box;  /* whose deadline the conversion keeps */
    bool dry;             /* only measure: every value is json_null(), which costs nothing */
    const void *path[MAX_ENCODE_DEPTH + 2];
};

static void encode_budget_init(struct encode_budget *b, size_t bytes, struct lua_box *box)
{
    b->bytes_left = bytes;
    b->used = 0;
    b->values = 0;
    b->box = box;
    b->dry = false;
}

/* A large conversion takes a good part of a second: it keeps the call's deadline too. */
static bool in_time(struct encode_budget *b, char *err, size_t errlen)
{
    if (++b->values % 4096 != 0)
        return true;
    if (!b->box->expired && !atomic_load(&b->box->pool->stopping) && seconds_left(b->box) > 0)
        return true;
    snprintf(err, errlen, "scenario ran longer than %d ms (while copying a value as JSON)",
             EM_SCENARIO_DEADLINE_MS);
    return false;
}

static bool spend(struct encode_budget *b, size_t bytes, char *err, size_t errlen)
{
    if (bytes > b->bytes_left) {
        snprintf(err, errlen,
                 "value too large to encode as JSON (over %zu bytes once copied; a table "
                 "referenced in several places is copied at each)",
                 b->used + b->bytes_left);
        return false;
    }
    b->bytes_left -= bytes;
    b->used += bytes;
    return true;
}

/* Never raises (the caller owns what it built so far); NULL with err set on failure. */
static json_t *lua_to_json(lua_State *L, int idx, int depth, struct encode_budget *budget,
                           char *err, size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (!spend(budget, ENCODE_NODE_BYTES, err, errlen) || !in_time(budget, err, errlen))
        return NULL;
    int type = lua_type(L, idx);
    if (budget->dry && type != LUA_TTABLE) {
        if (type == LUA_TSTRING && !spend(budget, lua_rawlen(L, idx), err, errlen))
            return NULL;
        return json_null(); /* what cannot be encoded is found by the real pass */
    }
    switch (type) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) {
            snprintf(err, errlen, "cannot encode %s as JSON", lua_tostring(L, idx));
            return NULL;
        }
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (!spend(budget, n, err, errlen))
            return NULL;
        json_t *v = json_stringn(s, n);
        if (!v)
            snprintf(err, errlen, "cannot encode a string that is not valid UTF-8 as JSON");
        return v;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == &null_sentinel)
            return json_null();
        break;
    case LUA_TTABLE:
        break;
    default:
        break;
    }
    if (lua_type(L, idx) != LUA_TTABLE) {
        snprintf(err, errlen, "cannot encode a %s as JSON", luaL_typename(L, idx));
        return NULL;
    }
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < depth && i <= MAX_ENCODE_DEPTH; i++) {
        if (budget->path[i] == self) {
            snprintf(err, errlen, "cannot encode a table that contains itself (a cycle) as JSON");
            return NULL;
        }
    }
    if (depth > MAX_ENCODE_DEPTH || !lua_checkstack(L, 4)) {
        snprintf(err, errlen, "table nested too deeply to encode as JSON");
        return NULL;
    }
    budget->path[depth] = self;
    /* A sequence 1..n becomes an array; string keys an object; {} an empty object. Every
     * entry is paid for before any is copied: a table too large fails at once. */
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    lua_Integer count = 0;
    bool all_strings = true;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        if (lua_type(L, -2) != LUA_TSTRING)
            all_strings = false;
        lua_pop(L, 1);
        if (!spend(budget, ENCODE_NODE_BYTES, err, errlen)) {
            lua_pop(L, 1);
            return NULL;
        }
    }
    bool is_array = count > 0 && count == n && !all_strings;
    if (!is_array && !all_strings) {
        snprintf(err, errlen,
                 "cannot encode a table mixing keys as JSON (use a sequence or "
                 "string keys)");
        return NULL;
    }
    if (budget->dry) {
        for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
            size_t klen = lua_type(L, -2) == LUA_TSTRING ? lua_rawlen(L, -2) : 0;
            if (!spend(budget, klen, err, errlen) ||
                !lua_to_json(L, -1, depth + 1, budget, err, errlen)) {
                lua_pop(L, 2);
                return NULL;
            }
        }
        return json_null();
    }
    if (is_array) {
        json_t *arr = json_array();
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_t *v = lua_to_json(L, -1, depth + 1, budget, err, errlen);
            lua_pop(L, 1);
            if (!v) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        return arr;
    }
    json_t *obj = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t klen;
        const char *key = lua_tolstring(L, -2, &klen);
        json_t *v = spend(budget, klen, err, errlen)
                        ? lua_to_json(L, -1, depth + 1, budget, err, errlen)
                        : NULL;
        lua_pop(L, 1);
        if (!v || strlen(key) != klen || json_object_set_new(obj, key, v) < 0) {
            if (v && strlen(key) != klen)
                json_decref(v);
            if (v)
                snprintf(err, errlen, "cannot encode key '%.40s' as JSON", key);
            lua_pop(L, 1);
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

/* A value leaving the state as JSON, within EM_SCENARIO_JSON_BYTES; *cost is what it was
 * charged (for em.state's budget). NULL with err set. */
static json_t *export_json(lua_State *L, int idx, size_t *cost, char *err, size_t errlen)
{
    struct encode_budget budget;
    /* Measured first without copying a thing: a value over the budget (a table shared in
     * many places) is refused in the time it takes to walk the budget's worth of it. */
    encode_budget_init(&budget, EM_SCENARIO_JSON_BYTES, scenario_of(L));
    budget.dry = true;
    if (!lua_to_json(L, idx, 0, &budget, err, errlen)) {
        if (cost)
            *cost = budget.used;
        return NULL;
    }
    encode_budget_init(&budget, EM_SCENARIO_JSON_BYTES, scenario_of(L));
    json_t *v = lua_to_json(L, idx, 0, &budget, err, errlen);
    if (cost)
        *cost = budget.used;
    return v;
}

/* ---- the `em` helper table ---- */

static json_t *check_request_arg(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    char err[200];
    json_t *req = export_json(L, arg, NULL, err, sizeof err);
    if (!req)
        luaL_argerror(L, arg, err);
    return req;
}

static enum em_result check_result_arg(lua_State *L, int arg, const char *def)
{
    enum em_result r;
    const char *name = luaL_optstring(L, arg, def);
    if (em_result_parse(name, &r) < 0)
        luaL_argerror(L, arg, "expected CONTINUE, ABORT or CANCELLED");
    return r;
}

/* em.lcmcoord(request, result) -> LcmCoord table; the coordination is also GETtable. */
static int l_lcmcoord(lua_State *L)
{
    struct em *em = scenario_of(L)->em;
    enum em_result result = check_result_arg(L, 2, em_result_name(em->opt.result));
    json_t *req = check_request_arg(L, 1);
    char id[EM_ID_LEN + 1];
    em_store_new_id(em->store, id);
    char *self = em_xasprintf("%s%s/%s", em->base_url, EM_COORDINATIONS_PATH, id);
    json_t *doc = em_lcmcoord_build(req, id, self, result);
    free(self);
    json_decref(req);
    json_to_lua(L, doc);
    if (em_store_put(em->store, id, doc, 0, true, NULL) < 0)
        return luaL_error(L, "the EM's coordination store is full (in-progress ones hold it)");
    return 1;
}

/* em.accept(request, {polls=K, result=R}) -> 202, headers, "" (an async coordination). */
static int l_accept(lua_State *L)
{
    struct em *em = scenario_of(L)->em;
    lua_Integer polls = em->opt.polls;
    enum em_result result = em->opt.result;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "polls");
        if (!lua_isnil(L, -1))
            polls = luaL_checkinteger(L, -1);
        lua_getfield(L, 2, "result");
        if (!lua_isnil(L, -1))
            result = check_result_arg(L, lua_gettop(L), "CONTINUE");
        lua_pop(L, 2);
        luaL_argcheck(L, polls >= 0 && polls <= 1000000, 2, "polls out of range");
    }
    json_t *req = check_request_arg(L, 1);
    char id[EM_ID_LEN + 1];
    em_store_new_id(em->store, id);
    char *self = em_xasprintf("%s%s/%s", em->base_url, EM_COORDINATIONS_PATH, id);
    json_t *doc = em_lcmcoord_build(req, id, self, result);
    json_decref(req);
    if (em_store_put(em->store, id, doc, (unsigned)polls, false, NULL) < 0) {
        free(self);
        return luaL_error(L, "the EM's coordination store is full (in-progress ones hold it)");
    }
    lua_pushinteger(L, 202);
    lua_newtable(L);
    if (em->opt.location != EM_LOCATION_NONE) {
        lua_pushstring(L, em->opt.location == EM_LOCATION_ABSOLUTE ? self
                                                                   : self + strlen(em->base_url));
        lua_setfield(L, -2, "Location");
    }
    free(self);
    char retry[256];
    if (em_retry_value(&em->opt.retry, time(NULL), retry, sizeof retry)) {
        lua_pushstring(L, retry);
        lua_setfield(L, -2, "Retry-After");
    }
    lua_pushliteral(L, "");
    return 3;
}

static int l_problem(lua_State *L)
{
    lua_Integer status = luaL_checkinteger(L, 1);
    const char *detail = luaL_checkstring(L, 2);
    luaL_argcheck(L, status >= 100 && status <= 599, 1, "not an HTTP status");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, em_reason((unsigned)status));
    lua_setfield(L, -2, "title");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, detail);
    lua_setfield(L, -2, "detail");
    return 1;
}

/* em.unauthorized(detail [, scheme]) -> 401, {WWW-Authenticate}, ProblemDetails: lets a
 * scenario refuse credentials the simulator itself accepted (an "expired" token...). */
static int l_unauthorized(lua_State *L)
{
    struct em *em = scenario_of(L)->em;
    const char *detail = luaL_optstring(L, 1, "the access token is no longer valid");
    const char *def = em->opt.oauth2 || !em->opt.basic ? "Bearer" : "Basic";
    const char *scheme = luaL_optstring(L, 2, def);
    luaL_argcheck(L, strcmp(scheme, "Bearer") == 0 || strcmp(scheme, "Basic") == 0, 2,
                  "expected 'Bearer' or 'Basic'");
    lua_pushinteger(L, 401);
    lua_createtable(L, 0, 1);
    /* Build with Lua strings only: a C allocation must not be held across a raise. */
    if (strcmp(scheme, "Basic") == 0) {
        lua_pushliteral(L, "Basic realm=\"" EM_REALM "\"");
    } else {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "Bearer realm=\"" EM_REALM "\", error=\"invalid_token\", "
                           "error_description=\"");
        for (const char *p = detail; *p && p - detail < 200; p++)
            luaL_addchar(&b, (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') ? '?' : *p);
        luaL_addchar(&b, '"');
        luaL_pushresult(&b);
    }
    lua_setfield(L, -2, "WWW-Authenticate");
    lua_pushcfunction(L, l_problem);
    lua_pushinteger(L, 401);
    lua_pushstring(L, detail);
    lua_call(L, 2, 1);
    return 3;
}

/* em.revoke_token(seq) -> boolean: token number seq is refused from now on. */
static int l_revoke_token(lua_State *L)
{
    struct em *em = scenario_of(L)->em;
    lua_Integer seq = luaL_checkinteger(L, 1);
    lua_pushboolean(L, em->tokens && seq > 0 && em_tokens_revoke(em->tokens, (unsigned long)seq));
    return 1;
}

/* The latest date an IMF-fixdate can spell (four-digit year): 9999-12-31T23:59:59Z. */
#define LAST_HTTP_DATE 253402300799LL

/* em.http_date(seconds_from_now): the offset is checked before it is added, so that the
 * sum neither overflows nor leaves the years 1970-9999 that gmtime_r and the format take. */
static int l_http_date(lua_State *L)
{
    lua_Integer offset = luaL_optinteger(L, 1, 0);
    long long now = (long long)time(NULL);
    luaL_argcheck(L, offset >= -now && offset <= LAST_HTTP_DATE - now, 1,
                  "out of range: the date must fall in the years 1970 to 9999");
    char buf[EM_HTTP_DATE_LEN];
    em_http_date((time_t)(now + offset), buf);
    lua_pushstring(L, buf);
    return 1;
}

/* print() goes to stderr: stdout carries only the listening line. The line is built first
 * and written in one call: converting a value may raise (memory, __tostring), and nothing
 * that raises may run while stderr is locked, or every other thread's log would wait. */
static int l_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer line;
    luaL_buffinit(L, &line);
    luaL_addstring(&line, "scenario: ");
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&line, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&line);
    }
    luaL_addchar(&line, '\n');
    luaL_pushresult(&line);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    fwrite(text, 1, len, stderr);
    return 0;
}

/* ---- the sandbox ---- */

/* After pcall, xpcall or coroutine.resume returns: a deadline error must not be caught. */
static int after_protected(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    if (scenario_of(L)->expired)
        return raise_deadline(L);
    return lua_gettop(L);
}

/* Calls the original function (upvalue 1) with all arguments, then after_protected. */
static int l_guarded(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, after_protected);
    return after_protected(L, LUA_OK, 0);
}

static void guard(lua_State *L, int table, const char *name)
{
    lua_getfield(L, table, name);
    lua_pushcclosure(L, l_guarded, 1);
    lua_setfield(L, table, name);
}

/* Finalizers run with hooks off, where no deadline can stop them: refuse __gc. */
static int l_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "__gc metamethods are not available to scenarios");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* Worst-case steps of a Lua pattern match: each quantified item (and each back-reference)
 * may go over the whole subject again, so steps grow as (n + 1) ^ (quantifiers + 1) (one
 * fewer when anchored). */
static double match_cost(const char *pat, size_t plen, size_t n)
{
    unsigned quantifiers = 0;
    bool anchored = plen && pat[0] == '^';
    for (size_t i = anchored; i < plen; i++) {
        char c = pat[i];
        if (c == '%' && i + 1 < plen) {
            /* %bxy scans ahead for its match; a back-reference %1-%9 compares up to the
             * whole subject again: each multiplies the worst case like a quantifier. */
            if (pat[i + 1] == 'b' || (pat[i + 1] >= '1' && pat[i + 1] <= '9'))
                quantifiers++;
            i++;
        } else if (c == '[') {
            i++;
            if (i < plen && pat[i] == '^')
                i++;
            do { /* the first ']' is literal */
                if (i < plen && pat[i] == '%')
                    i++;
                i++;
            } while (i < plen && pat[i] != ']');
        } else if (c == '*' || c == '+' || c == '-' || c == '?') {
            quantifiers++;
        }
    }
    double cost = 1;
    for (unsigned k = 0; k < quantifiers + (anchored ? 0u : 1u) && cost <= MATCH_STEP_BUDGET; k++)
        cost *= (double)n + 1;
    return cost * (double)(plen + 1);
}

/* string.find/match/gmatch/gsub: the matcher runs in C, out of the deadline's reach, so a
 * match that could backtrack for longer than the budget is refused before it starts, and
 * its worst case is charged against the deadline. A plain find (a naive search: each of
 * the n - m + 1 places compares up to m bytes) is charged too. */
static int l_bounded_match(lua_State *L)
{
    size_t n, plen;
    luaL_checklstring(L, 1, &n);
    const char *pat = luaL_checklstring(L, 2, &plen);
    bool plain = lua_tointeger(L, lua_upvalueindex(2)) == 1 && lua_toboolean(L, 4);
    const char *name = lua_tostring(L, lua_upvalueindex(3));
    if (plain) {
        double compared = plen > n ? 0.0 : ((double)(n - plen) + 1.0) * ((double)plen + 1.0);
        charge(L, compared / BYTES_COMPARED_PER_STEP + (double)n / BYTES_COMPARED_PER_STEP, name);
    } else {
        double cost = match_cost(pat, plen, n);
        if (cost > MATCH_STEP_BUDGET)
            return luaL_error(L,
                              "pattern too costly for a %d-byte subject (each of *, +, -, ?, "
                              "%%b and %%1-%%9 multiplies the worst case by the subject "
                              "length); match a shorter string or use fewer quantifiers",
                              (int)n);
        charge(L, cost / MATCH_STEPS_PER_STEP + (double)n, name);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void bound_matcher(lua_State *L, int table, const char *name, bool has_plain)
{
    lua_getfield(L, table, name);
    lua_pushinteger(L, has_plain ? 1 : 0);
    lua_pushfstring(L, "string.%s", name);
    lua_pushcclosure(L, l_bounded_match, 3);
    lua_setfield(L, table, name);
}

/* The other library functions whose work in C is not bounded by the memory cap alone. */
enum bounded_kind {
    BOUND_REP,         /* string.rep: n copies (of nothing, with "": n loops anyway) */
    BOUND_MOVE,        /* table.move: e - f + 1 elements */
    BOUND_RANGE,       /* table.concat, table.unpack: j - i + 1 elements, j = #t once */
    BOUND_LENGTH,      /* table.insert, table.remove: up to #t elements */
    BOUND_SORT,        /* table.sort: n log n element moves, and every comparison */
    BOUND_STRING_ARGS, /* linear in their string arguments (string.format, utf8.len...) */
    BOUND_COLLECT,     /* collectgarbage: a full cycle goes over the whole heap */
    BOUND_LOAD,        /* load: compiling costs a few steps per byte of text */
};

/* table.sort's comparison when the scenario gives none: `<`, each comparison charged for
 * the bytes two strings may take to compare. */
static int l_bounded_less(lua_State *L)
{
    lua_settop(L, 2);
    double steps = 1;
    if (lua_type(L, 1) == LUA_TSTRING && lua_type(L, 2) == LUA_TSTRING) {
        size_t a = lua_rawlen(L, 1), b = lua_rawlen(L, 2);
        steps += (double)(a < b ? a : b) / BYTES_COMPARED_PER_STEP;
    }
    charge(L, steps, "table.sort");
    lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
    return 1;
}

/* The length of table argument 1, read once: a __len metamethod could say one thing to
 * this check and another to the function that does the work, so it is refused. */
static lua_Integer raw_length(lua_State *L, const char *name)
{
    if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL)
        luaL_error(L, "%s: a table with a __len metamethod is not available to scenarios", name);
    return (lua_Integer)lua_rawlen(L, 1);
}

static double range_count(lua_Integer first, lua_Integer last)
{
    return last < first ? 0.0 : (double)last - (double)first + 1.0;
}

/* Upvalues: the original function, the bounded_kind, the name for messages. Charges the
 * work, then calls the original with the same arguments (or with the range made explicit,
 * so that # is evaluated once). */
static int l_bounded(lua_State *L)
{
    enum bounded_kind kind = (enum bounded_kind)lua_tointeger(L, lua_upvalueindex(2));
    const char *name = lua_tostring(L, lua_upvalueindex(3));
    int ok = 0;
    switch (kind) {
    case BOUND_REP: {
        lua_Integer n = lua_tointegerx(L, 2, &ok);
        if (!ok || n <= 0 || !lua_isstring(L, 1))
            break; /* the original raises or returns "" at once */
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        size_t sep = lua_type(L, 3) == LUA_TSTRING ? lua_rawlen(L, 3) : 0;
        if (len + sep == 0) {
            lua_pushliteral(L, "");
            return 1;
        }
        double bytes = (double)n * (double)(len + sep);
        /* Larger than the cap: the original asks for it all at once and fails at once. */
        if (bytes > (double)EM_SCENARIO_MEMORY)
            break;
        if (sep) { /* the original's loop: one copy per repetition */
            charge(L, bytes + 2.0 * (double)n, name);
            break;
        }
        /* Without a separator, by doubling: a few large copies instead of n small ones
         * (string.rep("x", 1 << 20) is 2^20 one-byte copies otherwise). */
        charge(L, bytes, name);
        size_t total = (size_t)n * len, done = len;
        luaL_Buffer b;
        char *p = luaL_buffinitsize(L, &b, total);
        memcpy(p, s, len);
        while (done < total) {
            size_t k = done < total - done ? done : total - done;
            memcpy(p + done, p, k);
            done += k;
        }
        luaL_pushresultsize(&b, total);
        return 1;
    }
    case BOUND_MOVE: {
        int ok_first = 0, ok_last = 0;
        lua_Integer first = lua_tointegerx(L, 2, &ok_first);
        lua_Integer last = lua_tointegerx(L, 3, &ok_last);
        if (ok_first && ok_last)
            charge(L, range_count(first, last) * STEPS_PER_ELEMENT, name);
        break;
    }
    case BOUND_RANGE: {
        if (!lua_istable(L, 1))
            break;
        int last_arg = strcmp(name, "table.concat") == 0 ? 4 : 3;
        lua_Integer first = luaL_optinteger(L, last_arg - 1, 1);
        lua_Integer last =
            lua_isnoneornil(L, last_arg) ? luaL_len(L, 1) : luaL_checkinteger(L, last_arg);
        lua_settop(L, last_arg);
        lua_pushinteger(L, first);
        lua_replace(L, last_arg - 1);
        lua_pushinteger(L, last);
        lua_replace(L, last_arg);
        charge(L, range_count(first, last) * STEPS_PER_ELEMENT, name);
        break;
    }
    case BOUND_LENGTH:
        if (lua_istable(L, 1))
            charge(L, (double)raw_length(L, name) * STEPS_PER_ELEMENT, name);
        break;
    case BOUND_SORT: {
        if (!lua_istable(L, 1))
            break;
        double n = (double)raw_length(L, name);
        charge(L, n * (log2(n + 1) + 1) * STEPS_PER_ELEMENT / 2, name);
        if (lua_isnoneornil(L, 2)) {
            lua_settop(L, 1);
            lua_pushcfunction(L, l_bounded_less);
        }
        break;
    }
    case BOUND_STRING_ARGS: {
        double bytes = 0;
        for (int i = 1; i <= lua_gettop(L); i++)
            if (lua_type(L, i) == LUA_TSTRING)
                bytes += (double)lua_rawlen(L, i);
        charge(L, 2 * bytes, name);
        break;
    }
    case BOUND_COLLECT: {
        const char *opt = luaL_optstring(L, 1, "collect");
        if (strcmp(opt, "collect") == 0 || strcmp(opt, "step") == 0)
            charge(L, (double)scenario_of(L)->heap / 4, name);
        break;
    }
    case BOUND_LOAD:
        if (lua_type(L, 1) == LUA_TSTRING)
            charge(L, (double)lua_rawlen(L, 1) * 4, name);
        break;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Replaces table[field] (a library function) by its bounded version. */
static void bound(lua_State *L, int table, const char *lib, const char *field,
                  enum bounded_kind kind)
{
    lua_getfield(L, table, field);
    lua_pushinteger(L, kind);
    if (lib)
        lua_pushfstring(L, "%s.%s", lib, field);
    else
        lua_pushstring(L, field);
    lua_pushcclosure(L, l_bounded, 3);
    lua_setfield(L, table, field);
}

/* load with mode "t" whatever the caller asks: bytecode can crash the VM. */
static const char load_text_only[] =
    "local raw_load = ...\n"
    "return function(chunk, name, mode, ...)\n"
    "  if select('#', ...) > 0 then return raw_load(chunk, name, 't', ...) end\n"
    "  return raw_load(chunk, name, 't')\n"
    "end\n";

/* em.state.KEY: a copy of the shared value (values are replaced whole, never changed in
 * place, so a reference taken under the lock can be read after it). */
static int l_state_get(lua_State *L)
{
    struct em_scenario *sc = scenario_of(L)->pool;
    const char *key = luaL_checkstring(L, 2);
    pthread_mutex_lock(&sc->state_mu);
    json_t *v = json_incref(json_object_get(sc->state, key));
    json_int_t cost = json_integer_value(json_object_get(sc->state_costs, key));
    pthread_mutex_unlock(&sc->state_mu);
    if (!v) {
        lua_pushnil(L);
        return 1;
    }
    charge(L, (double)cost, "reading em.state");
    /* json_to_lua may raise (memory): the reference must not leak then. */
    json_t **hold = lua_newuserdatauv(L, sizeof *hold, 0);
    *hold = NULL;
    luaL_setmetatable(L, "em.json_ref");
    *hold = v;
    json_to_lua(L, v);
    *hold = NULL;
    json_decref(v);
    return 1;
}

static int l_json_ref_gc(lua_State *L)
{
    json_t **hold = lua_touserdata(L, 1);
    json_decref(*hold);
    *hold = NULL;
    return 0;
}

/* em.state.KEY = value: stored as a JSON copy; nil removes it. Every value is charged what
 * it costs outside the Lua heap (as for a JSON body), its key included, and the sum kept
 * under EM_SCENARIO_STATE_BYTES: the values outlive every call and every state's cap. */
static int l_state_set(lua_State *L)
{
    struct em_scenario *sc = scenario_of(L)->pool;
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    if (strlen(key) != klen || klen > 1024)
        return luaL_error(L, "em.state: a key must be a string of at most 1024 bytes, "
                             "without NUL");
    char err[200];
    json_t *v = NULL;
    size_t cost = 0;
    if (!lua_isnil(L, 3) && !(v = export_json(L, 3, &cost, err, sizeof err)))
        return luaL_error(L, "em.state.%s: %s", key, err);
    cost += klen;
    pthread_mutex_lock(&sc->state_mu);
    size_t old = (size_t)json_integer_value(json_object_get(sc->state_costs, key));
    size_t held = sc->state_bytes - old;
    if (v && cost > EM_SCENARIO_STATE_BYTES - held) {
        pthread_mutex_unlock(&sc->state_mu);
        json_decref(v);
        return luaL_error(L,
                          "em.state.%s: em.state would hold more than %d bytes (it holds "
                          "%I; this value costs %I); remove values (= nil) first",
                          key, (int)EM_SCENARIO_STATE_BYTES, (lua_Integer)(held + old),
                          (lua_Integer)cost);
    }
    if (v) {
        json_object_set_new(sc->state, key, v);
        json_object_set_new(sc->state_costs, key, json_integer((json_int_t)cost));
        sc->state_bytes = held + cost;
    } else {
        json_object_del(sc->state, key);
        json_object_del(sc->state_costs, key);
        sc->state_bytes = held;
    }
    pthread_mutex_unlock(&sc->state_mu);
    return 0;
}

static void open_libraries(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string},  {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},   {LUA_OSLIBNAME, luaopen_os},
        {LUA_COLIBNAME, luaopen_coroutine}};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    /* A scenario is one file; reading others (or bytecode) is not part of the deal. */
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_pushcfunction(L, l_print);
    lua_setglobal(L, "print");
    if (luaL_loadbufferx(L, load_text_only, sizeof load_text_only - 1, "=load", "t") == LUA_OK) {
        lua_getglobal(L, "load");
        lua_pushinteger(L, BOUND_LOAD);
        lua_pushliteral(L, "load");
        lua_pushcclosure(L, l_bounded, 3);
        lua_call(L, 1, 1);
        lua_setglobal(L, "load");
    } else {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_setglobal(L, "load");
    }
    /* os: the clock and dates only (no execute, exit, getenv, files, locale). */
    lua_getglobal(L, "os");
    static const char *const os_kept[] = {"time", "clock", "date", "difftime"};
    lua_createtable(L, 0, 4);
    for (size_t i = 0; i < sizeof os_kept / sizeof os_kept[0]; i++) {
        lua_getfield(L, -2, os_kept[i]);
        lua_setfield(L, -2, os_kept[i]);
    }
    lua_setglobal(L, "os");
    lua_pop(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getglobal(L, "os");
    lua_setfield(L, -2, LUA_OSLIBNAME);
    lua_pop(L, 1);
    /* The deadline must survive pcall and coroutines; finalizers must not exist. */
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    guard(L, g, "pcall");
    guard(L, g, "xpcall");
    lua_getfield(L, g, "setmetatable");
    lua_pushcclosure(L, l_setmetatable, 1);
    lua_setfield(L, g, "setmetatable");
    lua_getglobal(L, "coroutine");
    guard(L, lua_gettop(L), "resume");
    guard(L, lua_gettop(L), "close");
    lua_pop(L, 1);
    bound(L, g, NULL, "collectgarbage", BOUND_COLLECT);
    /* The C functions that can work long without returning to the VM: bounded. */
    lua_getglobal(L, "string");
    int str = lua_gettop(L);
    bound_matcher(L, str, "find", true);
    bound_matcher(L, str, "match", false);
    bound_matcher(L, str, "gmatch", false);
    bound_matcher(L, str, "gsub", false);
    bound(L, str, "string", "rep", BOUND_REP);
    static const char *const string_linear[] = {"format",  "lower", "upper",
                                                "reverse", "pack",  "unpack"};
    for (size_t i = 0; i < sizeof string_linear / sizeof string_linear[0]; i++)
        bound(L, str, "string", string_linear[i], BOUND_STRING_ARGS);
    lua_pushnil(L);
    lua_setfield(L, str, "dump");
    lua_getglobal(L, "table");
    int tab = lua_gettop(L);
    bound(L, tab, "table", "move", BOUND_MOVE);
    bound(L, tab, "table", "concat", BOUND_RANGE);
    bound(L, tab, "table", "unpack", BOUND_RANGE);
    bound(L, tab, "table", "insert", BOUND_LENGTH);
    bound(L, tab, "table", "remove", BOUND_LENGTH);
    bound(L, tab, "table", "sort", BOUND_SORT);
    lua_getglobal(L, "utf8");
    int utf = lua_gettop(L);
    static const char *const utf8_linear[] = {"len", "codepoint", "offset", "char"};
    for (size_t i = 0; i < sizeof utf8_linear / sizeof utf8_linear[0]; i++)
        bound(L, utf, "utf8", utf8_linear[i], BOUND_STRING_ARGS);
    lua_pop(L, 4);

    static const luaL_Reg em_funcs[] = {{"lcmcoord", l_lcmcoord},
                                        {"accept", l_accept},
                                        {"problem", l_problem},
                                        {"http_date", l_http_date},
                                        {"unauthorized", l_unauthorized},
                                        {"revoke_token", l_revoke_token},
                                        {NULL, NULL}};
    luaL_newlib(L, em_funcs);
    /* em.state: a proxy to the pool's shared values (every state sees the same). */
    luaL_newmetatable(L, "em.json_ref");
    lua_pushcfunction(L, l_json_ref_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, l_state_get);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_state_set);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "em.state");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "state");
    lua_pushlightuserdata(L, &null_sentinel);
    lua_setfield(L, -2, "null");
    lua_pushstring(L, scenario_of(L)->em->base_url);
    lua_setfield(L, -2, "base_url");
    lua_setglobal(L, "em");
}

/* A new state running the scenario's text; NULL with err set. */
static struct lua_box *box_new(struct em_scenario *sc, char *err, size_t errlen)
{
    struct lua_box *box = em_xmalloc(sizeof *box);
    memset(box, 0, sizeof *box);
    box->pool = sc;
    box->em = sc->em;
    box->fn_ref = LUA_NOREF;
    box->heap_max = EM_SCENARIO_MEMORY;
    box->L = lua_newstate(counting_alloc, box);
    const char *name =
        sc->chunkname[0] == '@' || sc->chunkname[0] == '=' ? sc->chunkname + 1 : sc->chunkname;
    if (!box->L) {
        snprintf(err, errlen, "%s: cannot create a Lua state", name);
        free(box);
        return NULL;
    }
    lua_State *L = box->L;
    *(struct lua_box **)lua_getextraspace(L) = box;
    arm_deadline(box);
    open_libraries(L);
    if (luaL_loadbufferx(L, sc->src, sc->len, sc->chunkname, "t") != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_close(L);
        free(box);
        return NULL;
    }
    if (!lua_isfunction(L, -1)) {
        snprintf(err, errlen, "%s: the scenario must return a function, got %s", name,
                 luaL_typename(L, -1));
        lua_close(L);
        free(box);
        return NULL;
    }
    box->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    return box;
}

/* Loads from a file (src NULL) or from text built into the program (--chaos). The first
 * state is made now, so that a broken file stops the program; the others when needed. */
static struct em_scenario *load(const char *file, const char *src, size_t len, struct em *em,
                                char *err, size_t errlen)
{
    struct em_scenario *sc = em_xmalloc(sizeof *sc);
    memset(sc, 0, sizeof *sc);
    sc->em = em;
    sc->max = EM_SCENARIO_THREADS; /* one per scenario thread (em_server.c) */
    atomic_init(&sc->stopping, false);
    if (src) {
        sc->chunkname = em_xstrdup(file);
        sc->src = em_xmalloc(len + 1);
        memcpy(sc->src, src, len);
        sc->len = len;
    } else {
        FILE *f = fopen(file, "rb");
        if (!f) {
            snprintf(err, errlen, "cannot open %s", file);
            free(sc);
            return NULL;
        }
        size_t cap = 4096;
        sc->src = em_xmalloc(cap);
        size_t got;
        while ((got = fread(sc->src + sc->len, 1, cap - sc->len, f)) > 0) {
            sc->len += got;
            if (sc->len == cap)
                sc->src = em_xrealloc(sc->src, cap *= 2);
        }
        bool failed = ferror(f);
        fclose(f);
        if (failed) {
            snprintf(err, errlen, "cannot read %s", file);
            free(sc->src);
            free(sc);
            return NULL;
        }
        sc->chunkname = em_xasprintf("@%s", file);
    }
    pthread_mutex_init(&sc->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sc->idle_cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&sc->state_mu, NULL);
    sc->state = json_object();
    sc->state_costs = json_object();
    sc->idle = box_new(sc, err, errlen);
    if (!sc->idle) {
        em_scenario_free(sc);
        return NULL;
    }
    sc->created = 1;
    return sc;
}

struct em_scenario *em_scenario_load(const char *file, struct em *em, char *err, size_t errlen)
{
    return load(file, NULL, 0, em, err, errlen);
}

struct em_scenario *em_scenario_load_buffer(const char *chunkname, const char *src, size_t len,
                                            struct em *em, char *err, size_t errlen)
{
    return load(chunkname, src, len, em, err, errlen);
}

static void box_set_base_url(struct lua_box *box, const char *base_url)
{
    lua_getglobal(box->L, "em");
    if (lua_istable(box->L, -1)) {
        lua_pushstring(box->L, base_url);
        lua_setfield(box->L, -2, "base_url");
    }
    lua_pop(box->L, 1);
}

/* Called before serving (every state is idle); states made later read em->base_url. */
void em_scenario_set_base_url(struct em_scenario *sc, const char *base_url)
{
    pthread_mutex_lock(&sc->mu);
    for (struct lua_box *box = sc->idle; box; box = box->next)
        box_set_base_url(box, base_url);
    pthread_mutex_unlock(&sc->mu);
}

void em_scenario_stop_calls(struct em_scenario *sc)
{
    if (sc)
        atomic_store(&sc->stopping, true);
}

void em_scenario_free(struct em_scenario *sc)
{
    if (!sc)
        return;
    while (sc->idle) {
        struct lua_box *box = sc->idle;
        sc->idle = box->next;
        lua_close(box->L);
        free(box);
    }
    json_decref(sc->state);
    json_decref(sc->state_costs);
    pthread_mutex_destroy(&sc->state_mu);
    pthread_cond_destroy(&sc->idle_cv);
    pthread_mutex_destroy(&sc->mu);
    free(sc->chunkname);
    free(sc->src);
    free(sc);
}

/* An idle state, a new one while fewer than EM_SCENARIO_THREADS exist, or NULL once
 * `give_up` passes (every state busy: only when calls are made from more threads than
 * the server's scenario threads, as a test may). */
static struct lua_box *acquire(struct em_scenario *sc, const struct timespec *give_up, char *err,
                               size_t errlen)
{
    pthread_mutex_lock(&sc->mu);
    for (;;) {
        if (sc->idle) {
            struct lua_box *box = sc->idle;
            sc->idle = box->next;
            pthread_mutex_unlock(&sc->mu);
            return box;
        }
        if (sc->created < sc->max) {
            sc->created++;
            pthread_mutex_unlock(&sc->mu);
            struct lua_box *box = box_new(sc, err, errlen);
            if (!box) {
                pthread_mutex_lock(&sc->mu);
                sc->created--;
                pthread_mutex_unlock(&sc->mu);
            }
            return box;
        }
        if (pthread_cond_timedwait(&sc->idle_cv, &sc->mu, give_up) != 0) {
            pthread_mutex_unlock(&sc->mu);
            snprintf(err, errlen, "busy");
            return NULL;
        }
    }
}

static void release(struct em_scenario *sc, struct lua_box *box)
{
    pthread_mutex_lock(&sc->mu);
    box->next = sc->idle;
    sc->idle = box;
    pthread_cond_signal(&sc->idle_cv);
    pthread_mutex_unlock(&sc->mu);
}

/* ---- one call ---- */

struct call {
    const struct em_request *rq;
    const struct em_auth *auth; /* NULL: no credentials were presented */
    const json_t *json;         /* the body decoded, or NULL */
    unsigned long count, posts;
    struct em_response *rs;
    bool decided;
};

static void push_request(lua_State *L, const struct call *c)
{
    const struct em_request *rq = c->rq;
    lua_createtable(L, 0, 8);
    lua_pushstring(L, rq->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, rq->path);
    lua_setfield(L, -2, "path");
    lua_createtable(L, 0, (int)rq->headers.n);
    for (size_t i = 0; i < rq->headers.n; i++) {
        const struct em_header *h = &rq->headers.v[i];
        if (strcasecmp(h->name, "authorization") == 0) {
            char *redacted = em_auth_redact(h->value);
            lua_pushstring(L, redacted);
            free(redacted);
        } else {
            lua_getfield(L, -1, h->name);
            if (lua_isstring(L, -1))
                lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), h->value);
            else
                lua_pushstring(L, h->value);
            lua_remove(L, -2);
        }
        lua_setfield(L, -2, h->name);
    }
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, rq->body ? rq->body : "", rq->body_len);
    lua_setfield(L, -2, "body");
    if (c->json) {
        json_to_lua(L, c->json);
        lua_setfield(L, -2, "json");
    }
    lua_pushinteger(L, (lua_Integer)c->count);
    lua_setfield(L, -2, "count");
    lua_pushinteger(L, (lua_Integer)c->posts);
    lua_setfield(L, -2, "posts");
    if (c->auth) {
        lua_createtable(L, 0, 4);
        if (c->auth->scheme[0]) {
            lua_pushstring(L, c->auth->scheme);
            lua_setfield(L, -2, "scheme");
        }
        if (c->auth->user) {
            lua_pushstring(L, c->auth->user);
            lua_setfield(L, -2, "user");
        }
        lua_pushboolean(L, c->auth->ok);
        lua_setfield(L, -2, "ok");
        if (c->auth->token_seq) {
            lua_pushinteger(L, (lua_Integer)c->auth->token_seq);
            lua_setfield(L, -2, "token_seq");
        }
        lua_setfield(L, -2, "auth");
    }
    if (rq->peer) {
        const struct em_peer *p = rq->peer;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, p->version);
        lua_setfield(L, -2, "version");
        if (p->cert_present) {
            lua_pushstring(L, p->subject_cn);
            lua_setfield(L, -2, "client_cert_subject");
            lua_pushstring(L, p->thumbprint);
            lua_setfield(L, -2, "client_cert_thumbprint");
        }
        lua_pushboolean(L, p->cert_verified);
        lua_setfield(L, -2, "client_cert_verified");
        lua_setfield(L, -2, "tls");
    }
}

static bool valid_header_name(const char *s, size_t n)
{
    return n > 0 && n < 256 &&
           strspn(
               s,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~") ==
               n;
}

static int call_protected(lua_State *L)
{
    struct call *c = lua_touserdata(L, 1);
    struct em_response *rs = c->rs;
    lua_rawgeti(L, LUA_REGISTRYINDEX, scenario_of(L)->fn_ref);
    push_request(L, c);
    lua_call(L, 1, 3);
    int base = lua_gettop(L) - 2;
    if (lua_isnil(L, base))
        return 0;
    if (!lua_isinteger(L, base))
        return luaL_error(L, "scenario returned a %s as status, expected an integer",
                          luaL_typename(L, base));
    lua_Integer status = lua_tointeger(L, base);
    if (status < 100 || status > 599)
        return luaL_error(L, "scenario returned status %d, expected 100-599", (int)status);
    rs->status = (unsigned)status;
    if (!lua_isnil(L, base + 1)) {
        if (!lua_istable(L, base + 1))
            return luaL_error(L, "scenario returned a %s as headers, expected a table",
                              luaL_typename(L, base + 1));
        size_t header_bytes = 0;
        lua_pushnil(L);
        while (lua_next(L, base + 1)) {
            size_t nlen, vlen;
            if (lua_type(L, -2) != LUA_TSTRING ||
                !valid_header_name(lua_tostring(L, -2), lua_rawlen(L, -2)))
                return luaL_error(L, "scenario returned an invalid header name");
            if (!lua_isstring(L, -1))
                return luaL_error(L, "scenario header '%s' is a %s, expected a string",
                                  lua_tostring(L, -2), luaL_typename(L, -1));
            lua_pushvalue(L, -1);
            const char *name = lua_tolstring(L, -3, &nlen);
            const char *value = lua_tolstring(L, -1, &vlen);
            if (strlen(value) != vlen || strpbrk(value, "\r\n"))
                return luaL_error(L, "scenario header '%s' has a line break or NUL", name);
            header_bytes += nlen + vlen;
            if (header_bytes > MAX_SCENARIO_HEADER_BYTES)
                return luaL_error(L, "scenario headers are larger than %d bytes in all",
                                  (int)MAX_SCENARIO_HEADER_BYTES);
            em_headers_add(&rs->headers, name, value);
            lua_pop(L, 2);
        }
    }
    const char *content_type = NULL;
    if (lua_istable(L, base + 2)) {
        char err[200];
        json_t *body = export_json(L, base + 2, NULL, err, sizeof err);
        if (!body)
            return luaL_error(L, "scenario body: %s", err);
        rs->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        rs->body_len = strlen(rs->body);
        json_decref(body);
        content_type = status >= 400 ? "application/problem+json" : "application/json";
    } else if (lua_type(L, base + 2) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, base + 2, &n);
        rs->body = em_xmalloc(n + 1);
        memcpy(rs->body, s, n);
        rs->body[n] = '\0';
        rs->body_len = n;
        content_type = n ? "text/plain; charset=utf-8" : NULL;
    } else if (!lua_isnil(L, base + 2)) {
        return luaL_error(L, "scenario returned a %s as body, expected a string or a table",
                          luaL_typename(L, base + 2));
    }
    if (content_type && !em_headers_get(&rs->headers, "Content-Type"))
        em_headers_add(&rs->headers, "Content-Type", content_type);
    c->decided = true;
    return 0;
}

bool em_scenario_call(struct em_scenario *sc, const struct em_request *rq,
                      const struct em_auth *auth, unsigned long count, unsigned long posts,
                      struct em_response *rs)
{
    json_t *json = rq->body_len ? json_loadb(rq->body, rq->body_len, JSON_DECODE_ANY, NULL) : NULL;
    char limit[160];
    if (json && em_json_check_limits(json, limit, sizeof limit) < 0) {
        json_decref(json); /* req.json is nil, as for a body that is not JSON */
        json = NULL;
    }
    struct call c = {
        .rq = rq, .auth = auth, .json = json, .count = count, .posts = posts, .rs = rs};
    /* Each call has a state of its own; waiting for one is bounded by one call's deadline. */
    struct timespec give_up;
    clock_gettime(CLOCK_MONOTONIC, &give_up);
    give_up.tv_sec += EM_SCENARIO_DEADLINE_MS / 1000 + 1;
    char why[512];
    struct lua_box *box = acquire(sc, &give_up, why, sizeof why);
    if (!box) {
        json_decref(json);
        em_response_free(rs);
        if (strcmp(why, "busy") == 0) {
            em_response_problem(rs, 503, "every scenario state is busy; retry");
            em_headers_add(&rs->headers, "Retry-After", "1");
        } else {
            em_log_scenario_error(why);
            em_response_problem(rs, 500, "scenario error: %s", why);
        }
        return true;
    }
    lua_State *L = box->L;
    arm_deadline(box);
    lua_pushcfunction(L, call_protected);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        char *text = em_xstrdup(msg ? msg : "(error object is not a string)");
        lua_settop(L, 0);
        box->expired = false;
        release(sc, box);
        em_log_scenario_error(text);
        em_response_free(rs);
        em_response_problem(rs, 500, "scenario error: %s", text);
        free(text);
        c.decided = true;
    } else {
        lua_settop(L, 0);
        release(sc, box);
    }
    json_decref(json);
    return c.decided;
}
