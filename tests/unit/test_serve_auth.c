/*
 * Tests of `lcmcoord serve`'s authentication (bindings/serve/serve_auth.h) against real
 * material made at test time: crypt(3) hashes from libcrypt (crypt_gensalt_rn), RSA and EC
 * keys from the openssl CLI, JWTs signed with them by libjwt, a JWKS written from the public
 * halves, a TLS client certificate whose x5t#S256 the HTTP layer's own em_x5t_s256 computes,
 * and a real RFC 7662 endpoint (serve_auth_introspect_peer.py on 127.0.0.1). Every refusal
 * is also checked for leaks: no refusal, error or identity carries the password or token.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, ptsname: the terminal test */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <termios.h>
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
#include <curl/curl.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "em.h"
#include "serve_auth.h"

#define ISSUER   "https://as.example"
#define AUDIENCE "lcmcoord-serve"

static char dir[64];
static char *rsa_priv, *rsa_pub, *ec_priv, *ec384_priv, *ec521_priv, *rsa2_priv;
static char thumbprint[EM_THUMBPRINT_LEN + 1];
static char jwks_path[128];
static pid_t peer_pid = -1;
static int peer_stdin = -1;
static int peer_port;

/* ---- helpers ---- */

static char *path_in(const char *name)
{
    static char buf[4][160];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static double time_factor(void)
{
    const char *f = getenv("LCMCOORD_TIME_FACTOR");
    return f && atof(f) > 0 ? atof(f) : 1.0;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *b64url(const unsigned char *data, size_t len)
{
    char *out = calloc(1, len * 2 + 8);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    size_t o = 0;
    for (size_t i = 0; out[i]; i++) {
        if (out[i] == '=')
            break;
        out[o++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[o] = '\0';
    return out;
}

static EVP_PKEY *load_private(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pkey);
    return pkey;
}

static char *bn_b64url(EVP_PKEY *pkey, const char *param)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, param, &bn), 1);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (size_t)n);
}

static json_t *rsa_jwk(const char *priv, const char *kid)
{
    EVP_PKEY *pkey = load_private(priv);
    char *n = bn_b64url(pkey, OSSL_PKEY_PARAM_RSA_N);
    char *e = bn_b64url(pkey, OSSL_PKEY_PARAM_RSA_E);
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "kid", kid, "use", "sig",
                            "n", n, "e", e);
    free(n);
    free(e);
    EVP_PKEY_free(pkey);
    return jwk;
}

/* The JWK of an EC key: its curve read from the uncompressed point's size (P-256, P-384,
   P-521); flip_y moves the point off the curve. */
static json_t *ec_jwk(const char *priv, const char *kid, bool flip_y)
{
    EVP_PKEY *pkey = load_private(priv);
    unsigned char point[133];
    size_t len = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                     point, sizeof point, &len),
                     1);
    size_t field = (len - 1) / 2;
    const char *crv = field == 32 ? "P-256" : field == 48 ? "P-384" : "P-521";
    if (flip_y)
        point[len - 1] ^= 1;
    char *x = b64url(point + 1, field);
    char *y = b64url(point + 1 + field, field);
    json_t *jwk =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", kid, "crv", crv, "x", x, "y", y);
    free(x);
    free(y);
    EVP_PKEY_free(pkey);
    return jwk;
}

/* A JWT signed by libjwt: alg with key (PEM, or an HMAC secret), kid (NULL: none), claims. */
static char *sign(jwt_alg_t alg, const char *key, const char *kid, const char *claims_fmt, ...)
{
    char claims[2048];
    va_list ap;
    va_start(ap, claims_fmt);
    vsnprintf(claims, sizeof claims, claims_fmt, ap);
    va_end(ap);
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    if (kid)
        assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0),
                     0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);
    return token;
}

static long now_s(void)
{
    return (long)time(NULL);
}

/* Claims good for AUDIENCE/ISSUER, valid for five minutes, plus extra ("" or ", ..."). */
static char *good_rs256(const char *kid, const char *extra)
{
    return sign(JWT_ALG_RS256, rsa_priv, kid,
                "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"svc-a\","
                "\"client_id\":\"vnfm-1\",\"exp\":%ld%s}",
                now_s() + 300, extra);
}

static char warnings[4096];
static void capture_warning(void *ud, const char *line)
{
    (void)ud;
    strncat(warnings, line, sizeof warnings - strlen(warnings) - 2);
    strcat(warnings, "\n");
}

static struct serve_auth *load_ok(struct serve_auth_config *cfg)
{
    char err[512] = "";
    cfg->warn = capture_warning;
    struct serve_auth *auth = serve_auth_load(cfg, err, sizeof err);
    if (!auth)
        fail_msg("serve_auth_load: %s", err);
    return auth;
}

static void load_fails(struct serve_auth_config *cfg, const char *expected, const char *never)
{
    char err[512] = "";
    cfg->warn = capture_warning;
    struct serve_auth *auth = serve_auth_load(cfg, err, sizeof err);
    if (auth)
        fail_msg("loaded, expected an error containing '%s'", expected);
    if (!strstr(err, expected))
        fail_msg("error '%s' does not contain '%s'", err, expected);
    assert_null(strchr(err, '\n'));
    if (never)
        assert_null(strstr(err, never));
}

/* Nothing of the credential in any text the check returns. */
static void assert_no_leak(const struct serve_identity *id, const char *secret)
{
    if (!secret || !*secret)
        return;
    assert_null(strstr(id->who, secret));
    if (id->error)
        assert_null(strstr(id->error, secret));
    for (size_t i = 0; i < id->n_challenges; i++)
        assert_null(strstr(id->challenges[i], secret));
}

static void bearer(struct serve_auth *auth, const char *token, const char *peer,
                   struct serve_identity *id)
{
    char header[20000];
    snprintf(header, sizeof header, "Bearer %s", token);
    serve_auth_check(auth, header, peer, id);
    assert_no_leak(id, token);
}

