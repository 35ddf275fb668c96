/*
 * Who may call `lcmcoord serve` (serve_auth.h): loading the configuration (users file,
 * JWKS, introspection), HTTP Basic against crypt(3) hashes, the dispatch of Bearer tokens
 * to JWT verification (serve_jwt.c) or introspection (serve_auth_introspect.c), the claim
 * checks both share, the refusals with their RFC 6750 challenges, and the users-file line
 * maker behind `--hash-password`. Hashing is libcrypt's (libxcrypt): yescrypt, sha512-crypt
 * and bcrypt are verified by crypt_rn and the outputs compared in constant time; an unknown
 * user costs the same hash as a known one, so timing does not tell which names exist.
 * Nothing here writes a password, a token or a client secret anywhere, errors included:
 * every refusal text is a static string.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>

#include "serve_auth_internal.h"

#define USERS_LINE_MAX   4096
#define USERS_MAX        100000
#define BASIC_HEADER_MAX 4096
/* libcrypt hashes nothing of CRYPT_MAX_PASSPHRASE_SIZE bytes or more (crypt_rn fails) */
#define PASSWORD_MAX    (CRYPT_MAX_PASSPHRASE_SIZE - 1)
#define DEFAULT_LEEWAY  30
#define DEFAULT_REALM   "lcmcoord"
#define BASIC_CACHE_MAX 1024 /* successful Basic checks remembered at most */
#define BASIC_CACHE_TTL 60.0
#define BASIC_PROBE     4
#define CRYPT_ALPHABET  "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

struct user {
    char *name;
    char *hash;
};

struct basic_cached {
    unsigned char mac[32];
    double expires;
    const struct user *user;
};

struct serve_auth {
    struct user *users; /* sorted by name */
    size_t n_users;
    unsigned char name_key[32]; /* picks the hash an unknown user name is checked against */
    bool basic;
    /* Successful Basic checks remembered by an HMAC of user and password under a key made
       at load (never the password): a client repeating its credentials costs one HMAC, not
       one yescrypt, per request. Failures are never remembered: guessing stays slow. */
    unsigned char basic_key[32];
    struct basic_cached *basic_cache;
    size_t basic_cache_cap;
    double basic_cache_ttl;
    pthread_mutex_t basic_lock;
    struct serve_jwks *jwks;
    struct serve_token_cache *jwt_cache; /* verified JWTs: a repeated token skips the RSA/EC */
    double jwt_cache_ttl;
    struct serve_introspect *introspect;
    struct serve_claims_policy policy;
    char *issuer, *audience;
    char realm[128];
    char basic_challenge[256];
    char bearer_challenge[256];
    char challenge[600]; /* both, comma-joined */
};

static void warn_stderr(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "lcmcoord-serve: warning: %s\n", line);
}

void serve_auth_printable_copy(char *dst, size_t len, const char *src, size_t srclen)
{
    size_t o = 0;
    for (size_t i = 0; i < srclen && o + 1 < len; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len)
        dst[o] = '\0';
}

void serve_auth_warn_if_exposed(int fd, const char *path, void (*warn)(void *, const char *),
                                void *warn_ud)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH)) {
        char line[512];
        snprintf(line, sizeof line,
                 "%s is readable by others (mode %03o): it holds credentials, chmod o-r it", path,
                 (unsigned)(st.st_mode & 0777));
        warn(warn_ud, line);
    }
}

/* ---- the users file ---- */

/* A user name as RFC 7617 allows (no ':'), printable, no spaces: it goes into audit logs. */
static bool user_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 200)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7f || c == ':' || c >= 0x80)
            return false;
    }
    return true;
}

static bool all_crypt_alphabet(const char *s, size_t n)
{
    return strspn(s, CRYPT_ALPHABET) >= n;
}

/* A complete hash of one of the methods accepted, not just a prefix: the checksum field has
   the method's exact length. NULL when well formed, else what is wrong (never the hash). */
