/*
 * The client userdata (`lcmcoord.client{...}`): one EM's endpoint, authentication, TLS and
 * waits, wrapping an lcmc_client on the state's engine, plus the Tacker-compatible
 * `lcmcoord.create_coordination`, which is a client made for one call. Bad arguments
 * raise; failures of the exchange return `nil, err` (create_coordination raises them, as
 * Tacker's does). Runtime calls are plain C calls that return; nothing here raises while
 * one is in progress, so no Lua error ever unwinds through libcurl.
 */
#include <string.h>

#include "binding.h"

/* What Tacker uses when `timeout` is missing or not a number. */
#define DEFAULT_TIMEOUT 3600.0

typedef struct client_box {
    lcmc_client *client; /* NULL once closed */
    double timeout;      /* for single requests; 0: the runtime's default */
    /* Requests tasks wait on (task.c): a client closed meanwhile is freed after the last. */
    int in_flight;
    lcmc_client *free_later;
} client_box;

/* The client's user value 1 is a sequence of the Lua strings the options pointed into, so
 * they outlive any borrowing the runtime may do, whatever the script does to its table. */
static const char *keep_string(lua_State *L, int keep, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushvalue(L, idx);
    lua_rawseti(L, keep, (lua_Integer)lua_rawlen(L, keep) + 1);
    return lua_tostring(L, idx);
}

/* ---- options ----------------------------------------------------------------------- */

static int field_error(lua_State *L, int arg, const char *field, const char *expected)
{
    const char *got = luaL_typename(L, -1);
    return luaL_argerror(
        L, arg, lua_pushfstring(L, "field '%s': %s expected, got %s", field, expected, got));
}