static void expect_bearer_ok(struct serve_auth *auth, const char *token, const char *peer,
                             const char *who)
{
    struct serve_identity id;
    bearer(auth, token, peer, &id);
    if (!id.ok)
        fail_msg("refused (%d): %s", id.status, id.error ? id.error : "(no error)");
    assert_string_equal(id.scheme, "bearer");
    assert_string_equal(id.who, who);
}

static void expect_bearer_refused(struct serve_auth *auth, const char *token, const char *peer,
                                  int status, const char *error_part)
{
    struct serve_identity id;
    bearer(auth, token, peer, &id);
    assert_false(id.ok);
    assert_int_equal(id.status, status);
    assert_string_equal(id.who, "");
    assert_non_null(id.error);
    if (!strstr(id.error, error_part))
        fail_msg("error '%s' does not contain '%s'", id.error, error_part);
    if (status == 401 || status == 400) {
        assert_true(id.n_challenges >= 1);
        assert_non_null(strstr(id.challenges[0], "Bearer realm=\"lcmcoord\""));
        assert_non_null(strstr(id.challenges[0], status == 400 ? "error=\"invalid_request\""
                                                               : "error=\"invalid_token\""));
    }
}

/* ---- fixtures ---- */

static char *pem_from_cli(const char *cmd_fmt, const char *out_name)
{
    run(cmd_fmt, path_in(out_name));
    return slurp(path_in(out_name));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_serve_auth.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    rsa_priv = pem_from_cli("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
                            "-out %s 2>/dev/null",
                            "rsa.pem");
    rsa2_priv = pem_from_cli("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
                             "-out %s 2>/dev/null",
                             "rsa2.pem");
    ec_priv = pem_from_cli("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                           "-out %s 2>/dev/null",
                           "ec.pem");
    ec384_priv = pem_from_cli("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 "
                              "-out %s 2>/dev/null",
                              "ec384.pem");
    ec521_priv = pem_from_cli("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 "
                              "-out %s 2>/dev/null",
                              "ec521.pem");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "openssl pkey -in %s -pubout -out %%s", path_in("rsa.pem"));
    rsa_pub = pem_from_cli(cmd, "rsa.pub.pem");
    /* A client certificate: its x5t#S256 as the HTTP layer computes it. */
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=vnfm "
        "-days 1 -keyout %s -outform DER -out %s 2>/dev/null",
        path_in("client.key"), path_in("client.der"));
    FILE *f = fopen(path_in("client.der"), "rb");
    unsigned char der[4096];
    size_t n = fread(der, 1, sizeof der, f);
    fclose(f);
    em_x5t_s256(der, n, thumbprint);

    json_t *keys = json_array();
    json_array_append_new(keys, rsa_jwk(rsa_priv, "rsa-1"));
    json_array_append_new(keys, ec_jwk(ec_priv, "ec-1", false));
    json_array_append_new(keys, ec_jwk(ec384_priv, "ec-384", false));
    json_array_append_new(keys, ec_jwk(ec521_priv, "ec-521", false));
    json_array_append_new(
        keys, json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "hmac-1", "k", "c2VjcmV0"));
    json_t *jwks = json_pack("{s:o}", "keys", keys);
    snprintf(jwks_path, sizeof jwks_path, "%s", path_in("jwks.json"));
    json_dump_file(jwks, jwks_path, 0);
    json_decref(jwks);

    /* The introspection endpoint. */
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
        execlp("python3", "python3", script, thumbprint, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    peer_stdin = in[1];
    FILE *pf = fdopen(out[0], "r");
    if (!pf || fscanf(pf, "port %d", &peer_port) != 1) {
        fprintf(stderr, "the introspection peer did not start (python3 %s)\n",
                "tests/unit/serve_auth_introspect_peer.py");
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
    free(rsa_priv);
    free(rsa2_priv);
    free(ec_priv);
    free(ec384_priv);
    free(ec521_priv);
    free(rsa_pub);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- HTTP Basic ---- */

static char *make_hash(const char *prefix, const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    unsigned long count = strcmp(prefix, "$2b$") == 0 ? 5 : 0; /* bcrypt's cheapest: fast */
    assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof setting));
    const char *hash = crypt_rn(password, setting, &data, sizeof data);
    assert_non_null(hash);
    return strdup(hash);
}

static char *users_file(mode_t mode)
{
    char *y = make_hash("$y$", "yes-pass");
    char *s = make_hash("$6$", "sha-pass");
    char *b = make_hash("$2b$", "bcrypt-pass");
    char text[2048];
    snprintf(text, sizeof text,
             "# operators of the serve instance\n\nalice:%s\nbob:%s\r\ncarol:%s\n", y, s, b);
    free(y);
    free(s);
    free(b);
    char *path = path_in("users");
    write_file(path, text, mode);
    return path;
}

static void basic(struct serve_auth *auth, const char *user_pass, struct serve_identity *id)
{
    char b64[512], header[600];
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)user_pass, (int)strlen(user_pass));
    snprintf(header, sizeof header, "Basic %s", b64);
    serve_auth_check(auth, header, NULL, id);
    const char *colon = strchr(user_pass, ':');
    assert_no_leak(id, colon ? colon + 1 : NULL);
    assert_no_leak(id, b64);
}

static void test_basic_accepts_yescrypt_sha512_bcrypt(void **state)
{
    (void)state;
    struct serve_auth_config cfg = {.users_file = users_file(0600)};
    struct serve_auth *auth = load_ok(&cfg);
    struct serve_identity id;
    const char *cases[][2] = {
        {"alice:yes-pass", "alice"}, {"bob:sha-pass", "bob"}, {"carol:bcrypt-pass", "carol"}};
    for (size_t i = 0; i < 3; i++) {
        basic(auth, cases[i][0], &id);
        assert_true(id.ok);
        assert_string_equal(id.scheme, "basic");
        assert_string_equal(id.who, cases[i][1]);
    }
    assert_true(serve_auth_enabled(auth));
    assert_string_equal(serve_auth_challenge(auth), "Basic realm=\"lcmcoord\", charset=\"UTF-8\"");
    serve_auth_free(auth);
}

