/*
 * The engine: a min-heap of timers, the list of operations in flight, the sockets watched
 * for others (an SSH session's) and the transfers' transport (transfer.c). Everything
 * asynchronous in the runtime is a transfer, a timer or a watched socket, so one loop
 * (lcmc__engine_step) drives any number of coordinations; it sleeps in the transport's
 * wait (curl_multi_poll) until a socket is ready, the next timer is due, or a signal
 * handler writes to the wake-up pipe. Coordinations waiting out a Retry-After cost no CPU.
 * The struct is this file's alone: the other files use functions (engine.h, internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "events.h"

struct lcmc_engine {
    /* Transfers (transfer.c): the transport, its queue and active set. */
    struct lcmc_transfers *transfers;
    lcmc_timer **heap;
    size_t heap_length, heap_allocated;
    lcmc_op *ops;
    lcmc_watch *watches;
    size_t watch_count;
    struct curl_waitfd *poll_fds; /* the wake-up pipe, then the watches: rebuilt each turn */
    size_t poll_fds_allocated;

    int wake_pipe[2];
    volatile sig_atomic_t interrupt_flag;
    volatile sig_atomic_t interrupt_again; /* a later interrupt came: stop waiting, too */
    int interrupts_handled;                /* 0, 1 (the first) or 2 (the one again too) */

    /* Work for the loop (lcmc__defer, lcmc_engine_post): any thread may add to it. */
    pthread_mutex_t defer_lock;
    int defer_lock_made;
    lcmc_deferred *defer_head, *defer_tail;
    unsigned long long defer_seq;
    atomic_size_t defer_count;
    atomic_int stop_requested; /* lcmc_engine_stop, from any thread */
    int serving;               /* lcmc_engine_serve runs: the loop waits even when idle */
    size_t held; /* work finishing on other threads (lcmc__engine_hold): the loop waits */

    lcmc_trace_fn *trace_fn;
    void *trace_userdata;

    /* One receiver of log events (events.h): with their fields, or their line alone. */
    lcmc_event_fn *event_fn;
    lcmc_log_fn *log_fn;
    void *log_userdata;
    lcmc_log_level log_max;

    lcmc_error last_error;

    struct lcmc_records *records;    /* record.c */
    struct lcmc_token_cache *tokens; /* token.c: the OAuth 2.0 token cache */
    char **warned; /* what was warned about once already (origins over plain http) */
    size_t warned_count;
    unsigned long long random_state;
    long max_host_connections;
};

static void run_post(lcmc_deferred *deferred);
static void wake(lcmc_engine *e);

static pthread_once_t global_init_once = PTHREAD_ONCE_INIT;
static CURLcode global_init_result;

