/*
 * liblcmcoord: the C core of lcmcoord, a client for the ETSI NFV-SOL 002 VNF LCM
 * Coordination API. An engine (one libcurl multi handle and a timer queue) drives any
 * number of coordinations at once; a client holds what is fixed for one EM (endpoint,
 * authentication, TLS, waits); a coordination is one POST with its retries and polls under
 * one wall-clock deadline. Blocking calls are "submit one, run the engine until it is done".
 *
 * Conventions: functions return an lcmc_status (LCMC_OK is 0); what a *_new or *_start
 * returns the caller frees with the matching *_free (which accepts NULL); getters return
 * borrowed pointers valid until the object is freed; the detail of a failure lives on the
 * object that failed (lcmc_coordination_error, lcmc_response_error) or, for constructors,
 * on the engine (lcmc_engine_last_error). Every string is UTF-8 and NUL-terminated. No
 * function here is thread-safe on the same engine, except lcmc_engine_interrupt,
 * lcmc_engine_post and lcmc_engine_stop.
 */
#ifndef LCMCOORD_LCMCOORD_H
#define LCMCOORD_LCMCOORD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LCMC_API __attribute__((visibility("default")))
#else
#define LCMC_API
#endif

#define LCMC_VERSION_STRING "0.1.0"

/* What went wrong. The names (lcmc_status_name) are the `kind` seen by Lua scripts. */
typedef enum lcmc_status {
    LCMC_OK = 0,
    LCMC_EUSAGE,     /* "usage": the caller passed something invalid (option, argument) */
    LCMC_EINVALID,   /* "invalid_request": the LcmCoordRequest failed validation; nothing sent */
    LCMC_ETRANSPORT, /* "transport": DNS, connect, reset, a request that ran out of time */
    LCMC_ETLS,       /* "tls": handshake, certificate verification, client certificate */
    LCMC_EAUTH,      /* "auth": credentials refused (401) or unusable */
    LCMC_EHTTP,      /* "http": the EM answered an error status (see lcmc_error_http_status) */
    LCMC_EPROTOCOL,  /* "protocol": an answer that breaks the protocol (bad body, no Location) */
    LCMC_EDEADLINE,  /* "deadline": the coordination's wall-clock deadline passed */
    LCMC_ECANCELLED, /* "cancelled": cancelled locally (lcmc_engine_interrupt, *_abort) */
    LCMC_ENOMEM,     /* "nomem": out of memory */
} lcmc_status;

/* A short English description of a status, e.g. "deadline exceeded". Never NULL. */
LCMC_API const char *lcmc_strerror(lcmc_status status);
/* The status as a stable identifier, e.g. "deadline". Never NULL. */
LCMC_API const char *lcmc_status_name(lcmc_status status);

/* Frees memory the library handed over (the JSON of lcmc_client_record_json). */
LCMC_API void lcmc_free(void *ptr);

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                               */

/* The detail of one failure. Owned by the object it was read from. */
typedef struct lcmc_error lcmc_error;

LCMC_API lcmc_status lcmc_error_status(const lcmc_error *err);
/* One line, e.g. "EM answered 409 Conflict: VNFC still draining (POST
 * /lcmcoord/v1/coordinations)". Never contains credentials. */
LCMC_API const char *lcmc_error_message(const lcmc_error *err);
/* The HTTP status of the answer that failed, or 0 when none was received. */
LCMC_API int lcmc_error_http_status(const lcmc_error *err);
/* The ProblemDetails object of that answer as JSON text, or NULL when the body was not one. */
LCMC_API const char *lcmc_error_problem_json(const lcmc_error *err);
/* The method and URL of the request that failed, or NULL when no request was involved. */
LCMC_API const char *lcmc_error_method(const lcmc_error *err);
LCMC_API const char *lcmc_error_url(const lcmc_error *err);

/* ------------------------------------------------------------------------------------ */
/* Engine                                                                               */

typedef struct lcmc_engine lcmc_engine;

typedef enum lcmc_log_level {
    LCMC_LOG_ERROR = 0,
    LCMC_LOG_WARN = 1,
    LCMC_LOG_INFO = 2,  /* each request and each wait, with the reason ("-v") */
    LCMC_LOG_DEBUG = 3, /* more detail on each step ("-vv") */
} lcmc_log_level;

