/*
 * Lua tasks (bindings/lua/lcmcoord_lua.h: lcmc_lua_spawn, lcmc_lua_abort): functions run as
 * coroutines on the state's engine, driven by lcmc_engine_serve against a real HTTP peer on
 * 127.0.0.1 (loopback_peer.c). Many tasks wait at once and none delays another: 200 tasks
 * sleeping 1 s finish in about 1 s, requests that take 0.5 s each overlap; what a waiting
 * function returns inside a task is what it returns when it blocks; policy:run yields
 * through the function it calls and through its own waits; an aborted task's request is
 * abandoned (the peer sees the connection close) and its done_fn never runs; an error in
 * one task reaches its done_fn while the others go on; outside a task (the main chunk, a
 * coroutine the script makes) the same functions block as before. Bounds are multiplied
 * by LCMCOORD_TIME_FACTOR.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lcmcoord_lua.h"
#include "loopback_peer.h"

typedef struct world {
    lua_State *L;
    lcmc_engine *engine;
    peer *peer;
    char url[128]; /* the peer's origin */
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    w->L = luaL_newstate();
    luaL_openlibs(w->L);
    luaL_requiref(w->L, "lcmcoord", luaopen_lcmcoord, 1);
    lua_pop(w->L, 1);
    w->engine = lcmc_lua_engine(w->L);
    w->peer = peer_start();
    w->peer->engine = w->engine;
    peer_url(w->peer, "", w->url, sizeof w->url);
    lua_pushstring(w->L, w->url);
    lua_setglobal(w->L, "PEER");
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    peer_stop(w->peer); /* first: its connection threads may still tell the engine */
    if (w->L != NULL)
        lua_close(w->L);
    free(w);
    return 0;
}

/* Pushes the function a chunk returns. */
static void push_chunk(lua_State *L, const char *code)
{
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
        fail_msg("chunk: %s", lua_tostring(L, -1));
    assert_true(lua_isfunction(L, -1));
}

/* ---- what done_fn saw ------------------------------------------------------------------- */

#define MAX_TASKS 256

typedef struct outcome {
    int ended;
    int status;
    int nresults;
    char first[2048]; /* the first result (or the error), as text */
    lua_Integer number;
    int order; /* 1 for the task that ended first */
} outcome;

typedef struct tally {
    lcmc_engine *engine;
    outcome outcomes[MAX_TASKS];
    int ended, stop_at;
} tally;

typedef struct slot {
    tally *tally;
    int index;
} slot;

static void note_done(void *userdata, lua_State *co, int status, int nresults)
{
    slot *s = userdata;
    outcome *o = &s->tally->outcomes[s->index];
    o->ended++;
    o->status = status;
    o->nresults = nresults;
    if (nresults > 0) {
        int first = lua_gettop(co) - nresults + 1;
        const char *text = luaL_tolstring(co, first, NULL);
        snprintf(o->first, sizeof o->first, "%s", text);
        lua_pop(co, 1);
        if (nresults > 1)
            o->number = lua_tointeger(co, first + 1);
    }
    o->order = ++s->tally->ended;
    if (s->tally->ended == s->tally->stop_at)
        lcmc_engine_stop(s->tally->engine);
}

static void guard_timeout(void *userdata, lcmc_status status)
{
    (void)userdata;
    (void)status;
    fail_msg("the test did not end in time");
}

/* Serves until `stop_at` tasks ended (or the guard fails the test); the seconds it took. */
static double serve(world *w, double guard_seconds)
{
    lcmc_timer_handle *guard = NULL;
    assert_int_equal(
        lcmc_timer_start(w->engine, guard_seconds * time_factor(), guard_timeout, NULL, &guard),
        LCMC_OK);
    double start = lcmc_now();
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    lcmc_timer_cancel(guard);
    return lcmc_now() - start;
}

static lcmc_lua_task *spawn(world *w, const char *code, slot *s, lua_Integer arg)
{
    push_chunk(w->L, code);
    lua_pushinteger(w->L, arg);
    int top = lua_gettop(w->L);
    lcmc_lua_task *t = lcmc_lua_spawn(w->L, 1, note_done, s);
    assert_non_null(t);
    assert_int_equal(lua_gettop(w->L), top - 2); /* the function and its argument popped */
    return t;
}

