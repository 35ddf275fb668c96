/* The store's front: picks the back end from the URL ("sqlite:PATH" or "postgresql://..."),
 * checks arguments once for both back ends, and holds the helpers they share (one-line errors
 * naming the store, password redaction, key de-duplication). The back ends are
 * serve_store_sqlite.c and serve_store_pg.c; serve_store.h documents the contract. */
#include "serve_store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void vformat_line(char *err, size_t errlen, const char *display, const char *fmt, va_list ap)
{
    if (!err || errlen == 0)
        return;
    int head = snprintf(err, errlen, "store %s: ", display ? display : "?");
    if (head < 0)
        head = 0;
    if ((size_t)head < errlen)
        vsnprintf(err + head, errlen - (size_t)head, fmt, ap);
    /* One line: libpq and SQLite messages may carry newlines (DETAIL:, HINT:). */
    size_t out = 0;
    bool space = false;
    for (size_t i = 0; err[i]; i++) {
        unsigned char ch = (unsigned char)err[i];
        if (ch < 0x20 || ch == 0x7f) {
            space = out > 0;
            continue;
        }
        if (space) {
            err[out++] = ' ';
            space = false;
        }
        err[out++] = (char)ch;
    }
    err[out] = '\0';
}

void serve_store_errorf(const struct serve_store *st, char *err, size_t errlen, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat_line(err, errlen, st ? st->display : NULL, fmt, ap);
    va_end(ap);
}

void serve_store_errorf_name(const char *display, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat_line(err, errlen, display, fmt, ap);
    va_end(ap);
}

bool serve_store_init_head(struct serve_store *st, const struct serve_store_ops *ops,
                           const char *display, const char *instance_id, char *err, size_t errlen)
{
    st->ops = ops;
    st->display = strdup(display);
    st->instance_id = strdup(instance_id);
    st->lease_ttl = SERVE_STORE_DEFAULT_LEASE_TTL;
    if (!st->display || !st->instance_id) {
        serve_store_errorf_name(display, err, errlen, "out of memory");
        serve_store_free_head(st);
        return false;
    }
    return true;
}

void serve_store_free_head(struct serve_store *st)
{
    free(st->display);
    free(st->instance_id);
    st->display = st->instance_id = NULL;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Whether a query parameter's name (len bytes, percent-encoded) contains "password" in any
   case once decoded. */
static bool names_a_password(const char *name, size_t len)
{
    char decoded[64];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '%' && i + 2 < len && hex_digit(name[i + 1]) >= 0 && hex_digit(name[i + 2]) >= 0) {
            c = (char)(hex_digit(name[i + 1]) * 16 + hex_digit(name[i + 2]));
            i += 2;
        }
        if (n + 1 >= sizeof decoded)
            return true; /* no libpq parameter name is this long: hide it, to be safe */
        decoded[n++] = c;
    }
    decoded[n] = '\0';
    for (size_t i = 0; i + 8 <= n; i++)
        if (strncasecmp(decoded + i, "password", 8) == 0)
            return true;
    return false;
}

char *serve_store_redact_url(const char *url)
{
    /* Room for the URL plus a "***" for the userinfo's password and one per parameter
       (each has its '='), any of which may replace an empty value. */
    size_t len = strlen(url), params = 0;
    for (const char *eq = strchr(url, '='); eq; eq = strchr(eq + 1, '='))
        params++;
    char *out = malloc(len + 3 * params + 8);
    if (!out)
        return NULL;
    const char *scheme_end = strstr(url, "://");
    const char *userinfo = scheme_end ? scheme_end + 3 : NULL;
    /* libpq ends the userinfo at the first '@'; a raw '@' inside a password would move it, so
     * everything up to the LAST '@' is treated as userinfo: over-redacting is the safe side. */
    const char *at = userinfo ? strrchr(userinfo, '@') : NULL;
    const char *colon = NULL;
    if (at) {
        colon = memchr(userinfo, ':', (size_t)(at - userinfo));
    }
    size_t o = 0;
    if (colon) {
        memcpy(out, url, (size_t)(colon - url) + 1);
        o = (size_t)(colon - url) + 1;
        memcpy(out + o, "***", 3);
        o += 3;
        url = at;
    }
    /* The query: the value of every parameter whose name, percent-decoded as libpq decodes
       it, says password (password, sslpassword, %70assword), up to the next '&'. */
    const char *q = strchr(url, '?');
    if (!q) {
        strcpy(out + o, url);
        return out;
    }
    memcpy(out + o, url, (size_t)(q - url) + 1);
    o += (size_t)(q - url) + 1;
    const char *p = q + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        if (eq && names_a_password(p, (size_t)(eq - p))) {
            memcpy(out + o, p, (size_t)(eq - p) + 1);
            o += (size_t)(eq - p) + 1;
            memcpy(out + o, "***", 3);
            o += 3;
        } else {
            memcpy(out + o, p, plen);
            o += plen;
        }
        if (!amp)
            break;
        out[o++] = '&';
        p = amp + 1;
    }
    out[o] = '\0';
    return out;
}

