/*
 * A client: what is fixed for one EM (apiRoot, credentials, TLS files, waits and limits),
 * and single requests to it (lcmc_client_request), which the REPL and scripts use to
 * talk to an EM one exchange at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "engine.h"

struct lcmc_client {
    lcmc_engine *engine;
    unsigned long serial;
    lcmc_client_options options; /* strings below are the client's own copies */
    char *origin;
    char *version_header;
    lcmc_auth auth;
};

static void free_options(lcmc_client_options *o)
{
    free((char *)o->endpoint);
    free((char *)o->api_version);
    free((char *)o->tls.cacert);
    free((char *)o->tls.capath);
    free((char *)o->tls.cert);
    free((char *)o->tls.key);
    lcmc__free_secret((char *)o->tls.key_password);
    memset(o, 0, sizeof *o);
}

static int copy_option(const char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = lcmc__strdup(src);
    return *dst ? 0 : -1;
}

static lcmc_status check_readable(lcmc_engine *e, const char *what, const char *path)
{
    if (path && access(path, R_OK) != 0) {
        lcmc__engine_set_last_error(e, LCMC_EUSAGE, "cannot read the %s file '%s'", what, path);
        return LCMC_EUSAGE;
    }
    return LCMC_OK;
}

/* Everything about the client certificate that can be known before a byte is sent: the
 * files read, the key belongs to the certificate, and for OAUTH2_CLIENT_CERT the
 * certificate is the one certificateRef names. */
static int check_client_certificate(lcmc_client *c, char *why, size_t why_size)
{
    const lcmc_tls_options *tls = &c->options.tls;
    if (c->auth.type == LCMC_AUTH_OAUTH2_CLIENT_CERT && (tls->cert == NULL || tls->key == NULL)) {
        snprintf(why, why_size,
                 "authType OAUTH2_CLIENT_CERT needs a client certificate and key (tls.cert and "
                 "tls.key, --cert and --key, or LCMCOORD_CERT and LCMCOORD_KEY)");
        return -1;
    }
    if ((tls->cert == NULL) != (tls->key == NULL)) {
        snprintf(why, why_size, "a client certificate needs its key and a key its certificate");
        return -1;
    }
    if (tls->cert &&
        lcmc__check_client_keypair(tls->cert, tls->key, tls->key_password, why, why_size) != 0)
        return -1;
    if (c->auth.type != LCMC_AUTH_OAUTH2_CLIENT_CERT)
        return 0;
    char thumbprint[64];
    if (lcmc__certificate_thumbprint(tls->cert, thumbprint, why, why_size) != 0)
        return -1;
    if (strcmp(thumbprint, c->auth.certificate_ref) != 0) {
        snprintf(why, why_size,
                 "authentication.paramsOauth2ClientCert.certificateRef does not match the "
                 "client certificate '%s' (its x5t#S256 is %s)",
                 tls->cert, thumbprint);
        return -1;
    }
    return 0;
}

/* Credentials readable on the wire deserve a word, once per origin and engine. */
static void warn_about_plain_credentials(lcmc_client *c)
{
    if (c->auth.type != LCMC_AUTH_NONE && strncmp(c->options.endpoint, "http://", 7) == 0)
        lcmc__warn_once(c->engine, c->origin,
                        "credentials are sent to %s over plain http://, readable by anyone on "
                        "the path",
                        c->origin);
    if (lcmc__auth_uses_token(&c->auth) && strncmp(c->auth.token_endpoint, "http://", 7) == 0) {
        char *origin = lcmc__url_origin(c->auth.token_endpoint);
        if (origin)
            lcmc__warn_once(c->engine, origin,
                            "the client secret is sent to the token endpoint %s over plain "
                            "http://, readable by anyone on the path",
                            origin);
        free(origin);
    }
    if (c->options.tls.insecure)
        lcmc__warn_once(c->engine, "insecure",
                        "TLS verification is off: the EM and the token endpoint are not "
                        "authenticated, and credentials may go to an impostor");
}

