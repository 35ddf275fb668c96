/*
 * The request journal behind GET /_em/journal: what each request looked like and what it
 * was answered, so that tests of a client can check what the client actually sent. Entries
 * are serialized when added (dumping a shared jansson tree from several threads is not
 * something to rely on) and kept in a ring bounded twice: at most `max` entries and at most
 * EM_JOURNAL_BYTES of text, oldest dropped. Each entry is reference-counted, so a dump takes
 * a snapshot of references under a short lock and streams them afterwards: no reader copies
 * the journal, and a slow reader pins only entries, never a copy of them. Entries dropped
 * from the ring while readers still hold them are "pinned"; readers taking snapshots at
 * different times under heavy traffic would pin a whole journal each, so pinned bytes have
 * the journal's budget too, and a reader still holding dropped entries while that budget
 * is exceeded is cut off (its connection closed) the next time it is asked for bytes.
 *
 * What is kept is decided by allow-lists, not deny-lists: header values are kept only for
 * headers known to carry no credentials, the Authorization value is reduced to a known
 * scheme, the query string and URL userinfo are hidden, form fields and JSON members are
 * kept only when their names (and, for forms, their values) are known to be harmless, and
 * the bodies of requests refused by authentication are not kept at all.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "em.h"

struct journal_entry {
    atomic_uint refs;
    atomic_bool dropped;   /* no longer in the ring: counted in pinned while it lives */
    atomic_size_t *pinned; /* the journal's count of dropped entries' bytes still alive */
    size_t len;
    char text[];
};

struct em_journal {
    pthread_mutex_t mu;
    struct journal_entry **ring;
    size_t max, head, count;
    size_t bytes, max_bytes;
    atomic_size_t pinned;
};

static void entry_release(struct journal_entry *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
        if (atomic_load(&e->dropped))
            atomic_fetch_sub(e->pinned, e->len);
        free(e);
    }
}