/* ---- many at once ----------------------------------------------------------------------- */

static void many_sleeping_tasks_take_one_sleep(void **state)
{
    world *w = *state;
    enum { N = 200 };
    static tally t;
    static slot slots[N];
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = N;
    for (int i = 0; i < N; i++) {
        slots[i] = (slot){&t, i};
        spawn(w, "return function(i) local ok = lcmcoord.sleep(1); return ok, i end", &slots[i], i);
    }
    /* Nothing ran inside lcmc_lua_spawn. */
    assert_int_equal(t.ended, 0);
    double took = serve(w, 30);
    for (int i = 0; i < N; i++) {
        assert_int_equal(t.outcomes[i].ended, 1);
        assert_int_equal(t.outcomes[i].status, LUA_OK);
        assert_string_equal(t.outcomes[i].first, "true");
        assert_int_equal(t.outcomes[i].number, i);
    }
    if (took < 1 || took > 1 + 1.0 * time_factor())
        fail_msg("%d tasks sleeping 1 s took %.2f s", N, took);
}

static void requests_in_tasks_overlap(void **state)
{
    world *w = *state;
    enum { N = 20 };
    static tally t;
    static slot slots[N];
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = N;
    for (int i = 0; i < N; i++) {
        slots[i] = (slot){&t, i};
        spawn(w,
              "return function(i)\n"
              "  local r, err = lcmcoord.http.request{url = PEER .. '/delay/500'}\n"
              "  assert(r, tostring(err))\n"
              "  return r.body, r.status\n"
              "end",
              &slots[i], i);
    }
    double took = serve(w, 30);
    for (int i = 0; i < N; i++) {
        assert_int_equal(t.outcomes[i].status, LUA_OK);
        assert_string_equal(t.outcomes[i].first, "ok");
        assert_int_equal(t.outcomes[i].number, 200);
    }
    /* One after the other: 10 s. */
    if (took > 0.5 + 1.5 * time_factor())
        fail_msg("%d requests of 0.5 s in tasks took %.2f s", N, took);
}

/* ---- the same results as blocking --------------------------------------------------------- */

/* Each function's results, inside a task and outside, compared by a Lua function that
 * renders them (type, kind, message, status...). */
static const char *const SAME_RESULTS =
    "local function render(...)\n"
    "  local out = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    if type(v) == 'table' then\n"
    "      -- libcurl's own words say how long a timeout took: not the same twice\n"
    "      local message = v.message and v.message:gsub('%d+ m', 'N m')\n"
    "      out[#out + 1] = string.format('{kind=%s message=%s status=%s body=%s}', v.kind,\n"
    "        message, v.status, v.body)\n"
    "    else out[#out + 1] = tostring(v) end\n"
    "  end\n"
    "  return table.concat(out, ' | ')\n"
    "end\n"
    "local cases = {\n"
    "  function() return lcmcoord.sleep(0) end,\n"
    "  function() return lcmcoord.http.request{url = PEER .. '/delay/0'} end,\n"
    "  function() return lcmcoord.http.request{url = 'http://127.0.0.1:1/refused'} end,\n"
    "  function() return lcmcoord.http.request{url = PEER .. '/hold', timeout = 0.3} end,\n"
    "  function() return lcmcoord.http.request{url = PEER .. '/delay/0', method = 'POST',\n"
    "    json = {a = 1}, auth = {authType = {'BASIC'}, paramsBasic = {userName = 'u',\n"
    "    password = 'p'}}} end,\n"
    "}\n"
    "return function(inside)\n"
    "  local got = {}\n"
    "  for i, case in ipairs(cases) do got[i] = render(case()) end\n"
    "  return table.concat(got, '\\n')\n"
    "end\n";

