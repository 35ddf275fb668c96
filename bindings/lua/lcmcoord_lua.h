/*
 * The C face of the `lcmcoord` Lua module, for programs that embed Lua (the `lcmcoord run`
 * host): open the module, reach the one engine that every client of a Lua state runs on (to
 * interrupt it from a signal handler, set its log, read its record), give clients default
 * TLS settings and timings, and recognise the module's error values. A stock interpreter needs none
 * of this: `require "lcmcoord"` is enough there.
 */
#ifndef LCMCOORD_LUA_H
#define LCMCOORD_LUA_H

#include <stddef.h>

#include <lua.h>

#include "lcmcoord/json.h"
#include "lcmcoord/lcmcoord.h"

/* Opens the module (returns it on the stack), as `require "lcmcoord"` does. The only symbol
 * the shared module exports. */
LCMC_API int luaopen_lcmcoord(lua_State *L);

/* The engine of this Lua state, made on first use and freed when the state is closed. Raises
 * a Lua error when it cannot be made, so call it from protected code. */
lcmc_engine *lcmc_lua_engine(lua_State *L);

/* TLS settings for clients whose script gives no `tls` table (and for create_coordination).
 * The strings are copied; NULL clears the defaults. Raises on memory errors. */
void lcmc_lua_set_default_tls(lua_State *L, const lcmc_tls_options *tls);

/* Timing defaults for clients whose script does not give them (lcmcoord.client, and
 * create_coordination when its timeout is not a positive number), so that a host's
 * configuration file can set them for every script. 0 in a field: the runtime's default. */
typedef struct lcmc_lua_client_defaults {
    double timeout;          /* seconds; create_coordination's Tacker default 3600 otherwise */
    double wait_floor;       /* seconds */
    double default_interval; /* seconds */
} lcmc_lua_client_defaults;

/* Sets the defaults above (copied; NULL clears them). */
void lcmc_lua_set_default_client_options(lua_State *L, const lcmc_lua_client_defaults *defaults);
/* The defaults in force (all 0 when none). Borrowed. */
const lcmc_lua_client_defaults *lcmc_lua_default_client_options(lua_State *L);

/* 1 when the value at `idx` is an lcmcoord error table; then *status (if not NULL) is the
 * status its `kind` names. */
int lcmc_lua_error_status(lua_State *L, int idx, lcmc_status *status);

/* What the last interrupted coordination's error said of the EM's side, from "interrupted"
 * on (e.g. "interrupted; the EM was asked to cancel"), one that may be left behind at the
 * EM taking precedence; NULL when no coordination was interrupted. Borrowed from the
 * registry. For hosts whose own interrupt replaces the error the script saw. */
const char *lcmc_lua_interrupt_outcome(lua_State *L);

/* The runtime client of the lcmcoord.client userdata at `idx`, or NULL when the value is not
 * one or is closed. Borrowed: valid while the userdata is open. For hosts that send requests
 * the module has no method for (the REPL's `:journal`). */
lcmc_client *lcmc_lua_to_client(lua_State *L, int idx);

/* Decodes JSON text under the runtime's rules (lcmc_json_parse) into Lua values, as
 * lcmcoord.json.decode does. On success pushes the value and returns 1; on failure pushes a
 * one-line reason with the line and column (never a piece of the text) and returns 0. */
int lcmc_lua_json_decode(lua_State *L, const char *text, size_t len);
/* Pushes the Lua form of a value (docs/lua-api.md, "JSON values"): integers stay integers,
 * null is lcmcoord.null, arrays carry the lcmcoord.json.array marker. Returns 1; or 0 with a
 * message pushed instead when it nests deeper than LCMC_JSON_MAX_DEPTH. value is borrowed. */
int lcmc_lua_push_json(lua_State *L, const json_t *value);
/* 1 when the value at idx is a table marked as a JSON array (decoded from one, or made with
 * lcmcoord.json.array), so that an empty one is [] rather than {}. */
int lcmc_lua_json_is_array(lua_State *L, int idx);

/* ---- Tasks: functions run as coroutines on the engine (for hosts that never block) ----------
 * A task runs a Lua function as a coroutine of this state, resumed by the engine's loop
 * (lcmc_lua_engine(L)): the host turns the loop (lcmc_engine_serve) and many tasks wait at
 * once. Inside a task, lcmcoord.sleep, lcmcoord.http.request, client:request, policy:run's
 * waits and the ssh functions start their operation and yield, and resume with exactly what
 * they return when they block; one task waiting never delays another. Anywhere else (a
 * script's main chunk, a coroutine the script makes itself, a call that cannot yield) they
 * block as always. Functions that have no waiting form (client:coordinate...) block inside
 * a task too, turning the loop meanwhile: other tasks go on, but this one's caller waits. */
typedef struct lcmc_lua_task lcmc_lua_task;

/* Called once when a task ends by itself, from the engine's loop. status LUA_OK: the
 * function returned, its `nresults` results on top of `co`'s stack. Otherwise the status of
 * the error (LUA_ERRRUN, LUA_ERRMEM, LUA_ERRERR) with the error value on top of `co`
 * (nresults 1); luaL_traceback(L, co, ...) still works during the call. `co` has
 * LUA_MINSTACK free slots. The values are valid during the call only; the task handle is no
 * longer valid when it starts. */
typedef void lcmc_lua_done_fn(void *userdata, lua_State *co, int status, int nresults);

/* Pops a function and `nargs` arguments (pushed in that order) from L and runs them as a
 * task. The first resume comes from the loop, never inside this call. Returns the task, or
 * NULL (nothing runs; the function and arguments are popped) when L's top is not a function
 * with its arguments, done is NULL, or memory ran out. Call on the engine's thread. */
lcmc_lua_task *lcmc_lua_spawn(lua_State *L, int nargs, lcmc_lua_done_fn *done, void *userdata);

/* Ends a task without calling its done_fn: the operation it waits on is cancelled (a request
 * in flight is abandoned and its connection closed, an SSH command's channel dropped), its
 * to-be-closed variables are closed, and its coroutine is dropped. Called from inside the
 * task's own run (a callback reached from a blocking call it made), the task ends as soon as
 * it yields or returns. Accepts NULL; not after done_fn started. */
void lcmc_lua_abort(lcmc_lua_task *task);

/* Bounds the CPU time one run of a task may take without waiting on an operation (a `while
 * true do end` would hold the engine's thread, and every other task, forever): past `seconds`
 * the task ends with an error its pcall cannot catch. Sets a count hook on L (replacing any),
 * which the coroutines made afterwards inherit: call it before spawning. 0 turns it off. */
void lcmc_lua_set_cpu_slice(lua_State *L, double seconds);

#endif
