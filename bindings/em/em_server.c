/*
 * The EM simulator on the shared HTTP layer (em_http.c): its handler answers each request with
 * em_handle(), and with --scenario defers it to one of a few threads of its own, not the MHD
 * worker that read it: a scenario call may run up to its deadline, and a worker serves many
 * connections. The worker defers the call (its connection suspended) and queues the request;
 * a scenario thread decides the answer and gives it to the layer, which queues it while the
 * connection is still suspended and resumes it. The journal is always answered on the worker.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "em.h"

struct scenario_job {
    struct em_http_call *call;
    struct em_request rq;    /* a copy: the worker's is gone once it defers */
    struct timespec give_up; /* CLOCK_MONOTONIC: not started by then, it gets 503 */
    struct scenario_job *next;
};

struct scenario_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job queued, or stopping */
    struct scenario_job *head, *tail;
    unsigned queued;
    bool stopping;
    unsigned threads;
    pthread_t thread[EM_SCENARIO_THREADS];
};

struct em_server {
    struct em *em;
    struct em_http *http;
    struct scenario_pool *scenarios; /* with --scenario: the threads its calls run on */
};

/* A scenario error as one log line, through the HTTP layer's log (its rate limit, format
 * and escaping: request data quoted in a Lua message can neither forge a line nor break a
 * JSON one). */
void em_log_scenario_error(const char *message)
{
    em_http_log_error("scenario error: ", message);
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void scenario_job_free(struct scenario_job *job)
{
    em_request_free_copy(&job->rq);
    free(job);
}

static void busy_response(struct em_response *rs, const char *why)
{
    memset(rs, 0, sizeof *rs);
    em_response_problem(rs, 503, "%s", why);
    em_headers_add(&rs->headers, "Retry-After", "1");
    em_headers_add(&rs->headers, "Version", EM_API_VERSION);
}

/* On a scenario thread: decides and answers the deferred call (which may be gone after). */
static void scenario_job_run(struct em_server *srv, struct scenario_job *job, bool stopping)
{
    struct em_response rs;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (stopping)
        busy_response(&rs, "the simulator is stopping");
    else if (before(&job->give_up, &now))
        busy_response(&rs, "every scenario thread is busy; retry");
    else
        em_handle(srv->em, &job->rq, &rs);
    struct em_http_call *call = job->call;
    scenario_job_free(job);
    em_http_answer(call, &rs);
}

static void *scenario_thread(void *arg)
{
    struct em_server *srv = arg;
    struct scenario_pool *p = srv->scenarios;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        struct scenario_job *job = p->head;
        if (!job)
            break; /* stopping, and every job answered */
        p->head = job->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        bool stopping = p->stopping;
        pthread_mutex_unlock(&p->mu);
        scenario_job_run(srv, job, stopping);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int scenario_pool_start(struct em_server *srv)
{
    if (!srv->em->scenario)
        return 0;
    struct scenario_pool *p = em_xmalloc(sizeof *p);
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    srv->scenarios = p;
    while (p->threads < EM_SCENARIO_THREADS &&
           pthread_create(&p->thread[p->threads], NULL, scenario_thread, srv) == 0)
        p->threads++;
    return p->threads ? 0 : -1;
}

/* Cuts the running calls short (they raise at once), answers what is queued with 503 and
 * joins the threads: bounded by the deadline's margin, whatever the scenarios do. Every
 * deferred call is answered before it returns, as the layer's stop needs. The pool stays
 * (stopping: workers still running answer 503) until scenario_pool_free. */
static void scenario_pool_stop(void *ctx)
{
    struct em_server *srv = ctx;
    struct scenario_pool *p = srv->scenarios;
    if (!p)
        return;
    em_scenario_stop_calls(srv->em->scenario);
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->threads; i++)
        pthread_join(p->thread[i], NULL);
    p->threads = 0;
}

/* Once no worker can look at it any more (the layer stopped). */
static void scenario_pool_free(struct em_server *srv)
{
    struct scenario_pool *p = srv->scenarios;
    if (!p)
        return;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    srv->scenarios = NULL;
}

/* On the worker: hands the request to a scenario thread (true, deferred), or, when the queue
 * is full or the server stopping, fills rs with a 503 (false: answer it now). */
static bool scenario_offload(struct em_server *srv, struct em_http_call *call,
                             const struct em_request *rq, struct em_response *rs)
{
    struct scenario_pool *p = srv->scenarios;
    struct scenario_job *job = em_xmalloc(sizeof *job);
    memset(job, 0, sizeof *job);
    job->call = call;
    em_request_copy(rq, &job->rq);
    clock_gettime(CLOCK_MONOTONIC, &job->give_up);
    job->give_up.tv_sec += EM_SCENARIO_DEADLINE_MS / 1000 + 1;
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->queued >= EM_SCENARIO_QUEUE) {
        bool stopping = p->stopping;
        pthread_mutex_unlock(&p->mu);
        scenario_job_free(job);
        busy_response(rs, stopping ? "the simulator is stopping"
                                   : "too many scenario calls waiting; retry");
        return false; /* answered at once, not --delay'ed */
    }
    /* Deferred before any scenario thread can see the job. */
    em_http_defer(call);
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return true;
}

