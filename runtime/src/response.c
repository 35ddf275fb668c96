/*
 * Single exchanges: one request (retried as a policy says) whose answer the caller waits
 * for, kept whole in an lcmc_response (status, headers, body). lcmc_client_request uses
 * it for the EM of a client, lcmc_request for any URL; the REPL and scripts talk to
 * servers through it one exchange at a time.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "engine.h"
#include "events.h"
#include "lcmcoord/json.h"

struct lcmc_response {
    lcmc_op op; /* first: the engine's interrupt finds us through it */
    lcmc_engine *engine;
    lcmc_session session;
    lcmc_call *call;
    char *method;
    char *url;
    char *body;
    size_t body_length;
    char **headers;
    int has_policy;
    lcmc_retry_policy policy;
    lcmc_timer retry_timer;
    int attempt;
    double started;
    double deadline;
    lcmc_transfer_result result;
    lcmc_error error;
    lcmc_status status;
    int done;
    /* The body parsed on the first lcmc_response_body_value (a cache: getters take const). */
    json_t *body_value;
    int body_value_parsed;
    /* lcmc_request_start: the callback, handed the response from the loop once it is done,
     * and what the session borrows, owned here since the caller's copies may be gone. */
    lcmc_request_done_fn *async_done;
    void *async_userdata;
    lcmc_deferred deferred;
    char *own_origin;
    lcmc_tls_options own_tls;
};

static void deliver(lcmc_deferred *d)
{
    lcmc_response *r = (lcmc_response *)((char *)d - offsetof(lcmc_response, deferred));
    r->async_done(r->async_userdata, r->status, r);
}

static void finish(lcmc_response *r, lcmc_status status)
{
    r->status = status;
    r->done = 1;
    lcmc__timer_disarm(r->engine, &r->retry_timer);
    lcmc__op_unregister(r->engine, &r->op);
    if (r->async_done != NULL)
        lcmc__defer(r->engine, &r->deferred, deliver);
}

static void send_attempt(lcmc_response *r);

static void retry_due(lcmc_timer *timer)
{
    send_attempt(timer->owner);
}

/* Whether the policy wants another attempt after this outcome; arms the timer if so. */
static int retry_if_wanted(lcmc_response *r, int transport_failure)
{
    if (!r->has_policy)
        return 0;
    lcmc_retry_outcome outcome = {0};
    outcome.attempt = r->attempt;
    outcome.elapsed = lcmc__now() - r->started;
    outcome.status = (int)r->result.status;
    outcome.transport_failure = transport_failure;
    outcome.retry_after_present = r->result.retry_after_present;
    outcome.retry_after = (double)r->result.retry_after;
    double wait = lcmc_retry_next_wait(&r->policy, &outcome, lcmc__random(r->engine));
    if (wait < 0 || lcmc__now() + wait >= r->deadline)
        return 0;
    if (lcmc__log_enabled(r->engine, LCMC_LOG_INFO)) {
        lcmc_event event = lcmc__event_make(LCMC_EVENT_RETRY, LCMC_LOG_INFO, NULL);
        event.method = r->method;
        event.url = r->url;
        event.attempt = r->attempt;
        event.wait = wait;
        event.time_left = r->deadline - lcmc__now();
        if (transport_failure) {
            event.reason = "transport";
            event.error_kind = lcmc_status_name(LCMC_ETRANSPORT);
        } else {
            event.reason = "status";
            event.status = (int)r->result.status;
        }
        lcmc__event_emit(r->engine, &event, "%s (attempt %d), retrying in %.1f s",
                         transport_failure ? "no answer" : lcmc__reason_phrase(r->result.status),
                         r->attempt, wait);
    }
    lcmc__transfer_result_free(&r->result);
    if (lcmc__timer_arm(r->engine, &r->retry_timer, lcmc__now() + wait) != 0)
        return 0;
    return 1;
}