static void task_results_equal_blocking_results(void **state)
{
    world *w = *state;
    w->peer->on_hold = NULL;
    /* Outside: the main chunk, blocking. */
    push_chunk(w->L, SAME_RESULTS);
    lua_pushvalue(w->L, -1);
    lua_setglobal(w->L, "RUN_CASES");
    lua_pushboolean(w->L, 0);
    if (lua_pcall(w->L, 1, 1, 0) != LUA_OK)
        fail_msg("outside: %s", lua_tostring(w->L, -1));
    char outside[2048];
    snprintf(outside, sizeof outside, "%s", lua_tostring(w->L, -1));
    lua_pop(w->L, 1);
    /* Inside a task. */
    static tally t;
    static slot s;
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = 1;
    s = (slot){&t, 0};
    lua_getglobal(w->L, "RUN_CASES");
    lua_pushboolean(w->L, 1);
    assert_non_null(lcmc_lua_spawn(w->L, 1, note_done, &s));
    serve(w, 30);
    assert_int_equal(t.outcomes[0].status, LUA_OK);
    assert_non_null(strstr(outside, "true"));
    assert_non_null(strstr(outside, "kind=transport"));
    if (strcmp(t.outcomes[0].first, outside) != 0)
        fail_msg("inside (%d results): %s", t.outcomes[0].nresults, t.outcomes[0].first);
}

/* ---- retry ----------------------------------------------------------------------------- */

static void retry_yields_through_the_function_and_its_waits(void **state)
{
    world *w = *state;
    static tally t;
    static slot slots[2];
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = 2;
    slots[0] = (slot){&t, 0};
    slots[1] = (slot){&t, 1};
    /* Three attempts 0.3 s apart, each doing a request: the first two "fail" (503). */
    spawn(w,
          "return function()\n"
          "  local p = lcmcoord.retry.policy{attempts = 3, base = 0.3, multiplier = 1,\n"
          "    jitter = 0, floor = 0}\n"
          "  local r = p:run(function(attempt)\n"
          "    local r = assert(lcmcoord.http.request{url = PEER .. '/delay/100'})\n"
          "    if attempt < 3 then return {status = 503} end\n"
          "    return {status = r.status, attempts = attempt}\n"
          "  end)\n"
          "  return r.status, r.attempts\n"
          "end",
          &slots[0], 0);
    /* Meanwhile another task's policy:run calls a function that waits 1.5 s: were the
     * first task's waits blocking (a loop turned inside its C call), this one would run
     * inside them and hold them until its own wait ended. */
    spawn(w,
          "return function()\n"
          "  lcmcoord.sleep(0.05)\n"
          "  local p = lcmcoord.retry.policy{attempts = 1}\n"
          "  return p:run(function() lcmcoord.sleep(1.5); return 'slow' end), 2\n"
          "end",
          &slots[1], 0);
    double took = serve(w, 30);
    assert_int_equal(t.outcomes[0].status, LUA_OK);
    assert_string_equal(t.outcomes[0].first, "200");
    assert_int_equal(t.outcomes[0].number, 3);
    assert_int_equal(t.outcomes[1].status, LUA_OK);
    assert_string_equal(t.outcomes[1].first, "slow");
    /* The retries (0.9 s) ended first, not held up by the 1.5 s wait. */
    assert_int_equal(t.outcomes[0].order, 1);
    assert_true(took >= 1.5);
    if (took > 1.5 + 1.0 * time_factor())
        fail_msg("the two tasks took %.2f s", took);
}

/* ---- client requests -------------------------------------------------------------------- */

/* c:get, c:post, c:api_versions yield inside tasks: requests that take 0.5 s overlap, their
 * results are those of the blocking calls, and a client closed by another task while they
 * are in flight is freed only after the last one ended (ASan watches). */
