/*
 * RFC 7662 token introspection: a Bearer token the JWKS does not know is sent to the
 * operator's authorization server, which says whether it is active and what it carries. It
 * runs on the HTTP worker thread that needs the answer (blocking libcurl, bounded by a
 * timeout, no redirects, TLS verified, http:// only to loopback), authenticated with this
 * server's client credentials (RFC 6749 §2.3.1 Basic). Answers are cached by the SHA-256 of
 * the token (never the token itself) until min(exp, TTL), in a fixed-size table, so a busy
 * client costs the authorization server one request per TTL rather than one per call; the
 * cached claims are judged again on each use (exp passes, the connection's certificate may
 * differ). An authorization server that does not answer usefully is reported as unavailable
 * (503 upstream), never cached, never taken for an inactive token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "serve_auth_internal.h"

#define ANSWER_MAX        (64 * 1024)
#define DEFAULT_TIMEOUT   5.0
#define DEFAULT_TTL       60.0
#define DEFAULT_CACHE_MAX 4096
#define NEGATIVE_TTL_MAX  10.0 /* an inactive answer is reused at most this long */
#define PROBE             8    /* slots looked at per lookup/insert */
#define CREDENTIALS_MAX   1024

struct serve_introspect {
    char *url;
    bool loopback;   /* http:// to this host's loopback */
    char *client_id; /* form-urlencoded, as RFC 6749 §2.3.1 wants inside Basic */
    char *client_secret;
    char *cacert;
    long timeout_ms;
    double ttl;
    struct serve_token_cache *cache;
};

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void serve_introspect_free(struct serve_introspect *in)
{
    if (!in)
        return;
    serve_token_cache_free(in->cache);
    free(in->url);
    free_secret(in->client_id);
    free_secret(in->client_secret);
    free(in->cacert);
    free(in);
    curl_global_cleanup();
}

/* https://, or http:// to a loopback host only (*loopback set): the token and the client
   secret travel. */