static void test_basic_refuses_wrong_password_unknown_user_and_malformed(void **state)
{
    (void)state;
    struct serve_auth_config cfg = {.users_file = users_file(0600)};
    struct serve_auth *auth = load_ok(&cfg);
    struct serve_identity id;
    const char *refused[] = {"alice:sha-pass", "alice:", "mallory:yes-pass", "alice:yes-pass ",
                             "bob:SHA-PASS"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        basic(auth, refused[i], &id);
        assert_false(id.ok);
        assert_int_equal(id.status, 401);
        assert_string_equal(id.who, "");
        assert_string_equal(id.error, "wrong user name or password");
        assert_int_equal(id.n_challenges, 1);
        assert_string_equal(id.challenges[0], "Basic realm=\"lcmcoord\", charset=\"UTF-8\"");
    }
    /* The same refusal for an unknown user and a wrong password: names do not leak. */
    const char *malformed[] = {"Basic", "Basic !!!!", "Basic YWxpY2U=" /* no colon */,
                               "Basic YWxp Y2U6eWVzLXBhc3M="};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        serve_auth_check(auth, malformed[i], NULL, &id);
        assert_false(id.ok);
        assert_int_equal(id.status, 401);
        assert_string_equal(id.error, "malformed Basic credentials");
    }
    /* No credentials: 401, a challenge, no error (RFC 6750 §3.1 spirit for Basic too). */
    serve_auth_check(auth, NULL, NULL, &id);
    assert_false(id.ok);
    assert_int_equal(id.status, 401);
    assert_null(id.error);
    assert_null(id.error_code);
    assert_int_equal(id.n_challenges, 1);
    /* A scheme not offered (Bearer without a JWKS): refused as if nothing were sent. */
    serve_auth_check(auth, "Bearer abc", NULL, &id);
    assert_false(id.ok);
    assert_int_equal(id.status, 401);
    assert_null(id.error_code);
    serve_auth_free(auth);
}

/* A repeated good password costs an HMAC, not a yescrypt; a different password after a good
   one is checked in full (and refused); with the cache off every check costs the hash. */
static void test_basic_cache_remembers_only_successes(void **state)
{
    (void)state;
    struct serve_auth_config cfg = {.users_file = users_file(0600)};
    struct serve_auth *auth = load_ok(&cfg);
    struct serve_identity id;
    double start = now_mono();
    basic(auth, "alice:yes-pass", &id);
    double first = now_mono() - start;
    assert_true(id.ok);
    start = now_mono();
    basic(auth, "alice:yes-pass", &id);
    double again = now_mono() - start;
    assert_true(id.ok);
    assert_string_equal(id.who, "alice");
    if (again * 4 > first)
        fail_msg("a remembered check took %.4f s, the first %.4f s", again, first);
    const char *wrong[] = {"alice:yes-pas", "alice:yes-passs", "bob:yes-pass", "alic:eyes-pass"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        basic(auth, wrong[i], &id);
        assert_false(id.ok);
    }
    serve_auth_free(auth);

    cfg.basic_cache_ttl = -1;
    auth = load_ok(&cfg);
    basic(auth, "alice:yes-pass", &id);
    assert_true(id.ok);
    start = now_mono();
    basic(auth, "alice:yes-pass", &id);
    double uncached = now_mono() - start;
    assert_true(id.ok);
    if (uncached * 4 < first)
        fail_msg("with the cache off a check took %.4f s, the first %.4f s", uncached, first);
    serve_auth_free(auth);
}

static void test_users_file_refuses_plaintext_and_unknown_formats(void **state)
{
    (void)state;
    char *good = make_hash("$y$", "pw");
    struct {
        const char *line3;
        const char *error;
    } cases[] = {
        {"mallory:TopSecret99", "line 3 (user mallory): not a crypt(3) hash (plaintext"},
        {"md5:$1$abcdefgh$TopSecret99TopSecret9", "line 3 (user md5): a crypt(3) method other"},
        {"cut:$6$saltsalt$TopSecret99", "line 3 (user cut): a truncated or malformed"},
        {"TopSecret99", "line 3: expected USER:HASH"},
        {"sp ace:$y$j9T$abc$def", "line 3: expected USER:HASH"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[1024];
        snprintf(text, sizeof text, "# users\nalice:%s\n%s\n", good, cases[i].line3);
        write_file(path_in("bad-users"), text, 0600);
        struct serve_auth_config cfg = {.users_file = path_in("bad-users")};
        load_fails(&cfg, cases[i].error, "TopSecret99");
        load_fails(&cfg, path_in("bad-users"), NULL); /* names the file */
    }
    char text[1024];
    snprintf(text, sizeof text, "alice:%s\nalice:%s\n", good, good);
    write_file(path_in("dup-users"), text, 0600);
    struct serve_auth_config dup = {.users_file = path_in("dup-users")};
    load_fails(&dup, "line 2: user alice appears twice", NULL);
    write_file(path_in("empty-users"), "# nobody yet\n", 0600);
    struct serve_auth_config empty = {.users_file = path_in("empty-users")};
    load_fails(&empty, "has no users", NULL);
    struct serve_auth_config missing = {.users_file = path_in("no-such-file")};
    load_fails(&missing, "cannot read the users file", NULL);
    free(good);
}

static void test_users_file_readable_by_others_is_warned(void **state)
{
    (void)state;
    warnings[0] = '\0';
    struct serve_auth_config cfg = {.users_file = users_file(0600)};
    serve_auth_free(load_ok(&cfg));
    assert_string_equal(warnings, "");
    cfg.users_file = users_file(0644);
    serve_auth_free(load_ok(&cfg));
    assert_non_null(strstr(warnings, "readable by others"));
    assert_non_null(strstr(warnings, cfg.users_file));
}

static void test_hash_password_makes_a_line_the_loader_accepts(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "pass word!\nrest", 15), 15);
    close(fds[1]);
    char line[512], err[256];
    assert_int_equal(
        serve_auth_hash_password(fds[0], NULL, "dave", line, sizeof line, err, sizeof err), 0);
    close(fds[0]);
    assert_memory_equal(line, "dave:$y$", 8);
    assert_null(strstr(line, "pass word"));
    char text[600];
    snprintf(text, sizeof text, "%s\n", line);
    write_file(path_in("made-users"), text, 0600);
    struct serve_auth_config cfg = {.users_file = path_in("made-users")};
    struct serve_auth *auth = load_ok(&cfg);
    struct serve_identity id;
    basic(auth, "dave:pass word!", &id);
    assert_true(id.ok);
    basic(auth, "dave:pass word", &id);
    assert_false(id.ok);
    serve_auth_free(auth);

    assert_int_equal(pipe(fds), 0);
    close(fds[1]);
    assert_int_equal(
        serve_auth_hash_password(fds[0], NULL, "dave", line, sizeof line, err, sizeof err), -1);
    assert_string_equal(err, "the password is empty");
    close(fds[0]);
    assert_int_equal(serve_auth_hash_password(0, NULL, "da:ve", line, sizeof line, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "user name"));
}

