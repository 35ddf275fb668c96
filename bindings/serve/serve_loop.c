/*
 * The engine thread of `lcmcoord serve`: one thread turning the loop of the hooks' engine
 * (lcmc_engine_serve on lcmc_lua_engine of the hooks' Lua state), on which every hook runs
 * as a task, every timer fires and every piece of work posted by the HTTP workers runs
 * (lcmc_engine_post, thread-safe). Everything the hooks' Lua state touches happens there,
 * one thing at a time, so that state needs no lock. This file only adapts the runtime's
 * async API to the server's needs: timers that free themselves once they ran, and a stop that
 * runs what was posted before it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

struct serve_timer {
    lcmc_timer_handle *handle;
    serve_fn fn;
    void *ud;
};

struct serve_loop {
    lcmc_engine *engine;
    pthread_t thread;
    pthread_mutex_t mu;
    bool stopping;
};

double serve_monotonic(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void timer_fired(void *ud, lcmc_status status)
{
    (void)status; /* LCMC_ECANCELLED only on lcmc_engine_interrupt, which serve never calls */
    struct serve_timer *t = ud;
    t->handle = NULL;
    t->fn(t->ud);
    free(t);
}

struct serve_timer *serve_timer_start(struct serve_loop *l, double seconds, serve_fn fn, void *ud)
{
    struct serve_timer *t = em_xmalloc(sizeof *t);
    t->fn = fn;
    t->ud = ud;
    if (!(seconds >= 0))
        seconds = 0;
    if (seconds > 1e7)
        seconds = 1e7;
    if (lcmc_timer_start(l->engine, seconds, timer_fired, t, &t->handle) != LCMC_OK) {
        fputs(SERVE_PROGRAM ": out of memory (timer)\n", stderr);
        abort();
    }
    return t;
}

void serve_timer_cancel(struct serve_loop *l, struct serve_timer *t)
{
    (void)l;
    if (!t)
        return;
    lcmc_timer_cancel(t->handle);
    free(t);
}

bool serve_loop_post(struct serve_loop *l, serve_fn fn, void *ud)
{
    pthread_mutex_lock(&l->mu);
    bool ok = !l->stopping && lcmc_engine_post(l->engine, fn, ud) == LCMC_OK;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static void *loop_thread(void *arg)
{
    struct serve_loop *l = arg;
    lcmc_engine_serve(l->engine);
    return NULL;
}

struct serve_loop *serve_loop_start(lcmc_engine *engine, char *err, size_t len)
{
    struct serve_loop *l = em_xmalloc(sizeof *l);
    memset(l, 0, sizeof *l);
    l->engine = engine;
    pthread_mutex_init(&l->mu, NULL);
    if (pthread_create(&l->thread, NULL, loop_thread, l) != 0) {
        snprintf(err, len, "cannot start the engine thread");
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    return l;
}

/* Posted last: what was posted before it has run when the loop ends. */
static void stop_here(void *ud)
{
    struct serve_loop *l = ud;
    lcmc_engine_stop(l->engine);
}

void serve_loop_stop(struct serve_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    if (lcmc_engine_post(l->engine, stop_here, l) != LCMC_OK)
        lcmc_engine_stop(l->engine);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
