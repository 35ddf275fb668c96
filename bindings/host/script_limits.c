/*
 * Limits on the operator's script: `lcmcoord run` executes code from a VNF package, inside
 * an upgrade that must not hang or eat the VNFM host's memory. A deadline ends a script that
 * loops forever (a count hook, inherited by every coroutine, checks the clock in pure Lua;
 * an alarm interrupts the engine when the script waits in a runtime call), the same hook
 * carries SIGINT/SIGTERM into coroutines; a counting allocator caps the Lua state's memory;
 * and --sandbox leaves a script no files, processes or bytecode.
 */
#define _DEFAULT_SOURCE /* setitimer */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host.h"
#include "script_limits.h"
#include "lcmcoord_lua.h"

/* ---- memory ---------------------------------------------------------------------------- */

static void *counting_alloc(void *userdata, void *block, size_t old_size, size_t new_size)
{
    lcmc_script_limits *limits = userdata;
    /* For a new block Lua passes the kind of object in old_size, not a size. */
    size_t old = block != NULL ? old_size : 0;
    if (new_size == 0) {
        free(block);
        limits->used -= old;
        return NULL;
    }
    if (limits->memory_bytes != 0 && new_size > old &&
        limits->used + (new_size - old) > limits->memory_bytes) {
        limits->memory_exceeded = 1;
        return NULL; /* Lua raises "not enough memory" */
    }
    void *moved = realloc(block, new_size);
    if (moved != NULL)
        limits->used = limits->used - old + new_size;
    return moved;
}

static int at_panic(lua_State *L)
{
    const char *message = lua_tostring(L, -1);
    fprintf(stderr, "lcmcoord: Lua panic: %s\n", message ? message : "(not a string)");
    return 0; /* abort() follows */
}

lua_State *lcmc_limits_new_state(lcmc_script_limits *limits)
{
    limits->used = 0;
    limits->memory_exceeded = 0;
    limits->deadline_passed = 0;
    lua_State *L = lua_newstate(counting_alloc, limits);
    if (L != NULL)
        lua_atpanic(L, at_panic);
    return L;
}

/* ---- the sandbox ------------------------------------------------------------------------ */

/* load(chunk, name, mode, env) with mode forced to text: bytecode skips the checks the
 * compiler makes and can crash the interpreter. */
static int sandbox_load(lua_State *L)
{
    int args = lua_gettop(L);
    luaL_checkany(L, 1);
    if (args < 2)
        lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    /* An env given explicitly (even nil) is passed on; none given keeps the default. */
    if (args >= 4)
        lua_pushvalue(L, 4);
    int top = lua_gettop(L) - (args >= 4 ? 5 : 4);
    lua_call(L, args >= 4 ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L) - top;
}

/* require for the sandbox: the modules the host carries, nothing from files. */
static int sandbox_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    lua_CFunction open = NULL;
    if (strcmp(name, "lcmcoord") == 0)
        open = luaopen_lcmcoord;
    if (open == NULL)
        return luaL_error(L, "module '%s' is not available under --sandbox (only lcmcoord is)",
                          name);
    luaL_requiref(L, name, open, 0);
    return 1;
}

/* The globals a full Lua has that the sandbox leaves out. */
static const char *const sandbox_missing[] = {"io",     "os",       "package", "debug",
                                              "dofile", "loadfile", NULL};

/* _G's __index: reading one of the left-out globals says why it is not there, instead of a
 * puzzling "attempt to index a nil value (global 'io')"; any other unset global is nil. */
static int sandbox_global(lua_State *L)
{
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    for (const char *const *m = sandbox_missing; name != NULL && *m != NULL; m++)
        if (strcmp(name, *m) == 0)
            return luaL_error(L, "%s is not available under --sandbox", name);
    return 0;
}

void lcmc_limits_open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_getglobal(L, "load");
    lua_pushcclosure(L, sandbox_load, 1);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, sandbox_require);
    lua_setglobal(L, "require");
    luaL_requiref(L, "lcmcoord", luaopen_lcmcoord, 1);
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, sandbox_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* ---- the deadline and interrupts, in every thread ------------------------------------- */

/* A Lua hook belongs to one thread (the main one or a coroutine), and a new coroutine takes
 * the hook of the thread that creates it. So the hook below is set on the main thread
 * before the script starts, and every coroutine the script makes inherits it: a coroutine
 * that spins is checked like the main thread. The signal handlers (host.c, on_alarm) can
 * only reach the main thread, so this hook also looks for what they record: a caught
 * SIGINT/SIGTERM or a passed deadline. */

static lcmc_script_limits *armed_limits;
static lua_State *armed_state;
static lcmc_engine *armed_engine;
static double armed_deadline;

/* Every 10,000 instructions: negligible cost, and a tight loop notices within microseconds. */
#define CHECK_EVERY_INSTRUCTIONS 10000

static void limits_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (armed_limits == NULL)
        return; /* a coroutine that outlived the script, resumed by a finaliser */
    int interrupted = lcmc_host_signal_caught() != 0;
    if (!interrupted && armed_limits->seconds > 0 && !armed_limits->deadline_passed &&
        lcmc_now() >= armed_deadline)
        armed_limits->deadline_passed = 1;
    if (!interrupted && !armed_limits->deadline_passed)
        return;
    /* From now on this thread checks at every call, return and instruction, so that a
     * pcall in a loop cannot swallow the error for good: it is raised again as the pcall
     * returns, outside it. */
    lua_sethook(L, limits_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    if (interrupted)
        luaL_error(L, "interrupted");
    luaL_error(L, "the script ran past its deadline of %f s", armed_limits->seconds);
}

