/*
 * Unit tests of the EM simulator's authentication logic, without sockets or TLS: form
 * bodies (escapes, `+`, repeated parameters), RFC 6749 §2.3.1 Basic client credentials
 * with awkward characters, the access token store (issue, lookup, expiry on an injected
 * clock, revocation, the bound), the token endpoint's client-authentication decision
 * table, and whole token/API exchanges through em_handle() including what the journal
 * keeps of them. These rules are what client implementations get judged against, so each
 * is pinned down here rather than only through curl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "em.h"

/* ---- form bodies ---- */

static void test_form_decoding_handles_plus_and_percent_escapes(void **state)
{
    (void)state;
    size_t n;
    char *s = em_form_decode("a+b%3A%2fc%25%C3%A9", 19, &n);
    assert_non_null(s);
    assert_string_equal(s, "a b:/c%\xc3\xa9");
    assert_int_equal(n, strlen(s));
    free(s);
    assert_null(em_form_decode("50%", 3, NULL));
    assert_null(em_form_decode("%4", 2, NULL));
    assert_null(em_form_decode("%zz", 3, NULL));
    assert_null(em_form_decode("nul%00byte", 10, NULL));
    s = em_form_decode("", 0, NULL);
    assert_string_equal(s, "");
    free(s);
}

static void test_form_parse_fields_and_errors(void **state)
{
    (void)state;
    struct em_form f;
    char err[160];
    const char *body = "grant_type=client_credentials&&client_id=a%2Bb&scope=&flag";
    assert_int_equal(em_form_parse(body, strlen(body), &f, err, sizeof err), 0);
    assert_int_equal(f.n, 4);
    assert_string_equal(em_form_get(&f, "grant_type"), "client_credentials");
    assert_string_equal(em_form_get(&f, "client_id"), "a+b");
    assert_string_equal(em_form_get(&f, "scope"), "");
    assert_string_equal(em_form_get(&f, "flag"), "");
    assert_null(em_form_get(&f, "client_secret"));
    em_form_free(&f);

    const char *dup = "grant_type=client_credentials&grant_type=client_credentials";
    assert_int_equal(em_form_parse(dup, strlen(dup), &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "'grant_type' is repeated"));
    /* The same name spelt with an escape is still the same parameter. */
    const char *dup2 = "client_id=a&client%5Fid=b";
    assert_int_equal(em_form_parse(dup2, strlen(dup2), &f, err, sizeof err), -1);
    assert_int_equal(em_form_parse("a=%G1", 5, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "escape"));
    assert_int_equal(em_form_parse("=x", 2, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty name"));
    assert_int_equal(em_form_parse("", 0, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 0);
    em_form_free(&f);
}

static void test_form_redaction_keeps_only_harmless_fields(void **state)
{
    (void)state;
    const char *body = "grant_type=client_credentials&client_id=me&client_secret=p%40ss"
                       "&client%5Fsecret=x&password=pw&%ZZ=hidden&scope=a+b";
    size_t n;
    char *r = em_form_redact(body, strlen(body), &n);
    /* An allow-list: an escaped or unknown name hides the whole field. */
    assert_string_equal(r, "grant_type=client_credentials&client_id=me&"
                           "client_secret=<redacted>&<redacted>&"
                           "password=<redacted>&<redacted>&scope=a+b");
    assert_int_equal(n, strlen(r));
    free(r);
    r = em_form_redact("", 0, NULL);
    assert_string_equal(r, "");
    free(r);
}

/* ---- RFC 6749 Basic client credentials ---- */

static char *basic_header(const char *user_colon_password)
{
    unsigned char b64[512];
    EVP_EncodeBlock(b64, (const unsigned char *)user_colon_password,
                    (int)strlen(user_colon_password));
    return em_xasprintf("Basic %s", (const char *)b64);
}

static void test_basic_client_credentials_are_form_decoded(void **state)
{
    (void)state;
    /* id "my:client", secret "p%ss w:rd+é" form-urlencoded before base64. */
    char *h = basic_header("my%3Aclient:p%25ss+w%3Ard%2B%C3%A9");
    char *user, *password;
    size_t plen;
    assert_int_equal(em_basic_decode(h, true, &user, &password, &plen), 0);
    assert_string_equal(user, "my:client");
    assert_string_equal(password, "p%ss w:rd+\xc3\xa9");
    assert_int_equal(plen, strlen(password));
    free(user);
    free(password);
    /* Without form decoding (RFC 7617) the split is at the first colon, raw. */
    assert_int_equal(em_basic_decode(h, false, &user, &password, &plen), 0);
    assert_string_equal(user, "my%3Aclient");
    assert_string_equal(password, "p%25ss+w%3Ard%2B%C3%A9");
    free(user);
    free(password);
    free(h);

    /* A raw '%' that is not an escape is not RFC 6749 encoding. */
    h = basic_header("client:50%off");
    assert_int_equal(em_basic_decode(h, true, &user, &password, &plen), -1);
    assert_null(user);
    assert_null(password);
    free(h);
    h = basic_header("no-colon");
    assert_int_equal(em_basic_decode(h, true, &user, &password, &plen), -1);
    free(h);
    assert_int_equal(em_basic_decode("Basic !!!", true, &user, &password, &plen), -1);
    assert_int_equal(em_basic_decode("Bearer abc", true, &user, &password, &plen), -1);
}

static void test_secret_equal(void **state)
{
    (void)state;
    assert_true(em_secret_equal("abc", 3, "abc", 3));
    assert_false(em_secret_equal("abc", 3, "abd", 3));
    assert_false(em_secret_equal("abc", 3, "abc", 2));
    assert_true(em_secret_equal("", 0, "", 0));
}

/* ---- token store ---- */

static uint64_t fake_now;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void test_tokens_issue_validate_and_expire(void **state)
{
    (void)state;
    fake_now = 1000;
    struct em_tokens *t = em_tokens_new(8, 60, fake_clock, NULL);
    char a[EM_TOKEN_LEN + 1], b[EM_TOKEN_LEN + 1];
    assert_int_equal(em_tokens_issue(t, a), 1);
    assert_int_equal(strlen(a), EM_TOKEN_LEN);
    assert_int_equal(strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
                     EM_TOKEN_LEN);
    fake_now += 30000;
    assert_int_equal(em_tokens_issue(t, b), 2);
    assert_string_not_equal(a, b);

    unsigned long seq;
    assert_int_equal(em_tokens_check(t, a, &seq), EM_TOKEN_VALID);
    assert_int_equal(seq, 1);
    fake_now = 1000 + 59999;
    assert_int_equal(em_tokens_check(t, a, &seq), EM_TOKEN_VALID);
    fake_now = 1000 + 60000;
    assert_int_equal(em_tokens_check(t, a, &seq), EM_TOKEN_EXPIRED);
    assert_int_equal(seq, 1);
    assert_int_equal(em_tokens_check(t, b, &seq), EM_TOKEN_VALID);
    assert_int_equal(seq, 2);

    char guess[EM_TOKEN_LEN + 1];
    memcpy(guess, b, sizeof guess);
    guess[0] = guess[0] == 'A' ? 'B' : 'A';
    assert_int_equal(em_tokens_check(t, guess, &seq), EM_TOKEN_UNKNOWN);
    assert_int_equal(seq, 0);
    assert_int_equal(em_tokens_check(t, "", &seq), EM_TOKEN_UNKNOWN);

    assert_true(em_tokens_revoke(t, 2));
    assert_int_equal(em_tokens_check(t, b, &seq), EM_TOKEN_REVOKED);
    assert_false(em_tokens_revoke(t, 3));
    assert_false(em_tokens_revoke(t, 0));
    em_tokens_free(t);
}

static void test_tokens_without_ttl_never_expire(void **state)
{
    (void)state;
    fake_now = 5;
    struct em_tokens *t = em_tokens_new(2, EM_TOKEN_TTL_NONE, fake_clock, NULL);
    char a[EM_TOKEN_LEN + 1];
    em_tokens_issue(t, a);
    fake_now = UINT64_MAX / 2;
    unsigned long seq;
    assert_int_equal(em_tokens_check(t, a, &seq), EM_TOKEN_VALID);
    em_tokens_free(t);
}

static void test_token_store_is_bounded_oldest_forgotten(void **state)
{
    (void)state;
    fake_now = 0;
    struct em_tokens *t = em_tokens_new(3, 100, fake_clock, NULL);
    char tok[4][EM_TOKEN_LEN + 1];
    for (int i = 0; i < 4; i++)
        assert_int_equal(em_tokens_issue(t, tok[i]), (unsigned long)i + 1);
    unsigned long seq;
    assert_int_equal(em_tokens_check(t, tok[0], &seq), EM_TOKEN_UNKNOWN);
    assert_false(em_tokens_revoke(t, 1)); /* its slot now holds token 4 */
    for (int i = 1; i < 4; i++) {
        assert_int_equal(em_tokens_check(t, tok[i], &seq), EM_TOKEN_VALID);
        assert_int_equal(seq, (unsigned long)i + 1);
    }
    em_tokens_free(t);
}

/* ---- the client-authentication decision table ---- */

struct decision_case {
    const char *name;
    struct em_client_config cfg;
    const char *authorization_plain; /* before base64, or NULL */
    const char *authorization_raw;   /* sent as is, or NULL */
    const char *form_id, *form_secret;
    bool cert_verified;
    enum em_client_verdict verdict;
    enum em_client_method method;
    const char *client_id;
};

static void test_client_authentication_decision_table(void **state)
{
    (void)state;
    const struct em_client_config secret = {"app", "s:e c%r+t", false};
    const struct em_client_config secret_ca = {"app", "s:e c%r+t", true};
    const struct em_client_config cert_only = {"app", NULL, true};
    const struct decision_case cases[] = {
        {"basic ok", secret, "app:s%3Ae+c%25r%2Bt", NULL, NULL, NULL, false, EM_CLIENT_OK,
         EM_CLIENT_BASIC, "app"},
        {"basic sent unencoded", secret, "app:s:e c%r+t", NULL, NULL, NULL, false,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_BASIC, NULL},
        {"basic wrong secret", secret, "app:nope", NULL, NULL, NULL, false,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_BASIC, "app"},
        {"basic wrong id", secret, "other:s%3Ae+c%25r%2Bt", NULL, NULL, NULL, false,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_BASIC, "other"},
        {"basic + same client_id", secret, "app:s%3Ae+c%25r%2Bt", NULL, "app", NULL, false,
         EM_CLIENT_OK, EM_CLIENT_BASIC, "app"},
        {"basic + other client_id", secret, "app:s%3Ae+c%25r%2Bt", NULL, "eve", NULL, false,
         EM_CLIENT_INVALID_REQUEST, EM_CLIENT_BASIC, "app"},
        {"basic + post", secret, "app:s%3Ae+c%25r%2Bt", NULL, "app", "s:e c%r+t", false,
         EM_CLIENT_INVALID_REQUEST, EM_CLIENT_BASIC, "app"},
        {"bearer on token endpoint", secret, NULL, "Bearer abc", NULL, NULL, false,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_NONE, NULL},
        {"garbage basic", secret, NULL, "Basic %%%", NULL, NULL, false, EM_CLIENT_INVALID_CLIENT,
         EM_CLIENT_BASIC, NULL},
        {"post ok", secret, NULL, NULL, "app", "s:e c%r+t", false, EM_CLIENT_OK, EM_CLIENT_POST,
         "app"},
        {"post wrong secret", secret, NULL, NULL, "app", "s:e c%r+", false,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_POST, "app"},
        {"secret without id", secret, NULL, NULL, NULL, "s:e c%r+t", false,
         EM_CLIENT_INVALID_REQUEST, EM_CLIENT_POST, NULL},
        {"none", secret, NULL, NULL, NULL, NULL, false, EM_CLIENT_INVALID_CLIENT, EM_CLIENT_NONE,
         NULL},
        {"client_id only, no mTLS", secret, NULL, NULL, "app", NULL, true, EM_CLIENT_INVALID_CLIENT,
         EM_CLIENT_NONE, "app"},
        {"client_id only, mTLS verified", secret_ca, NULL, NULL, "app", NULL, true, EM_CLIENT_OK,
         EM_CLIENT_CERT, "app"},
        {"client_id only, cert not verified", secret_ca, NULL, NULL, "app", NULL, false,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_CERT, "app"},
        {"cert only ok", cert_only, NULL, NULL, "app", NULL, true, EM_CLIENT_OK, EM_CLIENT_CERT,
         "app"},
        {"cert only, wrong id", cert_only, NULL, NULL, "eve", NULL, true, EM_CLIENT_INVALID_CLIENT,
         EM_CLIENT_CERT, "eve"},
        {"cert only client tries a secret", cert_only, NULL, NULL, "app", "x", true,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_POST, "app"},
        {"cert only client tries basic", cert_only, "app:x", NULL, NULL, NULL, true,
         EM_CLIENT_INVALID_CLIENT, EM_CLIENT_BASIC, "app"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct decision_case *c = &cases[i];
        char *header = c->authorization_plain ? basic_header(c->authorization_plain)
                       : c->authorization_raw ? em_xstrdup(c->authorization_raw)
                                              : NULL;
        struct em_client_input in = {header, c->form_id, c->form_secret, c->cert_verified};
        struct em_client_decision d;
        em_client_authenticate(&c->cfg, &in, &d);
        print_message("case: %s\n", c->name);
        assert_int_equal(d.verdict, c->verdict);
        assert_int_equal(d.method, c->method);
        if (c->client_id)
            assert_string_equal(d.client_id, c->client_id);
        else
            assert_null(d.client_id);
        if (c->verdict != EM_CLIENT_OK)
            assert_non_null(d.description);
        em_client_decision_clear(&d);
        free(header);
    }
}

/* ---- whole exchanges through em_handle ---- */

static void handle(struct em *em, const char *method, const char *path, const char *body,
                   const struct em_peer *peer, struct em_response *rs, ...)
{
    struct em_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.path = path;
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    rq.peer = peer;
    clock_gettime(CLOCK_REALTIME, &rq.received);
    va_list ap;
    va_start(ap, rs);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;)
        em_headers_add(&rq.headers, name, va_arg(ap, const char *));
    va_end(ap);
    em_handle(em, &rq, rs);
    em_headers_free(&rq.headers);
    if (rs->stream_read) { /* the journal is streamed: read it all, as the server would */
        char *text = NULL;
        size_t len = 0;
        for (;;) {
            text = realloc(text, len + 1001);
            ssize_t got = rs->stream_read(rs->stream_ctx, len, text + len, 1000);
            if (got < 0)
                break;
            len += (size_t)got;
        }
        text[len] = '\0';
        em_response_set_body(rs, text, NULL);
        rs->stream_free(rs->stream_ctx);
        rs->stream_ctx = NULL;
        rs->stream_read = NULL;
    }
}

#define FORM "content-type", "application/x-www-form-urlencoded"

static json_t *body_json(const struct em_response *rs)
{
    json_t *j = json_loadb(rs->body, rs->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void expect_oauth_error(struct em_response *rs, unsigned status, const char *error)
{
    assert_int_equal(rs->status, status);
    json_t *j = body_json(rs);
    assert_string_equal(json_string_value(json_object_get(j, "error")), error);
    assert_non_null(json_string_value(json_object_get(j, "error_description")));
    json_decref(j);
    assert_string_equal(em_headers_get(&rs->headers, "Cache-Control"), "no-store");
    if (status == 401)
        assert_string_equal(em_headers_get(&rs->headers, "WWW-Authenticate"),
                            "Basic realm=\"lcmcoord\"");
    em_response_free(rs);
}

/* Fetches a token with client_secret_post; returns it malloc'd. */
static char *fetch_token(struct em *em)
{
    struct em_response rs;
    handle(em, "POST", "/token", "grant_type=client_credentials&client_id=app&client_secret=pw",
           NULL, &rs, FORM, NULL);
    assert_int_equal(rs.status, 200);
    json_t *j = body_json(&rs);
    char *token = em_xstrdup(json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    em_response_free(&rs);
    return token;
}

static void test_token_endpoint_answers(void **state)
{
    (void)state;
    struct em_options opt;
    struct em em;
    struct em_response rs;
    em_options_init(&opt);
    opt.oauth2 = "app:pw";
    em_init(&em, &opt);

    handle(&em, "POST", "/token", "grant_type=client_credentials", NULL, &rs, FORM, "authorization",
           "Basic YXBwOnB3", NULL); /* app:pw */
    assert_int_equal(rs.status, 200);
    assert_string_equal(em_headers_get(&rs.headers, "Cache-Control"), "no-store");
    assert_string_equal(em_headers_get(&rs.headers, "Content-Type"), "application/json");
    json_t *j = body_json(&rs);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "access_token"))), EM_TOKEN_LEN);
    assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 3600);
    json_decref(j);
    em_response_free(&rs);

    handle(&em, "POST", "/token", "grant_type=password", NULL, &rs, FORM, "authorization",
           "Basic YXBwOnB3", NULL);
    expect_oauth_error(&rs, 400, "unsupported_grant_type");
    handle(&em, "POST", "/token", "client_id=app&client_secret=pw", NULL, &rs, FORM, NULL);
    expect_oauth_error(&rs, 400, "invalid_request");
    handle(&em, "POST", "/token", "grant_type=client_credentials", NULL, &rs, FORM, "authorization",
           "Basic YXBwOnd4", NULL); /* app:wx */
    expect_oauth_error(&rs, 401, "invalid_client");
    handle(&em, "POST", "/token", "grant_type=client_credentials&client_secret=pw", NULL, &rs, FORM,
           "authorization", "Basic YXBwOnB3", NULL);
    expect_oauth_error(&rs, 400, "invalid_request");
    handle(&em, "POST", "/token", "grant_type=client_credentials&grant_type=client_credentials",
           NULL, &rs, FORM, "authorization", "Basic YXBwOnB3", NULL);
    expect_oauth_error(&rs, 400, "invalid_request");
    handle(&em, "POST", "/token", "{\"grant_type\":1}", NULL, &rs, "content-type",
           "application/json", NULL);
    expect_oauth_error(&rs, 400, "invalid_request");
    handle(&em, "GET", "/token", NULL, NULL, &rs, NULL);
    assert_string_equal(em_headers_get(&rs.headers, "Allow"), "POST");
    expect_oauth_error(&rs, 405, "invalid_request");

    /* The journal keeps the client id, never the secret. */
    char *journal = em_journal_dump(em.journal);
    assert_null(strstr(journal, "client_secret=pw"));
    assert_non_null(strstr(journal, "client_secret=<redacted>"));
    assert_null(strstr(journal, "YXBwOnB3"));
    assert_non_null(
        strstr(journal, "\"auth\":{\"scheme\":\"Basic\",\"user\":\"app\",\"ok\":true}"));
    free(journal);
    em_cleanup(&em);
}

static void test_api_requires_a_valid_bearer_token(void **state)
{
    (void)state;
    struct em_options opt;
    struct em em;
    struct em_response rs;
    em_options_init(&opt);
    opt.oauth2 = "app:pw";
    opt.token_ttl = EM_TOKEN_TTL_NONE;
    em_init(&em, &opt);

    handle(&em, "GET", "/lcmcoord/api_versions", NULL, NULL, &rs, NULL);
    assert_int_equal(rs.status, 401);
    assert_string_equal(em_headers_get(&rs.headers, "WWW-Authenticate"),
                        "Bearer realm=\"lcmcoord\"");
    em_response_free(&rs);
    handle(&em, "GET", "/lcmcoord/api_versions", NULL, NULL, &rs, "authorization", "Bearer garbage",
           NULL);
    assert_int_equal(rs.status, 401);
    assert_string_equal(em_headers_get(&rs.headers, "WWW-Authenticate"),
                        "Bearer realm=\"lcmcoord\", error=\"invalid_token\", "
                        "error_description=\"the access token is not valid\"");
    em_response_free(&rs);
    handle(&em, "GET", "/lcmcoord/api_versions", NULL, NULL, &rs, "authorization", "Basic YXBwOnB3",
           NULL);
    assert_int_equal(rs.status, 401);
    em_response_free(&rs);

    char *token = fetch_token(&em);
    char *second = fetch_token(&em);
    assert_string_not_equal(second, token);
    free(second);
    char *bearer = em_xasprintf("Bearer %s", token);
    handle(&em, "GET", "/lcmcoord/api_versions", NULL, NULL, &rs, "authorization", bearer, NULL);
    assert_int_equal(rs.status, 200);
    em_response_free(&rs);
    char *journal = em_journal_dump(em.journal);
    assert_null(strstr(journal, token));
    assert_non_null(strstr(journal, "{\"scheme\":\"Bearer\",\"user\":\"app\",\"ok\":true,"
                                    "\"tokenSeq\":1}"));
    free(journal);

    assert_true(em_tokens_revoke(em.tokens, 1));
    handle(&em, "GET", "/lcmcoord/api_versions", NULL, NULL, &rs, "authorization", bearer, NULL);
    assert_int_equal(rs.status, 401);
    assert_non_null(strstr(em_headers_get(&rs.headers, "WWW-Authenticate"), "revoked"));
    em_response_free(&rs);
    free(bearer);
    free(token);
    em_cleanup(&em);
}

static void test_client_certificate_gates_everything_but_the_journal(void **state)
{
    (void)state;
    struct em_options opt;
    struct em em;
    struct em_response rs;
    em_options_init(&opt);
    opt.oauth2 = "app";
    opt.client_ca = "ca.pem";
    opt.tls_cert = "c.pem";
    opt.tls_key = "k.pem";
    em_init(&em, &opt);
    assert_int_equal(strncmp(em.base_url, "https://", 8), 0);

    struct em_peer none = {.inspected = true, .version = "TLS1.3"};
    snprintf(none.problem, sizeof none.problem, "no client certificate was presented");
    struct em_peer good = {.inspected = true,
                           .version = "TLS1.3",
                           .cert_present = true,
                           .cert_verified = true,
                           .subject_cn = "cli",
                           .thumbprint = "abc"};
    handle(&em, "POST", "/token", "grant_type=client_credentials&client_id=app", &none, &rs, FORM,
           NULL);
    expect_oauth_error(&rs, 401, "invalid_client");
    handle(&em, "GET", "/lcmcoord/api_versions", NULL, &none, &rs, NULL);
    assert_int_equal(rs.status, 401);
    em_response_free(&rs);
    /* The journal needs credentials too: here the verified certificate is the credential. */
    handle(&em, "GET", "/_em/journal", NULL, &none, &rs, NULL);
    assert_int_equal(rs.status, 401);
    em_response_free(&rs);
    handle(&em, "GET", "/_em/journal", NULL, &good, &rs, NULL);
    assert_int_equal(rs.status, 200);
    em_response_free(&rs);

    handle(&em, "POST", "/token", "grant_type=client_credentials&client_id=app", &good, &rs, FORM,
           NULL);
    assert_int_equal(rs.status, 200);
    em_response_free(&rs);
    char *journal = em_journal_dump(em.journal);
    assert_non_null(strstr(journal, "\"tls\":{\"version\":\"TLS1.3\",\"clientCertSubject\":"
                                    "\"cli\",\"clientCertThumbprint\":\"abc\","
                                    "\"clientCertVerified\":true}"));
    assert_non_null(strstr(journal, "{\"scheme\":\"tls_client_auth\",\"user\":\"app\","
                                    "\"ok\":true}"));
    free(journal);
    em_cleanup(&em);
}

static void test_x5t_s256_of_known_bytes(void **state)
{
    (void)state;
    char out[EM_THUMBPRINT_LEN + 1];
    /* SHA-256("abc") = ba7816bf...f20015ad, in base64url without padding. */
    em_x5t_s256((const unsigned char *)"abc", 3, out);
    assert_string_equal(out, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_decoding_handles_plus_and_percent_escapes),
        cmocka_unit_test(test_form_parse_fields_and_errors),
        cmocka_unit_test(test_form_redaction_keeps_only_harmless_fields),
        cmocka_unit_test(test_basic_client_credentials_are_form_decoded),
        cmocka_unit_test(test_secret_equal),
        cmocka_unit_test(test_tokens_issue_validate_and_expire),
        cmocka_unit_test(test_tokens_without_ttl_never_expire),
        cmocka_unit_test(test_token_store_is_bounded_oldest_forgotten),
        cmocka_unit_test(test_client_authentication_decision_table),
        cmocka_unit_test(test_token_endpoint_answers),
        cmocka_unit_test(test_api_requires_a_valid_bearer_token),
        cmocka_unit_test(test_client_certificate_gates_everything_but_the_journal),
        cmocka_unit_test(test_x5t_s256_of_known_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