static const char *hash_problem(const char *h)
{
    size_t len = strlen(h);
    const char *last = strrchr(h, '$');
    size_t tail = last ? len - (size_t)(last - h) - 1 : 0;
    bool shape;
    if (strncmp(h, "$y$", 3) == 0)
        shape = tail == 43 && all_crypt_alphabet(last + 1, tail);
    else if (strncmp(h, "$6$", 3) == 0)
        shape = tail == 86 && all_crypt_alphabet(last + 1, tail);
    else if (strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0)
        shape = len == 60 && isdigit((unsigned char)h[4]) && isdigit((unsigned char)h[5]) &&
                h[6] == '$' && all_crypt_alphabet(h + 7, 53);
    else if (h[0] == '$')
        return "a crypt(3) method other than yescrypt ($y$), sha512 ($6$) or bcrypt ($2b$)";
    else
        return "not a crypt(3) hash (plaintext passwords are refused; make the line with "
               "lcmcoord serve --hash-password)";
    if (!shape)
        return "a truncated or malformed crypt(3) hash";
    int check = crypt_checksalt(h);
    if (check == CRYPT_SALT_INVALID || check == CRYPT_SALT_METHOD_DISABLED)
        return "a crypt(3) hash this libcrypt does not accept";
    if (check == CRYPT_SALT_METHOD_LEGACY)
        return "a legacy crypt(3) method";
    return NULL;
}

static int user_cmp(const void *a, const void *b)
{
    return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

static void users_free(struct serve_auth *auth)
{
    for (size_t i = 0; i < auth->n_users; i++) {
        free(auth->users[i].name);
        free(auth->users[i].hash);
    }
    free(auth->users);
    auth->users = NULL;
    auth->n_users = 0;
}

static int users_load(struct serve_auth *auth, const char *path, void (*warn)(void *, const char *),
                      void *warn_ud, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read the users file %s: %s", path, strerror(errno));
        return -1;
    }
    serve_auth_warn_if_exposed(fd, path, warn, warn_ud);
    FILE *f = fdopen(fd, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the users file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, allocated = 0;
    ssize_t got;
    unsigned lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len > USERS_LINE_MAX) {
            snprintf(err, errlen, "the users file %s, line %u: longer than %d bytes", path, lineno,
                     USERS_LINE_MAX);
            rc = -1;
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        size_t lead = strspn(line, " \t");
        if (line[lead] == '\0' || line[lead] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || !user_name_valid(line, (size_t)(colon - line))) {
            snprintf(err, errlen,
                     "the users file %s, line %u: expected USER:HASH with a user name of "
                     "printable characters without spaces or ':'",
                     path, lineno);
            rc = -1;
            break;
        }
        *colon = '\0';
        const char *problem = hash_problem(colon + 1);
        if (problem) {
            snprintf(err, errlen, "the users file %s, line %u (user %s): %s", path, lineno, line,
                     problem);
            rc = -1;
            break;
        }
        if (auth->n_users == USERS_MAX) {
            snprintf(err, errlen, "the users file %s has more than %d users", path, USERS_MAX);
            rc = -1;
            break;
        }
        if (auth->n_users == allocated) {
            size_t more = allocated ? allocated * 2 : 16;
            struct user *grown = realloc(auth->users, more * sizeof *grown);
            if (!grown) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            auth->users = grown;
            allocated = more;
        }
        struct user *u = &auth->users[auth->n_users];
        u->name = strdup(line);
        u->hash = strdup(colon + 1);
        auth->n_users++;
        if (!u->name || !u->hash) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        for (size_t i = 0; i + 1 < auth->n_users; i++) {
            if (strcmp(auth->users[i].name, u->name) == 0) {
                snprintf(err, errlen, "the users file %s, line %u: user %s appears twice", path,
                         lineno, u->name);
                rc = -1;
                break;
            }
        }
        if (rc)
            break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read the users file %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && auth->n_users == 0) {
        snprintf(err, errlen, "the users file %s has no users", path);
        rc = -1;
    }
    if (line)
        OPENSSL_cleanse(line, cap);
    free(line);
    fclose(f);
    if (rc == 0)
        qsort(auth->users, auth->n_users, sizeof *auth->users, user_cmp);
    return rc;
}

