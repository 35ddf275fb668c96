/*
 * Progress at a terminal: while an operator watches `lcmcoord run`, `coordinate` or the REPL
 * at a terminal, long waits (an EM answering 503, a coordination in progress, an EM that does
 * not answer) show on one line of stderr that rewrites itself, and Ctrl-C says at once what
 * it does. It is made from the runtime's structured events (lcmc_event), never from their
 * text. When stderr is not a terminal (a VNFM reading it) none of this happens: what the
 * program writes there stays exactly as it was.
 */
#ifndef LCMCOORD_HOST_PROGRESS_H
#define LCMCOORD_HOST_PROGRESS_H

#include "lcmcoord/lcmcoord.h"

/* Puts the progress line between the engine and the renderer `*fn`/`*userdata` chosen for
 * `*level` (the events asked for by -v): when stderr is a terminal, the info events feed the
 * live line (unless -v asked for the progress lines themselves, or TERM is dumb: then only
 * the attempts are counted) and what `*level` asked for goes on to the renderer as before.
 * Leaves everything as it is when stderr is not a terminal. Returns 1 when it took over. */
int lcmc_progress_wrap(lcmc_event_fn **fn, void **userdata, lcmc_log_level *level);

/* Removes the live line, if one shows, so that what is written next starts on a clean
 * line. Cheap and harmless when there is none. */
void lcmc_progress_clear(void);

/* " (5 attempts over 42 s)" when the coordination that just ended failed after trying an EM
 * that never answered more than once, while stderr is a terminal; "" otherwise. */
const char *lcmc_progress_attempts(void);

/* Forgets what the last call saw (the REPL, between statements). */
void lcmc_progress_reset(void);

/* Whether the live line shows (and with it what Ctrl-C does). */
int lcmc_progress_on(void);

/* The REPL: a second Ctrl-C returns to the prompt instead of ending the program, and the
 * message says so. */
void lcmc_progress_set_repl(int repl);

#endif
