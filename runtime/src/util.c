/*
 * Small shared pieces of the runtime: status names, error detail, clocks, capped buffers
 * and string helpers. Nothing here talks to the network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "engine.h"
#include "lcmcoord/json.h"

const char *lcmc_strerror(lcmc_status status)
{
    switch (status) {
    case LCMC_OK:
        return "success";
    case LCMC_EUSAGE:
        return "invalid argument";
    case LCMC_EINVALID:
        return "invalid coordination request";
    case LCMC_ETRANSPORT:
        return "transport failure";
    case LCMC_ETLS:
        return "TLS failure";
    case LCMC_EAUTH:
        return "authentication failure";
    case LCMC_EHTTP:
        return "EM answered an error";
    case LCMC_EPROTOCOL:
        return "protocol violation";
    case LCMC_EDEADLINE:
        return "deadline exceeded";
    case LCMC_ECANCELLED:
        return "cancelled";
    case LCMC_ENOMEM:
        return "out of memory";
    }
    return "unknown error";
}

const char *lcmc_status_name(lcmc_status status)
{
    switch (status) {
    case LCMC_OK:
        return "ok";
    case LCMC_EUSAGE:
        return "usage";
    case LCMC_EINVALID:
        return "invalid_request";
    case LCMC_ETRANSPORT:
        return "transport";
    case LCMC_ETLS:
        return "tls";
    case LCMC_EAUTH:
        return "auth";
    case LCMC_EHTTP:
        return "http";
    case LCMC_EPROTOCOL:
        return "protocol";
    case LCMC_EDEADLINE:
        return "deadline";
    case LCMC_ECANCELLED:
        return "cancelled";
    case LCMC_ENOMEM:
        return "nomem";
    }
    return "unknown";
}

const char *lcmc_result_name(lcmc_result result)
{
    switch (result) {
    case LCMC_RESULT_CONTINUE:
        return "CONTINUE";
    case LCMC_RESULT_ABORT:
        return "ABORT";
    case LCMC_RESULT_CANCELLED:
        return "CANCELLED";
    case LCMC_RESULT_NONE:
        break;
    }
    return NULL;
}

lcmc_result lcmc__result_from_name(const char *name)
{
    if (name == NULL)
        return LCMC_RESULT_NONE;
    if (strcmp(name, "CONTINUE") == 0)
        return LCMC_RESULT_CONTINUE;
    if (strcmp(name, "ABORT") == 0)
        return LCMC_RESULT_ABORT;
    if (strcmp(name, "CANCELLED") == 0)
        return LCMC_RESULT_CANCELLED;
    return LCMC_RESULT_NONE;
}

void lcmc_free(void *ptr)
{
    free(ptr);
}

/* ---- errors ------------------------------------------------------------------------- */

void lcmc__error_clear(lcmc_error *err)
{
    free(err->message);
    free(err->problem_json);
    json_decref(err->problem);
    free(err->method);
    free(err->url);
    memset(err, 0, sizeof *err);
}

void lcmc__error_set(lcmc_error *err, lcmc_status status, const char *fmt, ...)
{
    lcmc__error_clear(err);
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    err->message = lcmc__vasprintf(fmt, ap);
    va_end(ap);
}

void lcmc__error_set_request(lcmc_error *err, const char *method, const char *url)
{
    free(err->method);
    free(err->url);
    err->method = method ? lcmc__strdup(method) : NULL;
    err->url = url ? lcmc__strdup(url) : NULL;
}