lcmc_status lcmc_client_new(lcmc_client **out, lcmc_engine *e, const lcmc_client_options *opt)
{
    if (out == NULL || e == NULL)
        return LCMC_EUSAGE;
    *out = NULL;
    if (opt == NULL || opt->version != LCMC_CLIENT_OPTIONS_VERSION) {
        lcmc__engine_set_last_error(e, LCMC_EUSAGE, "client options of an unknown version");
        return LCMC_EUSAGE;
    }
    char why[256] = "";
    char *endpoint = lcmc__normalise_endpoint(opt->endpoint, why, sizeof why);
    if (endpoint == NULL) {
        lcmc__engine_set_last_error(e, LCMC_EUSAGE, "%s", why[0] ? why : "out of memory");
        return why[0] ? LCMC_EUSAGE : LCMC_ENOMEM;
    }
    if (opt->timeout < 0 || opt->wait_floor < 0 || opt->default_interval < 0) {
        free(endpoint);
        lcmc__engine_set_last_error(
            e, LCMC_EUSAGE, "timeout, wait_floor and default_interval must not be negative");
        return LCMC_EUSAGE;
    }
    lcmc_status s;
    if ((s = check_readable(e, "CA", opt->tls.cacert)) ||
        (s = check_readable(e, "CA directory", opt->tls.capath)) ||
        (s = check_readable(e, "client certificate", opt->tls.cert)) ||
        (s = check_readable(e, "client key", opt->tls.key))) {
        free(endpoint);
        return s;
    }

    lcmc_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        free(endpoint);
        return LCMC_ENOMEM;
    }
    c->engine = e;
    c->options = *opt;
    c->options.endpoint = endpoint;
    c->options.timeout = opt->timeout > 0 ? opt->timeout : 3600;
    c->options.wait_floor = opt->wait_floor > 0 ? opt->wait_floor : 1;
    c->options.default_interval = opt->default_interval > 0 ? opt->default_interval : 5;
    c->options.max_body = opt->max_body > 0 ? opt->max_body : 1024 * 1024;
    c->options.authentication_json = NULL; /* parsed below, not kept */
    if (copy_option(&c->options.api_version, opt->api_version ? opt->api_version : "1.0.0") ||
        copy_option(&c->options.tls.cacert, opt->tls.cacert) ||
        copy_option(&c->options.tls.capath, opt->tls.capath) ||
        copy_option(&c->options.tls.cert, opt->tls.cert) ||
        copy_option(&c->options.tls.key, opt->tls.key) ||
        copy_option(&c->options.tls.key_password, opt->tls.key_password)) {
        lcmc_client_free(c);
        return LCMC_ENOMEM;
    }
    c->origin = lcmc__url_origin(endpoint);
    c->version_header = lcmc__asprintf("Version: %s", c->options.api_version);
    if (c->origin == NULL || c->version_header == NULL) {
        lcmc_client_free(c);
        return LCMC_ENOMEM;
    }
    why[0] = '\0';
    s = lcmc__auth_parse(&c->auth, opt->authentication_json, why, sizeof why);
    if (s != LCMC_OK) {
        lcmc__engine_set_last_error(e, s, "%s", why[0] ? why : lcmc_strerror(s));
        lcmc_client_free(c);
        return s;
    }
    if (check_client_certificate(c, why, sizeof why) != 0) {
        lcmc__engine_set_last_error(e, LCMC_EAUTH, "%s", why);
        lcmc_client_free(c);
        return LCMC_EAUTH;
    }
    if (opt->oauth2_secret_in_body && c->auth.type == LCMC_AUTH_OAUTH2_CLIENT_CREDENTIALS)
        c->auth.token_client_auth = LCMC_TOKEN_AUTH_BODY;
    warn_about_plain_credentials(c);
    c->serial = lcmc__engine_next_client_serial(e);
    *out = c;
    return LCMC_OK;
}