/* Receives the engine's progress messages, one line each, without a newline. Messages
 * never contain credentials. */
typedef void lcmc_log_fn(void *userdata, lcmc_log_level level, const char *message);

/* What an event is about (lcmc_event.type); lcmc_event_name gives the stable name
 * ("request", ...) a log collector files it under. New types may be added. */
typedef enum lcmc_event_type {
    LCMC_EVENT_MESSAGE = 0, /* "message": a line given to lcmc_engine_log (a script's) */
    LCMC_EVENT_REQUEST,     /* "request": a request goes out (method, url) */
    LCMC_EVENT_RESPONSE,    /* "response": its answer (method, url, status, elapsed) */
    LCMC_EVENT_WAIT,        /* "wait": a coordination waits before it polls or sends again */
    LCMC_EVENT_RETRY,       /* "retry": a single request's retry policy sends it again */
    LCMC_EVENT_RESULT,      /* "result": a coordination ended with the EM's result */
    LCMC_EVENT_FAILED,      /* "failed": a coordination ended without a result */
    LCMC_EVENT_CANCEL,      /* "cancel": the EM is asked to cancel, and what it answered */
    LCMC_EVENT_TOKEN,       /* "token": an access token asked for, received or refused */
    LCMC_EVENT_CREDENTIALS, /* "credentials": a request goes without them (other origin) */
    LCMC_EVENT_PROXY,       /* "proxy": a proxy from the environment is used */
    LCMC_EVENT_INTERRUPT,   /* "interrupt": lcmc_engine_interrupt reached the loop */
    LCMC_EVENT_WARNING,     /* "warning": plain http, TLS off, a misspelt field... */
    LCMC_EVENT_SSH,         /* "ssh": SSH progress (lcmcoord/ssh.h) */
    LCMC_EVENT_NOTE,        /* "note": any other line of the runtime's, message only */
} lcmc_event_type;

/* One event, as fields (docs/c-api.md "Log events" lists which each type fills). Strings
 * are borrowed for the duration of the callback and made of what the runtime knows: URLs
 * never carry credentials (they are refused or removed before any request), and nothing
 * holds a password, secret or token. Text that came from the peer (`message` quoting an
 * EM's ProblemDetails) is as the peer sent it: render it safely. Absent fields are NULL,
 * 0 (status, attempt) or negative (seconds). Fields may be added at the end. */
typedef struct lcmc_event {
    lcmc_event_type type;
    lcmc_log_level level;
    const char *message; /* the one line lcmc_log_fn receives for it, without a newline */
    const char *method;
    const char *url;
    int status;                  /* HTTP status of the answer this event is about */
    double elapsed;              /* seconds the answer took */
    double wait;                 /* seconds until the next attempt (or the bounded grace) */
    double wait_asked;           /* the wait the EM asked for, when the deadline cut it to `wait` */
    const char *reason;          /* a stable word saying why, per type (docs/c-api.md) */
    double time_left;            /* seconds left before the coordination's deadline */
    const char *coordination_id; /* once the EM gave one */
    const char *action;          /* the coordinationActionName of the coordination */
    int attempt;                 /* 1 for the first try */
    const char *error_kind;      /* lcmc_status_name of the failure ("http", "transport") */
    const char *result;          /* "CONTINUE", "ABORT", "CANCELLED" */
} lcmc_event;

typedef void lcmc_event_fn(void *userdata, const lcmc_event *event);

/* "request", "response", ...; "message" for an unknown type. Never NULL. */
LCMC_API const char *lcmc_event_name(lcmc_event_type type);

LCMC_API lcmc_status lcmc_engine_new(lcmc_engine **out);
/* Frees the engine; every client, coordination and response made on it must be freed first. */
LCMC_API void lcmc_engine_free(lcmc_engine *engine);
/* Messages up to `max_level` go to `fn`; NULL turns logging off (the default). Replaces any
 * lcmc_engine_set_events callback: `fn` receives each event's `message`. */
LCMC_API void lcmc_engine_set_log(lcmc_engine *engine, lcmc_log_fn *fn, void *userdata,
                                  lcmc_log_level max_level);
/* Events up to `max_level` go to `fn`, with their fields; NULL turns them off. Replaces any
 * lcmc_engine_set_log callback (one receiver per engine). */