double serve_auth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int basic_cache_init(struct serve_auth *auth, const struct serve_auth_config *cfg, char *err,
                            size_t errlen)
{
    auth->basic_cache_ttl = cfg->basic_cache_ttl == 0 ? BASIC_CACHE_TTL : cfg->basic_cache_ttl;
    if (auth->basic_cache_ttl < 0)
        return 0; /* turned off */
    auth->basic_cache_cap = BASIC_CACHE_MAX;
    auth->basic_cache = calloc(auth->basic_cache_cap, sizeof *auth->basic_cache);
    if (!auth->basic_cache || RAND_bytes(auth->basic_key, sizeof auth->basic_key) != 1) {
        snprintf(err, errlen, "cannot set up the Basic credentials cache");
        return -1;
    }
    pthread_mutex_init(&auth->basic_lock, NULL);
    return 0;
}

static void basic_mac(const struct serve_auth *auth, const char *user, const char *password,
                      unsigned char mac[32])
{
    unsigned int len = 32;
    size_t ulen = strlen(user), plen = strlen(password);
    unsigned char *msg = malloc(ulen + 1 + plen);
    if (!msg) {
        memset(mac, 0, 32); /* matches nothing cached: a real check follows */
        return;
    }
    memcpy(msg, user, ulen);
    msg[ulen] = '\0'; /* user names have no NUL: "ab"+"c" and "a"+"bc" differ */
    memcpy(msg + ulen + 1, password, plen);
    HMAC(EVP_sha256(), auth->basic_key, sizeof auth->basic_key, msg, ulen + 1 + plen, mac, &len);
    OPENSSL_cleanse(msg, ulen + 1 + plen);
    free(msg);
}

/* The user a cached success names, or NULL. */
static const struct user *basic_cache_find(struct serve_auth *auth, const unsigned char mac[32])
{
    if (!auth->basic_cache)
        return NULL;
    const struct user *found = NULL;
    size_t start;
    memcpy(&start, mac, sizeof start);
    double now = serve_auth_now();
    pthread_mutex_lock(&auth->basic_lock);
    for (size_t i = 0; i < BASIC_PROBE; i++) {
        struct basic_cached *c = &auth->basic_cache[(start + i) % auth->basic_cache_cap];
        if (c->user && c->expires > now && CRYPTO_memcmp(c->mac, mac, 32) == 0)
            found = c->user;
    }
    pthread_mutex_unlock(&auth->basic_lock);
    return found;
}

static void basic_cache_put(struct serve_auth *auth, const unsigned char mac[32],
                            const struct user *user)
{
    if (!auth->basic_cache)
        return;
    size_t start;
    memcpy(&start, mac, sizeof start);
    double now = serve_auth_now();
    pthread_mutex_lock(&auth->basic_lock);
    struct basic_cached *victim = &auth->basic_cache[start % auth->basic_cache_cap];
    for (size_t i = 0; i < BASIC_PROBE; i++) {
        struct basic_cached *c = &auth->basic_cache[(start + i) % auth->basic_cache_cap];
        if (!c->user || c->expires <= now) {
            victim = c;
            break;
        }
        if (c->expires < victim->expires)
            victim = c;
    }
    memcpy(victim->mac, mac, 32);
    victim->user = user;
    victim->expires = now + auth->basic_cache_ttl;
    pthread_mutex_unlock(&auth->basic_lock);
}

/* The hash an unknown user name is checked against: a user's, chosen by an HMAC of the name
   under a key made at load. */
static const char *stand_in_hash(const struct serve_auth *auth, const char *name)
{
    unsigned char mac[32];
    unsigned int len = sizeof mac;
    size_t pick = 0;
    if (HMAC(EVP_sha256(), auth->name_key, sizeof auth->name_key, (const unsigned char *)name,
             strlen(name), mac, &len))
        memcpy(&pick, mac, sizeof pick);
    return auth->users[pick % auth->n_users].hash;
}

/* crypt_rn of password against hash, compared with it in constant time. */
static bool password_matches(const char *password, const char *hash)
{
    struct crypt_data *data = calloc(1, sizeof *data);
    if (!data)
        return false;
    const char *out = crypt_rn(password, hash, data, sizeof *data);
    size_t hlen = strlen(hash);
    bool ok = out && strlen(out) == hlen && CRYPTO_memcmp(out, hash, hlen) == 0;
    OPENSSL_cleanse(data, sizeof *data);
    free(data);
    return ok;
}

