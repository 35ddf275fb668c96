/*
 * The counters of `lcmcoord serve` and their Prometheus text exposition (GET /metrics,
 * format 0.0.4): coordinations decided by result, a histogram of decision durations, the
 * decisions in flight, 503 answers, authentication failures and requests. Atomics only: every
 * HTTP worker and the engine thread count without a lock.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "serve.h"

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                1,     2.5,  5,     10,   30,  60,   300};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

static atomic_ulong decided[SERVE_M_RESULTS];
static atomic_ulong buckets[NBOUNDS];
static atomic_ulong duration_count;
static atomic_ullong duration_micros;
static atomic_ulong unavailable_total, auth_failures, requests;

void serve_metrics_decided(enum serve_metric_result r, double seconds)
{
    atomic_fetch_add(&decided[r], 1);
    for (size_t i = 0; i < NBOUNDS; i++)
        if (seconds <= bounds[i])
            atomic_fetch_add(&buckets[i], 1);
    atomic_fetch_add(&duration_count, 1);
    atomic_fetch_add(&duration_micros, (unsigned long long)(seconds * 1e6));
}

void serve_metrics_unavailable(void)
{
    atomic_fetch_add(&unavailable_total, 1);
}

void serve_metrics_auth_failure(void)
{
    atomic_fetch_add(&auth_failures, 1);
}

void serve_metrics_request(void)
{
    atomic_fetch_add(&requests, 1);
}

char *serve_metrics_text(unsigned in_flight)
{
    static const char *const names[] = {"CONTINUE", "ABORT", "CANCELLED"};
    size_t cap = 4096, n = 0;
    char *out = em_xmalloc(cap);
#define ADD(...) n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__)
    ADD("# HELP lcmcoord_serve_coordinations_total Coordinations decided, by result.\n"
        "# TYPE lcmcoord_serve_coordinations_total counter\n");
    for (int r = 0; r < SERVE_M_RESULTS; r++)
        ADD("lcmcoord_serve_coordinations_total{result=\"%s\"} %lu\n", names[r],
            atomic_load(&decided[r]));
    ADD("# HELP lcmcoord_serve_decision_seconds How long decisions took.\n"
        "# TYPE lcmcoord_serve_decision_seconds histogram\n");
    for (size_t i = 0; i < NBOUNDS; i++)
        ADD("lcmcoord_serve_decision_seconds_bucket{le=\"%g\"} %lu\n", bounds[i],
            atomic_load(&buckets[i]));
    unsigned long count = atomic_load(&duration_count);
    ADD("lcmcoord_serve_decision_seconds_bucket{le=\"+Inf\"} %lu\n", count);
    ADD("lcmcoord_serve_decision_seconds_sum %.6f\n", (double)atomic_load(&duration_micros) / 1e6);
    ADD("lcmcoord_serve_decision_seconds_count %lu\n", count);
    ADD("# HELP lcmcoord_serve_decisions_in_flight Decisions running on this instance.\n"
        "# TYPE lcmcoord_serve_decisions_in_flight gauge\n"
        "lcmcoord_serve_decisions_in_flight %u\n",
        in_flight);
    ADD("# HELP lcmcoord_serve_unavailable_total Answers 503 (busy, limits, store).\n"
        "# TYPE lcmcoord_serve_unavailable_total counter\n"
        "lcmcoord_serve_unavailable_total %lu\n",
        atomic_load(&unavailable_total));
    ADD("# HELP lcmcoord_serve_auth_failures_total Requests refused for their credentials.\n"
        "# TYPE lcmcoord_serve_auth_failures_total counter\n"
        "lcmcoord_serve_auth_failures_total %lu\n",
        atomic_load(&auth_failures));
    ADD("# HELP lcmcoord_serve_requests_total HTTP requests received.\n"
        "# TYPE lcmcoord_serve_requests_total counter\n"
        "lcmcoord_serve_requests_total %lu\n",
        atomic_load(&requests));
#undef ADD
    return out;
}
