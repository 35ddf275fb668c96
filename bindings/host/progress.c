/*
 * The live progress line at a terminal (progress.h). The runtime's info events (each wait
 * and its reason, each request, the end of a coordination, an interrupt and the cancel it
 * asks for) are turned into one line on stderr that is rewritten in place ("\r", erase to
 * the end of the line) and removed when the coordination ends, so that the terminal keeps
 * only what it showed before plus the outcome. Everything the operator asked for (-v, or the
 * warnings shown without it) still goes to the host's renderer, after the live line is taken
 * away, then the live line comes back below it.
 *
 * It is one per process, as stderr is: the state is static.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"
#include "safe_text.h"

#define LINE_MAX_BYTES 512

static struct {
    int on;   /* watching: stderr is a terminal */
    int live; /* and the live line shows (no -v asking for the lines themselves, no dumb TERM) */
    lcmc_event_fn *render; /* the host's renderer (text or JSON lines) */
    void *render_userdata;
    lcmc_log_level shown; /* the level the operator asked the renderer for */
    int repl;
    char line[LINE_MAX_BYTES]; /* the live line's text, "" when none shows */
    int showing;
    int interrupted;       /* an interrupt reached the engine since the last reset */
    int streak_attempts;   /* tries of an EM that gave no answer, in a row */
    double streak_started; /* when the first of them went out */
    double last_request;
    char attempts[64]; /* lcmc_progress_attempts */
} progress;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds as the runtime's own lines show them: tenths below ten, whole seconds above. */
static void seconds_text(double seconds, char *text, size_t size)
{
    if (seconds < 10)
        snprintf(text, size, "%.1f s", seconds < 0 ? 0.0 : seconds);
    else
        snprintf(text, size, "%.0f s", seconds);
}

/* The columns of the terminal, so that the live line never wraps (a wrapped line cannot be
 * rewritten by "\r"). */
static size_t terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
        return ws.ws_col;
    return 80;
}

static void draw(void)
{
    if (!progress.live || progress.line[0] == '\0')
        return;
    size_t length = strlen(progress.line);
    size_t room = terminal_columns() - 1;
    if (length > room) {
        length = room;
        /* Cut between characters, not inside one. */
        while (length > 0 && ((unsigned char)progress.line[length] & 0xC0) == 0x80)
            length--;
    }
    fputs("\r\033[K", stderr);
    fwrite(progress.line, 1, length, stderr);
    fflush(stderr);
    progress.showing = 1;
}

void lcmc_progress_clear(void)
{
    if (!progress.showing)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    progress.showing = 0;
}

/* Shows `text` as the live line (it is made safe first: it may hold an EM's words). */
static void show(const char *text)
{
    char *safe = lcmc_safe_dup(text, strlen(text), LCMC_SAFE_ESCAPE_LINES);
    snprintf(progress.line, sizeof progress.line, "%s", safe != NULL ? safe : "");
    free(safe);
    draw();
}

static void forget_line(void)
{
    lcmc_progress_clear();
    progress.line[0] = '\0';
}

/* A line that stays (the interrupt's), above where the live line was. */
static void say(const char *text)
{
    forget_line();
    if (!progress.live)
        return; /* -v shows the same as a log line */
    char *safe = lcmc_safe_dup(text, strlen(text), LCMC_SAFE_ESCAPE_LINES);
    fprintf(stderr, "%s\n", safe != NULL ? safe : text);
    fflush(stderr);
    free(safe);
}

static const char *again_hint(void)
{
    /* The runtime bounds the wait for the EM's answer; a second Ctrl-C ends it at once: the
     * program, or in the REPL only the statement (the session stays). */
    return progress.repl ? "(Ctrl-C again to stop waiting; the session stays)"
                         : "(Ctrl-C again to stop waiting)";
}