LCMC_API void lcmc_engine_set_events(lcmc_engine *engine, lcmc_event_fn *fn, void *userdata,
                                     lcmc_log_level max_level);
/* What a trace callback receives: one piece of an HTTP exchange as it crosses the wire. */
typedef enum lcmc_trace_kind {
    LCMC_TRACE_INFO = 0,         /* a note from libcurl (connecting, reusing a connection) */
    LCMC_TRACE_REQUEST_HEADERS,  /* the request line and headers, as sent */
    LCMC_TRACE_REQUEST_BODY,     /* (part of) the request body */
    LCMC_TRACE_RESPONSE_HEADERS, /* one status or header line of the answer */
    LCMC_TRACE_RESPONSE_BODY,    /* (part of) the answer's body */
} lcmc_trace_kind;

/* Receives every exchange on the engine, for debugging. Credentials are already redacted:
 * Authorization header values, token requests' bodies and token answers' bodies never
 * reach it. `data` is not NUL-terminated. */
typedef void lcmc_trace_fn(void *userdata, lcmc_trace_kind kind, const char *data, size_t length);

/* Turns tracing on (fn) or off (NULL). Costs nothing while off. */
LCMC_API void lcmc_engine_set_trace(lcmc_engine *engine, lcmc_trace_fn *fn, void *userdata);
/* How many connections the engine keeps open to one host at most (0: libcurl's default). */
LCMC_API lcmc_status lcmc_engine_set_max_host_connections(lcmc_engine *engine, long max);
LCMC_API long lcmc_engine_max_host_connections(const lcmc_engine *engine);
/* Async-signal-safe: every coordination and request in flight is cancelled (the EM is asked
 * to cancel coordinations that have an id, briefly; a coordination whose POST is out first
 * waits at most 5 s for its answer, to learn that id) and finishes with LCMC_ECANCELLED. The
 * blocking call in progress returns promptly. Called again (a second Ctrl-C), it also ends
 * those short waits for the EM's answers at once. Stays in effect until
 * lcmc_engine_reset_interrupt. */
LCMC_API void lcmc_engine_interrupt(lcmc_engine *engine);
LCMC_API int lcmc_engine_interrupted(const lcmc_engine *engine);
LCMC_API void lcmc_engine_reset_interrupt(lcmc_engine *engine);
/* Runs the engine until every coordination and request started on it has finished. */
LCMC_API lcmc_status lcmc_engine_run(lcmc_engine *engine);

/* ---- Running the engine from callbacks (an event-driven program, a server) ----------
 * Callbacks of this section (posted functions, timers, lcmc_request_start's) run on the
 * thread that turns the engine's loop (lcmc_engine_serve, lcmc_engine_run, or any blocking
 * call), at the start or the end of a turn, never from inside another callback. So they may
 * call any function of the engine: start or cancel operations, or even a blocking one
 * (which then turns the loop itself, running other callbacks meanwhile). */

/* Thread-safe (not async-signal-safe): `fn(userdata)` runs soon on the engine's thread,
 * from its loop, which is woken if it waits. Functions posted from one thread run in the
 * order they were posted. A posted function that has not run when the engine is freed is
 * dropped. LCMC_ENOMEM when the node cannot be allocated. */
LCMC_API lcmc_status lcmc_engine_post(lcmc_engine *engine, void (*fn)(void *userdata),
                                      void *userdata);
/* Runs the loop until lcmc_engine_stop, even while nothing is in flight (waiting costs no
 * CPU). An interrupt cancels what is in flight but does not end it. Returns LCMC_OK once
 * stopped; a stop that came before the call ends it at once. */
LCMC_API lcmc_status lcmc_engine_serve(lcmc_engine *engine);
/* Thread-safe and async-signal-safe: makes lcmc_engine_serve return after the turn in
 * progress (callbacks in flight keep their operations; nothing is cancelled). */
LCMC_API void lcmc_engine_stop(lcmc_engine *engine);

/* A timer: once `seconds` (0 to 1e7) have passed, `fn(userdata, LCMC_OK)` runs from the
 * loop; `fn(userdata, LCMC_ECANCELLED)` instead when lcmc_engine_interrupt comes first (or
 * came before), exactly as lcmc_engine_sleep ends. The handle (may be NULL when not wanted)
 * is valid until `fn` starts or lcmc_timer_cancel; lcmc_engine_run waits for timers. */
