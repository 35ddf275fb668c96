/*
 * Internal interface of `lcmcoord serve` (docs/serve.md), the EM side as a product: the
 * operator's Lua hooks decide whether a VNFC may be replaced, the program does the protocol,
 * persistence, security and operations. The pieces: serve_main.c (options, configuration
 * file, process lifecycle and signals), serve_api.c (the HTTP handler on the shared layer of
 * bindings/em: routing, checks, the life of each coordination), serve_loop.c (the one engine
 * thread: posted work and timers), serve_hooks.c (the hooks' Lua state, each decision a
 * coroutine on the engine thread), serve_metrics.c (/metrics) and serve_store.h (the store).
 */
#ifndef LCMCOORD_SERVE_H
#define LCMCOORD_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "em.h"
#include "lcmcoord/lcmcoord.h"
#include "serve_store.h"

#define SERVE_PROGRAM              "lcmcoord serve"
#define SERVE_DEFAULT_SYNC_BUDGET  1.0
#define SERVE_DEFAULT_MAX_DECISION 10000u
#define SERVE_DEFAULT_CANCEL_GRACE 10.0
#define SERVE_DEFAULT_SHUTDOWN     10.0
#define SERVE_DEFAULT_LEASE_TTL    10.0
#define SERVE_DEFAULT_RETENTION    (7.0 * 86400.0)
#define SERVE_DEFAULT_RETRY_AFTER  1u
#define SERVE_HEARTBEAT_S          1.0
#define SERVE_HOOK_MEMORY          (256u * 1024u * 1024u)

enum serve_exclusive { SERVE_EXCLUSIVE_VNFC, SERVE_EXCLUSIVE_INSTANCE, SERVE_EXCLUSIVE_NONE };

struct serve_options {
    struct em_options http; /* listen address, TLS files, connection limits, --quiet */
    const char *hooks;
    const char *store;
    const char *instance_id;
    double sync_budget;
    unsigned max_decisions;
    enum serve_exclusive exclusive;
    double cancel_grace;
    double shutdown_grace;
    double lease_ttl;
    double retention;
    unsigned retry_after;
    const char *config; /* --config FILE, or NULL */
    /* Who may call (serve_auth.h; docs/serve.md, "Authentication"). */
    const char *users_file, *jwks_file, *jwt_issuer, *jwt_audience, *introspect_url,
        *introspect_credentials_file, *introspect_cacert;
    double jwt_leeway, introspect_timeout, introspect_cache_ttl;
    bool jwt_leeway_set, require_cert_binding;
    bool log_json;                  /* --log-format json (default text, as lcmcoord em) */
    const char *hash_password_user; /* --hash-password USER: print a users-file line, exit */
    char **config_words; /* the configuration file's, which the strings above may point into */
    int config_count;
};
void serve_options_free(struct serve_options *opt);

/* 0, 1 (--help printed) or 2 with a one-line message in err. Strings are borrowed from argv
 * or from the configuration file's text (kept for the process's life). */
int serve_options_parse(struct serve_options *opt, int argc, char **argv, char *err, size_t len);

/* ---- the engine thread (serve_loop.c) ---- */

struct serve_loop;
struct serve_timer;
typedef void (*serve_fn)(void *ud);

struct serve_loop *serve_loop_start(lcmc_engine *engine, char *err, size_t len);
/* Runs fn(ud) on the loop's thread, soon. Thread-safe. False when the loop has stopped. */
bool serve_loop_post(struct serve_loop *loop, serve_fn fn, void *ud);
/* On the loop's thread only: fn(ud) after `seconds`, once; the timer is freed after it ran
 * (fn must forget the handle), or by serve_timer_cancel before. */
struct serve_timer *serve_timer_start(struct serve_loop *loop, double seconds, serve_fn fn,
                                      void *ud);
void serve_timer_cancel(struct serve_loop *loop, struct serve_timer *t);
/* Runs what was posted, then ends the thread. From another thread. */
void serve_loop_stop(struct serve_loop *loop);
double serve_monotonic(void); /* CLOCK_MONOTONIC seconds */

/* ---- the store writer (serve_writer.c): the store's writes off the engine thread ---- */

#define SERVE_WRITER_MAX_THREADS 8

enum serve_write_kind {
    SERVE_W_INSERT_RUNNING,
    SERVE_W_INSERT_DONE,
    SERVE_W_FINISH, /* row.id, row.result, row.lcmcoord_json */
    SERVE_W_DELETE, /* row.id */
    SERVE_W_CALL,   /* call(ud) on a writer thread (the heartbeat), never grouped */
};

/* One write. Everything it points to stays alive until done(ud) has run; done runs on the
 * engine thread and finds the outcome in rc (a serve_store_* code), conflict and err. */
struct serve_write {
    enum serve_write_kind kind;
    struct serve_coord row; /* strings borrowed */
    serve_fn call;
    serve_fn done;
    void *ud;
    int rc;
    char conflict[37];
    char err[512];
    struct serve_write *next;
};

struct serve_writer;
struct serve_writer *serve_writer_start(struct serve_store *st, struct serve_loop *loop,
                                        unsigned threads, char *err, size_t len);
/* On the engine thread. Once the writer has stopped, the write is done at once, in the
 * caller, and done(ud) runs before this returns. */
