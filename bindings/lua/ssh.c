/*
 * lcmcoord.ssh: the SSH session userdata a CoordinateVNF script uses to run commands on its
 * VNFC (drain, reload, health check) with the ssh_ip, username and password the VNFM hands
 * over. It wraps lcmc_ssh_session (runtime/include/lcmcoord/ssh.h) on the state's engine,
 * so a command is cancelled by SIGINT/SIGTERM under `lcmcoord run` like any request. Bad
 * arguments raise; a connection or command that fails returns `nil, err` with the module's
 * error values. Passwords are read from the options table during connect only and never
 * kept by the binding (Lua strings cannot be wiped; the runtime's copies are).
 */
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "lcmcoord/ssh.h"

#define SSH_MT        "lcmcoord.ssh"
#define SSH_RESULT_MT "lcmcoord.ssh.result"

typedef struct ssh_box {
    lcmc_ssh_session *session; /* NULL until connected, and once closed */
} ssh_box;

/* Owns a command's result while it is copied into Lua values, which may raise (memory):
 * the result is then freed by the collector instead of leaking. */
typedef struct result_guard {
    lcmc_ssh_result *result;
} result_guard;

/* A connection or command a task waits on (task.c): its outcome, kept until the
 * continuation reads it. */
struct lcmc_lua_ssh_op {
    lcmc_ssh_connect_handle *connecting; /* NULL once it ended */
    lcmc_ssh_exec_handle *handle;        /* NULL once it ended */
    lcmc_lua_task *task;
    lcmc_status status;
    lcmc_ssh_session *session;
    lcmc_ssh_result *result;
};

void lcmc_lua_ssh_op_cancel(lcmc_lua_ssh_op *op)
{
    if (op == NULL)
        return;
    lcmc_ssh_connect_cancel(op->connecting);
    lcmc_ssh_exec_cancel(op->handle);
    lcmc_ssh_session_free(op->session);
    lcmc_ssh_result_free(op->result);
    free(op);
}

/* ---- options ----------------------------------------------------------------------- */

static int field_error(lua_State *L, const char *field, const char *expected)
{
    return luaL_argerror(L, 1,
                         lua_pushfstring(L, "field '%s': %s expected, got %s", field, expected,
                                         luaL_typename(L, -1)));
}

/* The value stays on the stack, so the string outlives the connect call whatever the
 * table's metamethods do. */
static const char *opt_string(lua_State *L, const char *field)
{
    lua_getfield(L, 1, field);
    if (lcmc_lua_is_absent(L, -1))
        return NULL;
    if (lua_type(L, -1) != LUA_TSTRING)
        field_error(L, field, "string");
    size_t length;
    const char *value = lua_tolstring(L, -1, &length);
    if (strlen(value) != length)
        field_error(L, field, "string without NUL bytes");
    return value;
}

static lua_Integer opt_integer(lua_State *L, const char *field, lua_Integer min, lua_Integer max)
{
    lua_getfield(L, 1, field);
    lua_Integer value = 0;
    if (!lcmc_lua_is_absent(L, -1)) {
        int isint = 0;
        value = lua_tointegerx(L, -1, &isint);
        if (!isint || value < min || value > max || lua_type(L, -1) != LUA_TNUMBER) {
            const char *got = luaL_typename(L, -1);
            luaL_argerror(L, 1,
                          lua_pushfstring(L,
                                          "field '%s': integer between %I and %I expected, "
                                          "got %s",
                                          field, min, max, got));
        }
    }
    lua_pop(L, 1);
    return value;
}

static int connect_results(lua_State *L, lcmc_engine *engine, lcmc_status status, ssh_box *box);

static void connect_done(void *userdata, lcmc_status status, lcmc_ssh_session *session)
{
    lcmc_lua_ssh_op *op = userdata;
    op->connecting = NULL;
    op->status = status;
    op->session = session;
    lcmc_lua_task_ssh_done(op->task);
}

/* Inside a task: the connection is made (or failed), the coroutine resumed. */
static int connect_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    lcmc_lua_ssh_op *op = lcmc_lua_task_take_ssh(lcmc_lua_task_of(L));
    ssh_box *box = lua_touserdata(L, (int)ctx);
    box->session = op->session;
    lcmc_status outcome = op->status;
    free(op);
    lua_settop(L, (int)ctx);
    return connect_results(L, lcmc_lua_engine(L), outcome, box);
}

/* lcmcoord.ssh.connect{host=, port=, user=, password= | key=, key_password=,
 * known_hosts= | host_key_sha256=, accept_unknown_host_key=, timeout=, max_output=} */