typedef struct lcmc_timer_handle lcmc_timer_handle;
typedef void lcmc_timer_done_fn(void *userdata, lcmc_status status);
LCMC_API lcmc_status lcmc_timer_start(lcmc_engine *engine, double seconds, lcmc_timer_done_fn *fn,
                                      void *userdata, lcmc_timer_handle **out);
/* Stops it: `fn` is never called. Only before `fn` was called; accepts NULL. */
LCMC_API void lcmc_timer_cancel(lcmc_timer_handle *timer);

/* The record (see lcmc_client_record_json) of every coordination run on this engine, by any
 * client, including clients already freed. Free with lcmc_free. */
LCMC_API lcmc_status lcmc_engine_record_json(const lcmc_engine *engine, char **out);
/* The detail of the last constructor that failed on this engine (lcmc_client_new...). */
LCMC_API const lcmc_error *lcmc_engine_last_error(const lcmc_engine *engine);

/* ------------------------------------------------------------------------------------ */
/* Client: what is fixed for one EM                                                     */

typedef struct lcmc_client lcmc_client;

/* TLS settings for the API and the token endpoint. Paths are read when the client is made. */
typedef struct lcmc_tls_options {
    const char *cacert;       /* CA bundle file (PEM); NULL: the system's */
    const char *capath;       /* CA directory (hashed); NULL: the system's */
    const char *cert;         /* client certificate (PEM), for mutual TLS */
    const char *key;          /* its private key (PEM) */
    const char *key_password; /* passphrase of an encrypted key */
    int insecure;             /* 1 turns peer and host name verification off (warned) */
} lcmc_tls_options;

#define LCMC_CLIENT_OPTIONS_VERSION 1

typedef struct lcmc_client_options {
    unsigned int version; /* LCMC_CLIENT_OPTIONS_VERSION */
    /* The EM's apiRoot, e.g. "https://em.example:6789" (a path prefix is kept). Required. */
    const char *endpoint;
    /* The `authentication` structure of additionalParams, as JSON text; NULL: none. */
    const char *authentication_json;
    /* The Version header sent on every request; NULL: "1.0.0". */
    const char *api_version;
    /* The default deadline of a coordination, seconds; 0: 3600. */
    double timeout;
    /* The shortest wait between two attempts, whatever Retry-After says, seconds; 0: 1. */
    double wait_floor;
    /* The wait when an answer carries no Retry-After, seconds; 0: 5. */
    double default_interval;
    /* The largest response body accepted, bytes; 0: 1 MiB. */
    size_t max_body;
    lcmc_tls_options tls;
    /* OAUTH2_CLIENT_CREDENTIALS: 1 sends client_id and client_secret in the token request's
     * form body (client_secret_post) instead of HTTP Basic (client_secret_basic, default). */
    int oauth2_secret_in_body;
    /* A token is renewed this many seconds before its expires_in runs out (never earlier
     * than half its lifetime); 0: 30. */
    double token_refresh_margin;
    /* 1 follows a Location that points to another origin, without credentials; 0 (default)
     * refuses it with an error when the client has credentials. */
    int allow_cross_origin;
} lcmc_client_options;

/* Every field listed, so that -Wextra (missing-field-initializers) stays quiet in users'
 * code. */
#define LCMC_CLIENT_OPTIONS_INIT                                                                   \
    {                                                                                              \
        LCMC_CLIENT_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, {0}, 0, 0, 0                    \
    }

/* Makes a client. On failure *out is NULL and the detail is lcmc_engine_last_error(). */
LCMC_API lcmc_status lcmc_client_new(lcmc_client **out, lcmc_engine *engine,
                                     const lcmc_client_options *options);
/* Frees the client; its coordinations and responses must be freed first. */
LCMC_API void lcmc_client_free(lcmc_client *client);
LCMC_API const char *lcmc_client_endpoint(const lcmc_client *client);

/* The record a VNFM keeps of this client's coordinations, as JSON text:
 * {"lcmCoordinations": [{id, coordinationActionName, coordinationResult, startTime, endTime,
 * endpointType, delay?}...], "rejectedLcmCoordinations": [{coordinationActionName,
 * rejectionTime, endpointType, delay}...]}. Times are RFC 3339 UTC. Free with lcmc_free. */
LCMC_API lcmc_status lcmc_client_record_json(const lcmc_client *client, char **out);

