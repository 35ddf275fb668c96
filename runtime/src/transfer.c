/*
 * Transfers: one HTTP exchange each. Two parts live here: what does not depend on the
 * transport (the queue in front of the active set, a transfer's life from its start to its
 * owner's callback, the seam of engine.h a transport plugs into), and the engine's own
 * transport, libcurl's multi handle: the options every request of the runtime
 * shares (no redirects, http/https only, HTTP/1.1 only, a timeout derived from the
 * deadline, a capped body, TLS verification on, a proxy from the environment only as a
 * CONNECT tunnel), and the harvest of the answer (status, headers, Location, Retry-After)
 * before the easy handle goes back to the transport's pool.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "engine.h"
#include "events.h"

/* The transfers of one engine: the transport they go out through, and the queue of those
 * waiting for a place among the active ones. */
struct lcmc_transfers {
    lcmc_engine *engine;
    const lcmc_transport *transport;
    void *transport_ctx;
    size_t running; /* active: handed to the transport, not finished */
    /* At most this many transfers are active (own an easy handle, sit in libcurl's lists);
     * the rest wait in a queue, so ten thousand coordinations cost little and libcurl's
     * per-turn work stays bounded. */
    size_t max_active;
    lcmc_transfer *queue_head, *queue_tail;
};

/* The engine's own transport: libcurl's multi interface. */
typedef struct curl_transport {
    lcmc_engine *engine;
    CURLM *multi;
    /* Easy handles kept after use: they hold libcurl's DNS and TLS session caches, and
     * reusing them spares an allocation per request. */
    CURL **idle_easy;
    size_t idle_count, idle_allocated;
    char proxy_logged[512]; /* the "proxy origin" pairs logged: once each */
} curl_transport;

struct lcmc_transfer {
    lcmc_engine *engine;
    struct lcmc_transfers *pool;
    CURL *easy;
    struct curl_slist *headers;
    /* Borrowed from the owner (a call, a token fetch), which outlives the transfer. */
    const char *method;
    const char *url;
    const char *body;
    size_t body_length;
    int request_attempts; /* times libcurl was about to send the request (before_request) */
    int resend_refused;   /* before_request stopped libcurl sending it again */
    int sends_body;       /* a request the peer may act on: libcurl may not resend it */
    lcmc_transfer_done_fn *done;
    void *userdata;
    int secret_exchange;
    char *proxy; /* the proxy chosen for the URL (as configured), or NULL: direct */
    lcmc_transfer_result result;
    lcmc_timer failed_start; /* reports a transfer that could not even be added */
    int active;              /* handed to the transport, its answer not yet back */
    /* Waiting for a place among the engine's active transfers: the spec (its strings are
     * the transfer's own, its pointers borrowed from owners that outlive it) is applied
     * when one frees up. */
    int queued;
    lcmc_transfer_spec spec;
    lcmc_transfer *queue_prev, *queue_next;
};

static size_t on_body(char *data, size_t size, size_t count, void *userdata)
{
    lcmc_transfer *t = userdata;
    size_t n = size * count;
    if (lcmc__buffer_append(&t->result.body, data, n) != 0)
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    return n;
}

/* libcurl calls this right before it sends the request on a connection, new or reused
 * (CURLOPT_PREREQFUNCTION). A second call for the same request means libcurl is sending it
 * again by itself: it does so when a reused connection dies after the request went out
 * and before any answer (Curl_retry_request), and it can always rewind a POSTFIELDS body.
 * For a request with a body (a POST: the EM may have acted on it) that is refused as soon
 * as any byte of the request went out before: whether to send it again is the runtime's
 * decision. The transfer then ends with CURLE_ABORTED_BY_CALLBACK, reported by harvest as
 * CURLE_SEND_FAIL_REWIND. */