static void global_init(void)
{
    global_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
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
    e->log_max = LCMC_LOG_WARN;
    /* Many coordinations to one EM should share a few kept-alive connections rather than
     * open one each; HTTP/1.1 pipelining is gone from libcurl, so requests queue instead. */
    e->max_host_connections = 64;
    if (pthread_mutex_init(&e->defer_lock, NULL) != 0) {
        free(e);
        return LCMC_ENOMEM;
    }
    e->defer_lock_made = 1;
    atomic_init(&e->defer_count, 0);
    atomic_init(&e->stop_requested, 0);
    if (pipe(e->wake_pipe) != 0 || lcmc__records_new(&e->records) != 0 ||
        lcmc__tokens_new(&e->tokens) != 0 || lcmc__transfers_new(e, &e->transfers) != 0) {
        lcmc_engine_free(e);
        return LCMC_ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(e->wake_pipe[i], F_SETFL, fcntl(e->wake_pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(e->wake_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    lcmc__transfers_set_max_host_connections(e->transfers, e->max_host_connections);
    *out = e;
    return LCMC_OK;
}

void lcmc_engine_free(lcmc_engine *e)
{
    if (e == NULL)
        return;
    /* Token fetches are transfers: gone before the transport is. */
    lcmc__tokens_free(e->tokens);
    e->tokens = NULL;
    for (size_t i = 0; i < e->warned_count; i++)
        free(e->warned[i]);
    free(e->warned);
    lcmc__transfers_free(e->transfers);
    for (int i = 0; i < 2; i++)
        if (e->wake_pipe[i] >= 0)
            close(e->wake_pipe[i]);
    free(e->heap);
    free(e->poll_fds);
    lcmc__records_free(e->records);
    lcmc__error_clear(&e->last_error);
    /* What was posted and never ran is dropped: only lcmc_engine_post's own nodes are the
     * engine's to free (every other deferred item belongs to an operation freed above). */
    while (e->defer_head != NULL) {
        lcmc_deferred *d = e->defer_head;
        e->defer_head = d->next;
        d->queued = 0;
        if (d->run == run_post)
            free(d);
    }
    if (e->defer_lock_made)
        pthread_mutex_destroy(&e->defer_lock);
    free(e);
}

struct lcmc_transfers *lcmc__engine_transfers(const lcmc_engine *e)
{
    return e->transfers;
}

struct lcmc_records *lcmc__engine_records(const lcmc_engine *e)
{
    return e->records;
}

struct lcmc_token_cache *lcmc__engine_tokens(const lcmc_engine *e)
{
    return e->tokens;
}

void lcmc_engine_set_log(lcmc_engine *e, lcmc_log_fn *fn, void *userdata, lcmc_log_level max_level)
{
    if (e == NULL)
        return;
    e->event_fn = NULL;
    e->log_fn = fn;
    e->log_userdata = userdata;
    e->log_max = max_level;
}

void lcmc_engine_set_events(lcmc_engine *e, lcmc_event_fn *fn, void *userdata,
                            lcmc_log_level max_level)
{
    if (e == NULL)
        return;
    e->event_fn = fn;
    e->log_fn = NULL;
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
    e->max_host_connections = max;
    lcmc__transfers_set_max_host_connections(e->transfers, max);
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
    if (e->interrupt_flag)
        e->interrupt_again = 1;
    e->interrupt_flag = 1;
    wake(e);
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
    e->interrupt_again = 0;
    e->interrupts_handled = 0;
}

int lcmc__engine_interrupted_again(const lcmc_engine *e)
{
    return e->interrupt_again;
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
    if (message) {
        lcmc_event event = lcmc__event_make(LCMC_EVENT_WARNING, LCMC_LOG_WARN, NULL);
        event.message = message;
        lcmc__event_deliver(e, &event);
    }
    free(message);
}

void lcmc__engine_take_error(lcmc_engine *e, lcmc_error *err)
{
    lcmc__error_move(&e->last_error, err);
}

int lcmc__trace_enabled(const lcmc_engine *e)
{
    return e->trace_fn != NULL;
}

void lcmc__trace(lcmc_engine *e, lcmc_trace_kind kind, const char *data, size_t length)
{
    if (e->trace_fn)
        e->trace_fn(e->trace_userdata, kind, data, length);
}

int lcmc__log_enabled(const lcmc_engine *e, lcmc_log_level level)
{
    return (e->event_fn != NULL || e->log_fn != NULL) && level <= e->log_max;
}

/* The events are made in events.h's functions (messages.c); the receiver is kept here. */
void lcmc__event_deliver(lcmc_engine *e, const lcmc_event *event)
{
    if (!lcmc__log_enabled(e, event->level) || event->message == NULL)
        return;
    if (e->event_fn != NULL)
        e->event_fn(e->log_userdata, event);
    else
        e->log_fn(e->log_userdata, event->level, event->message);
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

#if defined(LCMC_DEBUGASSERTS)
/* The heap around position i after a change there: in order with its parent and children,
 * and every timer knowing where it sits. */
static int heap_in_order_at(const lcmc_engine *e, size_t i)
{
    if (i >= e->heap_length)
        return 1;
    const lcmc_timer *t = e->heap[i];
    size_t left = 2 * i + 1, right = left + 1;
    return t->heap_index == i && (i == 0 || e->heap[(i - 1) / 2]->due <= t->due) &&
           (left >= e->heap_length || t->due <= e->heap[left]->due) &&
           (right >= e->heap_length || t->due <= e->heap[right]->due);
}
#endif

void lcmc__timer_disarm(lcmc_engine *e, lcmc_timer *t)
{
    size_t i = t->heap_index;
    if (i == SIZE_MAX)
        return;
    LCMC_DEBUGASSERT(i < e->heap_length && e->heap[i] == t);
    size_t last = e->heap_length - 1;
    if (i != last) {
        heap_swap(e, i, last);
        e->heap_length--;
        heap_down(e, i);
        heap_up(e, i);
        LCMC_DEBUGASSERT(heap_in_order_at(e, i));
    } else {
        e->heap_length--;
    }
    t->heap_index = SIZE_MAX;
}

int lcmc__timer_arm(lcmc_engine *e, lcmc_timer *t, double due)
{
    /* A NaN would sit anywhere in the heap and break its order for every other timer. */
    LCMC_DEBUGASSERT(due == due && t->fire != NULL);
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
    LCMC_DEBUGASSERT(heap_in_order_at(e, t->heap_index) && e->heap[t->heap_index] == t);
    return 0;
}

/* ---- operations in flight ------------------------------------------------------------ */

void lcmc__op_register(lcmc_engine *e, lcmc_op *op)
{
    if (op->registered)
        return;
    LCMC_DEBUGASSERT(op->interrupt != NULL && op != e->ops);
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
    LCMC_DEBUGASSERT(op->prev ? op->prev->next == op : e->ops == op);
    LCMC_DEBUGASSERT(op->next == NULL || op->next->prev == op);
    if (op->prev)
        op->prev->next = op->next;
    else
        e->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    op->registered = 0;
}

/* Whether an interrupt came that the ops in flight have not been told of yet. */
static int interrupt_pending(const lcmc_engine *e)
{
    return e->interrupt_flag && e->interrupts_handled < 1 + (e->interrupt_again ? 1 : 0);
}

/* The first interrupt cancels what is in flight; one after it ends the waits that cancelling
 * began (for the EM's answer to a cancel, or to a POST that was out), which the first one
 * leaves to their short grace. Each op is told of both and knows which by
 * lcmc__engine_interrupted_again. */
static void deliver_interrupt(lcmc_engine *e)
{
    int again = e->interrupts_handled > 0;
    e->interrupts_handled = e->interrupt_again ? 2 : 1;
    lcmc_event event = lcmc__event_make(LCMC_EVENT_INTERRUPT, LCMC_LOG_INFO, NULL);
    if (again) {
        event.reason = "again";
        lcmc__event_emit(e, &event, "interrupted again: no longer waiting for the EM");
    } else {
        event.reason = e->ops ? "in_flight" : "nothing";
        lcmc__event_emit(e, &event, "interrupted: cancelling %s in flight",
                         e->ops ? "what is" : "nothing");
    }
    /* An op may unregister itself (and only itself) while handling the interrupt. */
    lcmc_op *op = e->ops;
    while (op) {
        lcmc_op *next = op->next;
        op->interrupt(op);
        op = next;
    }
}

/* ---- sockets watched by the loop -------------------------------------------------------- */

void lcmc__watch_init(lcmc_watch *w, int fd, short events, lcmc_watch_fn *ready, void *owner)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->events = events;
    w->ready = ready;
    w->owner = owner;
}

int lcmc__watch_add(lcmc_engine *e, lcmc_watch *w)
{
    if (w->added)
        return 0;
    /* Room for it in the array handed to poll, made now so that a turn cannot fail. */
    size_t needed = e->watch_count + 2;
    if (needed > e->poll_fds_allocated) {
        size_t grown = needed < 8 ? 8 : needed * 2;
        struct curl_waitfd *bigger = realloc(e->poll_fds, grown * sizeof *bigger);
        if (bigger == NULL)
            return -1;
        e->poll_fds = bigger;
        e->poll_fds_allocated = grown;
    }
    w->prev = NULL;
    w->next = e->watches;
    if (e->watches)
        e->watches->prev = w;
    e->watches = w;
    w->added = 1;
    e->watch_count++;
    return 0;
}

void lcmc__watch_remove(lcmc_engine *e, lcmc_watch *w)
{
    if (!w->added)
        return;
    LCMC_DEBUGASSERT(e->watch_count > 0 && (w->prev ? w->prev->next == w : e->watches == w));
    if (w->prev)
        w->prev->next = w->next;
    else
        e->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->added = 0;
    e->watch_count--;
}

/* ---- work handed to the loop ------------------------------------------------------------ */

/* Wakes the loop from its wait; async-signal-safe, so that any thread (or a signal handler)
 * may call it. A full pipe already wakes the loop: the failed write is of no concern. */
static void wake(lcmc_engine *e)
{
    if (e->wake_pipe[1] >= 0) {
        int saved = errno;
        ssize_t ignored = write(e->wake_pipe[1], "!", 1);
        (void)ignored;
        errno = saved;
    }
}

void lcmc__defer(lcmc_engine *e, lcmc_deferred *d, lcmc_deferred_fn *run)
{
    pthread_mutex_lock(&e->defer_lock);
    LCMC_DEBUGASSERT(!d->queued);
    d->run = run;
    d->seq = ++e->defer_seq;
    d->next = NULL;
    d->prev = e->defer_tail;
    if (e->defer_tail)
        e->defer_tail->next = d;
    else
        e->defer_head = d;
    e->defer_tail = d;
    d->queued = 1;
    atomic_fetch_add(&e->defer_count, 1);
    pthread_mutex_unlock(&e->defer_lock);
    /* The engine's own thread looks at the queue before it waits; another thread's item
     * has to interrupt a wait already begun. */
    wake(e);
}

/* Unlinks d; the lock is held. */
static void defer_unlink(lcmc_engine *e, lcmc_deferred *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        e->defer_head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        e->defer_tail = d->prev;
    d->prev = d->next = NULL;
    d->queued = 0;
    atomic_fetch_sub(&e->defer_count, 1);
}

void lcmc__defer_cancel(lcmc_engine *e, lcmc_deferred *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&e->defer_lock);
    if (d->queued)
        defer_unlink(e, d);
    pthread_mutex_unlock(&e->defer_lock);
}

/* Runs what was queued before this call (what those add waits for the next turn, so the
 * loop always gets back to its sockets). Returns how many ran. */
static size_t run_deferred(lcmc_engine *e)
{
    if (atomic_load(&e->defer_count) == 0)
        return 0;
    pthread_mutex_lock(&e->defer_lock);
    unsigned long long limit = e->defer_seq;
    pthread_mutex_unlock(&e->defer_lock);
    size_t ran = 0;
    for (;;) {
        pthread_mutex_lock(&e->defer_lock);
        lcmc_deferred *d = e->defer_head;
        if (d == NULL || d->seq > limit) {
            pthread_mutex_unlock(&e->defer_lock);
            break;
        }
        defer_unlink(e, d);
        pthread_mutex_unlock(&e->defer_lock);
        d->run(d); /* may free d */
        ran++;
    }
    return ran;
}

/* A function posted by lcmc_engine_post: its node is the engine's, freed before it runs. */
typedef struct posted {
    lcmc_deferred deferred; /* first */
    void (*fn)(void *userdata);
    void *userdata;
} posted;

static void run_post(lcmc_deferred *d)
{
    posted *p = (posted *)d;
    void (*fn)(void *) = p->fn;
    void *userdata = p->userdata;
    free(p);
    fn(userdata);
}

lcmc_status lcmc_engine_post(lcmc_engine *e, void (*fn)(void *userdata), void *userdata)
{
    if (e == NULL || fn == NULL)
        return LCMC_EUSAGE;
    posted *p = calloc(1, sizeof *p);
    if (p == NULL)
        return LCMC_ENOMEM;
    p->fn = fn;
    p->userdata = userdata;
    lcmc__defer(e, &p->deferred, run_post);
    return LCMC_OK;
}

void lcmc__engine_hold(lcmc_engine *e, int delta)
{
    LCMC_DEBUGASSERT(delta > 0 || e->held > 0);
    e->held = delta > 0 ? e->held + 1 : e->held - 1;
}

void lcmc_engine_stop(lcmc_engine *e)
{
    if (e == NULL)
        return;
    atomic_store(&e->stop_requested, 1);
    wake(e);
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

/* Seconds until the next timer, at most a minute (libcurl shortens this to its own next
 * timeout). */
static double poll_timeout(const lcmc_engine *e)
{
    if (e->heap_length == 0)
        return 60.0;
    double wait = e->heap[0]->due - lcmc__now();
    if (wait <= 0)
        return 0;
    return wait > 60.0 ? 60.0 : wait;
}

/* Calls the watches whose sockets are ready. A callback may remove any watch, its own
 * included, so each is looked up again by its place in this turn's array. */
static void dispatch_watches(lcmc_engine *e, size_t count)
{
    for (size_t i = 1; i <= count; i++) {
        struct curl_waitfd *p = &e->poll_fds[i];
        if (p->revents == 0)
            continue;
        for (lcmc_watch *w = e->watches; w; w = w->next)
            if (w->fd == (int)p->fd) {
                w->ready(w, p->revents);
                break;
            }
    }
}

lcmc_status lcmc__engine_step(lcmc_engine *e)
{
    if (interrupt_pending(e))
        deliver_interrupt(e);
    size_t ran = run_deferred(e);
    size_t fired = fire_due_timers(e);
    int more_work = atomic_load(&e->defer_count) > 0;
    if (!e->serving && !more_work && e->held == 0 && lcmc__transfers_running(e->transfers) == 0 &&
        e->heap_length == 0 && e->watch_count == 0)
        return fired || ran ? LCMC_OK : LCMC_EUSAGE;

    /* The wake-up pipe first, then every watched socket (room made by lcmc__watch_add). */
    struct curl_waitfd wake = {.fd = e->wake_pipe[0], .events = CURL_WAIT_POLLIN, .revents = 0};
    struct curl_waitfd *fds = &wake;
    size_t count = 0;
    if (e->watch_count > 0) {
        fds = e->poll_fds;
        fds[0] = wake;
        for (lcmc_watch *w = e->watches; w; w = w->next) {
            LCMC_DEBUGASSERT(count + 2 <= e->poll_fds_allocated);
            fds[++count] = (struct curl_waitfd){.fd = w->fd, .events = w->events, .revents = 0};
        }
        LCMC_DEBUGASSERT(count == e->watch_count);
    }
    /* A timer that fired may have finished what the caller waits for (a sleep, a
     * coordination): look at the sockets without blocking, so the caller sees it now. The
     * transport completes the transfers that finished. */
    int now = fired || ran || more_work || (e->serving && atomic_load(&e->stop_requested));
    lcmc_status s =
        lcmc__transfers_wait(e->transfers, now ? 0 : poll_timeout(e), fds, (unsigned)count + 1);
    if (s != LCMC_OK)
        return s;
    if (fds[0].revents)
        drain_wake_pipe(e);
    if (interrupt_pending(e))
        deliver_interrupt(e);
    if (count > 0)
        dispatch_watches(e, count);
    run_deferred(e);
    return LCMC_OK;
}

lcmc_status lcmc_engine_run(lcmc_engine *e)
{
    if (e == NULL)
        return LCMC_EUSAGE;
    while (e->ops != NULL || lcmc__transfers_running(e->transfers) > 0 ||
           atomic_load(&e->defer_count) > 0) {
        lcmc_status s = lcmc__engine_step(e);
        if (s == LCMC_EUSAGE)
            break;
        if (s != LCMC_OK)
            return s;
    }
    return e->interrupt_flag ? LCMC_ECANCELLED : LCMC_OK;
}

lcmc_status lcmc_engine_serve(lcmc_engine *e)
{
    if (e == NULL)
        return LCMC_EUSAGE;
    e->serving++;
    lcmc_status s = LCMC_OK;
    while (!atomic_load(&e->stop_requested)) {
        s = lcmc__engine_step(e);
        if (s != LCMC_OK && s != LCMC_EUSAGE)
            break;
        s = LCMC_OK;
    }
    e->serving--;
    /* One stop ends one serve: the next one runs until it is stopped again. */
    if (s == LCMC_OK)
        atomic_store(&e->stop_requested, 0);
    return s;
}

lcmc_status lcmc__engine_run_until(lcmc_engine *e, const int *done)
{
    while (!*done) {
        if (e->interrupt_flag)
            return LCMC_ECANCELLED;
        if (lcmc__engine_step(e) == LCMC_EUSAGE && !*done)
            return LCMC_ETRANSPORT; /* nothing left that could set it */
    }
    return LCMC_OK;
}

/* One wait for a socket: done when it is ready or its time came. */
typedef struct fd_wait {
    lcmc_watch watch;
    lcmc_timer timer;
    int done;
} fd_wait;

static void fd_wait_ready(lcmc_watch *watch, short revents)
{
    (void)revents;
    ((fd_wait *)watch->owner)->done = 1;
}

static void fd_wait_timed_out(lcmc_timer *timer)
{
    ((fd_wait *)timer->owner)->done = 1;
}

lcmc_status lcmc__engine_wait_fd(lcmc_engine *e, int fd, short events, double until)
{
    if (e->interrupt_flag)
        return LCMC_ECANCELLED;
    fd_wait w;
    w.done = 0;
    lcmc__watch_init(&w.watch, fd, events, fd_wait_ready, &w);
    lcmc__timer_init(&w.timer, fd_wait_timed_out, &w);
    if (lcmc__watch_add(e, &w.watch) != 0)
        return LCMC_ENOMEM;
    lcmc_status s = LCMC_ENOMEM;
    if (lcmc__timer_arm(e, &w.timer, until) == 0)
        s = lcmc__engine_run_until(e, &w.done);
    lcmc__timer_disarm(e, &w.timer);
    lcmc__watch_remove(e, &w.watch);
    return s;
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

/* ---- timers for the engine's users (lcmc_timer_start) ---------------------------------- */

struct lcmc_timer_handle {
    lcmc_op op; /* first: the engine's interrupt finds us through it */
    lcmc_engine *engine;
    lcmc_timer timer;
    lcmc_deferred deferred; /* the callback, run at the loop's next safe point */
    lcmc_timer_done_fn *fn;
    void *userdata;
    lcmc_status status;
};

static void timer_handle_deliver(lcmc_deferred *d)
{
    lcmc_timer_handle *h = (lcmc_timer_handle *)((char *)d - offsetof(lcmc_timer_handle, deferred));
    lcmc_timer_done_fn *fn = h->fn;
    void *userdata = h->userdata;
    lcmc_status status = h->status;
    free(h);
    fn(userdata, status);
}

static void timer_handle_end(lcmc_timer_handle *h, lcmc_status status)
{
    lcmc__timer_disarm(h->engine, &h->timer);
    lcmc__op_unregister(h->engine, &h->op);
    h->status = status;
    lcmc__defer(h->engine, &h->deferred, timer_handle_deliver);
}

static void timer_handle_fired(lcmc_timer *timer)
{
    timer_handle_end(timer->owner, LCMC_OK);
}

static void timer_handle_interrupted(lcmc_op *op)
{
    timer_handle_end((lcmc_timer_handle *)op, LCMC_ECANCELLED);
}

lcmc_status lcmc_timer_start(lcmc_engine *e, double seconds, lcmc_timer_done_fn *fn, void *userdata,
                             lcmc_timer_handle **out)
{
    if (out != NULL)
        *out = NULL;
    if (e == NULL || fn == NULL || !(seconds >= 0 && seconds <= LCMC_MAX_TIMEOUT))
        return LCMC_EUSAGE;
    lcmc_timer_handle *h = calloc(1, sizeof *h);
    if (h == NULL)
        return LCMC_ENOMEM;
    h->engine = e;
    h->fn = fn;
    h->userdata = userdata;
    h->op.interrupt = timer_handle_interrupted;
    lcmc__timer_init(&h->timer, timer_handle_fired, h);
    if (e->interrupt_flag) {
        /* As lcmc_engine_sleep: an interrupted engine waits for nothing. */
        h->status = LCMC_ECANCELLED;
        lcmc__defer(e, &h->deferred, timer_handle_deliver);
    } else {
        if (lcmc__timer_arm(e, &h->timer, lcmc__now() + seconds) != 0) {
            free(h);
            return LCMC_ENOMEM;
        }
        lcmc__op_register(e, &h->op);
    }
    if (out != NULL)
        *out = h;
    return LCMC_OK;
}

void lcmc_timer_cancel(lcmc_timer_handle *h)
{
    if (h == NULL)
        return;
    lcmc__timer_disarm(h->engine, &h->timer);
    lcmc__op_unregister(h->engine, &h->op);
    lcmc__defer_cancel(h->engine, &h->deferred);
    free(h);
}