void serve_writer_submit(struct serve_writer *wr, struct serve_write *w);
/* Does what was submitted, then ends the threads (later writes: in the submitter). */
void serve_writer_stop(struct serve_writer *wr);
void serve_writer_free(struct serve_writer *wr);

/* ---- the hooks (serve_hooks.c); everything on the engine thread ---- */

struct serve_hooks;
struct serve_decision;

enum serve_outcome_kind {
    SERVE_OUT_CONTINUE,
    SERVE_OUT_ABORT,
    SERVE_OUT_BUSY,
    SERVE_OUT_ERROR,     /* a Lua error or a malformed result: ABORT with it as the detail */
    SERVE_OUT_CANCELLED, /* aborted past the cancel grace, or stopped */
};

struct serve_outcome {
    enum serve_outcome_kind kind;
    double busy_seconds;
    json_t *error;    /* ABORT's ProblemDetails (owned) or NULL */
    json_t *warnings; /* CONTINUE's warnings (owned) or NULL */
    json_t *output;   /* outputParams (owned) or NULL */
    char *message;    /* ERROR: what went wrong, one line (owned) */
};
void serve_outcome_clear(struct serve_outcome *o);

/* Loads the hooks file into a fresh Lua state; NULL with one line in err. file is kept. */
struct serve_hooks *serve_hooks_load(const char *file, char *err, size_t len);
/* The engine of the hooks' state: the engine thread turns its loop. */
lcmc_engine *serve_hooks_engine(struct serve_hooks *h);
void serve_hooks_attach(struct serve_hooks *h, struct serve_loop *loop);
/* On the engine thread: runs the file again in the same state, as a task (so the CPU bound of
 * decisions applies: a file that loops forever fails instead of holding the engine); new
 * decisions use its decide. done(ud, NULL) then, or done(ud, one line) with the old decide
 * kept; never called when the state is released first. */
typedef void (*serve_reloaded_fn)(void *ud, const char *error);
void serve_hooks_reload(struct serve_hooks *h, serve_reloaded_fn done, void *ud);
/* Closes the state (after the engine thread has stopped). */
void serve_hooks_release(struct serve_hooks *h);

typedef void (*serve_decided_fn)(void *ud, struct serve_outcome *out);
/* Starts decide(req, ctx) as a coroutine; done runs once, on the engine thread, with the
 * outcome (taken by it), possibly before this returns. *handle is the decision while it
 * runs, NULL once it has ended. */
void serve_decision_start(struct serve_hooks *h, const char *id, const json_t *req,
                          serve_decided_fn done, void *ud, struct serve_decision **handle);
/* ctx:cancelled() becomes true; the coroutine goes on. */
void serve_decision_cancel(struct serve_decision *d);
/* Ends the coroutine where it waits (its timers cancelled): done runs with CANCELLED. */
void serve_decision_abort(struct serve_decision *d);

/* ---- the server (serve_api.c) ---- */

struct serve_auth;

struct serve {
    struct serve_options opt;
    struct serve_store *store;
    struct serve_loop *loop;
    struct serve_writer *writer; /* the store's writes, off the engine thread */
    struct serve_hooks *hooks;   /* the current ones (engine thread) */
    struct serve_auth *auth;     /* NULL: no authentication configured */
    struct em_http *http;
    char base_url[EM_BASE_URL_MAX];
    atomic_bool stopping;
    atomic_uint in_flight; /* decisions not finished, local */
    /* The exclusive keys of this instance's decisions in flight (under keys_mu). */
    pthread_mutex_t keys_mu;
    struct serve_key *keys;
    /* Decisions in flight, by id (engine thread only). */
    struct serve_coordination *running;
};

int serve_start(struct serve *s, const struct em_tls_files *tls, char *err, size_t len);
/* SIGTERM: stop accepting, give decisions the grace, store the rest as ABORT, stop. */
void serve_shutdown(struct serve *s);
/* SIGHUP: new decisions use the new hooks; a broken file keeps the old ones (logged). */
void serve_reload(struct serve *s);

/* The request checks serve adds to the EM's (fuzzed: tests/fuzz/fuzz_serve_request.c). */
bool serve_accept_ok(const char *accept); /* Accept admits application/json */
int serve_check_vnfcs(const json_t *req, char *detail, size_t len);
/* vnfInstanceId (+ "/" + each VNFC); NULL-terminated, NULL with --exclusive none. */
char **serve_exclusive_keys(enum serve_exclusive mode, const json_t *req);
void serve_free_keys(char **keys);

/* The log on stderr (unless --quiet): one JSON object per line with --log-format json, else
 * one text line "lcmcoord serve: EVENT key=value ...". Takes fields (a reference). */
void serve_log(json_t *fields);

/* ---- metrics (serve_metrics.c) ---- */

enum serve_metric_result { SERVE_M_CONTINUE, SERVE_M_ABORT, SERVE_M_CANCELLED, SERVE_M_RESULTS };

void serve_metrics_decided(enum serve_metric_result r, double seconds);
void serve_metrics_unavailable(void); /* a 503 */
void serve_metrics_auth_failure(void);
void serve_metrics_request(void);
char *serve_metrics_text(unsigned in_flight);

#endif