static void attempt_done(void *userdata, lcmc_transfer_result *result, const lcmc_error *err)
{
    lcmc_response *r = userdata;
    r->call = NULL;
    if (err) {
        lcmc__error_set(&r->error, err->status, "%s", lcmc_error_message(err));
        r->error.http_status = err->http_status;
        lcmc__error_set_request(&r->error, err->method, err->url);
        finish(r, err->status);
        return;
    }
    /* Take the answer over: the call frees only what is left in *result. */
    lcmc__transfer_result_free(&r->result);
    r->result = *result;
    memset(result, 0, sizeof *result);
    int transport_failure = r->result.curl_code != CURLE_OK;
    if (retry_if_wanted(r, transport_failure))
        return;
    if (transport_failure) {
        finish(r, lcmc__transfer_error(&r->result, r->method, r->url, r->session.peer, &r->error));
        return;
    }
    lcmc__log_response(r->engine, NULL, r->method, r->url, r->result.status, r->result.elapsed);
    finish(r, LCMC_OK);
}

static void send_attempt(lcmc_response *r)
{
    r->attempt++;
    lcmc_call_request request = {
        r->method,   r->url, r->body, r->body_length, (const char *const *)r->headers,
        r->deadline, NULL};
    r->call = lcmc__call_start(&r->session, &request, attempt_done, r, &r->error);
    if (r->call == NULL)
        finish(r, r->error.status);
}

static void interrupted(lcmc_op *op)
{
    lcmc_response *r = (lcmc_response *)op;
    lcmc__call_cancel(r->call);
    r->call = NULL;
    lcmc__error_set(&r->error, LCMC_ECANCELLED, "interrupted: %s %s was cancelled", r->method,
                    r->url);
    lcmc__error_set_request(&r->error, r->method, r->url);
    finish(r, LCMC_ECANCELLED);
}

