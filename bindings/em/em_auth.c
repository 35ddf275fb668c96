/*
 * Who may call the EM simulator. API requests authenticate with HTTP Basic (--basic) or an
 * OAuth 2.0 Bearer token (--oauth2) issued by the simulator's own token endpoint, which in
 * turn authenticates its one client by HTTP Basic with RFC 6749 §2.3.1 encoding
 * (client_secret_basic), by client_id and client_secret in the form body
 * (client_secret_post), or, under --client-ca, by client_id alone over a verified client
 * certificate (tls_client_auth, RFC 8705 §2). The decisions are plain functions of their
 * inputs so the unit tests can walk the whole table; secrets are compared through SHA-256
 * digests with CRYPTO_memcmp, so neither their content nor their length shows in timing,
 * and are wiped once used. Nothing here logs or journals a credential.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "em.h"

static size_t trim_len(const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

/* Decodes standard base64 with padding; NULL when it is not that. */
static char *base64_decode(const char *in, size_t n, size_t *outlen)
{
    if (n == 0 || n % 4 != 0 || n > 8192)
        return NULL;
    size_t pad = (in[n - 1] == '=') + (in[n - 2] == '=');
    unsigned char *out = em_xmalloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)got - pad;
    out[*outlen] = '\0';
    return (char *)out;
}

static void wipe_free(char *s, size_t n)
{
    if (s)
        OPENSSL_cleanse(s, n);
    free(s);
}

bool em_secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)a, alen, da);
    SHA256((const unsigned char *)b, blen, db);
    return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

/* The scheme token at the start of an Authorization value; returns where the rest starts. */
static const char *split_scheme(const char *authorization, char *scheme, size_t len)
{
    while (*authorization == ' ')
        authorization++;
    size_t slen = strcspn(authorization, " \t");
    snprintf(scheme, len, "%.*s", (int)slen, authorization);
    const char *rest = authorization + slen;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return rest;
}

/* ---- HTTP Basic ---- */

static char *basic_plain(const char *authorization, size_t *plain_len)
{
    char scheme[32];
    const char *cred = split_scheme(authorization, scheme, sizeof scheme);
    if (strcasecmp(scheme, "Basic") != 0)
        return NULL;
    return base64_decode(cred, trim_len(cred, strlen(cred)), plain_len);
}

int em_basic_decode(const char *authorization, bool form_encoded, char **user, char **password,
                    size_t *password_len)
{
    *user = *password = NULL;
    size_t plain_len;
    char *plain = basic_plain(authorization, &plain_len);
    if (!plain)
        return -1;
    char *colon = memchr(plain, ':', plain_len);
    int rc = -1;
    if (colon && !memchr(plain, '\0', plain_len)) {
        size_t ulen = (size_t)(colon - plain), plen = plain_len - ulen - 1;
        if (form_encoded) {
            *user = em_form_decode(plain, ulen, NULL);
            *password = em_form_decode(colon + 1, plen, password_len);
        } else {
            *user = em_xstrndup(plain, ulen);
            *password = em_xstrndup(colon + 1, plen);
            *password_len = plen;
        }
        rc = *user && *password ? 0 : -1;
    }
    if (rc < 0) {
        free(*user);
        wipe_free(*password, *password ? strlen(*password) : 0);
        *user = *password = NULL;
    }
    wipe_free(plain, plain_len);
    return rc;
}

void em_auth_check(const char *authorization, const char *expected, struct em_auth *out)
{
    memset(out, 0, sizeof *out);
    out->ok = expected == NULL;
    if (!authorization)
        return;
    out->present = true;
    split_scheme(authorization, out->scheme, sizeof out->scheme);
    size_t plain_len;
    char *plain = basic_plain(authorization, &plain_len);
    if (!plain)
        return;
    char *colon = memchr(plain, ':', plain_len);
    if (colon)
        out->user = em_xstrndup(plain, (size_t)(colon - plain));
    if (expected)
        out->ok = colon && em_secret_equal(plain, plain_len, expected, strlen(expected));
    wipe_free(plain, plain_len);
}