int serve_store_distinct_keys(char *const *keys, size_t **idx)
{
    *idx = NULL;
    if (!keys)
        return 0;
    size_t total = 0;
    while (keys[total])
        total++;
    if (total == 0)
        return 0;
    size_t *positions = malloc(total * sizeof *positions);
    if (!positions)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < total; i++) {
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(keys[positions[j]], keys[i]) == 0;
        if (!seen)
            positions[n++] = i;
    }
    *idx = positions;
    return (int)n;
}

double serve_store_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool serve_store_valid_result(const char *result)
{
    return result && (strcmp(result, "CONTINUE") == 0 || strcmp(result, "ABORT") == 0 ||
                      strcmp(result, "CANCELLED") == 0);
}

/* ---- the interface ---------------------------------------------------------------------- */

struct serve_store *serve_store_open(const char *url, const char *instance_id, char *err,
                                     size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!url || !*url) {
        serve_store_errorf_name("(none)", err, errlen, "no store URL given");
        return NULL;
    }
    if (!instance_id || !*instance_id) {
        serve_store_errorf_name(url, err, errlen, "an instance id is required");
        return NULL;
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        const char *path = url + 7;
        if (!*path) {
            serve_store_errorf_name(url, err, errlen, "no file path after \"sqlite:\"");
            return NULL;
        }
        return serve_store_sqlite_open(path, url, instance_id, err, errlen);
    }
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
        char *display = serve_store_redact_url(url);
        if (!display) {
            serve_store_errorf_name("postgresql", err, errlen, "out of memory");
            return NULL;
        }
        struct serve_store *st = serve_store_pg_open(url, display, instance_id, err, errlen);
        free(display);
        return st;
    }
    /* Never echo an unknown URL, even redacted: it may carry a password in a form we do not
       parse (libpq's "host=db password=..."). Its scheme alone says what was given. */
    size_t scheme =
        strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    char display[48];
    if (scheme > 0 && scheme < 24 && url[scheme] == ':')
        snprintf(display, sizeof display, "%.*s:...", (int)scheme, url);
    else
        snprintf(display, sizeof display, "(not a URL)");
    serve_store_errorf_name(display, err, errlen,
                            "unknown store URL (expected sqlite:PATH or postgresql://...)");
    return NULL;
}

void serve_store_close(struct serve_store *st)
{
    if (st)
        st->ops->close(st);
}

const char *serve_store_display_name(const struct serve_store *st)
{
    return st->display;
}

void serve_store_set_lease_ttl(struct serve_store *st, double seconds)
{
    if (seconds > 0)
        st->lease_ttl = seconds;
}

/* An id the store could hold: 1 to 36 printable ASCII characters (ours are UUIDs). */
static bool plausible_id(const char *id)
{
    size_t n = 0;
    for (; id && id[n]; n++)
        if ((unsigned char)id[n] <= 0x20 || (unsigned char)id[n] >= 0x7f)
            return false;
    return n >= 1 && n <= 36;
}

static bool valid_id(const struct serve_store *st, const char *id, char *err, size_t errlen)
{
    if (!plausible_id(id)) {
        serve_store_errorf(st, err, errlen,
                           "a coordination id must be 1 to 36 printable ASCII characters");
        return false;
    }
    return true;
}

int serve_store_insert_running(struct serve_store *st, const struct serve_coord *c,
                               char conflict_id[37], char *err, size_t errlen)
{
    if (conflict_id)
        conflict_id[0] = '\0';
    if (!valid_id(st, c->id, err, errlen))
        return SERVE_STORE_ERROR;
    if (!c->request_json) {
        serve_store_errorf(st, err, errlen, "coordination %s has no request", c->id);
        return SERVE_STORE_ERROR;
    }
    return st->ops->insert(st, c, true, conflict_id, err, errlen);
}

int serve_store_insert_done(struct serve_store *st, const struct serve_coord *c, char *err,
                            size_t errlen)
{
    if (!valid_id(st, c->id, err, errlen))
        return SERVE_STORE_ERROR;
    if (!c->request_json || !c->lcmcoord_json || !serve_store_valid_result(c->result)) {
        serve_store_errorf(st, err, errlen,
                           "coordination %s: a DONE row needs its request, LcmCoord and a "
                           "result CONTINUE, ABORT or CANCELLED",
                           c->id);
        return SERVE_STORE_ERROR;
    }
    return st->ops->insert(st, c, false, NULL, err, errlen);
}

int serve_store_delete(struct serve_store *st, const char *id, char *err, size_t errlen)
{
    if (!id || !*id) {
        serve_store_errorf(st, err, errlen, "deleting a coordination needs its id");
        return SERVE_STORE_ERROR;
    }
    return st->ops->remove(st, id, err, errlen);
}

