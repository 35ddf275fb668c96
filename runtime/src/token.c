/*
 * The OAuth 2.0 token cache that every client of an engine shares. An entry is keyed by
 * everything that decides whether the token endpoint would issue the token: the endpoint,
 * the client id, the secret, the client authentication method, the client certificate and
 * key, and the TLS settings used to reach the endpoint. The key is an HMAC-SHA-256 of
 * those under a random per-process key, so that the cache never holds the secret in a
 * comparable form and credentials that differ in any of them never share a token.
 * However many coordinations need a token at once, one request goes to the token
 * endpoint: the others wait for it. A token is reused until a margin before its
 * expires_in runs out (or, without expires_in, until an API answers 401 to it). Tokens,
 * token request bodies and answers are wiped from memory when dropped.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth.h"
#include "engine.h"
#include "events.h"

#define DEFAULT_REFRESH_MARGIN 30.0
#define TOKEN_FETCH_BUDGET_MAX 60.0

typedef struct lcmc_token_entry lcmc_token_entry;

struct lcmc_token_waiter {
    lcmc_token_waiter *prev, *next;
    lcmc_token_waiter **list; /* the head of the list it is on */
    lcmc_token_entry *entry;
    lcmc_token_ready_fn *ready;
    void *userdata;
};

struct lcmc_token_entry {
    lcmc_token_entry *next;
    unsigned char key[32]; /* cache_key() of the credentials the token was issued to */
    char *token_endpoint;
    char *token;
    double renew_at; /* monotonic; INFINITY when the token has no expiry */
    double refresh_margin;
    lcmc_transfer *fetch;
    /* What the fetch in flight borrows: its form body and the form-encoded credentials. */
    char *fetch_body, *fetch_id, *fetch_secret;
    lcmc_token_waiter *waiters;
    lcmc_engine *engine;
};

/* ---- the cache key ---------------------------------------------------------------- */

static pthread_once_t hmac_key_once = PTHREAD_ONCE_INIT;
static unsigned char hmac_key[32];
static int hmac_key_ready;

static void make_hmac_key(void)
{
    hmac_key_ready = RAND_bytes(hmac_key, sizeof hmac_key) == 1;
}

/* SHA-256 of a file's bytes (a client certificate or key): the same path may hold another
 * certificate tomorrow, and another path the same one. An unreadable file digests as
 * nothing: the fetch made with it fails on its own. */
static void file_digest(const char *path, unsigned char out[32])
{
    memset(out, 0, 32);
    if (path == NULL)
        return;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char chunk[4096];
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    size_t n;
    while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = EVP_DigestUpdate(md, chunk, n);
    unsigned int length = 0;
    if (!ok || ferror(f) || !EVP_DigestFinal_ex(md, out, &length))
        memset(out, 0, 32);
    OPENSSL_cleanse(chunk, sizeof chunk); /* may have held a private key */
    EVP_MD_CTX_free(md);
    fclose(f);
}

typedef struct key_field {
    const void *data; /* NULL: absent, which differs from empty */
    size_t length;
} key_field;

static key_field text_field(const char *s)
{
    key_field f = {s, s ? strlen(s) : 0};
    return f;
}

/* Computes the key of (auth, tls); with the credentials' own TLS settings it is kept in
 * auth's memo and reused. Any other settings (given per request) are digested each time:
 * their address says nothing about their contents. Returns -1 when memory or randomness
 * ran out. */