static bool url_acceptable(const char *url, bool *loopback)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        *loopback = strcmp(scheme, "http") == 0 &&
                    (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
                     strcmp(host, "localhost") == 0);
        ok = strcmp(scheme, "https") == 0 || *loopback;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static int read_credentials_file(const char *path, char *buf, size_t len,
                                 void (*warn)(void *, const char *), void *warn_ud, char *err,
                                 size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read the introspection credentials file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    serve_auth_warn_if_exposed(fd, path, warn, warn_ud);
    ssize_t got = read(fd, buf, len - 1);
    close(fd);
    if (got < 0) {
        snprintf(err, errlen, "cannot read the introspection credentials file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

struct serve_introspect *serve_introspect_new(const struct serve_auth_config *cfg,
                                              void (*warn)(void *, const char *), void *warn_ud,
                                              char *err, size_t errlen)
{
    char credentials[CREDENTIALS_MAX];
    credentials[0] = '\0';
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return NULL;
    }
    struct serve_introspect *in = calloc(1, sizeof *in);
    if (!in) {
        curl_global_cleanup();
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!url_acceptable(cfg->introspect_url, &in->loopback)) {
        snprintf(err, errlen,
                 "the introspection URL must be https:// (http:// only to 127.0.0.1, [::1] "
                 "or localhost)");
        goto fail;
    }
    if (cfg->introspect_auth && cfg->introspect_auth_file) {
        snprintf(err, errlen, "introspection credentials given both inline and as a file");
        goto fail;
    }
    if (cfg->introspect_auth_file) {
        if (read_credentials_file(cfg->introspect_auth_file, credentials, sizeof credentials, warn,
                                  warn_ud, err, errlen) != 0)
            goto fail;
    } else if (cfg->introspect_auth) {
        snprintf(credentials, sizeof credentials, "%s", cfg->introspect_auth);
    } else {
        snprintf(err, errlen, "introspection needs this server's client credentials (ID:SECRET)");
        goto fail;
    }
    char *colon = strchr(credentials, ':');
    if (!colon || colon == credentials || colon[1] == '\0') {
        snprintf(err, errlen, "the introspection credentials%s%s must be ID:SECRET",
                 cfg->introspect_auth_file ? " in " : "",
                 cfg->introspect_auth_file ? cfg->introspect_auth_file : "");
        goto fail;
    }
    *colon = '\0';
    char *id = curl_easy_escape(NULL, credentials, 0);
    char *secret = curl_easy_escape(NULL, colon + 1, 0);
    in->client_id = id ? strdup(id) : NULL;
    in->client_secret = secret ? strdup(secret) : NULL;
    if (id) {
        OPENSSL_cleanse(id, strlen(id));
        curl_free(id);
    }
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        curl_free(secret);
    }
    in->url = strdup(cfg->introspect_url);
    in->cacert = cfg->introspect_cacert ? strdup(cfg->introspect_cacert) : NULL;
    double timeout = cfg->introspect_timeout > 0 ? cfg->introspect_timeout : DEFAULT_TIMEOUT;
    in->timeout_ms = (long)(timeout * 1000.0);
    in->ttl = cfg->introspect_cache_ttl > 0 ? cfg->introspect_cache_ttl : DEFAULT_TTL;
    in->cache = serve_token_cache_new(cfg->introspect_cache_max ? cfg->introspect_cache_max
                                                                : DEFAULT_CACHE_MAX);
    if (!in->client_id || !in->client_secret || !in->url ||
        (cfg->introspect_cacert && !in->cacert) || !in->cache) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    OPENSSL_cleanse(credentials, sizeof credentials);
    return in;
fail:
    OPENSSL_cleanse(credentials, sizeof credentials);
    serve_introspect_free(in);
    return NULL;
}

/* ---- the exchange ---- */

struct answer {
    char *data;
    size_t len;
    bool too_large;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct answer *a = ud;
    size_t n = size * nmemb;
    if (a->len + n > ANSWER_MAX) {
        a->too_large = true;
        return 0;
    }
    char *grown = realloc(a->data, a->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + a->len, ptr, n);
    a->data = grown;
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

/* POSTs the token; the answer's JSON object in *out, or the reason it is unusable. */
static const char *introspect_remote(struct serve_introspect *in, const char *token, json_t **out)
{
    *out = NULL;
    const char *problem = NULL;
    struct answer answer = {0};
    CURL *curl = curl_easy_init();
    char *escaped = curl ? curl_easy_escape(curl, token, 0) : NULL;
    char *body = NULL;
    struct curl_slist *headers = NULL;
    if (!escaped) {
        problem = "out of memory";
        goto done;
    }
    size_t body_len = strlen(escaped) + 64;
    body = malloc(body_len);
    if (!body) {
        problem = "out of memory";
        goto done;
    }
    snprintf(body, body_len, "token=%s&token_type_hint=access_token", escaped);
    headers = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, in->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    if (in->loopback) {
        /* Never through the environment's proxy: it would read the token and the client
           secret sent in clear text, and a proxy's loopback is not this host's. */
        curl_easy_setopt(curl, CURLOPT_PROXY, "");
    } else {
        /* A proxy (https_proxy) only relays the TLS bytes, never a request it can read. */
        curl_easy_setopt(curl, CURLOPT_HTTPPROXYTUNNEL, 1L);
    }
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, in->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, in->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, in->client_id);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, in->client_secret);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    if (in->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, in->cacert);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        problem = "the authorization server did not answer the introspection in time";
    } else if (answer.too_large) {
        problem = "the authorization server's introspection answer is too large";
    } else if (rc != CURLE_OK) {
        problem = "the authorization server could not be reached for introspection";
    } else if (status == 401 || status == 403) {
        problem = "the authorization server refused this server's introspection credentials";
    } else if (status != 200) {
        problem = "the authorization server answered the introspection with an HTTP error";
    } else {
        json_t *value =
            answer.data ? json_loadb(answer.data, answer.len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (!json_is_object(value) || !json_is_boolean(json_object_get(value, "active"))) {
            json_decref(value);
            problem = "the authorization server's introspection answer is not RFC 7662 JSON";
        } else {
            *out = value;
        }
    }
done:
    if (body) {
        OPENSSL_cleanse(body, strlen(body));
        free(body);
    }
    if (escaped) {
        OPENSSL_cleanse(escaped, strlen(escaped));
        curl_free(escaped);
    }
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    free(answer.data);
    return problem;
}

enum serve_introspect_result serve_introspect_check(struct serve_introspect *in, const char *token,
                                                    const struct serve_claims_policy *policy,
                                                    const char *peer_thumbprint, char *who,
                                                    size_t wholen, const char **error)
{
    unsigned char digest[SERVE_TOKEN_DIGEST_LEN];
    serve_token_digest(token, digest);
    double now = serve_auth_now();
    json_t *claims = NULL;
    if (!serve_token_cache_get(in->cache, digest, now, &claims)) {
        /* Not known: ask. Other threads keep using the cache while this one waits. */
        json_t *answer = NULL;
        const char *problem = introspect_remote(in, token, &answer);
        if (problem) {
            *error = problem;
            return SERVE_INTROSPECT_UNAVAILABLE;
        }
        double expires = now + (in->ttl < NEGATIVE_TTL_MAX ? in->ttl : NEGATIVE_TTL_MAX);
        if (json_is_true(json_object_get(answer, "active"))) {
            claims = answer;
            expires = now + in->ttl;
            const json_t *exp = json_object_get(claims, "exp");
            if (json_is_number(exp) && json_number_value(exp) + (double)policy->leeway < expires)
                expires = json_number_value(exp) + (double)policy->leeway;
        } else {
            json_decref(answer);
        }
        serve_token_cache_put(in->cache, digest, json_incref(claims), expires, now);
    }
    enum serve_introspect_result result = SERVE_INTROSPECT_REFUSED;
    if (!claims) {
        *error = "the token is not active";
    } else if (!(*error =
                     serve_claims_check(policy, claims, false, peer_thumbprint, (time_t)now))) {
        serve_claims_who(claims, who, wholen);
        result = SERVE_INTROSPECT_ACTIVE;
    }
    json_decref(claims);
    return result;
}