static void client_requests_yield_and_outlive_close(void **state)
{
    world *w = *state;
    enum { N = 20 };
    static tally t;
    static slot slots[N + 2];
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = N + 2;
    /* The peer answers any path under /delay/500 after half a second. */
    if (luaL_dostring(w->L, "CLIENT = lcmcoord.client{endpoint = PEER .. '/delay/500'}\n"
                            "OTHER = lcmcoord.client{endpoint = PEER .. '/delay/500'}\n"
                            "function SHOW(r, err)\n"
                            "  if r then return 'status ' .. r.status .. ' ' .. r.body end\n"
                            "  return 'error ' .. err.kind .. ': ' .. err.message\n"
                            "end\n"
                            "function ALL_THREE(c)\n"
                            "  return SHOW(c:get('abc')) .. ' / ' ..\n"
                            "    SHOW(c:post{coordinationActionName = 'x'}) .. ' / ' ..\n"
                            "    SHOW(c:api_versions())\n"
                            "end\n"
                            "BLOCKING_GET = SHOW(CLIENT:get('abc'))\n"
                            "BLOCKING_ALL = ALL_THREE(OTHER)") != LUA_OK)
        fail_msg("%s", lua_tostring(w->L, -1));
    /* N gets in flight when another task closes their client. */
    for (int i = 0; i < N; i++) {
        slots[i] = (slot){&t, i};
        spawn(w,
              "return function()\n"
              "  local got = SHOW(CLIENT:get('abc'))\n"
              "  return got == BLOCKING_GET, got\n"
              "end",
              &slots[i], i);
    }
    slots[N] = (slot){&t, N};
    spawn(w, "return function() lcmcoord.sleep(0.2); CLIENT:close(); return 'closed' end",
          &slots[N], 0);
    /* Meanwhile three requests one after the other on another client. */
    slots[N + 1] = (slot){&t, N + 1};
    spawn(w,
          "return function()\n"
          "  local got = ALL_THREE(OTHER)\n"
          "  return got == BLOCKING_ALL, got\n"
          "end",
          &slots[N + 1], 0);
    double took = serve(w, 60);
    for (int i = 0; i < N + 2; i++)
        if (i != N && (t.outcomes[i].status != LUA_OK || strcmp(t.outcomes[i].first, "true") != 0))
            fail_msg("task %d: %s", i, t.outcomes[i].first);
    assert_string_equal(t.outcomes[N].first, "closed");
    /* The three requests take 1 s (the peer refuses the POST at once); the gets overlap
     * them. One after the other: 11 s. */
    assert_true(took >= 1.0);
    if (took > 1.0 + 2.0 * time_factor())
        fail_msg("the client requests in tasks took %.2f s", took);
    /* Closed: the next call raises, as before. */
    assert_int_not_equal(luaL_dostring(w->L, "return CLIENT:get('abc')"), LUA_OK);
    assert_non_null(strstr(lua_tostring(w->L, -1), "closed client"));
    lua_pop(w->L, 1);
}

/* ---- errors and aborts ------------------------------------------------------------------ */

static void an_error_reaches_done_and_others_go_on(void **state)
{
    world *w = *state;
    static tally t;
    static slot slots[3];
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = 3;
    for (int i = 0; i < 3; i++)
        slots[i] = (slot){&t, i};
    spawn(w, "return function() lcmcoord.sleep(0.1); error('boom in a task') end", &slots[0], 0);
    spawn(w, "return function(i) lcmcoord.sleep(0.3); return 'fine', i end", &slots[1], 1);
    /* A task that yields on its own would never be resumed: an error, said so. */
    spawn(w, "return function() coroutine.yield(1) end", &slots[2], 2);
    serve(w, 30);
    assert_int_equal(t.outcomes[0].status, LUA_ERRRUN);
    assert_non_null(strstr(t.outcomes[0].first, "boom in a task"));
    assert_int_equal(t.outcomes[1].status, LUA_OK);
    assert_string_equal(t.outcomes[1].first, "fine");
    assert_int_equal(t.outcomes[2].status, LUA_ERRRUN);
    assert_non_null(strstr(t.outcomes[2].first, "coroutine.yield in a task"));
}

typedef struct abort_ctx {
    lcmc_lua_task *task;
    world *w;
} abort_ctx;

/* Posted by the peer once it holds the request. */
static void abort_it(void *userdata)
{
    abort_ctx *a = userdata;
    lcmc_lua_abort(a->task);
    a->task = NULL;
}

static void abort_by_timer(void *userdata, lcmc_status status)
{
    (void)status;
    lcmc_lua_abort(userdata);
}