static int cache_key(const lcmc_auth *auth, const lcmc_tls_options *tls, unsigned char out[32])
{
    lcmc_auth *memo = (lcmc_auth *)auth; /* the memo is a cache, not part of the value */
    int memoizable = tls != NULL && tls == auth->own_tls;
    if (memoizable && memo->token_cache_key_set) {
        memcpy(out, memo->token_cache_key, 32);
        return 0;
    }
    pthread_once(&hmac_key_once, make_hmac_key);
    if (!hmac_key_ready)
        return -1;
    unsigned char cert_digest[32], key_digest[32];
    file_digest(tls ? tls->cert : NULL, cert_digest);
    file_digest(tls ? tls->key : NULL, key_digest);
    unsigned char method = (unsigned char)auth->token_client_auth;
    unsigned char insecure = (unsigned char)(tls && tls->insecure);
    const key_field fields[] = {
        text_field(auth->token_endpoint),
        text_field(auth->client_id),
        text_field(auth->client_secret),
        text_field(auth->certificate_ref),
        {&method, 1},
        {cert_digest, sizeof cert_digest},
        {key_digest, sizeof key_digest},
        text_field(tls ? tls->key_password : NULL),
        text_field(tls ? tls->cacert : NULL),
        text_field(tls ? tls->capath : NULL),
        {&insecure, 1},
    };
    /* Each field as a presence byte, an 8-byte length and its bytes: no two different
     * sets of fields serialise alike. One allocation of the exact size, never grown, so
     * no copy of the secret is left behind by a realloc. */
    size_t total = 0;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        total += 9 + fields[i].length;
    unsigned char *text = malloc(total);
    if (text == NULL)
        return -1;
    unsigned char *p = text;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        *p++ = fields[i].data != NULL;
        for (int b = 0; b < 8; b++)
            *p++ = (unsigned char)((uint64_t)fields[i].length >> (8 * b));
        if (fields[i].length)
            memcpy(p, fields[i].data, fields[i].length);
        p += fields[i].length;
    }
    unsigned int length = 0;
    int ok = HMAC(EVP_sha256(), hmac_key, sizeof hmac_key, text, total, out, &length) != NULL &&
             length == 32;
    OPENSSL_cleanse(text, total);
    free(text);
    OPENSSL_cleanse(key_digest, sizeof key_digest);
    if (!ok)
        return -1;
    if (memoizable) {
        memcpy(memo->token_cache_key, out, 32);
        memo->token_cache_key_set = 1;
    }
    return 0;
}

/* The tokens of one engine, every client's. */
struct lcmc_token_cache {
    lcmc_token_entry *entries;
    unsigned long requests; /* made to token endpoints, for the tests and the log */
};

int lcmc__tokens_new(struct lcmc_token_cache **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -1;
}

static lcmc_token_entry *find_entry(lcmc_engine *e, const unsigned char key[32])
{
    for (lcmc_token_entry *t = lcmc__engine_tokens(e)->entries; t; t = t->next)
        if (CRYPTO_memcmp(t->key, key, 32) == 0)
            return t;
    return NULL;
}

static lcmc_token_entry *add_entry(lcmc_engine *e, const lcmc_auth *auth,
                                   const unsigned char key[32])
{
    lcmc_token_entry *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    memcpy(t->key, key, 32);
    t->token_endpoint = lcmc__strdup(auth->token_endpoint);
    t->engine = e;
    if (t->token_endpoint == NULL) {
        free(t);
        return NULL;
    }
    struct lcmc_token_cache *cache = lcmc__engine_tokens(e);
    t->next = cache->entries;
    cache->entries = t;
    return t;
}

static void drop_fetch_strings(lcmc_token_entry *t)
{
    lcmc__free_secret(t->fetch_body);
    free(t->fetch_id);
    lcmc__free_secret(t->fetch_secret);
    t->fetch_body = t->fetch_id = t->fetch_secret = NULL;
}

static void drop_token(lcmc_token_entry *t)
{
    lcmc__free_secret(t->token);
    t->token = NULL;
    t->renew_at = 0;
}

unsigned long lcmc__token_requests(const lcmc_engine *e)
{
    return lcmc__engine_tokens(e)->requests;
}

/* Hands the outcome to the waiters of the fetch that ended. They move to a list of their
 * own first: a callback may cancel other waiters (a coordination that ends cancels its
 * other call), which must find a whole list, and may add new waiters, which belong to the
 * next fetch, not to this outcome. The token stays valid across the callbacks: they run
 * before any other turn of the loop. */
static void notify(lcmc_token_entry *t, const lcmc_error *err)
{
    lcmc_token_waiter *pending = t->waiters;
    t->waiters = NULL;
    for (lcmc_token_waiter *w = pending; w; w = w->next)
        w->list = &pending;
    while (pending) {
        lcmc_token_waiter *w = pending;
        pending = w->next;
        if (pending)
            pending->prev = NULL;
        lcmc_token_ready_fn *ready = w->ready;
        void *userdata = w->userdata;
        free(w);
        ready(userdata, err ? NULL : t->token, err);
    }
}