void lcmc__error_move(lcmc_error *dst, lcmc_error *src)
{
    lcmc__error_clear(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

lcmc_status lcmc_error_status(const lcmc_error *err)
{
    return err ? err->status : LCMC_EUSAGE;
}

const char *lcmc_error_message(const lcmc_error *err)
{
    if (err == NULL)
        return "no error";
    if (err->message)
        return err->message;
    /* An allocation failure may have left the message out: the status still speaks. */
    return lcmc_strerror(err->status);
}

int lcmc_error_http_status(const lcmc_error *err)
{
    return err ? err->http_status : 0;
}

const char *lcmc_error_problem_json(const lcmc_error *err)
{
    return err ? err->problem_json : NULL;
}

const json_t *lcmc_error_problem_value(const lcmc_error *err)
{
    return err ? err->problem : NULL;
}

const char *lcmc_error_method(const lcmc_error *err)
{
    return err ? err->method : NULL;
}

const char *lcmc_error_url(const lcmc_error *err)
{
    return err ? err->url : NULL;
}

/* ---- time --------------------------------------------------------------------------- */

/* The unit tests' fake clock (lcmc__use_clock), or NULL for the system's: one pointer
 * read per call. */
static const lcmc_clock *clock_override;

void lcmc__use_clock(const lcmc_clock *clock)
{
    clock_override = clock;
}

double lcmc__now(void)
{
    if (clock_override)
        return clock_override->monotonic(clock_override->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
#if defined(LCMC_DEBUGASSERTS)
    /* Every deadline and wait relies on this never going back. */
    static _Thread_local double last_now;
    LCMC_DEBUGASSERT(now >= last_now);
    last_now = now;
#endif
    return now;
}

double lcmc__wall_now(void)
{
    if (clock_override)
        return clock_override->wall(clock_override->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void lcmc__assert_failed(const char *expression, const char *file, int line, const char *function)
{
    fprintf(stderr, "lcmcoord: internal invariant broken at %s:%d (%s): %s\n", file, line, function,
            expression);
    abort();
}

void lcmc__format_time(double epoch_seconds, char buf[32])
{
    time_t whole = (time_t)epoch_seconds;
    int millis = (int)((epoch_seconds - (double)whole) * 1000.0);
    if (millis < 0)
        millis = 0;
    if (millis > 999)
        millis = 999;
    struct tm tm;
    gmtime_r(&whole, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ".%03dZ", millis);
}

/* ---- buffers and strings ------------------------------------------------------------- */

int lcmc__buffer_append(lcmc_buffer *buf, const void *data, size_t length)
{
    if (buf->overflowed)
        return -1;
    if (buf->cap && length > buf->cap - buf->length) {
        buf->overflowed = 1;
        return -1;
    }
    size_t need = buf->length + length + 1;
    if (need > buf->allocated) {
        /* The first block fits what came (a body usually comes whole, in one piece): a
         * kilobyte block for a 600-byte answer made glibc consolidate its free lists on
         * every request (docs/benchmarks.md). Then it doubles. */
        size_t grown = buf->allocated ? buf->allocated : (need + 63) & ~(size_t)63;
        while (grown < need)
            grown *= 2;
        /* Moved by hand, not realloc: the old block is wiped before it is freed, since a
         * body may be a token answer. */
        char *bigger = malloc(grown);
        if (bigger == NULL)
            return -1;
        if (buf->data) {
            memcpy(bigger, buf->data, buf->length);
            OPENSSL_cleanse(buf->data, buf->allocated);
            free(buf->data);
        }
        buf->data = bigger;
        buf->allocated = grown;
    }
    memcpy(buf->data + buf->length, data, length);
    buf->length += length;
    buf->data[buf->length] = '\0';
    return 0;
}

void lcmc__buffer_free(lcmc_buffer *buf)
{
    if (buf->data)
        OPENSSL_cleanse(buf->data, buf->allocated);
    free(buf->data);
    buf->data = NULL;
    buf->length = buf->allocated = 0;
    buf->overflowed = 0;
}

char *lcmc__strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

char *lcmc__vasprintf(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *out = NULL;
    if (n >= 0 && (out = malloc((size_t)n + 1)) != NULL)
        vsnprintf(out, (size_t)n + 1, fmt, again);
    va_end(again);
    return out;
}

char *lcmc__asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = lcmc__vasprintf(fmt, ap);
    va_end(ap);
    return out;
}

void lcmc__free_secret(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}
