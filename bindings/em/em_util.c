/*
 * Plumbing shared by the EM simulator's modules: allocation that aborts on exhaustion (a
 * test tool cannot answer anything useful without memory), header lists and the response
 * object the protocol logic fills in before the HTTP glue turns it into a real answer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "em.h"

void *em_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("lcmcoord em: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *em_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("lcmcoord em: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *em_xstrndup(const char *s, size_t n)
{
    char *p = em_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *em_xstrdup(const char *s)
{
    return em_xstrndup(s, strlen(s));
}

char *em_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = em_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void em_headers_add(struct em_headers *h, const char *name, const char *value)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->v = em_xrealloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n].name = em_xstrdup(name);
    h->v[h->n].value = em_xstrdup(value);
    h->n++;
}

const char *em_headers_get(const struct em_headers *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->v[i].name, name) == 0)
            return h->v[i].value;
    return NULL;
}

void em_headers_free(struct em_headers *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

void em_response_free(struct em_response *rs)
{
    em_headers_free(&rs->headers);
    free(rs->body);
    rs->body = NULL;
    rs->body_len = 0;
    if (rs->stream_free && rs->stream_ctx)
        rs->stream_free(rs->stream_ctx);
    rs->stream_ctx = NULL;
    rs->stream_read = NULL;
    json_decref(rs->log_fields);
    rs->log_fields = NULL;
}

void em_request_copy(const struct em_request *src, struct em_request *dst)
{
    *dst = *src;
    memset(&dst->headers, 0, sizeof dst->headers);
    for (size_t i = 0; i < src->headers.n; i++)
        em_headers_add(&dst->headers, src->headers.v[i].name, src->headers.v[i].value);
    dst->method = em_xstrdup(src->method);
    dst->path = em_xstrdup(src->path);
    dst->body = src->body ? em_xstrndup(src->body, src->body_len) : NULL;
}

void em_request_free_copy(struct em_request *rq)
{
    em_headers_free(&rq->headers);
    free((char *)rq->method);
    free((char *)rq->path);
    free((char *)rq->body);
    memset(rq, 0, sizeof *rq);
}

void em_response_set_body(struct em_response *rs, char *body, const char *content_type)
{
    free(rs->body);
    rs->body = body;
    rs->body_len = body ? strlen(body) : 0;
    if (content_type)
        em_headers_add(&rs->headers, "Content-Type", content_type);
}

void em_response_problem(struct em_response *rs, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char detail[1024];
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    /* Details may quote client input, which need not be UTF-8; jansson insists on it. */
    char *clean = em_utf8_sanitize(detail, strlen(detail), NULL);
    json_t *problem = em_problem(status, clean);
    free(clean);
    rs->status = status;
    em_response_set_body(rs, json_dumps(problem, JSON_COMPACT), "application/problem+json");
    json_decref(problem);
}

void em_base64url(const unsigned char *in, size_t n, char *out)
{
    /* EVP_EncodeBlock writes padded standard base64; RFC 4648 §5 wants -_ and no '='. */
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}