static int before_request(void *userdata, char *remote_ip, char *local_ip, int remote_port,
                          int local_port)
{
    (void)remote_ip;
    (void)local_ip;
    (void)remote_port;
    (void)local_port;
    lcmc_transfer *t = userdata;
    long sent = 0;
    if (t->request_attempts++ > 0 && t->sends_body &&
        (curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK || sent > 0)) {
        t->resend_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

int lcmc__transfer_request_started(const lcmc_transfer *t)
{
    return t != NULL && t->request_attempts > 0;
}

/* Header lines that carry credentials: 1 when the value starts with a scheme worth showing
 * (Authorization: Basic ...), 2 when all of it is the secret (a cookie, an OpenStack
 * Keystone token as Tacker's peers send it), 0 for any other header. */
static int credential_header(const char *line, size_t length)
{
    static const struct {
        const char *name;
        int kind;
    } names[] = {{"authorization:", 1}, {"proxy-authorization:", 1}, {"cookie:", 2},
                 {"set-cookie:", 2},    {"x-auth-token:", 2},        {"x-subject-token:", 2}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t k = strlen(names[i].name);
        if (length >= k && strncasecmp(line, names[i].name, k) == 0)
            return names[i].kind;
    }
    return 0;
}

static void trace_headers(lcmc_transfer *t, lcmc_trace_kind kind, const char *data, size_t size)
{
    lcmc_engine *e = t->engine;
    size_t start = 0;
    while (start < size) {
        size_t end = start;
        while (end < size && data[end] != '\n')
            end++;
        size_t line_end = end < size ? end + 1 : end;
        const char *line = data + start;
        size_t length = line_end - start;
        int credential = credential_header(line, length);
        if (credential != 0) {
            /* Keep "Authorization: Basic" so a reader sees which scheme went out; of a
             * cookie or a token nothing but the name (its first word is the secret). */
            const char *colon = memchr(line, ':', length);
            size_t keep = (size_t)(colon - line) + 1;
            if (credential == 1) {
                while (keep < length && line[keep] == ' ')
                    keep++;
                while (keep < length && line[keep] != ' ' && line[keep] != '\r' &&
                       line[keep] != '\n')
                    keep++;
            }
            char redacted[160];
            int n = snprintf(redacted, sizeof redacted, "%.*s <redacted>\r\n",
                             (int)(keep < 120 ? keep : 120), line);
            lcmc__trace(e, kind, redacted, (size_t)n);
        } else {
            lcmc__trace(e, kind, line, length);
        }
        start = line_end;
    }
}

/* The userinfo of a proxy as configured ("user:password" of http://user:password@host),
 * found without parsing (libcurl quotes proxies it cannot parse): [*start, +*length). */
static int proxy_userinfo(const char *proxy, const char **start, size_t *length)
{
    const char *authority = strstr(proxy, "://");
    authority = authority ? authority + 3 : proxy;
    size_t end = strcspn(authority, "/?#");
    const char *at = NULL;
    for (const char *p = authority; p < authority + end; p++)
        if (*p == '@')
            at = p;
    if (at == NULL || at == authority)
        return 0;
    *start = authority;
    *length = (size_t)(at - authority);
    return 1;
}

/* A copy of text (n bytes) with the proxy's userinfo replaced, and its password and user
 * name alone (when not too short to be mistaken for parts of other words; the user also
 * when quoted, as in "with user 'bob'"), or NULL when none of them occurs in it (or memory
 * ran out: the caller then shows nothing of the text). *found says whether any occurred.
 * libcurl quotes the proxy string as given in some messages ("Unsupported proxy syntax in
 * 'http://user:password@...'") and names the user in others ("Proxy auth using Basic with
 * user 'user'"). */
static char *without_proxy_userinfo(const char *proxy, const char *text, size_t n, int *found)
{
    *found = 0;
    const char *info;
    size_t info_length;
    if (proxy == NULL || !proxy_userinfo(proxy, &info, &info_length))
        return NULL;
    const char *colon = memchr(info, ':', info_length);
    size_t user_length = colon ? (size_t)(colon - info) : info_length;
    size_t password_length = colon ? info_length - user_length - 1 : 0;
    char *quoted_user = user_length > 0 ? malloc(user_length + 3) : NULL;
    if (quoted_user) {
        quoted_user[0] = '\'';
        memcpy(quoted_user + 1, info, user_length);
        quoted_user[user_length + 1] = '\'';
        quoted_user[user_length + 2] = '\0';
    }
    struct {
        const char *s;
        size_t n;
    } secrets[4] = {{info, info_length},
                    {colon ? colon + 1 : NULL, password_length >= 4 ? password_length : 0},
                    {quoted_user, quoted_user ? user_length + 2 : 0},
                    {info, user_length >= 4 ? user_length : 0}};
    static const char mark[] = "<redacted>";
    char *out = malloc(n * (sizeof mark) + 1); /* each byte at worst becomes one mark */
    if (out == NULL || (user_length > 0 && quoted_user == NULL)) {
        free(out);
        free(quoted_user);
        *found = 1;
        return NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < n;) {
        size_t hit = 0;
        for (int k = 0; k < 4 && hit == 0; k++)
            if (secrets[k].s && secrets[k].n > 0 && secrets[k].n <= n - i &&
                memcmp(text + i, secrets[k].s, secrets[k].n) == 0)
                hit = secrets[k].n;
        if (hit) {
            memcpy(out + used, mark, sizeof mark - 1);
            used += sizeof mark - 1;
            i += hit;
            *found = 1;
        } else {
            out[used++] = text[i++];
        }
    }
    out[used] = '\0';
    free(quoted_user);
    if (!*found) {
        free(out);
        return NULL;
    }
    return out;
}

static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *userdata)
{
    (void)easy;
    lcmc_transfer *t = userdata;
    lcmc_engine *e = t->engine;
    if (!lcmc__trace_enabled(e))
        return 0;
    switch (type) {
    case CURLINFO_TEXT: {
        int found = 0;
        char *clean = without_proxy_userinfo(t->proxy, data, size, &found);
        if (clean)
            lcmc__trace(e, LCMC_TRACE_INFO, clean, strlen(clean));
        else if (!found)
            lcmc__trace(e, LCMC_TRACE_INFO, data, size);
        free(clean);
        break;
    }
    case CURLINFO_HEADER_OUT:
        trace_headers(t, LCMC_TRACE_REQUEST_HEADERS, data, size);
        break;
    case CURLINFO_HEADER_IN:
        trace_headers(t, LCMC_TRACE_RESPONSE_HEADERS, data, size);
        break;
    case CURLINFO_DATA_OUT:
    case CURLINFO_DATA_IN: {
        lcmc_trace_kind kind =
            type == CURLINFO_DATA_OUT ? LCMC_TRACE_REQUEST_BODY : LCMC_TRACE_RESPONSE_BODY;
        if (t->secret_exchange) {
            static const char hidden[] = "<redacted: token request or answer>";
            lcmc__trace(e, kind, hidden, sizeof hidden - 1);
        } else {
            lcmc__trace(e, kind, data, size);
        }
        break;
    }
    default: /* TLS records are not for people */
        break;
    }
    return 0;
}

/* The headers kept for the caller: enough for any real answer, bounded for a hostile one
 * (libcurl itself stops at its own cap of header bytes). */
#define MAX_KEPT_HEADERS 128

/* Slots for the first headers of an answer; doubled when full (at 16, 32, 64), up to
 * MAX_KEPT_HEADERS. Answers carry a handful: two zeroed kilobyte tables per answer, as
 * before, made glibc consolidate its free lists on every request (docs/benchmarks.md). */
#define FIRST_HEADER_SLOTS 16

/* Room for one more header: 0, or -1 when memory ran out (what is kept stays usable). */
static int make_room(lcmc_transfer_result *r)
{
    if (r->header_names == NULL || r->header_values == NULL) {
        /* Both or neither: a half-made pair would be written through on the next line. */
        char **names = calloc(FIRST_HEADER_SLOTS, sizeof(char *));
        char **values = calloc(FIRST_HEADER_SLOTS, sizeof(char *));
        if (names == NULL || values == NULL) {
            free(names);
            free(values);
            return -1;
        }
        free(r->header_names);
        free(r->header_values);
        r->header_names = names;
        r->header_values = values;
        return 0;
    }
    size_t n = r->header_count;
    if (n < FIRST_HEADER_SLOTS || (n & (n - 1)) != 0)
        return 0; /* not full: the tables are a power of two from 16 on */
    char **names = realloc(r->header_names, 2 * n * sizeof *names);
    if (names == NULL)
        return -1;
    r->header_names = names;
    char **values = realloc(r->header_values, 2 * n * sizeof *values);
    if (values == NULL)
        return -1; /* the same count grows again, only what is short */
    r->header_values = values;
    return 0;
}

static void add_header(lcmc_transfer_result *r, const char *line, size_t length)
{
    const char *colon = memchr(line, ':', length);
    if (colon == NULL || colon == line || r->header_count >= MAX_KEPT_HEADERS)
        return;
    if (make_room(r) != 0)
        return; /* the header is not kept; the answer itself still is */
    const char *value = colon + 1;
    const char *end = line + length;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *name = malloc((size_t)(colon - line) + 1);
    char *copy = malloc((size_t)(end - value) + 1);
    if (name == NULL || copy == NULL) {
        free(name);
        free(copy);
        return;
    }
    memcpy(name, line, (size_t)(colon - line));
    name[colon - line] = '\0';
    memcpy(copy, value, (size_t)(end - value));
    copy[end - value] = '\0';
    r->header_names[r->header_count] = name;
    r->header_values[r->header_count] = copy;
    r->header_count++;
}

static void drop_headers(lcmc_transfer_result *r)
{
    for (size_t i = 0; i < r->header_count; i++) {
        free(r->header_names[i]);
        free(r->header_values[i]);
    }
    r->header_count = 0;
}

/* Collects the headers as they arrive, in one pass: walking libcurl's stored headers
 * afterwards costs time quadratic in their number, which a hostile EM chooses. A status
 * line starts a new answer (after a 100 Continue, say): only the final one's are kept. */
static size_t on_header(char *data, size_t size, size_t count, void *userdata)
{
    lcmc_transfer *t = userdata;
    size_t n = size * count;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        drop_headers(&t->result);
    else
        add_header(&t->result, data, n);
    return n;
}

/* The header list holds the Authorization line (add_credentials): wiped before freed. */
static void free_headers_wiped(struct curl_slist *list)
{
    for (struct curl_slist *h = list; h; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(list);
}

static CURL *take_easy(curl_transport *ct)
{
    if (ct->idle_count > 0)
        return ct->idle_easy[--ct->idle_count];
    return curl_easy_init();
}

static void give_back_easy(curl_transport *ct, CURL *easy)
{
    curl_easy_reset(easy);
    if (ct->idle_count == ct->idle_allocated) {
        size_t grown = ct->idle_allocated ? ct->idle_allocated * 2 : 16;
        CURL **bigger = grown <= 4096 ? realloc(ct->idle_easy, grown * sizeof *bigger) : NULL;
        if (bigger == NULL) {
            curl_easy_cleanup(easy);
            return;
        }
        ct->idle_easy = bigger;
        ct->idle_allocated = grown;
    }
    ct->idle_easy[ct->idle_count++] = easy;
}

static void unqueue(lcmc_transfer *t)
{
    struct lcmc_transfers *pool = t->pool;
    LCMC_DEBUGASSERT(t->queued && !t->active);
    LCMC_DEBUGASSERT(t->queue_prev ? t->queue_prev->queue_next == t : pool->queue_head == t);
    LCMC_DEBUGASSERT(t->queue_next ? t->queue_next->queue_prev == t : pool->queue_tail == t);
    if (t->queue_prev)
        t->queue_prev->queue_next = t->queue_next;
    else
        pool->queue_head = t->queue_next;
    if (t->queue_next)
        t->queue_next->queue_prev = t->queue_prev;
    else
        pool->queue_tail = t->queue_prev;
    t->queue_prev = t->queue_next = NULL;
    t->queued = 0;
}

static void pump(struct lcmc_transfers *pool);

/* An active transfer leaves the active set (answered or abandoned). */
static void deactivate(lcmc_transfer *t)
{
    LCMC_DEBUGASSERT(t->active && !t->queued && t->pool->running > 0);
    t->active = 0;
    t->pool->running--;
}

static void release(lcmc_transfer *t)
{
    struct lcmc_transfers *pool = t->pool;
    int was_active = t->active;
    if (t->queued)
        unqueue(t);
    if (t->active) {
        pool->transport->abandon(pool->transport_ctx, t);
        deactivate(t);
    }
    LCMC_DEBUGASSERT(t->easy == NULL); /* the transport gave its handle back */
    lcmc__timer_disarm(t->engine, &t->failed_start);
    free_headers_wiped(t->headers);
    free(t->proxy);
    lcmc__transfer_result_free(&t->result);
    free(t);
    if (was_active)
        pump(pool);
}

static void report_failed_start(lcmc_timer *timer)
{
    lcmc_transfer *t = timer->owner;
    t->done(t, t->userdata);
}

static void apply_tls(CURL *easy, const lcmc_tls_options *tls)
{
    curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (tls == NULL)
        return;
    if (tls->cacert)
        curl_easy_setopt(easy, CURLOPT_CAINFO, tls->cacert);
    if (tls->capath)
        curl_easy_setopt(easy, CURLOPT_CAPATH, tls->capath);
    if (tls->cert)
        curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->cert);
    if (tls->key)
        curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->key);
    if (tls->key_password)
        curl_easy_setopt(easy, CURLOPT_KEYPASSWD, tls->key_password);
    if (tls->insecure) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* ---- proxies ------------------------------------------------------------------------ */

/* The variables libcurl itself reads, in its order: for http only the lower-case
 * http_proxy (HTTP_PROXY can be set by a CGI request's Proxy header), for https
 * https_proxy then HTTPS_PROXY, then all_proxy and ALL_PROXY. */
static const char *env_proxy(const char *scheme)
{
    static const char *const for_http[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
    static const char *const for_https[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                                            NULL};
    const char *const *names = strcmp(scheme, "https") == 0 ? for_https : for_http;
    for (const char *const *n = names; *n; n++) {
        const char *v = getenv(*n);
        if (v && *v)
            return v;
    }
    return NULL;
}

/* Whether an IP literal lies in "address[/bits]". */
static int ip_in(const char *host, const char *entry, size_t length)
{
    char text[64];
    if (length >= sizeof text)
        return 0;
    memcpy(text, entry, length);
    text[length] = '\0';
    char *slash = strchr(text, '/');
    int bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (*end != '\0' || end == slash + 1 || b < 0 || b > 128)
            return 0;
        bits = (int)b;
    }
    char *bare = text;
    size_t n = strlen(bare);
    if (n >= 2 && bare[0] == '[' && bare[n - 1] == ']') {
        bare[n - 1] = '\0';
        bare++;
    }
    unsigned char a[16], b[16];
    int family = strchr(host, ':') ? AF_INET6 : AF_INET;
    int size = family == AF_INET6 ? 16 : 4;
    if (inet_pton(family, host, a) != 1 || inet_pton(family, bare, b) != 1)
        return 0;
    if (bits > size * 8)
        return 0; /* as libcurl: "127.0.0.1/40" covers nothing */
    if (bits < 0)
        bits = size * 8;
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* no_proxy (or NO_PROXY): entries separated by commas or blanks; "*" as the whole value
 * (as libcurl: not as one entry among others) matches every host; a name matches itself and its
 * subdomains (a leading dot is optional); an IP address, with an optional /bits, matches the
 * addresses it covers. libcurl's matching is not exported, so the runtime decides and tells libcurl
 * the outcome (see proxy_for). */
static int no_proxy_matches(const char *list, const char *host)
{
    size_t host_length = strlen(host);
    int host_is_ip = 0;
    unsigned char scratch[16];
    host_is_ip = inet_pton(AF_INET, host, scratch) == 1 || inet_pton(AF_INET6, host, scratch) == 1;
    if (strcmp(list, "*") == 0)
        return 1;
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        const char *start = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t length = (size_t)(p - start);
        if (length == 0)
            continue;
        if (host_is_ip) {
            if (ip_in(host, start, length))
                return 1;
            continue;
        }
        if (*start == '.') {
            start++;
            length--;
        }
        while (length > 0 && start[length - 1] == '.')
            length--;
        if (length == 0 || length > host_length)
            continue;
        const char *tail = host + host_length - length;
        if (strncasecmp(tail, start, length) == 0 && (tail == host || tail[-1] == '.'))
            return 1;
    }
    return 0;
}

/* The proxy the environment gives for `url`, or NULL to go direct. */
static char *proxy_for(const char *url)
{
    /* Most runs have no proxy at all: no URL parsing per request for them. */
    if (env_proxy("http") == NULL && env_proxy("https") == NULL)
        return NULL;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    char *proxy = NULL;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto done;
    const char *found = env_proxy(scheme);
    if (found == NULL)
        goto done;
    char *bare = host;
    size_t n = strlen(bare);
    if (n >= 2 && bare[0] == '[' && bare[n - 1] == ']') {
        bare[n - 1] = '\0';
        bare++;
    }
    const char *no_proxy = getenv("no_proxy");
    if (no_proxy == NULL || *no_proxy == '\0')
        no_proxy = getenv("NO_PROXY");
    if (no_proxy && no_proxy_matches(no_proxy, bare))
        goto done;
    proxy = lcmc__strdup(found);
done:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return proxy;
}

/* A proxy as people may see it: scheme://host:port, never the userinfo it may carry. */
static char *proxy_shown(const char *proxy)
{
    CURLU *u = curl_url();
    char *shown = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, proxy, CURLU_GUESS_SCHEME) == CURLUE_OK) {
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
        curl_url_set(u, CURLUPART_PATH, NULL, 0);
        curl_url_set(u, CURLUPART_QUERY, NULL, 0);
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
        char *text = NULL;
        if (curl_url_get(u, CURLUPART_URL, &text, 0) == CURLUE_OK) {
            size_t n = strlen(text);
            if (n > 0 && text[n - 1] == '/')
                text[n - 1] = '\0';
            shown = lcmc__strdup(text);
        }
        curl_free(text);
    }
    curl_url_cleanup(u);
    return shown ? shown : lcmc__strdup("a proxy (unparsable)");
}

