/*
 * `lcmcoord repl`: a Lua 5.4 prompt with the `lcmcoord` module loaded and, given an
 * --endpoint, a client in the global `em`, for poking an EM by hand while debugging it. It
 * behaves like the stock `lua` prompt (an expression is printed, an unfinished statement asks
 * for more, an error keeps the session, Ctrl-C interrupts the call in progress) but shows
 * results the way one reads an API. With stdin not a terminal it replays lines without
 * prompts and stops at the first failure, so a session can be kept in a file and rerun.
 * This file holds the options, the setup and the read-eval-print loop; what it shows, how it
 * reads lines and the `:` commands live in repl_show.c, repl_edit.c and repl_cmd.c.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "host.h"
#include "lcmcoord_lua.h"
#include "options.h"
#include "progress.h"
#include "repl.h"
#include "run_io.h"
#include "subcommands.h"

#define PROMPT              "lcmcoord> "
#define CONTINUATION_PROMPT "lcmcoord>> "

static const char usage_line[] =
    "usage: lcmcoord repl [--endpoint URL] [--auth FILE] [--version V] [--timeout S] "
    "[--cacert FILE] [--capath DIR] [--cert FILE] [--key FILE] [--config FILE] [--print-config]";

typedef struct repl_options {
    lcmc_host_client_options client;
    lcmc_host_config config;
    lcmc_host_log log;
} repl_options;

/* ---- options ------------------------------------------------------------------------------ */

static int usage_error(const char *fmt, const char *arg)
{
    return lcmc_host_usage_error("repl", usage_line, fmt, arg);
}

static void print_usage_help(void)
{
    printf("%s\n", usage_line);
    fputs("\n"
          "An interactive Lua 5.4 prompt with the lcmcoord module, for trying and debugging\n"
          "an EM. With --endpoint, the global `em` is a client of it: em:api_versions(),\n"
          "em:coordinate(lcmcoord.request{action=\"x\"}). Type :help at the prompt.\n"
          "With stdin not a terminal, lines are run without prompts and the first failure\n"
          "ends the session with its exit status (as `lcmcoord run`).\n"
          "\n"
          "Options:\n"
          "  --endpoint URL   the EM's apiRoot; makes the client `em`\n"
          "  --auth FILE      the `authentication` structure (JSON, as in additionalParams)\n"
          "  --version V      the Version header sent (default 1.0.0)\n"
          "  --timeout S      default deadline of a coordination or request, seconds\n"
          "  --cacert FILE    CA bundle for TLS (env LCMCOORD_CACERT)\n"
          "  --capath DIR     CA directory for TLS (env LCMCOORD_CAPATH)\n"
          "  --cert FILE      client certificate for mutual TLS (env LCMCOORD_CERT)\n"
          "  --key FILE       its private key (env LCMCOORD_KEY; passphrase in\n"
          "                   LCMCOORD_KEY_PASSWORD)\n"
          "  --config FILE    configuration file (env LCMCOORD_CONFIG; default\n"
          "                   " LCMCOORD_DEFAULT_CONFIG ")\n"
          "  --print-config   print the effective settings and where each comes from\n"
          "  -h, --help       show this help\n"
          "\n"
          "History: $XDG_DATA_HOME/lcmcoord/history (lines that look like they hold a\n"
          "credential are never written to it). Colours unless NO_COLOR is set.\n",
          stdout);
}

