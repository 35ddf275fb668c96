/*
 * The behaviour `lcmcoord run`, `lcmcoord coordinate` and `lcmcoord repl` share (host.h):
 * one mapping from error kinds to exit statuses, one way of reporting a failure on stderr,
 * one way of logging (text or JSON lines) and one signal handler, so that a VNFM or an
 * operator sees the same conventions from all three.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host.h"
#include "lcmcoord_lua.h"
#include "progress.h"
#include "run_io.h"
#include "safe_text.h"
#include "script_limits.h"

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
    /* A trailing line break would make a second, empty line. */
    size_t length = strlen(text);
    while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == '\r'))
        length--;
    lcmc_progress_clear();
    fputs("lcmcoord: ", stderr);
    lcmc_safe_write(stderr, text, length,
                    keep_lines ? LCMC_SAFE_KEEP_LINES : LCMC_SAFE_SPACE_LINES);
    fputc('\n', stderr);
}

void lcmc_host_report_interrupt(int signal_number, const char *runtime_message)
{
    /* The runtime's own word on what became of the EM's side ("; the EM was asked to
     * cancel", "; the EM may hold a coordination that could not be cancelled (...)") is the
     * part the operator must act on: it stays on the one line. */
    static const char prefix[] = "interrupted";
    const char *what = "";
    if (runtime_message != NULL && strncmp(runtime_message, prefix, sizeof prefix - 1) == 0)
        what = runtime_message + sizeof prefix - 1;
    const char *name = signal_number == SIGINT ? "SIGINT" : "SIGTERM";
    size_t size = strlen(what) + 32;
    char *line = malloc(size);
    if (line == NULL) {
        fprintf(stderr, "lcmcoord: interrupted by %s\n", name);
        return;
    }
    snprintf(line, size, "interrupted by %s%s", name, what);
    lcmc_host_report(line, 0);
    free(line);
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
    luaL_requiref(L, "lcmcoord", luaopen_lcmcoord, 0);
    lua_pop(L, 1);
}

/* Without -v, `run` and `coordinate` keep warnings until the end (lcmc_host_log_finish):
 * a failure's stderr is its one line, a success's shows them. */

/* Writes the finished line `text` (no line break), or holds it; takes `text`. */
static void emit(lcmc_host_log *log, char *text)
{
    if (log != NULL && log->hold) {
        if (log->held_count < LCMC_HOST_HELD_MAX) {
            log->held[log->held_count++] = text;
            return;
        }
        log->held_dropped++;
        free(text);
        return;
    }
    fprintf(stderr, "%s\n", text);
    free(text);
}

/* Text lines: the event's own line, made safe (safe_text.h), after "lcmcoord: " and, for
 * warnings, "warning: ", which sets them apart from the one line that states the outcome. */
static void log_text(void *userdata, const lcmc_event *event)
{
    lcmc_host_log *log = userdata;
    const char *message = event->message;
    const char *prefix = event->level == LCMC_LOG_WARN ? "lcmcoord: warning: " : "lcmcoord: ";
    char *safe = lcmc_safe_dup(message, strlen(message), LCMC_SAFE_ESCAPE_LINES);
    char *line = safe != NULL ? malloc(strlen(prefix) + strlen(safe) + 1) : NULL;
    if (line == NULL) {
        free(safe);
        if (log != NULL && log->hold)
            return;
        fputs(prefix, stderr);
        lcmc_safe_write(stderr, message, strlen(message), LCMC_SAFE_ESCAPE_LINES);
        fputc('\n', stderr);
        return;
    }
    strcpy(line, prefix);
    strcat(line, safe);
    free(safe);
    emit(log, line);
}

void lcmc_host_log_finish(lcmc_host_log *log, int success)
{
    for (size_t i = 0; i < log->held_count; i++) {
        if (success)
            fprintf(stderr, "%s\n", log->held[i]);
        free(log->held[i]);
    }
    if (success && log->held_dropped > 0)
        fprintf(stderr, "lcmcoord: warning: %zu more warnings not shown (-v shows them all)\n",
                log->held_dropped);
    log->held_count = 0;
    log->held_dropped = 0;
    log->hold = 0;
}

