/*
 * What the runtime says, in words and in fields. An EM's error answer becomes one clear
 * line: the status with its reason phrase, the ProblemDetails `detail` (or `title`, or a
 * short plain-text body), and the request; everything taken from the answer is untrusted
 * text and is made safe for a terminal. Progress becomes log events (events.h): fields for
 * a program, with the line a person reads made alongside rather than parsed afterwards.
 */
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "internal.h"

/* ---- log events ----------------------------------------------------------------------- */

const char *lcmc_event_name(lcmc_event_type type)
{
    switch (type) {
    case LCMC_EVENT_REQUEST:
        return "request";
    case LCMC_EVENT_RESPONSE:
        return "response";
    case LCMC_EVENT_WAIT:
        return "wait";
    case LCMC_EVENT_RETRY:
        return "retry";
    case LCMC_EVENT_RESULT:
        return "result";
    case LCMC_EVENT_FAILED:
        return "failed";
    case LCMC_EVENT_CANCEL:
        return "cancel";
    case LCMC_EVENT_TOKEN:
        return "token";
    case LCMC_EVENT_CREDENTIALS:
        return "credentials";
    case LCMC_EVENT_PROXY:
        return "proxy";
    case LCMC_EVENT_INTERRUPT:
        return "interrupt";
    case LCMC_EVENT_WARNING:
        return "warning";
    case LCMC_EVENT_SSH:
        return "ssh";
    case LCMC_EVENT_NOTE:
        return "note";
    case LCMC_EVENT_MESSAGE:
    default:
        return "message";
    }
}

lcmc_event lcmc__event_make(lcmc_event_type type, lcmc_log_level level,
                            const lcmc_event_subject *about)
{
    lcmc_event event;
    memset(&event, 0, sizeof event);
    event.type = type;
    event.level = level;
    event.elapsed = -1;
    event.wait = -1;
    event.wait_asked = -1;
    event.time_left = -1;
    if (about != NULL) {
        event.action = about->action ? *about->action : NULL;
        event.coordination_id = about->id ? *about->id : NULL;
    }
    return event;
}

static void emit_va(lcmc_engine *engine, lcmc_event *event, const char *fmt, va_list ap)
{
    if (!lcmc__log_enabled(engine, event->level))
        return;
    char *message = lcmc__vasprintf(fmt, ap);
    if (message == NULL)
        return;
    event->message = message;
    lcmc__event_deliver(engine, event);
    event->message = NULL;
    free(message);
}

void lcmc__event_emit(lcmc_engine *engine, lcmc_event *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_va(engine, event, fmt, ap);
    va_end(ap);
}

void lcmc__log_as(lcmc_engine *engine, lcmc_log_level level, lcmc_event_type type, const char *fmt,
                  ...)
{
    lcmc_event event = lcmc__event_make(type, level, NULL);
    va_list ap;
    va_start(ap, fmt);
    emit_va(engine, &event, fmt, ap);
    va_end(ap);
}

void lcmc__log(lcmc_engine *engine, lcmc_log_level level, const char *fmt, ...)
{
    lcmc_event event = lcmc__event_make(LCMC_EVENT_NOTE, level, NULL);
    va_list ap;
    va_start(ap, fmt);
    emit_va(engine, &event, fmt, ap);
    va_end(ap);
}

void lcmc_engine_log(lcmc_engine *engine, lcmc_log_level level, const char *message)
{
    if (engine == NULL || message == NULL || !lcmc__log_enabled(engine, level))
        return;
    lcmc_event event = lcmc__event_make(LCMC_EVENT_MESSAGE, level, NULL);
    event.message = message;
    lcmc__event_deliver(engine, &event);
}

void lcmc__log_request(lcmc_engine *engine, const lcmc_event_subject *about, const char *method,
                       const char *url)
{
    if (!lcmc__log_enabled(engine, LCMC_LOG_INFO))
        return;
    lcmc_event event = lcmc__event_make(LCMC_EVENT_REQUEST, LCMC_LOG_INFO, about);
    event.method = method;
    event.url = url;
    lcmc__event_emit(engine, &event, "%s %s", method, url);
}

