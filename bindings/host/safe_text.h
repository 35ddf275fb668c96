/*
 * Making text safe for an operator's terminal and a VNFM's log collector. Every string an
 * EM sends (an id, a Location, a ProblemDetails, a body) can reach stderr or stdout through
 * a log line, an error message or a printed value; a control character in it could clear
 * the screen, move the cursor or forge a log line. The host's output sinks (the log lines,
 * the one-line report, the printers of `coordinate` and `repl`) pass all text through here,
 * so nothing the EM says bypasses it.
 */
#ifndef LCMCOORD_HOST_SAFE_TEXT_H
#define LCMCOORD_HOST_SAFE_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* How line breaks are treated; everything else unsafe is always escaped. */
typedef enum lcmc_safe_lines {
    LCMC_SAFE_ESCAPE_LINES, /* \n, \r and \t become the two characters "\n", "\r", "\t" */
    LCMC_SAFE_SPACE_LINES,  /* a run of \r and \n becomes one space (a one-line report) */
    LCMC_SAFE_KEEP_LINES,   /* \n and \t are kept (a traceback, a body shown whole) */
} lcmc_safe_lines;

/* Writes `length` bytes of `text` to `out` with what a terminal would act on escaped:
 * C0 controls and DEL as \xHH, C1 controls and the Unicode line separators and bidi
 * overrides (U+2028, U+2029, U+202A..U+202E, U+2066..U+2069) as \uHHHH, and bytes that are
 * not UTF-8 as \xHH. Valid UTF-8 text is written as it is. Allocates nothing. */
void lcmc_safe_write(FILE *out, const char *text, size_t length, lcmc_safe_lines lines);

/* The same as a malloc'd NUL-terminated string; NULL when out of memory. */
char *lcmc_safe_dup(const char *text, size_t length, lcmc_safe_lines lines);

/* The length of the valid UTF-8 sequence at `text` (at most n bytes; its code point in
 * *code), or 0 when the byte there does not start one. */
size_t lcmc_utf8_sequence(const char *text, size_t n, uint32_t *code);

/* Whether a terminal or a log reader would act on this code point rather than show it. */
int lcmc_safe_code_is_unsafe(uint32_t code);

#endif
