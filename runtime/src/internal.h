/*
 * What the runtime's source files share and the public header hides: the error detail
 * struct, clocks, capped buffers, the engine's timers and transfers, and the pure helpers
 * (waits, URLs, messages, JSON checks) that the unit tests reach directly. Names with a
 * double underscore (lcmc__*) are internal; LCMC_INTERNAL marks the ones the unit tests
 * link against, through the static runtime (lcmcoord_runtime_static): liblcmcoord.so
 * exports none of them.
 */
#ifndef LCMCOORD_INTERNAL_H
#define LCMCOORD_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

#include "lcmcoord/lcmcoord.h"

#define LCMC_INTERNAL

#if defined(__GNUC__)
#define LCMC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LCMC_PRINTF(fmt, args)
#endif

/* ---- invariants ---------------------------------------------------------------------- */

/* An invariant of the runtime's own state (heap order, a transfer in one list at a time, a
 * state machine's phase), checked in Debug builds and when LCMCOORD_DEBUGASSERT is on (CI's
 * sanitizer build): a broken one aborts with where it is, before it turns into a wrong
 * answer far away. Release builds compile it to nothing, so it may be as costly as it
 * needs. Never for what a peer or a caller may do: those are errors. */
#if defined(LCMC_DEBUGASSERTS)
#define LCMC_DEBUGASSERT(x) ((x) ? (void)0 : lcmc__assert_failed(#x, __FILE__, __LINE__, __func__))
#else
#define LCMC_DEBUGASSERT(x) ((void)0)
#endif
LCMC_INTERNAL _Noreturn void lcmc__assert_failed(const char *expression, const char *file, int line,
                                                 const char *function);

/* ---- errors ------------------------------------------------------------------------- */

struct lcmc_error {
    lcmc_status status;
    int http_status;
    char *message;
    char *problem_json;
    json_t *problem; /* the same ProblemDetails, parsed (lcmcoord/json.h) */
    char *method;
    char *url;
};

void lcmc__error_clear(lcmc_error *err);
/* Replaces the error with a new status and a formatted one-line message. */
void lcmc__error_set(lcmc_error *err, lcmc_status status, const char *fmt, ...) LCMC_PRINTF(3, 4);
void lcmc__error_set_request(lcmc_error *err, const char *method, const char *url);
/* Moves src into dst (src is left empty). */
void lcmc__error_move(lcmc_error *dst, lcmc_error *src);

/* ---- time --------------------------------------------------------------------------- */

/* Seconds on a monotonic clock: deadlines and waits. */
double lcmc__now(void);
/* Seconds since the epoch: timestamps in records. */
double lcmc__wall_now(void);
/* RFC 3339 UTC with milliseconds, e.g. "2026-11-25T13:20:00.123Z"; buf of 32 bytes. */
LCMC_INTERNAL void lcmc__format_time(double epoch_seconds, char buf[32]);

/* ---- buffers ------------------------------------------------------------------------ */

/* A growable byte buffer that refuses to grow past `cap`: answers larger than the cap are
 * errors, never unbounded allocations. Always NUL-terminated when non-empty. */
typedef struct lcmc_buffer {
    char *data;
    size_t length;
    size_t allocated;
    size_t cap;
    int overflowed;
} lcmc_buffer;

LCMC_INTERNAL int lcmc__buffer_append(lcmc_buffer *buf, const void *data, size_t length);
LCMC_INTERNAL void lcmc__buffer_free(lcmc_buffer *buf);

char *lcmc__strdup(const char *s);
LCMC_PRINTF(1, 2) char *lcmc__asprintf(const char *fmt, ...);
char *lcmc__vasprintf(const char *fmt, va_list ap);
/* Overwrites then frees a string that held a secret. */
void lcmc__free_secret(char *s);

/* ---- pure helpers (unit tested) ----------------------------------------------------- */

