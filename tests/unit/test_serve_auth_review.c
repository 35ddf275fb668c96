/*
 * Adversarial review of `lcmcoord serve`'s authentication (bindings/serve/serve_auth.h): the
 * attacks its own suite (test_serve_auth.c) did not try, against real material made at test
 * time (an RSA key from the openssl CLI, JWTs signed here byte for byte so the payload can
 * carry what a JSON library would not write, the suite's RFC 7662 peer on 127.0.0.1).
 *   - A Bearer token that is not a JWT but has two dots (an opaque token such as PASETO's
 *     "v4.local.xxx") was refused as a malformed JWT instead of going to introspection.
 *   - A token bound to a key by a confirmation method this server cannot check (RFC 9449
 *     DPoP's cnf.jkt) was accepted as a plain bearer token: the sender constraint its issuer
 *     put on it was silently dropped.
 *   - An http_proxy in the environment received the introspection of a loopback endpoint:
 *     the token and this server's client secret, in clear text.
 *   - With users of different crypt(3) methods, an unknown user name was checked against the
 *     first user's hash and answered far sooner (or later) than real users: enumeration.
 *   - --hash-password said "cannot make a yescrypt hash" for a password of 512 to 1024 bytes,
 *     which libcrypt refuses: now "longer than 511 bytes".
 * And what held (kept as tests): duplicate claim names, exp as a string, a token cached
 * while valid and refused once it expires, a kid naming nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <crypt.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <time.h>

#include "serve_auth.h"

#define ISSUER   "https://as.example"
#define AUDIENCE "lcmcoord-serve"

static char dir[64];
static char jwks_path[160];
static EVP_PKEY *rsa_key;
static pid_t peer_pid = -1;
static int peer_stdin = -1;
static int peer_port;

/* ---- helpers ---- */

static char *b64url(const unsigned char *data, size_t len)
{
    char *out = calloc(1, len * 2 + 8);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    size_t o = 0;
    for (size_t i = 0; out[i] && out[i] != '='; i++)
        out[o++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[o] = '\0';
    return out;
}

static char *bn_b64url(const char *param)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(rsa_key, param, &bn), 1);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (size_t)n);
}

/* A JWS signed RS256 over exactly these header and payload texts. */
static char *sign_raw(const char *header, const char *payload_fmt, ...)
{
    char payload[4096];
    va_list ap;
    va_start(ap, payload_fmt);
    vsnprintf(payload, sizeof payload, payload_fmt, ap);
    va_end(ap);
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    size_t input_len = strlen(h) + 1 + strlen(p);
    char *input = malloc(input_len + 1);
    snprintf(input, input_len + 1, "%s.%s", h, p);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, rsa_key), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, input_len), 1);
    EVP_MD_CTX_free(ctx);
    char *s = b64url(sig, siglen);
    char *token = malloc(input_len + strlen(s) + 2);
    sprintf(token, "%s.%s", input, s);
    free(h);
    free(p);
    free(input);
    free(s);
    return token;
}

#define HEADER "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":\"JWT\"}"
#define CLAIMS "\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"vnfm-1\""

static void check(struct serve_auth *auth, const char *token, const char *peer,
                  struct serve_identity *id)
{
    char *header = malloc(strlen(token) + 8);
    sprintf(header, "Bearer %s", token);
    serve_auth_check(auth, header, peer, id);
    free(header);
    assert_null(strstr(id->who, token));
    if (id->error)
        assert_null(strstr(id->error, token));
}

static void expect_ok(struct serve_auth *auth, const char *token, const char *who)
{
    struct serve_identity id;
    check(auth, token, NULL, &id);
    if (!id.ok)
        fail_msg("refused (%d): %s", id.status, id.error ? id.error : "(no error)");
    assert_string_equal(id.who, who);
}

static void expect_refused(struct serve_auth *auth, const char *token, const char *error_part)
{
    struct serve_identity id;
    check(auth, token, NULL, &id);
    if (id.ok)
        fail_msg("accepted (as %s), expected a refusal naming '%s'", id.who, error_part);
    assert_int_equal(id.status, 401);
    assert_non_null(id.error);
    if (!strstr(id.error, error_part))
        fail_msg("error '%s' does not contain '%s'", id.error, error_part);
}