static void abort_cancels_the_request(void **state)
{
    world *w = *state;
    static tally t;
    static slot slots[2];
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = -1; /* the peer stops the loop once it saw the connection close */
    slots[0] = (slot){&t, 0};
    slots[1] = (slot){&t, 1};
    abort_ctx a = {NULL, w};
    w->peer->on_hold = abort_it;
    w->peer->on_hold_userdata = &a;
    /* Its to-be-closed variable is closed when it is aborted. */
    lua_pushboolean(w->L, 0);
    lua_setglobal(w->L, "CLOSED");
    a.task =
        spawn(w,
              "return function()\n"
              "  local c <close> = setmetatable({}, {__close = function() CLOSED = true end})\n"
              "  return lcmcoord.http.request{url = PEER .. '/hold', timeout = 60}\n"
              "end",
              &slots[0], 0);
    spawn(w, "return function() lcmcoord.sleep(0.2); return 'other' end", &slots[1], 1);
    serve(w, 30);
    assert_null(a.task);
    assert_true(w->peer->hold_saw_eof);
    assert_int_equal(t.outcomes[0].ended, 0);
    /* The other task finished (the abort came before the peer saw the close). */
    assert_int_equal(lcmc_engine_run(w->engine), LCMC_OK);
    assert_int_equal(t.outcomes[1].ended, 1);
    assert_string_equal(t.outcomes[1].first, "other");
    lua_getglobal(w->L, "CLOSED");
    assert_true(lua_toboolean(w->L, -1));
    lua_pop(w->L, 1);
    /* A sleeping task aborted by a timer's callback: it never wakes, done never runs. */
    static slot later;
    later = (slot){&t, 2};
    lua_pushboolean(w->L, 0);
    lua_setglobal(w->L, "WOKE");
    lcmc_lua_task *sleeper =
        spawn(w, "return function() lcmcoord.sleep(0.3); WOKE = true end", &later, 0);
    assert_int_equal(lcmc_timer_start(w->engine, 0.1, abort_by_timer, sleeper, NULL), LCMC_OK);
    assert_int_equal(lcmc_engine_run(w->engine), LCMC_OK); /* returns: nothing left */
    assert_int_equal(t.outcomes[2].ended, 0);
    lua_getglobal(w->L, "WOKE");
    assert_false(lua_toboolean(w->L, -1));
    lua_pop(w->L, 1);
}

/* A host shutting down closes its state with tasks still waiting: every operation is
 * cancelled (the request's connection closed), nothing is called back, nothing leaks (the
 * suite runs under ASan and valgrind). */
static void stop_serving(void *userdata, lcmc_status status)
{
    (void)status;
    lcmc_engine_stop(userdata);
}