int serve_store_batch_begin(struct serve_store *st, char *err, size_t errlen)
{
    if (!st->ops->batch_begin)
        return SERVE_STORE_NOT_FOUND;
    return st->ops->batch_begin(st, err, errlen);
}

int serve_store_batch_end(struct serve_store *st, char *err, size_t errlen)
{
    return st->ops->batch_end ? st->ops->batch_end(st, err, errlen) : SERVE_STORE_OK;
}

int serve_store_finish(struct serve_store *st, const char *id, const char *result,
                       const char *lcmcoord_json, char *err, size_t errlen)
{
    if (!plausible_id(id))
        return SERVE_STORE_NOT_FOUND;
    if (!serve_store_valid_result(result) || !lcmcoord_json) {
        serve_store_errorf(st, err, errlen,
                           "coordination %s: finishing needs a result CONTINUE, ABORT or "
                           "CANCELLED and its LcmCoord",
                           id);
        return SERVE_STORE_ERROR;
    }
    return st->ops->finish(st, id, result, lcmcoord_json, err, errlen);
}

int serve_store_get(struct serve_store *st, const char *id, struct serve_coord *out, char *err,
                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* An id from a request path that no row can have is simply unknown. */
    if (!plausible_id(id))
        return SERVE_STORE_NOT_FOUND;
    return st->ops->get(st, id, out, err, errlen);
}

void serve_coord_clear(struct serve_coord *c)
{
    if (!c)
        return;
    free(c->request_json);
    free(c->lcmcoord_json);
    free(c->result);
    free(c->client);
    free(c->owner);
    if (c->exclusive_keys) {
        for (size_t i = 0; c->exclusive_keys[i]; i++)
            free(c->exclusive_keys[i]);
        free(c->exclusive_keys);
    }
    memset(c, 0, sizeof *c);
}

int serve_store_request_cancel(struct serve_store *st, const char *id, char *err, size_t errlen)
{
    if (!plausible_id(id))
        return 404;
    return st->ops->request_cancel(st, id, err, errlen);
}

int serve_store_heartbeat(struct serve_store *st, double ttl, char ***cancel_ids, size_t *n,
                          char *err, size_t errlen)
{
    *cancel_ids = NULL;
    *n = 0;
    if (!(ttl > 0)) {
        serve_store_errorf(st, err, errlen, "a lease ttl must be positive");
        return SERVE_STORE_ERROR;
    }
    return st->ops->heartbeat(st, ttl, cancel_ids, n, err, errlen);
}

void serve_store_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

int serve_store_reap(struct serve_store *st, bool all_running,
                     char *(*build_abort)(const struct serve_coord *c, void *ud), void *ud,
                     char *err, size_t errlen)
{
    struct serve_coord *rows = NULL;
    size_t n = 0;
    if (st->ops->reap_candidates(st, all_running, &rows, &n, err, errlen) != SERVE_STORE_OK)
        return SERVE_STORE_ERROR;
    int reaped = 0, rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            /* Built with no store lock held: the callback may take its time. */
            char *json = build_abort(&rows[i], ud);
            if (json) {
                int one = st->ops->reap_one(st, rows[i].id, all_running, json, err, errlen);
                if (one < 0)
                    rc = SERVE_STORE_ERROR;
                else
                    reaped += one;
                free(json);
            }
        }
        serve_coord_clear(&rows[i]);
    }
    free(rows);
    return rc < 0 ? SERVE_STORE_ERROR : reaped;
}

int serve_store_purge(struct serve_store *st, double max_age_seconds, char *err, size_t errlen)
{
    if (!(max_age_seconds >= 0)) {
        serve_store_errorf(st, err, errlen, "a purge age must be zero or more seconds");
        return SERVE_STORE_ERROR;
    }
    return st->ops->purge(st, max_age_seconds, err, errlen);
}

int serve_store_ping(struct serve_store *st, char *err, size_t errlen)
{
    return st->ops->ping(st, err, errlen);
}

bool serve_store_key_relatives(const char *key, char **equal, char **low, char **high)
{
    size_t inst = strcspn(key, "/");
    *equal = *low = *high = NULL;
    *equal = strndup(key, inst);
    if (key[inst] == '\0') {
        size_t n = strlen(key);
        *low = malloc(n + 2);
        *high = malloc(n + 2);
        if (*low && *high) {
            memcpy(*low, key, n);
            memcpy(*high, key, n);
            memcpy(*low + n, "/", 2);
            memcpy(*high + n, "0", 2);
        }
    }
    if (!*equal || (key[inst] == '\0' && (!*low || !*high))) {
        free(*equal);
        free(*low);
        free(*high);
        *equal = *low = *high = NULL;
        return false;
    }
    return true;
}
