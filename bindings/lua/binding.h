/*
 * What the source files of the Lua module share and the module does not export: the names
 * of its metatables and registry keys, and the plumbing each file offers the others (JSON
 * converted to and from the runtime's jansson values, error values, the engine of a state,
 * response and result tables).
 * Every function here may raise a Lua error and must not be called while a runtime call is
 * in progress (none is: runtime calls never call back into Lua).
 */
#ifndef LCMCOORD_LUA_BINDING_H
#define LCMCOORD_LUA_BINDING_H

#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

#include "lcmcoord/json.h"
#include "lcmcoord/lcmcoord.h"
#include "lcmcoord_lua.h"

#define LCMC_LUA_ERROR_MT  "lcmcoord.error"
#define LCMC_LUA_CLIENT_MT "lcmcoord.client"
#define LCMC_LUA_ENGINE_MT "lcmcoord.engine"
#define LCMC_LUA_GUARD_MT  "lcmcoord.guard"

/* ---- json.c ------------------------------------------------------------------------ */

/* Pushes the lcmcoord.json table (encode, decode, array, is_array, null, max_depth). */
void lcmc_lua_json_open(lua_State *L);
struct lcmc_lua_guard;
/* Converts the value at idx into guard->value (replacing what it held). Returns 1; or 0
 * with a one-line message pushed that names where the value has no JSON form
 * ("inputParams.list[2]: a function cannot be JSON"). Raises only when out of memory, and
 * then what was built is the guard's to free. */
int lcmc_lua_to_json(lua_State *L, int idx, struct lcmc_lua_guard *guard);
/* Encodes the value at idx as text, through the converter and the runtime's dump. On
 * success pushes the text and returns it (valid while it stays on the stack); on failure
 * pushes the converter's message and returns NULL. */
const char *lcmc_lua_json_encode(lua_State *L, int idx, size_t *len);
/* 1 when the value at idx is nil or JSON null (an absent field, to the module). */
int lcmc_lua_is_absent(lua_State *L, int idx);

/* ---- fields.c ---------------------------------------------------------------------- */

/* Raises an argument error (argument `arg`) on a key of the table at t that is not in `known`
 * (NULL-terminated): "unknown <what> 'name'" for a string key, "unexpected <type> key" for
 * any other. `what` is "field" for most tables. */
void lcmc_lua_check_fields(lua_State *L, int t, int arg, const char *const *known,
                           const char *what);

/* ---- errors.c ---------------------------------------------------------------------- */

void lcmc_lua_errors_open(lua_State *L);
/* Pushes the error table for err; `fallback` is used when err is NULL. */
void lcmc_lua_push_error(lua_State *L, const lcmc_error *err, lcmc_status fallback);
/* Pushes an error table made here (no runtime error object to read from). method and url
 * may be NULL. */
void lcmc_lua_push_status_error(lua_State *L, lcmc_status status, const char *message,
                                const char *method, const char *url);
int lcmc_lua_is_error(lua_State *L, int idx);
/* Pushes url with any user:password@ replaced by ***@: URLs in error values, __tostring and
 * responses are for display, and credentials must never reach them. */
void lcmc_lua_push_display_url(lua_State *L, const char *url);
/* Lua: lcmcoord.is_error(v) */
int lcmc_lua_is_error_fn(lua_State *L);

/* ---- engine.c ---------------------------------------------------------------------- */

void lcmc_lua_engine_open(lua_State *L);
/* The defaults set by lcmc_lua_set_default_tls (all NULL when none). Borrowed. */
const lcmc_tls_options *lcmc_lua_default_tls(lua_State *L);
/* Lua: lcmcoord.record() */
int lcmc_lua_engine_record(lua_State *L);

/* ---- numbers from scripts ------------------------------------------------------------ */

/* The longest timeout, deadline or wait a script may give, in seconds (about 115 days, the
 * same cap as `lcmcoord run --script-timeout`). Beyond it the runtime's conversions of
 * deadlines to milliseconds (long, int) would overflow, which C leaves undefined; NaN and
 * the infinities are refused for the same reason. */
#define LCMC_LUA_MAX_SECONDS      1e7
#define LCMC_LUA_MAX_SECONDS_TEXT "10000000"

/* 1 when v is a number of seconds a binding may hand to the runtime: greater than 0 (or
 * equal to 0 when zero_ok) and at most LCMC_LUA_MAX_SECONDS. */
static inline int lcmc_lua_seconds_ok(double v, int zero_ok)
{
    return (zero_ok ? v >= 0 : v > 0) && v <= LCMC_LUA_MAX_SECONDS;
}

/* ---- guard.c ----------------------------------------------------------------------- */

/* A userdata owning what a runtime call handed over until the binding has copied it into
 * Lua values, so that a Lua error (out of memory) in between frees it at the next
 * collection instead of leaking it. */
typedef struct lcmc_lua_guard {
    lcmc_coordination *coordination;
    lcmc_response *response;
    char *text;    /* from lcmc_json_dump */
    json_t *value; /* a value being built for the runtime, or one it handed over */
} lcmc_lua_guard;

void lcmc_lua_guard_open(lua_State *L);
/* Pushes an empty guard. */
lcmc_lua_guard *lcmc_lua_guard_new(lua_State *L);
/* Frees what the guard holds now. */
void lcmc_lua_guard_release(lcmc_lua_guard *guard);

/* ---- response.c -------------------------------------------------------------------- */

/* Pushes the response table {status, headers, body, json, elapsed, url}. */
void lcmc_lua_push_response(lua_State *L, const lcmc_response *response);
/* Pushes the LcmCoord of a coordination that finished LCMC_OK and returns 1, or pushes its
 * error table and returns 0. */
