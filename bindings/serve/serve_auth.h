/*
 * Who may call `lcmcoord serve`: HTTP Basic against a users file of crypt(3) hashes, OAuth 2.0
 * Bearer tokens verified as JWTs against a JWKS file (serve_jwt.c) or by RFC 7662
 * introspection at the operator's authorization server, and, for OAUTH2_CLIENT_CERT, the
 * token's binding to the TLS client certificate (RFC 8705). The HTTP layer calls
 * serve_auth_check on its worker thread for each request and gets either an identity for the
 * audit log or the refusal to send (status, RFC 6750 error, WWW-Authenticate challenges).
 * Loaded once, immutable afterwards apart from the introspection cache (guarded inside), so
 * one struct serve_auth serves every worker thread at once. No secret (password, token,
 * client secret) ever appears in an error, a warning, a refusal or an identity.
 */
#ifndef LCMCOORD_SERVE_AUTH_H
#define LCMCOORD_SERVE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct serve_auth; /* opaque, immutable after load, thread-safe to use */

struct serve_auth_config {
    /* "user:crypt-hash" lines (crypt(3): yescrypt $y$, sha512 $6$, bcrypt $2b$/$2y$); blank
       lines and lines starting with '#' are ignored. A plaintext or unknown-format entry is
       refused at load with an error naming the file and the line. */
    const char *users_file;
    /* A successful Basic check is remembered this long (seconds; 0: 60, <0: never), keyed
       by an HMAC of user and password under a key made at load, so a client repeating its
       credentials does not pay a yescrypt per request. Failures are never remembered. */
    double basic_cache_ttl;
    const char *jwks_file;      /* JWKS (RSA RS256/384/512, EC ES256/384/512) for Bearer JWTs */
    const char *jwt_issuer;     /* required iss (JWT and introspection) when set */
    const char *jwt_audience;   /* required aud (string or array member) when set */
    int jwt_leeway;             /* seconds of clock skew allowed on exp/nbf; 0: 30, <0: none */
    const char *introspect_url; /* RFC 7662 endpoint: https://, or http:// to loopback only */
    /* The server's client credentials for the introspection endpoint, "ID:SECRET": either
       the value itself (introspect_auth) or a file holding it on its first line
       (introspect_auth_file, preferred: warned when readable by others). Not both. */
    const char *introspect_auth;
    const char *introspect_auth_file;
    const char *introspect_cacert; /* CA bundle for the endpoint; NULL: the system's */
    double introspect_timeout;     /* whole exchange, seconds; 0: 5 */
    /* Introspection answers and verified JWTs (each in its own table) are reused until the
       token's exp, at most this long (seconds; 0: 60), at most this many (0: 4096). */
    double introspect_cache_ttl;
    size_t introspect_cache_max;
    /* OAUTH2_CLIENT_CERT: every token must carry cnf.x5t#S256 equal to the TLS client
       certificate's thumbprint. (A token that carries one is held to it in any case.) */
    bool require_cert_binding;
    const char *realm; /* of the challenges; NULL: "lcmcoord" */
    /* Load-time warnings (users or credentials file readable by others, JWKS keys skipped),
       one line each without a newline; NULL: written to stderr. */
    void (*warn)(void *warn_ud, const char *line);
    void *warn_ud;
};

#define SERVE_AUTH_MAX_CHALLENGES 2

struct serve_identity {
    bool ok;
    /* Who called, for the audit log: the user name (Basic), else the token's client_id,
       else its sub (Bearer). Printable ASCII only (anything else shown as '?'). */
    char who[256];
    char scheme[16]; /* "basic", "bearer", or "none" when no method is configured */
    /* When !ok: the HTTP status to answer: 401; 400 for a malformed Bearer request
       (RFC 6750 §3.1 invalid_request); 503 when the authorization server could not answer
       an introspection (not the client's fault, nothing cached). */
    int status;
    const char *error;      /* static text (error_description), NULL when no credentials */
    const char *error_code; /* "invalid_token" / "invalid_request", NULL when none applies */
    /* WWW-Authenticate values to send with the 401/400, one header line each. */
    size_t n_challenges;
    char challenges[SERVE_AUTH_MAX_CHALLENGES][512];
};

/* NULL on error with a one-line message in err (names the file and line, never a secret). */
struct serve_auth *serve_auth_load(const struct serve_auth_config *, char *err, size_t errlen);
void serve_auth_free(struct serve_auth *); /* accepts NULL */

/* authorization: the Authorization header value (NULL when absent); peer_thumbprint: the
   TLS client certificate's x5t#S256 (struct em_peer's thumbprint), NULL without a verified
   client certificate. Blocking: introspection does HTTP on the calling thread, bounded by
   introspect_timeout, results cached until min(exp, introspect_cache_ttl). */
void serve_auth_check(struct serve_auth *, const char *authorization, const char *peer_thumbprint,
                      struct serve_identity *out);

/* The WWW-Authenticate value for a request without credentials (all schemes, comma-joined;
   serve_identity.challenges has them one per line). */
const char *serve_auth_challenge(const struct serve_auth *);
bool serve_auth_enabled(const struct serve_auth *);

/* `lcmcoord-serve --hash-password USER`: reads a password from fd (a terminal: prompted on
   prompt with echo off, asked twice; otherwise its first line) and writes the users-file
   line "USER:$y$..." (yescrypt, libcrypt's default cost) into line. 0, or -1 with a
   one-line error in err. The password is wiped from memory once hashed. */
int serve_auth_hash_password(int fd, FILE *prompt, const char *user, char *line, size_t linelen,
                             char *err, size_t errlen);

#endif
