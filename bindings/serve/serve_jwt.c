/*
 * Bearer JWTs verified against a JWKS file (RFC 7517/7518) with libjwt. libjwt 1.10 takes PEM
 * keys and verifies with whatever algorithm the token's header names, so this file does what
 * it does not: it turns each JWK (RSA n/e, EC crv/x/y) into a PEM public key once, at load,
 * with OpenSSL 3 (EVP_PKEY_fromdata); it picks the key by the header's `kid`; and it lets the
 * token through to libjwt only when the header's `alg` is one the key is for. Without that
 * last check `alg: none` would skip the signature, and `HS256` would make libjwt verify an
 * HMAC keyed with the public key's PEM text, which anyone can compute (the classic algorithm
 * confusion). The claims are then read from the verified payload with jansson (duplicate
 * names refused) and judged by serve_claims_check, as introspection answers are.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "serve_auth_internal.h"

#define JWKS_FILE_MAX (1024 * 1024)
#define JWKS_KEYS_MAX 64
#define RSA_MIN_BITS  2048

struct jwk {
    char *kid; /* NULL when the JWK has none */
    char *pem; /* SubjectPublicKeyInfo, PEM */
    jwt_alg_t algs[3];
    size_t n_algs;
};

struct serve_jwks {
    struct jwk keys[JWKS_KEYS_MAX];
    size_t n;
};

/* ---- base64url (RFC 7515 §2: no padding) ---- */

/* Decodes unpadded base64url; NULL when the text is not that. The result is NUL-terminated
   (so a decoded JSON segment can be parsed as a string) and *outlen excludes the NUL. */
static unsigned char *b64url_decode(const char *in, size_t n, size_t *outlen)
{
    if (n == 0 || n > SERVE_TOKEN_MAX || n % 4 == 1)
        return NULL;
    size_t padded = (n + 3) / 4 * 4;
    char *std = malloc(padded + 1);
    unsigned char *out = malloc(padded / 4 * 3 + 1);
    if (!std || !out)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            goto fail;
        std[i] = c;
    }
    for (size_t i = n; i < padded; i++)
        std[i] = '=';
    std[padded] = '\0';
    int got = EVP_DecodeBlock(out, (const unsigned char *)std, (int)padded);
    if (got < 0)
        goto fail;
    *outlen = (size_t)got - (padded - n);
    out[*outlen] = '\0';
    free(std);
    return out;
fail:
    free(std);
    free(out);
    return NULL;
}

static unsigned char *b64url_member(const json_t *jwk, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    return s ? b64url_decode(s, strlen(s), len) : NULL;
}

/* ---- JWK -> PEM ---- */

static char *pkey_to_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        if (len > 0 && (pem = malloc((size_t)len + 1))) {
            memcpy(pem, data, (size_t)len);
            pem[len] = '\0';
        }
    }
    BIO_free(bio);
    return pem;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey) {
        /* A point off the curve (invalid-curve attacks) or a broken modulus stops here. */
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        int ok = check && EVP_PKEY_public_check(check) == 1;
        EVP_PKEY_CTX_free(check);
        if (!ok) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    return pkey;
}

static const char *rsa_to_pem(const json_t *jwk, char **pem)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = b64url_member(jwk, "n", &nlen);
    unsigned char *e = b64url_member(jwk, "e", &elen);
    const char *problem = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    if (!n || !e) {
        problem = "an RSA key needs \"n\" and \"e\" in base64url";
        goto done;
    }
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    if (!bn_n || !bn_e) {
        problem = "out of memory";
        goto done;
    }
    if (BN_num_bits(bn_n) < RSA_MIN_BITS) {
        problem = "RSA key shorter than 2048 bits";
        goto done;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
        !(pkey = pkey_from_params("RSA", bld))) {
        problem = "not a valid RSA public key";
        goto done;
    }
    if (!(*pem = pkey_to_pem(pkey)))
        problem = "out of memory";
done:
    EVP_PKEY_free(pkey);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return problem;
}

static const char *ec_to_pem(const json_t *jwk, const char *group, size_t field, char **pem)
{
    size_t xlen = 0, ylen = 0;
    unsigned char *x = b64url_member(jwk, "x", &xlen);
    unsigned char *y = b64url_member(jwk, "y", &ylen);
    const char *problem = NULL;
    unsigned char *point = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    if (!x || !y || xlen != field || ylen != field) {
        problem = "an EC key needs \"x\" and \"y\" in base64url, each the curve's size";
        goto done;
    }
    /* The uncompressed point encoding (SEC 1 §2.3.3): 0x04 || x || y. */
    point = malloc(1 + 2 * field);
    if (!point) {
        problem = "out of memory";
        goto done;
    }
    point[0] = 0x04;
    memcpy(point + 1, x, field);
    memcpy(point + 1 + field, y, field);
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * field) ||
        !(pkey = pkey_from_params("EC", bld))) {
        problem = "not a valid EC public key (is the point on the curve?)";
        goto done;
    }
    if (!(*pem = pkey_to_pem(pkey)))
        problem = "out of memory";
