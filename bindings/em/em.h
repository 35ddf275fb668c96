/*
 * Internal interface of the EM simulator (`lcmcoord em`), the server side of the VNF LCM
 * Coordination API used to test clients. The pieces are split by concern so that the
 * protocol logic can be driven from cmocka without sockets: em_options.c (command line,
 * Retry-After specs, HTTP dates), em_api.c (validation, routing and the answer to each
 * request), em_coord.c (coordinations and their state machine), em_journal.c (the request
 * journal), em_scenario.c (Lua scenarios), em_form.c (form bodies), em_auth.c (who may
 * call: HTTP Basic, OAuth 2.0 clients and Bearer tokens), em_tokens.c (issued access
 * tokens), em_tls.c (certificates and the TLS peer), em_http.c (the HTTP layer over
 * libmicrohttpd, shared with `lcmcoord serve`: framing, limits, deferred and delayed answers,
 * the request log), em_server.c (the simulator on that layer, scenario threads), em_main.c
 * (process lifecycle) and em_program.c (the lcmcoord-em program that `lcmcoord em` runs).
 */
#ifndef LCMCOORD_EM_H
#define LCMCOORD_EM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#define EM_DEFAULT_PORT 6789
/* Byte budgets (docs/em.md, "Limits"): every one of them is what bounds memory and CPU time
 * per request, whatever a client sends. */
#define EM_DEFAULT_BODY_LIMIT   (256u * 1024u) /* API bodies: a LcmCoordRequest with room */
#define EM_TOKEN_BODY_MAX       4096u          /* /token bodies: a client_credentials form */
#define EM_FORM_MAX_FIELDS      64u
#define EM_STORE_BYTES          (32u * 1024u * 1024u) /* coordinations kept, serialized */
#define EM_JOURNAL_BYTES        (16u * 1024u * 1024u) /* journal entries, serialized */
#define EM_JSON_MAX_DEPTH       32u
#define EM_JSON_MAX_MEMBERS     10000u        /* object members and array elements, in all */
#define EM_JSON_MAX_STRING      (64u * 1024u) /* one string or key, in bytes */
#define EM_SCENARIO_MEMORY      (64u * 1024u * 1024u) /* one Lua state's heap */
#define EM_SCENARIO_JSON_BYTES  (16u * 1024u * 1024u) /* one value out of a state, copied */
#define EM_SCENARIO_STATE_BYTES (16u * 1024u * 1024u) /* em.state, all values */
#define EM_SCENARIO_THREADS     4u   /* scenario calls at once, off the HTTP workers */
#define EM_SCENARIO_QUEUE       256u /* calls waiting for a scenario thread; more get 503 */
#define EM_SCENARIO_MARGIN_MS   500  /* no call ends later than this past its deadline */
#define EM_DEFAULT_JOURNAL_MAX  10000u
#define EM_STORE_CAPACITY       65536u
#define EM_JOURNAL_BODY_MAX     (16u * 1024u)
#define EM_ID_LEN               36
#define EM_HTTP_DATE_LEN        40
#define EM_BASE_URL_MAX         300
#define EM_API_VERSION          "1.0.0"
#define EM_COORDINATIONS_PATH   "/lcmcoord/v1/coordinations"
#define EM_JOURNAL_PATH         "/_em/journal"
#define EM_SCENARIO_DEADLINE_MS 2000
#define EM_TOKEN_PATH           "/token"
#define EM_DEFAULT_TOKEN_TTL    3600
#define EM_TOKEN_TTL_NONE       (-1)
#define EM_TOKEN_CAPACITY       1024u
#define EM_TOKEN_LEN            43 /* 32 random bytes in base64url, no padding */
#define EM_THUMBPRINT_LEN       43 /* SHA-256 in base64url, no padding */
#define EM_REALM                "lcmcoord"
/* The HTTP layer's limits against hostile or broken clients (docs/security.md). */
#define EM_DEFAULT_MAX_CONNECTIONS 1000u
#define EM_DEFAULT_MAX_PER_CLIENT  128u
#define EM_DEFAULT_IDLE_TIMEOUT    15u   /* seconds without a byte either way */
#define EM_DEFAULT_HEADER_TIMEOUT  10u   /* seconds to send a whole request head (TLS included) */
#define EM_DEFAULT_MIN_BODY_RATE   1024u /* bytes per second, averaged, once the grace is over */
#define EM_SHUTDOWN_DEADLINE_S     5     /* SIGTERM ends the process within this */

