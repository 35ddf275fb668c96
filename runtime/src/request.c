/*
 * Requests to any URL, for scripts and C programs that talk to more than the EM (the
 * VNFC's own API, a health endpoint): credentials objects made from the ETSI
 * `authentication` structure, their Authorization header for code that builds requests
 * itself, and lcmc_request, which sends one request with those credentials (to the URL's
 * own origin only), a retry policy and a deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth.h"
#include "engine.h"

#define DEFAULT_REQUEST_TIMEOUT 60.0
#define DEFAULT_MAX_BODY        ((size_t)1024 * 1024)

struct lcmc_credentials {
    lcmc_engine *engine;
    lcmc_auth auth;
    lcmc_tls_options tls; /* own copies */
};

void lcmc_free_secret(char *secret)
{
    lcmc__free_secret(secret);
}

void lcmc__tls_free(lcmc_tls_options *tls)
{
    free((char *)tls->cacert);
    free((char *)tls->capath);
    free((char *)tls->cert);
    free((char *)tls->key);
    lcmc__free_secret((char *)tls->key_password);
    memset(tls, 0, sizeof *tls);
}

int lcmc__tls_copy(lcmc_tls_options *dst, const lcmc_tls_options *src)
{
    memset(dst, 0, sizeof *dst);
    if (src == NULL)
        return 0;
    dst->insecure = src->insecure;
    const char **fields[] = {&dst->cacert, &dst->capath, &dst->cert, &dst->key, &dst->key_password};
    const char *values[] = {src->cacert, src->capath, src->cert, src->key, src->key_password};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (values[i] && (*fields[i] = lcmc__strdup(values[i])) == NULL)
            return -1;
    return 0;
}

lcmc_status lcmc_credentials_new(lcmc_credentials **out, lcmc_engine *e,
                                 const char *authentication_json, const lcmc_tls_options *tls)
{
    if (out == NULL || e == NULL)
        return LCMC_EUSAGE;
    *out = NULL;
    lcmc_credentials *c = calloc(1, sizeof *c);
    if (c == NULL)
        return LCMC_ENOMEM;
    c->engine = e;
    if (lcmc__tls_copy(&c->tls, tls) != 0) {
        lcmc_credentials_free(c);
        return LCMC_ENOMEM;
    }
    char why[256] = "";
    lcmc_status s = lcmc__auth_parse(&c->auth, authentication_json, why, sizeof why);
    c->auth.own_tls = &c->tls;
    if (s == LCMC_OK && lcmc__check_credentials_tls(&c->auth, &c->tls, why, sizeof why) != 0)
        s = LCMC_EAUTH;
    if (s != LCMC_OK) {
        lcmc__engine_set_last_error(e, s, "%s", why[0] ? why : lcmc_strerror(s));
        lcmc_credentials_free(c);
        return s;
    }
    *out = c;
    return LCMC_OK;
}

void lcmc_credentials_free(lcmc_credentials *c)
{
    if (c == NULL)
        return;
    lcmc__auth_clear(&c->auth);
    lcmc__tls_free(&c->tls);
    free(c);
}

const char *lcmc_credentials_type(const lcmc_credentials *c)
{
    return c ? lcmc__auth_type_name(&c->auth) : "NONE";
}

static char *basic_header(const lcmc_auth *auth)
{
    char *pair = lcmc__asprintf("%s:%s", auth->basic_user, auth->basic_password);
    if (pair == NULL)
        return NULL;
    size_t n = strlen(pair);
    char *value = malloc(6 + 4 * ((n + 2) / 3) + 1);
    if (value) {
        memcpy(value, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)value + 6, (const unsigned char *)pair, (int)n);
    }
    lcmc__free_secret(pair);
    return value;
}

typedef struct token_wait {
    int done;
    int expired;
    char *token;
    lcmc_error error;
} token_wait;

static void token_arrived(void *userdata, const char *token, const lcmc_error *err)
{
    token_wait *w = userdata;
    w->done = 1;
    if (token)
        w->token = lcmc__strdup(token);
    else if (err) {
        lcmc__error_set(&w->error, err->status, "%s", lcmc_error_message(err));
        w->error.http_status = err->http_status;
    }
}

static void token_wait_expired(lcmc_timer *timer)
{
    token_wait *w = timer->owner;
    w->expired = 1;
}