void em_auth_clear(struct em_auth *auth)
{
    free(auth->user);
    auth->user = NULL;
}

char *em_auth_redact(const char *authorization)
{
    while (*authorization == ' ')
        authorization++;
    size_t slen = strcspn(authorization, " \t");
    if (slen == 0 || slen > 32)
        return em_xstrdup("<redacted>");
    return em_xasprintf("%.*s <redacted>", (int)slen, authorization);
}

/* ---- the token endpoint's client authentication ---- */

const char *em_client_method_name(enum em_client_method m)
{
    switch (m) {
    case EM_CLIENT_BASIC:
        return "Basic";
    case EM_CLIENT_POST:
        return "client_secret_post";
    case EM_CLIENT_CERT:
        return "tls_client_auth";
    case EM_CLIENT_NONE:
        break;
    }
    return "";
}

static void verdict(struct em_client_decision *out, enum em_client_verdict v, const char *why)
{
    out->verdict = v;
    out->description = why;
}

/* Both compared every time (no short cut on a wrong id), each through its digest. */
static bool credentials_match(const struct em_client_config *cfg, const char *id,
                              const char *secret, size_t secret_len)
{
    bool id_ok = em_secret_equal(id, strlen(id), cfg->id, strlen(cfg->id));
    bool secret_ok =
        cfg->secret && em_secret_equal(secret, secret_len, cfg->secret, strlen(cfg->secret));
    return id_ok & secret_ok;
}

void em_client_authenticate(const struct em_client_config *cfg, const struct em_client_input *in,
                            struct em_client_decision *out)
{
    memset(out, 0, sizeof *out);
    if (in->authorization) {
        char scheme[32];
        split_scheme(in->authorization, scheme, sizeof scheme);
        if (strcasecmp(scheme, "Basic") != 0) {
            verdict(out, EM_CLIENT_INVALID_CLIENT,
                    "the token endpoint authenticates clients with HTTP Basic only");
            return;
        }
        out->method = EM_CLIENT_BASIC;
        char *id, *secret;
        size_t secret_len = 0;
        if (em_basic_decode(in->authorization, true, &id, &secret, &secret_len) < 0) {
            verdict(out, EM_CLIENT_INVALID_CLIENT,
                    "the Basic credentials are not base64 of form-urlencoded id:secret "
                    "(RFC 6749 section 2.3.1)");
            return;
        }
        out->client_id = id;
        if (in->form_secret)
            verdict(out, EM_CLIENT_INVALID_REQUEST,
                    "the client used more than one authentication method (HTTP Basic and "
                    "client_secret in the body)");
        else if (in->form_id && strcmp(in->form_id, id) != 0)
            verdict(out, EM_CLIENT_INVALID_REQUEST,
                    "client_id in the body differs from the HTTP Basic client id");
        else if (!cfg->secret)
            verdict(out, EM_CLIENT_INVALID_CLIENT,
                    "this client has no secret: it authenticates with its certificate");
        else if (!credentials_match(cfg, id, secret, secret_len))
            verdict(out, EM_CLIENT_INVALID_CLIENT, "unknown client or wrong client secret");
        else
            verdict(out, EM_CLIENT_OK, NULL);
        wipe_free(secret, secret_len);
        return;
    }
    if (in->form_id)
        out->client_id = em_xstrdup(in->form_id);
    if (in->form_secret) {
        out->method = EM_CLIENT_POST;
        if (!in->form_id)
            verdict(out, EM_CLIENT_INVALID_REQUEST, "client_secret was sent without client_id");
        else if (!cfg->secret)
            verdict(out, EM_CLIENT_INVALID_CLIENT,
                    "this client has no secret: it authenticates with its certificate");
        else if (!credentials_match(cfg, in->form_id, in->form_secret, strlen(in->form_secret)))
            verdict(out, EM_CLIENT_INVALID_CLIENT, "unknown client or wrong client secret");
        else
            verdict(out, EM_CLIENT_OK, NULL);
        return;
    }
    if (in->form_id && cfg->cert_auth) {
        out->method = EM_CLIENT_CERT;
        if (!in->cert_verified)
            verdict(out, EM_CLIENT_INVALID_CLIENT, "no verified client certificate");
        else if (!em_secret_equal(in->form_id, strlen(in->form_id), cfg->id, strlen(cfg->id)))
            verdict(out, EM_CLIENT_INVALID_CLIENT, "unknown client");
        else
            verdict(out, EM_CLIENT_OK, NULL);
        return;
    }
    verdict(out, EM_CLIENT_INVALID_CLIENT,
            in->form_id ? "client authentication is required: client_secret is missing"
                        : "client authentication is required");
}