/* The live line for a wait, from its fields. */
static void show_wait(const lcmc_event *event)
{
    char wait[32], left[48] = "", text[LINE_MAX_BYTES];
    seconds_text(event->wait, wait, sizeof wait);
    if (event->time_left >= 0) {
        char seconds[32];
        seconds_text(event->time_left, seconds, sizeof seconds);
        snprintf(left, sizeof left, ", %s left", seconds);
    }
    const char *reason = event->reason != NULL ? event->reason : "";
    int poll = event->method != NULL && strcmp(event->method, "GET") == 0;
    const char *next = poll ? "polling again" : "retrying";
    if (strcmp(reason, "busy") == 0 || strcmp(reason, "rate_limited") == 0) {
        snprintf(text, sizeof text, "EM %s (%d): %s in %s%s",
                 strcmp(reason, "busy") == 0 ? "busy" : "rate-limited us", event->status, next,
                 wait, left);
    } else if (strcmp(reason, "accepted") == 0 || strcmp(reason, "in_progress") == 0) {
        snprintf(text, sizeof text, "coordination %s in progress: polling in %s%s",
                 event->coordination_id != NULL ? event->coordination_id : "?", wait, left);
    } else if (strcmp(reason, "transport") == 0) {
        snprintf(text, sizeof text, "EM not answering (attempt %d): %s in %s%s", event->attempt,
                 next, wait, left);
    } else if (strcmp(reason, "post_answer") == 0) {
        if (progress.interrupted) {
            snprintf(text, sizeof text,
                     "interrupted: waiting up to %s for the EM's answer to the POST, to cancel "
                     "what it started %s",
                     wait, again_hint());
            say(text);
            return;
        }
        snprintf(text, sizeof text,
                 "waiting up to %s for the EM's answer to the POST, to cancel what it started",
                 wait);
    } else {
        snprintf(text, sizeof text, "%s", event->message != NULL ? event->message : "waiting");
    }
    show(text);
}

static void on_event(void *userdata, const lcmc_event *event)
{
    (void)userdata;
    if (event->level <= progress.shown) {
        int was_showing = progress.showing;
        lcmc_progress_clear();
        progress.render(progress.render_userdata, event);
        if (was_showing)
            draw();
    }
    switch (event->type) {
    case LCMC_EVENT_REQUEST:
        progress.last_request = now();
        if (progress.streak_attempts > 0)
            progress.streak_attempts++;
        break;
    case LCMC_EVENT_RESPONSE:
        progress.streak_attempts = 0;
        break;
    case LCMC_EVENT_WAIT:
        if (event->reason != NULL && strcmp(event->reason, "transport") == 0 &&
            progress.streak_attempts == 0) {
            progress.streak_attempts = 1;
            progress.streak_started = progress.last_request;
        }
        show_wait(event);
        break;
    case LCMC_EVENT_RESULT:
        progress.streak_attempts = 0;
        forget_line();
        break;
    case LCMC_EVENT_FAILED:
        if (progress.streak_attempts > 1)
            snprintf(progress.attempts, sizeof progress.attempts, " (%d attempts over %.0f s)",
                     progress.streak_attempts, now() - progress.streak_started);
        progress.streak_attempts = 0;
        forget_line();
        break;
    case LCMC_EVENT_INTERRUPT:
        progress.interrupted = 1;
        forget_line();
        break;
    case LCMC_EVENT_CANCEL:
        if (event->reason != NULL && strcmp(event->reason, "asking") == 0) {
            char text[LINE_MAX_BYTES];
            const char *id = event->coordination_id != NULL ? event->coordination_id : "?";
            if (progress.interrupted) {
                snprintf(text, sizeof text, "interrupted: asking the EM to cancel %s %s", id,
                         again_hint());
                say(text);
            } else {
                snprintf(text, sizeof text, "asking the EM to cancel %s", id);
                show(text);
            }
        }
        break;
    default:
        break;
    }
}

int lcmc_progress_wrap(lcmc_event_fn **fn, void **userdata, lcmc_log_level *level)
{
    const char *term = getenv("TERM");
    if (!isatty(STDERR_FILENO)) {
        progress.on = progress.live = 0;
        return 0;
    }
    /* At a terminal the attempts are counted even when the live line does not show (-v
     * writes each one as a line; a dumb terminal cannot rewrite one): the final error says
     * how many there were either way. */
    progress.on = 1;
    progress.live = *level < LCMC_LOG_INFO && !(term != NULL && strcmp(term, "dumb") == 0);
    progress.render = *fn;
    progress.render_userdata = *userdata;
    progress.shown = *level;
    *fn = on_event;
    *userdata = NULL;
    if (*level < LCMC_LOG_INFO)
        *level = LCMC_LOG_INFO;
    return 1;
}

const char *lcmc_progress_attempts(void)
{
    return progress.attempts;
}

void lcmc_progress_reset(void)
{
    forget_line();
    progress.interrupted = 0;
    progress.streak_attempts = 0;
    progress.attempts[0] = '\0';
}

int lcmc_progress_on(void)
{
    return progress.live;
}

void lcmc_progress_set_repl(int repl)
{
    progress.repl = repl;
}