/* ---- small allocation helpers: a test tool has nothing sensible to do on OOM ---- */

void *em_xmalloc(size_t n);
void *em_xrealloc(void *p, size_t n);
char *em_xstrdup(const char *s);
char *em_xstrndup(const char *s, size_t n);
char *em_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* base64url without padding (RFC 4648 §5); out needs 4 * ceil(n / 3) + 1 bytes. */
void em_base64url(const unsigned char *in, size_t n, char *out);

/* ---- options (em_options.c) ---- */

enum em_mode { EM_MODE_SYNC, EM_MODE_ASYNC };
enum em_location { EM_LOCATION_ABSOLUTE, EM_LOCATION_RELATIVE, EM_LOCATION_NONE };
enum em_result { EM_RESULT_CONTINUE, EM_RESULT_ABORT, EM_RESULT_CANCELLED };
enum em_retry_kind { EM_RETRY_NONE, EM_RETRY_SECONDS, EM_RETRY_DATE, EM_RETRY_RAW };

struct em_retry {
    enum em_retry_kind kind;
    long long seconds; /* EM_RETRY_SECONDS, EM_RETRY_DATE (offset from now) */
    const char *raw;   /* EM_RETRY_RAW; borrowed from argv */
};

struct em_options {
    char host[256];
    unsigned port;
    unsigned threads;
    enum em_mode mode;
    unsigned polls;
    unsigned long rejects;
    enum em_result result;
    struct em_retry retry;
    enum em_location location;
    unsigned long delay_ms;
    const char *basic;    /* "USER:PASS" or NULL; borrowed from argv */
    const char *oauth2;   /* "ID[:SECRET]" or NULL; borrowed from argv */
    long long token_ttl;  /* seconds, or EM_TOKEN_TTL_NONE */
    const char *tls_cert; /* PEM file names or NULL; borrowed from argv */
    const char *tls_key;
    const char *client_ca;
    size_t body_limit;
    size_t journal_max;
    const char *scenario;
    const char *chaos; /* --chaos NAME (or "list"); borrowed from argv */
    bool quiet;
    unsigned max_connections; /* open connections in all, and from one client address */
    unsigned max_per_client;
    unsigned idle_timeout_s;
    unsigned header_timeout_s; /* from accept (or the end of the last answer) to a whole head */
    unsigned min_body_rate;    /* bytes/s; 0: no floor */
    const char *base_url;      /* --base-url for absolute URLs, or NULL; borrowed from argv */
};

enum em_parse_status { EM_PARSE_OK, EM_PARSE_HELP, EM_PARSE_ERROR };

void em_options_init(struct em_options *opt);
enum em_parse_status em_options_parse(struct em_options *opt, int argc, char **argv, char *err,
                                      size_t errlen);
extern const char em_usage_line[];
extern const char em_help_text[];

int em_retry_parse(const char *spec, struct em_retry *out, char *err, size_t errlen);
/* Writes the Retry-After value for `now` into buf; false when no header must be sent. */
bool em_retry_value(const struct em_retry *spec, time_t now, char *buf, size_t len);
void em_http_date(time_t t, char buf[EM_HTTP_DATE_LEN]);
int em_split_listen(const char *spec, char *host, size_t hostlen, unsigned *port);
/* 0 when url can be a --base-url: http(s)://HOST[:PORT][/PATH], printable, no '?', '#' or
 * trailing '/'. */
int em_check_base_url(const char *url);
int em_result_parse(const char *name, enum em_result *out);
const char *em_result_name(enum em_result r);

/* ---- requests and responses as the protocol logic sees them ---- */

struct em_header {
    char *name;
    char *value;
};

struct em_headers {
    struct em_header *v;
    size_t n, cap;
};

void em_headers_add(struct em_headers *h, const char *name, const char *value);
/* Case-insensitive lookup; several fields of one name are not merged (first wins). */
const char *em_headers_get(const struct em_headers *h, const char *name);
void em_headers_free(struct em_headers *h);