/* ---- claims (shared by JWTs and introspection) ---- */

static bool number_claim(const json_t *claims, const char *name, double *out, bool *bad)
{
    const json_t *v = json_object_get(claims, name);
    if (!v)
        return false;
    if (!json_is_number(v)) {
        *bad = true;
        return false;
    }
    *out = json_number_value(v);
    return true;
}

bool serve_auth_thumbprint_equal(const char *a, const char *b)
{
    size_t alen = strlen(a), blen = strlen(b);
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

const char *serve_claims_x5t(const json_t *claims)
{
    return json_string_value(json_object_get(json_object_get(claims, "cnf"), "x5t#S256"));
}

const char *serve_claims_check(const struct serve_claims_policy *policy, const json_t *claims,
                               bool exp_required, const char *peer_thumbprint, time_t now)
{
    double exp = 0, nbf = 0;
    bool bad = false;
    bool has_exp = number_claim(claims, "exp", &exp, &bad);
    bool has_nbf = number_claim(claims, "nbf", &nbf, &bad);
    if (bad)
        return "the token's exp or nbf is not a number";
    if (!has_exp && exp_required)
        return "the token has no expiry (exp)";
    if (has_exp && (double)now > exp + (double)policy->leeway)
        return "the token expired";
    if (has_nbf && (double)now + (double)policy->leeway < nbf)
        return "the token is not valid yet (nbf)";
    if (policy->issuer) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (!iss || strcmp(iss, policy->issuer) != 0)
            return "the token's issuer (iss) is not the one expected";
    }
    if (policy->audience) {
        const json_t *aud = json_object_get(claims, "aud");
        bool found = false;
        if (json_is_string(aud)) {
            found = strcmp(json_string_value(aud), policy->audience) == 0;
        } else if (json_is_array(aud)) {
            size_t i;
            const json_t *one;
            json_array_foreach(aud, i, one)
            {
                found = found || (json_is_string(one) &&
                                  strcmp(json_string_value(one), policy->audience) == 0);
            }
        }
        if (!found)
            return "the token is not meant for this server (aud)";
    }
    const json_t *cnf = json_object_get(claims, "cnf");
    if (cnf &&
        (!json_is_object(cnf) || (json_object_get(cnf, "x5t#S256") && !serve_claims_x5t(claims))))
        return "the token's cnf claim is malformed";
    if (cnf && json_object_size(cnf) > (json_object_get(cnf, "x5t#S256") ? 1u : 0u))
        /* Bound by another method (RFC 9449 DPoP's jkt, RFC 7800 jwk/jwe/jku...) that needs a
           proof this server does not check: taken as a plain bearer token, the sender
           constraint its issuer put on it would silently vanish. */
        return "the token is bound by a confirmation method (cnf) this server cannot check";
    const char *bound = serve_claims_x5t(claims);
    if (bound) {
        /* RFC 8705 §3: a bound token is good only with the certificate it is bound to. */
        if (!peer_thumbprint)
            return "the token is bound to a client certificate this connection did not present";
        if (!serve_auth_thumbprint_equal(bound, peer_thumbprint))
            return "the token is bound to another client certificate";
    } else if (policy->require_binding) {
        return "the token is not bound to a client certificate (cnf x5t#S256)";
    }
    return NULL;
}

void serve_claims_who(const json_t *claims, char *who, size_t len)
{
    const char *name = json_string_value(json_object_get(claims, "client_id"));
    if (!name || !*name)
        name = json_string_value(json_object_get(claims, "sub"));
    if (!name || !*name)
        name = "unknown";
    serve_auth_printable_copy(who, len, name, strlen(name));
}

/* ---- load ---- */

