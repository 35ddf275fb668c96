/*
 * Limits on the operator's script under `lcmcoord run` and `lcmcoord check` (script_limits.c):
 * a deadline for the whole script, a cap on the memory its Lua state may use, a sandbox of
 * libraries, and the one way both call a script under them.
 */
#ifndef LCMCOORD_HOST_SCRIPT_LIMITS_H
#define LCMCOORD_HOST_SCRIPT_LIMITS_H

#include <signal.h>
#include <stddef.h>

#include <lua.h>

#include "lcmcoord/lcmcoord.h"

typedef struct lcmc_script_limits {
    double seconds;      /* the script's deadline from arming; 0: none */
    size_t memory_bytes; /* what the Lua state may allocate; 0: no cap */
    /* What happened (read after the script ended). */
    volatile sig_atomic_t deadline_passed;
    int memory_exceeded;
    size_t used;
} lcmc_script_limits;

/* A Lua state whose allocations count against limits->memory_bytes. NULL when out of
 * memory. `limits` must outlive the state. */
lua_State *lcmc_limits_new_state(lcmc_script_limits *limits);

/* Opens only base (without dofile, loadfile, and with load taking text alone), string,
 * table, math and utf8, and a `require` that knows the lcmcoord module only. */
void lcmc_limits_open_sandbox(lua_State *L);

/* Starts the deadline: a count hook stops a script busy in Lua, and an alarm interrupts the
 * engine when the script is waiting in a runtime call. The hook is set on L's main thread,
 * which every coroutine created afterwards inherits, and it also stops a coroutine once
 * lcmc_host_signal_caught() reports SIGINT/SIGTERM (arm the host's signals first). Set
 * even when limits->seconds is 0 (no deadline). One script at a time per process. */
void lcmc_limits_arm(lcmc_script_limits *limits, lua_State *L, lcmc_engine *engine);
void lcmc_limits_disarm(lua_State *L);
/* From a SIGINT/SIGTERM handler (async-signal-safe): while a script is armed, starts the
 * watchdog that ends the process if the script has not stopped 10 s later (stuck in a C
 * function, where the hook that stops it never runs). */
void lcmc_limits_stop_requested(int signal_number);

/* Calls a script's loaded chunk, below its `nargs` arguments on the top of the stack, as
 * `lcmcoord run` and `lcmcoord check` both do: the global `arg` is {[0] = script}, SIGINT
 * and SIGTERM interrupt it (lcmc_host_signals_arm) and `limits` are armed for the call.
 * Returns lua_pcall's status (`handler`: its message handler, 0 for none) and sets *caught
 * to the signal caught meanwhile (0: none). */
int lcmc_limits_call_script(lua_State *L, const char *script, int nargs, int handler,
                            lcmc_script_limits *limits, int *caught);

#endif