/* host:port of a URL, the port defaulted: what a CONNECT asks for. */
static char *tunnel_target(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *out = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        out = lcmc__asprintf("%s:%s", host, port);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

/* Routes the transfer: through the environment's proxy, as a tunnel only, or direct. The
 * decision is the runtime's (NOPROXY "" stops libcurl reading no_proxy a second time), so
 * that a failure can be worded as the proxy's exactly when the proxy was used. */
static int route(curl_transport *ct, lcmc_transfer *t)
{
    CURL *easy = t->easy;
    free(t->proxy);
    t->proxy = proxy_for(t->url);
    if (t->proxy == NULL) {
        curl_easy_setopt(easy, CURLOPT_PROXY, "");
        return 0;
    }
    curl_easy_setopt(easy, CURLOPT_PROXY, t->proxy);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "");
    /* A CONNECT tunnel even for http:// URLs: the proxy relays bytes and never reads a
     * request, so neither an Authorization header nor a body is ever the proxy's to see. */
    curl_easy_setopt(easy, CURLOPT_HTTPPROXYTUNNEL, 1L);
    lcmc_engine *e = t->engine;
    char *shown = proxy_shown(t->proxy);
    char *origin = lcmc__url_origin(t->url);
    if (shown == NULL || origin == NULL) {
        free(shown);
        free(origin);
        return -1;
    }
    /* proxy_logged holds "\nproxy origin\n" for each pair said already (forgotten when full). */
    char line[sizeof ct->proxy_logged];
    snprintf(line, sizeof line, "\n%s %s\n", shown, origin);
    if (strstr(ct->proxy_logged, line) == NULL) {
        size_t used = strlen(ct->proxy_logged);
        if (used + strlen(line) >= sizeof ct->proxy_logged)
            used = 0;
        snprintf(ct->proxy_logged + used, sizeof ct->proxy_logged - used, "%s", line);
        lcmc_event event = lcmc__event_make(LCMC_EVENT_PROXY, LCMC_LOG_INFO, NULL);
        event.reason = "environment";
        event.url = t->url;
        lcmc__event_emit(e, &event, "using the proxy %s (from the environment) for %s, as a tunnel",
                         shown, origin);
    }
    free(shown);
    free(origin);
    return 0;
}

