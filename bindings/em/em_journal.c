/*
 * The request journal behind GET /_em/journal: what each request looked like and what it
 * was answered, so that tests of a client can check what the client actually sent. Entries
 * are serialized when added (dumping a shared jansson tree from several threads is not
 * something to rely on) and kept in a ring of at most `max`, oldest dropped. Credentials
 * never enter it: the Authorization value is reduced to its scheme, the auth summary keeps
 * only the user (or OAuth client) name, and token request bodies arrive already redacted.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "em.h"

struct em_journal {
    pthread_mutex_t mu;
    char **ring;
    size_t max, head, count;
};

struct em_journal *em_journal_new(size_t max)
{
    struct em_journal *j = em_xmalloc(sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    j->ring = calloc(max, sizeof *j->ring);
    if (!j->ring)
        abort();
    j->max = max;
    j->head = j->count = 0;
    return j;
}

void em_journal_clear(struct em_journal *j)
{
    pthread_mutex_lock(&j->mu);
    for (size_t i = 0; i < j->count; i++) {
        size_t k = (j->head + i) % j->max;
        free(j->ring[k]);
        j->ring[k] = NULL;
    }
    j->head = j->count = 0;
    pthread_mutex_unlock(&j->mu);
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

static json_t *headers_object(const struct em_headers *h)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < h->n; i++) {
        char *value = strcasecmp(h->v[i].name, "authorization") == 0 ? em_auth_redact(h->v[i].value)
                                                                     : em_xstrdup(h->v[i].value);
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
    json_object_set_new(e, "method", clean_string(rq->method, strlen(rq->method)));
    json_object_set_new(e, "path", clean_string(rq->path, strlen(rq->path)));
    json_object_set_new(e, "headers", headers_object(&rq->headers));
    size_t keep = rq->body_len > EM_JOURNAL_BODY_MAX ? EM_JOURNAL_BODY_MAX : rq->body_len;
    json_object_set_new(e, "body", clean_string(rq->body ? rq->body : "", keep));
    if (keep < rq->body_len || rq->body_too_large)
        json_object_set_new(e, "bodyTruncated", json_true());
    json_object_set_new(e, "status", json_integer(status));
    if (auth && auth->present) {
        json_t *a = json_object();
        json_object_set_new(a, "scheme",
                            auth->scheme[0] ? clean_string(auth->scheme, strlen(auth->scheme))
                                            : json_null());
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

    char *dropped = NULL;
    pthread_mutex_lock(&j->mu);
    if (j->count == j->max) {
        dropped = j->ring[j->head];
        j->ring[j->head] = text;
        j->head = (j->head + 1) % j->max;
    } else {
        j->ring[(j->head + j->count) % j->max] = text;
        j->count++;
    }
    pthread_mutex_unlock(&j->mu);
    free(dropped);
}

char *em_journal_dump(struct em_journal *j)
{
    pthread_mutex_lock(&j->mu);
    size_t total = 3;
    for (size_t i = 0; i < j->count; i++)
        total += strlen(j->ring[(j->head + i) % j->max]) + 1;
    char *out = em_xmalloc(total);
    size_t o = 0;
    out[o++] = '[';
    for (size_t i = 0; i < j->count; i++) {
        const char *entry = j->ring[(j->head + i) % j->max];
        size_t n = strlen(entry);
        if (i)
            out[o++] = ',';
        memcpy(out + o, entry, n);
        o += n;
    }
    pthread_mutex_unlock(&j->mu);
    out[o++] = ']';
    out[o] = '\0';
    return out;
}