void lcmc_client_free(lcmc_client *c)
{
    if (c == NULL)
        return;
    free_options(&c->options);
    free(c->origin);
    free(c->version_header);
    lcmc__auth_clear(&c->auth);
    free(c);
}

const char *lcmc_client_endpoint(const lcmc_client *c)
{
    return c ? c->options.endpoint : NULL;
}

lcmc_status lcmc_client_record_json(const lcmc_client *c, char **out)
{
    if (c == NULL || out == NULL)
        return LCMC_EUSAGE;
    return lcmc__record_json(c->engine, c->serial, out);
}

lcmc_engine *lcmc__client_engine(const lcmc_client *c)
{
    return c->engine;
}

unsigned long lcmc__client_serial(const lcmc_client *c)
{
    return c->serial;
}

const lcmc_client_options *lcmc__client_options(const lcmc_client *c)
{
    return &c->options;
}

int lcmc__client_has_credentials(const lcmc_client *c)
{
    return c->auth.type != LCMC_AUTH_NONE;
}

const char *lcmc__client_origin(const lcmc_client *c)
{
    return c->origin;
}

int lcmc__client_prepare(lcmc_client *c, lcmc_transfer_spec *spec, const char *method,
                         const char *url, const char *body, double deadline, const char *headers[4],
                         lcmc_error *err)
{
    memset(spec, 0, sizeof *spec);
    spec->method = method;
    spec->url = url;
    spec->body = body;
    spec->body_length = body ? strlen(body) : 0;
    spec->deadline = deadline;
    spec->max_body = c->options.max_body;
    spec->tls = &c->options.tls;
    size_t n = 0;
    headers[n++] = c->version_header;
    headers[n++] = "Accept: application/json";
    if (body)
        headers[n++] = "Content-Type: application/json";
    headers[n] = NULL;
    spec->headers = headers;

    char *origin = lcmc__url_origin(url);
    int same = origin && strcmp(origin, c->origin) == 0;
    if (same || c->auth.type == LCMC_AUTH_NONE) {
        free(origin);
        if (same && c->auth.type == LCMC_AUTH_BASIC) {
            spec->basic_user = c->auth.basic_user;
            spec->basic_password = c->auth.basic_password;
        }
        return same;
    }
    if (c->options.allow_cross_origin) {
        free(origin);
        return 0;
    }
    char *path = lcmc__url_path(url);
    lcmc__error_set(err, LCMC_EPROTOCOL,
                    "refusing to send the EM's credentials to %s, which is not the EM's "
                    "origin %s (%s %s)",
                    origin ? origin : "an unparsable URL", c->origin, method, path ? path : "?");
    lcmc__error_set_request(err, method, url);
    free(path);
    free(origin);
    return -1;
}

/* ---- calls ----------------------------------------------------------------------------- */

struct lcmc_call {
    lcmc_client *client;
    char *method;
    char *url;
    char *body;
    double deadline;
    int with_token; /* the request goes to the EM's origin and the auth uses tokens */
    int retried;    /* the one retry after a 401 was spent */
    char *token;    /* the token the transfer in flight carries */
    lcmc_transfer *transfer;
    lcmc_token_waiter *waiter;
    lcmc_call_done_fn *done;
    void *userdata;
};

static void call_free(lcmc_call *call)
{
    lcmc__transfer_cancel(call->transfer);
    lcmc__token_waiter_cancel(call->waiter);
    free(call->method);
    free(call->url);
    free(call->body);
    lcmc__free_secret(call->token);
    free(call);
}

