/*
 * The behaviour `lcmcoord run`, `lcmcoord coordinate` and `lcmcoord repl` share (host.h):
 * one mapping from error kinds to exit statuses, one way of reporting a failure on stderr,
 * and one signal handler, so that a VNFM or an operator sees the same conventions from all
 * three.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include <lua-cjson.h>

#include "host.h"
#include "lcmcoord_lua.h"
#include "run_io.h"

int lcmc_host_exit_status(lcmc_status status)
{
    switch (status) {
    case LCMC_OK:
        return 0;
    case LCMC_EDEADLINE:
        return LCMC_EXIT_DEADLINE;
    case LCMC_ETRANSPORT:
    case LCMC_ETLS:
    case LCMC_EAUTH:
        return LCMC_EXIT_TRANSPORT;
    case LCMC_EUSAGE:
    case LCMC_EINVALID:
        return LCMC_EXIT_USAGE;
    case LCMC_ECANCELLED:
        return 128 + SIGINT;
    default:
        return LCMC_EXIT_REFUSED;
    }
}

void lcmc_host_report(const char *text, int keep_lines)
{
    fputs("lcmcoord: ", stderr);
    for (const char *c = text; *c != '\0'; c++) {
        if (!keep_lines && (*c == '\n' || *c == '\r')) {
            if (c[1] != '\0' && c[1] != '\n' && c[1] != '\r')
                fputc(' ', stderr);
            continue;
        }
        fputc(*c, stderr);
    }
    fputc('\n', stderr);
}

int lcmc_host_value_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

static const char *env_default(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

void lcmc_host_tls_from_env(lcmc_tls_options *tls)
{
    tls->cacert = env_default("LCMCOORD_CACERT");
    tls->capath = env_default("LCMCOORD_CAPATH");
    tls->cert = env_default("LCMCOORD_CERT");
    tls->key = env_default("LCMCOORD_KEY");
    tls->key_password = env_default("LCMCOORD_KEY_PASSWORD");
}

void lcmc_host_open_libraries(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
        {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
        {LUA_IOLIBNAME, luaopen_io},        {LUA_OSLIBNAME, luaopen_os},
        {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},    {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 1);
    luaL_requiref(L, "lcmcoord", luaopen_lcmcoord, 0);
    lua_pop(L, 1);
}

void lcmc_host_log_line(void *userdata, lcmc_log_level level, const char *message)
{
    (void)userdata;
    /* "warning:" sets warnings apart from the one line that states the outcome. */
    fprintf(stderr, "lcmcoord: %s%s\n", level == LCMC_LOG_WARN ? "warning: " : "", message);
}

/* ---- the client of one EM ------------------------------------------------------------- */

/* An authentication structure is a few hundred bytes. */
#define AUTH_CAP ((size_t)1024 * 1024)

/* Overwrites a buffer that held credentials before it goes back to the allocator; volatile
 * so that the stores are not dropped as dead. */
static void wipe(char *buffer, size_t length)
{
    volatile char *p = buffer;
    while (length-- > 0)
        *p++ = 0;
}

/* Pushes the decoded authentication file, or reports and returns -1 with nothing pushed. */
static int push_auth(lua_State *L, const char *prog, const char *path)
{
    FILE *in = fopen(path, "rb");
    size_t length = 0;
    char *text = in != NULL ? lcmc_read_all(in, AUTH_CAP, &length) : NULL;
    int saved_errno = errno;
    if (in != NULL)
        fclose(in);
    if (text == NULL) {
        fprintf(stderr, "%s: cannot read the authentication file %s: %s\n", prog, path,
                strerror(saved_errno));
        return -1;
    }
    int object = text[strspn(text, " \t\r\n")] == '{';
    lua_pushlstring(L, text, length);
    wipe(text, length);
    free(text);
    /* cjson's messages give a position, never the text: safe to show. */
    int ok = lcmc_lua_json_decode(L, lua_tostring(L, -1), length);
    lua_remove(L, -2);
    if (!ok || !object) {
        fprintf(stderr, "%s: the authentication file %s is not a JSON object%s%s\n", prog, path,
                ok ? "" : ": ", ok ? "" : lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* Calls lcmcoord.client{...} with the options and the authentication at `auth` (0: none).
 * Returns 1 with the client pushed, or 0 with the error value pushed. */
static int call_client(lua_State *L, const lcmc_host_client_options *options, int auth)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "lcmcoord");
    lua_getfield(L, -1, "client");
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, options->endpoint);
    lua_setfield(L, -2, "endpoint");
    if (options->version != NULL) {
        lua_pushstring(L, options->version);
        lua_setfield(L, -2, "version");
    }
    if (options->timeout > 0) {
        lua_pushnumber(L, options->timeout);
        lua_setfield(L, -2, "timeout");
    }
    if (auth != 0) {
        lua_pushvalue(L, auth);
        lua_setfield(L, -2, "authentication");
    }
    return lua_pcall(L, 1, 1, 0) == LUA_OK;
}

static int client_failed(lua_State *L, const char *prog, const char *what, const char *name)
{
    lcmc_status status = LCMC_EUSAGE;
    if (!lcmc_lua_error_status(L, -1, &status))
        status = LCMC_EUSAGE;
    fprintf(stderr, "%s: %s %s: %s\n", prog, what, name, luaL_tolstring(L, -1, NULL));
    lua_pop(L, 2);
    return lcmc_host_exit_status(status);
}

int lcmc_host_push_client(lua_State *L, const char *prog, const lcmc_host_client_options *options)
{
    /* Made once without the authentication first, so that a failure names the right culprit:
     * the endpoint (or TLS files), or the authentication file. */
    if (!call_client(L, options, 0))
        return client_failed(L, prog, "cannot use the endpoint", options->endpoint);
    if (options->auth_path == NULL)
        return 0;
    lua_pop(L, 1);
    if (push_auth(L, prog, options->auth_path) != 0)
        return LCMC_EXIT_USAGE;
    int auth = lua_gettop(L);
    if (!call_client(L, options, auth)) {
        client_failed(L, prog, "cannot use the authentication in", options->auth_path);
        lua_pop(L, 1);
        return LCMC_EXIT_USAGE;
    }
    lua_remove(L, auth);
    return 0;
}

/* ---- signals --------------------------------------------------------------------------- */

/* What the handler may touch. It calls only async-signal-safe things: the runtime's
 * interrupt, sigaction and lua_sethook (safe by design, as the stock interpreter relies on). */
static volatile sig_atomic_t caught_signal;
static lcmc_engine *volatile signal_engine;
static lua_State *volatile signal_state;

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

static void set_handlers(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void on_signal(int sig)
{
    set_handlers(SIG_DFL);
    caught_signal = sig;
    lcmc_engine *engine = signal_engine;
    if (engine != NULL)
        lcmc_engine_interrupt(engine);
    /* Runtime calls return LCMC_ECANCELLED; the hook stops code busy in pure Lua. */
    lua_State *L = signal_state;
    if (L != NULL)
        lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void lcmc_host_signals_arm(lcmc_engine *engine, lua_State *L)
{
    caught_signal = 0;
    signal_engine = engine;
    signal_state = L;
    set_handlers(on_signal);
}

int lcmc_host_signals_disarm(lua_State *L)
{
    set_handlers(SIG_DFL);
    signal_state = NULL;
    signal_engine = NULL;
    if (L != NULL)
        lua_sethook(L, NULL, 0, 0);
    return caught_signal;
}

int lcmc_host_signal_caught(void)
{
    return caught_signal;
}