static void closing_the_state_cancels_waiting_tasks(void **state)
{
    world *w = *state;
    static tally t;
    static slot slots[3];
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = -1;
    for (int i = 0; i < 3; i++)
        slots[i] = (slot){&t, i};
    spawn(w, "return function() lcmcoord.sleep(60) end", &slots[0], 0);
    spawn(w, "return function() return lcmcoord.http.request{url = PEER .. '/hold'} end", &slots[1],
          0);
    spawn(w,
          "return function()\n"
          "  local p = lcmcoord.retry.policy{attempts = 5, base = 30, jitter = 0}\n"
          "  return p:run(function() return {status = 503} end)\n"
          "end",
          &slots[2], 0);
    /* Served in slices until the peer holds the request. */
    double deadline = lcmc_now() + 10 * time_factor();
    int reached = 0;
    while (!reached && lcmc_now() < deadline) {
        assert_int_equal(lcmc_timer_start(w->engine, 0.05, stop_serving, w->engine, NULL), LCMC_OK);
        assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
        pthread_mutex_lock(&w->peer->lock);
        reached = w->peer->hold_reached;
        pthread_mutex_unlock(&w->peer->lock);
    }
    assert_true(reached);
    lua_close(w->L);
    w->L = NULL;
    assert_int_equal(t.ended, 0);
    {
        /* The peer had the request: it sees the connection close. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(10 * time_factor());
        pthread_mutex_lock(&w->peer->lock);
        while (!w->peer->hold_saw_eof &&
               pthread_cond_timedwait(&w->peer->changed, &w->peer->lock, &until) == 0) {
        }
        int saw_eof = w->peer->hold_saw_eof;
        pthread_mutex_unlock(&w->peer->lock);
        assert_true(saw_eof);
    }
}

/* ---- outside tasks ------------------------------------------------------------------------ */

static void outside_a_task_functions_block(void **state)
{
    world *w = *state;
    /* The main chunk and a coroutine of the script's own: sleep blocks there. */
    const char *code = "local t0 = lcmcoord.now()\n"
                       "assert(lcmcoord.sleep(0.2))\n"
                       "local co = coroutine.wrap(function() return lcmcoord.sleep(0.2) end)\n"
                       "assert(co() == true)\n"
                       "return lcmcoord.now() - t0";
    if (luaL_dostring(w->L, code) != LUA_OK)
        fail_msg("%s", lua_tostring(w->L, -1));
    assert_true(lua_tonumber(w->L, -1) >= 0.4);
    lua_pop(w->L, 1);
    /* Inside a task, a coroutine the script makes itself blocks too (it is not the task's):
     * the result is the same. */
    static tally t;
    static slot s;
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = 1;
    s = (slot){&t, 0};
    spawn(w,
          "return function()\n"
          "  local co = coroutine.wrap(function() return lcmcoord.sleep(0.1) end)\n"
          "  return co(), 7\n"
          "end",
          &s, 0);
    serve(w, 30);
    assert_int_equal(t.outcomes[0].status, LUA_OK);
    assert_string_equal(t.outcomes[0].first, "true");
    assert_int_equal(t.outcomes[0].number, 7);
}

static void interrupt_by_timer(void *userdata, lcmc_status status)
{
    (void)status;
    lcmc_engine_interrupt(userdata);
}

static void interrupt_reaches_waiting_tasks(void **state)
{
    world *w = *state;
    static tally t;
    static slot s;
    memset(&t, 0, sizeof t);
    t.engine = w->engine;
    t.stop_at = -1;
    s = (slot){&t, 0};
    spawn(w,
          "return function()\n"
          "  local ok, err = lcmcoord.sleep(100)\n"
          "  return err.kind .. ': ' .. err.message, ok == nil and 1 or 0\n"
          "end",
          &s, 0);
    assert_int_equal(lcmc_timer_start(w->engine, 0.1, interrupt_by_timer, w->engine, NULL),
                     LCMC_OK);
    double start = lcmc_now();
    assert_int_equal(lcmc_engine_run(w->engine), LCMC_ECANCELLED);
    assert_true(lcmc_now() - start < 5 * time_factor());
    lcmc_engine_reset_interrupt(w->engine);
    assert_int_equal(t.outcomes[0].status, LUA_OK);
    assert_string_equal(t.outcomes[0].first, "cancelled: interrupted while sleeping");
    assert_int_equal(t.outcomes[0].number, 1);
}

static void spawn_refuses_what_is_not_a_function(void **state)
{
    world *w = *state;
    static slot s;
    int top = lua_gettop(w->L);
    lua_pushinteger(w->L, 1);
    assert_null(lcmc_lua_spawn(w->L, 0, note_done, &s));
    assert_int_equal(lua_gettop(w->L), top);
    lua_pushnil(w->L);
    assert_null(lcmc_lua_spawn(w->L, 1, note_done, &s)); /* not enough values */
    assert_int_equal(lua_gettop(w->L), top + 1);
    lua_settop(w->L, top);
    push_chunk(w->L, "return function() end");
    assert_null(lcmc_lua_spawn(w->L, 0, NULL, &s));
    lua_settop(w->L, top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(many_sleeping_tasks_take_one_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(requests_in_tasks_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(task_results_equal_blocking_results, setup, teardown),
        cmocka_unit_test_setup_teardown(retry_yields_through_the_function_and_its_waits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(client_requests_yield_and_outlive_close, setup, teardown),
        cmocka_unit_test_setup_teardown(an_error_reaches_done_and_others_go_on, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_cancels_the_request, setup, teardown),
        cmocka_unit_test_setup_teardown(closing_the_state_cancels_waiting_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(outside_a_task_functions_block, setup, teardown),
        cmocka_unit_test_setup_teardown(interrupt_reaches_waiting_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(spawn_refuses_what_is_not_a_function, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