/* Types into the terminal like a person: once its echo is off (the condition waited on, with
   a deadline after which it types anyway and the test's assertions judge). */
struct typist {
    int master, slave;
    const char *text;
};

static void *type_when_quiet(void *arg)
{
    struct typist *t = arg;
    double deadline = now_mono() + 5.0 * time_factor();
    struct termios tio;
    while (now_mono() < deadline && tcgetattr(t->slave, &tio) == 0 && (tio.c_lflag & ECHO)) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    ssize_t n = write(t->master, t->text, strlen(t->text));
    (void)n;
    return NULL;
}

static int hash_on_terminal(int master, int slave, const char *typed, char *line, size_t len,
                            char *err, size_t errlen)
{
    FILE *prompt = fopen("/dev/null", "w");
    struct typist typist = {master, slave, typed};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, type_when_quiet, &typist), 0);
    int rc = serve_auth_hash_password(slave, prompt, "erin", line, len, err, errlen);
    pthread_join(thread, NULL);
    fclose(prompt);
    return rc;
}

/* On a terminal: asked twice, and what is typed is never echoed back. */
static void test_hash_password_on_a_terminal_does_not_echo(void **state)
{
    (void)state;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    char line[512], err[256];
    int rc = hash_on_terminal(master, slave, "Sekrit-77\nSekrit-77\n", line, sizeof line, err,
                              sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_memory_equal(line, "erin:$y$", 8);
    /* What the terminal echoed is readable on the master side: nothing of the password. */
    fcntl(master, F_SETFL, O_NONBLOCK);
    char echoed[256] = "";
    ssize_t n = read(master, echoed, sizeof echoed - 1);
    echoed[n > 0 ? n : 0] = '\0';
    assert_null(strstr(echoed, "Sekrit"));
    struct termios tio;
    assert_int_equal(tcgetattr(slave, &tio), 0);
    assert_true(tio.c_lflag & ECHO); /* given back as it was */
    fcntl(master, F_SETFL, 0);
    rc =
        hash_on_terminal(master, slave, "one-pass\ntwo-pass\n", line, sizeof line, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_string_equal(err, "the passwords differ");
    close(slave);
    close(master);
}

/* ---- Bearer JWTs ---- */

static struct serve_auth *jwt_auth(bool binding)
{
    struct serve_auth_config cfg = {.jwks_file = jwks_path,
                                    .jwt_issuer = ISSUER,
                                    .jwt_audience = AUDIENCE,
                                    .require_cert_binding = binding};
    return load_ok(&cfg);
}

static void test_jwt_accepts_rs256_rs384_es256_es384_es512_and_aud_arrays(void **state)
{
    (void)state;
    warnings[0] = '\0';
    struct serve_auth *auth = jwt_auth(false);
    /* The JWKS's HMAC key is skipped, said so. */
    assert_non_null(strstr(warnings, "kid \"hmac-1\") is not used"));
    assert_null(strstr(warnings, "audience")); /* one is configured */
    char *t = good_rs256("rsa-1", "");
    double start = now_mono();
    expect_bearer_ok(auth, t, NULL, "vnfm-1");
    double first = now_mono() - start;
    /* Verified once: the same token again skips the signature (its claims are judged anew,
       test_jwt_certificate_binding). */
    start = now_mono();
    for (int i = 0; i < 10; i++)
        expect_bearer_ok(auth, t, NULL, "vnfm-1");
    double again = (now_mono() - start) / 10;
    if (again * 4 > first)
        fail_msg("a repeated token took %.6f s, the first %.6f s", again, first);
    free(t);
    t = sign(JWT_ALG_RS384, rsa_priv, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":[\"x\",\"" AUDIENCE "\"],\"sub\":\"svc-b\","
             "\"exp\":%ld}",
             now_s() + 60);
    expect_bearer_ok(auth, t, NULL, "svc-b"); /* no client_id: the sub */
    free(t);
    t = sign(JWT_ALG_ES256, ec_priv, "ec-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"client_id\":\"vnfm-ec\","
             "\"exp\":%ld}",
             now_s() + 60);
    expect_bearer_ok(auth, t, NULL, "vnfm-ec");
    free(t);
    t = sign(JWT_ALG_ES384, ec384_priv, "ec-384",
             "{\"sub\":\"s384\",\"exp\":%ld,\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"}",
             now_s() + 60);
    expect_bearer_ok(auth, t, NULL, "s384");
    free(t);
    t = sign(JWT_ALG_ES512, ec521_priv, "ec-521",
             "{\"sub\":\"s521\",\"exp\":%ld,\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"}",
             now_s() + 60);
    expect_bearer_ok(auth, t, NULL, "s521");
    free(t);
    /* ES256 with the P-384 key: the curve fixes the algorithm. */
    t = sign(JWT_ALG_ES256, ec384_priv, "ec-384",
             "{\"sub\":\"s\",\"exp\":%ld,\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"}",
             now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "not one its key is for");
    free(t);
    /* Expired by less than the leeway (30 s): still good. */
    t = sign(JWT_ALG_RS256, rsa_priv, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"s\",\"exp\":%ld}",
             now_s() - 10);
    expect_bearer_ok(auth, t, NULL, "s");
    free(t);
    assert_string_equal(serve_auth_challenge(auth), "Bearer realm=\"lcmcoord\"");
    serve_auth_free(auth);
}

