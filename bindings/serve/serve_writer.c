/*
 * The store writer of `lcmcoord serve`: the threads that do the store's writes (a
 * coordination inserted, finished or deleted; the heartbeat) so that the engine thread, which
 * resumes every hook, never waits for a disk sync or a database round trip. The engine thread
 * submits a write and goes on; the write's completion runs back on the engine thread
 * (serve_loop_post). Whoever submits keeps at most one write per coordination in flight, so
 * the order of a coordination's writes is the order they were submitted (a finish never before
 * its insert), and its answer is given from the completion (stored before answered).
 *
 * Writes queued together are grouped when the store can (SQLite: one transaction, one sync for
 * all of them, each write its own savepoint); PostgreSQL gets several writer threads instead,
 * each on its own pooled connection, so one slow commit holds up no other.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

/* The most writes one group commit takes. */
#define SERVE_WRITER_GROUP 64

struct serve_writer {
    struct serve_store *store;
    struct serve_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t more;
    struct serve_write *head, *tail;
    bool stopping;
    unsigned live; /* threads still taking writes */
    unsigned n_threads;
    pthread_t threads[SERVE_WRITER_MAX_THREADS];
};

static void run_one(struct serve_store *st, struct serve_write *w)
{
    switch (w->kind) {
    case SERVE_W_INSERT_RUNNING:
        w->rc = serve_store_insert_running(st, &w->row, w->conflict, w->err, sizeof w->err);
        break;
    case SERVE_W_INSERT_DONE:
        w->rc = serve_store_insert_done(st, &w->row, w->err, sizeof w->err);
        break;
    case SERVE_W_FINISH:
        w->rc = serve_store_finish(st, w->row.id, w->row.result, w->row.lcmcoord_json, w->err,
                                   sizeof w->err);
        break;
    case SERVE_W_DELETE:
        w->rc = serve_store_delete(st, w->row.id, w->err, sizeof w->err);
        break;
    case SERVE_W_CALL:
        w->call(w->ud);
        w->rc = SERVE_STORE_OK;
        break;
    }
}

/* Takes the writes to do next (the lock held): a call alone, or up to SERVE_WRITER_GROUP
 * store writes in a row, in their order. */
static struct serve_write *take(struct serve_writer *wr, size_t *n)
{
    struct serve_write *first = wr->head, *last = first;
    *n = 1;
    if (first->kind != SERVE_W_CALL)
        while (last->next && last->next->kind != SERVE_W_CALL && *n < SERVE_WRITER_GROUP) {
            last = last->next;
            ++*n;
        }
    wr->head = last->next;
    if (!wr->head)
        wr->tail = NULL;
    last->next = NULL;
    return first;
}

static void complete(struct serve_writer *wr, struct serve_write *w)
{
    if (!serve_loop_post(wr->loop, w->done, w->ud)) /* never: the loop outlives the writer */
        em_http_log_error("store writer: ", "a completion could not reach the engine thread");
}

static void *writer_thread(void *arg)
{
    struct serve_writer *wr = arg;
    pthread_mutex_lock(&wr->mu);
    for (;;) {
        while (!wr->head && !wr->stopping)
            pthread_cond_wait(&wr->more, &wr->mu);
        if (!wr->head)
            break;
        size_t n;
        struct serve_write *batch = take(wr, &n);
        pthread_mutex_unlock(&wr->mu);
        char err[512] = "";
        bool grouped =
            n > 1 && serve_store_batch_begin(wr->store, err, sizeof err) == SERVE_STORE_OK;
        for (struct serve_write *w = batch; w; w = w->next)
            run_one(wr->store, w);
        if (grouped && serve_store_batch_end(wr->store, err, sizeof err) != SERVE_STORE_OK)
            for (struct serve_write *w = batch; w; w = w->next) { /* none of them was kept */
                w->rc = SERVE_STORE_ERROR;
                snprintf(w->err, sizeof w->err, "%s", err);
            }
        while (batch) {
            struct serve_write *next = batch->next; /* batch may be freed once completed */
            complete(wr, batch);
            batch = next;
        }
        pthread_mutex_lock(&wr->mu);
    }
    wr->live--;
    pthread_mutex_unlock(&wr->mu);
    return NULL;
}

struct serve_writer *serve_writer_start(struct serve_store *st, struct serve_loop *loop,
                                        unsigned threads, char *err, size_t len)
{
    struct serve_writer *wr = em_xmalloc(sizeof *wr);
    memset(wr, 0, sizeof *wr);
    wr->store = st;
    wr->loop = loop;
    pthread_mutex_init(&wr->mu, NULL);
    pthread_cond_init(&wr->more, NULL);
    if (threads < 1)
        threads = 1;
    if (threads > SERVE_WRITER_MAX_THREADS)
        threads = SERVE_WRITER_MAX_THREADS;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&wr->threads[i], NULL, writer_thread, wr) != 0) {
            snprintf(err, len, "cannot start the store writer's threads");
            serve_writer_free(wr);
            return NULL;
        }
        wr->n_threads++;
        wr->live++;
    }
    return wr;
}

void serve_writer_submit(struct serve_writer *wr, struct serve_write *w)
{
    w->next = NULL;
    w->rc = SERVE_STORE_ERROR;
    w->err[0] = '\0';
    pthread_mutex_lock(&wr->mu);
    if (wr->live == 0) { /* stopped: the engine thread does it itself, in order */
        pthread_mutex_unlock(&wr->mu);
        run_one(wr->store, w);
        w->done(w->ud);
        return;
    }
    if (wr->tail)
        wr->tail->next = w;
    else
        wr->head = w;
    wr->tail = w;
    pthread_cond_signal(&wr->more);
    pthread_mutex_unlock(&wr->mu);
}

void serve_writer_stop(struct serve_writer *wr)
{
    if (!wr)
        return;
    pthread_mutex_lock(&wr->mu);
    wr->stopping = true;
    pthread_cond_broadcast(&wr->more);
    pthread_mutex_unlock(&wr->mu);
    for (unsigned i = 0; i < wr->n_threads; i++)
        pthread_join(wr->threads[i], NULL);
    wr->n_threads = 0;
}

void serve_writer_free(struct serve_writer *wr)
{
    if (!wr)
        return;
    serve_writer_stop(wr);
    pthread_mutex_destroy(&wr->mu);
    pthread_cond_destroy(&wr->more);
    free(wr);
}