static const char *opt_string(lua_State *L, int t, int arg, int keep, const char *field)
{
    lua_getfield(L, t, field);
    const char *value = NULL;
    if (!lcmc_lua_is_absent(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            field_error(L, arg, field, "string");
        value = keep_string(L, keep, -1);
    }
    lua_pop(L, 1);
    return value;
}

static double opt_number(lua_State *L, int t, int arg, const char *field)
{
    lua_getfield(L, t, field);
    double value = 0;
    if (!lcmc_lua_is_absent(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            field_error(L, arg, field, "number");
        value = lua_tonumber(L, -1);
        /* 0 asks for the default; a negative, huge or NaN value is refused here. */
        if (!lcmc_lua_seconds_ok(value, 1))
            field_error(L, arg, field, "number of seconds from 0 to " LCMC_LUA_MAX_SECONDS_TEXT);
    }
    lua_pop(L, 1);
    return value;
}

void lcmc_lua_read_tls(lua_State *L, int t, int arg, int keep, lcmc_tls_options *tls)
{
    static const char *const known[] = {"cacert",       "capath", "cert", "key",
                                        "key_password", "verify", NULL};
    lua_getfield(L, t, "tls");
    if (lcmc_lua_is_absent(L, -1)) {
        /* No tls table: the host's defaults (flags, environment), if any. */
        *tls = *lcmc_lua_default_tls(L);
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        field_error(L, arg, "tls", "table");
    int tt = lua_gettop(L);
    lcmc_lua_check_fields(L, tt, arg, known, "field");
    tls->cacert = opt_string(L, tt, arg, keep, "cacert");
    tls->capath = opt_string(L, tt, arg, keep, "capath");
    tls->cert = opt_string(L, tt, arg, keep, "cert");
    tls->key = opt_string(L, tt, arg, keep, "key");
    tls->key_password = opt_string(L, tt, arg, keep, "key_password");
    lua_getfield(L, tt, "verify");
    if (!lcmc_lua_is_absent(L, -1)) {
        if (!lua_isboolean(L, -1))
            field_error(L, arg, "tls.verify", "boolean");
        tls->insecure = !lua_toboolean(L, -1);
    }
    lua_pop(L, 2);
}

/* Encodes the authentication structure at idx (a table, or absent) and keeps the text. */
static const char *auth_json(lua_State *L, int idx, int arg, int keep)
{
    if (lcmc_lua_is_absent(L, idx))
        return NULL;
    /* An auth object (lcmcoord.auth.new) brings the structure it was made from. */
    const char *from_object = lcmc_lua_credentials_json(L, idx);
    if (from_object != NULL)
        return from_object;
    const char *json = lcmc_lua_json_encode(L, idx, NULL);
    if (json == NULL)
        luaL_argerror(L, arg, lua_pushfstring(L, "authentication: %s", lua_tostring(L, -1)));
    json = keep_string(L, keep, -1);
    lua_pop(L, 1);
    return json;
}

/* ---- the userdata ------------------------------------------------------------------ */

/* Pushes a client made from opts. The userdata is created closed and gets its metatable
 * before the runtime client exists, so any failure leaves a consistent object behind. A
 * client that cannot be made raises the error table: it is a configuration mistake. */
static client_box *push_client(lua_State *L, const lcmc_client_options *opts, int keep)
{
    lcmc_engine *engine = lcmc_lua_engine(L);
    client_box *box = lua_newuserdatauv(L, sizeof *box, 1);
    memset(box, 0, sizeof *box);
    box->client = NULL;
    box->timeout = opts->timeout;
    luaL_setmetatable(L, LCMC_LUA_CLIENT_MT);
    lua_pushvalue(L, keep);
    lua_setiuservalue(L, -2, 1);
    lcmc_client *client = NULL;
    lcmc_status status = lcmc_client_new(&client, engine, opts);
    if (status != LCMC_OK) {
        lcmc_lua_push_error(L, lcmc_engine_last_error(engine), status);
        lua_error(L);
    }
    box->client = client;
    return box;
}

int lcmc_lua_client_new(lua_State *L)
{
    static const char *const known[] = {"endpoint",
                                        "authentication",
                                        "timeout",
                                        "version",
                                        "tls",
                                        "wait_floor",
                                        "default_interval",
                                        "max_body",
                                        "oauth2_client_auth",
                                        "token_refresh_margin",
                                        "allow_cross_origin",
                                        NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lcmc_lua_check_fields(L, 1, 1, known, "field");
    lua_newtable(L);
    int keep = lua_gettop(L);

    lcmc_client_options opts = LCMC_CLIENT_OPTIONS_INIT;
    opts.endpoint = opt_string(L, 1, 1, keep, "endpoint");
    if (opts.endpoint == NULL) {
        lua_getfield(L, 1, "endpoint");
        field_error(L, 1, "endpoint", "string");
    }
    lua_getfield(L, 1, "authentication");
    if (!lcmc_lua_is_absent(L, -1) && !lua_istable(L, -1) &&
        lcmc_lua_credentials_json(L, -1) == NULL)
        field_error(L, 1, "authentication", "table or lcmcoord.auth");
    opts.authentication_json = auth_json(L, -1, 1, keep);
    lua_pop(L, 1);
    opts.api_version = opt_string(L, 1, 1, keep, "version");
    /* What the script leaves out, the host's configuration may set (0: the runtime's). */
    const lcmc_lua_client_defaults *defaults = lcmc_lua_default_client_options(L);
    opts.timeout = opt_number(L, 1, 1, "timeout");
    if (opts.timeout == 0)
        opts.timeout = defaults->timeout;
    opts.wait_floor = opt_number(L, 1, 1, "wait_floor");
    if (opts.wait_floor == 0)
        opts.wait_floor = defaults->wait_floor;
    opts.default_interval = opt_number(L, 1, 1, "default_interval");
    if (opts.default_interval == 0)
        opts.default_interval = defaults->default_interval;
    lua_getfield(L, 1, "max_body");
    if (!lcmc_lua_is_absent(L, -1)) {
        int isint = 0;
        lua_Integer max = lua_tointegerx(L, -1, &isint);
        if (!isint || max < 0)
            field_error(L, 1, "max_body", "non-negative integer");
        opts.max_body = (size_t)max;
    }
    lua_pop(L, 1);
    lcmc_lua_read_tls(L, 1, 1, keep, &opts.tls);
    /* How the client secret reaches the token endpoint: "basic" (client_secret_basic, the
     * default) or "body" (client_secret_post). */
    const char *client_auth = opt_string(L, 1, 1, keep, "oauth2_client_auth");
    if (client_auth && strcmp(client_auth, "body") == 0)
        opts.oauth2_secret_in_body = 1;
    else if (client_auth && strcmp(client_auth, "basic") != 0) {
        lua_getfield(L, 1, "oauth2_client_auth");
        field_error(L, 1, "oauth2_client_auth", "\"basic\" or \"body\"");
    }
    opts.token_refresh_margin = opt_number(L, 1, 1, "token_refresh_margin");
    lua_getfield(L, 1, "allow_cross_origin");
    if (!lcmc_lua_is_absent(L, -1)) {
        if (!lua_isboolean(L, -1))
            field_error(L, 1, "allow_cross_origin", "boolean");
        opts.allow_cross_origin = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);

    push_client(L, &opts, keep);
    return 1;
}

lcmc_client *lcmc_lua_to_client(lua_State *L, int idx)
{
    client_box *box = luaL_testudata(L, idx, LCMC_LUA_CLIENT_MT);
    return box != NULL ? box->client : NULL;
}

static client_box *check_client(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, LCMC_LUA_CLIENT_MT);
    if (box->client == NULL)
        luaL_error(L, "attempt to use a closed client");
    return box;
}

/* close, __close and __gc: idempotent. */
static int client_close(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, LCMC_LUA_CLIENT_MT);
    if (box->in_flight > 0 && box->client != NULL)
        box->free_later = box->client; /* their sessions borrow from it */
    else
        lcmc_client_free(box->client);
    box->client = NULL;
    return 0;
}

/* A request a task waited on ended (task.c). */
static void request_released(void *ctx)
{
    client_box *box = ctx;
    if (--box->in_flight == 0 && box->free_later != NULL) {
        lcmc_client_free(box->free_later);
        box->free_later = NULL;
    }
}

static int client_tostring(lua_State *L)
{
    client_box *box = luaL_checkudata(L, 1, LCMC_LUA_CLIENT_MT);
    if (box->client == NULL) {
        lua_pushliteral(L, "lcmcoord.client (closed)");
        return 1;
    }
    const char *endpoint = lcmc_client_endpoint(box->client);
    lua_pushliteral(L, "lcmcoord.client (");
    lcmc_lua_push_display_url(L, endpoint != NULL ? endpoint : "?");
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
    return 1;
}

/* ---- coordinations ----------------------------------------------------------------- */

/* Converts the request table at arg into a value (raising on what JSON cannot hold, with
 * the path of it) held by a guard left on the stack for the duration of the runtime call
 * that borrows it. */
static const json_t *request_value(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    if (!lcmc_lua_to_json(L, arg, guard))
        luaL_argerror(L, arg, lua_pushfstring(L, "cannot encode as JSON: %s", lua_tostring(L, -1)));
    return guard->value;
}

/* Runs one coordination and pushes its LcmCoord (returns 1) or its error table (0). */
static int run_coordination(lua_State *L, lcmc_client *client, const json_t *request,
                            double timeout)
{
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    lcmc_status status =
        lcmc_client_coordinate_value(client, request, timeout, &guard->coordination);
    int ok = guard->coordination != NULL
                 ? lcmc_lua_push_result(L, guard->coordination, status)
                 : (lcmc_lua_push_status_error(L, status, NULL, NULL, NULL), 0);
    lcmc_lua_guard_release(guard);
    return ok;
}

static int client_coordinate(lua_State *L)
{
    client_box *box = check_client(L);
    double timeout = luaL_optnumber(L, 3, 0);
    luaL_argcheck(L, lcmc_lua_seconds_ok(timeout, 1), 3,
                  "timeout: number of seconds from 0 to " LCMC_LUA_MAX_SECONDS_TEXT " expected");
    lua_settop(L, 3);
    const json_t *request = request_value(L, 2);
    if (run_coordination(L, box->client, request, timeout))
        return 1;
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
}

int lcmc_lua_create_coordination(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_argexpected(
        L, lcmc_lua_is_absent(L, 2) || lua_istable(L, 2) || lcmc_lua_credentials_json(L, 2) != NULL,
        2, "table, lcmcoord.auth or nil");
    luaL_checktype(L, 3, LUA_TTABLE);
    /* Like Tacker: anything but a positive number means the default budget (the host's, when
     * its configuration sets one). */
    const lcmc_lua_client_defaults *defaults = lcmc_lua_default_client_options(L);
    double timeout = lua_type(L, 4) == LUA_TNUMBER ? lua_tonumber(L, 4) : 0;
    /* A positive timeout is taken as given, so one past what the runtime can convert is
     * refused rather than quietly replaced. */
    luaL_argcheck(L, !(timeout > LCMC_LUA_MAX_SECONDS), 4,
                  "timeout: at most " LCMC_LUA_MAX_SECONDS_TEXT " seconds expected");
    if (!(timeout > 0))
        timeout = defaults->timeout > 0 ? defaults->timeout : DEFAULT_TIMEOUT;
    lua_settop(L, 4);
    lua_newtable(L);
    int keep = lua_gettop(L);

    const json_t *request = request_value(L, 3);
    lcmc_client_options opts = LCMC_CLIENT_OPTIONS_INIT;
    opts.endpoint = keep_string(L, keep, 1);
    opts.authentication_json = auth_json(L, 2, 2, keep);
    opts.timeout = timeout;
    opts.wait_floor = defaults->wait_floor;
    opts.default_interval = defaults->default_interval;
    opts.tls = *lcmc_lua_default_tls(L);
    client_box *box = push_client(L, &opts, keep);

    int ok = run_coordination(L, box->client, request, timeout);
    /* The runtime wants coordinations freed before their client: run_coordination did. */
    lcmc_client_free(box->client);
    box->client = NULL;
    if (!ok)
        return lua_error(L);
    return 1;
}

/* ---- single requests --------------------------------------------------------------- */

/* The optional [timeout] argument at `arg` of a single request: the client's own when
 * absent or 0. */
static double request_timeout(lua_State *L, const client_box *box, int arg)
{
    double timeout = luaL_optnumber(L, arg, 0);
    luaL_argcheck(L, lcmc_lua_seconds_ok(timeout, 1), arg,
                  "timeout: number of seconds from 0 to " LCMC_LUA_MAX_SECONDS_TEXT " expected");
    return timeout > 0 ? timeout : box->timeout;
}

/* What a single request returns for its outcome (the response in the guard, or none). */
static int request_results(lua_State *L, lcmc_status status, lcmc_lua_guard *guard,
                           const char *method, const char *target)
{
    if (status == LCMC_OK && guard->response != NULL) {
        lcmc_lua_push_response(L, guard->response);
        lcmc_lua_guard_release(guard);
        return 1;
    }
    luaL_pushfail(L);
    if (guard->response != NULL)
        lcmc_lua_push_error(L, lcmc_response_error(guard->response), status);
    else
        lcmc_lua_push_status_error(L, status, NULL, method, target);
    lcmc_lua_guard_release(guard);
    return 2;
}

/* Inside a task: the request ended, the coroutine resumed. The stack holds the method, the
 * target and the guard, from ctx - 2 on. */
static int request_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    int g = (int)ctx;
    lcmc_lua_guard *guard = lua_touserdata(L, g);
    lcmc_status outcome = lcmc_lua_task_take_response(lcmc_lua_task_of(L), &guard->response);
    lua_settop(L, g);
    return request_results(L, outcome, guard, lua_tostring(L, g - 2), lua_tostring(L, g - 1));
}

/* One request with a body given as text or as a value (at most one of them). */
static int send_request(lua_State *L, client_box *box, const char *method, const char *target,
                        const char *body, const json_t *value, double timeout)
{
    lcmc_lua_task *task = lcmc_lua_current_task(L);
    if (task != NULL) {
        /* What the continuation needs stays on the stack: method, target, guard. */
        lua_pushstring(L, method);
        lua_pushstring(L, target);
        lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
        int g = lua_gettop(L);
        if (value != NULL) {
            guard->text = lcmc_json_dump(value, NULL);
            if (guard->text == NULL)
                return luaL_error(L, "not enough memory");
            body = guard->text;
        }
        lcmc_request_handle *handle = NULL;
        lcmc_status status = lcmc_client_request_start(box->client, method, target, body, timeout,
                                                       lcmc_lua_task_request_done, task, &handle);
        /* The runtime copied the body: a secret in it is wiped now, as the blocking path does. */
        lcmc_lua_guard_release(guard);
        if (status != LCMC_OK)
            return request_results(L, status, guard, method, target);
        box->in_flight++;
        lcmc_lua_task_wait_request(task, handle, request_released, box);
        return lua_yieldk(L, 0, (lua_KContext)g, request_resumed);
    }
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    lcmc_status status = value != NULL ? lcmc_client_request_value(box->client, method, target,
                                                                   value, timeout, &guard->response)
                                       : lcmc_client_request(box->client, method, target, body,
                                                             timeout, &guard->response);
    return request_results(L, status, guard, method, target);
}

/* Pushes base .. id with the id percent-encoded, so an id can never add path segments. */
static const char *push_id_path(lua_State *L, const char *base, const char *id, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, base);
    for (const unsigned char *c = (const unsigned char *)id; *c != '\0'; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            luaL_addchar(&b, (char)*c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[*c >> 4]);
            luaL_addchar(&b, hex[*c & 15]);
        }
    }
    luaL_addstring(&b, suffix);
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