static bool realm_valid(const char *realm)
{
    for (const char *p = realm; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
            return false;
    return *realm && strlen(realm) < 100;
}

struct serve_auth *serve_auth_load(const struct serve_auth_config *cfg, char *err, size_t errlen)
{
    void (*warn)(void *, const char *) = cfg->warn ? cfg->warn : warn_stderr;
    struct serve_auth *auth = calloc(1, sizeof *auth);
    if (!auth) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *realm = cfg->realm ? cfg->realm : DEFAULT_REALM;
    if (!realm_valid(realm)) {
        snprintf(err, errlen, "the realm must be printable ASCII without quotes or backslashes");
        goto fail;
    }
    snprintf(auth->realm, sizeof auth->realm, "%s", realm);
    if ((cfg->jwt_issuer && !(auth->issuer = strdup(cfg->jwt_issuer))) ||
        (cfg->jwt_audience && !(auth->audience = strdup(cfg->jwt_audience)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    auth->policy.issuer = auth->issuer;
    auth->policy.audience = auth->audience;
    auth->policy.leeway = cfg->jwt_leeway == 0  ? DEFAULT_LEEWAY
                          : cfg->jwt_leeway < 0 ? 0
                                                : cfg->jwt_leeway;
    auth->policy.require_binding = cfg->require_cert_binding;
    if (cfg->users_file) {
        if (users_load(auth, cfg->users_file, warn, cfg->warn_ud, err, errlen) != 0 ||
            basic_cache_init(auth, cfg, err, errlen) != 0)
            goto fail;
        if (RAND_bytes(auth->name_key, sizeof auth->name_key) != 1) {
            snprintf(err, errlen, "cannot make a random key (OpenSSL's RAND_bytes failed)");
            goto fail;
        }
        auth->basic = true;
    }
    if (cfg->jwks_file &&
        !(auth->jwks = serve_jwks_load(cfg->jwks_file, warn, cfg->warn_ud, err, errlen)))
        goto fail;
    if (auth->jwks) {
        auth->jwt_cache_ttl = cfg->introspect_cache_ttl > 0 ? cfg->introspect_cache_ttl : 60.0;
        auth->jwt_cache =
            serve_token_cache_new(cfg->introspect_cache_max ? cfg->introspect_cache_max : 4096);
        if (!auth->jwt_cache) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (cfg->introspect_url &&
        !(auth->introspect = serve_introspect_new(cfg, warn, cfg->warn_ud, err, errlen)))
        goto fail;
    if (!cfg->introspect_url && (cfg->introspect_auth || cfg->introspect_auth_file)) {
        snprintf(err, errlen, "introspection credentials are given without an introspection URL");
        goto fail;
    }
    if ((auth->jwks || auth->introspect) && !auth->audience)
        warn(cfg->warn_ud, "Bearer tokens are accepted without an audience check (no JWT "
                           "audience configured): a token issued for another service of the "
                           "same authorization server is accepted here too");
    if (cfg->require_cert_binding && !auth->jwks && !auth->introspect) {
        snprintf(err, errlen, "certificate-bound tokens need a JWKS file or an introspection URL");
        goto fail;
    }
    snprintf(auth->basic_challenge, sizeof auth->basic_challenge,
             "Basic realm=\"%s\", charset=\"UTF-8\"", auth->realm);
    snprintf(auth->bearer_challenge, sizeof auth->bearer_challenge, "Bearer realm=\"%s\"",
             auth->realm);
    if (auth->basic && (auth->jwks || auth->introspect))
        snprintf(auth->challenge, sizeof auth->challenge, "%s, %s", auth->bearer_challenge,
                 auth->basic_challenge);
    else if (auth->basic)
        snprintf(auth->challenge, sizeof auth->challenge, "%s", auth->basic_challenge);
    else if (auth->jwks || auth->introspect)
        snprintf(auth->challenge, sizeof auth->challenge, "%s", auth->bearer_challenge);
    return auth;
fail:
    serve_auth_free(auth);
    return NULL;
}

void serve_auth_free(struct serve_auth *auth)
{
    if (!auth)
        return;
    if (auth->basic_cache) {
        OPENSSL_cleanse(auth->basic_cache, auth->basic_cache_cap * sizeof *auth->basic_cache);
        free(auth->basic_cache);
        pthread_mutex_destroy(&auth->basic_lock);
    }
    users_free(auth);
    serve_jwks_free(auth->jwks);
    serve_token_cache_free(auth->jwt_cache);
    serve_introspect_free(auth->introspect);
    free(auth->issuer);
    free(auth->audience);
    OPENSSL_cleanse(auth, sizeof *auth);
    free(auth);
}

bool serve_auth_enabled(const struct serve_auth *auth)
{
    return auth && (auth->basic || auth->jwks || auth->introspect);
}

const char *serve_auth_challenge(const struct serve_auth *auth)
{
    return auth ? auth->challenge : "";
}

/* ---- check ---- */

static bool bearer_enabled(const struct serve_auth *auth)
{
    return auth->jwks || auth->introspect;
}

/* Fills the refusal: status, texts, and the challenges of every scheme configured; the
   Bearer one carries the error when the Bearer credentials were what failed. */
static void refuse(const struct serve_auth *auth, struct serve_identity *out, int status,
                   const char *error_code, const char *error, bool bearer_error)
{
    out->ok = false;
    out->status = status;
    out->error_code = error_code;
    out->error = error;
    out->n_challenges = 0;
    if (bearer_enabled(auth)) {
        char *c = out->challenges[out->n_challenges++];
        if (bearer_error && error_code)
            snprintf(c, sizeof out->challenges[0], "%s, error=\"%s\", error_description=\"%s\"",
                     auth->bearer_challenge, error_code, error);
        else
            snprintf(c, sizeof out->challenges[0], "%s", auth->bearer_challenge);
    }
    if (auth->basic)
        snprintf(out->challenges[out->n_challenges++], sizeof out->challenges[0], "%s",
                 auth->basic_challenge);
}

/* Decodes standard padded base64 (RFC 7617 credentials); NULL when it is not that. */
static char *base64_decode(const char *in, size_t n, size_t *outlen)
{
    if (n == 0 || n % 4 != 0 || n > BASIC_HEADER_MAX)
        return NULL;
    size_t pad = (in[n - 1] == '=') + (in[n - 2] == '=');
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0 || (size_t)got < pad) {
        OPENSSL_cleanse(out, n / 4 * 3 + 1);
        free(out);
        return NULL;
    }
    *outlen = (size_t)got - pad;
    out[*outlen] = '\0';
    return (char *)out;
}

static void check_basic(struct serve_auth *auth, const char *cred, size_t credlen,
                        struct serve_identity *out)
{
    size_t plain_len = 0;
    char *plain = base64_decode(cred, credlen, &plain_len);
    char *colon = plain ? memchr(plain, ':', plain_len) : NULL;
    if (!colon || memchr(plain, '\0', plain_len)) {
        if (plain) {
            OPENSSL_cleanse(plain, plain_len);
            free(plain);
        }
        refuse(auth, out, 401, NULL, "malformed Basic credentials", false);
        return;
    }
    *colon = '\0';
    const char *password = colon + 1;
    struct user key = {.name = plain};
    const struct user *user =
        user_name_valid(plain, strlen(plain))
            ? bsearch(&key, auth->users, auth->n_users, sizeof *auth->users, user_cmp)
            : NULL;
    unsigned char mac[32];
    basic_mac(auth, plain, password, mac);
    bool ok = user && basic_cache_find(auth, mac) == user;
    if (!ok) {
        /* An unknown user is checked against a real user's hash, the same refusal: with one
           method and cost in the file, the same work. With several, the user is picked by a
           keyed hash of the name, so an unknown name always costs what some real user costs
           (the same one each time, so repeating does not average it out); a fixed choice
           made every unknown name cost one user's method, and any user with another one
           stood out (a cheap sha512-crypt first, yescrypt for the rest: 70 times faster). */
        ok = password_matches(password, user ? user->hash : stand_in_hash(auth, plain)) && user;
        if (ok)
            basic_cache_put(auth, mac, user);
    }
    OPENSSL_cleanse(mac, sizeof mac);
    if (ok) {
        out->ok = true;
        out->status = 200;
        snprintf(out->scheme, sizeof out->scheme, "basic");
        snprintf(out->who, sizeof out->who, "%s", user->name);
    } else {
        refuse(auth, out, 401, NULL, "wrong user name or password", false);
    }
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
}

/* RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool b64token_valid(const char *t, size_t n)
{
    size_t body = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
    if (body == 0 || body > n)
        return false;
    size_t i = body;
    while (i < n && t[i] == '=')
        i++;
    return i == n;
}

static void check_bearer(struct serve_auth *auth, const char *token, size_t len,
                         const char *peer_thumbprint, struct serve_identity *out)
{
    if (len > SERVE_TOKEN_MAX || !b64token_valid(token, len)) {
        refuse(auth, out, 400, "invalid_request", "malformed Bearer token", true);
        return;
    }
    char *copy = strndup(token, len);
    if (!copy) {
        refuse(auth, out, 503, NULL, "out of memory", false);
        return;
    }
    const char *error = "the token is not recognised";
    enum serve_jwt_result jwt = SERVE_JWT_UNKNOWN;
    if (auth->jwks) {
        json_t *claims = NULL;
        const char *jwt_error = NULL;
        unsigned char digest[SERVE_TOKEN_DIGEST_LEN];
        serve_token_digest(copy, digest);
        double now = serve_auth_now();
        if (serve_token_cache_get(auth->jwt_cache, digest, now, &claims) && claims) {
            jwt = SERVE_JWT_VALID; /* its signature verified before; its claims judged anew */
        } else {
            json_decref(claims);
            claims = NULL;
            jwt = serve_jwt_verify(auth->jwks, copy, &claims, &jwt_error);
            if (jwt == SERVE_JWT_VALID) {
                double expires = now + auth->jwt_cache_ttl;
                const json_t *exp = json_object_get(claims, "exp");
                if (json_is_number(exp) &&
                    json_number_value(exp) + (double)auth->policy.leeway < expires)
                    expires = json_number_value(exp) + (double)auth->policy.leeway;
                serve_token_cache_put(auth->jwt_cache, digest, json_incref(claims), expires, now);
            }
        }
        if (jwt_error)
            error = jwt_error;
        if (jwt == SERVE_JWT_VALID) {
            error = serve_claims_check(&auth->policy, claims, true, peer_thumbprint, (time_t)now);
            if (!error) {
                out->ok = true;
                out->status = 200;
                snprintf(out->scheme, sizeof out->scheme, "bearer");
                serve_claims_who(claims, out->who, sizeof out->who);
            }
            json_decref(claims);
        }
    }
    if (jwt == SERVE_JWT_UNKNOWN && auth->introspect) {
        switch (serve_introspect_check(auth->introspect, copy, &auth->policy, peer_thumbprint,
                                       out->who, sizeof out->who, &error)) {
        case SERVE_INTROSPECT_ACTIVE:
            out->ok = true;
            out->status = 200;
            snprintf(out->scheme, sizeof out->scheme, "bearer");
            error = NULL;
            break;
        case SERVE_INTROSPECT_REFUSED:
            break;
        case SERVE_INTROSPECT_UNAVAILABLE:
            OPENSSL_cleanse(copy, len);
            free(copy);
            refuse(auth, out, 503, NULL, error, false);
            return;
        }
    }
    OPENSSL_cleanse(copy, len);
    free(copy);
    if (!out->ok) {
        out->who[0] = '\0';
        refuse(auth, out, 401, "invalid_token", error ? error : "the token is not accepted", true);
    }
}

void serve_auth_check(struct serve_auth *auth, const char *authorization,
                      const char *peer_thumbprint, struct serve_identity *out)
{
    memset(out, 0, sizeof *out);
    if (!serve_auth_enabled(auth)) {
        out->ok = true;
        out->status = 200;
        snprintf(out->scheme, sizeof out->scheme, "none");
        snprintf(out->who, sizeof out->who, "anonymous");
        return;
    }
    if (!authorization) {
        refuse(auth, out, 401, NULL, NULL, false);
        return;
    }
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t scheme_len = strcspn(p, " \t");
    const char *rest = p + scheme_len;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    size_t rest_len = strlen(rest);
    while (rest_len && (rest[rest_len - 1] == ' ' || rest[rest_len - 1] == '\t'))
        rest_len--;
    bool is_basic = scheme_len == 5 && strncasecmp(p, "Basic", 5) == 0;
    bool is_bearer = scheme_len == 6 && strncasecmp(p, "Bearer", 6) == 0;
    if (is_bearer && bearer_enabled(auth)) {
        if (rest_len == 0 || memchr(rest, ' ', rest_len) || memchr(rest, '\t', rest_len)) {
            refuse(auth, out, 400, "invalid_request", "malformed Authorization header", true);
            return;
        }
        check_bearer(auth, rest, rest_len, peer_thumbprint, out);
    } else if (is_basic && auth->basic) {
        if (rest_len == 0 || memchr(rest, ' ', rest_len) || memchr(rest, '\t', rest_len)) {
            refuse(auth, out, 401, NULL, "malformed Basic credentials", false);
            return;
        }
        check_basic(auth, rest, rest_len, out);
    } else {
        /* A scheme not offered here: as if no credentials were sent (RFC 6750 §3.1). */
        refuse(auth, out, 401, NULL, "an authentication scheme not offered here", false);
    }
}

/* ---- `--hash-password` ---- */

/* One line from fd, byte by byte so nothing past it is consumed; -1 when too long. */
static int read_secret_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || c == '\n')
            break;
        if (n + 1 >= len)
            return -1;
        buf[n++] = c;
    }
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (int)n;
}