done:
    EVP_PKEY_free(pkey);
    OSSL_PARAM_BLD_free(bld);
    free(point);
    free(x);
    free(y);
    return problem;
}

/* Fills the key's PEM and the algorithms it may verify; NULL, or the problem (static). A
   JWK that is not for signatures is reported through *skip (not an error: a JWKS published
   by an authorization server often holds encryption keys too). */
static const char *jwk_load(const json_t *jwk, struct jwk *key, const char **skip)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const json_t *alg_json = json_object_get(jwk, "alg");
    const json_t *kid_json = json_object_get(jwk, "kid");
    if (!json_is_object(jwk))
        return "not a JSON object";
    if (!kty)
        return "no \"kty\"";
    if (use && strcmp(use, "sig") != 0) {
        *skip = "its \"use\" is not \"sig\"";
        return NULL;
    }
    if (kid_json && !json_is_string(kid_json))
        return "\"kid\" is not a string";
    if (alg_json && !json_is_string(alg_json))
        return "\"alg\" is not a string";
    const char *problem;
    if (strcmp(kty, "RSA") == 0) {
        key->algs[0] = JWT_ALG_RS256;
        key->algs[1] = JWT_ALG_RS384;
        key->algs[2] = JWT_ALG_RS512;
        key->n_algs = 3;
        problem = rsa_to_pem(jwk, &key->pem);
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        key->n_algs = 1;
        if (crv && strcmp(crv, "P-256") == 0) {
            key->algs[0] = JWT_ALG_ES256;
            problem = ec_to_pem(jwk, "prime256v1", 32, &key->pem);
        } else if (crv && strcmp(crv, "P-384") == 0) {
            key->algs[0] = JWT_ALG_ES384;
            problem = ec_to_pem(jwk, "secp384r1", 48, &key->pem);
        } else if (crv && strcmp(crv, "P-521") == 0) {
            key->algs[0] = JWT_ALG_ES512;
            problem = ec_to_pem(jwk, "secp521r1", 66, &key->pem);
        } else {
            return "EC key on a curve other than P-256, P-384, P-521";
        }
    } else {
        *skip = "its \"kty\" is neither RSA nor EC (only those verify signatures here)";
        return NULL;
    }
    if (problem)
        return problem;
    if (alg_json) {
        /* The JWK names its one algorithm: only that, and only if it fits the key. */
        jwt_alg_t alg = jwt_str_alg(json_string_value(alg_json));
        bool fits = false;
        for (size_t i = 0; i < key->n_algs; i++)
            fits = fits || key->algs[i] == alg;
        if (!fits)
            return "its \"alg\" does not fit the key type";
        key->algs[0] = alg;
        key->n_algs = 1;
    }
    if (kid_json && !(key->kid = strdup(json_string_value(kid_json))))
        return "out of memory";
    return NULL;
}

static void jwk_clear(struct jwk *key)
{
    free(key->kid);
    free(key->pem);
    memset(key, 0, sizeof *key);
}

void serve_jwks_free(struct serve_jwks *jwks)
{
    if (!jwks)
        return;
    for (size_t i = 0; i < jwks->n; i++)
        jwk_clear(&jwks->keys[i]);
    free(jwks);
}

static void key_name(char *out, size_t len, size_t index, const json_t *jwk)
{
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    if (kid) {
        char printable[80];
        serve_auth_printable_copy(printable, sizeof printable, kid, strlen(kid));
        snprintf(out, len, "key %zu (kid \"%s\")", index + 1, printable);
    } else {
        snprintf(out, len, "key %zu", index + 1);
    }
}

