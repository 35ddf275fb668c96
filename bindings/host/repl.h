/*
 * The parts of `lcmcoord repl` (and what `lcmcoord coordinate` borrows from it): the session
 * state, the display of values the way one reads an API (status line, sorted indented JSON,
 * colours), the line editor (libedit, history, completion) and the `:` commands. repl.c owns
 * the loop; each other repl_*.c file owns one of these concerns.
 */
#ifndef LCMCOORD_HOST_REPL_H
#define LCMCOORD_HOST_REPL_H

#include <stdio.h>

#include <lua.h>

#include "lcmcoord/lcmcoord.h"

/* Registry key of the last value shown (what `:save` writes). */
#define LCMC_REPL_LAST_KEY "lcmcoord.repl.last"

typedef struct lcmc_repl {
    lua_State *L;
    lcmc_engine *engine;
    int interactive; /* stdin is a terminal: prompts, line editing, history */
    int colour;      /* ANSI colours on stdout */
    int colour_err;  /* ANSI colours on stderr (errors, trace) */
    int show_time;   /* :time on */
    int show_headers;
    int trace;
    int quit;        /* :quit was given */
    int exit_status; /* non-interactive: the status of the first failure */
    long line_number;
} lcmc_repl;

/* ---- repl_show.c: displaying values ------------------------------------------------------ */

/* How a value is written: `colour` adds ANSI colours. */
typedef struct lcmc_show_style {
    int colour;
} lcmc_show_style;

/* Writes the value at idx as indented JSON with keys in sorted order (no trailing newline).
 * Values JSON cannot hold (functions, userdata) are written as <their tostring>; a table met
 * again inside itself as "<cycle>". May raise (memory, a raising __tostring). */
void lcmc_show_json(lua_State *L, int idx, FILE *out, const lcmc_show_style *style);

/* 1 when the value at idx looks like a response table of the module ({status, headers, body,
 * elapsed}). */
int lcmc_show_is_response(lua_State *L, int idx);

/* Shows the results of one evaluation: the `n` values on top of the stack (left there). A
 * response is a status line ("201 Created (12 ms)"), its headers when asked, then its body;
 * an error value its kind and message (on stderr); a table indented JSON; anything else as
 * `tostring` does. Remembers the last table or string shown for :save. May raise. */
void lcmc_show_results(lcmc_repl *repl, int n);

/* Shows an error (a message or an lcmcoord error value at idx) on stderr. May raise. */
void lcmc_show_error(lcmc_repl *repl, int idx);

/* "Created" for 201 and so on; "" for a status it does not know. */
const char *lcmc_show_reason(int status);

/* The trace callback of `:trace on`: every exchange on stderr, `>` sent, `<` received, `*`
 * notes. `userdata` is the lcmc_repl. Never calls Lua. */
void lcmc_show_trace(void *userdata, lcmc_trace_kind kind, const char *data, size_t length);
/* The rest of `:trace` from the runtime's events (lcmc_host_set_event_tap): after each answer
 * how long it took (`* 201 Created in 12 ms`), and each wait with its reason, the status or
 * attempt behind it, what follows it and the time left (`* wait 1.0 s (busy, 503), then POST,
 * 59 s left`). `userdata` is the lcmc_repl. */
void lcmc_show_trace_event(void *userdata, const lcmc_event *event);

/* ---- repl_edit.c: reading lines ---------------------------------------------------------- */

/* Prepares the line editor (completion, history file) for an interactive session. */
void lcmc_edit_open(lcmc_repl *repl);
/* Saves nothing more and frees the editor's state. */
void lcmc_edit_close(void);
/* Reads one line with `prompt` (malloc'd, without its newline), or NULL at end of input. On
 * Ctrl-C (or SIGTERM) at the prompt returns NULL with *interrupted set to the signal. */
char *lcmc_edit_read(lcmc_repl *repl, const char *prompt, int *interrupted);
/* A SIGINT or SIGTERM that arrived after the last line was read and before evaluation armed
 * its own handlers (0: none), cleared by the call. */
int lcmc_edit_take_interrupt(void);
/* Adds the lines of one finished chunk to the session history and, unless one of them holds
 * something that looks like a secret, to the history file. */
void lcmc_edit_remember(lcmc_repl *repl, const char *chunk);
/* 1 when a line looks like it holds a credential (password, token, ...). */
int lcmc_edit_is_secret(const char *line);

/* ---- repl_cmd.c: the `:` commands -------------------------------------------------------- */

/* Runs one `:` command line (from its colon on). Returns 0, or -1 when it failed (the failure
 * is shown; a non-interactive session ends with repl->exit_status). May raise. */
int lcmc_repl_command(lcmc_repl *repl, const char *line);

/* Protected call of `fn` with one light userdata argument, as the commands and the loop use:
 * returns the lua_pcall status and leaves an error value on the stack when it is not LUA_OK. */
int lcmc_repl_pcall(lua_State *L, lua_CFunction fn, void *arg);

#endif