static void test_jwt_refusals(void **state)
{
    (void)state;
    struct serve_auth *auth = jwt_auth(false);
    char *t;

    /* Bad signature: the payload of one token with the signature of another. */
    char *a = good_rs256("rsa-1", "");
    char *b = good_rs256("rsa-1", ",\"scope\":\"admin\"");
    char forged[8192];
    const char *a_sig = strrchr(a, '.');
    const char *b_payload_end = strrchr(b, '.');
    snprintf(forged, sizeof forged, "%.*s%s", (int)(b_payload_end - b), b, a_sig);
    expect_bearer_refused(auth, forged, NULL, 401, "signature does not verify");
    free(a);
    free(b);
    /* Signed by another key under the same kid. */
    t = sign(JWT_ALG_RS256, rsa2_priv, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}", now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "signature does not verify");
    free(t);

    t = sign(JWT_ALG_RS256, rsa_priv, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}", now_s() - 120);
    expect_bearer_refused(auth, t, NULL, 401, "expired");
    free(t);
    t = sign(JWT_ALG_RS256, rsa_priv, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld,\"nbf\":%ld}",
             now_s() + 900, now_s() + 300);
    expect_bearer_refused(auth, t, NULL, 401, "not valid yet");
    free(t);
    t = sign(JWT_ALG_RS256, rsa_priv, "rsa-1", "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"}");
    expect_bearer_refused(auth, t, NULL, 401, "no expiry");
    free(t);
    t = sign(JWT_ALG_RS256, rsa_priv, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":[\"a\",\"b\"],\"exp\":%ld}", now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "(aud)");
    free(t);
    t = sign(JWT_ALG_RS256, rsa_priv, "rsa-1",
             "{\"iss\":\"https://evil.example\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}",
             now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "(iss)");
    free(t);
    t = sign(JWT_ALG_RS256, rsa_priv, "rsa-9",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}", now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "not in the JWKS");
    free(t);
    /* No kid with two keys in the JWKS: which one is unknown. */
    t = good_rs256(NULL, "");
    expect_bearer_refused(auth, t, NULL, 401, "not in the JWKS");
    free(t);
    t = sign(JWT_ALG_NONE, NULL, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}", now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "alg none");
    free(t);
    /* An EC-signed token naming the RSA key: alg and key type disagree. */
    t = sign(JWT_ALG_ES256, ec_priv, "rsa-1",
             "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}", now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "not one its key is for");
    free(t);
    serve_auth_free(auth);
}

/* The algorithm confusion: HS256 keyed with the RSA public key's PEM, which anyone has. libjwt
   alone accepts it (checked first, so this test proves the guard is what refuses it). */
static void test_jwt_refuses_hs256_signed_with_the_public_key(void **state)
{
    (void)state;
    char *t = sign(JWT_ALG_HS256, rsa_pub, "rsa-1",
                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}", now_s() + 60);
    jwt_t *raw = NULL;
    assert_int_equal(jwt_decode(&raw, t, (const unsigned char *)rsa_pub, (int)strlen(rsa_pub)), 0);
    jwt_free(raw);
    struct serve_auth *auth = jwt_auth(false);
    expect_bearer_refused(auth, t, NULL, 401, "not one its key is for");
    serve_auth_free(auth);
    free(t);
}

static void test_bearer_malformed_headers(void **state)
{
    (void)state;
    struct serve_auth *auth = jwt_auth(false);
    struct serve_identity id;
    const char *bad_request[] = {"Bearer", "Bearer   ", "Bearer a b", "Bearer a\"b", "Bearer ab=c"};
    for (size_t i = 0; i < sizeof bad_request / sizeof *bad_request; i++) {
        serve_auth_check(auth, bad_request[i], NULL, &id);
        assert_false(id.ok);
        assert_int_equal(id.status, 400);
        assert_string_equal(id.error_code, "invalid_request");
        assert_non_null(strstr(id.challenges[0], "error=\"invalid_request\""));
    }
    /* Well-formed b64token, not a good JWT. */
    expect_bearer_refused(auth, "bm90anNvbg.e30.c2ln", NULL, 401, "header is not base64url JSON");
    expect_bearer_refused(auth, "e30.e30.c2ln", NULL, 401, "no alg");
    char *crit_header = NULL;
    {
        const char *h = "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"crit\":[\"exp\"]}";
        crit_header = calloc(1, 256);
        char *enc = b64url((const unsigned char *)h, strlen(h));
        snprintf(crit_header, 256, "%s.e30.c2ln", enc);
        free(enc);
    }
    expect_bearer_refused(auth, crit_header, NULL, 401, "crit");
    free(crit_header);
    /* Not a JWS at all, and no introspection to ask. */
    expect_bearer_refused(auth, "opaque-token-123", NULL, 401, "not recognised");
    /* Case-insensitive scheme (RFC 7235). */
    char *t = good_rs256("rsa-1", "");
    char header[4096];
    snprintf(header, sizeof header, "bearer %s", t);
    serve_auth_check(auth, header, NULL, &id);
    assert_true(id.ok);
    free(t);
    serve_auth_free(auth);
}