void em_client_decision_clear(struct em_client_decision *d)
{
    free(d->client_id);
    d->client_id = NULL;
}

/* ---- the token endpoint ---- */

/* error_description allows only %x20-21 / %x23-5B / %x5D-7E (RFC 6749 §5.2). */
static char *oauth_text(const char *s)
{
    char *out = em_xstrndup(s, strlen(s) > 200 ? 200 : strlen(s));
    for (char *p = out; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            *p = '?';
    return out;
}

static void no_store(struct em_response *rs)
{
    em_headers_add(&rs->headers, "Cache-Control", "no-store");
    em_headers_add(&rs->headers, "Pragma", "no-cache");
}

static void oauth_error(struct em_response *rs, unsigned status, const char *error,
                        const char *description)
{
    char *text = oauth_text(description);
    json_t *doc = json_pack("{s:s, s:s}", "error", error, "error_description", text);
    free(text);
    rs->status = status;
    em_response_set_body(rs, json_dumps(doc, JSON_COMPACT), "application/json");
    json_decref(doc);
    no_store(rs);
    if (status == 401)
        em_headers_add(&rs->headers, "WWW-Authenticate", "Basic realm=\"" EM_REALM "\"");
}

static bool is_form_type(const char *value)
{
    static const char want[] = "application/x-www-form-urlencoded";
    if (!value)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, want, sizeof want - 1) != 0)
        return false;
    const char *rest = value + sizeof want - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static void issue(struct em *em, const struct em_form *form, struct em_response *rs)
{
    const char *grant = em_form_get(form, "grant_type");
    if (!grant) {
        oauth_error(rs, 400, "invalid_request", "grant_type is required");
        return;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        oauth_error(rs, 400, "unsupported_grant_type",
                    "only grant_type=client_credentials is supported");
        return;
    }
    char token[EM_TOKEN_LEN + 1];
    em_tokens_issue(em->tokens, token);
    json_t *doc = json_pack("{s:s, s:s}", "access_token", token, "token_type", "Bearer");
    OPENSSL_cleanse(token, sizeof token);
    if (em->opt.token_ttl != EM_TOKEN_TTL_NONE)
        json_object_set_new(doc, "expires_in", json_integer((json_int_t)em->opt.token_ttl));
    rs->status = 200;
    em_response_set_body(rs, json_dumps(doc, JSON_COMPACT), "application/json");
    json_decref(doc);
    no_store(rs);
}

void em_token_endpoint(struct em *em, const struct em_request *rq, const struct em_request *shown,
                       struct em_auth *auth, unsigned long count, unsigned long posts,
                       struct em_response *rs)
{
    const char *authorization = em_headers_get(&rq->headers, "authorization");
    memset(auth, 0, sizeof *auth);
    auth->present = true;
    if (authorization)
        split_scheme(authorization, auth->scheme, sizeof auth->scheme);
    if (strcmp(rq->method, "POST") != 0) {
        oauth_error(rs, 405, "invalid_request", "the token endpoint accepts POST only");
        em_headers_add(&rs->headers, "Allow", "POST");
        return;
    }
    if (rq->body_too_large) {
        oauth_error(rs, 413, "invalid_request", "the request body is too large");
        return;
    }
    if (!is_form_type(em_headers_get(&rq->headers, "content-type"))) {
        oauth_error(rs, 400, "invalid_request",
                    "Content-Type must be application/x-www-form-urlencoded");
        return;
    }
    struct em_form form;
    char err[160];
    if (em_form_parse(rq->body ? rq->body : "", rq->body_len, &form, err, sizeof err) < 0) {
        oauth_error(rs, 400, "invalid_request", err);
        return;
    }
    struct em_client_config cfg = {em->client_id, em->client_secret, em->opt.client_ca != NULL};
    struct em_client_input in = {authorization, em_form_get(&form, "client_id"),
                                 em_form_get(&form, "client_secret"),
                                 rq->peer && rq->peer->cert_verified};
    struct em_client_decision d;
    em_client_authenticate(&cfg, &in, &d);
    snprintf(auth->scheme, sizeof auth->scheme, "%s", em_client_method_name(d.method));
    auth->user = d.client_id;
    d.client_id = NULL;
    auth->ok = d.verdict == EM_CLIENT_OK;
    if (d.verdict == EM_CLIENT_INVALID_REQUEST)
        oauth_error(rs, 400, "invalid_request", d.description);
    else if (d.verdict == EM_CLIENT_INVALID_CLIENT)
        oauth_error(rs, 401, "invalid_client", d.description);
    else if (!(em->scenario && em_scenario_call(em->scenario, shown, auth, count, posts, rs)))
        issue(em, &form, rs);
    em_client_decision_clear(&d);
    em_form_free(&form);
}

