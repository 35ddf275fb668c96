/*
 * Calls: one logical request with credentials. A session says what every request to one
 * origin shares (credentials that may go only there, TLS settings, the body cap, headers
 * sent each time); a call waits for an OAuth 2.0 token when it needs one, sends the
 * request, and after a 401 to a token drops it, gets a new one and sends once more. Clients
 * embed a session for their EM; lcmc_request makes one for the URL it is given.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "engine.h"
#include "events.h"

#define MAX_FIXED_HEADERS 4

/* Fills a transfer spec for a request whose origin was already judged (`same`). */
static void fill_spec(const lcmc_session *session, lcmc_transfer_spec *spec, const char *method,
                      const char *url, const char *body, size_t body_length, double deadline,
                      int same)
{
    memset(spec, 0, sizeof *spec);
    spec->method = method;
    spec->url = url;
    spec->body = body;
    spec->body_length = body_length;
    spec->deadline = deadline;
    spec->max_body = session->max_body;
    spec->tls = session->tls;
    const lcmc_auth *auth = session->auth;
    if (same && auth && auth->type == LCMC_AUTH_BASIC) {
        spec->basic_user = auth->basic_user;
        spec->basic_password = auth->basic_password;
    }
}

/* 1 when `url` is spelt from `origin` itself ("http://host:port/..."), as the URLs made
 * from an endpoint with its port are: then it is that origin, without parsing it (the
 * parse was 3 % of a coordination's CPU, docs/benchmarks.md). 0 says nothing either way. */
static int spelt_from_origin(const char *url, const char *origin)
{
    size_t n = origin != NULL ? strlen(origin) : 0;
    return n > 0 && strncmp(url, origin, n) == 0 && url[n] == '/';
}

int lcmc__session_judge_origin(const lcmc_session *session, const char *method, const char *url,
                               lcmc_error *err)
{
    const lcmc_auth *auth = session->auth;
    int has_credentials = auth && auth->type != LCMC_AUTH_NONE;
    if (spelt_from_origin(url, session->origin))
        return 1;
    char *origin = lcmc__url_origin(url);
    int same = origin && session->origin && strcmp(origin, session->origin) == 0;
    if (same || !has_credentials || session->allow_cross_origin) {
        free(origin);
        return same;
    }
    char *path = lcmc__url_path(url);
    lcmc__error_set(err, LCMC_EPROTOCOL,
                    "refusing to send credentials to %s, which is not their origin %s (%s %s)",
                    origin ? origin : "an unparsable URL", session->origin, method,
                    path ? path : "?");
    lcmc__error_set_request(err, method, url);
    free(path);
    free(origin);
    return -1;
}

struct lcmc_call {
    lcmc_session session;
    /* Borrowed from the caller's lcmc_call_request, which outlives the call. */
    const char *method;
    const char *url;
    const char *body;
    size_t body_length;
    const char **headers; /* the session's fixed headers, then the call's own; NULL ends */
    double deadline;
    const lcmc_event_subject *about;
    int same_origin; /* the request goes to the credentials' origin */
    int with_token;  /* ... and they use tokens */
    int retried;     /* the one retry after a 401 was spent */
    char *token;     /* the token the transfer in flight carries */
    lcmc_transfer *transfer;
    lcmc_token_waiter *waiter;
    lcmc_timer token_deadline; /* the call's own deadline while it waits for a token */
    lcmc_call_done_fn *done;
    void *userdata;
};

static void call_free(lcmc_call *call)
{
    lcmc__transfer_cancel(call->transfer);
    lcmc__token_waiter_cancel(call->waiter);
    lcmc__timer_disarm(call->session.engine, &call->token_deadline);
    free(call->headers);
    lcmc__free_secret(call->token);
    free(call);
}

void lcmc__call_cancel(lcmc_call *call)
{
    if (call)
        call_free(call);
}

int lcmc__call_request_started(const lcmc_call *call)
{
    return call != NULL && lcmc__transfer_request_started(call->transfer);
}

void lcmc__call_send_no_more(lcmc_call *call)
{
    /* The one resend after a 401 is what is left to forbid: the answer is handed back. */
    if (call)
        call->retried = 1;
}

static int call_send(lcmc_call *call, const char *token);

static void call_fail_now(lcmc_call *call, lcmc_status status, const char *message)
{
    lcmc_error err = {0};
    lcmc__error_set(&err, status, "%s", message);
    call->done(call->userdata, NULL, &err);
    lcmc__error_clear(&err);
    call_free(call);
}

static void token_wait_expired(lcmc_timer *timer)
{
    lcmc_call *call = timer->owner;
    lcmc__token_waiter_cancel(call->waiter);
    call->waiter = NULL;
    call_fail_now(call, LCMC_EDEADLINE,
                  "deadline exceeded while waiting for an access token from the token endpoint");
}

