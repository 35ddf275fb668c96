/*
 * `lcmcoord run [options] SCRIPT`: runs a CoordinateVNF script the way a VNFM does (Tacker's
 * contract, docs/operator-guide.md): the VNFC parameters arrive as a JSON object on stdin
 * and become the script's first argument; the exit status and one line on stderr tell the
 * VNFM what happened. This file only wires a Lua state to the `lcmcoord` module: options,
 * stdin, loading the script, signals, and turning the outcome into an exit status.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <lua-cjson.h>

#include "lcmcoord_lua.h"
#include "run_io.h"
#include "subcommands.h"

/* VNFC parameters are a few kilobytes; anything near this is not what a VNFM sends. */
#define STDIN_CAP ((size_t)16 * 1024 * 1024)

#define EXIT_REFUSED   1 /* coordination refused (ABORT...) or script error */
#define EXIT_USAGE     2 /* usage or invalid input */
#define EXIT_DEADLINE  3
#define EXIT_TRANSPORT 4 /* transport, TLS, auth */

static const char usage_line[] =
    "usage: lcmcoord run [-v] [--record FILE] [--cacert FILE] [--capath DIR] [--cert FILE] "
    "[--key FILE] SCRIPT.lua < VNFC_PARAM.json";

typedef struct run_context {
    int verbosity;
    const char *record;
    const char *script;
    lcmc_tls_options tls;
    char *input;
    size_t input_length;
    int exit_status;
} run_context;

/* ---- signals ------------------------------------------------------------------------ */

/* What the handler may touch. It calls only async-signal-safe things: the runtime's
 * interrupt, sigaction and lua_sethook (safe by design, as lua.c relies on). */
static volatile sig_atomic_t caught_signal;
static lcmc_engine *volatile signal_engine;
static lua_State *volatile signal_state;

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

static void on_signal(int sig)
{
    /* A second signal of either kind ends the process at once. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGTERM, &dfl, NULL);

    caught_signal = sig;
    lcmc_engine *engine = signal_engine;
    if (engine != NULL)
        lcmc_engine_interrupt(engine);
    /* Runtime calls return LCMC_ECANCELLED; the hook stops a script busy in pure Lua. */
    lua_State *L = signal_state;
    if (L != NULL)
        lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
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

/* ---- options ------------------------------------------------------------------------ */

static int usage_error(const char *fmt, const char *arg)
{
    fputs("lcmcoord run: ", stderr);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (%s)\n", usage_line);
    return EXIT_USAGE;
}

static void print_help(void)
{
    printf("%s\n", usage_line);
    fputs("\n"
          "Runs a CoordinateVNF Lua script. The VNFC parameters (a JSON object) are read\n"
          "from stdin and passed to the script as its first argument: local p = ...\n"
          "\n"
          "Options:\n"
          "  -v, --verbose    log each request and wait to stderr (-vv: more detail)\n"
          "  --record FILE    write the coordination record (JSON) to FILE at the end\n"
          "  --cacert FILE    CA bundle for TLS (env LCMCOORD_CACERT)\n"
          "  --capath DIR     CA directory for TLS (env LCMCOORD_CAPATH)\n"
          "  --cert FILE      client certificate for mutual TLS (env LCMCOORD_CERT)\n"
          "  --key FILE       its private key (env LCMCOORD_KEY; passphrase in\n"
          "                   LCMCOORD_KEY_PASSWORD)\n"
          "  -h, --help       show this help\n"
          "\n"
          "Exit status: 0 success; 1 coordination refused or script error; 2 usage or\n"
          "invalid input; 3 deadline exceeded; 4 transport, TLS or authentication failure;\n"
          "130/143 interrupted by SIGINT/SIGTERM.\n",
          stdout);
}

/* Matches `--name VALUE` and `--name=VALUE`; advances *i past what it used. Returns 1 on a
 * match (the value in *value, NULL when missing), 0 otherwise. */
static int value_option(int argc, char **argv, int *i, const char *name, const char **value)
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

/* Returns -1 when the options are fine, else the exit status to return. */
static int parse_options(run_context *ctx, int argc, char **argv)
{
    ctx->tls.cacert = env_default("LCMCOORD_CACERT");
    ctx->tls.capath = env_default("LCMCOORD_CAPATH");
    ctx->tls.cert = env_default("LCMCOORD_CERT");
    ctx->tls.key = env_default("LCMCOORD_KEY");
    /* A passphrase on the command line would show in `ps`: environment only. */
    ctx->tls.key_password = env_default("LCMCOORD_KEY_PASSWORD");

    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        const char **slot = NULL;
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_help();
            return 0;
        }
        if (strcmp(arg, "--verbose") == 0) {
            ctx->verbosity++;
            continue;
        }
        if (arg[1] == 'v' && strspn(arg + 1, "v") == strlen(arg + 1)) {
            ctx->verbosity += (int)strlen(arg + 1);
            continue;
        }
        if (value_option(argc, argv, &i, "--record", &value))
            slot = &ctx->record;
        else if (value_option(argc, argv, &i, "--cacert", &value))
            slot = &ctx->tls.cacert;
        else if (value_option(argc, argv, &i, "--capath", &value))
            slot = &ctx->tls.capath;
        else if (value_option(argc, argv, &i, "--cert", &value))
            slot = &ctx->tls.cert;
        else if (value_option(argc, argv, &i, "--key", &value))
            slot = &ctx->tls.key;
        else
            return usage_error("unknown option '%s'", arg);
        if (value == NULL || value[0] == '\0')
            return usage_error("option '%s' needs a value", arg);
        *slot = value;
    }
    if (i >= argc)
        return usage_error("%s", "no script given");
    if (i + 1 < argc)
        return usage_error("unexpected argument '%s'", argv[i + 1]);
    ctx->script = argv[i];
    return -1;
}