struct em_journal *em_journal_new(size_t max)
{
    struct em_journal *j = em_xmalloc(sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    j->ring = calloc(max, sizeof *j->ring);
    if (!j->ring)
        abort();
    j->max = max;
    j->head = j->count = 0;
    j->bytes = 0;
    j->max_bytes = EM_JOURNAL_BYTES;
    atomic_init(&j->pinned, 0);
    return j;
}

size_t em_journal_pinned(struct em_journal *j)
{
    return atomic_load(&j->pinned);
}

void em_journal_set_budget(struct em_journal *j, size_t max_bytes)
{
    pthread_mutex_lock(&j->mu);
    j->max_bytes = max_bytes;
    pthread_mutex_unlock(&j->mu);
}

/* Takes the oldest entry out of the ring; the caller releases it outside the lock. */
static struct journal_entry *drop_oldest_locked(struct em_journal *j)
{
    struct journal_entry *e = j->ring[j->head];
    j->ring[j->head] = NULL;
    j->head = (j->head + 1) % j->max;
    j->count--;
    j->bytes -= e->len;
    atomic_fetch_add(&j->pinned, e->len);
    atomic_store(&e->dropped, true);
    return e;
}

void em_journal_clear(struct em_journal *j)
{
    pthread_mutex_lock(&j->mu);
    size_t n = j->count;
    struct journal_entry **old = n ? em_xmalloc(n * sizeof *old) : NULL;
    for (size_t i = 0; i < n; i++)
        old[i] = drop_oldest_locked(j);
    j->head = 0;
    pthread_mutex_unlock(&j->mu);
    for (size_t i = 0; i < n; i++)
        entry_release(old[i]);
    free(old);
}

void em_journal_free(struct em_journal *j)
{
    if (!j)
        return;
    em_journal_clear(j);
    free(j->ring);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

size_t em_journal_count(struct em_journal *j)
{
    pthread_mutex_lock(&j->mu);
    size_t n = j->count;
    pthread_mutex_unlock(&j->mu);
    return n;
}

size_t em_journal_bytes(struct em_journal *j)
{
    pthread_mutex_lock(&j->mu);
    size_t n = j->bytes;
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

char *em_utf8_sanitize(const char *s, size_t len, size_t *outlen)
{
    const unsigned char *in = (const unsigned char *)s;
    char *out = em_xmalloc(len * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(in + i, len - i);
        if (k) {
            memcpy(out + o, in + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

void em_rfc3339(const struct timespec *ts, char buf[32])
{
    struct tm tm;
    time_t t = ts->tv_sec;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03dZ", (int)(ts->tv_nsec / 1000000) % 1000);
}

static json_t *clean_string(const char *s, size_t len)
{
    size_t n;
    char *clean = em_utf8_sanitize(s, len, &n);
    json_t *v = json_stringn(clean, n);
    free(clean);
    return v;
}

/* ---- what may be kept: allow-lists ---- */

/* Request headers that carry no credentials in any scheme this API or HTTP knows of. */
static bool harmless_header(const char *name)
{
    static const char *const names[] = {"accept",
                                        "accept-charset",
                                        "accept-encoding",
                                        "accept-language",
                                        "cache-control",
                                        "connection",
                                        "content-encoding",
                                        "content-length",
                                        "content-type",
                                        "date",
                                        "expect",
                                        "host",
                                        "if-match",
                                        "if-none-match",
                                        "keep-alive",
                                        "pragma",
                                        "te",
                                        "trailer",
                                        "transfer-encoding",
                                        "upgrade",
                                        "user-agent",
                                        "version",
                                        "via"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

/* The Authorization value as the journal shows it: a known scheme, never the rest. */
static char *redact_authorization(const char *value)
{
    static const char *const schemes[] = {"Basic",     "Bearer", "Digest", "DPoP",
                                          "Negotiate", "HOBA",   "Mutual", "AWS4-HMAC-SHA256"};
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strcspn(value, " \t");
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strlen(schemes[i]) == n && strncasecmp(value, schemes[i], n) == 0)
            return em_xasprintf("%s <redacted>", schemes[i]);
    return em_xstrdup("<redacted>");
}

/* The auth summary's scheme: an HTTP scheme or a token-endpoint client method we know. */
static json_t *auth_scheme(const char *scheme)
{
    static const char *const known[] = {"client_secret_basic", "client_secret_post",
                                        "tls_client_auth", "none"};
    if (!scheme[0])
        return json_null();
    char *shown = redact_authorization(scheme);
    json_t *v = NULL;
    if (strcmp(shown, "<redacted>") != 0) {
        shown[strcspn(shown, " ")] = '\0';
        v = json_string(shown);
    }
    for (size_t i = 0; !v && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(scheme, known[i]) == 0)
            v = json_string(known[i]);
    free(shown);
    return v ? v : json_string("<redacted>");
}

char *em_redact_header(const char *name, const char *value)
{
    if (strcasecmp(name, "authorization") == 0)
        return redact_authorization(value);
    return harmless_header(name) ? em_xstrdup(value) : em_xstrdup("<redacted>");
}

/* A path as the journal and the log show it: an allow-list of what this API's paths are
 * made of (RFC 3986 unreserved characters, '/', and percent-escapes of unreserved
 * characters). From the first anything else on (a query, `;` parameters, an escaped `?`
 * or `#`, a colon, a credential's odd characters) only "<redacted>" is shown, behind a `?`
 * when that is where the query began. */
static bool plain_path_char(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/';
}

static int hex_value(unsigned char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

char *em_redact_path(const char *path)
{
    size_t n = 0;
    for (;;) {
        unsigned char ch = (unsigned char)path[n];
        if (plain_path_char(ch)) {
            n++;
            continue;
        }
        if (ch == '%' && hex_value((unsigned char)path[n + 1]) >= 0 &&
            hex_value((unsigned char)path[n + 2]) >= 0) {
            int decoded =
                hex_value((unsigned char)path[n + 1]) * 16 + hex_value((unsigned char)path[n + 2]);
            if (decoded != '/' && plain_path_char((unsigned char)decoded)) {
                n += 3;
                continue;
            }
        }
        break;
    }
    if (!path[n])
        return em_xstrndup(path, n);
    return em_xasprintf("%.*s%s<redacted>", (int)n, path, path[n] == '?' ? "?" : "");
}

/* A method as the journal and the log show it: the standard ones (RFC 9110 §9), and
 * anything else as "OTHER", since a client could put anything there. */
const char *em_shown_method(const char *method)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "OTHER";
}

/* Top-level members of a LcmCoordRequest (SOL 002 §10.5.2.3): the API's own payload. */
static bool harmless_member(const char *name)
{
    static const char *const names[] = {"vnfInstanceId",    "vnfLcmOpOccId",
                                        "lcmOperationType", "coordinationActionName",
                                        "inputParams",      "_links"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* The body as the journal keeps it (valid UTF-8, at most EM_JOURNAL_BODY_MAX): a JSON object
 * made only of LcmCoordRequest members verbatim, otherwise those members alone; a form
 * (on /token) with only its harmless fields; anything else not at all. *redacted tells
 * whether something was left out. */
static char *journal_body(const struct em_request *rq, bool refused, size_t *len, bool *redacted)
{
    *redacted = false;
    *len = 0;
    if (!rq->body || !rq->body_len)
        return em_xstrdup("");
    if (refused) {
        *redacted = true;
        return em_xstrdup("");
    }
    size_t n;
    char *clean = em_utf8_sanitize(rq->body, rq->body_len, &n);
    if (strcmp(rq->path, EM_TOKEN_PATH) == 0) {
        /* em_api.c hands the form here already reduced to its harmless fields. */
        *len = n;
        return clean;
    }
    json_t *doc = json_loadb(clean, n, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        free(clean);
        *redacted = true;
        return em_xstrdup("");
    }
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(doc, tmp, key, v)
    {
        if (!harmless_member(key)) {
            json_object_del(doc, key);
            *redacted = true;
        }
    }
    if (*redacted) {
        free(clean);
        clean = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        n = strlen(clean);
    }
    json_decref(doc);
    *len = n;
    return clean;
}

static json_t *headers_object(const struct em_headers *h)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < h->n; i++) {
        char *value = em_redact_header(h->v[i].name, h->v[i].value);
        json_t *name = clean_string(h->v[i].name, strlen(h->v[i].name));
        const char *key = json_string_value(name);
        json_t *prev = json_object_get(obj, key);
        /* Repeated fields are one list in HTTP semantics: join them as a proxy would. */
        if (prev) {
            char *joined = em_xasprintf("%s, %s", json_string_value(prev), value);
            free(value);
            value = joined;
        }
        json_object_set_new(obj, key, clean_string(value, strlen(value)));
        json_decref(name);
        free(value);
    }
    return obj;
}

void em_journal_add(struct em_journal *j, const struct em_request *rq, unsigned long seq,
                    unsigned status, const struct em_auth *auth)
{
    char when[32];
    em_rfc3339(&rq->received, when);
    json_t *e = json_object();
    json_object_set_new(e, "seq", json_integer((json_int_t)seq));
    json_object_set_new(e, "time", json_string(when));
    json_object_set_new(e, "method", json_string(em_shown_method(rq->method)));
    char *path = em_redact_path(rq->path);
    json_object_set_new(e, "path", clean_string(path, strlen(path)));
    free(path);
    json_object_set_new(e, "headers", headers_object(&rq->headers));
    /* A request refused by authentication is someone without credentials: keep nothing. */
    bool refused = auth && !auth->ok && (status == 401 || status == 403);
    size_t blen;
    bool redacted;
    char *body = journal_body(rq, refused, &blen, &redacted);
    size_t keep = blen > EM_JOURNAL_BODY_MAX ? EM_JOURNAL_BODY_MAX : blen;
    while (keep < blen && keep > 0 && ((unsigned char)body[keep] & 0xc0) == 0x80)
        keep--; /* never cut a UTF-8 sequence in half */
    json_object_set_new(e, "body", json_stringn(body, keep));
    free(body);
    if (keep < blen || rq->body_too_large)
        json_object_set_new(e, "bodyTruncated", json_true());
    if (redacted)
        json_object_set_new(e, "bodyRedacted", json_true());
    json_object_set_new(e, "status", json_integer(status));
    if (auth && auth->present) {
        json_t *a = json_object();
        json_object_set_new(a, "scheme", auth_scheme(auth->scheme));
        json_object_set_new(
            a, "user", auth->user ? clean_string(auth->user, strlen(auth->user)) : json_null());
        json_object_set_new(a, "ok", json_boolean(auth->ok));
        if (auth->token_seq)
            json_object_set_new(a, "tokenSeq", json_integer((json_int_t)auth->token_seq));
        json_object_set_new(e, "auth", a);
    }
    if (rq->peer) {
        /* Which certificate the client used, so tests can check it chose the right one. */
        const struct em_peer *p = rq->peer;
        json_t *t = json_object();
        json_object_set_new(t, "version", json_string(p->version));
        json_object_set_new(t, "clientCertSubject",
                            p->cert_present ? clean_string(p->subject_cn, strlen(p->subject_cn))
                                            : json_null());
        json_object_set_new(t, "clientCertThumbprint",
                            p->cert_present ? json_string(p->thumbprint) : json_null());
        json_object_set_new(t, "clientCertVerified", json_boolean(p->cert_verified));
        json_object_set_new(e, "tls", t);
    }
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    size_t n = strlen(text);
    struct journal_entry *entry = em_xmalloc(sizeof *entry + n + 1);
    atomic_init(&entry->refs, 1);
    atomic_init(&entry->dropped, false);
    entry->pinned = &j->pinned;
    entry->len = n;
    memcpy(entry->text, text, n + 1);
    free(text);

    /* The oldest entries go until the new one fits (by count and by bytes), however many
     * that takes: the newest request is the one a test is about to look for. Those dropped
     * are released after the lock, since freeing many entries need not hold up requests. */
    struct journal_entry **dropped = NULL;
    size_t ndropped = 0, room = 0;
    pthread_mutex_lock(&j->mu);
    bool fits = n <= j->max_bytes;
    while (fits && j->count && (j->count == j->max || j->bytes + n > j->max_bytes)) {
        if (ndropped == room) {
            room = room ? 2 * room : 16;
            struct journal_entry **grown = realloc(dropped, room * sizeof *dropped);
            if (!grown)
                break;
            dropped = grown;
        }
        dropped[ndropped++] = drop_oldest_locked(j);
    }
    if (fits && j->count < j->max && j->bytes + n <= j->max_bytes) {
        j->ring[(j->head + j->count) % j->max] = entry;
        j->count++;
        j->bytes += n;
        entry = NULL;
    }
    pthread_mutex_unlock(&j->mu);
    for (size_t i = 0; i < ndropped; i++)
        entry_release(dropped[i]);
    free(dropped);
    entry_release(entry); /* larger than the whole budget: not kept */
}

/* ---- reading: a snapshot of references, streamed ---- */

struct em_journal_reader {
    struct em_journal *journal;
    struct journal_entry **v;
    size_t n;
    size_t at;     /* entry being sent */
    size_t offset; /* bytes of it already sent; SIZE_MAX before its separator */
    bool opened, closed;
};

struct em_journal_reader *em_journal_reader_new(struct em_journal *j)
{
    /* New readers wait while the old ones hold a journal's worth of dropped entries: with
     * those cut off as they fall behind, the journal and its readers stay within three
     * budgets (the ring, what may be pinned, and one more snapshot going stale). */
    if (atomic_load(&j->pinned) >= j->max_bytes)
        return NULL;
    struct em_journal_reader *r = em_xmalloc(sizeof *r);
    memset(r, 0, sizeof *r);
    r->journal = j;
    pthread_mutex_lock(&j->mu);
    r->n = j->count;
    r->v = r->n ? em_xmalloc(r->n * sizeof *r->v) : NULL;
    for (size_t i = 0; i < r->n; i++) {
        r->v[i] = j->ring[(j->head + i) % j->max];
        atomic_fetch_add(&r->v[i]->refs, 1);
    }
    pthread_mutex_unlock(&j->mu);
    r->offset = SIZE_MAX;
    return r;
}

ssize_t em_journal_reader_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos; /* called in order, once per chunk */
    struct em_journal_reader *r = cls;
    size_t o = 0;
    /* Too far behind while pinned entries are over budget: cut off, entries let go. */
    if (r->at < r->n && atomic_load(&r->v[r->at]->dropped) &&
        atomic_load(&r->journal->pinned) > r->journal->max_bytes)
        return -2; /* MHD_CONTENT_READER_END_WITH_ERROR: the connection is closed */
    if (!r->opened && o < max) {
        buf[o++] = '[';
        r->opened = true;
    }
    while (o < max && r->at < r->n) {
        struct journal_entry *e = r->v[r->at];
        if (r->offset == SIZE_MAX) {
            if (r->at)
                buf[o++] = ',';
            r->offset = 0;
            continue;
        }
        size_t k = e->len - r->offset;
        if (k > max - o)
            k = max - o;
        memcpy(buf + o, e->text + r->offset, k);
        o += k;
        r->offset += k;
        if (r->offset == e->len) {
            /* Sent: let it go now, so a slow reader pins less and less. */
            entry_release(e);
            r->v[r->at] = NULL;
            r->at++;
            r->offset = SIZE_MAX;
        }
    }
    if (r->at == r->n && !r->closed && o < max) {
        buf[o++] = ']';
        r->closed = true;
    }
    if (o == 0 && r->closed)
        return -1; /* end of stream (MHD_CONTENT_READER_END_OF_STREAM) */
    return (ssize_t)o;
}

void em_journal_reader_free(void *cls)
{
    struct em_journal_reader *r = cls;
    if (!r)
        return;
    for (size_t i = r->at; i < r->n; i++)
        entry_release(r->v[i]);
    free(r->v);
    free(r);
}

char *em_journal_dump(struct em_journal *j)
{
    struct em_journal_reader *r = em_journal_reader_new(j);
    if (!r)
        return em_xstrdup("[]");
    size_t cap = 4096, len = 0;
    char *out = em_xmalloc(cap);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            out = em_xrealloc(out, cap);
        }
        ssize_t got = em_journal_reader_read(r, len, out + len, cap - len - 1);
        if (got < 0)
            break;
        len += (size_t)got;
    }
    out[len] = '\0';
    em_journal_reader_free(r);
    return out;
}
