/*
 * URL handling on libcurl's URL API: checking the apiRoot, joining paths to it, resolving
 * a Location header against the request it answered, deriving a coordination's cancel
 * URL, and comparing origins so that credentials never travel to a host they were not
 * meant for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void say(char *why, size_t why_size, const char *text)
{
    if (why && why_size)
        snprintf(why, why_size, "%s", text);
}

/* A message showing the endpoint as given (fmt has one %s), so that the operator sees what
 * was wrong with it: at most its first 100 bytes, controls shown as '?' to keep the message
 * one line, and nothing of it when it may carry credentials (user:password@). */
static void say_value(char *why, size_t why_size, const char *fmt, const char *endpoint)
{
    if (!why || !why_size)
        return;
    char shown[101];
    size_t n = 0;
    if (strchr(endpoint, '@') != NULL)
        endpoint = "(not shown: it has an @)";
    for (; endpoint[n] != '\0' && n + 1 < sizeof shown; n++) {
        unsigned char c = (unsigned char)endpoint[n];
        shown[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    shown[n] = '\0';
    snprintf(why, why_size, fmt, shown);
}

static int is_http_scheme(const char *scheme)
{
    return scheme && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
}

char *lcmc__normalise_endpoint(const char *endpoint, char *why, size_t why_size)
{
    if (endpoint == NULL || *endpoint == '\0') {
        say(why, why_size, "endpoint is empty");
        return NULL;
    }
    CURLU *u = curl_url();
    if (u == NULL)
        return NULL;
    char *result = NULL;
    char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL;
    /* No CURLU_GUESS_SCHEME: "em.example:6789" is a mistake worth naming, not guessing. */
    if (strstr(endpoint, "://") == NULL) {
        say_value(why, why_size, "endpoint '%s' is missing its scheme (http:// or https://)",
                  endpoint);
        goto done;
    }
    if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK) {
        say_value(why, why_size, "endpoint '%s' is not a valid absolute URL", endpoint);
        goto done;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (!is_http_scheme(scheme)) {
        say_value(why, why_size, "endpoint '%s' must be an http:// or https:// URL", endpoint);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == NULL || !*host) {
        say(why, why_size, "endpoint has no host");
        goto done;
    }
    char *user = NULL;
    int has_user = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user;
    curl_free(user);
    if (has_user) {
        /* Credentials in a URL end up in logs and messages: they belong in
         * `authentication`, which is never printed. */
        say(why, why_size, "endpoint must not carry user:password@; use authentication");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query) {
        say(why, why_size, "endpoint must not have a query string");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK && fragment) {
        say(why, why_size, "endpoint must not have a fragment");
        goto done;
    }
    char *full = NULL;
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
        goto done;
    size_t n = strlen(full);
    while (n > 0 && full[n - 1] == '/')
        n--;
    result = malloc(n + 1);
    if (result) {
        memcpy(result, full, n);
        result[n] = '\0';
    }
    curl_free(full);
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return result;
}

char *lcmc__url_join(const char *endpoint, const char *path)
{
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    while (*path == '/')
        path++;
    return lcmc__asprintf("%.*s/%s", (int)n, endpoint, path);
}

char *lcmc__resolve_location(const char *base, const char *location, char *why, size_t why_size)
{
    if (location == NULL || *location == '\0') {
        say(why, why_size, "the Location header is empty");
        return NULL;
    }
    CURLU *u = curl_url();
    if (u == NULL)
        return NULL;
    char *result = NULL;
    char *scheme = NULL;
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) {
        say(why, why_size, "the request URL does not parse");
        goto done;
    }
    /* Setting a URL on a handle that holds one resolves it relative to the old one. */
    if (curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK) {
        say(why, why_size, "the Location header is not a valid URL");
        goto done;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (!is_http_scheme(scheme)) {
        say(why, why_size, "the Location header is not an http or https URL");
        goto done;
    }
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    /* Credentials an EM puts in a Location are not ours to send, nor to print. */
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    char *full = NULL;
    if (curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK) {
        result = lcmc__strdup(full);
        curl_free(full);
    }
done:
    curl_free(scheme);
    curl_url_cleanup(u);
    return result;
}

char *lcmc__url_origin(const char *url)
{
    CURLU *u = curl_url();
    if (u == NULL)
        return NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *result = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        for (char *p = host; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        result = lcmc__asprintf("%s://%s:%s", scheme, host, port);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return result;
}

char *lcmc__url_path(const char *url)
{
    if (url == NULL)
        return NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return NULL;
    char *path = NULL, *result = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
        result = lcmc__strdup(path);
    else
        result = lcmc__strdup(url);
    curl_free(path);
    curl_url_cleanup(u);
    return result;
}

char *lcmc__url_last_segment(const char *url)
{
    char *path = lcmc__url_path(url);
    if (path == NULL)
        return NULL;
    size_t end = strlen(path);
    while (end > 0 && path[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    char *segment = NULL;
    if (end > start) {
        int decoded_length = 0;
        segment = curl_easy_unescape(NULL, path + start, (int)(end - start), &decoded_length);
        if (segment) {
            char *copy = lcmc__strdup(segment);
            curl_free(segment);
            segment = copy;
        }
    }
    free(path);
    return segment;
}

char *lcmc__url_cancel(const char *coordination_url)
{
    CURLU *u = curl_url();
    if (u == NULL)
        return NULL;
    char *path = NULL, *full = NULL, *result = NULL;
    if (curl_url_set(u, CURLUPART_URL, coordination_url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto done;
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    char *cancel_path = lcmc__asprintf("%.*s/cancel", (int)n, path);
    /* The path is already encoded: set as is, the query untouched. */
    int set = cancel_path && curl_url_set(u, CURLUPART_PATH, cancel_path, 0) == CURLUE_OK &&
              curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK;
    free(cancel_path);
    if (set && curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK)
        result = lcmc__strdup(full);
done:
    curl_free(path);
    curl_free(full);
    curl_url_cleanup(u);
    return result;
}