/* ---- JSON log lines -------------------------------------------------------------------- */

static const char *level_name(lcmc_log_level level)
{
    switch (level) {
    case LCMC_LOG_ERROR:
        return "error";
    case LCMC_LOG_WARN:
        return "warn";
    case LCMC_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* RFC 3339 UTC with milliseconds, as the record's times. */
static void format_now(char text[40])
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(text, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(text + n, 40 - n, ".%03ldZ", now.tv_nsec / 1000000L);
}

/* Sets `key` to `text` made safe (safe_text.h), when there is a text: the JSON escapes of
 * control characters are undone by whoever reads the line, and a C1 control or a bidi
 * override would reach a terminal as it is. Bytes that are not UTF-8 become \xHH rather
 * than losing the line. */
static void set_string(json_t *o, const char *key, const char *text)
{
    if (text == NULL)
        return;
    char *safe = lcmc_safe_dup(text, strlen(text), LCMC_SAFE_ESCAPE_LINES);
    if (safe != NULL)
        json_object_set_new(o, key, json_string(safe));
    free(safe);
}

/* Sets `key` to `seconds` (scaled by `scale`) when the event has it (>= 0). */
static void set_seconds(json_t *o, const char *key, double seconds, double scale)
{
    if (seconds >= 0)
        json_object_set_new(o, key, json_real(seconds * scale));
}

/* One JSON object per event: its fields as the runtime gave them, never read back out of
 * the message. */
static void log_json(void *userdata, const lcmc_event *event)
{
    lcmc_host_log *log = userdata;
    char stamp[40];
    format_now(stamp);
    json_t *o = json_object();
    char *line = NULL;
    if (o != NULL) {
        json_object_set_new(o, "time", json_string(stamp));
        json_object_set_new(o, "level", json_string(level_name(event->level)));
        set_string(o, "message", event->message);
        json_object_set_new(o, "event", json_string(lcmc_event_name(event->type)));
        set_string(o, "reason", event->reason);
        set_string(o, "method", event->method);
        set_string(o, "url", event->url);
        if (event->status > 0)
            json_object_set_new(o, "status", json_integer(event->status));
        set_seconds(o, "ms", event->elapsed, 1000.0);
        set_seconds(o, "wait", event->wait, 1.0);
        set_seconds(o, "wait_asked", event->wait_asked, 1.0);
        set_seconds(o, "time_left", event->time_left, 1.0);
        if (event->attempt > 0)
            json_object_set_new(o, "attempt", json_integer(event->attempt));
        set_string(o, "error_kind", event->error_kind);
        set_string(o, "result", event->result);
        set_string(o, "coordination_id", event->coordination_id);
        set_string(o, "action",
                   event->action != NULL ? event->action
                   : log != NULL         ? log->action
                                         : NULL);
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        json_decref(o);
    }
    if (line != NULL)
        emit(log, line);
    else
        log_text(userdata, event);
}

/* Where the engine's events go: to what the configuration chose (the renderer, or the
 * progress line in front of it), at the level it chose; and, while a tap is set (the REPL's
 * :trace), every info event to the tap too. One per process, as stderr is. */
static struct {
    lcmc_engine *engine;
    lcmc_event_fn *fn;
    void *userdata;
    lcmc_log_level level;
    lcmc_event_fn *tap;
    void *tap_userdata;
} event_route;

static void route_event(void *userdata, const lcmc_event *event)
{
    (void)userdata;
    if (event_route.tap != NULL && event->level <= LCMC_LOG_INFO)
        event_route.tap(event_route.tap_userdata, event);
    if (event->level <= event_route.level)
        event_route.fn(event_route.userdata, event);
}

static void route_events(void)
{
    if (event_route.tap == NULL) {
        lcmc_engine_set_events(event_route.engine, event_route.fn, event_route.userdata,
                               event_route.level);
        return;
    }
    lcmc_log_level level = event_route.level < LCMC_LOG_INFO ? LCMC_LOG_INFO : event_route.level;
    lcmc_engine_set_events(event_route.engine, route_event, NULL, level);
}

void lcmc_host_apply_config(lua_State *L, const lcmc_host_config *config, int verbosity,
                            lcmc_host_log *log)
{
    lcmc_engine *engine = lcmc_lua_engine(L);
    lcmc_tls_options tls;
    lcmc_host_config_tls(config, &tls);
    lcmc_lua_set_default_tls(L, &tls);
    lcmc_lua_client_defaults defaults = {
        lcmc_host_config_number(config, LCMC_CONF_TIMEOUT),
        lcmc_host_config_number(config, LCMC_CONF_WAIT_FLOOR),
        lcmc_host_config_number(config, LCMC_CONF_DEFAULT_INTERVAL),
    };
    lcmc_lua_set_default_client_options(L, &defaults);
    /* Warnings (credentials over plain http, TLS verification off) and errors show, marked
     * as such; progress only with -v. Without -v, a caller that asked for it has them held
     * until it knows the outcome (lcmc_host_log_finish). */
    lcmc_log_level level = verbosity >= 2   ? LCMC_LOG_DEBUG
                           : verbosity == 1 ? LCMC_LOG_INFO
                                            : LCMC_LOG_WARN;
    log->hold = verbosity == 0 && log->hold_until_outcome;
    lcmc_event_fn *render = lcmc_host_config_json_logs(config) ? log_json : log_text;
    void *render_userdata = log;
    /* At a terminal without -v, the waits show on one live line (progress.h). */
    lcmc_progress_wrap(&render, &render_userdata, &level);
    event_route.engine = engine;
    event_route.fn = render;
    event_route.userdata = render_userdata;
    event_route.level = level;
    route_events();
}

void lcmc_host_set_event_tap(lcmc_event_fn *tap, void *userdata)
{
    event_route.tap = tap;
    event_route.tap_userdata = userdata;
    if (event_route.engine != NULL)
        route_events();
}

/* ---- the client of one EM ------------------------------------------------------------- */

/* An authentication structure is a few hundred bytes. */
#define AUTH_CAP ((size_t)1024 * 1024)

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
    lua_pushlstring(L, text, length);
    lcmc_free_wiped(text, length);
    /* The decoder's messages give a position, never the text: safe to show. */
    int ok = lcmc_lua_json_decode(L, lua_tostring(L, -1), length);
    lua_remove(L, -2);
    int object = ok && lua_istable(L, -1) && !lcmc_lua_json_is_array(L, -1);
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
    size_t length = 0;
    const char *message = luaL_tolstring(L, -1, &length);
    /* The runtime's word on a bad endpoint shows it already (never its user:password@,
     * which `name` would show). */
    if (strncmp(message, "endpoint ", 9) == 0)
        fprintf(stderr, "%s: ", prog);
    else
        fprintf(stderr, "%s: %s %s: ", prog, what, strchr(name, '@') ? "(not shown)" : name);
    lcmc_safe_write(stderr, message, length, LCMC_SAFE_SPACE_LINES);
    fputc('\n', stderr);
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
static volatile sig_atomic_t signal_keeps_sigint;

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
    /* The REPL keeps its SIGINT handler: a second Ctrl-C leaves the session to its prompt. */
    if (signal_keeps_sigint && sig == SIGINT) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
    } else {
        set_handlers(SIG_DFL);
    }
    if (caught_signal == 0)
        caught_signal = sig;
    lcmc_limits_stop_requested(sig);
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

void lcmc_host_signals_keep_sigint(int keep)
{
    signal_keeps_sigint = keep;
}

int lcmc_host_signal_caught(void)
{
    return caught_signal;
}