/* Returns -1 when the options are fine, else the exit status to return. */
static int parse_options(repl_options *o, int argc, char **argv)
{
    const lcmc_option_parser parser = {
        .subcommand = "repl",
        .usage_line = usage_line,
        .print_help = print_usage_help,
        .config = &o->config,
        .config_timeout = 1,
        .client = &o->client,
    };
    int rc = lcmc_host_parse_options(&parser, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (o->client.auth_path != NULL && o->client.endpoint == NULL)
        return usage_error("%s", "--auth needs --endpoint");
    return -1;
}

/* ---- evaluation --------------------------------------------------------------------------- */

/* Keeps lcmcoord error values whole (their kind picks the exit status of a replay); turns
 * anything else into its message. */
static int message_handler(lua_State *L)
{
    if (lcmc_lua_error_status(L, 1, NULL))
        return 1;
    if (lua_type(L, 1) == LUA_TSTRING)
        return 1;
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        return 1;
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* A failure of one line: shown, and in a replay the end of the session with its status. */
static void line_failed(lcmc_repl *repl, int idx)
{
    lua_State *L = repl->L;
    if (repl->interactive) {
        lcmc_show_error(repl, idx);
        return;
    }
    lcmc_status status = LCMC_OK;
    int is_lcmcoord = lcmc_lua_error_status(L, idx, &status);
    const char *msg = luaL_tolstring(L, idx, NULL);
    lua_pushfstring(L, "line %d: %s", (int)repl->line_number, msg);
    lcmc_host_report(lua_tostring(L, -1), 0);
    lua_pop(L, 2);
    repl->exit_status = is_lcmcoord ? lcmc_host_exit_status(status) : LCMC_EXIT_REFUSED;
    if (repl->exit_status == 0)
        repl->exit_status = LCMC_EXIT_REFUSED;
    repl->quit = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { EVAL_DONE, EVAL_INCOMPLETE };

typedef struct eval_job {
    lcmc_repl *repl;
    const char *chunk;
    int first_line; /* the chunk is one line: try it as an expression first */
    int result;
} eval_job;

/* A syntax error at the end of the text means the statement is not finished yet. */
static int is_incomplete(lua_State *L)
{
    size_t len = 0;
    const char *msg = lua_tolstring(L, -1, &len);
    return msg != NULL && len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

static void after_signal(lcmc_repl *repl, int sig)
{
    lcmc_engine_reset_interrupt(repl->engine);
    if (sig == 0)
        return;
    if (sig == SIGINT && repl->interactive) {
        fflush(stdout);
        fputs(repl->colour_err ? "\033[1;33minterrupted\033[0m\n" : "interrupted\n", stderr);
        return;
    }
    fflush(stdout);
    fprintf(stderr, "lcmcoord: interrupted by %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    repl->exit_status = 128 + sig;
    repl->quit = 1;
}

static int eval_protected(lua_State *L)
{
    eval_job *job = lua_touserdata(L, 1);
    lcmc_repl *repl = job->repl;
    lua_settop(L, 0);
    job->result = EVAL_DONE;
    lua_pushcfunction(L, message_handler);

    int status = LUA_ERRSYNTAX;
    /* A replayed `assert(...)` is a check, not a question: its values are not printed. */
    const char *word = job->chunk + strspn(job->chunk, " \t");
    int is_check = !repl->interactive && strncmp(word, "assert", 6) == 0 &&
                   strchr(" \t(\"'{", word[6]) != NULL && word[6] != '\0';
    if (job->first_line && !is_check) {
        const char *expression = lua_pushfstring(L, "return %s;", job->chunk);
        status = luaL_loadbufferx(L, expression, strlen(expression), "=stdin", "t");
        lua_remove(L, 2);
        if (status != LUA_OK)
            lua_pop(L, 1);
    }
    if (status != LUA_OK) {
        status = luaL_loadbufferx(L, job->chunk, strlen(job->chunk), "=stdin", "t");
        if (status == LUA_ERRSYNTAX && is_incomplete(L)) {
            job->result = EVAL_INCOMPLETE;
            return 0;
        }
        if (status != LUA_OK) {
            line_failed(repl, -1);
            return 0;
        }
    }

    double started = now();
    lcmc_progress_reset();
    /* At a prompt, a second Ctrl-C goes back to it rather than ending the session. */
    lcmc_host_signals_keep_sigint(repl->interactive);
    lcmc_host_signals_arm(repl->engine, L);
    /* Delivered now to the armed handler, it interrupts this line as it should. */
    int early = lcmc_edit_take_interrupt();
    if (early != 0)
        raise(early);
    status = lua_pcall(L, 0, LUA_MULTRET, 1);
    int sig = lcmc_host_signals_disarm(L);
    lcmc_host_signals_keep_sigint(0);
    lcmc_progress_clear();
    double took = now() - started;
    after_signal(repl, sig);
    if (sig != 0)
        return 0;

    if (status != LUA_OK) {
        line_failed(repl, -1);
    } else {
        int n = lua_gettop(L) - 1;
        /* `nil, err` from a method ends a replay as a raised error would. */
        if (!repl->interactive && n >= 2 && !lua_toboolean(L, 2) &&
            lcmc_lua_error_status(L, 3, NULL))
            line_failed(repl, 3);
        else if (n > 0)
            lcmc_show_results(repl, n);
    }
    if (repl->show_time && !repl->quit) {
        fflush(stdout);
        printf(repl->colour ? "\033[2m(%.1f ms)\033[0m\n" : "(%.1f ms)\n", took * 1000.0);
    }
    return 0;
}

/* Runs a `:` command under protection (a memory error must not end the session). */
typedef struct command_job {
    lcmc_repl *repl;
    const char *line;
} command_job;

static int command_protected(lua_State *L)
{
    command_job *job = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lcmc_repl_command(job->repl, job->line);
    return 0;
}

/* Reports an error escaping the protected steps themselves (out of memory). */
static void protected_failed(lcmc_repl *repl)
{
    line_failed(repl, -1);
    lua_settop(repl->L, 0);
}

/* Frees a line or chunk the operator typed, wiped: it may hold a password. */
static void free_typed(char *text)
{
    if (text != NULL)
        lcmc_free_wiped(text, strlen(text));
}

/* Appends `line` to the chunk being read (malloc'd, NULL when none); not with realloc,
 * which would leave the old copy unwiped. */
static char *append_line(char *chunk, const char *line)
{
    size_t old = chunk != NULL ? strlen(chunk) : 0;
    size_t add = strlen(line);
    char *grown = malloc(old + add + 2);
    if (grown == NULL) {
        free_typed(chunk);
        return NULL;
    }
    if (old > 0) {
        memcpy(grown, chunk, old);
        grown[old++] = '\n';
    }
    memcpy(grown + old, line, add + 1);
    free_typed(chunk);
    return grown;
}

static void run_loop(lcmc_repl *repl)
{
    char *chunk = NULL;
    while (!repl->quit) {
        int interrupted = 0;
        fflush(stdout);
        fflush(stderr);
        char *line =
            lcmc_edit_read(repl, chunk != NULL ? CONTINUATION_PROMPT : PROMPT, &interrupted);
        if (line == NULL) {
            if (interrupted == SIGTERM) {
                fputc('\n', stdout);
                after_signal(repl, SIGTERM);
                break;
            }
            if (interrupted) {
                /* Ctrl-C at the prompt drops what was typed, continuation lines included. */
                fputc('\n', stdout);
                free_typed(chunk);
                chunk = NULL;
                continue;
            }
            if (repl->interactive) {
                fputc('\n', stdout);
            } else if (chunk != NULL) {
                /* A replay ending inside a statement: that statement's syntax error. */
                lua_State *L = repl->L;
                luaL_loadbufferx(L, chunk, strlen(chunk), "=stdin", "t");
                line_failed(repl, -1);
                lua_settop(L, 0);
            }
            break;
        }
        repl->line_number++;
        if (chunk == NULL && line[0] == ':') {
            lcmc_edit_remember(repl, line);
            command_job job = {repl, line};
            if (lcmc_repl_pcall(repl->L, command_protected, &job) != LUA_OK)
                protected_failed(repl);
            free_typed(line);
            continue;
        }
        if (chunk == NULL && line[strspn(line, " \t")] == '\0') {
            free_typed(line);
            continue;
        }
        int first_line = chunk == NULL;
        chunk = append_line(chunk, line);
        free_typed(line);
        if (chunk == NULL) {
            fputs("lcmcoord repl: not enough memory\n", stderr);
            repl->exit_status = LCMC_EXIT_REFUSED;
            break;
        }
        eval_job job = {repl, chunk, first_line, EVAL_DONE};
        if (lcmc_repl_pcall(repl->L, eval_protected, &job) != LUA_OK)
            protected_failed(repl);
        lua_settop(repl->L, 0);
        if (job.result == EVAL_INCOMPLETE)
            continue;
        lcmc_edit_remember(repl, chunk);
        free_typed(chunk);
        chunk = NULL;
    }
    free_typed(chunk);
}

/* ---- setup -------------------------------------------------------------------------------- */

typedef struct setup_job {
    lcmc_repl *repl;
    repl_options *options;
    int exit_status; /* -1: ready */
} setup_job;

static int setup_protected(lua_State *L)
{
    setup_job *job = lua_touserdata(L, 1);
    lcmc_repl *repl = job->repl;
    lua_settop(L, 0);
    lcmc_host_open_libraries(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "lcmcoord");
    lua_setglobal(L, "lcmcoord");
    lua_pop(L, 1);
    repl->engine = lcmc_lua_engine(L);
    repl_options *options = job->options;
    lcmc_progress_set_repl(1);
    lcmc_host_apply_config(L, &options->config, 0, &options->log);
    options->client.timeout = lcmc_host_config_number(&options->config, LCMC_CONF_TIMEOUT);
    if (job->options->client.endpoint != NULL) {
        int rc = lcmc_host_push_client(L, "lcmcoord repl", &job->options->client);
        if (rc != 0) {
            job->exit_status = rc;
            return 0;
        }
        lua_setglobal(L, "em");
    }
    if (repl->interactive) {
        printf("lcmcoord %s (Lua 5.4) - :help for commands, Ctrl-D to leave\n",
               LCMC_VERSION_STRING);
        if (job->options->client.endpoint != NULL) {
            lua_getglobal(L, "em");
            printf("em = %s\n", luaL_tolstring(L, -1, NULL));
            lua_pop(L, 2);
        }
    }
    job->exit_status = -1;
    return 0;
}

static int colour_wanted(int fd)
{
    const char *no_colour = getenv("NO_COLOR");
    return isatty(fd) && (no_colour == NULL || no_colour[0] == '\0');
}

int lcmc_repl_main(int argc, char **argv)
{
    repl_options options;
    memset(&options, 0, sizeof options);
    int rc = parse_options(&options, argc, argv);
    if (rc >= 0)
        return rc;
    rc = lcmc_host_settle_config(&options.config, "repl", usage_line);
    if (rc >= 0) {
        lcmc_host_config_free(&options.config);
        return rc;
    }

    lcmc_repl repl;
    memset(&repl, 0, sizeof repl);
    repl.interactive = isatty(STDIN_FILENO);
    repl.colour = repl.interactive && colour_wanted(STDOUT_FILENO);
    repl.colour_err = repl.interactive && colour_wanted(STDERR_FILENO);
    repl.L = luaL_newstate();
    if (repl.L == NULL) {
        fputs("lcmcoord repl: not enough memory\n", stderr);
        return LCMC_EXIT_REFUSED;
    }
    setup_job setup = {&repl, &options, LCMC_EXIT_REFUSED};
    if (lcmc_repl_pcall(repl.L, setup_protected, &setup) != LUA_OK) {
        fprintf(stderr, "lcmcoord repl: %s\n", luaL_tolstring(repl.L, -1, NULL));
        setup.exit_status = LCMC_EXIT_REFUSED;
    }
    if (setup.exit_status < 0) {
        lcmc_edit_open(&repl);
        run_loop(&repl);
        lcmc_edit_close();
        rc = repl.exit_status;
    } else {
        rc = setup.exit_status;
    }
    if (repl.engine != NULL)
        lcmc_engine_set_trace(repl.engine, NULL, NULL);
    lcmc_host_set_event_tap(NULL, NULL);
    fflush(stdout);
    lua_close(repl.L);
    lcmc_host_config_free(&options.config);
    return rc;
}