/* What the TLS layer knows about the client, per connection (em_tls.c). */
struct em_peer {
    bool inspected;     /* filled in (lazily, on the connection's first request) */
    char version[16];   /* "TLS1.3", ... */
    bool cert_present;  /* the client sent a certificate */
    bool cert_verified; /* ... and it chains to --client-ca, is in date and fit for clients */
    char subject_cn[256];
    char thumbprint[EM_THUMBPRINT_LEN + 1]; /* x5t#S256 */
    char problem[256];                      /* why it did not verify */
};

struct em_request {
    const struct em_peer *peer; /* NULL over plain HTTP */
    const char *method;
    const char *path;
    struct em_headers headers; /* names lower-case */
    const char *body;
    size_t body_len;
    bool body_too_large;
    struct timespec received; /* CLOCK_REALTIME */
};

struct em_response {
    unsigned status;
    struct em_headers headers;
    char *body; /* malloc'd or NULL */
    size_t body_len;
    bool may_delay; /* false for the journal, which --delay must not slow down */
    /* A body produced piece by piece instead of `body` (the journal), with the signatures
     * of libmicrohttpd's content reader: read returns bytes written, -1 at the end; free
     * is called once when the response is done with (sent or not). */
    ssize_t (*stream_read)(void *ctx, uint64_t pos, char *buf, size_t max);
    void (*stream_free)(void *ctx);
    void *stream_ctx;
    /* Fields the JSON request log line gets besides its own (who called, what was decided);
     * owned (a reference), NULL for none. Never a secret. */
    json_t *log_fields;
};

/* A deep copy of a request (method, path, headers, body) for a handler that answers later
 * on another thread; peer is shared (it lives as long as the connection). */
void em_request_copy(const struct em_request *src, struct em_request *dst);
void em_request_free_copy(struct em_request *rq);