void lcmc__call_cancel(lcmc_call *call)
{
    if (call)
        call_free(call);
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

static void call_transfer_done(lcmc_transfer *t, void *userdata)
{
    lcmc_call *call = userdata;
    lcmc_transfer_result r;
    lcmc__transfer_finish(t, &r);
    call->transfer = NULL;
    if (r.curl_code == CURLE_OK && r.status == 401 && call->with_token && !call->retried) {
        /* The token was revoked or expired early: one fresh token, one more try. */
        call->retried = 1;
        lcmc_client *c = call->client;
        lcmc__log(c->engine, LCMC_LOG_INFO,
                  "EM refused the access token (401): getting a new one and retrying once");
        lcmc__token_invalidate(c->engine, &c->auth, call->token);
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
    lcmc_client *c = call->client;
    if (call->with_token && token == NULL) {
        lcmc_token_request request = {&c->auth, &c->options.tls, c->options.max_body,
                                      c->options.token_refresh_margin, call->deadline};
        int got =
            lcmc__token_get(c->engine, &request, call_token_ready, call, &call->waiter, &token);
        if (got == 0)
            return 0; /* call_token_ready goes on */
        if (got < 0)
            return -1;
    }
    const char *headers[4];
    lcmc_transfer_spec spec;
    lcmc_error err = {0};
    /* Checked when the call started: the origin cannot have changed since. */
    lcmc__client_prepare(c, &spec, call->method, call->url, call->body, call->deadline, headers,
                         &err);
    lcmc__error_clear(&err);
    lcmc__free_secret(call->token);
    call->token = NULL;
    if (call->with_token) {
        if ((call->token = lcmc__strdup(token)) == NULL)
            return -1;
        spec.bearer_token = call->token;
    }
    lcmc__log(c->engine, LCMC_LOG_INFO, "%s %s", call->method, call->url);
    call->transfer = lcmc__transfer_start(c->engine, &spec, call_transfer_done, call);
    return call->transfer ? 0 : -1;
}

lcmc_call *lcmc__call_start(lcmc_client *c, const char *method, const char *url, const char *body,
                            double deadline, lcmc_call_done_fn *done, void *userdata,
                            lcmc_error *err)
{
    const char *headers[4];
    lcmc_transfer_spec spec;
    int same = lcmc__client_prepare(c, &spec, method, url, body, deadline, headers, err);
    if (same < 0)
        return NULL;
    if (!same && c->auth.type != LCMC_AUTH_NONE)
        lcmc__log(c->engine, LCMC_LOG_INFO,
                  "%s is not the EM's origin: sending it without credentials", url);
    lcmc_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        return NULL;
    }
    call->client = c;
    call->method = lcmc__strdup(method);
    call->url = lcmc__strdup(url);
    call->body = body ? lcmc__strdup(body) : NULL;
    call->deadline = deadline;
    call->with_token = same && lcmc__auth_uses_token(&c->auth);
    call->done = done;
    call->userdata = userdata;
    if (call->method == NULL || call->url == NULL || (body && call->body == NULL)) {
        call_free(call);
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        return NULL;
    }
    /* Completion always comes from the loop, never from inside this call. */
    if (call_send(call, NULL) != 0) {
        call_free(call);
        lcmc__error_set(err, LCMC_ENOMEM, "out of memory");
        return NULL;
    }
    return call;
}

/* ---- single requests ------------------------------------------------------------------ */

struct lcmc_response {
    lcmc_op op; /* first: the engine's interrupt finds us through it */
    lcmc_client *client;
    lcmc_call *call;
    lcmc_transfer_result result;
    lcmc_error error;
    lcmc_status status;
    char *url;
    char *method;
    int done;
};

static void response_done(void *userdata, lcmc_transfer_result *result, const lcmc_error *err)
{
    lcmc_response *r = userdata;
    r->call = NULL;
    if (err) {
        r->status = err->status;
        lcmc__error_set(&r->error, err->status, "%s", lcmc_error_message(err));
        r->error.http_status = err->http_status;
        lcmc__error_set_request(&r->error, err->method, err->url);
    } else {
        /* Take the answer over: the call frees only what is left in *result. */
        r->result = *result;
        memset(result, 0, sizeof *result);
        if (r->result.curl_code != CURLE_OK)
            r->status = lcmc__transfer_error(&r->result, r->method, r->url, "the EM", &r->error);
    }
    r->done = 1;
    lcmc__op_unregister(r->client->engine, &r->op);
}

static void response_interrupt(lcmc_op *op)
{
    lcmc_response *r = (lcmc_response *)op;
    lcmc__call_cancel(r->call);
    r->call = NULL;
    r->status = LCMC_ECANCELLED;
    lcmc__error_set(&r->error, LCMC_ECANCELLED, "interrupted: %s %s was cancelled", r->method,
                    r->url);
    lcmc__error_set_request(&r->error, r->method, r->url);
    r->done = 1;
    lcmc__op_unregister(r->client->engine, &r->op);
}

static int is_absolute_url(const char *target)
{
    return strncmp(target, "http://", 7) == 0 || strncmp(target, "https://", 8) == 0;
}

lcmc_status lcmc_client_request(lcmc_client *c, const char *method, const char *target,
                                const char *body, double timeout, lcmc_response **out)
{
    if (out)
        *out = NULL;
    if (c == NULL || method == NULL || target == NULL || out == NULL || !*method)
        return LCMC_EUSAGE;
    lcmc_response *r = calloc(1, sizeof *r);
    if (r == NULL)
        return LCMC_ENOMEM;
    r->client = c;
    r->op.interrupt = response_interrupt;
    r->method = lcmc__strdup(method);
    /* An absolute target is resolved like a Location: only http(s), and without any
     * user:password@ it may carry, which would otherwise reach logs and messages. */
    char why[160] = "";
    r->url = is_absolute_url(target)
                 ? lcmc__resolve_location(c->options.endpoint, target, why, sizeof why)
                 : lcmc__url_join(c->options.endpoint, target);
    if (r->method == NULL || (r->url == NULL && why[0] == '\0')) {
        lcmc_response_free(r);
        return LCMC_ENOMEM;
    }
    *out = r;
    if (r->url == NULL) {
        r->status = LCMC_EUSAGE;
        lcmc__error_set(&r->error, r->status, "cannot request that URL: %s", why);
        return r->status;
    }
    if (c->engine->interrupt_flag) {
        r->status = LCMC_ECANCELLED;
        lcmc__error_set(&r->error, r->status, "interrupted before %s %s was sent", method, r->url);
        return r->status;
    }
    double deadline = lcmc__now() + (timeout > 0 ? timeout : c->options.timeout);
    r->call = lcmc__call_start(c, method, r->url, body, deadline, response_done, r, &r->error);
    if (r->call == NULL) {
        r->status = r->error.status;
        return r->status;
    }
    lcmc__op_register(c->engine, &r->op);
    while (!r->done) {
        if (lcmc__engine_step(c->engine) == LCMC_EUSAGE && !r->done) {
            /* Nothing left that could finish it: a bug, reported rather than spun on. */
            lcmc__call_cancel(r->call);
            r->call = NULL;
            lcmc__op_unregister(c->engine, &r->op);
            r->status = LCMC_ETRANSPORT;
            lcmc__error_set(&r->error, r->status, "the request was lost by the engine");
            break;
        }
    }
    if (r->status == LCMC_OK)
        lcmc__log(c->engine, LCMC_LOG_INFO, "%ld %s (%.0f ms)", r->result.status,
                  lcmc__reason_phrase(r->result.status), r->result.elapsed * 1000.0);
    return r->status;
}

void lcmc_response_free(lcmc_response *r)
{
    if (r == NULL)
        return;
    lcmc__call_cancel(r->call);
    if (r->client)
        lcmc__op_unregister(r->client->engine, &r->op);
    lcmc__transfer_result_free(&r->result);
    lcmc__error_clear(&r->error);
    free(r->url);
    free(r->method);
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