static void test_jwt_certificate_binding(void **state)
{
    (void)state;
    char extra[128];
    snprintf(extra, sizeof extra, ",\"cnf\":{\"x5t#S256\":\"%s\"}", thumbprint);
    char *bound = good_rs256("rsa-1", extra);
    char *unbound = good_rs256("rsa-1", "");
    char other[EM_THUMBPRINT_LEN + 1];
    em_x5t_s256((const unsigned char *)"another certificate", 19, other);

    struct serve_auth *auth = jwt_auth(false);
    expect_bearer_ok(auth, bound, thumbprint, "vnfm-1");
    expect_bearer_refused(auth, bound, other, 401, "bound to another client certificate");
    expect_bearer_refused(auth, bound, NULL, 401, "did not present");
    expect_bearer_ok(auth, unbound, thumbprint, "vnfm-1"); /* binding not required */
    serve_auth_free(auth);

    auth = jwt_auth(true); /* OAUTH2_CLIENT_CERT */
    expect_bearer_ok(auth, bound, thumbprint, "vnfm-1");
    expect_bearer_refused(auth, unbound, thumbprint, 401, "not bound to a client certificate");
    expect_bearer_refused(auth, bound, other, 401, "bound to another client certificate");
    serve_auth_free(auth);
    free(bound);
    free(unbound);
}

static void test_jwks_file_errors(void **state)
{
    (void)state;
    struct {
        const char *json;
        const char *error;
    } cases[] = {
        {"not json", "is not JSON"},
        {"{\"keys\": 1}", "has no \"keys\" array"},
        {"{\"keys\": [{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", "has no RSA or EC signature key"},
        {"{\"keys\": [{\"kty\":\"RSA\",\"kid\":\"k\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
         "key 1 (kid \"k\"): RSA key shorter than 2048 bits"},
        {"{\"keys\": [{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}", "key 1: an RSA key needs"},
        {"{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-192\",\"x\":\"AA\",\"y\":\"AA\"}]}",
         "other than P-256"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(path_in("bad-jwks.json"), cases[i].json, 0644);
        struct serve_auth_config cfg = {.jwks_file = path_in("bad-jwks.json")};
        load_fails(&cfg, cases[i].error, NULL);
    }
    /* A point off the curve, a JWK whose alg does not fit it, the same kid twice. */
    json_t *keys = json_pack("{s:[o]}", "keys", ec_jwk(ec_priv, "ec-bad", true));
    json_dump_file(keys, path_in("bad-jwks.json"), 0);
    json_decref(keys);
    struct serve_auth_config cfg = {.jwks_file = path_in("bad-jwks.json")};
    load_fails(&cfg, "point on the curve", NULL);
    json_t *rsa = rsa_jwk(rsa_priv, "r");
    json_object_set_new(rsa, "alg", json_string("ES256"));
    keys = json_pack("{s:[o]}", "keys", rsa);
    json_dump_file(keys, path_in("bad-jwks.json"), 0);
    json_decref(keys);
    load_fails(&cfg, "does not fit the key type", NULL);
    keys = json_pack("{s:[o,o]}", "keys", rsa_jwk(rsa_priv, "same"), rsa_jwk(rsa2_priv, "same"));
    json_dump_file(keys, path_in("bad-jwks.json"), 0);
    json_decref(keys);
    load_fails(&cfg, "the same kid as another key", NULL);
}

/* A JWK that names its algorithm admits only that one; a lone key needs no kid. */
static void test_jwk_alg_pins_the_algorithm(void **state)
{
    (void)state;
    json_t *rsa = rsa_jwk(rsa_priv, "pinned");
    json_object_set_new(rsa, "alg", json_string("RS512"));
    json_t *keys = json_pack("{s:[o]}", "keys", rsa);
    json_dump_file(keys, path_in("pinned.json"), 0);
    json_decref(keys);
    struct serve_auth_config cfg = {.jwks_file = path_in("pinned.json")};
    warnings[0] = '\0';
    struct serve_auth *auth = load_ok(&cfg);
    assert_non_null(strstr(warnings, "without an audience check"));
    char *t = sign(JWT_ALG_RS512, rsa_priv, NULL, "{\"sub\":\"s\",\"exp\":%ld}", now_s() + 60);
    expect_bearer_ok(auth, t, NULL, "s");
    free(t);
    t = sign(JWT_ALG_RS256, rsa_priv, "pinned", "{\"sub\":\"s\",\"exp\":%ld}", now_s() + 60);
    expect_bearer_refused(auth, t, NULL, 401, "not one its key is for");
    free(t);
    serve_auth_free(auth);
}

/* ---- introspection ---- */

static char introspect_url[128];

static struct serve_auth *introspect_auth(const char *credentials, double timeout, size_t cap)
{
    snprintf(introspect_url, sizeof introspect_url, "http://127.0.0.1:%d/introspect", peer_port);
    struct serve_auth_config cfg = {.introspect_url = introspect_url,
                                    .introspect_auth = credentials,
                                    .introspect_timeout = timeout,
                                    .introspect_cache_max = cap,
                                    .jwt_issuer = ISSUER,
                                    .jwt_audience = AUDIENCE};
    return load_ok(&cfg);
}

static long peer_count(const char *token)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/count?token=%s", peer_port, token);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "curl -sf '%s'", url);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char buf[256] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    pclose(p);
    json_t *v = json_loads(buf, 0, NULL);
    assert_non_null(v);
    long count = (long)json_integer_value(json_object_get(v, "count"));
    json_decref(v);
    return count;
}

