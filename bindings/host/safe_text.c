/*
 * The one escaper of the host's output (safe_text.h). It works one unit at a time (an
 * ASCII byte, a UTF-8 sequence, or a byte that is not UTF-8), so that writing needs no
 * allocation and can never fail half-way into something unsafe.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safe_text.h"

/* The length of the valid UTF-8 sequence at s (its code point in *code), or 0 when the
 * byte at s does not start one: overlong forms, surrogates and values past U+10FFFF are
 * not UTF-8 either. */
size_t lcmc_utf8_sequence(const char *text, size_t n, uint32_t *code)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned char c = s[0];
    size_t length;
    uint32_t value, least;
    if (c < 0x80) {
        *code = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        length = 2;
        value = c & 0x1f;
        least = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        value = c & 0x0f;
        least = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        value = c & 0x07;
        least = 0x10000;
    } else {
        return 0;
    }
    if (n < length)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        value = value << 6 | (s[i] & 0x3f);
    }
    if (value < least || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
        return 0;
    *code = value;
    return length;
}

/* Code points a terminal or a log reader would act on rather than show. */
int lcmc_safe_code_is_unsafe(uint32_t code)
{
    return code < 0x20 || code == 0x7f || (code >= 0x80 && code <= 0x9f) || code == 0x2028 ||
           code == 0x2029 || (code >= 0x202a && code <= 0x202e) ||
           (code >= 0x2066 && code <= 0x2069);
}

/* The longest output of one unit: "\u202e" or "\x1b". */
#define UNIT_MAX 8

/* Writes what the unit at s becomes into out (at most UNIT_MAX bytes, not terminated) and
 * returns its length; *used is how many input bytes it took. */
static size_t safe_unit(const unsigned char *s, size_t n, lcmc_safe_lines lines, char *out,
                        size_t *used)
{
    uint32_t code = 0;
    size_t length = lcmc_utf8_sequence((const char *)s, n, &code);
    if (length == 0) {
        *used = 1;
        return (size_t)snprintf(out, UNIT_MAX, "\\x%02x", s[0]);
    }
    *used = length;
    if (!lcmc_safe_code_is_unsafe(code)) {
        memcpy(out, s, length);
        return length;
    }
    if (code == '\n' || code == '\r' || code == '\t') {
        if (lines == LCMC_SAFE_KEEP_LINES && code != '\r') {
            out[0] = (char)code;
            return 1;
        }
        if (lines == LCMC_SAFE_SPACE_LINES && code != '\t') {
            /* One space for a whole run of line breaks, none at the very end. */
            size_t run = 0;
            while (run < n && (s[run] == '\n' || s[run] == '\r'))
                run++;
            *used = run;
            if (run == n)
                return 0;
            out[0] = ' ';
            return 1;
        }
        return (size_t)snprintf(out, UNIT_MAX, "\\%c",
                                code == '\n'   ? 'n'
                                : code == '\r' ? 'r'
                                               : 't');
    }
    if (code < 0x80)
        return (size_t)snprintf(out, UNIT_MAX, "\\x%02x", (unsigned)code);
    return (size_t)snprintf(out, UNIT_MAX, "\\u%04x", (unsigned)code);
}

void lcmc_safe_write(FILE *out, const char *text, size_t length, lcmc_safe_lines lines)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t at = 0;
    while (at < length) {
        /* Runs of plain printable ASCII go out in one call. */
        size_t plain = at;
        while (plain < length && s[plain] >= 0x20 && s[plain] < 0x7f)
            plain++;
        if (plain > at) {
            fwrite(s + at, 1, plain - at, out);
            at = plain;
            continue;
        }
        char unit[UNIT_MAX];
        size_t used = 1;
        size_t n = safe_unit(s + at, length - at, lines, unit, &used);
        fwrite(unit, 1, n, out);
        at += used;
    }
}

char *lcmc_safe_dup(const char *text, size_t length, lcmc_safe_lines lines)
{
    /* No unit grows more than fourfold ("\x1b" for one byte). */
    if (length > (SIZE_MAX - 1) / 4)
        return NULL;
    char *copy = malloc(length * 4 + 1);
    if (copy == NULL)
        return NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t at = 0, end = 0;
    while (at < length) {
        char unit[UNIT_MAX];
        size_t used = 1;
        size_t n = safe_unit(s + at, length - at, lines, unit, &used);
        memcpy(copy + end, unit, n);
        end += n;
        at += used;
    }
    copy[end] = '\0';
    return copy;
}
