/*
 * Tasks: Lua functions run as coroutines on the state's engine, for hosts that must never
 * block (a server deciding many things at once). Inside a task's own coroutine the
 * module's waiting functions (sleep, http.request, retry's waits, ssh) start the runtime's
 * operation without waiting for it (lcmc_timer_start, lcmc_request_start...) and yield;
 * the operation's callback, run by the engine's loop, resumes the coroutine, and the
 * function's continuation returns exactly what the blocking form returns. Anywhere else (a
 * `lcmcoord run` script, a coroutine a script makes itself, a call that cannot yield) they
 * block as they always did.
 *
 * A task lives in a userdata held by a registry table keyed by its coroutine, which keeps
 * both alive while the task runs; its __gc cancels what is still pending when the state
 * is closed. A task waits on at most one operation at a time: the one its coroutine yielded
 * on, kept here so that lcmc_lua_abort can cancel it.
 */
#include <string.h>
#include <time.h>

#include "binding.h"
#include "lcmcoord/ssh.h"

#define TASKS_KEY     "lcmcoord.tasks" /* registry: coroutine -> task userdata */
#define TASK_MT       "lcmcoord.task"
#define CPU_SLICE_KEY "lcmcoord.cpu_slice" /* registry: seconds (lcmc_lua_set_cpu_slice) */
/* How often the slice hook looks at the clock: a few microseconds of Lua. */
#define CPU_SLICE_INSTRUCTIONS 10000

enum task_state {
    TASK_STARTING, /* waiting for its first resume */
    TASK_RUNNING,  /* its coroutine runs (maybe inside a blocking call) */
    TASK_WAITING,  /* yielded on an operation */
    TASK_ENDED,    /* done_fn called, or aborted: only the userdata is left */
};

struct lcmc_lua_task {
    lua_State *co;
    lua_State *main; /* the state's main thread: bookkeeping never uses the coroutine's stack */
    lcmc_engine *engine;
    lcmc_lua_done_fn *done;
    void *userdata;
    enum task_state state;
    int abort_requested; /* lcmc_lua_abort while its coroutine ran */
    /* The operation it waits on (one at most), and what it handed back. */
    lcmc_timer_handle *timer;
    lcmc_request_handle *request;
    lcmc_lua_ssh_op *ssh;
    lcmc_credentials *credentials; /* made for the request in flight; freed with it */
    void (*release)(void *ctx);    /* told when the request in flight ends either way */
    void *release_ctx;
    lcmc_status op_status;
    lcmc_response *op_response;
    /* lcmc_lua_set_cpu_slice: the most CPU one run of its coroutine may take (0: no limit),
     * the thread's CPU time when the run began, and whether the hook stopped it. */
    double cpu_limit, run_cpu_start;
    int spun_out;
};

/* The task whose coroutine runs on this thread now (the innermost, when a blocking call in
 * one task turns the loop that resumes another). */
static _Thread_local lcmc_lua_task *running_task;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the table of tasks ------------------------------------------------------------------ */

static void push_tasks(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
}

/* Cancels whatever the task waits on; the callbacks are then never called. */
static void cancel_pending(lcmc_lua_task *t)
{
    lcmc_timer_cancel(t->timer);
    t->timer = NULL;
    lcmc_request_cancel(t->request);
    t->request = NULL;
    if (t->release != NULL) {
        void (*release)(void *) = t->release;
        t->release = NULL;
        release(t->release_ctx);
    }
    lcmc_lua_ssh_op_cancel(t->ssh);
    t->ssh = NULL;
    lcmc_response_free(t->op_response);
    t->op_response = NULL;
    lcmc_credentials_free(t->credentials);
    t->credentials = NULL;
}

static int task_gc(lua_State *L)
{
    lcmc_lua_task *t = luaL_checkudata(L, 1, TASK_MT);
    cancel_pending(t);
    t->state = TASK_ENDED;
    return 0;
}

/* Ends the task: what it waits on is cancelled, its coroutine reset (its to-be-closed
 * variables closed, its stack emptied), and both become garbage. `t` is not to be used
 * after. */