static const char *check_id(lua_State *L, int arg)
{
    const char *id = luaL_checkstring(L, arg);
    luaL_argcheck(L, id[0] != '\0', arg, "empty coordination id");
    return id;
}

#define COORDINATIONS "/lcmcoord/v1/coordinations"

static int client_post(lua_State *L)
{
    client_box *box = check_client(L);
    luaL_argexpected(L, lua_istable(L, 2) || lua_type(L, 2) == LUA_TSTRING, 2, "table or string");
    double timeout = request_timeout(L, box, 3);
    lua_settop(L, 2);
    /* A string is sent as it is: the way to send a body no table encodes to. */
    if (lua_istable(L, 2))
        return send_request(L, box, "POST", COORDINATIONS, NULL, request_value(L, 2), timeout);
    return send_request(L, box, "POST", COORDINATIONS, lua_tostring(L, 2), NULL, timeout);
}

static int client_get(lua_State *L)
{
    client_box *box = check_client(L);
    const char *id = check_id(L, 2);
    double timeout = request_timeout(L, box, 3);
    lua_settop(L, 2);
    const char *target = strncmp(id, "http://", 7) == 0 || strncmp(id, "https://", 8) == 0
                             ? id
                             : push_id_path(L, COORDINATIONS "/", id, "");
    return send_request(L, box, "GET", target, NULL, NULL, timeout);
}