static void test_introspection_active_inactive_and_claims(void **state)
{
    (void)state;
    struct serve_auth *auth = introspect_auth("rs-client:rs-secret", 0, 0);
    expect_bearer_ok(auth, "tok-active-1", NULL, "vnfm-1");
    expect_bearer_ok(auth, "tok-sub-only", NULL, "user-7");
    expect_bearer_refused(auth, "tok-inactive", NULL, 401, "not active");
    expect_bearer_refused(auth, "tok-unknown", NULL, 401, "not active");
    expect_bearer_refused(auth, "tok-wrong-aud", NULL, 401, "(aud)");
    expect_bearer_refused(auth, "tok-wrong-iss", NULL, 401, "(iss)");
    expect_bearer_refused(auth, "tok-expired", NULL, 401, "expired");
    expect_bearer_ok(auth, "tok-bound", thumbprint, "vnfm-1");
    expect_bearer_refused(auth, "tok-bound", NULL, 401, "did not present");
    /* Cached: the second use of a token asks nothing. */
    assert_int_equal(peer_count("tok-active-1"), 1);
    expect_bearer_ok(auth, "tok-active-1", NULL, "vnfm-1");
    expect_bearer_refused(auth, "tok-inactive", NULL, 401, "not active");
    assert_int_equal(peer_count("tok-active-1"), 1);
    assert_int_equal(peer_count("tok-inactive"), 1);
    /* tok-bound was asked once, its cached claims judged again with each connection's cert. */
    assert_int_equal(peer_count("tok-bound"), 1);
    serve_auth_free(auth);
}

static void test_introspection_unusable_answers_are_503_and_not_cached(void **state)
{
    (void)state;
    struct serve_auth *auth = introspect_auth("rs-client:rs-secret", 1.0, 0);
    expect_bearer_refused(auth, "tok-garbage", NULL, 503, "not RFC 7662 JSON");
    expect_bearer_refused(auth, "tok-no-active", NULL, 503, "not RFC 7662 JSON");
    expect_bearer_refused(auth, "tok-500", NULL, 503, "HTTP error");
    /* Redirects are not followed: the token goes to the configured endpoint only. */
    expect_bearer_refused(auth, "tok-redirect", NULL, 503, "HTTP error");
    assert_int_equal(peer_count("tok-redirect"), 1);
    expect_bearer_refused(auth, "tok-garbage", NULL, 503, "not RFC 7662 JSON");
    assert_int_equal(peer_count("tok-garbage"), 2);
    double start = now_mono();
    expect_bearer_refused(auth, "tok-slow", NULL, 503, "in time");
    double took = now_mono() - start;
    assert_true(took >= 0.9);
    if (took > 1.0 + 1.0 * time_factor())
        fail_msg("the 1 s introspection timeout took %.2f s", took);
    serve_auth_free(auth);

    /* The authorization server refuses our client credentials: said, and the secret is not. */
    auth = introspect_auth("rs-client:wrong-secret-42", 0, 0);
    struct serve_identity id;
    bearer(auth, "tok-active-2", NULL, &id);
    assert_false(id.ok);
    assert_int_equal(id.status, 503);
    assert_non_null(strstr(id.error, "refused this server's introspection credentials"));
    assert_no_leak(&id, "wrong-secret-42");
    serve_auth_free(auth);

    /* Nobody listening. */
    struct serve_auth_config cfg = {.introspect_url = "http://127.0.0.1:9/introspect",
                                    .introspect_auth = "a:b"};
    auth = load_ok(&cfg);
    expect_bearer_refused(auth, "tok-active-3", NULL, 503, "could not be reached");
    serve_auth_free(auth);
}

static void test_introspection_cache_is_bounded(void **state)
{
    (void)state;
    struct serve_auth *auth = introspect_auth("rs-client:rs-secret", 0, 4);
    expect_bearer_ok(auth, "tok-active-evicted", NULL, "vnfm-1");
    for (int i = 0; i < 12; i++) {
        char token[64];
        snprintf(token, sizeof token, "tok-active-fill-%d", i);
        expect_bearer_ok(auth, token, NULL, "vnfm-1");
    }
    /* Four slots: the first token was pushed out and is asked again. */
    expect_bearer_ok(auth, "tok-active-evicted", NULL, "vnfm-1");
    assert_int_equal(peer_count("tok-active-evicted"), 2);
    serve_auth_free(auth);
}

static void test_introspection_configuration_errors(void **state)
{
    (void)state;
    struct serve_auth_config cfg = {.introspect_url = "http://as.example/introspect",
                                    .introspect_auth = "id:TopSecret99"};
    load_fails(&cfg, "must be https://", "TopSecret99");
    cfg.introspect_url = "https://as.example/introspect";
    cfg.introspect_auth = "no-colon-TopSecret99";
    load_fails(&cfg, "must be ID:SECRET", "TopSecret99");
    cfg.introspect_auth = NULL;
    load_fails(&cfg, "needs this server's client credentials", NULL);
    /* From a file: read, and warned about when others may read it. */
    warnings[0] = '\0';
    write_file(path_in("as-credentials"), "rs-client:rs-secret\n", 0644);
    snprintf(introspect_url, sizeof introspect_url, "http://127.0.0.1:%d/introspect", peer_port);
    struct serve_auth_config file_cfg = {.introspect_url = introspect_url,
                                         .introspect_auth_file = path_in("as-credentials")};
    struct serve_auth *auth = load_ok(&file_cfg);
    assert_non_null(strstr(warnings, "as-credentials is readable by others"));
    assert_null(strstr(warnings, "rs-secret"));
    expect_bearer_ok(auth, "tok-active-file", NULL, "vnfm-1");
    serve_auth_free(auth);
    file_cfg.introspect_auth = "a:b";
    load_fails(&file_cfg, "both inline and as a file", NULL);
    struct serve_auth_config binding = {.users_file = users_file(0600),
                                        .require_cert_binding = true};
    load_fails(&binding, "need a JWKS file or an introspection URL", NULL);
}