/* Both prompts with echo off throughout: a terminal echoes input as it arrives, so echo goes
   off before the first prompt and comes back only after the second line is read. Typeahead
   from before the prompt is discarded (TCSAFLUSH), as getpass does: it was echoed. */
static int prompt_twice(int fd, FILE *prompt, char *first, char *second, size_t len, int *n2)
{
    struct termios old, quiet;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fputs("Password: ", prompt);
    fflush(prompt);
    int n1 = read_secret_line(fd, first, len);
    fputs("\n", prompt);
    *n2 = -1;
    if (n1 > 0) {
        fputs("Password again: ", prompt);
        fflush(prompt);
        *n2 = read_secret_line(fd, second, len);
        fputs("\n", prompt);
    }
    fflush(prompt);
    if (restore)
        tcsetattr(fd, TCSANOW, &old);
    return n1;
}

int serve_auth_hash_password(int fd, FILE *prompt, const char *user, char *line, size_t linelen,
                             char *err, size_t errlen)
{
    char password[PASSWORD_MAX + 2], again[PASSWORD_MAX + 2];
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *data = NULL;
    int rc = -1;
    password[0] = again[0] = '\0';
    if (!user || !user_name_valid(user, strlen(user))) {
        snprintf(err, errlen,
                 "the user name must be 1 to 200 printable characters without spaces or ':'");
        goto done;
    }
    int n;
    if (isatty(fd)) {
        int n2;
        n = prompt_twice(fd, prompt ? prompt : stderr, password, again, sizeof password, &n2);
        if (n > 0 && (n2 != n || CRYPTO_memcmp(password, again, (size_t)n) != 0)) {
            snprintf(err, errlen, "the passwords differ");
            goto done;
        }
    } else {
        n = read_secret_line(fd, password, sizeof password);
    }
    if (n < 0 || n > PASSWORD_MAX) {
        snprintf(err, errlen, "the password is longer than %d bytes", PASSWORD_MAX);
        goto done;
    }
    if (n == 0) {
        snprintf(err, errlen, "the password is empty");
        goto done;
    }
    data = calloc(1, sizeof *data);
    const char *hash = NULL;
    if (!data || !crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof setting) ||
        !(hash = crypt_rn(password, setting, data, sizeof *data)) || hash[0] == '*') {
        snprintf(err, errlen, "cannot make a yescrypt hash with libcrypt");
        goto done;
    }
    if ((size_t)snprintf(line, linelen, "%s:%s", user, hash) >= linelen) {
        snprintf(err, errlen, "the users-file line does not fit its buffer");
        goto done;
    }
    rc = 0;
done:
    OPENSSL_cleanse(password, sizeof password);
    OPENSSL_cleanse(again, sizeof again);
    if (data) {
        OPENSSL_cleanse(data, sizeof *data);
        free(data);
    }
    return rc;
}
