/*
 * A scripted transport and a fake clock at the engine's seam (runtime/src/engine.h), for
 * the test_flow_* suites: the runtime's state machines (coordinations, calls, tokens,
 * the transfer queue) run unchanged, but each request they hand over is answered from a
 * script of expected requests, and time moves only when the engine would sleep, straight
 * to the next thing due. A whole coordination with an hour of waits runs in microseconds,
 * the same way every time, and every request it made can be looked at afterwards.
 */
#ifndef LCMC_FLOW_FAKE_H
#define LCMC_FLOW_FAKE_H

#include <stddef.h>

#include "engine.h"

/* The fake clock starts here (monotonic seconds) and at this wall-clock time (2027-01-15
 * 08:00:00 UTC, so that HTTP-dates in a test can be written out). */
#define FAKE_T0   1000.0
#define FAKE_WALL 1800000000.0
/* How long the scripted EM's usual answers take: a binary fraction, so that times in the
 * record come out exact. */
#define FAKE_ANSWER_TIME 0.25

/* How the scripted peer answers one request. */
typedef struct fake_answer {
    double after; /* seconds after the request is handed over; INFINITY: never */
    long status;
    const char *body;
    const char *content_type;
    const char *location;
    const char *retry_after; /* the header's text as the EM sends it; NULL: none */
    /* A transport failure instead of an answer (CURLE_OK: an answer). */
    CURLcode failure;
    /* The request never left (the connection never opened): lcmc__transfer_request_started
     * stays 0 and the result says nothing was sent. */
    int never_sent;
} fake_answer;

/* A request the runtime handed over, kept for the test to look at. */
typedef struct fake_request {
    char *method;
    char *url;
    char *body; /* NULL: none */
    char *bearer_token;
    char *basic_user;
    double handed_at; /* fake monotonic seconds */
    double deadline;  /* the transfer's deadline (libcurl's timeout ends there) */
    double due;       /* when the answer comes */
    int outcome;      /* 0: pending, 1: answered, 2: abandoned by the runtime */
    double ended_at;
    lcmc_transfer *transfer;
    fake_answer answer;
} fake_request;

typedef struct fake_expectation {
    const char *method;
    const char *path; /* the URL must end with it */
    fake_answer answer;
} fake_expectation;

#define FAKE_MAX_REQUESTS     64
#define FAKE_MAX_EXPECTATIONS 64

typedef struct fake {
    lcmc_engine *engine;
    lcmc_client *client;
    double now;
    fake_request requests[FAKE_MAX_REQUESTS];
    size_t request_count;
    fake_expectation expected[FAKE_MAX_EXPECTATIONS];
    size_t expected_count, expected_next;
    lcmc_clock clock;
} fake;

/* An engine with the fake transport and clock, and a client of http://em.test:8080 with
 * `options` (NULL: defaults; endpoint is filled in when unset). */
fake *fake_new(const lcmc_client_options *options);
void fake_free(fake *f);

/* The next request must be `method` to a URL ending in `path`; it gets `answer`. */
void fake_expect(fake *f, const char *method, const char *path, fake_answer answer);
/* Every expected request was made. */
void fake_assert_all_used(const fake *f);

/* Answers for the common cases. */
fake_answer fake_status(long status, double after);
fake_answer fake_lcmcoord(long status, const char *id, const char *result);
fake_answer fake_accepted(const char *location, const char *retry_after);
fake_answer fake_busy(long status, const char *retry_after);
fake_answer fake_failure(CURLcode code, int never_sent, double after);

/* The i-th request the runtime made (asserts there is one). */
const fake_request *fake_nth(const fake *f, size_t i);
/* Seconds since the test began (fake time). */
double fake_elapsed(const fake *f);

/* Turns the engine's loop until the i-th request (from 0) was handed over, or until it
 * ended (answered or abandoned). */
void fake_run_until_handed(fake *f, size_t i);
void fake_run_until_ended(fake *f, size_t i);
/* Turns the engine's loop for `seconds` of fake time (lcmc_engine_sleep). */
void fake_run_for(fake *f, double seconds);

/* A valid LcmCoordRequest. */
extern const char *const FAKE_REQUEST_JSON;

/* Runs a coordination to its end: its status (the coordination is kept in *out). */
lcmc_status fake_coordinate(fake *f, double timeout, lcmc_coordination **out);

#endif