/* ------------------------------------------------------------------------------------ */
/* Coordinations                                                                        */

typedef struct lcmc_coordination lcmc_coordination;

typedef enum lcmc_result {
    LCMC_RESULT_NONE = 0, /* no valid LcmCoord (yet) */
    LCMC_RESULT_CONTINUE,
    LCMC_RESULT_ABORT,
    LCMC_RESULT_CANCELLED,
} lcmc_result;

/* Starts one coordination: `request_json` is an LcmCoordRequest (JSON object text);
 * `timeout` is its wall-clock deadline in seconds from now (<= 0: the client's). The request
 * is validated first: a failure still yields a coordination, already finished with
 * LCMC_EINVALID. Only LCMC_EUSAGE and LCMC_ENOMEM leave *out NULL. */
LCMC_API lcmc_status lcmc_coordination_start(lcmc_coordination **out, lcmc_client *client,
                                             const char *request_json, double timeout);
/* Runs the engine until this coordination has finished; returns its status. */
LCMC_API lcmc_status lcmc_coordination_wait(lcmc_coordination *coord);
/* Starts, waits, and hands over the finished coordination (check *out even on failure). */
LCMC_API lcmc_status lcmc_client_coordinate(lcmc_client *client, const char *request_json,
                                            double timeout, lcmc_coordination **out);
/* Asks the EM to cancel (POST .../cancel once the id is known) and keeps polling until the
 * EM reports the result (normally CANCELLED), within the same deadline. Before the EM has
 * the POST (waiting out a 503/429, or not yet sent) the coordination ends at once with
 * LCMC_ECANCELLED and the POST is not sent again. */
LCMC_API lcmc_status lcmc_coordination_cancel(lcmc_coordination *coord);
/* Stops the coordination here and now, without asking the EM: it finishes LCMC_ECANCELLED. */
LCMC_API void lcmc_coordination_abort(lcmc_coordination *coord);
/* Frees it; one still running is aborted first. */
LCMC_API void lcmc_coordination_free(lcmc_coordination *coord);

LCMC_API int lcmc_coordination_done(const lcmc_coordination *coord);
/* LCMC_OK once a valid LcmCoord arrived (whatever its result); the failure otherwise. */
LCMC_API lcmc_status lcmc_coordination_status(const lcmc_coordination *coord);
LCMC_API const lcmc_error *lcmc_coordination_error(const lcmc_coordination *coord);
LCMC_API lcmc_result lcmc_coordination_result(const lcmc_coordination *coord);
/* The LcmCoord as the EM sent it (JSON text), or NULL. */
LCMC_API const char *lcmc_coordination_lcmcoord_json(const lcmc_coordination *coord);
/* The coordination's id once known (from the LcmCoord or the 202's Location), or NULL. */
LCMC_API const char *lcmc_coordination_id(const lcmc_coordination *coord);
/* 1 when `name` is a LcmOperationForCoordType (INSTANTIATE, SCALE, ..., CHANGE_VNFPKG). */
LCMC_API int lcmc_operation_type_is_valid(const char *name);
/* "CONTINUE", "ABORT", "CANCELLED", or NULL for LCMC_RESULT_NONE. */
LCMC_API const char *lcmc_result_name(lcmc_result result);

/* ------------------------------------------------------------------------------------ */
/* Single requests (the building blocks of the REPL and of scripts)                     */

typedef struct lcmc_response lcmc_response;

/* Sends one request to the client's EM with its auth, Version header and TLS settings, and
 * waits for the answer. `target` is a path below the apiRoot ("/lcmcoord/v1/...") or an
 * absolute URL on the EM's origin; `body` may be NULL; `timeout` <= 0 means the client's. Any HTTP
 * status is a success here: only a request that got no complete answer fails. *out always holds a
 * response (unless LCMC_EUSAGE/LCMC_ENOMEM); on failure lcmc_response_error says why. */
LCMC_API lcmc_status lcmc_client_request(lcmc_client *client, const char *method,
                                         const char *target, const char *body, double timeout,
                                         lcmc_response **out);
LCMC_API void lcmc_response_free(lcmc_response *response);
LCMC_API int lcmc_response_status(const lcmc_response *response);
LCMC_API const char *lcmc_response_body(const lcmc_response *response, size_t *length);
LCMC_API size_t lcmc_response_header_count(const lcmc_response *response);
/* The i-th header of the final answer, names as the server sent them. */
LCMC_API void lcmc_response_header(const lcmc_response *response, size_t i, const char **name,
                                   const char **value);
