/*
 * What the client subcommands of the `lcmcoord` program (run, coordinate, repl) share, so
 * that they behave alike for an operator and a VNFM: the exit status of each lcmcoord error
 * kind, the one-line stderr report, the SIGINT/SIGTERM plumbing that cancels whatever is in
 * flight on an engine, the configuration they share (config.h; their command lines are
 * parsed by options.h), and the log lines (text, or JSON for a VNFM's log collector).
 */
#ifndef LCMCOORD_HOST_HOST_H
#define LCMCOORD_HOST_HOST_H

#include <signal.h>

#include <lua.h>

#include "config.h"
#include "lcmcoord/lcmcoord.h"

#define LCMC_EXIT_REFUSED   1 /* coordination refused (ABORT...) or script error */
#define LCMC_EXIT_USAGE     2 /* usage or invalid input */
#define LCMC_EXIT_DEADLINE  3
#define LCMC_EXIT_TRANSPORT 4 /* transport, TLS, auth */

/* The exit status `lcmcoord run` gives an error of this kind (docs/lua-api.md). */
int lcmc_host_exit_status(lcmc_status status);

/* Prints "lcmcoord: <text>" on stderr as one line (line breaks become spaces) unless
 * `keep_lines`: a VNFM stores stderr as the error detail, so one clear line is the contract.
 * The text is made safe (safe_text.h): it may quote what an EM said. */
void lcmc_host_report(const char *text, int keep_lines);
/* Reports an interrupt by SIGINT/SIGTERM on one line, with what the runtime's error for the
 * interrupted coordination (when there was one) says became of the EM's side. */
void lcmc_host_report_interrupt(int signal_number, const char *runtime_message);

/* Opens the standard libraries a coordination script needs (no debug library) and loads
 * `lcmcoord` (its JSON is lcmcoord.json: the host carries no other JSON module).
 * Raises on memory errors: call it from protected code. */
void lcmc_host_open_libraries(lua_State *L);

/* At most this many lines are held (a script warning in a loop must not grow memory). */
#define LCMC_HOST_HELD_MAX 64

/* Where log lines go, and what the JSON log lines add to the runtime's events. Must outlive
 * the engine's use of it. */
typedef struct lcmc_host_log {
    const char *action;     /* named on lines about no coordination in particular, or NULL */
    int hold_until_outcome; /* set by the caller: without -v, hold lines (see below) */
    int hold;               /* lines are being held */
    char *held[LCMC_HOST_HELD_MAX];
    size_t held_count;
    size_t held_dropped;
} lcmc_host_log;

/* Ends holding: the held lines go to stderr when `success`, else they are dropped, so that a
 * failure's stderr is its one line (docs/operator-guide.md). */
void lcmc_host_log_finish(lcmc_host_log *log, int success);

/* Applies a resolved configuration to the Lua state's engine (the module must be open): the
 * default TLS and timing options of scripts' clients, and the runtime's log events rendered
 * in the configured format at the level `verbosity` asks for (warnings always; -v info; -vv
 * debug): text lines "lcmcoord: <message>", or one JSON object per line on stderr with the
 * event's fields (time, level, message, event, and those it has: reason, method, url,
 * status, ms, wait, wait_asked, time_left, attempt, error_kind, result, coordination_id,
 * action). The runtime never puts credentials in events, so none reach these lines. Raises
 * on memory errors. */
void lcmc_host_apply_config(lua_State *L, const lcmc_host_config *config, int verbosity,
                            lcmc_host_log *log);

/* Sends every info event of the engine configured last (lcmc_host_apply_config) to `tap`
 * too, besides what the configuration shows; NULL stops it. For the REPL's :trace. */
void lcmc_host_set_event_tap(lcmc_event_fn *tap, void *userdata);

/* What `repl` and `coordinate` take from their command line to make the client of one EM. */
typedef struct lcmc_host_client_options {
    const char *endpoint;
    const char *auth_path; /* a file holding the `authentication` structure; NULL: none */
    const char *version;   /* the Version header; NULL: the runtime's */
    double timeout;        /* seconds; 0: the runtime's */
} lcmc_host_client_options;

/* Pushes an `lcmcoord.client` made from `options` (the module must be loaded). On failure
 * prints one line on stderr starting with `prog` (naming the endpoint or the authentication
 * file, never showing the file's content), pushes nothing and returns the exit status (2 for
 * an unreadable or invalid file, else as lcmc_host_exit_status); returns 0 on success. */
int lcmc_host_push_client(lua_State *L, const char *prog, const lcmc_host_client_options *options);

/* ---- signals --------------------------------------------------------------------------- */

/* While armed, SIGINT and SIGTERM interrupt `engine` (every request in flight finishes
 * LCMC_ECANCELLED) and, when L is not NULL, set a hook that raises "interrupted" at the next
 * Lua instruction, so a script busy in pure Lua stops too. The first signal puts back the
 * default actions: a second one ends the process at once. Disarming restores the default
 * actions, removes the hook and returns the signal caught while armed (0: none). The caller
 * then resets the engine's interrupt if it goes on using it. */
void lcmc_host_signals_arm(lcmc_engine *engine, lua_State *L);
int lcmc_host_signals_disarm(lua_State *L);
/* The REPL: while armed, a second SIGINT does not end the process (the call in progress
 * ends within the runtime's bounded cancel and the session goes back to its prompt). */
void lcmc_host_signals_keep_sigint(int keep);
/* The signal caught since the last arm (0: none); readable while armed. */
int lcmc_host_signal_caught(void);

#endif