static bool em_http_handler(void *ctx, struct em_http_call *call, const struct em_request *rq,
                            struct em_response *rs)
{
    struct em_server *srv = ctx;
    /* A body refused for its length is answered at once: no scenario sees it. */
    if (srv->scenarios && !rq->body_too_large && strcmp(rq->path, EM_JOURNAL_PATH) != 0 &&
        scenario_offload(srv, call, rq, rs))
        return false;
    if (!rs->status)
        em_handle(srv->em, rq, rs);
    return true;
}

static size_t em_http_body_limit(void *ctx, const char *path)
{
    struct em_server *srv = ctx;
    return em_body_limit(srv->em, path);
}

/* Absolute URLs (Location, links, the scenario's base_url) come from --base-url, else from
 * the address listened on with the real port: never from a client's Host header. */
static void set_public_base_url(void *ctx, unsigned port)
{
    struct em *em = ((struct em_server *)ctx)->em;
    em_set_base_url(em, port);
    if (em->opt.base_url) {
        snprintf(em->base_url, sizeof em->base_url, "%s", em->opt.base_url);
        if (em->scenario)
            em_scenario_set_base_url(em->scenario, em->base_url);
    }
}

struct em_server *em_server_start(struct em *em, const struct em_tls_files *tls, char *err,
                                  size_t errlen)
{
    struct em_server *srv = em_xmalloc(sizeof *srv);
    memset(srv, 0, sizeof *srv);
    srv->em = em;
    if (scenario_pool_start(srv) < 0) {
        snprintf(err, errlen, "cannot start the scenario threads");
        scenario_pool_stop(srv);
        scenario_pool_free(srv);
        free(srv);
        return NULL;
    }
    struct em_http_settings set = {
        .opt = &em->opt,
        .program = "lcmcoord em",
        .exempt_path = EM_JOURNAL_PATH,
        .ctx = srv,
        .body_limit = em_http_body_limit,
        .bound = set_public_base_url,
        .handle = em_http_handler,
        .stopping = scenario_pool_stop,
    };
    srv->http = em_http_start(&set, tls, err, errlen);
    if (!srv->http) {
        scenario_pool_stop(srv);
        scenario_pool_free(srv);
        free(srv);
        return NULL;
    }
    return srv;
}

unsigned em_server_port(const struct em_server *srv)
{
    return em_http_port(srv->http);
}

void em_server_stop(struct em_server *srv)
{
    if (!srv)
        return;
    em_http_stop(srv->http); /* stops the scenario threads before MHD */
    scenario_pool_free(srv);
    free(srv);
}