/* The Authorization header, made here rather than by libcurl's CURLOPT_USERNAME/PASSWORD
 * or XOAUTH2_BEARER: libcurl would keep copies of the secret (the options, the encoded
 * header) that it frees unwiped. The line lives in the transfer's header list, which
 * release() wipes. A header of the caller's own Authorization wins, as it would in libcurl. */
static int add_credentials(lcmc_transfer *t, const lcmc_transfer_spec *spec)
{
    if (spec->bearer_token == NULL && spec->basic_user == NULL)
        return 0;
    for (const char *const *h = spec->headers; h && *h; h++)
        if (strncasecmp(*h, "authorization:", 14) == 0)
            return 0;
    char *line = NULL;
    if (spec->bearer_token) {
        line = lcmc__asprintf("Authorization: Bearer %s", spec->bearer_token);
    } else {
        /* RFC 7617: base64 of user ":" password. */
        char *pair = lcmc__asprintf("%s:%s", spec->basic_user,
                                    spec->basic_password ? spec->basic_password : "");
        size_t n = pair ? strlen(pair) : 0;
        unsigned char *encoded = pair ? malloc(4 * ((n + 2) / 3) + 1) : NULL;
        if (encoded) {
            EVP_EncodeBlock(encoded, (const unsigned char *)pair, (int)n);
            line = lcmc__asprintf("Authorization: Basic %s", (const char *)encoded);
            lcmc__free_secret((char *)encoded);
        }
        lcmc__free_secret(pair);
    }
    if (line == NULL)
        return -1;
    struct curl_slist *list = curl_slist_append(t->headers, line);
    lcmc__free_secret(line);
    if (list == NULL)
        return -1;
    t->headers = list;
    return 0;
}

