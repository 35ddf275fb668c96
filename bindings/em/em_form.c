/*
 * application/x-www-form-urlencoded bodies, as the OAuth 2.0 token endpoint receives them
 * (RFC 6749 §4.4.2, appendix B): decoding `+` and %XX, splitting fields, and producing a
 * copy safe to journal with the secret-bearing values blanked out. The parser is strict on
 * purpose: the simulator exists to catch clients that encode carelessly, so a bad escape,
 * an encoded NUL or a parameter sent twice (RFC 6749 §3.2) is an error, not a guess.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *em_form_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = em_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
            /* A NUL would silently cut the value short wherever it is used as a C string. */
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '\0') {
            free(out);
            return NULL;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

void em_form_free(struct em_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].name);
        if (f->v[i].value) {
            /* Values may be client secrets: do not leave them in freed memory. */
            volatile char *p = f->v[i].value;
            while (*p)
                *p++ = '\0';
        }
        free(f->v[i].value);
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

const char *em_form_get(const struct em_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].name, name) == 0)
            return f->v[i].value;
    return NULL;
}

/* Orders fields by name so that a repeat shows up as two neighbours. */
static int field_name_cmp(const void *a, const void *b)
{
    const struct em_form_field *x = a, *y = b;
    return strcmp(x->name, y->name);
}

int em_form_parse(const char *body, size_t len, struct em_form *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > EM_TOKEN_BODY_MAX) {
        snprintf(err, errlen, "the form body is larger than %u bytes", EM_TOKEN_BODY_MAX);
        return -1;
    }
    size_t cap = 0;
    const char *end = body + len;
    for (const char *p = body; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) { /* empty fields (`a=1&&b=2`) carry nothing; skip them */
            if (out->n == EM_FORM_MAX_FIELDS) {
                snprintf(err, errlen, "the form body has more than %u fields", EM_FORM_MAX_FIELDS);
                em_form_free(out);
                return -1;
            }
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *name_end = eq ? eq : stop;
            char *name = em_form_decode(p, (size_t)(name_end - p), NULL);
            char *value =
                eq ? em_form_decode(eq + 1, (size_t)(stop - eq - 1), NULL) : em_xstrdup("");
            if (!name || !value || !*name) {
                snprintf(err, errlen, "the form body is malformed: a field has %s",
                         name && !*name && value ? "an empty name" : "a bad %-escape");
                free(name);
                free(value);
                em_form_free(out);
                return -1;
            }
            if (out->n == cap) {
                cap = cap ? cap * 2 : 8;
                out->v = em_xrealloc(out->v, cap * sizeof *out->v);
            }
            out->v[out->n].name = name;
            out->v[out->n].value = value;
            out->n++;
        }
        p = amp ? amp + 1 : end;
    }
    /* Repeats are found on a sorted copy: n log n, where a lookup per field was n squared
     * (a 1 MiB body of 200,000 fields once took 98 s of CPU). */
    if (out->n > 1) {
        struct em_form_field *sorted = em_xmalloc(out->n * sizeof *sorted);
        memcpy(sorted, out->v, out->n * sizeof *sorted);
        qsort(sorted, out->n, sizeof *sorted, field_name_cmp);
        for (size_t i = 1; i < out->n; i++) {
            if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) {
                snprintf(err, errlen, "parameter '%.40s' is repeated (RFC 6749 section 3.2)",
                         sorted[i].name);
                free(sorted);
                em_form_free(out);
                return -1;
            }
        }
        free(sorted);
    }
    return 0;
}

/* Fields of a token request kept verbatim when their values are plain (RFC 6749 §4.4.2). */
static bool harmless_field(const char *name)
{
    static const char *const names[] = {"grant_type", "client_id", "scope",
                                        "resource",   "audience",  "client_assertion_type"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Known OAuth parameters whose values are credentials: the name is kept, to show the
 * client sent one. */
static bool known_secret_field(const char *name)
{
    static const char *const names[] = {"client_secret", "password",     "client_assertion",
                                        "refresh_token", "access_token", "code",
                                        "code_verifier", "assertion",    "username"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* A value kept verbatim has nothing a lenient parser could read as another field (`;`,
 * `=`); escapes are fine in values (not in names), where they decode into the same value. */
static bool plain_value(const char *s, size_t n, bool escapes)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '~' || c == '-' || c == ':' || c == '+' ||
              (escapes && c == '%')))
            return false;
    }
    return true;
}

char *em_form_redact(const char *body, size_t len, size_t *outlen)
{
    static const char mark[] = "<redacted>";
    /* Each field grows by at most the mark's length (an `=` may be added too). */
    size_t fields = 1;
    for (size_t i = 0; i < len; i++)
        fields += body[i] == '&';
    char *out = em_xmalloc(len + fields * (sizeof mark + 1) + 1);
    size_t o = 0;
    const char *end = body + len;
    for (const char *p = body; p <= end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char *name = eq ? em_form_decode(p, (size_t)(eq - p), NULL) : NULL;
        if (stop == p) {
            /* an empty field: nothing to hide */
        } else if (name && harmless_field(name) &&
                   plain_value(eq + 1, (size_t)(stop - eq - 1), true) &&
                   plain_value(p, (size_t)(eq - p), false)) {
            memcpy(out + o, p, (size_t)(stop - p));
            o += (size_t)(stop - p);
        } else if (name && (harmless_field(name) || known_secret_field(name)) &&
                   plain_value(p, (size_t)(eq - p), false)) {
            memcpy(out + o, p, (size_t)(eq + 1 - p));
            o += (size_t)(eq + 1 - p);
            memcpy(out + o, mark, sizeof mark - 1);
            o += sizeof mark - 1;
        } else {
            memcpy(out + o, mark, sizeof mark - 1);
            o += sizeof mark - 1;
        }
        free(name);
        if (!amp)
            break;
        out[o++] = '&';
        p = amp + 1;
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}