static void fetch_done(lcmc_transfer *transfer, void *userdata)
{
    lcmc_token_entry *t = userdata;
    lcmc_engine *e = t->engine;
    lcmc_transfer_result r;
    LCMC_DEBUGASSERT(t->fetch == transfer);
    lcmc__transfer_finish(transfer, &r);
    t->fetch = NULL;
    drop_fetch_strings(t);
    const char *method = "POST";
    lcmc_error err = {0};
    char *path = lcmc__url_path(t->token_endpoint);
    if (r.curl_code != CURLE_OK) {
        lcmc__transfer_error(&r, method, t->token_endpoint, "the token endpoint", &err);
    } else if (r.status != 200) {
        /* RFC 6749 §5.2: error and error_description say why; the secret is never there. */
        json_t *doc = lcmc__decode_problem(r.body.data, r.body.length);
        const char *code = json_string_value(json_object_get(doc, "error"));
        const char *description = json_string_value(json_object_get(doc, "error_description"));
        char *code_shown = code ? lcmc__one_line(code, strlen(code), 60) : NULL;
        char *description_shown =
            description ? lcmc__one_line(description, strlen(description), 200) : NULL;
        lcmc__error_set(&err, LCMC_EAUTH, "token endpoint answered %ld %s%s%s%s%s (%s %s)",
                        r.status, lcmc__reason_phrase(r.status), code_shown ? ": " : "",
                        code_shown ? code_shown : "", description_shown ? ": " : "",
                        description_shown ? description_shown : "", method, path ? path : "?");
        err.http_status = (int)r.status;
        lcmc__error_set_request(&err, method, t->token_endpoint);
        free(code_shown);
        free(description_shown);
        json_decref(doc);
    } else {
        char why[160] = "";
        char *token = NULL;
        double expires_in = 0;
        int has_expiry = 0;
        if (lcmc__parse_token_response(r.body.data, r.body.length, &token, &expires_in, &has_expiry,
                                       why, sizeof why) != 0) {
            lcmc__error_set(&err, LCMC_EAUTH, "token endpoint answered 200 OK but %s (%s %s)", why,
                            method, path ? path : "?");
            lcmc__error_set_request(&err, method, t->token_endpoint);
        } else {
            drop_token(t);
            t->token = token;
            if (!has_expiry) {
                t->renew_at = INFINITY;
            } else {
                /* Renew a margin early, but never before half the lifetime: a 10 s token
                 * with a 30 s margin would otherwise never be reused. A token already
                 * expired (expires_in <= 0) serves the requests waiting now, nothing more. */
                double margin = t->refresh_margin;
                double early = expires_in - margin;
                double half = expires_in / 2;
                t->renew_at = lcmc__now() + (early > half ? early : half);
            }
            lcmc_event event = lcmc__event_make(LCMC_EVENT_TOKEN, LCMC_LOG_INFO, NULL);
            event.reason = has_expiry ? "received" : "received_no_expiry";
            event.method = "POST";
            event.url = t->token_endpoint;
            lcmc__event_emit(e, &event, "got an access token from %s%s", t->token_endpoint,
                             has_expiry ? "" : " (no expires_in: kept until an API refuses it)");
        }
    }
    free(path);
    lcmc__transfer_result_free(&r);
    notify(t, err.status != LCMC_OK ? &err : NULL);
    lcmc__error_clear(&err);
}