/* ---- API requests ---- */

/* RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_b64token(const char *s, size_t n)
{
    size_t body = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "-._~+/");
    if (body == 0 || body > n)
        return false;
    size_t i = body;
    while (i < n && s[i] == '=')
        i++;
    return i == n;
}

void em_api_authenticate(struct em *em, const struct em_request *rq, struct em_auth *auth,
                         const char **token_error)
{
    const char *authorization = em_headers_get(&rq->headers, "authorization");
    *token_error = NULL;
    em_auth_check(authorization, em->opt.basic, auth);
    if (!em->opt.basic && !em->opt.oauth2)
        return; /* nothing required: any header passes, as before */
    if (!authorization) {
        auth->ok = false;
        return;
    }
    if (strcasecmp(auth->scheme, "Basic") == 0) {
        auth->ok = auth->ok && em->opt.basic != NULL;
        return;
    }
    auth->ok = false;
    if (strcasecmp(auth->scheme, "Bearer") != 0 || !em->opt.oauth2)
        return;
    char scheme[32];
    const char *token = split_scheme(authorization, scheme, sizeof scheme);
    size_t n = trim_len(token, strlen(token));
    if (!is_b64token(token, n) || n > 512) {
        *token_error = "the access token is malformed";
        return;
    }
    char *copy = em_xstrndup(token, n);
    unsigned long seq;
    enum em_token_state state = em_tokens_check(em->tokens, copy, &seq);
    wipe_free(copy, n);
    auth->token_seq = seq;
    switch (state) {
    case EM_TOKEN_VALID:
        auth->ok = true;
        auth->user = em_xstrdup(em->client_id);
        break;
    case EM_TOKEN_EXPIRED:
        *token_error = "the access token expired";
        break;
    case EM_TOKEN_REVOKED:
        *token_error = "the access token was revoked";
        break;
    case EM_TOKEN_UNKNOWN:
        *token_error = "the access token is not valid";
        break;
    }
}

char *em_challenge(const char *scheme, const char *token_error)
{
    if (strcmp(scheme, "Bearer") != 0 || !token_error)
        return em_xasprintf("%s realm=\"" EM_REALM "\"", scheme);
    char *text = oauth_text(token_error);
    char *value = em_xasprintf("Bearer realm=\"" EM_REALM "\", error=\"invalid_token\", "
                               "error_description=\"%s\"",
                               text);
    free(text);
    return value;
}

void em_unauthorized(const struct em *em, struct em_response *rs, const char *token_error,
                     const char *detail)
{
    em_response_problem(rs, 401, "%s", detail);
    if (em->opt.oauth2 || !em->opt.basic) {
        char *bearer = em_challenge("Bearer", token_error);
        em_headers_add(&rs->headers, "WWW-Authenticate", bearer);
        free(bearer);
    }
    if (em->opt.basic)
        em_headers_add(&rs->headers, "WWW-Authenticate", "Basic realm=\"" EM_REALM "\"");
}