static int configure(curl_transport *ct, lcmc_transfer *t, const lcmc_transfer_spec *spec)
{
    CURL *easy = t->easy;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(easy, CURLOPT_URL, t->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    /* HTTP/1.1 only, token fetches included: the one version the suite tests end to end. */
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (route(ct, t) != 0)
        return -1;
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->result.curl_error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "lcmcoord/" LCMC_VERSION_STRING);
    if (lcmc__trace_enabled(t->engine)) {
        curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(easy, CURLOPT_DEBUGDATA, t);
        curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
    }
    if (spec->max_body)
        curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)spec->max_body);

    /* No request outlives the deadline: libcurl's own timeout is what is left of it. */
    double left = spec->deadline - lcmc__now();
    if (!(left <= LCMC_MAX_TIMEOUT))
        left = LCMC_MAX_TIMEOUT; /* also NaN: (long) of a huge double is undefined */
    long left_ms = left <= 0.001 ? 1L : (long)ceil(left * 1000.0);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, left_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, left_ms < 30000 ? left_ms : 30000L);

    /* A body is sent with its size known (a Content-Length, no chunking), and only once:
     * before_request stops libcurl sending it again on its own. */
    int sends_body = strcmp(t->method, "POST") == 0 || t->body != NULL;
    t->sends_body = sends_body;
    /* Every request: that libcurl got as far as sending it (the connection, and a proxy's
     * tunnel, up) is what says whether the peer may have it. */
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, before_request);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, t);
    if (strcmp(t->method, "GET") == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(t->method, "POST") != 0)
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, t->method);
        if (sends_body) {
            curl_easy_setopt(easy, CURLOPT_POST, 1L);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body ? t->body : "");
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_length);
        }
        if (strcmp(t->method, "HEAD") == 0)
            curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    }

    /* "Expect:" keeps libcurl from pausing for 100-continue before larger bodies. */
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    if (list == NULL)
        return -1;
    t->headers = list;
    for (const char *const *h = spec->headers; h && *h; h++) {
        list = curl_slist_append(t->headers, *h);
        if (list == NULL)
            return -1;
        t->headers = list;
    }
    /* A POST without a body (a cancel) says nothing about a type it does not have: an
     * empty "Content-Type:" stops libcurl adding application/x-www-form-urlencoded. */
    if (sends_body && t->body_length == 0) {
        list = curl_slist_append(t->headers, "Content-Type:");
        if (list == NULL)
            return -1;
        t->headers = list;
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);

    if (add_credentials(t, spec) != 0)
        return -1;
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    apply_tls(easy, spec->tls);
    t->result.ca_given =
        spec->tls != NULL && (spec->tls->cacert != NULL || spec->tls->capath != NULL);
    return 0;
}

/* Reports a transfer that could not be started through its callback, from the loop (never
 * inside the caller's frame). Returns -1 when even that is impossible. */
static int fail_from_the_loop(lcmc_transfer *t, CURLcode code, const char *why)
{
    t->result.curl_code = code;
    snprintf(t->result.curl_error, sizeof t->result.curl_error, "%s", why);
    return lcmc__timer_arm(t->engine, &t->failed_start, lcmc__now());
}

/* Hands a transfer to the transport. Returns -1 when memory ran out before anything could
 * be reported; the transfer is then still the caller's. */
static int activate(lcmc_transfer *t)
{
    struct lcmc_transfers *pool = t->pool;
    LCMC_DEBUGASSERT(!t->active && !t->queued);
    /* Active from the hand-over on: a transport may start sending at once. */
    t->active = 1;
    pool->running++;
    int sent = pool->transport->send(pool->transport_ctx, t, &t->spec);
    if (sent == 0)
        return 0;
    deactivate(t);
    if (sent < 0)
        return -1;
    return fail_from_the_loop(t, CURLE_FAILED_INIT, "the request could not be queued");
}

static void pump(struct lcmc_transfers *pool)
{
    while (pool->queue_head && pool->running < pool->max_active) {
        lcmc_transfer *t = pool->queue_head;
        unqueue(t);
        /* Out of memory here: the owner learns of it as of any failed transfer. */
        if (activate(t) != 0)
            fail_from_the_loop(t, CURLE_OUT_OF_MEMORY, "out of memory");
    }
}