static void no_warning(void *ud, const char *line)
{
    (void)ud;
    (void)line;
}

static struct serve_auth *load(bool with_introspection, int leeway)
{
    static char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/introspect", peer_port);
    struct serve_auth_config cfg = {.jwks_file = jwks_path,
                                    .jwt_issuer = ISSUER,
                                    .jwt_audience = AUDIENCE,
                                    .jwt_leeway = leeway,
                                    .introspect_url = with_introspection ? url : NULL,
                                    .introspect_auth =
                                        with_introspection ? "rs-client:rs-secret" : NULL,
                                    .warn = no_warning};
    char err[512] = "";
    struct serve_auth *auth = serve_auth_load(&cfg, err, sizeof err);
    if (!auth)
        fail_msg("serve_auth_load: %s", err);
    return auth;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double time_factor(void)
{
    const char *f = getenv("LCMCOORD_TIME_FACTOR");
    return f && atof(f) > 0 ? atof(f) : 1.0;
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_serve_auth_review.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char key_path[128], cmd[512];
    snprintf(key_path, sizeof key_path, "%s/rsa.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null",
             key_path);
    if (system(cmd) != 0)
        return -1;
    FILE *f = fopen(key_path, "r");
    rsa_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!rsa_key)
        return -1;
    char *n = bn_b64url(OSSL_PKEY_PARAM_RSA_N), *e = bn_b64url(OSSL_PKEY_PARAM_RSA_E);
    json_t *jwks = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "RSA", "kid",
                             "rsa-1", "use", "sig", "n", n, "e", e);
    free(n);
    free(e);
    snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
    json_dump_file(jwks, jwks_path, 0);
    json_decref(jwks);

    /* The introspection endpoint of test_serve_auth.c: "tok-active*" tokens are active. */
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    peer_pid = fork();
    if (peer_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        char script[512];
        const char *src = getenv("LCMCOORD_SOURCE_DIR");
        snprintf(script, sizeof script, "%s/tests/unit/serve_auth_introspect_peer.py",
                 src ? src : LCMC_SOURCE_DIR);
        execlp("python3", "python3", script, "no-thumbprint", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    peer_stdin = in[1];
    FILE *pf = fdopen(out[0], "r");
    if (!pf || fscanf(pf, "port %d", &peer_port) != 1) {
        fprintf(stderr, "the introspection peer did not start\n");
        return -1;
    }
    fclose(pf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (peer_pid > 0) {
        close(peer_stdin);
        kill(peer_pid, SIGTERM);
        waitpid(peer_pid, NULL, 0);
    }
    EVP_PKEY_free(rsa_key);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- findings ---- */

/* "A token the JWKS has no key for goes to introspection": an opaque token with two dots is
   not a JWT at all, so the JWKS has no key for it either. */
static void test_dotted_opaque_token_goes_to_introspection(void **state)
{
    (void)state;
    struct serve_auth *auth = load(true, 0);
    expect_ok(auth, "tok-active.local.R2VuZXJhdGVkT3BhcXVl", "vnfm-1");
    /* A real JWT whose signature fails stays refused without asking the authorization
       server (that would let a forged JWT through whatever it answers). */
    char *t = sign_raw(HEADER, "{" CLAIMS ",\"exp\":%ld}", (long)now_s() + 300);
    t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A'; /* still base64url */
    expect_refused(auth, t, "signature");
    free(t);
    serve_auth_free(auth);
}

/* RFC 9449: a DPoP-bound token (cnf.jkt) is good only with a proof of the key; this server
   checks none, so it must not take such a token as a bearer one. */
static void test_token_bound_by_an_unchecked_method_is_refused(void **state)
{
    (void)state;
    struct serve_auth *auth = load(false, 0);
    long exp = (long)now_s() + 300;
    char *plain = sign_raw(HEADER, "{" CLAIMS ",\"exp\":%ld}", exp);
    expect_ok(auth, plain, "vnfm-1");
    char *dpop = sign_raw(HEADER,
                          "{" CLAIMS ",\"exp\":%ld,\"cnf\":{\"jkt\":"
                          "\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"}}",
                          exp);
    expect_refused(auth, dpop, "cnf");
    char *empty = sign_raw(HEADER, "{" CLAIMS ",\"exp\":%ld,\"cnf\":{}}", exp);
    expect_ok(auth, empty, "vnfm-1"); /* a cnf binding to nothing constrains nothing */
    free(plain);
    free(dpop);
    free(empty);
    serve_auth_free(auth);
}

/* The introspection endpoint may be http:// only on loopback, "the token and the client secret
   travel": an http_proxy in the environment (libcurl reads it) must not receive them, and a
   proxy's loopback is not ours anyway. */
static void test_introspection_on_loopback_never_through_a_proxy(void **state)
{
    (void)state;
    int proxy = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(proxy, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(proxy, 8), 0);
    socklen_t alen = sizeof addr;
    getsockname(proxy, (struct sockaddr *)&addr, &alen);
    char proxy_url[64];
    snprintf(proxy_url, sizeof proxy_url, "http://127.0.0.1:%d", ntohs(addr.sin_port));
    setenv("http_proxy", proxy_url, 1);
    setenv("HTTPS_PROXY", proxy_url, 1);
    setenv("ALL_PROXY", proxy_url, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    struct serve_auth *auth = load(true, 0);
    struct serve_identity id;
    check(auth, "tok-active-proxy-test", NULL, &id);
    int client = accept(proxy, NULL, NULL);
    bool proxied = client >= 0;
    if (client >= 0)
        close(client);
    unsetenv("http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    close(proxy);
    serve_auth_free(auth);
    if (proxied)
        fail_msg("the introspection of a loopback endpoint went to the environment's proxy");
    if (!id.ok)
        fail_msg("refused (%d): %s", id.status, id.error ? id.error : "(no error)");
    assert_string_equal(id.who, "vnfm-1");
}

/* An unknown user must not cost less than a real one: with a cheap sha512-crypt user sorted
   first and a yescrypt one after, every unknown name was checked against the cheap hash and
   answered ~70 times sooner than the yescrypt user's wrong password: user enumeration. */
static char *make_hash(const char *prefix, unsigned long cost, const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, setting, sizeof setting));
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    const char *hash = crypt_rn(password, setting, &data, sizeof data);
    assert_non_null(hash);
    return strdup(hash);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double basic_refusal_seconds(struct serve_auth *auth, const char *user_pass)
{
    char b64[256], header[300];
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)user_pass, (int)strlen(user_pass));
    snprintf(header, sizeof header, "Basic %s", b64);
    struct serve_identity id;
    double t0 = mono_now();
    serve_auth_check(auth, header, NULL, &id);
    double spent = mono_now() - t0;
    assert_false(id.ok);
    return spent;
}

