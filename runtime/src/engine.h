/*
 * What the runtime's files may ask of the engine besides timers and operations
 * (internal.h): the state each module keeps per engine, sockets watched by the engine's
 * loop, waiting in that loop, and the transport seam. The engine's struct itself is known
 * to engine.c alone; every other file goes through these functions.
 */
#ifndef LCMCOORD_ENGINE_H
#define LCMCOORD_ENGINE_H

#include "internal.h"

/* ---- per-module state ------------------------------------------------------------------ */

/* Each module defines its own struct and makes it with the engine (lcmc_engine_new): the
 * engine carries them without knowing what is inside. */
struct lcmc_transfers;   /* transfer.c: the transport, the queue, the active count */
struct lcmc_records;     /* record.c: the coordinations and rejections of the run */
struct lcmc_token_cache; /* token.c: the OAuth 2.0 tokens of every client */

struct lcmc_transfers *lcmc__engine_transfers(const lcmc_engine *engine);
struct lcmc_records *lcmc__engine_records(const lcmc_engine *engine);
struct lcmc_token_cache *lcmc__engine_tokens(const lcmc_engine *engine);

int lcmc__transfers_new(lcmc_engine *engine, struct lcmc_transfers **out);
void lcmc__transfers_free(struct lcmc_transfers *transfers);
int lcmc__records_new(struct lcmc_records **out);
void lcmc__records_free(struct lcmc_records *records);
int lcmc__tokens_new(struct lcmc_token_cache **out);
/* Ends the token fetches in flight (they are transfers) and wipes every token. */
void lcmc__tokens_free(struct lcmc_token_cache *tokens);

/* The per-host connection limit of the transport and the active transfers it allows. */
void lcmc__transfers_set_max_host_connections(struct lcmc_transfers *transfers, long max);
/* Transfers handed to the transport and not finished yet (queued ones not counted). */
size_t lcmc__transfers_running(const struct lcmc_transfers *transfers);
/* Sleeps at most `timeout` seconds in the transport until an answer, one of `fds` or the
 * time comes, then completes the transfers that finished. */
lcmc_status lcmc__transfers_wait(struct lcmc_transfers *transfers, double timeout,
                                 struct curl_waitfd *fds, unsigned fd_count);

/* ---- tracing ----------------------------------------------------------------------------- */

int lcmc__trace_enabled(const lcmc_engine *engine);
void lcmc__trace(lcmc_engine *engine, lcmc_trace_kind kind, const char *data, size_t length);

/* Logs a warning once per engine for a given key (e.g. an origin). */
void lcmc__warn_once(lcmc_engine *engine, const char *key, const char *fmt, ...) LCMC_PRINTF(3, 4);
/* Replaces the engine's last error with err (err is left empty). */
void lcmc__engine_take_error(lcmc_engine *engine, lcmc_error *err);

/* ---- sockets watched by the loop ------------------------------------------------------- */

/* A socket the engine's loop waits on besides libcurl's own (an SSH session's): `ready`
 * is called from the loop with the events that came (CURL_WAIT_POLLIN/POLLOUT/POLLPRI). */
typedef struct lcmc_watch lcmc_watch;
typedef void lcmc_watch_fn(lcmc_watch *watch, short revents);
struct lcmc_watch {
    int fd;
    short events;
    lcmc_watch_fn *ready;
    void *owner;
    lcmc_watch *prev, *next;
    int added;
};

void lcmc__watch_init(lcmc_watch *watch, int fd, short events, lcmc_watch_fn *ready, void *owner);
/* -1 when out of memory. */
int lcmc__watch_add(lcmc_engine *engine, lcmc_watch *watch);
void lcmc__watch_remove(lcmc_engine *engine, lcmc_watch *watch);

/* Whether the engine was interrupted again after its first interrupt (lcmc_engine_interrupt
 * called twice since the last reset): ops then stop the waits that ending began. */
int lcmc__engine_interrupted_again(const lcmc_engine *engine);

/* Runs the loop until *done becomes non-zero: LCMC_OK; LCMC_ECANCELLED when the engine is
 * interrupted first. Whatever else is in flight on the engine makes progress meanwhile. */
lcmc_status lcmc__engine_run_until(lcmc_engine *engine, const int *done);
/* Waits in the loop until `fd` is ready for `events` (CURL_WAIT_POLL*) or `until`
 * (monotonic seconds) comes: LCMC_OK, or LCMC_ECANCELLED when interrupted, LCMC_ENOMEM. */
lcmc_status lcmc__engine_wait_fd(lcmc_engine *engine, int fd, short events, double until);

/* ---- the transport seam ------------------------------------------------------------------ */

/* Where a request leaves the runtime and its answer comes back. The engine's own transport
 * is libcurl's multi interface (transfer.c); the unit tests put a scripted one with a fake
 * clock in its place, so that every state machine above runs without a network or a
 * process. The transfer queue, the credentials, the results and everything that reacts to
 * them stay the real code. */
typedef struct lcmc_transport {
    /* Takes over the request of a transfer that became active: 0; -1 when memory ran out,
     * 1 when the transport refused it (nothing was reported either way: the caller fails
     * the transfer from the loop). */
    int (*send)(void *ctx, lcmc_transfer *transfer, const lcmc_transfer_spec *spec);
    /* Forgets a transfer given up before its answer came. */
    void (*abandon)(void *ctx, lcmc_transfer *transfer);
    /* As lcmc__transfers_wait; answers are handed back with lcmc__transfer_answered. */
    lcmc_status (*wait)(void *ctx, double timeout, struct curl_waitfd *fds, unsigned fd_count);
    /* Sets the per-host connection limit (may be NULL). */
    void (*set_max_host_connections)(void *ctx, long max);
    void (*free)(void *ctx);
} lcmc_transport;

/* Replaces the engine's transport (the old one is freed). Only while nothing is in flight. */
void lcmc__engine_use_transport(lcmc_engine *engine, const lcmc_transport *transport, void *ctx);
/* The request of the transfer is going out: from now on the peer may have it. */
void lcmc__transfer_sending(lcmc_transfer *transfer);
/* The answer (or failure) of an active transfer: `result` is moved into it (zeroed), then
 * the transfer's owner is called back. NULL: the transport filled the result in place. */
void lcmc__transfer_answered(lcmc_transfer *transfer, lcmc_transfer_result *result);

/* A clock in place of the system's (NULL: the system's again): monotonic seconds for
 * deadlines and waits, and seconds since the epoch for records. For the unit tests. */
typedef struct lcmc_clock {
    double (*monotonic)(void *ctx);
    double (*wall)(void *ctx);
    void *ctx;
} lcmc_clock;
void lcmc__use_clock(const lcmc_clock *clock);

#endif