lcmc_transfer *lcmc__transfer_start(lcmc_engine *e, const lcmc_transfer_spec *spec,
                                    lcmc_transfer_done_fn *done, void *userdata)
{
    struct lcmc_transfers *pool = lcmc__engine_transfers(e);
    lcmc_transfer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->engine = e;
    t->pool = pool;
    t->done = done;
    t->userdata = userdata;
    t->result.body.cap = spec->max_body;
    t->secret_exchange = spec->secret_exchange;
    lcmc__timer_init(&t->failed_start, report_failed_start, t);
    t->method = spec->method;
    t->url = spec->url;
    t->body = spec->body;
    t->body_length = spec->body ? spec->body_length : 0;
    t->spec = *spec;
    if (spec->immediate || pool->running < pool->max_active) {
        if (activate(t) != 0) {
            release(t);
            return NULL;
        }
        return t;
    }
    /* Beyond the active set a transfer costs only this struct: no easy handle, no place in
     * libcurl's lists that every turn of the loop would walk. */
    t->queued = 1;
    t->queue_prev = pool->queue_tail;
    if (pool->queue_tail)
        pool->queue_tail->queue_next = t;
    else
        pool->queue_head = t;
    pool->queue_tail = t;
    return t;
}

void lcmc__transfer_sending(lcmc_transfer *t)
{
    LCMC_DEBUGASSERT(t->active);
    t->request_attempts++;
}

void lcmc__transfer_answered(lcmc_transfer *t, lcmc_transfer_result *r)
{
    struct lcmc_transfers *pool = t->pool;
    LCMC_DEBUGASSERT(t->easy == NULL); /* the transport is done with it */
    if (r) {
        size_t cap = t->result.body.cap;
        lcmc__transfer_result_free(&t->result);
        t->result = *r;
        t->result.body.cap = cap;
        memset(r, 0, sizeof *r);
    }
    deactivate(t);
    t->done(t, t->userdata); /* which may free t */
    pump(pool);
}

size_t lcmc__transfers_running(const struct lcmc_transfers *pool)
{
    return pool->running;
}

lcmc_status lcmc__transfers_wait(struct lcmc_transfers *pool, double timeout,
                                 struct curl_waitfd *fds, unsigned fd_count)
{
    return pool->transport->wait(pool->transport_ctx, timeout, fds, fd_count);
}

/* Enough active transfers to keep every connection busy with one queued behind it. */
static size_t active_transfers_for(long max_host_connections)
{
    return max_host_connections > 0 ? (size_t)max_host_connections * 2 : 256;
}

void lcmc__transfers_set_max_host_connections(struct lcmc_transfers *pool, long max)
{
    if (pool->transport->set_max_host_connections)
        pool->transport->set_max_host_connections(pool->transport_ctx, max);
    pool->max_active = active_transfers_for(max);
    pump(pool);
}

void lcmc__engine_use_transport(lcmc_engine *e, const lcmc_transport *transport, void *ctx)
{
    struct lcmc_transfers *pool = lcmc__engine_transfers(e);
    LCMC_DEBUGASSERT(pool->running == 0 && pool->queue_head == NULL);
    if (pool->transport && pool->transport->free)
        pool->transport->free(pool->transport_ctx);
    pool->transport = transport;
    pool->transport_ctx = ctx;
}

void lcmc__transfer_cancel(lcmc_transfer *t)
{
    if (t)
        release(t);
}

void lcmc__transfer_finish(lcmc_transfer *t, lcmc_transfer_result *out)
{
    *out = t->result;
    memset(&t->result, 0, sizeof t->result);
    release(t);
}

void lcmc__transfer_result_free(lcmc_transfer_result *r)
{
    lcmc__buffer_free(&r->body); /* wiped: it may be a token answer */
    OPENSSL_cleanse(r->curl_error, sizeof r->curl_error);
    free(r->content_type);
    free(r->location);
    free(r->proxy);
    for (size_t i = 0; i < r->header_count; i++) {
        free(r->header_names[i]);
        free(r->header_values[i]);
    }
    free(r->header_names);
    free(r->header_values);
    memset(r, 0, sizeof *r);
}

static char *header_value(CURL *easy, const char *name)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
        return NULL;
    return lcmc__strdup(h->value);
}

static void harvest(lcmc_transfer *t, CURLcode code)
{
    lcmc_transfer_result *r = &t->result;
    r->curl_code = code;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r->status);
    char *ctype = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
    r->content_type = lcmc__strdup(ctype);
    long request_size = 0;
    curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_size);
    /* Bytes a proxy got (a CONNECT) are not the request: only once libcurl was about to
     * send it on an open connection (tunnel up) may the peer have any of it. */
    r->request_sent = (t->request_attempts > 0 && request_size > 0) || r->status > 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    r->elapsed = (double)total_us / 1e6;
    if (t->proxy) {
        r->proxy = proxy_shown(t->proxy);
        curl_easy_getinfo(t->easy, CURLINFO_HTTP_CONNECTCODE, &r->proxy_connect_status);
        /* An HTTP proxy's tunnel is up once it answered the CONNECT with 2xx (a failure
         * after that, a TLS handshake with the EM say, is not the proxy's); a SOCKS proxy
         * gives no such answer to tell by, and its failures are CURLE_PROXY. */
        int tunnel_up = r->proxy_connect_status >= 200 && r->proxy_connect_status <= 299;
        r->proxy_tunnel_failed = code != CURLE_OK && t->request_attempts == 0 && !tunnel_up &&
                                 strncasecmp(t->proxy, "socks", 5) != 0;
        /* A refused CONNECT is the proxy's answer, never the EM's status. */
        if (r->proxy_connect_status != 0 &&
            (r->proxy_connect_status < 200 || r->proxy_connect_status > 299))
            r->status = 0;
    }
    if (r->status > 0) {
        r->location = header_value(t->easy, "Location");
        char *retry_after = header_value(t->easy, "Retry-After");
        if (retry_after) {
            r->retry_after_present = 1;
            curl_off_t seconds = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &seconds);
            r->retry_after = (long long)seconds;
            free(retry_after);
        }
    }
    if (code == CURLE_WRITE_ERROR && r->body.overflowed)
        r->curl_code = CURLE_FILESIZE_EXCEEDED;
    if (t->proxy && r->curl_error[0]) {
        /* libcurl's message may quote the proxy as configured, credentials and all. */
        int found = 0;
        char *clean =
            without_proxy_userinfo(t->proxy, r->curl_error, strlen(r->curl_error), &found);
        if (found)
            snprintf(r->curl_error, sizeof r->curl_error, "%s",
                     clean ? clean : "(a message naming the proxy's credentials)");
        free(clean);
    }
    if (code == CURLE_ABORTED_BY_CALLBACK && t->resend_refused) {
        r->curl_code = CURLE_SEND_FAIL_REWIND;
        snprintf(r->curl_error, sizeof r->curl_error,
                 "the connection closed without an answer after the request went out; it is "
                 "not sent again");
    }
}