struct serve_jwks *serve_jwks_load(const char *path, void (*warn)(void *, const char *),
                                   void *warn_ud, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = NULL;
    struct serve_jwks *jwks = calloc(1, sizeof *jwks);
    if (!jwks) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read the JWKS file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > JWKS_FILE_MAX) {
        snprintf(err, errlen, "the JWKS file %s is not a regular file of at most 1 MiB", path);
        goto fail;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the JWKS file %s: %s", path, strerror(errno));
        goto fail;
    }
    fd = -1;
    root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!root) {
        snprintf(err, errlen, "the JWKS file %s is not JSON (line %d: %s)", path, jerr.line,
                 jerr.text);
        goto fail;
    }
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errlen, "the JWKS file %s has no \"keys\" array", path);
        goto fail;
    }
    if (json_array_size(keys) > JWKS_KEYS_MAX) {
        snprintf(err, errlen, "the JWKS file %s has more than %d keys", path, JWKS_KEYS_MAX);
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const json_t *jwk = json_array_get(keys, i);
        struct jwk *key = &jwks->keys[jwks->n];
        const char *skip = NULL;
        const char *problem = jwk_load(jwk, key, &skip);
        char name[128];
        key_name(name, sizeof name, i, jwk);
        if (problem) {
            jwk_clear(key);
            snprintf(err, errlen, "the JWKS file %s, %s: %s", path, name, problem);
            goto fail;
        }
        if (skip) {
            jwk_clear(key);
            char line[512];
            snprintf(line, sizeof line, "the JWKS file %s, %s is not used: %s", path, name, skip);
            warn(warn_ud, line);
            continue;
        }
        for (size_t j = 0; j < jwks->n; j++) {
            if (key->kid && jwks->keys[j].kid && strcmp(key->kid, jwks->keys[j].kid) == 0) {
                jwk_clear(key);
                snprintf(err, errlen, "the JWKS file %s, %s: the same kid as another key", path,
                         name);
                goto fail;
            }
        }
        jwks->n++;
    }
    if (jwks->n == 0) {
        snprintf(err, errlen, "the JWKS file %s has no RSA or EC signature key", path);
        goto fail;
    }
    json_decref(root);
    return jwks;
fail:
    if (fd >= 0)
        close(fd);
    json_decref(root);
    serve_jwks_free(jwks);
    return NULL;
}

/* ---- verification ---- */

static json_t *segment_json(const char *start, size_t len)
{
    size_t n = 0;
    unsigned char *raw = b64url_decode(start, len, &n);
    if (!raw)
        return NULL;
    json_t *value = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (value && !json_is_object(value)) {
        json_decref(value);
        value = NULL;
    }
    return value;
}

static const struct jwk *select_key(const struct serve_jwks *jwks, const char *kid)
{
    if (!kid)
        return jwks->n == 1 ? &jwks->keys[0] : NULL;
    for (size_t i = 0; i < jwks->n; i++)
        if (jwks->keys[i].kid && strcmp(jwks->keys[i].kid, kid) == 0)
            return &jwks->keys[i];
    return NULL;
}

enum serve_jwt_result serve_jwt_verify(const struct serve_jwks *jwks, const char *token,
                                       json_t **claims, const char **error)
{
    *claims = NULL;
    *error = NULL;
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
        return SERVE_JWT_UNKNOWN; /* not a JWS in compact form: perhaps an opaque token */
    json_t *header = segment_json(token, (size_t)(dot1 - token));
    if (!header) {
        /* Not a JWT at all (an opaque token with two dots, such as PASETO's v4.local.x): no
           key of the JWKS is for it, so introspection, when configured, may know it. */
        *error = "the token's header is not base64url JSON";
        return SERVE_JWT_UNKNOWN;
    }
    enum serve_jwt_result result = SERVE_JWT_INVALID;
    jwt_t *jwt = NULL;
    const json_t *alg_json = json_object_get(header, "alg");
    const json_t *kid_json = json_object_get(header, "kid");
    const char *alg_name = json_string_value(alg_json);
    if (!alg_name) {
        *error = "the token's header has no alg";
        goto done;
    }
    if (kid_json && !json_is_string(kid_json)) {
        *error = "the token's kid is not a string";
        goto done;
    }
    if (json_object_get(header, "crit")) {
        /* RFC 7515 §4.1.11: extensions we do not understand must not be ignored. */
        *error = "the token's header has crit extensions";
        goto done;
    }
    if (strcmp(alg_name, "none") == 0) {
        *error = "unsigned tokens (alg none) are refused";
        goto done;
    }
    const struct jwk *key = select_key(jwks, json_string_value(kid_json));
    if (!key) {
        *error = "the token's key (kid) is not in the JWKS";
        result = SERVE_JWT_UNKNOWN;
        goto done;
    }
    jwt_alg_t alg = jwt_str_alg(alg_name);
    bool allowed = false;
    for (size_t i = 0; i < key->n_algs; i++)
        allowed = allowed || key->algs[i] == alg;
    if (!allowed) {
        /* HS* with a public key, RS* with an EC key, an algorithm the JWK rules out. */
        *error = "the token's alg is not one its key is for";
        goto done;
    }
    if (dot2[1] == '\0') {
        *error = "the token has no signature";
        goto done;
    }
    if (jwt_decode(&jwt, token, (const unsigned char *)key->pem, (int)strlen(key->pem)) != 0 ||
        jwt_get_alg(jwt) != alg) {
        *error = "the token's signature does not verify";
        goto done;
    }
    /* The payload libjwt verified, read by us: duplicate claim names are refused. */
    *claims = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!*claims) {
        *error = "the token's claims are not a base64url JSON object";
        goto done;
    }
    result = SERVE_JWT_VALID;
done:
    if (jwt)
        jwt_free(jwt);
    json_decref(header);
    return result;
}
