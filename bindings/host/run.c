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
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"
#include "lcmcoord_lua.h"
#include "options.h"
#include "script_limits.h"
#include "params.h"
#include "progress.h"
#include "run_io.h"
#include "safe_text.h"
#include "subcommands.h"

/* VNFC parameters are a few kilobytes; anything near this is not what a VNFM sends. */
#define STDIN_CAP ((size_t)16 * 1024 * 1024)

#define EXIT_REFUSED LCMC_EXIT_REFUSED
#define EXIT_USAGE   LCMC_EXIT_USAGE

static const char usage_line[] =
    "usage: lcmcoord run [-v] [--record FILE] [--any-params] [--cacert FILE] [--capath DIR] "
    "[--cert FILE] "
    "[--key FILE] [--config FILE] [--log-format text|json] [--print-config] [--sandbox] "
    "[--script-timeout S] [--memory-limit MIB] SCRIPT.lua < VNFC_PARAM.json";

/* What an operator's script may use unless told otherwise: its coordination's own timeout
 * plus this much for the script's other work, and this much memory for its Lua state. */
#define SCRIPT_GRACE_SECONDS   60.0
#define DEFAULT_SCRIPT_SECONDS (3600.0 + SCRIPT_GRACE_SECONDS)
#define DEFAULT_MEMORY_MIB     512

typedef struct run_context {
    int verbosity;
    int any_params;        /* --any-params: stdin need not be CoordinateVNF parameters */
    int sandbox;           /* --sandbox: only base, string, table, math, utf8 and lcmcoord */
    double script_timeout; /* --script-timeout; 0: from the parameters' timeout */
    lcmc_script_limits limits;
    const char *record;
    const char *script;
    lcmc_host_config config;
    lcmc_host_log log;
    char *input;
    size_t input_length;
    int exit_status;
    int exit_called;    /* the script called os.exit */
    int exit_called_ok; /* ... with true, nothing or 0 */
    char exit_call[48]; /* how it was called, for the one-line report */
} run_context;

/* ---- options ------------------------------------------------------------------------ */

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
          "  --any-params     accept any JSON object on stdin (for scripts that are not\n"
          "                   CoordinateVNF scripts; otherwise endpoint and\n"
          "                   LcmCoordRequest are required, authentication checked\n"
          "                   when given)\n"
          "  --cacert FILE    CA bundle for TLS (env LCMCOORD_CACERT)\n"
          "  --capath DIR     CA directory for TLS (env LCMCOORD_CAPATH)\n"
          "  --cert FILE      client certificate for mutual TLS (env LCMCOORD_CERT)\n"
          "  --key FILE       its private key (env LCMCOORD_KEY; passphrase in\n"
          "                   LCMCOORD_KEY_PASSWORD)\n"
          "  --config FILE    configuration file (env LCMCOORD_CONFIG; default\n"
          "                   " LCMCOORD_DEFAULT_CONFIG ")\n"
          "  --log-format F   text (default) or json: one JSON object per log line\n"
          "                   (env LCMCOORD_LOG_FORMAT)\n"
          "  --print-config   print the effective settings and where each comes from\n"
          "  --sandbox        give the script only base, string, table, math, utf8 and\n"
          "                   lcmcoord (no io, os, files, bytecode)\n"
          "  --script-timeout S  stop the script after S seconds (default: the parameters'\n"
          "                   timeout, or 3600, plus 60)\n"
          "  --memory-limit MIB  cap the script's Lua memory (default 512)\n"
          "  -h, --help       show this help\n"
          "\n"
          "Exit status: 0 success; 1 coordination refused or script error; 2 usage or\n"
          "invalid input; 3 deadline exceeded; 4 transport, TLS or authentication failure;\n"
          "130/143 interrupted by SIGINT/SIGTERM.\n",
          stdout);
}

/* Returns -1 when the options are fine, else the exit status to return. */
static int parse_options(run_context *ctx, int argc, char **argv)
{
    double memory_mib = 0;
    const lcmc_option own[] = {
        {"--any-params", LCMC_OPTION_FLAG, &ctx->any_params, 0},
        {"--sandbox", LCMC_OPTION_FLAG, &ctx->sandbox, 0},
        {"--script-timeout", LCMC_OPTION_NUMBER, &ctx->script_timeout, 1e7},
        {"--memory-limit", LCMC_OPTION_NUMBER, &memory_mib, 1e6},
        {"--record", LCMC_OPTION_VALUE, &ctx->record, 0},
        {NULL, LCMC_OPTION_FLAG, NULL, 0},
    };
    const lcmc_option_parser parser = {
        .subcommand = "run",
        .usage_line = usage_line,
        .print_help = print_help,
        .takes_operands = 1,
        .verbosity = &ctx->verbosity,
        .config = &ctx->config,
        .own = own,
    };
    int rc = lcmc_host_parse_script_options(&parser, argc, argv, &ctx->script);
    if (rc < 0 && memory_mib > 0)
        ctx->limits.memory_bytes = (size_t)(memory_mib * 1024 * 1024);
    return rc;
}