/* ---- the libcurl transport ---------------------------------------------------------- */

static int curl_send(void *ctx, lcmc_transfer *t, const lcmc_transfer_spec *spec)
{
    curl_transport *ct = ctx;
    LCMC_DEBUGASSERT(t->easy == NULL); /* one easy handle per transfer, one transfer per handle */
    if ((t->easy = take_easy(ct)) == NULL)
        return -1;
    int refused = 0;
    if (configure(ct, t, spec) != 0 ||
        (refused = curl_multi_add_handle(ct->multi, t->easy) != CURLM_OK)) {
        give_back_easy(ct, t->easy);
        t->easy = NULL;
        return refused ? 1 : -1;
    }
    return 0;
}

static void curl_abandon(void *ctx, lcmc_transfer *t)
{
    curl_transport *ct = ctx;
    curl_multi_remove_handle(ct->multi, t->easy);
    give_back_easy(ct, t->easy);
    t->easy = NULL;
}

/* Completes every transfer libcurl reports finished. */
static void curl_collect(curl_transport *ct)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(ct->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        lcmc_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        LCMC_DEBUGASSERT(t != NULL && t->easy == msg->easy_handle && t->active);
        CURLcode code = msg->data.result;
        harvest(t, code);
        curl_multi_remove_handle(ct->multi, t->easy);
        give_back_easy(ct, t->easy);
        t->easy = NULL;
        lcmc__transfer_answered(t, NULL);
    }
}

static lcmc_status curl_wait(void *ctx, double timeout, struct curl_waitfd *fds, unsigned fd_count)
{
    curl_transport *ct = ctx;
    int ms = timeout <= 0 ? 0 : timeout >= 60.0 ? 60 * 1000 : (int)ceil(timeout * 1000.0);
    CURLMcode mc = curl_multi_poll(ct->multi, fds, fd_count, ms, NULL);
    if (mc != CURLM_OK && mc != CURLM_UNRECOVERABLE_POLL)
        return LCMC_ENOMEM;
    int running = 0;
    curl_multi_perform(ct->multi, &running);
    curl_collect(ct);
    return LCMC_OK;
}

static void curl_set_max_host_connections(void *ctx, long max)
{
    curl_transport *ct = ctx;
    curl_multi_setopt(ct->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max);
}

static void curl_free_transport(void *ctx)
{
    curl_transport *ct = ctx;
    if (ct == NULL)
        return;
    for (size_t i = 0; i < ct->idle_count; i++)
        curl_easy_cleanup(ct->idle_easy[i]);
    free(ct->idle_easy);
    if (ct->multi)
        curl_multi_cleanup(ct->multi);
    free(ct);
}

static const lcmc_transport curl_transport_ops = {
    .send = curl_send,
    .abandon = curl_abandon,
    .wait = curl_wait,
    .set_max_host_connections = curl_set_max_host_connections,
    .free = curl_free_transport,
};

int lcmc__transfers_new(lcmc_engine *e, struct lcmc_transfers **out)
{
    struct lcmc_transfers *pool = calloc(1, sizeof *pool);
    curl_transport *ct = calloc(1, sizeof *ct);
    if (pool == NULL || ct == NULL || (ct->multi = curl_multi_init()) == NULL) {
        free(pool);
        free(ct);
        return -1;
    }
    ct->engine = e;
    pool->engine = e;
    pool->transport = &curl_transport_ops;
    pool->transport_ctx = ct;
    pool->max_active = active_transfers_for(0);
    *out = pool;
    return 0;
}

void lcmc__transfers_free(struct lcmc_transfers *pool)
{
    if (pool == NULL)
        return;
    if (pool->transport->free)
        pool->transport->free(pool->transport_ctx);
    free(pool);
}

