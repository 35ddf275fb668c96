/*
 * Turning an EM's error answer into one clear line: the status with its reason phrase,
 * the ProblemDetails `detail` (or `title`, or a short plain-text body), and the request.
 * Everything taken from the answer is untrusted text and is made safe for a terminal.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