void lcmc__log_response(lcmc_engine *engine, const lcmc_event_subject *about, const char *method,
                        const char *url, long status, double elapsed)
{
    if (!lcmc__log_enabled(engine, LCMC_LOG_INFO))
        return;
    lcmc_event event = lcmc__event_make(LCMC_EVENT_RESPONSE, LCMC_LOG_INFO, about);
    event.method = method;
    event.url = url;
    event.status = (int)status;
    event.elapsed = elapsed;
    lcmc__event_emit(engine, &event, "%ld %s (%.0f ms)", status, lcmc__reason_phrase(status),
                     elapsed * 1000.0);
}

/* ---- error lines ---------------------------------------------------------------------- */

const char *lcmc__reason_phrase(long status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

char *lcmc__one_line(const char *text, size_t length, size_t max)
{
    char *out = malloc(max + 4);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    int pending_space = 0;
    size_t i = 0;
    for (; i < length && n < max; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f || c == ' ') {
            pending_space = n > 0;
            continue;
        }
        if (pending_space) {
            out[n++] = ' ';
            pending_space = 0;
            if (n >= max)
                break;
        }
        out[n++] = (char)c;
    }
    /* Never end inside a UTF-8 sequence when the text was cut. */
    int cut = 0;
    for (size_t j = i; j < length; j++) {
        unsigned char c = (unsigned char)text[j];
        if (!(c < 0x20 || c == 0x7f || c == ' ')) {
            cut = 1;
            break;
        }
    }
    if (cut) {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
            n--;
        if (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0xC0)
            n--;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

json_t *lcmc__decode_problem(const char *body, size_t length)
{
    if (body == NULL || length == 0)
        return NULL;
    json_t *doc = json_loadb(body, length, JSON_REJECT_DUPLICATES, NULL);
    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* A short body is worth quoting when it reads as text: a proxy's "upstream timed out"
 * says more than any summary. HTML pages and binary blobs are only described. */
static int is_quotable_text(const char *content_type, const char *body, size_t length)
{
    if (length == 0 || length > 512)
        return 0;
    if (content_type && strncmp(content_type, "text/html", 9) == 0)
        return 0;
    if (content_type && !(strncmp(content_type, "text/", 5) == 0))
        return 0;
    for (size_t i = 0; i < length; i++)
        if (body[i] == '\0' || body[i] == '<')
            return 0;
    return 1;
}

char *lcmc__http_error_message(long status, const json_t *problem, const char *content_type,
                               const char *body, size_t body_length, const char *method,
                               const char *url)
{
    const char *detail = NULL;
    const char *title = NULL;
    if (problem) {
        detail = json_string_value(json_object_get(problem, "detail"));
        title = json_string_value(json_object_get(problem, "title"));
    }
    char *explanation = NULL;
    if (detail && *detail)
        explanation = lcmc__one_line(detail, strlen(detail), 300);
    else if (title && *title)
        explanation = lcmc__one_line(title, strlen(title), 300);
    else if (problem)
        explanation = lcmc__strdup("no detail given");
    else if (is_quotable_text(content_type, body, body_length))
        explanation = lcmc__one_line(body, body_length, 200);
    else if (body_length > 0) {
        char *type = content_type ? lcmc__one_line(content_type, strlen(content_type), 60) : NULL;
        explanation = lcmc__asprintf("%s body of %zu bytes", type ? type : "untyped", body_length);
        free(type);
    } else
        explanation = lcmc__strdup("empty body");

    char *path = lcmc__url_path(url);
    const char *reason = lcmc__reason_phrase(status);
    char *message =
        lcmc__asprintf("EM answered %ld%s%s: %s (%s %s)", status, *reason ? " " : "", reason,
                       explanation ? explanation : "?", method, path ? path : "?");
    free(explanation);
    free(path);
    return message;
}