static void call_transfer_done(lcmc_transfer *t, void *userdata)
{
    lcmc_call *call = userdata;
    lcmc_transfer_result r;
    LCMC_DEBUGASSERT(call->transfer == t && call->waiter == NULL);
    lcmc__transfer_finish(t, &r);
    call->transfer = NULL;
    if (r.curl_code == CURLE_OK && r.status == 401 && call->with_token && !call->retried) {
        /* The token was revoked or expired early: one fresh token, one more try. */
        call->retried = 1;
        lcmc_engine *e = call->session.engine;
        if (lcmc__log_enabled(e, LCMC_LOG_INFO)) {
            lcmc_event event = lcmc__event_make(LCMC_EVENT_TOKEN, LCMC_LOG_INFO, call->about);
            event.reason = "refused";
            event.method = call->method;
            event.url = call->url;
            event.status = 401;
            lcmc__event_emit(
                e, &event, "%s refused the access token (401): getting a new one and retrying once",
                call->session.peer);
        }
        lcmc__token_invalidate(e, call->session.auth, call->token);
        lcmc__transfer_result_free(&r);
        if (call_send(call, NULL) != 0)
            call_fail_now(call, LCMC_ENOMEM, "out of memory");
        return;
    }
    call->done(call->userdata, &r, NULL);
    lcmc__transfer_result_free(&r);
    call_free(call);
}

static void call_token_ready(void *userdata, const char *token, const lcmc_error *err)
{
    lcmc_call *call = userdata;
    call->waiter = NULL;
    lcmc__timer_disarm(call->session.engine, &call->token_deadline);
    if (token == NULL) {
        call->done(call->userdata, NULL, err);
        call_free(call);
        return;
    }
    if (call_send(call, token) != 0)
        call_fail_now(call, LCMC_ENOMEM, "out of memory");
}

/* Sends the request, first getting a token when it needs one and `token` is NULL. Returns
 * -1, having called nothing back, only when memory ran out. */
static int call_send(lcmc_call *call, const char *token)
{
    const lcmc_session *s = &call->session;
    /* One request in flight per call: a token wait or a transfer, never both, never two. */
    LCMC_DEBUGASSERT(call->transfer == NULL && call->waiter == NULL);
    if (call->with_token && token == NULL) {
        lcmc_token_request request = {s->auth, s->tls, s->max_body, s->token_refresh_margin,
                                      call->deadline};
        int got =
            lcmc__token_get(s->engine, &request, call_token_ready, call, &call->waiter, &token);
        if (got == 0) {
            /* The fetch has a budget of its own; this call's deadline is its own too. */
            if (lcmc__timer_arm(s->engine, &call->token_deadline, call->deadline) != 0)
                return -1;
            return 0; /* call_token_ready goes on */
        }
        if (got < 0)
            return -1;
    }
    lcmc_transfer_spec spec;
    /* The origin was judged when the call started: it cannot have changed since. */
    fill_spec(s, &spec, call->method, call->url, call->body, call->body_length, call->deadline,
              call->same_origin);
    spec.headers = call->headers;
    lcmc__free_secret(call->token);
    call->token = NULL;
    if (call->with_token) {
        if ((call->token = lcmc__strdup(token)) == NULL)
            return -1;
        spec.bearer_token = call->token;
    }
    lcmc__log_request(s->engine, call->about, call->method, call->url);
    call->transfer = lcmc__transfer_start(s->engine, &spec, call_transfer_done, call);
    return call->transfer ? 0 : -1;
}

static int join_headers(lcmc_call *call, const char *const *extra)
{
    size_t n = 0;
    for (const char *const *h = call->session.fixed_headers; h && *h; h++)
        n++;
    for (const char *const *h = extra; h && *h; h++)
        n++;
    call->headers = calloc(n + 2, sizeof(char *));
    if (call->headers == NULL)
        return -1;
    size_t i = 0;
    for (const char *const *h = call->session.fixed_headers; h && *h; h++)
        call->headers[i++] = *h;
    for (const char *const *h = extra; h && *h; h++)
        call->headers[i++] = *h;
    if (call->body && call->session.json_bodies)
        call->headers[i++] = "Content-Type: application/json";
    return 0;
}

lcmc_call *lcmc__call_start(const lcmc_session *session, const lcmc_call_request *request,
                            lcmc_call_done_fn *done, void *userdata, lcmc_error *err)
{
    int same = lcmc__session_judge_origin(session, request->method, request->url, err);
    if (same < 0)
        return NULL;
    int has_credentials = session->auth && session->auth->type != LCMC_AUTH_NONE;
    if (!same && has_credentials && lcmc__log_enabled(session->engine, LCMC_LOG_INFO)) {
        lcmc_event event = lcmc__event_make(LCMC_EVENT_CREDENTIALS, LCMC_LOG_INFO, request->about);
        event.reason = "other_origin";
        event.method = request->method;
        event.url = request->url;
        lcmc__event_emit(session->engine, &event,
                         "%s is not the credentials' origin: sending it without them",
                         request->url);
    }
    lcmc_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        return NULL;
    }
    call->session = *session;
    lcmc__timer_init(&call->token_deadline, token_wait_expired, call);
    call->method = request->method;
    call->url = request->url;
    call->body = request->body;
    call->body_length = request->body ? request->body_length : 0;
    call->deadline = request->deadline;
    call->about = request->about;
    call->same_origin = same;
    call->with_token = same && has_credentials && lcmc__auth_uses_token(session->auth);
    call->done = done;
    call->userdata = userdata;
    /* Completion always comes from the loop, never from inside this call. */
    if (join_headers(call, request->headers) != 0 || call_send(call, NULL) != 0) {
        call_free(call);
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        return NULL;
    }
    return call;
}