static int copy_headers(lcmc_response *r, const char *const *headers)
{
    size_t n = 0;
    for (const char *const *h = headers; h && *h; h++)
        n++;
    if (n == 0)
        return 0;
    r->headers = calloc(n + 1, sizeof(char *));
    if (r->headers == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((r->headers[i] = lcmc__strdup(headers[i])) == NULL)
            return -1;
    return 0;
}

lcmc_status lcmc__exchange_start(const lcmc_session *session, const char *method, const char *url,
                                 const char *body, size_t body_length, const char *const *headers,
                                 double timeout, const lcmc_retry_policy *policy,
                                 lcmc_request_done_fn *done, void *userdata, lcmc_response **out)
{
    lcmc_engine *e = session->engine;
    lcmc_response *r = calloc(1, sizeof *r);
    if (r == NULL)
        return LCMC_ENOMEM;
    r->engine = e;
    r->session = *session;
    r->op.interrupt = interrupted;
    lcmc__timer_init(&r->retry_timer, retry_due, r);
    r->method = lcmc__strdup(method);
    r->url = lcmc__strdup(url);
    if (body) {
        r->body = malloc(body_length + 1);
        if (r->body) {
            memcpy(r->body, body, body_length);
            r->body[body_length] = '\0';
        }
        r->body_length = body_length;
    }
    if (policy) {
        r->policy = *policy;
        r->has_policy = 1;
    }
    int copies_ok = 1;
    if (done != NULL) {
        /* The caller's origin and TLS settings may be gone before the request is. */
        if (session->origin && (r->own_origin = lcmc__strdup(session->origin)) == NULL)
            copies_ok = 0;
        r->session.origin = r->own_origin;
        if (session->tls) {
            copies_ok = copies_ok && lcmc__tls_copy(&r->own_tls, session->tls) == 0;
            r->session.tls = &r->own_tls;
        }
    }
    if (!copies_ok || r->method == NULL || r->url == NULL || (body && r->body == NULL) ||
        copy_headers(r, headers) != 0) {
        lcmc_response_free(r);
        return LCMC_ENOMEM;
    }
    r->async_done = done;
    r->async_userdata = userdata;
    *out = r;
    if (lcmc_engine_interrupted(e)) {
        lcmc__error_set(&r->error, LCMC_ECANCELLED, "interrupted before %s %s was sent", method,
                        url);
        finish(r, LCMC_ECANCELLED);
        return done != NULL ? LCMC_OK : r->status; /* the callback says it */
    }
    r->started = lcmc__now();
    r->deadline = r->started + timeout;
    lcmc__op_register(e, &r->op);
    send_attempt(r);
    return LCMC_OK;
}

lcmc_status lcmc__exchange(const lcmc_session *session, const char *method, const char *url,
                           const char *body, size_t body_length, const char *const *headers,
                           double timeout, const lcmc_retry_policy *policy, lcmc_response **out)
{
    lcmc_engine *e = session->engine;
    lcmc_status s = lcmc__exchange_start(session, method, url, body, body_length, headers, timeout,
                                         policy, NULL, NULL, out);
    if (s != LCMC_OK)
        return s;
    lcmc_response *r = *out;
    while (!r->done) {
        if (lcmc__engine_step(e) == LCMC_EUSAGE && !r->done) {
            /* Nothing left that could finish it: a bug, reported rather than spun on. */
            lcmc__call_cancel(r->call);
            r->call = NULL;
            lcmc__error_set(&r->error, LCMC_ETRANSPORT, "the request was lost by the engine");
            finish(r, LCMC_ETRANSPORT);
        }
    }
    return r->status;
}

void lcmc_response_free(lcmc_response *r)
{
    if (r == NULL)
        return;
    lcmc__call_cancel(r->call);
    if (r->engine) {
        lcmc__timer_disarm(r->engine, &r->retry_timer);
        lcmc__op_unregister(r->engine, &r->op);
        lcmc__defer_cancel(r->engine, &r->deferred);
    }
    free(r->own_origin);
    lcmc__tls_free(&r->own_tls);
    lcmc__transfer_result_free(&r->result);
    lcmc__error_clear(&r->error);
    json_decref(r->body_value);
    free(r->method);
    free(r->url);
    lcmc__free_secret(r->body); /* may have held a form with a secret */
    for (char **h = r->headers; h && *h; h++)
        lcmc__free_secret(*h);
    free(r->headers);
    free(r);
}

int lcmc_response_status(const lcmc_response *r)
{
    return r ? (int)r->result.status : 0;
}

const char *lcmc_response_body(const lcmc_response *r, size_t *length)
{
    if (length)
        *length = r && r->result.body.data ? r->result.body.length : 0;
    return r && r->result.body.data ? r->result.body.data : "";
}

const json_t *lcmc_response_body_value(const lcmc_response *r)
{
    if (r == NULL || !r->done || r->result.body.data == NULL || r->result.body.length == 0)
        return NULL;
    if (!r->body_value_parsed) {
        lcmc_response *cache = (lcmc_response *)r;
        cache->body_value = lcmc_json_parse(r->result.body.data, r->result.body.length, NULL, 0);
        cache->body_value_parsed = 1;
    }
    return r->body_value;
}

lcmc_status lcmc_client_request_value(lcmc_client *client, const char *method, const char *target,
                                      const json_t *body, double timeout, lcmc_response **out)
{
    char *text = NULL;
    if (body != NULL && (text = lcmc_json_dump(body, NULL)) == NULL) {
        if (out)
            *out = NULL;
        return LCMC_ENOMEM;
    }
    lcmc_status status = lcmc_client_request(client, method, target, text, timeout, out);
    lcmc__free_secret(text); /* a body may hold a secret, as lcmc_response_free assumes */
    return status;
}

size_t lcmc_response_header_count(const lcmc_response *r)
{
    return r ? r->result.header_count : 0;
}

void lcmc_response_header(const lcmc_response *r, size_t i, const char **name, const char **value)
{
    *name = *value = NULL;
    if (r && i < r->result.header_count) {
        *name = r->result.header_names[i];
        *value = r->result.header_values[i];
    }
}

const char *lcmc_response_header_get(const lcmc_response *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    const char *found = NULL;
    for (size_t i = 0; i < r->result.header_count; i++)
        if (r->result.header_names[i] && strcasecmp(r->result.header_names[i], name) == 0)
            found = r->result.header_values[i];
    return found;
}

double lcmc_response_elapsed(const lcmc_response *r)
{
    return r ? r->result.elapsed : 0;
}

int lcmc_response_retry_after(const lcmc_response *r, double *seconds)
{
    if (seconds)
        *seconds = r && r->result.retry_after_present ? (double)r->result.retry_after : 0;
    return r && r->result.retry_after_present;
}

const char *lcmc_response_url(const lcmc_response *r)
{
    return r ? r->url : NULL;
}

const lcmc_error *lcmc_response_error(const lcmc_response *r)
{
    if (r == NULL || r->status == LCMC_OK)
        return NULL;
    return &r->error;
}
