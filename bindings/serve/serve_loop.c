/*
 * The engine thread of `lcmcoord serve`: one thread on which every hook runs, fed by work
 * posted from the HTTP workers (thread-safe) and by timers (a binary heap, so ten thousand
 * decisions asleep cost a few comparisons each). Everything the hooks' Lua state touches
 * happens here, one thing at a time, so that state needs no lock.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

struct posted {
    serve_fn fn;
    void *ud;
    struct posted *next;
};

struct serve_timer {
    double due;
    unsigned long long seq; /* ties broken in start order */
    serve_fn fn;
    void *ud;
    size_t slot; /* in the heap; SIZE_MAX once run or cancelled */
};

struct serve_loop {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct posted *head, *tail;
    bool stopping;
    /* Timers: the engine thread's alone. */
    struct serve_timer **heap;
    size_t n, cap;
    unsigned long long seq;
};

double serve_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static bool earlier(const struct serve_timer *a, const struct serve_timer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(struct serve_loop *l, size_t i, struct serve_timer *t)
{
    l->heap[i] = t;
    t->slot = i;
}

static void heap_up(struct serve_loop *l, size_t i)
{
    struct serve_timer *t = l->heap[i];
    while (i > 0 && earlier(t, l->heap[(i - 1) / 2])) {
        heap_set(l, i, l->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(l, i, t);
}

static void heap_down(struct serve_loop *l, size_t i)
{
    struct serve_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->n)
            break;
        if (c + 1 < l->n && earlier(l->heap[c + 1], l->heap[c]))
            c++;
        if (!earlier(l->heap[c], t))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

static void heap_remove(struct serve_loop *l, size_t i)
{
    struct serve_timer *gone = l->heap[i];
    gone->slot = SIZE_MAX;
    if (--l->n == i)
        return;
    heap_set(l, i, l->heap[l->n]);
    heap_down(l, i);
    heap_up(l, l->heap[i]->slot);
}

struct serve_timer *serve_timer_start(struct serve_loop *l, double seconds, serve_fn fn, void *ud)
{
    struct serve_timer *t = em_xmalloc(sizeof *t);
    t->due = serve_now() + (isfinite(seconds) && seconds > 0 ? seconds : 0);
    t->seq = l->seq++;
    t->fn = fn;
    t->ud = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->heap = em_xrealloc(l->heap, l->cap * sizeof *l->heap);
    }
    heap_set(l, l->n++, t);
    heap_up(l, l->n - 1);
    return t;
}

void serve_timer_cancel(struct serve_loop *l, struct serve_timer *t)
{
    if (!t)
        return;
    if (t->slot != SIZE_MAX)
        heap_remove(l, t->slot);
    free(t);
}

bool serve_loop_post(struct serve_loop *l, serve_fn fn, void *ud)
{
    struct posted *p = em_xmalloc(sizeof *p);
    p->fn = fn;
    p->ud = ud;
    p->next = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        free(p);
        return false;
    }
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return true;
}

static void *loop_thread(void *arg)
{
    struct serve_loop *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        struct posted *work = l->head;
        l->head = l->tail = NULL;
        bool stopping = l->stopping;
        pthread_mutex_unlock(&l->mu);
        while (work) {
            struct posted *p = work;
            work = p->next;
            p->fn(p->ud);
            free(p);
        }
        /* Timers due: each runs once and is freed after (its function forgets its handle
         * first); a timer's function may start or cancel others. */
        double now = serve_now();
        while (l->n && l->heap[0]->due <= now) {
            struct serve_timer *t = l->heap[0];
            heap_remove(l, 0);
            t->fn(t->ud);
            free(t);
        }
        pthread_mutex_lock(&l->mu);
        if (l->head)
            continue;
        if (stopping && l->stopping)
            break;
        if (l->n) {
            double due = l->heap[0]->due;
            struct timespec ts;
            ts.tv_sec = (time_t)due;
            ts.tv_nsec = (long)((due - (double)ts.tv_sec) * 1e9);
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_nsec = 999999999L;
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        } else if (!l->stopping) {
            pthread_cond_wait(&l->cv, &l->mu);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

struct serve_loop *serve_loop_start(char *err, size_t len)
{
    struct serve_loop *l = em_xmalloc(sizeof *l);
    memset(l, 0, sizeof *l);
    pthread_condattr_t attr;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&l->thread, NULL, loop_thread, l) != 0) {
        snprintf(err, len, "cannot start the engine thread");
        free(l);
        return NULL;
    }
    return l;
}

void serve_loop_stop(struct serve_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    for (size_t i = 0; i < l->n; i++)
        free(l->heap[i]); /* never ran: their holders are gone */
    free(l->heap);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
