/*
 * The engine's own struct, shared by the files that drive it (engine.c, transfer.c,
 * record.c). Nothing outside the runtime sees it.
 */
#ifndef LCMCOORD_ENGINE_H
#define LCMCOORD_ENGINE_H

#include <pthread.h>
#include <signal.h>

#include "internal.h"

struct lcmc_engine {
    CURLM *multi;
    lcmc_timer **heap;
    size_t heap_length, heap_allocated;
    lcmc_op *ops;
    size_t transfers_running;
    /* At most this many transfers are active (own an easy handle, sit in libcurl's lists);
     * the rest wait in a queue, so ten thousand coordinations cost little and libcurl's
     * per-turn work stays bounded. */
    size_t max_active_transfers;
    long max_host_connections;
    struct lcmc_transfer *queue_head, *queue_tail;
    /* Easy handles kept after use: they hold libcurl's DNS and TLS session caches, and
     * reusing them spares an allocation per request. */
    CURL **idle_easy;
    size_t idle_count, idle_allocated;

    int wake_pipe[2];
    volatile sig_atomic_t interrupt_flag;
    int interrupt_handled;

    lcmc_trace_fn *trace_fn;
    void *trace_userdata;

    lcmc_log_fn *log_fn;
    void *log_userdata;
    lcmc_log_level log_max;
    char proxy_logged[512]; /* the "proxy origin" pairs logged (transfer.c): once each */

    lcmc_error last_error;

    struct lcmc_record_entry **records;
    size_t record_count, record_allocated;
    struct lcmc_rejection *rejections;
    size_t rejection_count, rejection_allocated;
    unsigned long next_client_serial;

    struct lcmc_token_entry *tokens; /* the OAuth 2.0 token cache (token.c) */
    unsigned long token_requests;
    char **warned; /* what was warned about once already (origins over plain http) */
    unsigned long long random_state;
    size_t warned_count;
};

/* Logs a warning once per engine for a given key (e.g. an origin). */
void lcmc__warn_once(lcmc_engine *engine, const char *key, const char *fmt, ...) LCMC_PRINTF(3, 4);

/* Starts queued transfers while there is room among the active ones. */
void lcmc__transfers_pump(lcmc_engine *engine);
/* Completes every transfer libcurl reports finished (engine loop only). */
void lcmc__transfers_collect(lcmc_engine *engine);
void lcmc__records_free(lcmc_engine *engine);

#endif