static int client_cancel(lua_State *L)
{
    client_box *box = check_client(L);
    double timeout = request_timeout(L, box, 3);
    const char *target = push_id_path(L, COORDINATIONS "/", check_id(L, 2), "/cancel");
    return send_request(L, box, "POST", target, NULL, NULL, timeout);
}

static int client_api_versions(lua_State *L)
{
    client_box *box = check_client(L);
    double timeout = request_timeout(L, box, 2);
    return send_request(L, box, "GET", "/lcmcoord/v1/api_versions", NULL, NULL, timeout);
}

static int client_record(lua_State *L)
{
    client_box *box = check_client(L);
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    lcmc_status status = lcmc_client_record_value(box->client, &guard->value);
    if (status != LCMC_OK) {
        lcmc_lua_guard_release(guard);
        lcmc_lua_push_status_error(L, status, NULL, NULL, NULL);
        return lua_error(L);
    }
    if (!lcmc_lua_push_json(L, guard->value))
        return luaL_error(L, "cannot convert the record: %s", lua_tostring(L, -1));
    lcmc_lua_guard_release(guard);
    return 1;
}

void lcmc_lua_client_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"coordinate", client_coordinate},
        {"coordinate_all", lcmc_lua_client_coordinate_all},
        {"post", client_post},
        {"get", client_get},
        {"cancel", client_cancel},
        {"api_versions", client_api_versions},
        {"record", client_record},
        {"close", client_close},
        {NULL, NULL},
    };
    static const luaL_Reg metamethods[] = {
        {"__gc", client_close},
        {"__close", client_close},
        {"__tostring", client_tostring},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, LCMC_LUA_CLIENT_MT)) {
        luaL_setfuncs(L, metamethods, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}
