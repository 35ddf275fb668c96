/*
 * The fast way between JSON text and the runtime's jansson values (json_text.c): yajl's
 * lexer and generator, which cost a third of jansson's own per byte, in front of jansson,
 * which stays the judge. A fast parse returns a value only when jansson would have returned
 * the same value for the same text (same types, same order, same numbers); whenever it
 * cannot be sure, or the text is bad, it returns NULL and the caller asks jansson, whose
 * answer (value or error message) is then the one given. A fast dump writes the bytes
 * json_dumps would write, or returns NULL for the caller to ask json_dumps.
 */
#ifndef LCMCOORD_JSON_TEXT_H
#define LCMCOORD_JSON_TEXT_H

#include <stddef.h>

#include <jansson.h>

#include "internal.h"

/* How a text may be read: any top-level value or only an object/array, and whether the
 * text may hold secrets (then every scratch block yajl frees is wiped, as jansson's are). */
enum {
    LCMC_JSON_TEXT_ANY = 1,
    LCMC_JSON_TEXT_SECRET = 2,
};

/* The value of `text` as json_loadb(text, length, JSON_REJECT_DUPLICATES (| JSON_DECODE_ANY
 * with LCMC_JSON_TEXT_ANY)) returns it, or NULL: not decided here (bad text, or one of the
 * few forms left to jansson: \u escapes, \v or \f bytes, deep nesting, long numbers). */
LCMC_INTERNAL json_t *lcmc__json_text_parse(const char *text, size_t length, int how);
/* The text json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) returns, in a block of
 * `length` + 1 bytes freed with free(), or NULL: not decided here (out of memory, nesting
 * past yajl's limit, a string jansson would refuse to write). With LCMC_JSON_TEXT_SECRET
 * every block left behind while growing the text is wiped. */
LCMC_INTERNAL char *lcmc__json_text_dump(const json_t *value, size_t *length, int how);

#endif
