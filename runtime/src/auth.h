/*
 * Credentials of one client, parsed from the ETSI `authentication` structure (auth.c), and
 * the process-wide OAuth 2.0 token cache that clients of one engine share (token.c).
 */
#ifndef LCMCOORD_AUTH_H
#define LCMCOORD_AUTH_H

#include "internal.h"

typedef enum lcmc_auth_type {
    LCMC_AUTH_NONE = 0,
    LCMC_AUTH_BASIC,
    LCMC_AUTH_OAUTH2_CLIENT_CREDENTIALS,
    LCMC_AUTH_OAUTH2_CLIENT_CERT,
} lcmc_auth_type;

/* How the client authenticates itself at the token endpoint. */
typedef enum lcmc_token_client_auth {
    LCMC_TOKEN_AUTH_BASIC = 0, /* client_secret_basic */
    LCMC_TOKEN_AUTH_BODY,      /* client_secret_post */
    LCMC_TOKEN_AUTH_CERT,      /* client_id in the body, the TLS client certificate proves it */
} lcmc_token_client_auth;

typedef struct lcmc_auth {
    lcmc_auth_type type;
    char *basic_user;
    char *basic_password;
    char *client_id;
    char *client_secret;
    char *token_endpoint;
    char *certificate_ref; /* the x5t#S256 value the VNFM expects its certificate to have */
    lcmc_token_client_auth token_client_auth;
    /* The token cache's key for these credentials with their own TLS settings (token.c):
     * a keyed digest, never the secret in a comparable form. Only for `own_tls`, the
     * settings that live as long as these credentials and never change (their client's, or
     * their credentials object's): settings given per request may sit at the same address
     * with other contents next time, so their key is computed each time. */
    unsigned char token_cache_key[32];
    const lcmc_tls_options *own_tls;
    int token_cache_key_set;
} lcmc_auth;

/* Reads the structure (NULL or JSON null: no auth). On failure `why` names the field; the
 * message never holds a secret. */
LCMC_INTERNAL lcmc_status lcmc__auth_parse(lcmc_auth *auth, const char *authentication_json,
                                           char *why, size_t why_size);
LCMC_INTERNAL void lcmc__auth_clear(lcmc_auth *auth);
/* Makes jansson wipe every block it frees, from now on (see auth.c). */
LCMC_INTERNAL void lcmc__json_wipe_on_free(void);
/* While on (this thread only), jansson frees without the wipe: for values that hold none of
 * the client's secrets (an LcmCoord), whose wipe was 6 % of a coordination's instructions.
 * lcmc__json_decref_plain frees one such value so. */
LCMC_INTERNAL void lcmc__json_plain_free(int on);
LCMC_INTERNAL void lcmc__json_decref_plain(json_t *value);
int lcmc__auth_uses_token(const lcmc_auth *auth);

/* The base64url (no padding) SHA-256 thumbprint of the DER form of the first certificate
 * in a PEM file: the `x5t#S256` of RFC 7515 §4.1.8. Returns -1 with why. */
LCMC_INTERNAL int lcmc__certificate_thumbprint(const char *pem_path, char out[64], char *why,
                                               size_t why_size);
/* Checks that a client certificate and key can be read and belong together. */
LCMC_INTERNAL int lcmc__check_client_keypair(const char *cert_path, const char *key_path,
                                             const char *key_password, char *why, size_t why_size);
/* Everything about the client certificate that can be known before a byte is sent: the
 * files read, the key belongs to the certificate, and for OAUTH2_CLIENT_CERT the
 * certificate is the one certificateRef names. Returns -1 with why. */
int lcmc__check_credentials_tls(const lcmc_auth *auth, const lcmc_tls_options *tls, char *why,
                                size_t why_size);
const char *lcmc__auth_type_name(const lcmc_auth *auth);

/* application/x-www-form-urlencoded encoding (RFC 6749 §2.3.1 asks it of client ids and
 * secrets before HTTP Basic, and the form body uses it). */
LCMC_INTERNAL char *lcmc__form_encode(const char *text);

/* Reads a token endpoint's answer: an access_token, a token_type of Bearer, and expires_in
 * when given (*expires_in is then set and *has_expiry 1). Returns -1 with why. */
LCMC_INTERNAL int lcmc__parse_token_response(const char *body, size_t length, char **token,
                                             double *expires_in, int *has_expiry, char *why,
                                             size_t why_size);

/* ---- the token cache ------------------------------------------------------------------ */

typedef struct lcmc_token_waiter lcmc_token_waiter;
/* Called from the engine loop with a token, or with err when none could be had. */
typedef void lcmc_token_ready_fn(void *userdata, const char *token, const lcmc_error *err);

typedef struct lcmc_token_request {
    const lcmc_auth *auth;
    const lcmc_tls_options *tls;
    size_t max_body;
    double refresh_margin;
    double deadline;
} lcmc_token_request;

/* Returns 1 with *token (borrowed until the next engine turn) when a fresh token is
 * cached. Otherwise registers a waiter (*waiter) that `ready` will reach once the one fetch
 * in flight for this (token endpoint, client id, client auth) ends, starting that fetch if
 * none is in flight, and returns 0; -1 when out of memory. */
int lcmc__token_get(lcmc_engine *engine, const lcmc_token_request *request,
                    lcmc_token_ready_fn *ready, void *userdata, lcmc_token_waiter **waiter,
                    const char **token);
void lcmc__token_waiter_cancel(lcmc_token_waiter *waiter);
/* Forgets `token` (an API answered 401 to it), unless the cache already holds a newer one. */
void lcmc__token_invalidate(lcmc_engine *engine, const lcmc_auth *auth, const char *token);
/* How many token requests the engine has sent (tests and benchmarks count them). */
unsigned long lcmc__token_requests(const lcmc_engine *engine);

#endif