static int start_fetch(lcmc_engine *e, lcmc_token_entry *t, const lcmc_token_request *request)
{
    const lcmc_auth *auth = request->auth;
    char *id = lcmc__form_encode(auth->client_id);
    char *secret = auth->client_secret ? lcmc__form_encode(auth->client_secret) : NULL;
    char *body = NULL;
    if (id == NULL || (auth->client_secret && secret == NULL))
        goto fail;
    switch (auth->token_client_auth) {
    case LCMC_TOKEN_AUTH_BASIC:
        body = lcmc__strdup("grant_type=client_credentials");
        break;
    case LCMC_TOKEN_AUTH_BODY:
        body = lcmc__asprintf("grant_type=client_credentials&client_id=%s&client_secret=%s", id,
                              secret);
        break;
    case LCMC_TOKEN_AUTH_CERT:
        body = lcmc__asprintf("grant_type=client_credentials&client_id=%s", id);
        break;
    }
    if (body == NULL)
        goto fail;
    /* Static, or owned by the entry: nothing the transfer reads may belong to the requester,
     * who may be gone before the fetch ends. */
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    lcmc_transfer_spec spec = {0};
    spec.method = "POST";
    spec.url = t->token_endpoint;
    spec.body = body;
    spec.body_length = strlen(body);
    spec.headers = headers;
    /* A budget of the fetch's own: every waiter bounds its wait by its own deadline
     * (call.c), so one requester's short deadline cannot cut the token short for others. */
    spec.deadline = lcmc__now() + TOKEN_FETCH_BUDGET_MAX;
    /* Configured at once (never queued), while the requester's TLS settings are alive:
     * libcurl copies what it keeps. */
    spec.immediate = 1;
    spec.max_body = request->max_body;
    spec.tls = request->tls;
    spec.secret_exchange = 1;
    if (auth->token_client_auth == LCMC_TOKEN_AUTH_BASIC) {
        /* RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encodes them. */
        spec.basic_user = id;
        spec.basic_password = secret;
    }
    t->refresh_margin =
        request->refresh_margin > 0 ? request->refresh_margin : DEFAULT_REFRESH_MARGIN;
    lcmc_event event = lcmc__event_make(LCMC_EVENT_TOKEN, LCMC_LOG_INFO, NULL);
    event.reason = "asking";
    event.method = "POST";
    event.url = auth->token_endpoint;
    lcmc__event_emit(e, &event, "asking %s for an access token", auth->token_endpoint);
    t->fetch = lcmc__transfer_start(e, &spec, fetch_done, t);
    lcmc__engine_tokens(e)->requests++;
    if (t->fetch == NULL)
        goto fail;
    t->fetch_body = body;
    t->fetch_id = id;
    t->fetch_secret = secret;
    return 0;
fail:
    lcmc__free_secret(body);
    free(id);
    lcmc__free_secret(secret);
    return -1;
}

int lcmc__token_get(lcmc_engine *e, const lcmc_token_request *request, lcmc_token_ready_fn *ready,
                    void *userdata, lcmc_token_waiter **waiter, const char **token)
{
    *waiter = NULL;
    *token = NULL;
    unsigned char key[32];
    if (cache_key(request->auth, request->tls, key) != 0)
        return -1;
    lcmc_token_entry *t = find_entry(e, key);
    if (t == NULL && (t = add_entry(e, request->auth, key)) == NULL)
        return -1;
    if (t->token && lcmc__now() < t->renew_at) {
        *token = t->token;
        return 1;
    }
    /* Waiters wait for the one fetch in flight for their key, and for nothing else. */
    LCMC_DEBUGASSERT(t->waiters == NULL || t->fetch != NULL);
    lcmc_token_waiter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -1;
    w->entry = t;
    w->list = &t->waiters;
    w->ready = ready;
    w->userdata = userdata;
    w->next = t->waiters;
    if (t->waiters)
        t->waiters->prev = w;
    t->waiters = w;
    if (t->fetch == NULL && start_fetch(e, t, request) != 0) {
        lcmc__token_waiter_cancel(w);
        return -1;
    }
    *waiter = w;
    return 0;
}

void lcmc__token_waiter_cancel(lcmc_token_waiter *w)
{
    if (w == NULL)
        return;
    LCMC_DEBUGASSERT(w->prev ? w->prev->next == w : *w->list == w);
    LCMC_DEBUGASSERT(w->next == NULL || w->next->prev == w);
    if (w->prev)
        w->prev->next = w->next;
    else
        *w->list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
}

void lcmc__token_invalidate(lcmc_engine *e, const lcmc_auth *auth, const char *token)
{
    /* The entry that holds this very token, whichever TLS settings it was fetched with
     * (per-request ones leave no memo to find it by). */
    (void)auth;
    if (token == NULL)
        return;
    for (lcmc_token_entry *t = lcmc__engine_tokens(e)->entries; t; t = t->next)
        if (t->token && strcmp(t->token, token) == 0)
            drop_token(t);
}

void lcmc__tokens_free(struct lcmc_token_cache *cache)
{
    if (cache == NULL)
        return;
    lcmc_token_entry *t = cache->entries;
    while (t) {
        lcmc_token_entry *next = t->next;
        lcmc__transfer_cancel(t->fetch);
        drop_fetch_strings(t);
        lcmc_token_waiter *w = t->waiters;
        while (w) {
            lcmc_token_waiter *wn = w->next;
            free(w);
            w = wn;
        }
        drop_token(t);
        free(t->token_endpoint);
        OPENSSL_cleanse(t->key, sizeof t->key);
        free(t);
        t = next;
    }
    free(cache);
}
