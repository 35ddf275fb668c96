/*
 * A client: what is fixed for one EM (apiRoot, credentials, TLS files, waits and limits),
 * checked once when it is made (certificate files, certificateRef), and single requests
 * to it (lcmc_client_request). Its session (call.c) carries the credentials to the EM's
 * origin only.
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
    const char *fixed_headers[3]; /* Version, Accept */
    lcmc_auth auth;
    lcmc_session session;
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
    c->auth.own_tls = &c->options.tls;
    if (s != LCMC_OK) {
        lcmc__engine_set_last_error(e, s, "%s", why[0] ? why : lcmc_strerror(s));
        lcmc_client_free(c);
        return s;
    }
    if (lcmc__check_credentials_tls(&c->auth, &c->options.tls, why, sizeof why) != 0) {
        lcmc__engine_set_last_error(e, LCMC_EAUTH, "%s", why);
        lcmc_client_free(c);
        return LCMC_EAUTH;
    }
    if (opt->oauth2_secret_in_body && c->auth.type == LCMC_AUTH_OAUTH2_CLIENT_CREDENTIALS)
        c->auth.token_client_auth = LCMC_TOKEN_AUTH_BODY;
    c->fixed_headers[0] = c->version_header;
    c->fixed_headers[1] = "Accept: application/json";
    c->fixed_headers[2] = NULL;
    c->session = (lcmc_session){.engine = e,
                                .auth = &c->auth,
                                .origin = c->origin,
                                .allow_cross_origin = c->options.allow_cross_origin,
                                .tls = &c->options.tls,
                                .max_body = c->options.max_body,
                                .token_refresh_margin = c->options.token_refresh_margin,
                                .fixed_headers = c->fixed_headers,
                                .json_bodies = 1,
                                .peer = "the EM"};
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

const lcmc_session *lcmc__client_session(const lcmc_client *c)
{
    return &c->session;
}

static int is_absolute_url(const char *target)
{
    return strncmp(target, "http://", 7) == 0 || strncmp(target, "https://", 8) == 0;
}

/* The URL of a single request's target, or NULL with the engine's last error set. */
static char *request_url(lcmc_client *c, const char *target, lcmc_status *status)
{
    /* An absolute target is resolved like a Location: only http(s), and without any
     * user:password@ it may carry, which would otherwise reach logs and messages. */
    char why[160] = "";
    char *url = is_absolute_url(target)
                    ? lcmc__resolve_location(c->options.endpoint, target, why, sizeof why)
                    : lcmc__url_join(c->options.endpoint, target);
    if (url == NULL) {
        *status = why[0] ? LCMC_EUSAGE : LCMC_ENOMEM;
        lcmc__engine_set_last_error(c->engine, *status, "cannot request that URL: %s",
                                    why[0] ? why : "out of memory");
    }
    return url;
}

lcmc_status lcmc_client_request(lcmc_client *c, const char *method, const char *target,
                                const char *body, double timeout, lcmc_response **out)
{
    if (out)
        *out = NULL;
    if (c == NULL || method == NULL || target == NULL || out == NULL || !*method)
        return LCMC_EUSAGE;
    lcmc_status s = LCMC_OK;
    char *url = request_url(c, target, &s);
    if (url == NULL)
        return s;
    s = lcmc__exchange(&c->session, method, url, body, body ? strlen(body) : 0, NULL,
                       timeout > 0 ? timeout : c->options.timeout, NULL, out);
    free(url);
    return s;
}

lcmc_status lcmc_client_request_start(lcmc_client *c, const char *method, const char *target,
                                      const char *body, double timeout, lcmc_request_done_fn *done,
                                      void *userdata, lcmc_request_handle **out)
{
    if (out)
        *out = NULL;
    if (c == NULL || method == NULL || target == NULL || out == NULL || !*method || done == NULL)
        return LCMC_EUSAGE;
    lcmc_status s = LCMC_OK;
    char *url = request_url(c, target, &s);
    if (url == NULL)
        return s;
    lcmc_response *r = NULL;
    s = lcmc__exchange_start(&c->session, method, url, body, body ? strlen(body) : 0, NULL,
                             timeout > 0 ? timeout : c->options.timeout, NULL, done, userdata, &r);
    *out = (lcmc_request_handle *)r;
    free(url);
    return s;
}