/* The last header named `name` (any case), or NULL. */
LCMC_API const char *lcmc_response_header_get(const lcmc_response *response, const char *name);
LCMC_API double lcmc_response_elapsed(const lcmc_response *response);
/* 1 when the answer carried Retry-After, with *seconds its value as libcurl read it (delay
 * seconds or an HTTP-date; <= 0 for "0", a past date or garbage); 0 otherwise. */
LCMC_API int lcmc_response_retry_after(const lcmc_response *response, double *seconds);
LCMC_API const char *lcmc_response_url(const lcmc_response *response);
LCMC_API const lcmc_error *lcmc_response_error(const lcmc_response *response);

/* ------------------------------------------------------------------------------------ */
/* Logging through the engine (so scripts' lines look like the runtime's)               */

/* Sends one line to the engine's log callback when `level` is enabled. */
LCMC_API void lcmc_engine_log(lcmc_engine *engine, lcmc_log_level level, const char *message);
/* Seconds on a monotonic clock, for measuring intervals. */
LCMC_API double lcmc_now(void);
/* Waits `seconds` on the engine (other work on it goes on); LCMC_ECANCELLED when the engine
 * is interrupted meanwhile. */
LCMC_API lcmc_status lcmc_engine_sleep(lcmc_engine *engine, double seconds);
/* A number in [0, 1) from the engine's generator, seeded per process (retry jitter). */
LCMC_API double lcmc_engine_random(lcmc_engine *engine);

/* ------------------------------------------------------------------------------------ */
/* Retry policies: the one definition of "try again" (the engine's own retries use it)  */

#define LCMC_RETRY_POLICY_VERSION 1
#define LCMC_RETRY_MAX_STATUSES   16

typedef struct lcmc_retry_policy {
    unsigned int version;   /* LCMC_RETRY_POLICY_VERSION */
    int attempts;           /* attempts in all, the first included; 0: no limit but the deadline */
    double deadline;        /* seconds from the first attempt; 0: none */
    double base;            /* the first wait, when the answer names none; seconds */
    double max;             /* the longest single wait, Retry-After included; 0: no cap */
    double multiplier;      /* each wait is the previous times this (1: constant) */
    double jitter;          /* 0..1: each wait is shortened by up to this fraction, at random */
    double floor;           /* no wait is shorter, whatever Retry-After says; seconds */
    int honour_retry_after; /* a Retry-After in the answer sets the next wait */
    int retry_on_transport; /* a failure without an answer is retried */
    int retry_on[LCMC_RETRY_MAX_STATUSES]; /* HTTP statuses that are retried; 0 ends */
} lcmc_retry_policy;

/* 3 attempts, 1 s then doubling up to 30 s, 10% jitter, floor 1 s, Retry-After honoured,
 * transport failures, 429 and 503 retried, no deadline. */
#define LCMC_RETRY_POLICY_INIT                                                                     \
    {                                                                                              \
        LCMC_RETRY_POLICY_VERSION, 3, 0, 1, 30, 2, 0.1, 1, 1, 1,                                   \
        {                                                                                          \
            429, 503                                                                               \
        }                                                                                          \
    }

/* What happened on one attempt, for deciding the next. */
typedef struct lcmc_retry_outcome {
    int attempt;             /* 1 for the first */
    double elapsed;          /* seconds since the first attempt began */
    int status;              /* HTTP status, or 0 when there was no answer */
    int transport_failure;   /* 1 when there was no answer */
    int retry_after_present; /* the answer carried Retry-After */
    double retry_after;      /* its value in seconds (<= 0 for 0, past dates, garbage) */
} lcmc_retry_outcome;

/* The wait in seconds before the next attempt, or a negative number when there is to be
 * none: the outcome is not retryable, or the attempts or the deadline are used up. `random`
 * in [0, 1) draws the jitter (pass a fixed value for reproducible waits). */
LCMC_API double lcmc_retry_next_wait(const lcmc_retry_policy *policy,
                                     const lcmc_retry_outcome *outcome, double random);

/* ------------------------------------------------------------------------------------ */
/* Credentials and single HTTP requests to any URL                                      */