static void test_unknown_user_costs_what_a_real_user_costs(void **state)
{
    (void)state;
    char *cheap = make_hash("$6$", 1000, "cheap-pass"), *dear = make_hash("$y$", 0, "dear-pass");
    char users[512], path[160];
    snprintf(users, sizeof users, "aaa-cheap:%s\nzzz-dear:%s\n", cheap, dear);
    snprintf(path, sizeof path, "%s/users", dir);
    FILE *f = fopen(path, "w");
    fputs(users, f);
    fclose(f);
    chmod(path, 0600);
    struct serve_auth_config cfg = {.users_file = path, .warn = no_warning};
    char err[512] = "";
    struct serve_auth *auth = serve_auth_load(&cfg, err, sizeof err);
    if (!auth)
        fail_msg("serve_auth_load: %s", err);
    double dear_wrong = basic_refusal_seconds(auth, "zzz-dear:wrong");
    /* Sixteen unknown names: each is checked against one of the two hashes; with a fixed
       choice of the cheap one all sixteen answer fast (by chance: 1 in 65536). */
    int as_dear = 0;
    for (int i = 0; i < 16; i++) {
        char attempt[64];
        snprintf(attempt, sizeof attempt, "ghost-%d:wrong", i);
        if (basic_refusal_seconds(auth, attempt) > dear_wrong * 0.3)
            as_dear++;
    }
    serve_auth_free(auth);
    free(cheap);
    free(dear);
    if (as_dear == 0)
        fail_msg("16 unknown names all answered much sooner than a real yescrypt user's wrong "
                 "password (%.1f ms): the timing tells which names exist",
                 dear_wrong * 1e3);
}