/* What to do with a wait that starts `now` and lasts `wait` under `deadline`: */
typedef enum lcmc_wait_plan {
    LCMC_WAIT_AS_ASKED,      /* it ends in time: wait all of it */
    LCMC_WAIT_SHORTENED,     /* a poll: wait until *until, leaving time for one last look */
    LCMC_WAIT_PAST_DEADLINE, /* cannot be honoured: fail with "deadline exceeded" now */
} lcmc_wait_plan;
/* `shortenable` is true for polls (a GET may come early without harm) and false for a
 * resent POST (the EM said when it can take the request again). `reserve` is the time kept
 * for the last poll itself. */
LCMC_INTERNAL lcmc_wait_plan lcmc__plan_wait(double now, double wait, double deadline,
                                             int shortenable, double reserve, double *until);

/* The standard reason phrase of an HTTP status ("Conflict"), or "" when unknown. */
LCMC_INTERNAL const char *lcmc__reason_phrase(long status);

/* Copies at most `max` bytes of untrusted text into a new string fit for one line of a
 * terminal: control characters become spaces, runs of blanks fold, an ellipsis marks a cut. */
LCMC_INTERNAL char *lcmc__one_line(const char *text, size_t length, size_t max);

/* The one-line message for an error answer: "EM answered 409 Conflict: <detail> (POST
 * /path)". `problem` is the decoded ProblemDetails or NULL; `body` the raw body. */
LCMC_INTERNAL char *lcmc__http_error_message(long status, const json_t *problem,
                                             const char *content_type, const char *body,
                                             size_t body_length, const char *method,
                                             const char *url);

/* Decodes a body as a ProblemDetails when it is a JSON object (whatever Content-Type says);
 * NULL otherwise. */
LCMC_INTERNAL json_t *lcmc__decode_problem(const char *body, size_t length);

/* ---- URLs ---------------------------------------------------------------------------- */

/* Checks an apiRoot and returns it normalised (no trailing slash), or NULL with why. */
LCMC_INTERNAL char *lcmc__normalise_endpoint(const char *endpoint, char *why, size_t why_size);
/* endpoint + path, e.g. ("http://h:1/p", "/lcmcoord/v1/x") -> "http://h:1/p/lcmcoord/v1/x". */
LCMC_INTERNAL char *lcmc__url_join(const char *endpoint, const char *path);
/* Resolves a Location header against the URL of the request that received it; only http
 * and https results are accepted and any fragment is dropped. NULL with why on failure. */
LCMC_INTERNAL char *lcmc__resolve_location(const char *base, const char *location, char *why,
                                           size_t why_size);
/* "scheme://host:port" with the default port filled in and the host lower-cased; NULL when
 * the URL does not parse. */
LCMC_INTERNAL char *lcmc__url_origin(const char *url);
/* The path of a URL (for messages), or a copy of the URL when it does not parse. */
LCMC_INTERNAL char *lcmc__url_path(const char *url);
/* The last non-empty path segment, URL-decoded (a coordination id), or NULL. */
LCMC_INTERNAL char *lcmc__url_last_segment(const char *url);
/* The cancel task resource of a coordination URL: "/cancel" appended to its path, its query
 * kept, any fragment dropped (".../abc?shard=7" -> ".../abc/cancel?shard=7"). */
LCMC_INTERNAL char *lcmc__url_cancel(const char *coordination_url);

/* ---- protocol data ------------------------------------------------------------------- */

/* Checks an LcmCoordRequest; on failure returns -1 and names the field in `why`. */
/* The longest deadline the runtime keeps (about 115 days): longer ones are cut to it, so
 * that no conversion to libcurl's milliseconds can overflow. */
#define LCMC_MAX_TIMEOUT 1e7

LCMC_INTERNAL int lcmc__validate_request(const json_t *request, char *why, size_t why_size);
/* The line and column (from 1, in characters) of a parse error of `text`, in words. */
LCMC_INTERNAL void lcmc__json_error_place(const char *text, size_t length, const json_error_t *err,
                                          int *line, int *column);
/* The first top-level field of a (valid) LcmCoordRequest that the API does not define, or
 * NULL: such a field is sent as it is, but it is most often a misspelt one
 * (`coordinationActionNam`), worth a warning. Valid while `request` is. */