static int ssh_connect(lua_State *L)
{
    static const char *const known[] = {"host",
                                        "port",
                                        "user",
                                        "password",
                                        "key",
                                        "key_password",
                                        "known_hosts",
                                        "host_key_sha256",
                                        "accept_unknown_host_key",
                                        "timeout",
                                        "max_output",
                                        NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_checkstack(L, 24, "ssh options");
    lcmc_lua_check_fields(L, 1, 1, known, "field");

    lcmc_ssh_options o = LCMC_SSH_OPTIONS_INIT;
    o.host = opt_string(L, "host");
    if (o.host == NULL || *o.host == '\0')
        field_error(L, "host", "non-empty string");
    o.user = opt_string(L, "user");
    if (o.user == NULL || *o.user == '\0')
        field_error(L, "user", "non-empty string");
    o.password = opt_string(L, "password");
    o.key_file = opt_string(L, "key");
    o.key_password = opt_string(L, "key_password");
    if (o.password == NULL && o.key_file == NULL)
        luaL_argerror(L, 1, "field 'password' or 'key' expected");
    o.known_hosts = opt_string(L, "known_hosts");
    o.host_key_sha256 = opt_string(L, "host_key_sha256");
    if (o.known_hosts != NULL && o.host_key_sha256 != NULL)
        luaL_argerror(L, 1, "fields 'known_hosts' and 'host_key_sha256' exclude each other");
    o.port = (int)opt_integer(L, "port", 1, 65535);
    o.max_output = (size_t)opt_integer(L, "max_output", 1, LUA_MAXINTEGER);
    lua_getfield(L, 1, "accept_unknown_host_key");
    if (!lcmc_lua_is_absent(L, -1)) {
        if (!lua_isboolean(L, -1))
            field_error(L, "accept_unknown_host_key", "boolean");
        o.accept_unknown_host_key = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "timeout");
    if (!lcmc_lua_is_absent(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER || !lcmc_lua_seconds_ok(lua_tonumber(L, -1), 0))
            field_error(L, "timeout",
                        "positive number of seconds up to " LCMC_LUA_MAX_SECONDS_TEXT);
        o.timeout = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);

    lcmc_engine *engine = lcmc_lua_engine(L);
    /* Created closed with its metatable first, so that nothing leaks if the connection
     * fails or the state runs out of memory after it succeeded. */
    ssh_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->session = NULL;
    luaL_setmetatable(L, SSH_MT);
    lcmc_lua_task *task = lcmc_lua_current_task(L);
    if (task != NULL) {
        lcmc_lua_ssh_op *op = calloc(1, sizeof *op);
        if (op == NULL)
            return luaL_error(L, "not enough memory");
        op->task = task;
        lcmc_status status = lcmc_ssh_connect_start(engine, &o, connect_done, op, &op->connecting);
        if (status != LCMC_OK) {
            free(op);
            return connect_results(L, engine, status, box);
        }
        lcmc_lua_task_wait_ssh(task, op);
        return lua_yieldk(L, 0, (lua_KContext)lua_absindex(L, -1), connect_resumed);
    }
    lcmc_status status = lcmc_ssh_connect(engine, &o, &box->session);
    return connect_results(L, engine, status, box);
}

/* What ssh.connect returns for lcmc_ssh_connect's outcome, the box at the top. */
static int connect_results(lua_State *L, lcmc_engine *engine, lcmc_status status, ssh_box *box)
{
    if (status == LCMC_OK && box->session != NULL)
        return 1;
    /* Options the runtime refuses (an unreadable key file, a malformed fingerprint) are
     * the script's mistake: raised, like the bad arguments above. */
    lcmc_lua_push_error(L, lcmc_engine_last_error(engine), status);
    if (status == LCMC_EUSAGE)
        return lua_error(L);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* ---- the userdata ------------------------------------------------------------------ */

static ssh_box *check_open(lua_State *L)
{
    ssh_box *box = luaL_checkudata(L, 1, SSH_MT);
    if (box->session == NULL)
        luaL_error(L, "attempt to use a closed ssh session");
    return box;
}

static void set_output(lua_State *L, const char *field, const char *data, size_t length)
{
    lua_pushlstring(L, data, length);
    lua_setfield(L, -2, field);
}

/* What s:exec returns for lcmc_ssh_exec's outcome (the result in the guard, or none). */
static int exec_results(lua_State *L, lcmc_status status, result_guard *guard)
{
    const lcmc_ssh_result *r = guard->result;
    size_t out_length, err_length;
    const char *out = lcmc_ssh_result_stdout(r, &out_length);
    const char *err = lcmc_ssh_result_stderr(r, &err_length);
    if (status != LCMC_OK) {
        lua_pushnil(L);
        lcmc_lua_push_error(L, lcmc_ssh_result_error(r), status);
        /* What the command wrote before it failed helps to tell why. */
        if (out_length > 0)
            set_output(L, "stdout", out, out_length);
        if (err_length > 0)
            set_output(L, "stderr", err, err_length);
    } else {
        lua_createtable(L, 0, 7);
        lua_pushinteger(L, lcmc_ssh_result_exit_status(r));
        lua_setfield(L, -2, "status");
        set_output(L, "stdout", out, out_length);
        set_output(L, "stderr", err, err_length);
        if (lcmc_ssh_result_exit_signal(r) != NULL) {
            lua_pushstring(L, lcmc_ssh_result_exit_signal(r));
            lua_setfield(L, -2, "signal");
        }
        lua_pushboolean(L, lcmc_ssh_result_stdout_truncated(r));
        lua_setfield(L, -2, "stdout_truncated");
        lua_pushboolean(L, lcmc_ssh_result_stderr_truncated(r));
        lua_setfield(L, -2, "stderr_truncated");
        lua_pushnumber(L, lcmc_ssh_result_elapsed(r));
        lua_setfield(L, -2, "elapsed");
    }
    lcmc_ssh_result_free(guard->result);
    guard->result = NULL;
    return status != LCMC_OK ? 2 : 1;
}

static void exec_done(void *userdata, lcmc_status status, lcmc_ssh_result *result)
{
    lcmc_lua_ssh_op *op = userdata;
    op->handle = NULL;
    op->status = status;
    op->result = result;
    lcmc_lua_task_ssh_done(op->task);
}

/* Inside a task: the command ended, the coroutine resumed. */
static int exec_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    lcmc_lua_ssh_op *op = lcmc_lua_task_take_ssh(lcmc_lua_task_of(L));
    result_guard *guard = lua_touserdata(L, (int)ctx);
    guard->result = op->result;
    lcmc_status outcome = op->status;
    free(op);
    lua_settop(L, (int)ctx);
    return exec_results(L, outcome, guard);
}

/* s:exec(command [, timeout]) -> {status, stdout, stderr, signal?, stdout_truncated,
 * stderr_truncated, elapsed} | nil, err */
static int ssh_exec(lua_State *L)
{
    ssh_box *box = check_open(L);
    size_t length;
    const char *command = luaL_checklstring(L, 2, &length);
    luaL_argcheck(L, strlen(command) == length, 2, "command contains a NUL byte");
    double timeout = 0;
    if (!lcmc_lua_is_absent(L, 3)) {
        timeout = luaL_checknumber(L, 3);
        luaL_argcheck(L, lcmc_lua_seconds_ok(timeout, 0), 3,
                      "timeout: positive number of seconds up to " LCMC_LUA_MAX_SECONDS_TEXT
                      " expected");
    }
    result_guard *guard = lua_newuserdatauv(L, sizeof *guard, 0);
    guard->result = NULL;
    luaL_setmetatable(L, SSH_RESULT_MT);
    lcmc_lua_task *task = lcmc_lua_current_task(L);
    if (task != NULL) {
        lcmc_lua_ssh_op *op = calloc(1, sizeof *op);
        if (op == NULL)
            return luaL_error(L, "not enough memory");
        op->task = task;
        lcmc_status status =
            lcmc_ssh_exec_start(box->session, command, timeout, exec_done, op, &op->handle);
        if (status != LCMC_OK) {
            free(op);
            return exec_results(L, status, guard);
        }
        lcmc_lua_task_wait_ssh(task, op);
        /* The session's box (argument 1) stays on the stack while the command runs. */
        return lua_yieldk(L, 0, (lua_KContext)lua_absindex(L, -1), exec_resumed);
    }
    lcmc_status status = lcmc_ssh_exec(box->session, command, timeout, &guard->result);
    return exec_results(L, status, guard);
}

/* s:host_key_sha256() -> "SHA256:..." (to pin it, e.g. after a first accept_unknown) */
static int ssh_host_key(lua_State *L)
{
    ssh_box *box = check_open(L);
    lua_pushstring(L, lcmc_ssh_session_host_key_sha256(box->session));
    return 1;
}

/* close, __close and __gc: idempotent. */
static int ssh_close(lua_State *L)
{
    ssh_box *box = luaL_checkudata(L, 1, SSH_MT);
    lcmc_ssh_session_free(box->session);
    box->session = NULL;
    return 0;
}

static int ssh_tostring(lua_State *L)
{
    ssh_box *box = luaL_checkudata(L, 1, SSH_MT);
    if (box->session == NULL)
        lua_pushliteral(L, "lcmcoord.ssh (closed)");
    else
        lua_pushfstring(L, "lcmcoord.ssh (%s)", lcmc_ssh_session_label(box->session));
    return 1;
}

static int result_gc(lua_State *L)
{
    result_guard *guard = luaL_checkudata(L, 1, SSH_RESULT_MT);
    lcmc_ssh_result_free(guard->result);
    guard->result = NULL;
    return 0;
}

void lcmc_lua_open_ssh(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"exec", ssh_exec},
        {"close", ssh_close},
        {"host_key_sha256", ssh_host_key},
        {NULL, NULL},
    };
    static const luaL_Reg metamethods[] = {
        {"__gc", ssh_close},
        {"__close", ssh_close},
        {"__tostring", ssh_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg functions[] = {
        {"connect", ssh_connect},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, SSH_MT)) {
        luaL_setfuncs(L, metamethods, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, SSH_RESULT_MT)) {
        lua_pushcfunction(L, result_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, functions);
    lua_setfield(L, -2, "ssh");
}