lcmc_status lcmc_credentials_header(lcmc_credentials *c, double timeout, char **value)
{
    if (c == NULL || value == NULL)
        return LCMC_EUSAGE;
    *value = NULL;
    lcmc_engine *e = c->engine;
    if (c->auth.type == LCMC_AUTH_NONE)
        return LCMC_OK;
    if (c->auth.type == LCMC_AUTH_BASIC) {
        *value = basic_header(&c->auth);
        return *value ? LCMC_OK : LCMC_ENOMEM;
    }
    double deadline = lcmc__now() + (timeout > 0 ? timeout : DEFAULT_REQUEST_TIMEOUT);
    lcmc_token_request request = {&c->auth, &c->tls, DEFAULT_MAX_BODY, 0, deadline};
    token_wait w = {0};
    lcmc_token_waiter *waiter = NULL;
    const char *token = NULL;
    int got = lcmc__token_get(e, &request, token_arrived, &w, &waiter, &token);
    if (got < 0)
        return LCMC_ENOMEM;
    if (got == 1) {
        *value = lcmc__asprintf("Bearer %s", token);
        return *value ? LCMC_OK : LCMC_ENOMEM;
    }
    /* The fetch has a budget of its own; this wait is bounded by the caller's timeout. */
    lcmc_timer expiry;
    lcmc__timer_init(&expiry, token_wait_expired, &w);
    if (lcmc__timer_arm(e, &expiry, deadline) != 0) {
        lcmc__token_waiter_cancel(waiter);
        return LCMC_ENOMEM;
    }
    lcmc_status s = LCMC_OK;
    while (!w.done) {
        if (lcmc_engine_interrupted(e)) {
            s = LCMC_ECANCELLED;
            break;
        }
        if (w.expired) {
            s = LCMC_EDEADLINE;
            break;
        }
        if (lcmc__engine_step(e) == LCMC_EUSAGE && !w.done) {
            s = LCMC_ETRANSPORT;
            break;
        }
    }
    lcmc__timer_disarm(e, &expiry);
    if (!w.done) {
        lcmc__token_waiter_cancel(waiter);
        lcmc__engine_set_last_error(e, s, "%s",
                                    s == LCMC_ECANCELLED  ? "interrupted while waiting for a token"
                                    : s == LCMC_EDEADLINE ? "deadline exceeded while waiting for "
                                                            "an access token"
                                                          : "the token request was lost");
        return s;
    }
    if (w.token == NULL) {
        s = w.error.status != LCMC_OK ? w.error.status : LCMC_EAUTH;
        lcmc__engine_set_last_error(e, s, "%s", lcmc_error_message(&w.error));
        lcmc__error_clear(&w.error);
        return s;
    }
    *value = lcmc__asprintf("Bearer %s", w.token);
    lcmc__free_secret(w.token);
    return *value ? LCMC_OK : LCMC_ENOMEM;
}

/* What lcmc_request and lcmc_request_start share: the options checked, the URL made safe
 * for logs, the session for its origin; then the exchange, waited for or not. */
static lcmc_status request_begin(lcmc_engine *e, const lcmc_request_options *o,
                                 lcmc_request_done_fn *done, void *userdata, lcmc_response **out)
{
    if (out)
        *out = NULL;
    if (e == NULL || o == NULL || out == NULL || o->version != LCMC_REQUEST_OPTIONS_VERSION ||
        o->url == NULL)
        return LCMC_EUSAGE;
    char why[160] = "";
    /* Resolved against itself: checks it is absolute http(s), drops any user:password@
     * (which would reach logs) and the fragment. */
    char *url = lcmc__resolve_location(o->url, o->url, why, sizeof why);
    if (url == NULL) {
        lcmc__engine_set_last_error(e, LCMC_EUSAGE, "cannot request '%s': %s", "that URL",
                                    why[0] ? why : "out of memory");
        return why[0] ? LCMC_EUSAGE : LCMC_ENOMEM;
    }
    char *origin = lcmc__url_origin(url);
    if (origin == NULL) {
        free(url);
        return LCMC_ENOMEM;
    }
    lcmc_credentials *c = o->credentials;
    lcmc_session session = {.engine = e,
                            .auth = c ? &c->auth : NULL,
                            .origin = origin,
                            .tls = o->tls ? o->tls
                                   : c    ? &c->tls
                                          : NULL,
                            .max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY,
                            .fixed_headers = NULL,
                            .json_bodies = 0,
                            .peer = "the server"};
    if (c && c->auth.type != LCMC_AUTH_NONE && strncmp(url, "http://", 7) == 0)
        lcmc__warn_once(e, origin,
                        "credentials are sent to %s over plain http://, readable by anyone on "
                        "the path",
                        origin);
    if (session.tls && session.tls->insecure)
        lcmc__warn_once(e, "insecure",
                        "TLS verification is off: the server is not authenticated, and "
                        "credentials may go to an impostor");
    const char *method = o->method ? o->method : "GET";
    double timeout = o->timeout > 0 ? o->timeout : DEFAULT_REQUEST_TIMEOUT;
    size_t body_length = o->body ? o->body_length : 0;
    lcmc_status s = done == NULL
                        ? lcmc__exchange(&session, method, url, o->body, body_length, o->headers,
                                         timeout, o->retry, out)
                        : lcmc__exchange_start(&session, method, url, o->body, body_length,
                                               o->headers, timeout, o->retry, done, userdata, out);
    free(origin);
    free(url);
    return s;
}

lcmc_status lcmc_request(lcmc_engine *e, const lcmc_request_options *o, lcmc_response **out)
{
    return request_begin(e, o, NULL, NULL, out);
}

lcmc_status lcmc_request_start(lcmc_engine *e, const lcmc_request_options *o,
                               lcmc_request_done_fn *done, void *userdata,
                               lcmc_request_handle **out)
{
    if (out != NULL)
        *out = NULL;
    if (done == NULL || out == NULL)
        return LCMC_EUSAGE;
    lcmc_response *r = NULL;
    lcmc_status s = request_begin(e, o, done, userdata, &r);
    /* The handle is the response to come: the callback receives it. */
    *out = (lcmc_request_handle *)r;
    return s;
}

void lcmc_request_cancel(lcmc_request_handle *handle)
{
    lcmc_response_free((lcmc_response *)handle);
}