/* --hash-password: a password libcrypt cannot hash (512 bytes or more) is named as too long,
   not "cannot make a yescrypt hash with libcrypt"; the longest it can is hashed and accepted. */
static int hash_from_pipe(size_t length, char *line, size_t linelen, char *err, size_t errlen)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    char *typed = malloc(length + 1);
    memset(typed, 'p', length);
    typed[length] = '\n';
    assert_int_equal(write(p[1], typed, length + 1), (ssize_t)(length + 1));
    close(p[1]);
    free(typed);
    int rc = serve_auth_hash_password(p[0], NULL, "bob", line, linelen, err, errlen);
    close(p[0]);
    return rc;
}

static void test_hash_password_too_long_for_libcrypt(void **state)
{
    (void)state;
    char line[512], err[256] = "";
    assert_int_equal(hash_from_pipe(600, line, sizeof line, err, sizeof err), -1);
    if (!strstr(err, "longer than"))
        fail_msg("a 600-byte password: '%s' does not say it is too long", err);
    assert_int_equal(hash_from_pipe(511, line, sizeof line, err, sizeof err), 0);
    assert_int_equal(strncmp(line, "bob:$y$", 7), 0);
}

/* ---- what held ---- */

static void test_claims_tricks_refused(void **state)
{
    (void)state;
    struct serve_auth *auth = load(false, 0);
    long now = (long)now_s();
    char *t = sign_raw(HEADER, "{" CLAIMS ",\"exp\":%ld,\"exp\":%ld}", now - 3600, now + 3600);
    expect_refused(auth, t, "claims"); /* duplicate names: which exp would be meant? */
    free(t);
    t = sign_raw(HEADER, "{" CLAIMS ",\"exp\":\"%ld\"}", now + 3600);
    expect_refused(auth, t, "not a number");
    free(t);
    t = sign_raw(HEADER, "{" CLAIMS ",\"exp\":%ld,\"aud\":[\"x\",\"" AUDIENCE "\"],\"aud\":\"x\"}",
                 now + 3600);
    expect_refused(auth, t, "claims");
    free(t);
    t = sign_raw("{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"alg\":\"none\"}",
                 "{" CLAIMS ",\"exp\":%ld}", now + 3600);
    expect_refused(auth, t, "header");
    free(t);
    t = sign_raw("{\"alg\":\"RS256\",\"kid\":\"rsa-2\"}", "{" CLAIMS ",\"exp\":%ld}", now + 3600);
    expect_refused(auth, t, "kid");
    free(t);
    serve_auth_free(auth);
}

/* A verified token is cached; once its exp passes it is refused all the same. */
static void test_cached_token_refused_after_expiry(void **state)
{
    (void)state;
    struct serve_auth *auth = load(false, -1); /* no leeway */
    long exp = (long)now_s() + 2;
    char *t = sign_raw(HEADER, "{" CLAIMS ",\"exp\":%ld}", exp);
    expect_ok(auth, t, "vnfm-1");
    expect_ok(auth, t, "vnfm-1"); /* from the cache */
    double deadline = now_s() + 10 * time_factor();
    struct serve_identity id = {.ok = true};
    while (now_s() < deadline) {
        check(auth, t, NULL, &id);
        if (!id.ok)
            break;
        if (now_s() > exp + 1.0)
            fail_msg("accepted %.1f s after its exp", now_s() - (double)exp);
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL); /* polling the clock passing exp, bounded by the deadline */
    }
    assert_false(id.ok);
    assert_non_null(strstr(id.error, "expired"));
    free(t);
    serve_auth_free(auth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dotted_opaque_token_goes_to_introspection),
        cmocka_unit_test(test_token_bound_by_an_unchecked_method_is_refused),
        cmocka_unit_test(test_introspection_on_loopback_never_through_a_proxy),
        cmocka_unit_test(test_unknown_user_costs_what_a_real_user_costs),
        cmocka_unit_test(test_hash_password_too_long_for_libcrypt),
        cmocka_unit_test(test_claims_tricks_refused),
        cmocka_unit_test(test_cached_token_refused_after_expiry),
    };
    return cmocka_run_group_tests_name("serve auth review", tests, setup, teardown);
}