/* Both ways of stopping a script (its deadline, SIGINT/SIGTERM) act through the hook, and a
 * hook never runs inside a C function: a script stuck in one (a backtracking
 * string.find over a long text) would never stop. So stopping also starts a watchdog: if
 * the script has not ended this many seconds later, the process says so and exits. It is
 * longer than the runtime's own bounded waits after an interrupt (5 s for a cancel's or a
 * POST's answer), so a script in a runtime call always gets to finish its cancel. */
#define STUCK_GRACE_SECONDS 10

static volatile sig_atomic_t stopping;     /* 0, or why: the signal, or SIGALRM (deadline) */
static volatile sig_atomic_t watchdog_set; /* the next SIGALRM is the watchdog's */

static void write_all(const char *text)
{
    size_t left = strlen(text);
    while (left > 0) {
        ssize_t n = write(STDERR_FILENO, text, left);
        if (n <= 0)
            return;
        text += n;
        left -= (size_t)n;
    }
}

static void watchdog_fired(void)
{
    /* Async-signal-safe: write(2) and _exit(2) only. */
    if (stopping == SIGALRM) {
        write_all("lcmcoord: the script ran past its deadline and did not stop within 10 s "
                  "(busy in a C function); exiting\n");
        _exit(3);
    }
    write_all(stopping == SIGINT
                  ? "lcmcoord: interrupted by SIGINT; the script did not stop within 10 s "
                    "(busy in a C function); exiting\n"
                  : "lcmcoord: interrupted by SIGTERM; the script did not stop within 10 s "
                    "(busy in a C function); exiting\n");
    _exit(128 + (stopping == SIGINT ? SIGINT : SIGTERM));
}

static void start_watchdog(int why)
{
    if (stopping != 0)
        return;
    stopping = why;
    watchdog_set = 1;
    alarm(STUCK_GRACE_SECONDS); /* replaces the deadline's timer, which has done its work */
}

void lcmc_limits_stop_requested(int signal_number)
{
    if (armed_limits != NULL)
        start_watchdog(signal_number);
}

static void on_alarm(int signal_number)
{
    (void)signal_number;
    /* Async-signal-safe only: a flag, the engine's interrupt, and a hook (lua_sethook is
     * safe to call from a handler, as lua.c does for SIGINT). */
    if (armed_limits == NULL)
        return;
    if (watchdog_set) {
        watchdog_fired();
        return;
    }
    start_watchdog(SIGALRM);
    armed_limits->deadline_passed = 1;
    if (armed_engine != NULL)
        lcmc_engine_interrupt(armed_engine);
    if (armed_state != NULL)
        lua_sethook(armed_state, limits_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void lcmc_limits_arm(lcmc_script_limits *limits, lua_State *L, lcmc_engine *engine)
{
    armed_limits = limits;
    armed_state = L;
    armed_engine = engine;
    armed_deadline = lcmc_now() + limits->seconds;
    stopping = 0;
    watchdog_set = 0;
    /* The watchdog needs the handler even without a deadline (a signal starts it). */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigemptyset(&action.sa_mask);
    sigaction(SIGALRM, &action, NULL);
    /* Set with or without a deadline: it is also how an interrupt reaches coroutines. */
    lua_sethook(L, limits_hook, LUA_MASKCOUNT, CHECK_EVERY_INSTRUCTIONS);
    if (!(limits->seconds > 0))
        return;
    /* The timer's fields are integers: a deadline past ~115 days (more than --script-timeout
     * accepts) is armed at that cap rather than converted out of range. */
    double timer_seconds = limits->seconds < 1e7 ? limits->seconds : 1e7;
    struct itimerval timer;
    memset(&timer, 0, sizeof timer);
    timer.it_value.tv_sec = (time_t)timer_seconds;
    timer.it_value.tv_usec = (suseconds_t)((timer_seconds - (double)(time_t)timer_seconds) * 1e6);
    setitimer(ITIMER_REAL, &timer, NULL);
}

void lcmc_limits_disarm(lua_State *L)
{
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
    stopping = 0;
    watchdog_set = 0;
    if (L != NULL && armed_state == L)
        lua_sethook(L, NULL, 0, 0);
    armed_limits = NULL;
    armed_state = NULL;
    armed_engine = NULL;
}

/* ---- calling the script ------------------------------------------------------------------ */

int lcmc_limits_call_script(lua_State *L, const char *script, int nargs, int handler,
                            lcmc_script_limits *limits, int *caught)
{
    lua_createtable(L, 1, 0);
    lua_pushstring(L, script);
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");

    lcmc_engine *engine = lcmc_lua_engine(L);
    lcmc_host_signals_arm(engine, L);
    lcmc_limits_arm(limits, L, engine);
    int rc = lua_pcall(L, nargs, 0, handler);
    lcmc_limits_disarm(L);
    *caught = lcmc_host_signals_disarm(L);
    return rc;
}