static void end_task(lcmc_lua_task *t)
{
    lua_State *L = t->main, *co = t->co;
    t->state = TASK_ENDED;
    cancel_pending(t);
    /* Still anchored while it is reset: __close handlers may run Lua code. */
    lua_resetthread(co);
    if (!lua_checkstack(L, 3) || !lua_checkstack(co, 1))
        return; /* kept until the state closes: never wrong, only late */
    push_tasks(L);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

lcmc_lua_task *lcmc_lua_current_task(lua_State *L)
{
    if (!lua_isyieldable(L))
        return NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    lua_pushthread(L);
    lua_rawget(L, -2);
    lcmc_lua_task *t = luaL_testudata(L, -1, TASK_MT);
    lua_pop(L, 2);
    if (t == NULL || t->co != L || t->state != TASK_RUNNING || t->abort_requested)
        return NULL;
    return t;
}

/* ---- running ------------------------------------------------------------------------------ */

/* Resumes the task's coroutine with `nargs` values on its stack, then sees how it stopped. */
static void task_resume(lcmc_lua_task *t, int nargs)
{
    lua_State *co = t->co;
    t->state = TASK_RUNNING;
    int nresults = 0;
    lcmc_lua_task *outer = running_task;
    double cpu_start = thread_cpu();
    t->run_cpu_start = cpu_start;
    running_task = t;
    int status = lua_resume(co, NULL, nargs, &nresults);
    running_task = outer;
    if (outer) /* what this run took is not the outer task's */
        outer->run_cpu_start += thread_cpu() - cpu_start;
    if (t->spun_out && status == LUA_YIELD) { /* the slice hook yielded it */
        lua_pop(co, nresults);
        lua_pushfstring(co,
                        "ran more than %f s of CPU without waiting (lcmcoord.sleep, "
                        "http.request...): stopped",
                        t->cpu_limit);
        status = LUA_ERRRUN;
        nresults = 1;
    }
    if (t->abort_requested) {
        end_task(t);
        return;
    }
    if (status == LUA_YIELD) { /* on one of the module's operations */
        if (t->timer || t->request || t->ssh) {
            t->state = TASK_WAITING;
            return;
        }
        /* coroutine.yield in the task itself: nobody would ever resume it. */
        lua_pop(co, nresults);
        lua_pushliteral(co, "coroutine.yield in a task: only lcmcoord's operations may "
                            "suspend it (wrap your own coroutines with coroutine.wrap)");
        status = LUA_ERRRUN;
        nresults = 1;
    } else if (status != LUA_OK) {
        nresults = 1; /* the error value */
    }
    t->state = TASK_ENDED;
    /* Room for what done_fn pushes to read the values (an error leaves none). */
    lua_checkstack(co, LUA_MINSTACK);
    t->done(t->userdata, co, status, nresults);
    end_task(t);
}

static void first_resume(void *userdata, lcmc_status status)
{
    lcmc_lua_task *t = userdata;
    (void)status; /* an interrupted engine still runs the task: its operations say so */
    t->timer = NULL;
    int nargs = lua_gettop(t->co) - 1;
    task_resume(t, nargs);
}

typedef struct spawn_args {
    int nargs;
    lcmc_lua_done_fn *done;
    void *userdata;
    lcmc_lua_task *task;
} spawn_args;

/* Protected part of lcmc_lua_spawn: fn, args..., spawn_args (light userdata). */
static int spawn_protected(lua_State *L)
{
    spawn_args *a = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lcmc_lua_task_open(L); /* the host may spawn before `require "lcmcoord"` */
    lcmc_engine *engine = lcmc_lua_engine(L);
    int first = lua_gettop(L) - a->nargs; /* the function */
    luaL_checktype(L, first, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lcmc_lua_task *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    t->state = TASK_ENDED; /* until it is anchored and started */
    luaL_setmetatable(L, TASK_MT);
    push_tasks(L);
    lua_pushvalue(L, -3); /* the coroutine */
    lua_pushvalue(L, -3); /* the task */
    lua_rawset(L, -3);
    lua_pop(L, 3);
    /* The function and its arguments move to the coroutine. */
    luaL_checkstack(co, a->nargs + 1, "too many arguments for a task");
    lua_xmove(L, co, a->nargs + 1);
    t->co = co;
    t->main = lcmc_lua_main_thread(L);
    t->engine = engine;
    t->done = a->done;
    t->userdata = a->userdata;
    lua_getfield(L, LUA_REGISTRYINDEX, CPU_SLICE_KEY);
    t->cpu_limit = lua_tonumber(L, -1);
    lua_pop(L, 1);
    t->state = TASK_STARTING;
    /* Started from the loop, never inside this call: done_fn cannot run before the host
     * holds the handle. */
    if (lcmc_timer_start(engine, 0, first_resume, t, &t->timer) != LCMC_OK) {
        end_task(t);
        return luaL_error(L, "cannot start a task: out of memory");
    }
    a->task = t;
    return 0;
}

lcmc_lua_task *lcmc_lua_spawn(lua_State *L, int nargs, lcmc_lua_done_fn *done, void *userdata)
{
    spawn_args a = {nargs, done, userdata, NULL};
    if (done == NULL || nargs < 0 || lua_gettop(L) < nargs + 1 || !lua_checkstack(L, 2))
        return NULL;
    int base = lua_gettop(L) - nargs; /* the function */
    lua_pushcfunction(L, spawn_protected);
    lua_insert(L, base);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, nargs + 2, 0, 0) != LUA_OK) {
        lua_pop(L, 1); /* the error: the host learns of it as NULL */
        return NULL;
    }
    return a.task;
}

/* The count hook of lcmc_lua_set_cpu_slice: a run past its limit is stopped. Yielding from
 * the hook cannot be caught by the task's pcall (task_resume turns it into the error); where
 * it cannot yield (inside a metamethod called from C, a plain coroutine's own yield goes to
 * its resumer) the error is raised instead, and the hook fires again at the next check. */