/* Both Bearer ways and Basic at once: a JWT the JWKS knows is verified locally, another
   token goes to introspection; the challenges offer both schemes. */
static void test_all_methods_together(void **state)
{
    (void)state;
    snprintf(introspect_url, sizeof introspect_url, "http://127.0.0.1:%d/introspect", peer_port);
    struct serve_auth_config cfg = {.users_file = users_file(0600),
                                    .jwks_file = jwks_path,
                                    .introspect_url = introspect_url,
                                    .introspect_auth = "rs-client:rs-secret",
                                    .jwt_issuer = ISSUER,
                                    .jwt_audience = AUDIENCE};
    struct serve_auth *auth = load_ok(&cfg);
    char *t = good_rs256("rsa-1", "");
    expect_bearer_ok(auth, t, NULL, "vnfm-1");
    assert_int_equal(peer_count(t), 0);
    free(t);
    expect_bearer_ok(auth, "tok-active-both", NULL, "vnfm-1");
    struct serve_identity id;
    basic(auth, "alice:yes-pass", &id);
    assert_true(id.ok);
    serve_auth_check(auth, NULL, NULL, &id);
    assert_int_equal(id.n_challenges, 2);
    assert_string_equal(id.challenges[0], "Bearer realm=\"lcmcoord\"");
    assert_string_equal(id.challenges[1], "Basic realm=\"lcmcoord\", charset=\"UTF-8\"");
    assert_string_equal(serve_auth_challenge(auth),
                        "Bearer realm=\"lcmcoord\", Basic realm=\"lcmcoord\", charset=\"UTF-8\"");
    /* A failed Basic attempt carries no Bearer error. */
    basic(auth, "alice:nope", &id);
    assert_null(strstr(id.challenges[0], "error="));
    serve_auth_free(auth);

    struct serve_auth_config none = {0};
    auth = load_ok(&none);
    assert_false(serve_auth_enabled(auth));
    serve_auth_check(auth, NULL, NULL, &id);
    assert_true(id.ok);
    assert_string_equal(id.scheme, "none");
    serve_auth_free(auth);
}

/* One struct serve_auth used by several HTTP worker threads at once, as serve does: JWTs,
   Basic, cached and uncached introspection, refusals, all at the same time (the sanitizer
   builds judge the memory; the answers are judged here). */
struct worker {
    struct serve_auth *auth;
    const char *jwt;
    int index;
    int failures;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 6; i++) {
        struct serve_identity id;
        char header[4096], token[64];
        snprintf(header, sizeof header, "Bearer %s", w->jwt);
        serve_auth_check(w->auth, header, NULL, &id);
        w->failures += !id.ok || strcmp(id.who, "vnfm-1") != 0;
        snprintf(token, sizeof token, "Bearer tok-active-thread-%d", (w->index + i) % 5);
        serve_auth_check(w->auth, token, NULL, &id);
        w->failures += !id.ok || strcmp(id.who, "vnfm-1") != 0;
        serve_auth_check(w->auth, "Bearer tok-inactive", NULL, &id);
        w->failures += id.ok || id.status != 401;
        serve_auth_check(w->auth, "Basic Ym9iOnNoYS1wYXNz", NULL, &id); /* bob:sha-pass */
        w->failures += !id.ok || strcmp(id.who, "bob") != 0;
    }
    return NULL;
}

static void test_concurrent_checks_share_one_auth(void **state)
{
    (void)state;
    snprintf(introspect_url, sizeof introspect_url, "http://127.0.0.1:%d/introspect", peer_port);
    struct serve_auth_config cfg = {.users_file = users_file(0600),
                                    .jwks_file = jwks_path,
                                    .introspect_url = introspect_url,
                                    .introspect_auth = "rs-client:rs-secret",
                                    .introspect_cache_max = 3,
                                    .jwt_issuer = ISSUER,
                                    .jwt_audience = AUDIENCE};
    struct serve_auth *auth = load_ok(&cfg);
    char *jwt = good_rs256("rsa-1", "");
    struct worker workers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (struct worker){auth, jwt, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(workers[i].failures, 0);
    }
    free(jwt);
    serve_auth_free(auth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_accepts_yescrypt_sha512_bcrypt),
        cmocka_unit_test(test_basic_refuses_wrong_password_unknown_user_and_malformed),
        cmocka_unit_test(test_basic_cache_remembers_only_successes),
        cmocka_unit_test(test_users_file_refuses_plaintext_and_unknown_formats),
        cmocka_unit_test(test_users_file_readable_by_others_is_warned),
        cmocka_unit_test(test_hash_password_makes_a_line_the_loader_accepts),
        cmocka_unit_test(test_hash_password_on_a_terminal_does_not_echo),
        cmocka_unit_test(test_jwt_accepts_rs256_rs384_es256_es384_es512_and_aud_arrays),
        cmocka_unit_test(test_jwt_refusals),
        cmocka_unit_test(test_jwt_refuses_hs256_signed_with_the_public_key),
        cmocka_unit_test(test_bearer_malformed_headers),
        cmocka_unit_test(test_jwt_certificate_binding),
        cmocka_unit_test(test_jwks_file_errors),
        cmocka_unit_test(test_jwk_alg_pins_the_algorithm),
        cmocka_unit_test(test_introspection_active_inactive_and_claims),
        cmocka_unit_test(test_introspection_unusable_answers_are_503_and_not_cached),
        cmocka_unit_test(test_introspection_cache_is_bounded),
        cmocka_unit_test(test_introspection_configuration_errors),
        cmocka_unit_test(test_all_methods_together),
        cmocka_unit_test(test_concurrent_checks_share_one_auth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