int lcmc_lua_push_result(lua_State *L, const lcmc_coordination *coord, lcmc_status status);

/* ---- client.c ---------------------------------------------------------------------- */

void lcmc_lua_client_open(lua_State *L);
/* Lua: lcmcoord.client{...} */
int lcmc_lua_client_new(lua_State *L);
/* Lua: lcmcoord.create_coordination(endpoint, authentication, coord_req, timeout) */
int lcmc_lua_create_coordination(lua_State *L);

/* ---- request.c --------------------------------------------------------------------- */

/* Lua: lcmcoord.request{action=..., instance=..., op_occ=..., operation=..., input=...} */
int lcmc_lua_request(lua_State *L);

/* ---- client.c (shared readers) ----------------------------------------------------- */

/* Reads the `tls` field of the options table at t into tls (strings kept in `keep`); the
 * host's defaults when absent. */
void lcmc_lua_read_tls(lua_State *L, int t, int arg, int keep, lcmc_tls_options *tls);

/* ---- credentials.c -------------------------------------------------------------------- */

/* Pushes the lcmcoord.auth submodule table. */
void lcmc_lua_open_auth(lua_State *L);
/* The JSON an auth object was made from, or NULL when idx is not one. */
const char *lcmc_lua_credentials_json(lua_State *L, int idx);
lcmc_credentials *lcmc_lua_to_credentials(lua_State *L, int idx);

/* ---- retry.c ---------------------------------------------------------------------------- */

/* Pushes the lcmcoord.retry submodule table. */
void lcmc_lua_open_retry(lua_State *L);
/* A policy from a policy object or a table at idx (argument `arg` in messages). */
void lcmc_lua_check_policy(lua_State *L, int idx, int arg, lcmc_retry_policy *policy);

/* ---- http.c ------------------------------------------------------------------------------ */

/* Pushes the lcmcoord.http submodule table. */
void lcmc_lua_open_http(lua_State *L);
int lcmc_lua_http_request(lua_State *L);

/* ---- batch.c ----------------------------------------------------------------------------- */

/* Lua: client:coordinate_all(reqs [, opts]) */
int lcmc_lua_client_coordinate_all(lua_State *L);

/* ---- script.c ---------------------------------------------------------------------------- */

/* Sets sleep, now and log on the module table at the top of the stack. */
void lcmc_lua_open_script(lua_State *L);

/* ssh.c: sets the lcmcoord.ssh submodule on the module table at the top of the stack. */
void lcmc_lua_open_ssh(lua_State *L);

/* ---- task.c: coroutines on the engine ------------------------------------------------------ */

void lcmc_lua_task_open(lua_State *L);
/* The task whose own coroutine is L, when it runs and may yield here: then the module's
 * waiting functions start their operation and yield (the lcmc_lua_task_* below) instead of
 * blocking. NULL anywhere else: they block as they always did. */
lcmc_lua_task *lcmc_lua_current_task(lua_State *L);
/* The task of the coroutine L (in a continuation), or NULL. */
lcmc_lua_task *lcmc_lua_task_of(lua_State *L);
lua_State *lcmc_lua_main_thread(lua_State *L);
/* Starts a timer and yields (return its result from the C function). When it ends, k(L,
 * status, ctx) runs with lcmc_lua_task_sleep_result the status lcmc_engine_sleep would
 * have returned (k runs at once when the timer cannot start). */
int lcmc_lua_task_sleep(lua_State *L, lcmc_lua_task *task, double seconds, lua_KFunction k,
                        lua_KContext ctx);
lcmc_status lcmc_lua_task_sleep_result(lcmc_lua_task *task);
/* Starts lcmc_request_start and yields; `made` (credentials made for this request, or NULL)
 * is the task's from now on and freed with the request. k takes the outcome with
 * lcmc_lua_task_take_response: lcmc_request's status and response (NULL when it could not
 * start: then the detail is lcmc_engine_last_error). */
int lcmc_lua_task_request(lua_State *L, lcmc_lua_task *task, const lcmc_request_options *o,
                          lcmc_credentials *made, lua_KFunction k, lua_KContext ctx);
lcmc_status lcmc_lua_task_take_response(lcmc_lua_task *task, lcmc_response **response);
/* For requests started elsewhere (lcmc_client_request_start): the callback to give them,
 * with the task as its userdata, and what the task then waits on; `release(release_ctx)`
 * is called once when the request ends, completed or cancelled. Then yield; the
 * continuation takes the outcome with lcmc_lua_task_take_response. */
void lcmc_lua_task_request_done(void *userdata, lcmc_status status, lcmc_response *response);
void lcmc_lua_task_wait_request(lcmc_lua_task *task, lcmc_request_handle *request,
                                void (*release)(void *ctx), void *release_ctx);
/* SSH (ssh.c): an operation the task waits on; cancelled when the task is aborted. */
typedef struct lcmc_lua_ssh_op lcmc_lua_ssh_op;
void lcmc_lua_ssh_op_cancel(lcmc_lua_ssh_op *op);
void lcmc_lua_task_wait_ssh(lcmc_lua_task *task, lcmc_lua_ssh_op *op);
/* The SSH operation ended: resumes the task (its continuation reads the op's outcome). */
void lcmc_lua_task_ssh_done(lcmc_lua_task *task);
/* In the continuation: the operation, now the caller's. */
lcmc_lua_ssh_op *lcmc_lua_task_take_ssh(lcmc_lua_task *task);

#endif