static void cpu_slice_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lcmc_lua_task *t = running_task;
    if (t == NULL || t->cpu_limit <= 0 || thread_cpu() - t->run_cpu_start <= t->cpu_limit ||
        lcmc_lua_main_thread(L) != t->main)
        return;
    t->spun_out = 1;
    if (L == t->co && lua_isyieldable(L)) {
        lua_yield(L, 0); /* from a hook it returns: the yield happens when the hook does */
        return;
    }
    luaL_error(L, "ran more than %f s of CPU without waiting: stopped", t->cpu_limit);
}

void lcmc_lua_set_cpu_slice(lua_State *L, double seconds)
{
    if (!(seconds > 0))
        seconds = 0;
    lua_pushnumber(L, seconds);
    lua_setfield(L, LUA_REGISTRYINDEX, CPU_SLICE_KEY);
    lua_sethook(L, seconds > 0 ? cpu_slice_hook : NULL, seconds > 0 ? LUA_MASKCOUNT : 0,
                seconds > 0 ? CPU_SLICE_INSTRUCTIONS : 0);
}

void lcmc_lua_abort(lcmc_lua_task *t)
{
    if (t == NULL || t->state == TASK_ENDED)
        return;
    if (t->state == TASK_RUNNING) {
        /* Its coroutine is on the C stack (in a blocking call, or this is called from
         * inside it): it is dropped when it yields or returns. */
        t->abort_requested = 1;
        cancel_pending(t);
        return;
    }
    end_task(t);
}

/* ---- what the module's functions use -------------------------------------------------------- */

/* Every operation's callback: the outcome is kept for the continuation, which runs when
 * the coroutine resumes. */
static void timer_done(void *userdata, lcmc_status status)
{
    lcmc_lua_task *t = userdata;
    t->timer = NULL;
    t->op_status = status;
    task_resume(t, 0);
}

int lcmc_lua_task_sleep(lua_State *L, lcmc_lua_task *t, double seconds, lua_KFunction k,
                        lua_KContext ctx)
{
    lcmc_status s = lcmc_timer_start(t->engine, seconds, timer_done, t, &t->timer);
    if (s != LCMC_OK) {
        t->timer = NULL;
        t->op_status = s;
        return k(L, LUA_OK, ctx);
    }
    return lua_yieldk(L, 0, ctx, k);
}

lcmc_status lcmc_lua_task_sleep_result(lcmc_lua_task *t)
{
    return t->op_status;
}

void lcmc_lua_task_request_done(void *userdata, lcmc_status status, lcmc_response *response)
{
    lcmc_lua_task *t = userdata;
    t->request = NULL;
    lcmc_credentials_free(t->credentials);
    t->credentials = NULL;
    if (t->release != NULL) {
        void (*release)(void *) = t->release;
        t->release = NULL;
        release(t->release_ctx);
    }
    t->op_status = status;
    t->op_response = response;
    task_resume(t, 0);
}

int lcmc_lua_task_request(lua_State *L, lcmc_lua_task *t, const lcmc_request_options *o,
                          lcmc_credentials *made, lua_KFunction k, lua_KContext ctx)
{
    lcmc_status s = lcmc_request_start(t->engine, o, lcmc_lua_task_request_done, t, &t->request);
    if (s != LCMC_OK) {
        lcmc_credentials_free(made);
        t->request = NULL;
        t->op_status = s;
        t->op_response = NULL;
        return k(L, LUA_OK, ctx);
    }
    t->credentials = made;
    return lua_yieldk(L, 0, ctx, k);
}

void lcmc_lua_task_wait_request(lcmc_lua_task *t, lcmc_request_handle *request,
                                void (*release)(void *ctx), void *release_ctx)
{
    t->request = request;
    t->release = release;
    t->release_ctx = release_ctx;
}

lcmc_status lcmc_lua_task_take_response(lcmc_lua_task *t, lcmc_response **response)
{
    *response = t->op_response;
    t->op_response = NULL;
    return t->op_status;
}

void lcmc_lua_task_wait_ssh(lcmc_lua_task *t, lcmc_lua_ssh_op *op)
{
    t->ssh = op;
}

void lcmc_lua_task_ssh_done(lcmc_lua_task *t)
{
    /* t->ssh stays set: the continuation takes it (lcmc_lua_task_take_ssh), and an abort
     * before that frees it. */
    task_resume(t, 0);
}

lcmc_lua_ssh_op *lcmc_lua_task_take_ssh(lcmc_lua_task *t)
{
    lcmc_lua_ssh_op *op = t->ssh;
    t->ssh = NULL;
    return op;
}

lcmc_lua_task *lcmc_lua_task_of(lua_State *L)
{
    /* The task of a coroutine suspended in one of the module's functions (for their
     * continuations, which run only inside their own task). */
    lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
    lua_pushthread(L);
    lua_rawget(L, -2);
    lcmc_lua_task *t = luaL_testudata(L, -1, TASK_MT);
    lua_pop(L, 2);
    return t;
}

lua_State *lcmc_lua_main_thread(lua_State *L)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *main = lua_tothread(L, -1);
    lua_pop(L, 1);
    return main;
}

void lcmc_lua_task_open(lua_State *L)
{
    if (luaL_newmetatable(L, TASK_MT)) {
        lua_pushcfunction(L, task_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}