LCMC_INTERNAL const char *lcmc__request_unknown_field(const json_t *request);
/* Checks an LcmCoord answer; fills *result; on failure returns -1 with why. */
LCMC_INTERNAL int lcmc__validate_lcmcoord(const json_t *lcmcoord, lcmc_result *result, char *why,
                                          size_t why_size);
LCMC_INTERNAL lcmc_result lcmc__result_from_name(const char *name);

/* ---- engine internals ---------------------------------------------------------------- */

typedef struct lcmc_timer lcmc_timer;
typedef void lcmc_timer_fn(lcmc_timer *timer);
struct lcmc_timer {
    double due;        /* monotonic seconds */
    size_t heap_index; /* position in the engine's heap, or SIZE_MAX when not armed */
    lcmc_timer_fn *fire;
    void *owner;
};

void lcmc__timer_init(lcmc_timer *timer, lcmc_timer_fn *fire, void *owner);
/* Arms (or re-arms) a timer to fire at `due`. Returns -1 when out of memory. */
int lcmc__timer_arm(lcmc_engine *engine, lcmc_timer *timer, double due);
void lcmc__timer_disarm(lcmc_engine *engine, lcmc_timer *timer);

/* Operations in flight (coordinations, single requests) register so that an interrupt
 * reaches them all. */
typedef struct lcmc_op lcmc_op;
struct lcmc_op {
    lcmc_op *prev, *next;
    void (*interrupt)(lcmc_op *op);
    int registered;
};
void lcmc__op_register(lcmc_engine *engine, lcmc_op *op);
void lcmc__op_unregister(lcmc_engine *engine, lcmc_op *op);

/* Work handed to the engine's loop to run "soon", at a safe point: at the start or the end
 * of a turn, never from inside another callback, so that what runs may do anything a
 * caller of the engine may (start or cancel operations, call a blocking function, which
 * then turns the loop itself). lcmc__defer is thread-safe and wakes the loop; the rest is
 * for the engine's thread. A deferred item runs once; it may free itself when it runs. */
typedef struct lcmc_deferred lcmc_deferred;
typedef void lcmc_deferred_fn(lcmc_deferred *deferred);
struct lcmc_deferred {
    lcmc_deferred *prev, *next;
    lcmc_deferred_fn *run;
    unsigned long long seq; /* order of arrival: a turn runs only what arrived before it */
    int queued;
};
void lcmc__defer(lcmc_engine *engine, lcmc_deferred *deferred, lcmc_deferred_fn *run);
/* Takes it out of the queue when it has not run yet (nothing happens otherwise). */
void lcmc__defer_cancel(lcmc_engine *engine, lcmc_deferred *deferred);
/* Work that finishes on another thread and comes back through lcmc__defer (+1 when it
 * starts, -1 when it is over): while any is out, a loop with nothing else to do waits for
 * it instead of returning. Engine thread only. */
void lcmc__engine_hold(lcmc_engine *engine, int delta);

/* One HTTP exchange on the engine's multi handle. */
typedef struct lcmc_transfer lcmc_transfer;
typedef void lcmc_transfer_done_fn(lcmc_transfer *transfer, void *userdata);

/* What a transfer is asked to do. Everything is borrowed: the owner (a call, a token
 * fetch) keeps it alive until the transfer ends or is cancelled, since a queued transfer
 * is configured only when it becomes active. */
typedef struct lcmc_transfer_spec {
    const char *method;
    const char *url;
    const char *body;           /* NULL: none */
    size_t body_length;         /* of body */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    double deadline;            /* monotonic; the transfer may not outlive it */
    size_t max_body;
    const lcmc_tls_options *tls;
    int secret_exchange;    /* a token request: its bodies are never traced */
    int immediate;          /* never queued: configured before lcmc__transfer_start returns */
    const char *basic_user; /* HTTP Basic credentials, or NULL */
    const char *basic_password;
    const char *bearer_token; /* an OAuth 2.0 access token, or NULL */
} lcmc_transfer_spec;