void em_response_free(struct em_response *rs);
void em_response_set_body(struct em_response *rs, char *body, const char *content_type);
void em_response_problem(struct em_response *rs, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the simulator's shared state ---- */

struct em_store;
struct em_journal;
struct em_scenario;
struct em_tokens;

struct em {
    struct em_options opt;
    char base_url[EM_BASE_URL_MAX]; /* http(s)://HOST:PORT */
    atomic_ulong requests;          /* every request but the journal's own */
    atomic_ulong posts;             /* POST /coordinations received */
    atomic_ulong valid_posts;       /* ... of which valid, for --rejects */
    struct em_store *store;
    struct em_journal *journal;
    struct em_scenario *scenario;
    struct em_tokens *tokens; /* --oauth2 only */
    char *client_id;          /* --oauth2 split; the secret is wiped on cleanup */
    char *client_secret;      /* NULL when the client authenticates by certificate only */
};

/* Prepares the state (store, journal) for opt; the scenario is loaded separately. */
void em_init(struct em *em, const struct em_options *opt);
void em_set_base_url(struct em *em, unsigned port);
void em_cleanup(struct em *em);

/* ---- protocol logic (em_api.c) ---- */

/* Decides the whole answer to one complete request, journals it. Thread-safe. */
void em_handle(struct em *em, const struct em_request *rq, struct em_response *rs);

/* The paths of the LCM Coordination API (the EM's and serve's alike): the coordinations, one
 * coordination or its cancel (its id copied into id, which holds idlen bytes with the NUL),
 * api_versions (with or without v1/); EM_PATH_OTHER for any other path, an empty id or one
 * too long. */
enum em_api_path {
    EM_PATH_OTHER,
    EM_PATH_COORDINATIONS,
    EM_PATH_COORDINATION,
    EM_PATH_CANCEL,
    EM_PATH_VERSIONS
};
enum em_api_path em_api_path(const char *path, char *id, size_t idlen);

int em_check_version(const char *value, char *detail, size_t len);
bool em_check_content_type(const char *value);
int em_parse_body(const char *body, size_t len, json_t **out, char *detail, size_t dlen);
/* Checks a decoded body against EM_JSON_MAX_DEPTH, _MEMBERS and _STRING; 0, or -1 with
 * detail naming the limit exceeded. */
int em_json_check_limits(const json_t *j, char *detail, size_t dlen);
/* Largest body accepted on this path (the token endpoint's is small: it is unauthenticated). */
size_t em_body_limit(const struct em *em, const char *path);
int em_validate_request(const json_t *req, char *detail, size_t len);
json_t *em_problem(unsigned status, const char *detail);
const char *em_reason(unsigned status);
json_t *em_lcmcoord_build(const json_t *req, const char *id, const char *self_href,
                          enum em_result result);
/* Base URL (no trailing slash) to put into Location and _links for this request. */
void em_request_base_url(const struct em *em, const struct em_request *rq, char *buf, size_t len);

/* ---- who may call (em_auth.c) ---- */

struct em_auth {
    bool present;            /* journal it: an Authorization header, or a /token request */
    char scheme[32];         /* "" when none (journaled as null) */
    char *user;              /* malloc'd: Basic user, or the OAuth client id */
    bool ok;                 /* passed the checks configured (true when none is) */
    unsigned long token_seq; /* Bearer: which issued token (1-based), 0 if unknown */
};

void em_auth_check(const char *authorization, const char *expected, struct em_auth *out);
void em_auth_clear(struct em_auth *auth);
char *em_auth_redact(const char *authorization);

/* Splits `Basic base64(user:password)`. With form_encoded, both halves are decoded as
 * application/x-www-form-urlencoded first, as RFC 6749 §2.3.1 asks of OAuth clients.
 * 0 with *user and *password malloc'd, or -1 when the header is not that. */
int em_basic_decode(const char *authorization, bool form_encoded, char **user, char **password,
                    size_t *password_len);
/* Equality of two byte strings in a time that depends on neither content nor length. */
bool em_secret_equal(const char *a, size_t alen, const char *b, size_t blen);

enum em_client_method { EM_CLIENT_NONE, EM_CLIENT_BASIC, EM_CLIENT_POST, EM_CLIENT_CERT };
enum em_client_verdict { EM_CLIENT_OK, EM_CLIENT_INVALID_REQUEST, EM_CLIENT_INVALID_CLIENT };

struct em_client_config {
    const char *id;
    const char *secret; /* NULL: no secret (certificate only) */
    bool cert_auth;     /* --client-ca: a verified certificate may stand for the secret */
};

struct em_client_input {
    const char *authorization; /* the header, or NULL */
    const char *form_id;       /* client_id in the body, or NULL */
    const char *form_secret;   /* client_secret in the body, or NULL */
    bool cert_verified;
};

struct em_client_decision {
    enum em_client_verdict verdict;
    enum em_client_method method;
    char *client_id;         /* the id the client claimed (malloc'd) or NULL */
    const char *description; /* static text for error_description */
};

/* The token endpoint's client authentication (RFC 6749 §2.3, RFC 8705 §2). */
void em_client_authenticate(const struct em_client_config *cfg, const struct em_client_input *in,
                            struct em_client_decision *out);
void em_client_decision_clear(struct em_client_decision *d);
const char *em_client_method_name(enum em_client_method m);
/* Answers the token endpoint (after the TLS checks); `shown` is rq with the secrets of its
 * body redacted, for the scenario. Fills auth for the journal. */
void em_token_endpoint(struct em *em, const struct em_request *rq, const struct em_request *shown,
                       struct em_auth *auth, unsigned long count, unsigned long posts,
                       struct em_response *rs);
/* Checks an API request's Authorization against --basic and --oauth2; when a Bearer token
 * is refused, *token_error says why (static text). */
void em_api_authenticate(struct em *em, const struct em_request *rq, struct em_auth *auth,
                         const char **token_error);
/* The WWW-Authenticate value for one scheme ("Basic" or "Bearer"); with token_error, the
 * Bearer challenge carries error="invalid_token" and that description (RFC 6750 §3). */
char *em_challenge(const char *scheme, const char *token_error);
/* A 401 + ProblemDetails for an API request, challenging with every scheme configured
 * (Bearer when none is: the only scheme a client certificate goes with). */
void em_unauthorized(const struct em *em, struct em_response *rs, const char *token_error,
                     const char *detail);

/* ---- form bodies (em_form.c) ---- */

struct em_form_field {
    char *name;
    char *value;
};

struct em_form {
    struct em_form_field *v;
    size_t n;
};

/* Decodes application/x-www-form-urlencoded text (`+` and %XX); NULL when malformed
 * (a bad escape or an encoded NUL). */
char *em_form_decode(const char *s, size_t n, size_t *outlen);
/* Parses a whole body; a malformed field or a repeated name (RFC 6749 §3.2) is an error. */
int em_form_parse(const char *body, size_t len, struct em_form *out, char *err, size_t errlen);
const char *em_form_get(const struct em_form *f, const char *name);
void em_form_free(struct em_form *f);
/* A copy of a form body keeping only what is known to be harmless: fields named in an
 * allow-list with plain values verbatim, known OAuth parameter names with their values as
 * <redacted>, any other field as <redacted> whole. */
char *em_form_redact(const char *body, size_t len, size_t *outlen);

/* ---- access tokens (em_tokens.c) ---- */

/* A monotonic clock in milliseconds, injectable so tests can expire tokens. */
typedef uint64_t (*em_clock_fn)(void *ctx);

enum em_token_state { EM_TOKEN_VALID, EM_TOKEN_EXPIRED, EM_TOKEN_REVOKED, EM_TOKEN_UNKNOWN };

/* ttl_s: seconds, or EM_TOKEN_TTL_NONE; clock NULL = CLOCK_MONOTONIC. */
struct em_tokens *em_tokens_new(size_t capacity, long long ttl_s, em_clock_fn clock, void *ctx);
void em_tokens_free(struct em_tokens *t);
/* Issues a fresh random token into `token`; returns its sequence number (1-based). */
unsigned long em_tokens_issue(struct em_tokens *t, char token[EM_TOKEN_LEN + 1]);
enum em_token_state em_tokens_check(struct em_tokens *t, const char *token, unsigned long *seq);
/* Makes token number seq invalid from now on; false when it is not held (any more). */
bool em_tokens_revoke(struct em_tokens *t, unsigned long seq);

/* ---- TLS (em_tls.c) ---- */

struct em_tls_files {
    char *cert, *key, *ca; /* PEM text, NUL-terminated; ca NULL without --client-ca */
};

/* Reads --tls-cert/--tls-key/--client-ca and checks them with GnuTLS. */
int em_tls_load(const struct em_options *opt, struct em_tls_files *out, char *err, size_t errlen);
void em_tls_files_free(struct em_tls_files *f);
/* Fills peer from a gnutls_session_t: version, client certificate, verification. */
void em_tls_inspect(void *session, struct em_peer *peer);
/* x5t#S256 (RFC 7515 §4.1.8 / RFC 8705 §3.1) of a DER certificate. */
void em_x5t_s256(const unsigned char *der, size_t len, char out[EM_THUMBPRINT_LEN + 1]);

/* ---- coordinations (em_coord.c) ---- */

enum em_phase { EM_COORD_RUNNING, EM_COORD_CANCELLING, EM_COORD_DONE };

struct em_coord {
    enum em_phase phase;
    unsigned polls_left;
    bool cancelled; /* set when a cancel completes */
};

/* A GET on the coordination: 202 while polls remain, then 200. */
unsigned em_coord_poll(struct em_coord *c);
/* A cancel: 202 when running (one more 202 follows), 409 when finished. */
unsigned em_coord_cancel(struct em_coord *c);

/* At most `capacity` coordinations and `max_bytes` of their serialized documents. */
struct em_store *em_store_new(size_t capacity, size_t max_bytes);
void em_store_free(struct em_store *s);
void em_store_new_id(struct em_store *s, char id[EM_ID_LEN + 1]);
/* Stores a coordination (doc is stolen); *body (if body is not NULL) gets the serialized
 * doc for a 201 body. When the byte budget is short, finished coordinations are forgotten,
 * oldest first; -1 when that is not enough (every byte is held by one in progress). */
int em_store_put(struct em_store *s, const char *id, json_t *doc, unsigned polls, bool done,
                 char **body);
size_t em_store_bytes(struct em_store *s);
/* 404, 202 or 200 (then *body is the LcmCoord, malloc'd). */
unsigned em_store_get(struct em_store *s, const char *id, char **body);
/* 404, 202 or 409. */
unsigned em_store_cancel(struct em_store *s, const char *id);

/* ---- journal (em_journal.c) ---- */

struct em_journal *em_journal_new(size_t max);
void em_journal_free(struct em_journal *j);
void em_journal_add(struct em_journal *j, const struct em_request *rq, unsigned long seq,
                    unsigned status, const struct em_auth *auth);
/* The whole journal as one string (tests); the server streams it with a reader instead. */
char *em_journal_dump(struct em_journal *j);
void em_journal_set_budget(struct em_journal *j, size_t max_bytes);
size_t em_journal_bytes(struct em_journal *j);
/* Bytes of entries dropped from the ring that readers still hold. */
size_t em_journal_pinned(struct em_journal *j);
/* A snapshot of the entries (references, not copies) for em_response.stream_*. */
struct em_journal_reader;
/* NULL while slow readers hold the journal's budget in dropped entries (answer 503). */
struct em_journal_reader *em_journal_reader_new(struct em_journal *j);
ssize_t em_journal_reader_read(void *reader, uint64_t pos, char *buf, size_t max);
void em_journal_reader_free(void *reader);
/* What the journal and the request log show of a header value and of a request target:
 * allow-listed headers verbatim, Authorization as its scheme, anything else <redacted>;
 * the path without its query (?<redacted>) and without userinfo. malloc'd. */
char *em_redact_header(const char *name, const char *value);
char *em_redact_path(const char *path);
const char *em_shown_method(const char *method);
size_t em_journal_count(struct em_journal *j);
void em_journal_clear(struct em_journal *j);
/* Returns a malloc'd copy of s with invalid UTF-8 replaced by U+FFFD. */
char *em_utf8_sanitize(const char *s, size_t len, size_t *outlen);
void em_rfc3339(const struct timespec *ts, char buf[32]);

/* ---- scenarios (em_scenario.c) ---- */

struct em_scenario *em_scenario_load(const char *file, struct em *em, char *err, size_t errlen);
/* The same from text in memory; chunkname names it in messages (e.g. "=chaos:empty-201"). */
struct em_scenario *em_scenario_load_buffer(const char *chunkname, const char *src, size_t len,
                                            struct em *em, char *err, size_t errlen);
void em_scenario_set_base_url(struct em_scenario *sc, const char *base_url);
void em_scenario_free(struct em_scenario *sc);
/* Cuts short every call running now and every later one (shutdown): they raise the
 * deadline error at once. */
void em_scenario_stop_calls(struct em_scenario *sc);
/* A scenario error, one line through the server's log (em_server.c): --quiet, the log
 * format and the rate limit apply, and control characters are escaped. */
void em_log_scenario_error(const char *message);
/* Runs the scenario on a request; false means it fell through to the defaults. */
bool em_scenario_call(struct em_scenario *sc, const struct em_request *rq,
                      const struct em_auth *auth, unsigned long count, unsigned long posts,
                      struct em_response *rs);

/* ---- the HTTP layer (em_http.c), shared by lcmcoord-em and lcmcoord-serve ---- */

struct em_http;      /* a running server */
struct em_http_call; /* one request, from its arrival to its answer */

struct em_http_settings {
    /* Listen address, threads, connection limits, timeouts, --quiet, --delay: copied. */
    const struct em_options *opt;
    const char *program;     /* starts the layer's own text log lines ("lcmcoord em") */
    const char *exempt_path; /* never --delay'ed nor refused early for its declared length */
    void *ctx;
    /* The largest body taken on a path; longer ones reach handle() with body_too_large. */
    size_t (*body_limit)(void *ctx, const char *path);
    /* The port listened on (the real one for port 0), before any request; may be NULL. */
    void (*bound)(void *ctx, unsigned port);
    /* Decides the answer to a complete request, on an MHD worker thread: fills rs (zeroed)
     * and returns true; or calls em_http_defer(call) and returns false, and then exactly one
     * em_http_answer(call, ...) follows, from any thread. rq lives until it returns. */
    bool (*handle)(void *ctx, struct em_http_call *call, const struct em_request *rq,
                   struct em_response *rs);
    /* Called by em_http_stop before MHD stops: answers every call still deferred. */
    void (*stopping)(void *ctx);
};

/* Binds, listens and serves (HTTPS with tls: PEM texts kept alive until em_http_stop). */
struct em_http *em_http_start(const struct em_http_settings *set, const struct em_tls_files *tls,
                              char *err, size_t errlen);
unsigned em_http_port(const struct em_http *srv);
/* Suspends the call's connection: its answer comes later through em_http_answer. */
void em_http_defer(struct em_http_call *call);
/* Answers a deferred call (rs is taken and freed) and resumes its connection; the call is
 * not to be touched after. Any thread. */
void em_http_answer(struct em_http_call *call, struct em_response *rs);
/* Stops accepting connections (the open ones are still served): a graceful stop begins. */
void em_http_quiesce(struct em_http *srv);
void em_http_stop(struct em_http *srv);
/* A program's message through the layer's log: --quiet, format, rate limit, escaping. */
void em_http_log_error(const char *prefix, const char *message);
bool em_http_log_is_json(void);
/* A log line's fields as text: " key=value" each, a value that is not a plain word (letters,
 * digits, . _ - : / @ +) written as JSON, so that no value can break or forge a line. NULL
 * fields give "". Malloc'd. */
char *em_log_fields_text(const json_t *fields);

/* ---- the simulator's HTTP server (em_server.c) ---- */

struct em_server;

/* tls: the PEM texts for HTTPS (kept alive until em_server_stop), or NULL for HTTP. */
/* Binds and listens on opt's HOST:PORT (non-blocking), so the real port (for port 0) is
 * known before the first request; *v6 tells whether it is an IPv6 address. The socket, or
 * -1 with err set. Used by the HTTP server and the raw chaos server alike. */
int em_listen(const struct em_options *opt, bool *v6, unsigned *bound, char *err, size_t errlen);
struct em_server *em_server_start(struct em *em, const struct em_tls_files *tls, char *err,
                                  size_t errlen);
unsigned em_server_port(const struct em_server *srv);
void em_server_stop(struct em_server *srv);

/* ---- misbehaviour on purpose: --chaos (em_chaos.c, em_chaos_raw.c) ---- */

enum em_chaos_kind {
    EM_CHAOS_RAW,      /* hand-written bytes on a plain socket: what MHD cannot be made to do */
    EM_CHAOS_SCENARIO, /* an answer MHD can send, decided by a built-in Lua scenario */
    EM_CHAOS_CERT,     /* the ordinary EM over HTTPS with a certificate that must be bad */
};

struct em_chaos_conn;

struct em_chaos {
    const char *name;
    enum em_chaos_kind kind;
    const char *description;
    void (*run)(struct em_chaos_conn *c); /* EM_CHAOS_RAW: what to do with one connection */
    bool reads_request;                   /* EM_CHAOS_RAW: read the request head (and body) first */
    bool https;         /* EM_CHAOS_RAW: advertise https:// (it will not speak TLS) */
    const char *source; /* EM_CHAOS_SCENARIO: the Lua text */
    size_t source_len;
};

/* NULL when no misbehaviour has that name. */
const struct em_chaos *em_chaos_find(const char *name);
/* Every name with its one-line description, sorted by name. */
void em_chaos_list(FILE *out);
size_t em_chaos_count(void);
const struct em_chaos *em_chaos_at(size_t i);
/* EM_CHAOS_CERT: checks that the PEM certificate really has the fault the name promises
 * (expired, not for localhost, self-signed), so a test cannot pass by accident. */
int em_chaos_check_cert(const struct em_chaos *chaos, const char *cert_pem, char *err,
                        size_t errlen);

/* The Lua scenarios of scripts/em/chaos/, built into the program (em_chaos_scripts.c,
 * generated): name = file name without .lua, description = its first comment line. */
struct em_chaos_script {
    const char *name;
    const char *description;
    const unsigned char *source;
    size_t len;
};
extern const struct em_chaos_script em_chaos_scripts[];
extern const size_t em_chaos_script_count;

/* The raw-socket misbehaviours (em_chaos_raw.c) and their server. */
extern const struct em_chaos em_chaos_raw_table[];
extern const size_t em_chaos_raw_count;
struct em_chaos_server;
struct em_chaos_server *em_chaos_server_start(const struct em_chaos *chaos,
                                              const struct em_options *opt, char *base_url,
                                              size_t base_len, char *err, size_t errlen);
void em_chaos_server_stop(struct em_chaos_server *srv);

/* The program (em_program.c runs these): the simulator's whole life from its command line
 * (argv[0] is the program's name, the options follow, as `lcmcoord em` gave them), returning
 * the exit status; and --log-format json, one JSON object per request line (em_server.c). */
int lcmc_em_main(int argc, char **argv);
void lcmc_em_set_log_json(int on);

#endif