/* ---- the Lua side ------------------------------------------------------------------- */

/* Its address is the error value of the host's os.exit (see script_exit). */
static const char exit_key = 'x';

/* The message handler of the script's lua_pcall: keeps lcmcoord error tables as they are
 * (their kind decides the exit status), turns anything else into its message, and adds a
 * traceback under -vv. */
static int message_handler(lua_State *L)
{
    const run_context *ctx = lua_touserdata(L, lua_upvalueindex(1));
    if (lua_touserdata(L, 1) == &exit_key)
        return 1;
    if (lcmc_lua_error_status(L, 1, NULL)) {
        if (ctx->verbosity >= 2) {
            size_t length = 0;
            luaL_traceback(L, L, "lcmcoord error raised", 1);
            const char *traceback = lua_tolstring(L, -1, &length);
            lcmc_safe_write(stderr, traceback, length, LCMC_SAFE_KEEP_LINES);
            fputc('\n', stderr);
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
    if (ctx->verbosity >= 2) {
        /* The traceback keeps its own lines; the message (which may quote an EM) gets none. */
        char *safe = lcmc_safe_dup(msg, strlen(msg), LCMC_SAFE_SPACE_LINES);
        luaL_traceback(L, L, safe != NULL ? safe : "(not enough memory for the message)", 1);
        free(safe);
    } else {
        lua_pushstring(L, msg);
    }
    return 1;
}

/* ---- os.exit ------------------------------------------------------------------------ */

/* os.exit would end the process where it stands: no record, and any status at all. The
 * host's os.exit raises the address of exit_key instead, which unwinds to the host; a hook
 * raises it again at each Lua instruction, so a pcall in the script cannot swallow it and
 * go on. */

static void exit_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_pushlightuserdata(L, (void *)&exit_key);
    lua_error(L);
}

static int script_exit(lua_State *L)
{
    run_context *ctx = lua_touserdata(L, lua_upvalueindex(1));
    if (lua_isboolean(L, 1)) {
        ctx->exit_called_ok = lua_toboolean(L, 1);
        snprintf(ctx->exit_call, sizeof ctx->exit_call, "os.exit(%s)",
                 ctx->exit_called_ok ? "true" : "false");
    } else {
        lua_Integer code = luaL_optinteger(L, 1, 0);
        ctx->exit_called_ok = code == 0;
        snprintf(ctx->exit_call, sizeof ctx->exit_call, "os.exit(" LUA_INTEGER_FMT ")", code);
    }
    ctx->exit_called = 1;
    lua_sethook(L, exit_hook, LUA_MASKCOUNT, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *main_thread = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (main_thread != NULL && main_thread != L)
        lua_sethook(main_thread, exit_hook, LUA_MASKCOUNT, 1);
    lua_pushlightuserdata(L, (void *)&exit_key);
    return lua_error(L);
}

/* Puts the host's os.exit in place of the stock one (when the script has `os`). */
static void replace_os_exit(lua_State *L, run_context *ctx)
{
    lua_pushglobaltable(L); /* raw: under --sandbox reading a missing `os` is an error */
    lua_pushliteral(L, "os");
    int is_table = lua_rawget(L, -2) == LUA_TTABLE;
    lua_remove(L, -2);
    if (is_table) {
        lua_pushlightuserdata(L, ctx);
        lua_pushcclosure(L, script_exit, 1);
        lua_setfield(L, -2, "exit");
    }
    lua_pop(L, 1);
}

/* Decodes stdin into the VNFC parameter table (pushed). 0 on success, else reports why. */
static int push_parameters(lua_State *L, run_context *ctx)
{
    char why[256];
    if (lcmc_params_push(L, ctx->input, ctx->input_length, !ctx->any_params, why, sizeof why) ==
        0) {
        /* The script's deadline: its coordination's timeout plus room for its own work. */
        if (ctx->script_timeout > 0) {
            ctx->limits.seconds = ctx->script_timeout;
        } else {
            /* lcmc_params_push checked it is a positive number within bounds, when given. */
            lua_getfield(L, -1, "timeout");
            double timeout = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
            lua_pop(L, 1);
            ctx->limits.seconds = timeout > 0 && timeout <= LCMC_PARAMS_TIMEOUT_MAX
                                      ? timeout + SCRIPT_GRACE_SECONDS
                                      : DEFAULT_SCRIPT_SECONDS;
        }
        return 0;
    }
    fprintf(stderr, "lcmcoord run: %s\n", why);
    return -1;
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
    if (ctx->sandbox)
        lcmc_limits_open_sandbox(L);
    else
        lcmc_host_open_libraries(L);
    replace_os_exit(L, ctx);

    ctx->log.hold_until_outcome = 1;
    lcmc_host_apply_config(L, &ctx->config, ctx->verbosity, &ctx->log);

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

    int caught_signal = 0;
    int rc = lcmc_limits_call_script(L, ctx->script, 1, handler, &ctx->limits, &caught_signal);
    lcmc_progress_clear();

    if (caught_signal == 0 && ctx->limits.deadline_passed) {
        /* A coordination cut short by the deadline says what became of the EM's side. */
        const char *outcome = lcmc_lua_interrupt_outcome(L);
        const char *what = outcome != NULL ? outcome + strlen("interrupted") : "";
        fprintf(stderr, "lcmcoord: the script ran past its deadline of %g s", ctx->limits.seconds);
        lcmc_safe_write(stderr, what, strlen(what), LCMC_SAFE_SPACE_LINES);
        fputc('\n', stderr);
        ctx->exit_status = lcmc_host_exit_status(LCMC_EDEADLINE);
    } else if (caught_signal == 0 && rc != LUA_OK && ctx->limits.memory_exceeded) {
        fprintf(stderr, "lcmcoord: the script went over its memory limit of %zu MiB\n",
                ctx->limits.memory_bytes / (1024 * 1024));
        ctx->exit_status = EXIT_REFUSED;
    } else if (caught_signal != 0) {
        lcmc_host_report_interrupt(caught_signal, lcmc_lua_interrupt_outcome(L));
        ctx->exit_status = 128 + caught_signal;
    } else if (ctx->exit_called) {
        /* Only the documented statuses: 0 for success, 1 for any other exit. */
        ctx->exit_status = ctx->exit_called_ok ? 0 : EXIT_REFUSED;
        if (!ctx->exit_called_ok)
            fprintf(stderr, "lcmcoord: the script ended with %s\n", ctx->exit_call);
    } else if (rc == LUA_OK) {
        ctx->exit_status = 0;
    } else {
        lcmc_status status;
        if (lcmc_lua_error_status(L, -1, &status)) {
            ctx->exit_status = lcmc_host_exit_status(status);
            /* At a terminal, an EM that never answered says how often it was tried. */
            luaL_tolstring(L, -1, NULL);
            lua_pushstring(L, lcmc_progress_attempts());
            lua_concat(L, 2);
            lcmc_host_report(lua_tostring(L, -1), 0);
        } else {
            ctx->exit_status = EXIT_REFUSED;
            lcmc_host_report(lua_tostring(L, -1) != NULL ? lua_tostring(L, -1)
                                                         : "(no error message)",
                             ctx->verbosity >= 2);
        }
    }
    if (ctx->record != NULL)
        write_record(L, ctx);
    return 0;
}

/* Runs the script once the options and the configuration are settled. */
static int run_script(run_context *ctx)
{
    /* Refuse before running anything: a coordination whose record is then lost would leave
     * the VNFM unable to account for it. */
    if (ctx->record != NULL && lcmc_check_writable(ctx->record) != 0) {
        fprintf(stderr, "lcmcoord run: cannot write the record to %s: %s\n", ctx->record,
                strerror(errno));
        return EXIT_USAGE;
    }
    /* Someone at a terminal may not know the parameters come on stdin. */
    if (isatty(STDIN_FILENO)) {
        fputs("lcmcoord run: waiting for the VNFC parameters (a JSON object) on stdin; end "
              "with Ctrl-D\n",
              stderr);
        fflush(stderr);
    }
    ctx->input = lcmc_read_all(stdin, STDIN_CAP, &ctx->input_length);
    if (ctx->input == NULL) {
        fprintf(stderr, "lcmcoord run: cannot read stdin: %s\n", strerror(errno));
        return EXIT_USAGE;
    }

    if (ctx->limits.memory_bytes == 0)
        ctx->limits.memory_bytes = (size_t)DEFAULT_MEMORY_MIB * 1024 * 1024;
    lua_State *L = lcmc_limits_new_state(&ctx->limits);
    if (L == NULL) {
        lcmc_free_wiped(ctx->input, ctx->input_length);
        fputs("lcmcoord run: not enough memory\n", stderr);
        return EXIT_REFUSED;
    }
    lua_pushcfunction(L, run_protected);
    lua_pushlightuserdata(L, ctx);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lcmc_host_signals_disarm(NULL);
        fprintf(stderr, "lcmcoord run: %s\n", luaL_tolstring(L, -1, NULL));
        ctx->exit_status = EXIT_REFUSED;
    }
    lua_close(L);
    /* The VNFC parameters hold passwords (authentication, the VNFC's own). */
    lcmc_free_wiped(ctx->input, ctx->input_length);
    lcmc_host_log_finish(&ctx->log, ctx->exit_status == 0);
    return ctx->exit_status;
}

int lcmc_run_main(int argc, char **argv)
{
    run_context ctx;
    memset(&ctx, 0, sizeof ctx);
    int rc = parse_options(&ctx, argc, argv);
    if (rc >= 0)
        return rc;
    rc = lcmc_host_settle_config(&ctx.config, "run", usage_line);
    if (rc < 0)
        rc = run_script(&ctx);
    lcmc_host_config_free(&ctx.config);
    return rc;
}