/* The outcome of a finished transfer. */
typedef struct lcmc_transfer_result {
    CURLcode curl_code;
    char curl_error[CURL_ERROR_SIZE];
    long status; /* 0 when no answer */
    lcmc_buffer body;
    char *content_type;
    char *location;
    int retry_after_present;
    long long retry_after; /* seconds as libcurl computed them */
    char **header_names;   /* all headers of the final answer */
    char **header_values;
    size_t header_count;
    double elapsed;
    int request_sent;          /* whether any byte of the request may have reached the server */
    char *proxy;               /* the proxy it went through, without userinfo; NULL: direct */
    long proxy_connect_status; /* the proxy's answer to CONNECT; 0: none came */
    int proxy_tunnel_failed;   /* an HTTP proxy's tunnel never came up: the EM got nothing */
    int ca_given; /* a CA file or directory was set for it (not the system's trust only) */
} lcmc_transfer_result;

/* Starts a transfer; `done` is called from the engine loop when it ends (also on failure to
 * start, then with curl_code set). Returns NULL only when out of memory. */
lcmc_transfer *lcmc__transfer_start(lcmc_engine *engine, const lcmc_transfer_spec *spec,
                                    lcmc_transfer_done_fn *done, void *userdata);
/* Stops a transfer without calling its callback, and frees it. */
void lcmc__transfer_cancel(lcmc_transfer *transfer);
/* 1 once libcurl was about to send the request on a connection: the peer may have it. */
int lcmc__transfer_request_started(const lcmc_transfer *transfer);
/* Takes the result out of a finished transfer and frees the transfer. */
void lcmc__transfer_finish(lcmc_transfer *transfer, lcmc_transfer_result *out);
void lcmc__transfer_result_free(lcmc_transfer_result *result);

/* The fix an operator most likely needs for a failed transfer, as "; hint: ..." to append
 * to its message (TLS to a plain-HTTP port and the reverse, an issuer not trusted), or "". */
const char *lcmc__transfer_hint(const lcmc_transfer_result *result, const char *url,
                                const char *peer);

/* Classifies a failed transfer into a status and fills err (with the request's method/URL). */
lcmc_status lcmc__transfer_error(const lcmc_transfer_result *result, const char *method,
                                 const char *url, const char *peer, lcmc_error *err);

/* Runs one turn of the loop: fires due timers, waits for sockets up to the next timer,
 * completes finished transfers. Returns LCMC_OK, or an error when there was nothing left
 * that could make progress. */
lcmc_status lcmc__engine_step(lcmc_engine *engine);

void lcmc__log(lcmc_engine *engine, lcmc_log_level level, const char *fmt, ...) LCMC_PRINTF(3, 4);
int lcmc__log_enabled(const lcmc_engine *engine, lcmc_log_level level);
void lcmc__engine_set_last_error(lcmc_engine *engine, lcmc_status status, const char *fmt, ...)
    LCMC_PRINTF(3, 4);

/* ---- records ------------------------------------------------------------------------- */

typedef struct lcmc_record_entry lcmc_record_entry;
/* Adds the start of a coordination to the engine's record; NULL when out of memory. */
lcmc_record_entry *lcmc__record_begin(lcmc_engine *engine, unsigned long client_serial,
                                      const char *action_name, double start_time);
void lcmc__record_set_id(lcmc_record_entry *entry, const char *id);
void lcmc__record_set_delay(lcmc_record_entry *entry, double delay_end);
void lcmc__record_end(lcmc_record_entry *entry, lcmc_result result, double end_time);
int lcmc__record_rejection(lcmc_engine *engine, unsigned long client_serial,
                           const char *action_name, double rejection_time, double delay_end);
/* The record as JSON; client_serial 0 means every client. */
lcmc_status lcmc__record_json(const lcmc_engine *engine, unsigned long client_serial, char **out);
unsigned long lcmc__engine_next_client_serial(lcmc_engine *engine);

/* ---- clients ------------------------------------------------------------------------- */

/* What every request to one origin shares (call.c). Clients embed one for their EM;
 * lcmc_request makes one per request. Pointers are borrowed from the owner, which outlives
 * the calls made with it. */