/* ---- the Lua side ------------------------------------------------------------------- */

static void log_line(void *userdata, lcmc_log_level level, const char *message)
{
    (void)userdata;
    (void)level;
    fprintf(stderr, "lcmcoord: %s\n", message);
}

/* Prints "lcmcoord: <text>" as one line unless `keep_lines` (tracebacks under -vv): a VNFM
 * stores stderr as the error detail, so one clear line is the contract. */
static void report(const char *text, int keep_lines)
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

/* The message handler of the script's lua_pcall: keeps lcmcoord error tables as they are
 * (their kind decides the exit status), turns anything else into its message, and adds a
 * traceback under -vv. */
static int message_handler(lua_State *L)
{
    const run_context *ctx = lua_touserdata(L, lua_upvalueindex(1));
    if (lcmc_lua_error_status(L, 1, NULL)) {
        if (ctx->verbosity >= 2) {
            luaL_traceback(L, L, "lcmcoord error raised", 1);
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        lua_settop(L, 1);
        return 1;
    }
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (ctx->verbosity >= 2)
        luaL_traceback(L, L, msg, 1);
    else
        lua_pushstring(L, msg);
    return 1;
}

static int exit_status_of(lcmc_status status)
{
    switch (status) {
    case LCMC_EDEADLINE:
        return EXIT_DEADLINE;
    case LCMC_ETRANSPORT:
    case LCMC_ETLS:
    case LCMC_EAUTH:
        return EXIT_TRANSPORT;
    case LCMC_EUSAGE:
    case LCMC_EINVALID:
        return EXIT_USAGE;
    case LCMC_ECANCELLED:
        return 128 + SIGINT;
    default:
        return EXIT_REFUSED;
    }
}

/* Only the libraries a coordination script needs; no debug library. */
static void open_libraries(lua_State *L)
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
    /* cjson from the linked liblua5.4-cjson, so neither the module nor scripts depend on
     * package.cpath. */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pop(L, 1);
    luaL_requiref(L, "lcmcoord", luaopen_lcmcoord, 0);
    lua_pop(L, 1);
}

/* Decodes stdin into the VNFC parameter table (pushed). 0 on success, else reports why. */
static int push_parameters(lua_State *L, const run_context *ctx)
{
    const char *text = ctx->input + strspn(ctx->input, " \t\r\n");
    if (*text == '\0') {
        fputs("lcmcoord run: stdin is empty (expected the VNFC parameters as a JSON object)\n",
              stderr);
        return -1;
    }
    if (!lcmc_lua_json_decode(L, ctx->input, ctx->input_length)) {
        fprintf(stderr, "lcmcoord run: stdin is not valid JSON: %s\n", lua_tostring(L, -1));
        return -1;
    }
    /* cjson gives a table for arrays too; only an object is a parameter dict. */
    if (*text != '{') {
        fputs("lcmcoord run: stdin is not a JSON object\n", stderr);
        return -1;
    }
    return 0;
}