/* Credentials from the ETSI `authentication` structure, with the TLS settings they need
 * (client certificates). Tokens come from the engine's shared cache. */
typedef struct lcmc_credentials lcmc_credentials;

/* On failure the detail is lcmc_engine_last_error(). */
LCMC_API lcmc_status lcmc_credentials_new(lcmc_credentials **out, lcmc_engine *engine,
                                          const char *authentication_json,
                                          const lcmc_tls_options *tls);
LCMC_API void lcmc_credentials_free(lcmc_credentials *credentials);
/* "BASIC", "OAUTH2_CLIENT_CREDENTIALS", "OAUTH2_CLIENT_CERT" or "NONE". */
LCMC_API const char *lcmc_credentials_type(const lcmc_credentials *credentials);
/* The value of an Authorization header ("Basic ...", "Bearer ..."), fetching a token when
 * needed (within `timeout` seconds), or NULL for no credentials. Free it with
 * lcmc_free_secret. On failure the detail is lcmc_engine_last_error(). */
LCMC_API lcmc_status lcmc_credentials_header(lcmc_credentials *credentials, double timeout,
                                             char **value);
/* Wipes then frees a string that held a secret. */
LCMC_API void lcmc_free_secret(char *secret);

#define LCMC_REQUEST_OPTIONS_VERSION 1

typedef struct lcmc_request_options {
    unsigned int version;       /* LCMC_REQUEST_OPTIONS_VERSION */
    const char *method;         /* NULL: GET */
    const char *url;            /* absolute http(s) URL; required */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;           /* may be NULL */
    size_t body_length;
    /* Sent only to the URL's own origin; a 401 to a token is answered with one new token
     * and one more try. NULL: none. */
    lcmc_credentials *credentials;
    const lcmc_tls_options *tls;    /* NULL: the credentials' TLS settings, else defaults */
    double timeout;                 /* the deadline of the whole request, retries included; 0: 60 */
    size_t max_body;                /* 0: 1 MiB */
    const lcmc_retry_policy *retry; /* NULL: one attempt */
} lcmc_request_options;

#define LCMC_REQUEST_OPTIONS_INIT                                                                  \
    {                                                                                              \
        LCMC_REQUEST_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, 0, NULL            \
    }

/* Sends one request (retried as the policy says) and waits for the answer. As with
 * lcmc_client_request, any HTTP status is a success and *out always holds a response
 * unless LCMC_EUSAGE/LCMC_ENOMEM. */
LCMC_API lcmc_status lcmc_request(lcmc_engine *engine, const lcmc_request_options *options,
                                  lcmc_response **out);

/* lcmc_request without waiting. `done(userdata, status, response)` runs once from the loop
 * with what lcmc_request would have returned: the status and a response that is then the
 * callee's (free it with lcmc_response_free; never NULL). The options are copied, except
 * `credentials`, which must outlive the request. Returns LCMC_EUSAGE/LCMC_ENOMEM (detail in
 * lcmc_engine_last_error) and then `done` is never called; LCMC_OK otherwise, with *out a
 * handle valid until `done` starts or lcmc_request_cancel. lcmc_engine_interrupt ends it
 * with LCMC_ECANCELLED, as lcmc_request. */
typedef struct lcmc_request_handle lcmc_request_handle;
typedef void lcmc_request_done_fn(void *userdata, lcmc_status status, lcmc_response *response);
LCMC_API lcmc_status lcmc_request_start(lcmc_engine *engine, const lcmc_request_options *options,
                                        lcmc_request_done_fn *done, void *userdata,
                                        lcmc_request_handle **out);
/* Stops it here and now (a transfer in flight is abandoned, its connection closed): `done` is
 * never called. Only before `done` was called; accepts NULL. */
LCMC_API void lcmc_request_cancel(lcmc_request_handle *request);
/* lcmc_client_request without waiting, as lcmc_request_start is lcmc_request's: `done`
 * receives what lcmc_client_request would have returned; cancel with lcmc_request_cancel.
 * The client must outlive the request. */
LCMC_API lcmc_status lcmc_client_request_start(lcmc_client *client, const char *method,
                                               const char *target, const char *body, double timeout,
                                               lcmc_request_done_fn *done, void *userdata,
                                               lcmc_request_handle **out);

#ifdef __cplusplus
}
#endif

#endif
