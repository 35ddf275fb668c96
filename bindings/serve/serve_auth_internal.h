/*
 * What the pieces of serve auth share, and nothing the HTTP layer needs: the claim checks
 * that JWTs (serve_jwt.c) and introspection answers (serve_auth_introspect.c) both go through,
 * so `exp`, `nbf`, `iss`, `aud` and the certificate binding are judged by one piece of code
 * whichever way a token was verified.
 */
#ifndef LCMCOORD_SERVE_AUTH_INTERNAL_H
#define LCMCOORD_SERVE_AUTH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "serve_auth.h"

#define SERVE_TOKEN_MAX      16384 /* a Bearer token longer than this is refused unread */
#define SERVE_THUMBPRINT_LEN 43    /* x5t#S256: SHA-256 in base64url without padding */

struct serve_claims_policy {
    const char *issuer;   /* NULL: any */
    const char *audience; /* NULL: any */
    long leeway;          /* seconds */
    bool require_binding;
};

/* NULL when the claims pass, else the static reason. exp is required when exp_required
   (JWTs; introspection answers may omit it). A token carrying cnf.x5t#S256 must come over
   a connection whose client certificate has that thumbprint. */
const char *serve_claims_check(const struct serve_claims_policy *, const json_t *claims,
                               bool exp_required, const char *peer_thumbprint, time_t now);
/* The token's bound thumbprint (cnf.x5t#S256), NULL when unbound. */
const char *serve_claims_x5t(const json_t *claims);
/* client_id, else sub, else "unknown"; non-printable bytes shown as '?'. */
void serve_claims_who(const json_t *claims, char *who, size_t len);
void serve_auth_printable_copy(char *dst, size_t len, const char *src, size_t srclen);
/* Equal thumbprints, compared in constant time. */
bool serve_auth_thumbprint_equal(const char *a, const char *b);

/* ---- JWTs against a JWKS file (serve_jwt.c) ---- */
struct serve_jwks;
struct serve_jwks *serve_jwks_load(const char *path, void (*warn)(void *, const char *),
                                   void *warn_ud, char *err, size_t errlen);
void serve_jwks_free(struct serve_jwks *);
enum serve_jwt_result {
    SERVE_JWT_VALID,   /* signature good; *claims set (caller frees) */
    SERVE_JWT_UNKNOWN, /* not a JWT, or no key of the JWKS is named by it (introspection may
                          know it); *error says which, for when nothing else does */
    SERVE_JWT_INVALID  /* refused: *error says why */
};
enum serve_jwt_result serve_jwt_verify(const struct serve_jwks *, const char *token,
                                       json_t **claims, const char **error);

/* ---- RFC 7662 introspection (serve_auth_introspect.c) ---- */
struct serve_introspect;
struct serve_introspect *serve_introspect_new(const struct serve_auth_config *,
                                              void (*warn)(void *, const char *), void *warn_ud,
                                              char *err, size_t errlen);
void serve_introspect_free(struct serve_introspect *);
enum serve_introspect_result {
    SERVE_INTROSPECT_ACTIVE,     /* who filled in */
    SERVE_INTROSPECT_REFUSED,    /* inactive, or its claims fail: *error says why */
    SERVE_INTROSPECT_UNAVAILABLE /* the authorization server gave no usable answer */
};
enum serve_introspect_result serve_introspect_check(struct serve_introspect *, const char *token,
                                                    const struct serve_claims_policy *,
                                                    const char *peer_thumbprint, char *who,
                                                    size_t wholen, const char **error);

/* ---- the token cache (serve_auth_cache.c) ---- */
#define SERVE_TOKEN_DIGEST_LEN 32
struct serve_token_cache;
struct serve_token_cache *serve_token_cache_new(size_t cap);
void serve_token_cache_free(struct serve_token_cache *); /* accepts NULL */
void serve_token_digest(const char *token, unsigned char digest[SERVE_TOKEN_DIGEST_LEN]);
/* true when cached and fresh: *claims a new reference (NULL: known inactive). */
bool serve_token_cache_get(struct serve_token_cache *, const unsigned char *digest, double now,
                           json_t **claims);
/* Takes the reference to claims (may be NULL). */
void serve_token_cache_put(struct serve_token_cache *, const unsigned char *digest, json_t *claims,
                           double expires, double now);
double serve_auth_now(void); /* CLOCK_REALTIME, seconds */

/* Warns about a file of secrets readable by group or others (the message names the file). */
void serve_auth_warn_if_exposed(int fd, const char *path, void (*warn)(void *, const char *),
                                void *warn_ud);

#endif