static void write_record(lua_State *L, run_context *ctx)
{
    char *json = NULL;
    lcmc_status status = lcmc_engine_record_json(lcmc_lua_engine(L), &json);
    if (status != LCMC_OK) {
        fprintf(stderr, "lcmcoord run: cannot make the record: %s\n", lcmc_strerror(status));
    } else if (lcmc_write_atomic(ctx->record, json) != 0) {
        fprintf(stderr, "lcmcoord run: cannot write the record to %s: %s\n", ctx->record,
                strerror(errno));
        status = LCMC_EUSAGE;
    }
    lcmc_free(json);
    if (status != LCMC_OK && ctx->exit_status == 0)
        ctx->exit_status = EXIT_USAGE;
}

/* Everything that touches Lua, run under lua_pcall so that a memory error while setting up
 * is reported rather than a panic. */
static int run_protected(lua_State *L)
{
    run_context *ctx = lua_touserdata(L, 1);
    lua_settop(L, 0);
    open_libraries(L);

    lcmc_engine *engine = lcmc_lua_engine(L);
    lcmc_lua_set_default_tls(L, &ctx->tls);
    /* Without -v, stderr carries only the outcome: a VNFM stores it as the error detail,
     * so even warnings (credentials over plain http) wait for -v. */
    if (ctx->verbosity > 0)
        lcmc_engine_set_log(engine, log_line, NULL,
                            ctx->verbosity >= 2 ? LCMC_LOG_DEBUG : LCMC_LOG_INFO);

    ctx->exit_status = EXIT_USAGE;
    lua_pushlightuserdata(L, ctx);
    lua_pushcclosure(L, message_handler, 1);
    int handler = lua_gettop(L);
    /* A script is text: bytecode could bypass the loader's checks. */
    if (luaL_loadfilex(L, ctx->script, "t") != LUA_OK) {
        fprintf(stderr, "lcmcoord run: %s\n", lua_tostring(L, -1));
        return 0;
    }
    if (push_parameters(L, ctx) != 0)
        return 0;

    lua_createtable(L, 1, 0);
    lua_pushstring(L, ctx->script);
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");

    signal_engine = engine;
    signal_state = L;
    set_handlers(on_signal);
    int rc = lua_pcall(L, 1, 0, handler);
    set_handlers(SIG_DFL);
    signal_state = NULL;
    signal_engine = NULL;
    lua_sethook(L, NULL, 0, 0);

    if (caught_signal != 0) {
        fprintf(stderr, "lcmcoord: interrupted by %s\n",
                caught_signal == SIGINT ? "SIGINT" : "SIGTERM");
        ctx->exit_status = 128 + caught_signal;
    } else if (rc == LUA_OK) {
        ctx->exit_status = 0;
    } else {
        lcmc_status status;
        if (lcmc_lua_error_status(L, -1, &status)) {
            ctx->exit_status = exit_status_of(status);
            report(luaL_tolstring(L, -1, NULL), 0);
        } else {
            ctx->exit_status = EXIT_REFUSED;
            report(lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "(no error message)",
                   ctx->verbosity >= 2);
        }
    }
    if (ctx->record != NULL)
        write_record(L, ctx);
    return 0;
}

int lcmc_run_main(int argc, char **argv)
{
    run_context ctx;
    memset(&ctx, 0, sizeof ctx);
    int rc = parse_options(&ctx, argc, argv);
    if (rc >= 0)
        return rc;
    /* Refuse before running anything: a coordination whose record is then lost would leave
     * the VNFM unable to account for it. */
    if (ctx.record != NULL && lcmc_check_writable(ctx.record) != 0) {
        fprintf(stderr, "lcmcoord run: cannot write the record to %s: %s\n", ctx.record,
                strerror(errno));
        return EXIT_USAGE;
    }
    ctx.input = lcmc_read_all(stdin, STDIN_CAP, &ctx.input_length);
    if (ctx.input == NULL) {
        fprintf(stderr, "lcmcoord run: cannot read stdin: %s\n", strerror(errno));
        return EXIT_USAGE;
    }

    lua_State *L = luaL_newstate();
    if (L == NULL) {
        free(ctx.input);
        fputs("lcmcoord run: not enough memory\n", stderr);
        return EXIT_REFUSED;
    }
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, &ctx);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        set_handlers(SIG_DFL);
        signal_state = NULL;
        signal_engine = NULL;
        fprintf(stderr, "lcmcoord run: %s\n", luaL_tolstring(L, -1, NULL));
        ctx.exit_status = EXIT_REFUSED;
    }
    lua_close(L);
    free(ctx.input);
    return ctx.exit_status;
}