struct lcmc_auth;
typedef struct lcmc_session {
    lcmc_engine *engine;
    const struct lcmc_auth *auth; /* NULL: no credentials */
    const char *origin;           /* the only origin credentials may go to */
    int allow_cross_origin;       /* other origins get the request without credentials */
    const lcmc_tls_options *tls;
    size_t max_body;
    double token_refresh_margin;
    const char *const *fixed_headers; /* sent with every request; NULL-terminated */
    int json_bodies;                  /* a body is sent as application/json */
    const char *peer;                 /* "the EM", "the server": for messages */
} lcmc_session;

/* Whether a request to `url` may carry the session's credentials: 1 for their own origin,
 * 0 for another one (or none are held, or other origins are allowed without them), -1 with
 * err set when the request may not be made at all. The one place the origin rule lives. */
int lcmc__session_judge_origin(const lcmc_session *session, const char *method, const char *url,
                               lcmc_error *err);

/* A call: one logical request with the session's credentials. It waits for an OAuth 2.0
 * token when it needs one, and after a 401 to a token it drops that token, gets a new one
 * and sends the request once more. */
typedef struct lcmc_call lcmc_call;
/* Exactly one of r (the final answer; r->curl_code says whether there was one) and err
 * (no token could be had) is set. Runs from the engine loop; the call is freed after, and
 * r may be taken over (zero what was taken). */
typedef void lcmc_call_done_fn(void *userdata, lcmc_transfer_result *r, const lcmc_error *err);

/* Borrowed: the caller keeps these alive until the call is done or cancelled. */
typedef struct lcmc_call_request {
    const char *method;
    const char *url;
    const char *body; /* may be NULL */
    size_t body_length;
    const char *const *headers; /* besides the session's; NULL-terminated, may be NULL */
    double deadline;
    const struct lcmc_event_subject *about; /* what its log events are about; may be NULL */
} lcmc_call_request;

/* NULL with err set when the call may not be made (see lcmc__session_prepare) or memory
 * ran out; otherwise `done` is called later, from the loop. */
lcmc_call *lcmc__call_start(const lcmc_session *session, const lcmc_call_request *request,
                            lcmc_call_done_fn *done, void *userdata, lcmc_error *err);
void lcmc__call_cancel(lcmc_call *call);
/* 1 when the call's request may have gone out: the peer may have all of it by now. */
int lcmc__call_request_started(const lcmc_call *call);
/* The request in flight is the last one the call sends: whatever its answer (a 401 too),
 * it is handed back rather than sent again. For a coordination that has to end. */
void lcmc__call_send_no_more(lcmc_call *call);

/* Sends one request with a session (retried as `policy` says, when not NULL) and waits for
 * the answer: the machinery of lcmc_client_request and lcmc_request (response.c). */
lcmc_status lcmc__exchange(const lcmc_session *session, const char *method, const char *url,
                           const char *body, size_t body_length, const char *const *headers,
                           double timeout, const lcmc_retry_policy *policy, lcmc_response **out);

/* lcmc__exchange without waiting: `done` gets the response from the loop (lcmc_request_start).
 * The session's origin and TLS settings are copied. LCMC_OK with *out the handle; only
 * LCMC_ENOMEM otherwise. */
lcmc_status lcmc__exchange_start(const lcmc_session *session, const char *method, const char *url,
                                 const char *body, size_t body_length, const char *const *headers,
                                 double timeout, const lcmc_retry_policy *policy,
                                 lcmc_request_done_fn *done, void *userdata, lcmc_response **out);
/* Deep copies of TLS settings (the key's passphrase is wiped when freed). */
int lcmc__tls_copy(lcmc_tls_options *dst, const lcmc_tls_options *src);
void lcmc__tls_free(lcmc_tls_options *tls);

/* A number in [0, 1) from the engine's generator (retry jitter). */
double lcmc__random(lcmc_engine *engine);

lcmc_engine *lcmc__client_engine(const lcmc_client *client);
const lcmc_session *lcmc__client_session(const lcmc_client *client);
unsigned long lcmc__client_serial(const lcmc_client *client);
const lcmc_client_options *lcmc__client_options(const lcmc_client *client);

#endif