static int is_tls_failure(CURLcode code)
{
    switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Failures before the request could reach the server. */
static int never_reached(CURLcode code)
{
    return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
           code == CURLE_COULDNT_CONNECT || code == CURLE_FAILED_INIT ||
           code == CURLE_OUT_OF_MEMORY || code == CURLE_URL_MALFORMAT;
}

const char *lcmc__transfer_hint(const lcmc_transfer_result *r, const char *url, const char *peer)
{
    int is_em = strcmp(peer, "the EM") == 0;
    int is_token = strcmp(peer, "the token endpoint") == 0;
    if (r->proxy != NULL) /* the proxy's failures have their own words above */
        return "";
    if (strncasecmp(url, "https://", 8) == 0 && r->curl_code == CURLE_SSL_CONNECT_ERROR &&
        (strstr(r->curl_error, "wrong version number") != NULL ||
         strstr(r->curl_error, "packet length too long") != NULL))
        /* What OpenSSL says when the first bytes back are not a TLS record. */
        return is_em      ? "; hint: that port answers without TLS: if the EM serves plain HTTP "
                            "there, the endpoint must start with http://"
               : is_token ? "; hint: that port answers without TLS: if it serves plain HTTP, "
                            "tokenEndpoint must start with http://"
                          : "; hint: that port answers without TLS: if it serves plain HTTP, "
                            "the URL must start with http://";
    if (strncasecmp(url, "http://", 7) == 0 &&
        (r->curl_code == CURLE_GOT_NOTHING || r->curl_code == CURLE_RECV_ERROR) && r->status == 0)
        /* A TLS server closes on a plain-HTTP request without a word. */
        return is_em ? "; hint: if that port serves HTTPS, the endpoint must start with https://"
               : is_token ? "; hint: if that port serves HTTPS, tokenEndpoint must start with "
                            "https://"
                          : "; hint: if that port serves HTTPS, the URL must start with https://";
    if (strncasecmp(url, "https://", 8) == 0 && r->curl_code == CURLE_SSL_CONNECT_ERROR &&
        (strstr(r->curl_error, "SSL_ERROR_SYSCALL") != NULL ||
         strstr(r->curl_error, "Connection reset by peer") != NULL ||
         strstr(r->curl_error, "unexpected eof") != NULL))
        /* The handshake was cut without a TLS alert: the server there closed or reset the
         * connection on the ClientHello, which a TLS server never does. */
        return is_em ? "; hint: the connection was closed during the TLS handshake: check that "
                       "the endpoint's port serves HTTPS (not another service) and that nothing "
                       "on the path (a firewall, a load balancer) cuts TLS"
               : is_token ? "; hint: the connection was closed during the TLS handshake: check "
                            "that tokenEndpoint's port serves HTTPS (not another service) and "
                            "that nothing on the path (a firewall, a load balancer) cuts TLS"
                          : "; hint: the connection was closed during the TLS handshake: check "
                            "that the URL's port serves HTTPS (not another service) and that "
                            "nothing on the path (a firewall, a load balancer) cuts TLS";
    if (r->curl_code == CURLE_PEER_FAILED_VERIFICATION &&
        (strstr(r->curl_error, "unable to get local issuer certificate") != NULL ||
         strstr(r->curl_error, "self-signed certificate") != NULL ||
         strstr(r->curl_error, "self signed certificate") != NULL))
        return r->ca_given ? "; hint: the CA file or directory given does not hold the CA that "
                             "signed this certificate"
                           : "; hint: this host does not trust the CA that signed the certificate: "
                             "give that CA with --cacert FILE (or LCMCOORD_CACERT, or tls.cacert "
                             "in the configuration or a Lua client)";
    return "";
}

lcmc_status lcmc__transfer_error(const lcmc_transfer_result *r, const char *method, const char *url,
                                 const char *peer, lcmc_error *err)
{
    char *path = lcmc__url_path(url);
    const char *detail = r->curl_error[0] ? r->curl_error : curl_easy_strerror(r->curl_code);
    char *shown = lcmc__one_line(detail, strlen(detail), 200);
    lcmc_status status;
    int tunnel_refused = r->proxy && r->proxy_connect_status != 0 &&
                         (r->proxy_connect_status < 200 || r->proxy_connect_status > 299);
    if (r->proxy && r->proxy_tunnel_failed && r->curl_code == CURLE_OPERATION_TIMEDOUT) {
        /* The tunnel never came up in time: the EM was never reached. */
        status = LCMC_ETRANSPORT;
        lcmc__error_set(err, status,
                        "the proxy %s did not open the tunnel to %s in time: %s (%s %s)", r->proxy,
                        peer, shown ? shown : "?", method, path ? path : "?");
    } else if (r->proxy &&
               (tunnel_refused || r->curl_code == CURLE_COULDNT_RESOLVE_PROXY ||
                r->curl_code == CURLE_PROXY ||
                (r->curl_code == CURLE_COULDNT_CONNECT && r->proxy_connect_status == 0))) {
        /* The proxy's own failure: the EM was never reached, and must not be blamed. */
        status = LCMC_ETRANSPORT;
        char *target = tunnel_target(url);
        if (tunnel_refused)
            lcmc__error_set(
                err, status, "the proxy %s refused the tunnel to %s (%s): %ld %s (%s %s)", r->proxy,
                target ? target : "?", peer, r->proxy_connect_status,
                lcmc__reason_phrase(r->proxy_connect_status), method, path ? path : "?");
        else if (r->curl_code == CURLE_PROXY) /* a SOCKS proxy's refusal, say */
            lcmc__error_set(err, status, "the proxy %s failed on the way to %s: %s (%s %s)",
                            r->proxy, peer, shown ? shown : "?", method, path ? path : "?");
        else
            lcmc__error_set(err, status, "cannot reach the proxy %s (on the way to %s): %s (%s %s)",
                            r->proxy, peer, shown ? shown : "?", method, path ? path : "?");
        free(target);
    } else if (r->curl_code == CURLE_FILESIZE_EXCEEDED) {
        status = LCMC_EPROTOCOL;
        lcmc__error_set(err, status, "%s's answer is larger than the %zu-byte limit (%s %s)", peer,
                        r->body.cap, method, path ? path : "?");
    } else if (is_tls_failure(r->curl_code)) {
        status = LCMC_ETLS;
        lcmc__error_set(err, status, "TLS failure talking to %s: %s (%s %s)", peer,
                        shown ? shown : "?", method, path ? path : "?");
    } else if (r->curl_code == CURLE_OPERATION_TIMEDOUT) {
        status = LCMC_ETRANSPORT;
        lcmc__error_set(err, status, "no complete answer from %s in time: %s (%s %s)", peer,
                        shown ? shown : "?", method, path ? path : "?");
    } else if (never_reached(r->curl_code)) {
        status = LCMC_ETRANSPORT;
        lcmc__error_set(err, status, "cannot reach %s: %s (%s %s)", peer, shown ? shown : "?",
                        method, path ? path : "?");
    } else if (r->curl_code == CURLE_GOT_NOTHING) {
        status = LCMC_ETRANSPORT;
        lcmc__error_set(err, status, "%s closed the connection without answering (%s %s)", peer,
                        method, path ? path : "?");
    } else {
        /* The connection was there: what came back was cut short or is not HTTP. Pointing
         * the operator at the network would send them the wrong way. */
        status = LCMC_ETRANSPORT;
        lcmc__error_set(err, status, "%s's answer was cut short or malformed: %s (%s %s)", peer,
                        shown ? shown : "?", method, path ? path : "?");
    }
    const char *hint = lcmc__transfer_hint(r, url, peer);
    if (hint[0] != '\0' && err != NULL && err->message != NULL) {
        char *hinted = lcmc__asprintf("%s%s", err->message, hint);
        if (hinted != NULL) {
            free(err->message);
            err->message = hinted;
        }
    }
    err->http_status = (int)r->status;
    lcmc__error_set_request(err, method, url);
    free(shown);
    free(path);
    return status;
}
