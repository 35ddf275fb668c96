/*
 * The engine: one libcurl multi handle, a min-heap of timers and the list of operations in
 * flight. Everything asynchronous in the runtime is either a transfer on the multi handle
 * or a timer, so one loop (lcmc__engine_step) drives any number of coordinations; it sleeps
 * in curl_multi_poll until a socket is ready, the next timer is due, or a signal handler
 * writes to the wake-up pipe. Coordinations waiting out a Retry-After cost no CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "engine.h"

static pthread_once_t global_init_once = PTHREAD_ONCE_INIT;
static CURLcode global_init_result;

static void global_init(void)
{
    global_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Enough active transfers to keep every connection busy with one queued behind it. */
static size_t active_transfers_for(long max_host_connections)
{
    return max_host_connections > 0 ? (size_t)max_host_connections * 2 : 256;
}

lcmc_status lcmc_engine_new(lcmc_engine **out)
{
    if (out == NULL)
        return LCMC_EUSAGE;
    *out = NULL;
    pthread_once(&global_init_once, global_init);
    if (global_init_result != CURLE_OK)
        return LCMC_ENOMEM;
    lcmc_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return LCMC_ENOMEM;
    e->wake_pipe[0] = e->wake_pipe[1] = -1;
    e->multi = curl_multi_init();
    if (e->multi == NULL || pipe(e->wake_pipe) != 0) {
        lcmc_engine_free(e);
        return LCMC_ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(e->wake_pipe[i], F_SETFL, fcntl(e->wake_pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(e->wake_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    /* Many coordinations to one EM should share a few kept-alive connections rather than
     * open one each; HTTP/1.1 pipelining is gone from libcurl, so requests queue instead. */
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    e->max_host_connections = 64;
    e->max_active_transfers = active_transfers_for(64);
    e->log_max = LCMC_LOG_WARN;
    *out = e;
    return LCMC_OK;
}

void lcmc_engine_free(lcmc_engine *e)
{
    if (e == NULL)
        return;
    /* Token fetches are transfers: gone before the pool and the multi handle are. */
    lcmc__tokens_free(e);
    for (size_t i = 0; i < e->warned_count; i++)
        free(e->warned[i]);
    free(e->warned);
    for (size_t i = 0; i < e->idle_count; i++)
        curl_easy_cleanup(e->idle_easy[i]);
    free(e->idle_easy);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    for (int i = 0; i < 2; i++)
        if (e->wake_pipe[i] >= 0)
            close(e->wake_pipe[i]);
    free(e->heap);
    lcmc__records_free(e);
    lcmc__error_clear(&e->last_error);
    free(e);
}

void lcmc_engine_set_log(lcmc_engine *e, lcmc_log_fn *fn, void *userdata, lcmc_log_level max_level)
{
    if (e == NULL)
        return;
    e->log_fn = fn;
    e->log_userdata = userdata;
    e->log_max = max_level;
}

void lcmc_engine_set_trace(lcmc_engine *e, lcmc_trace_fn *fn, void *userdata)
{
    if (e == NULL)
        return;
    e->trace_fn = fn;
    e->trace_userdata = userdata;
}

lcmc_status lcmc_engine_set_max_host_connections(lcmc_engine *e, long max)
{
    if (e == NULL || max < 0)
        return LCMC_EUSAGE;
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max);
    e->max_host_connections = max;
    e->max_active_transfers = active_transfers_for(max);
    lcmc__transfers_pump(e);
    return LCMC_OK;
}

long lcmc_engine_max_host_connections(const lcmc_engine *e)
{
    return e ? e->max_host_connections : 0;
}

void lcmc_engine_interrupt(lcmc_engine *e)
{
    /* Only async-signal-safe work here: a flag and a write(2) that wakes the loop. */
    if (e == NULL)
        return;
    e->interrupt_flag = 1;
    if (e->wake_pipe[1] >= 0) {
        int saved = errno;
        ssize_t ignored = write(e->wake_pipe[1], "!", 1);
        (void)ignored;
        errno = saved;
    }
}

int lcmc_engine_interrupted(const lcmc_engine *e)
{
    return e && e->interrupt_flag;
}

void lcmc_engine_reset_interrupt(lcmc_engine *e)
{
    if (e == NULL)
        return;
    e->interrupt_flag = 0;
    e->interrupt_handled = 0;
}

const lcmc_error *lcmc_engine_last_error(const lcmc_engine *e)
{
    return e ? &e->last_error : NULL;
}

void lcmc__engine_set_last_error(lcmc_engine *e, lcmc_status status, const char *fmt, ...)
{
    lcmc__error_clear(&e->last_error);
    e->last_error.status = status;
    va_list ap;
    va_start(ap, fmt);
    e->last_error.message = lcmc__vasprintf(fmt, ap);
    va_end(ap);
}

void lcmc__warn_once(lcmc_engine *e, const char *key, const char *fmt, ...)
{
    for (size_t i = 0; i < e->warned_count; i++)
        if (strcmp(e->warned[i], key) == 0)
            return;
    char **bigger = realloc(e->warned, (e->warned_count + 1) * sizeof *bigger);
    if (bigger == NULL)
        return;
    e->warned = bigger;
    if ((e->warned[e->warned_count] = lcmc__strdup(key)) == NULL)
        return;
    e->warned_count++;
    if (!lcmc__log_enabled(e, LCMC_LOG_WARN))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *message = lcmc__vasprintf(fmt, ap);
    va_end(ap);
    if (message)
        e->log_fn(e->log_userdata, LCMC_LOG_WARN, message);
    free(message);
}

int lcmc__log_enabled(const lcmc_engine *e, lcmc_log_level level)
{
    return e->log_fn != NULL && level <= e->log_max;
}

void lcmc__log(lcmc_engine *e, lcmc_log_level level, const char *fmt, ...)
{
    if (!lcmc__log_enabled(e, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *message = lcmc__vasprintf(fmt, ap);
    va_end(ap);
    if (message)
        e->log_fn(e->log_userdata, level, message);
    free(message);
}

/* ---- timers: a binary min-heap on `due` ---------------------------------------------- */

void lcmc__timer_init(lcmc_timer *t, lcmc_timer_fn *fire, void *owner)
{
    t->due = 0;
    t->heap_index = SIZE_MAX;
    t->fire = fire;
    t->owner = owner;
}

static void heap_swap(lcmc_engine *e, size_t a, size_t b)
{
    lcmc_timer *t = e->heap[a];
    e->heap[a] = e->heap[b];
    e->heap[b] = t;
    e->heap[a]->heap_index = a;
    e->heap[b]->heap_index = b;
}

static void heap_up(lcmc_engine *e, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (e->heap[parent]->due <= e->heap[i]->due)
            break;
        heap_swap(e, i, parent);
        i = parent;
    }
}

static void heap_down(lcmc_engine *e, size_t i)
{
    for (;;) {
        size_t left = 2 * i + 1, right = left + 1, least = i;
        if (left < e->heap_length && e->heap[left]->due < e->heap[least]->due)
            least = left;
        if (right < e->heap_length && e->heap[right]->due < e->heap[least]->due)
            least = right;
        if (least == i)
            return;
        heap_swap(e, i, least);
        i = least;
    }
}

void lcmc__timer_disarm(lcmc_engine *e, lcmc_timer *t)
{
    size_t i = t->heap_index;
    if (i == SIZE_MAX)
        return;
    size_t last = e->heap_length - 1;
    if (i != last) {
        heap_swap(e, i, last);
        e->heap_length--;
        heap_down(e, i);
        heap_up(e, i);
    } else {
        e->heap_length--;
    }
    t->heap_index = SIZE_MAX;
}

int lcmc__timer_arm(lcmc_engine *e, lcmc_timer *t, double due)
{
    lcmc__timer_disarm(e, t);
    if (e->heap_length == e->heap_allocated) {
        size_t grown = e->heap_allocated ? e->heap_allocated * 2 : 64;
        lcmc_timer **bigger = realloc(e->heap, grown * sizeof *bigger);
        if (bigger == NULL)
            return -1;
        e->heap = bigger;
        e->heap_allocated = grown;
    }
    t->due = due;
    t->heap_index = e->heap_length;
    e->heap[e->heap_length++] = t;
    heap_up(e, t->heap_index);
    return 0;
}

/* ---- operations in flight ------------------------------------------------------------ */

void lcmc__op_register(lcmc_engine *e, lcmc_op *op)
{
    if (op->registered)
        return;
    op->prev = NULL;
    op->next = e->ops;
    if (e->ops)
        e->ops->prev = op;
    e->ops = op;
    op->registered = 1;
}

void lcmc__op_unregister(lcmc_engine *e, lcmc_op *op)
{
    if (!op->registered)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        e->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    op->registered = 0;
}

static void deliver_interrupt(lcmc_engine *e)
{
    e->interrupt_handled = 1;
    lcmc__log(e, LCMC_LOG_INFO, "interrupted: cancelling %s in flight",
              e->ops ? "what is" : "nothing");
    /* An op may unregister itself (and only itself) while handling the interrupt. */
    lcmc_op *op = e->ops;
    while (op) {
        lcmc_op *next = op->next;
        op->interrupt(op);
        op = next;
    }
}

/* ---- the loop ------------------------------------------------------------------------ */

static void drain_wake_pipe(lcmc_engine *e)
{
    char sink[64];
    while (read(e->wake_pipe[0], sink, sizeof sink) > 0) {
    }
}

/* Returns how many fired. */
static size_t fire_due_timers(lcmc_engine *e)
{
    size_t fired = 0;
    double now = lcmc__now();
    /* Only what was due on entry fires: a timer re-armed for "now" by its own callback
     * waits for the next turn, so the loop always gets back to the sockets. */
    size_t budget = e->heap_length;
    while (budget-- > 0 && e->heap_length > 0 && e->heap[0]->due <= now) {
        lcmc_timer *t = e->heap[0];
        lcmc__timer_disarm(e, t);
        t->fire(t);
        fired++;
    }
    return fired;
}

static int poll_timeout_ms(const lcmc_engine *e)
{
    if (e->heap_length == 0)
        return 60 * 1000; /* libcurl shortens this to its own next timeout */
    double wait = e->heap[0]->due - lcmc__now();
    if (wait <= 0)
        return 0;
    double ms = ceil(wait * 1000.0);
    return ms > 60 * 1000 ? 60 * 1000 : (int)ms;
}

lcmc_status lcmc__engine_step(lcmc_engine *e)
{
    if (e->interrupt_flag && !e->interrupt_handled)
        deliver_interrupt(e);
    size_t fired = fire_due_timers(e);
    if (e->transfers_running == 0 && e->heap_length == 0)
        return fired ? LCMC_OK : LCMC_EUSAGE;

    struct curl_waitfd wake = {.fd = e->wake_pipe[0], .events = CURL_WAIT_POLLIN, .revents = 0};
    /* A timer that fired may have finished what the caller waits for (a sleep, a
     * coordination): look at the sockets without blocking, so the caller sees it now. */
    CURLMcode mc = curl_multi_poll(e->multi, &wake, 1, fired ? 0 : poll_timeout_ms(e), NULL);
    if (mc != CURLM_OK && mc != CURLM_UNRECOVERABLE_POLL)
        return LCMC_ENOMEM;
    if (wake.revents)
        drain_wake_pipe(e);
    if (e->interrupt_flag && !e->interrupt_handled)
        deliver_interrupt(e);

    int running = 0;
    curl_multi_perform(e->multi, &running);
    lcmc__transfers_collect(e);
    return LCMC_OK;
}

lcmc_status lcmc_engine_run(lcmc_engine *e)
{
    if (e == NULL)
        return LCMC_EUSAGE;
    while (e->ops != NULL || e->transfers_running > 0) {
        lcmc_status s = lcmc__engine_step(e);
        if (s == LCMC_EUSAGE)
            break;
        if (s != LCMC_OK)
            return s;
    }
    return e->interrupt_flag ? LCMC_ECANCELLED : LCMC_OK;
}

void lcmc_engine_log(lcmc_engine *e, lcmc_log_level level, const char *message)
{
    if (e && message && lcmc__log_enabled(e, level))
        e->log_fn(e->log_userdata, level, message);
}

double lcmc_now(void)
{
    return lcmc__now();
}

double lcmc__random(lcmc_engine *e)
{
    /* xorshift64*: jitter needs spread, not secrecy. Seeded on first use. */
    if (e->random_state == 0)
        e->random_state =
            ((unsigned long long)(lcmc__wall_now() * 1e6) ^ (unsigned long long)getpid()) | 1u;
    unsigned long long x = e->random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->random_state = x;
    return (double)((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

double lcmc_engine_random(lcmc_engine *e)
{
    return e ? lcmc__random(e) : 0;
}

/* A sleep is an operation like any other, so that an interrupt ends it. */
typedef struct sleeper {
    lcmc_op op;
    lcmc_timer timer;
    int done;
    int interrupted;
} sleeper;

static void sleeper_woke(lcmc_timer *timer)
{
    sleeper *s = timer->owner;
    s->done = 1;
}

static void sleeper_interrupted(lcmc_op *op)
{
    sleeper *s = (sleeper *)op;
    s->done = 1;
    s->interrupted = 1;
}

lcmc_status lcmc_engine_sleep(lcmc_engine *e, double seconds)
{
    if (e == NULL || !(seconds >= 0))
        return LCMC_EUSAGE;
    if (e->interrupt_flag)
        return LCMC_ECANCELLED;
    sleeper s = {0};
    s.op.interrupt = sleeper_interrupted;
    lcmc__timer_init(&s.timer, sleeper_woke, &s);
    if (lcmc__timer_arm(e, &s.timer, lcmc__now() + seconds) != 0)
        return LCMC_ENOMEM;
    lcmc__op_register(e, &s.op);
    while (!s.done)
        if (lcmc__engine_step(e) == LCMC_EUSAGE)
            break;
    lcmc__timer_disarm(e, &s.timer);
    lcmc__op_unregister(e, &s.op);
    return s.interrupted ? LCMC_ECANCELLED : LCMC_OK;
}
