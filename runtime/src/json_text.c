/*
 * JSON text to jansson values and back through yajl (Debian's libyajl 2.1.0): its lexer
 * feeds callbacks that build the jansson value as the text is read, and its generator
 * writes a jansson value out. Measured on the benchmark's 585-byte LcmCoord (callgrind):
 * json_loadb 100 k instructions against 29 k here; json_dumps of an LcmCoordRequest 47 k
 * against 16 k (docs/benchmarks.md). jansson stays the judge of every rule: this file only
 * takes the texts whose value it can build exactly as json_loadb would, and leaves the
 * rest, and every error, to it (json_text.h). What it leaves:
 *  - any \u escape (yajl turns a lone surrogate into '?', jansson refuses it; and \u0000);
 *  - any \v or \f byte (whitespace to yajl, not to JSON or jansson);
 *  - a duplicate key, a string or key jansson will not store (invalid UTF-8: yajl's own
 *    check is skipped, jansson's json_stringn and json_object_setn_new make the call);
 *  - an integer beyond 64 bits, a real beyond a double, a number longer than 63 bytes;
 *  - nesting deeper than MAX_NESTING, a top-level scalar unless any value is asked for;
 *  - whatever yajl calls an error (trailing text, comments, a bad token...).
 * Reals are read with strtod_l in the C locale (jansson reads them in the C locale too,
 * whatever a script set) and written by jansson itself (json_dumpb of the real), so they
 * round-trip as jansson's do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "json_text.h"

/* Containers deeper than this go to jansson (its limit, 2048, is far beyond any API body). */
#define MAX_NESTING 64
/* The first block of a dumped text: most request bodies fit, and a block under 1 KiB keeps
 * glibc from consolidating its free lists on every request (docs/benchmarks.md). */
#define DUMP_FIRST_BLOCK 768

/* ---- memory ------------------------------------------------------------------------ */

/* yajl 2.1.0 does not survive a failed allocation (it writes through the NULL), so it never
 * sees one: everything it allocates comes from an arena sized in advance for the text. What
 * it allocates for a parse: its handle, lexer and three small structs (under 512 bytes),
 * the decoding buffer (2 KiB, only with escapes, doubled while a decoded string does not
 * fit) and the lexer's buffer (2 KiB for a token cut by the end of the input, doubled the
 * same way); for a generator, its state (under 1 KiB). A text under 2000 bytes therefore
 * needs under 4.6 KiB, taken from the stack; a longer one gets 8 times its length plus
 * 12 KiB from malloc, which bounds both buffers' doublings (or is left to jansson if that
 * allocation fails). The arena's blocks are never given back one by one; the arena is
 * wiped whole after a text that may hold secrets. */
#define SMALL_TEXT  2000
#define STACK_ARENA 6144
#define GEN_ARENA   1024

typedef struct arena {
    unsigned char *base;
    size_t size, used;
    size_t last; /* offset of the last block, which may grow in place */
} arena;

#define ARENA_HEADER 16 /* a block's size, keeping blocks 16-byte aligned */

static void *arena_malloc(void *ctx, size_t size)
{
    arena *a = ctx;
    size_t rounded = (size + 15) & ~(size_t)15;
    if (rounded < size || a->size - a->used < ARENA_HEADER + rounded) {
        LCMC_DEBUGASSERT(!"the yajl arena is sized too small");
        return NULL;
    }
    unsigned char *block = a->base + a->used + ARENA_HEADER;
    memcpy(block - ARENA_HEADER, &rounded, sizeof rounded);
    a->last = a->used;
    a->used += ARENA_HEADER + rounded;
    return block;
}

static void *arena_realloc(void *ctx, void *block, size_t size)
{
    arena *a = ctx;
    if (block == NULL)
        return arena_malloc(ctx, size);
    size_t old;
    memcpy(&old, (unsigned char *)block - ARENA_HEADER, sizeof old);
    if (size <= old)
        return block;
    size_t rounded = (size + 15) & ~(size_t)15;
    if ((unsigned char *)block == a->base + a->last + ARENA_HEADER &&
        a->size - a->last - ARENA_HEADER >= rounded) {
        memcpy((unsigned char *)block - ARENA_HEADER, &rounded, sizeof rounded);
        a->used = a->last + ARENA_HEADER + rounded;
        return block;
    }
    void *grown = arena_malloc(ctx, size);
    if (grown != NULL)
        memcpy(grown, block, old);
    return grown;
}

static void arena_free(void *ctx, void *block)
{
    (void)ctx;
    (void)block;
}

/* A block that may hold a secret, wiped before it goes back to malloc. */
static void wiped_free(void *block)
{
    if (block)
        OPENSSL_cleanse(block, malloc_usable_size(block));
    free(block);
}

/* realloc that leaves no copy behind: a new block, the old one wiped. */
static void *wiped_realloc(void *block, size_t size)
{
    if (block == NULL)
        return malloc(size);
    void *grown = malloc(size);
    if (grown == NULL)
        return NULL;
    size_t old = malloc_usable_size(block);
    memcpy(grown, block, old < size ? old : size);
    wiped_free(block);
    return grown;
}

/* ---- text to value ---------------------------------------------------------------------- */

typedef struct reader {
    const char *text; /* the whole text: a key inside it stays valid for the whole parse */
    size_t length;
    int any; /* a top-level scalar is allowed */
    json_t *root;
    json_t *open[MAX_NESTING]; /* the containers being filled, innermost last */
    int depth;
    const char *key; /* the key waiting for its value, in an object */
    size_t key_length;
    char *key_copy; /* the key, when yajl decoded it into its own buffer (escapes) */
    size_t key_copy_size;
    int secret;
} reader;

/* Hands `value` (owned) to its container, or makes it the root. 0 aborts the parse. */
static int place(reader *r, json_t *value)
{
    if (value == NULL)
        return 0;
    if (r->depth == 0) {
        if (r->root != NULL || (!r->any && !json_is_object(value) && !json_is_array(value))) {
            json_decref(value);
            return 0;
        }
        r->root = value;
        return 1;
    }
    json_t *container = r->open[r->depth - 1];
    if (json_is_array(container))
        return json_array_append_new(container, value) == 0;
    /* setn_new checks the key's UTF-8 (and takes value over even when it fails); a
     * duplicate replaces the old member, which shows as a size that did not grow. */
    size_t before = json_object_size(container);
    if (json_object_setn_new(container, r->key, r->key_length, value) != 0)
        return 0;
    return json_object_size(container) > before;
}

static int on_null(void *ctx)
{
    return place(ctx, json_null());
}

static int on_boolean(void *ctx, int value)
{
    return place(ctx, json_boolean(value));
}

static locale_t the_c_locale;

static void make_c_locale(void)
{
    the_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t c_locale(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_c_locale);
    return the_c_locale;
}

/* A number as jansson's lexer reads it: no '.', 'e' or 'E' is an integer (refused beyond
 * 64 bits), anything else a double (refused when it overflows; an underflow is kept). */
static int on_number(void *ctx, const char *text, size_t length)
{
    char copy[64];
    if (length >= sizeof copy)
        return 0;
    memcpy(copy, text, length);
    copy[length] = '\0';
    char *end = NULL;
    errno = 0;
    if (strpbrk(copy, ".eE") == NULL) {
        long long integer = strtoll(copy, &end, 10);
        if (errno != 0 || *end != '\0')
            return 0;
        return place(ctx, json_integer((json_int_t)integer));
    }
    locale_t c = c_locale();
    if (c == (locale_t)0)
        return 0;
    double real = strtod_l(copy, &end, c);
    if (*end != '\0' || ((real == HUGE_VAL || real == -HUGE_VAL) && errno == ERANGE))
        return 0;
    return place(ctx, json_real(real));
}

static int on_string(void *ctx, const unsigned char *text, size_t length)
{
    /* json_stringn checks the UTF-8 (NULL when invalid); a NUL can only come from \u0000,
     * which never reaches here. */
    return place(ctx, json_stringn((const char *)text, length));
}

static int on_key(void *ctx, const unsigned char *key, size_t length)
{
    reader *r = ctx;
    const char *k = (const char *)key;
    if (k >= r->text && k + length <= r->text + r->length) {
        r->key = k;
    } else {
        /* Decoded into yajl's buffer, which the value's own string may reuse. */
        if (length + 1 > r->key_copy_size) {
            char *grown = r->secret ? wiped_realloc(r->key_copy, length + 1)
                                    : realloc(r->key_copy, length + 1);
            if (grown == NULL)
                return 0;
            r->key_copy = grown;
            r->key_copy_size = length + 1;
        }
        memcpy(r->key_copy, k, length);
        r->key = r->key_copy;
    }
    r->key_length = length;
    return 1;
}

static int open_container(reader *r, json_t *container)
{
    if (container == NULL || r->depth == MAX_NESTING) {
        json_decref(container);
        return 0;
    }
    /* Placed first, so that the root owns everything made if the parse stops. */
    json_incref(container);
    if (!place(r, container)) {
        json_decref(container);
        return 0;
    }
    r->open[r->depth++] = container;
    json_decref(container); /* its parent (or the root pointer) holds it now */
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, json_object());
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, json_array());
}

static int on_end(void *ctx)
{
    reader *r = ctx;
    r->depth--;
    return 1;
}

static const yajl_callbacks build = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

/* Forms whose value yajl and jansson see differently: left to jansson whole. */
static int left_to_jansson(const char *text, size_t length)
{
    if (memchr(text, '\v', length) != NULL || memchr(text, '\f', length) != NULL)
        return 1;
    /* Every backslash followed by 'u' (an escaped backslash before a 'u' too: erring on
     * jansson's side costs nothing). */
    for (const char *p = memchr(text, '\\', length); p != NULL;
         p = memchr(p + 1, '\\', length - (size_t)(p + 1 - text)))
        if (p + 1 == text + length || p[1] == 'u')
            return 1;
    return 0;
}

json_t *lcmc__json_text_parse(const char *text, size_t length, int how)
{
    if (text == NULL || length == 0 || left_to_jansson(text, length))
        return NULL;
    reader r = {.text = text,
                .length = length,
                .any = (how & LCMC_JSON_TEXT_ANY) != 0,
                .secret = (how & LCMC_JSON_TEXT_SECRET) != 0};
    _Alignas(16) unsigned char small[STACK_ARENA];
    arena a = {small, sizeof small, 0, 0};
    if (length >= SMALL_TEXT) {
        if (length > (SIZE_MAX - 12288) / 8 || (a.base = malloc(8 * length + 12288)) == NULL)
            return NULL;
        a.size = 8 * length + 12288;
    }
    yajl_alloc_funcs funcs = {arena_malloc, arena_realloc, arena_free, &a};
    yajl_handle parser = yajl_alloc(&build, &funcs, &r);
    int ok = 0;
    if (parser != NULL) {
        /* jansson judges the UTF-8 of every string and key (json_stringn, setn_new). */
        yajl_config(parser, yajl_dont_validate_strings, 1);
        /* yajl 2.1.0 takes a string left open after the value ("[1] \"x") for a token still
         * to come and calls the text complete. A quote fed after the text closes such a
         * string, which yajl then refuses as trailing text; after a text that ends well it
         * only opens one. The value must be whole before the quote (r.root placed, nothing
         * open), so that the quote can never be what completes it; a text ending in a
         * backslash never gets here (left_to_jansson), so the quote is never escaped. */
        ok = yajl_parse(parser, (const unsigned char *)text, length) == yajl_status_ok &&
             r.root != NULL && r.depth == 0 &&
             yajl_parse(parser, (const unsigned char *)"\"", 1) == yajl_status_ok &&
             yajl_complete_parse(parser) == yajl_status_ok;
        yajl_free(parser);
    }
    if (r.secret)
        OPENSSL_cleanse(a.base, a.used);
    if (a.base != small)
        free(a.base);
    if (r.key_copy != NULL)
        (r.secret ? wiped_free : free)(r.key_copy);
    if (!ok) {
        json_decref(r.root);
        return NULL;
    }
    return r.root;
}

/* ---- value to text ---------------------------------------------------------------------- */

typedef struct writer {
    char *text;
    size_t length, size;
    int secret;
    int failed;
} writer;

static void append(void *ctx, const char *bytes, size_t n)
{
    writer *w = ctx;
    if (w->failed)
        return;
    if (w->length + n + 1 > w->size) {
        size_t size = w->size ? w->size : DUMP_FIRST_BLOCK;
        while (w->length + n + 1 > size)
            size *= 2;
        char *grown = w->secret ? wiped_realloc(w->text, size) : realloc(w->text, size);
        if (grown == NULL) {
            w->failed = 1;
            return;
        }
        w->text = grown;
        w->size = size;
    }
    memcpy(w->text + w->length, bytes, n);
    w->length += n;
}

static int write_value(yajl_gen g, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        size_t key_length;
        json_t *member;
        if (yajl_gen_map_open(g) != yajl_gen_status_ok)
            return 0;
        json_object_keylen_foreach((json_t *)v, key, key_length, member)
        {
            if (yajl_gen_string(g, (const unsigned char *)key, key_length) != yajl_gen_status_ok ||
                !write_value(g, member))
                return 0;
        }
        return yajl_gen_map_close(g) == yajl_gen_status_ok;
    }
    case JSON_ARRAY: {
        if (yajl_gen_array_open(g) != yajl_gen_status_ok)
            return 0;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++)
            if (!write_value(g, json_array_get(v, i)))
                return 0;
        return yajl_gen_array_close(g) == yajl_gen_status_ok;
    }
    case JSON_STRING:
        return yajl_gen_string(g, (const unsigned char *)json_string_value(v),
                               json_string_length(v)) == yajl_gen_status_ok;
    case JSON_INTEGER:
        return yajl_gen_integer(g, (long long)json_integer_value(v)) == yajl_gen_status_ok;
    case JSON_REAL: {
        /* jansson's own spelling (17 significant digits, ".0" added, exponent trimmed). */
        char real[64];
        size_t n = json_dumpb(v, real, sizeof real, JSON_ENCODE_ANY);
        return n > 0 && n < sizeof real && yajl_gen_number(g, real, n) == yajl_gen_status_ok;
    }
    case JSON_TRUE:
        return yajl_gen_bool(g, 1) == yajl_gen_status_ok;
    case JSON_FALSE:
        return yajl_gen_bool(g, 0) == yajl_gen_status_ok;
    case JSON_NULL:
    default:
        return yajl_gen_null(g) == yajl_gen_status_ok;
    }
}

char *lcmc__json_text_dump(const json_t *value, size_t *length, int how)
{
    if (value == NULL)
        return NULL;
    int secret = (how & LCMC_JSON_TEXT_SECRET) != 0;
    _Alignas(16) unsigned char small[GEN_ARENA];
    arena a = {small, sizeof small, 0, 0};
    yajl_alloc_funcs funcs = {arena_malloc, arena_realloc, arena_free, &a};
    yajl_gen g = yajl_gen_alloc(&funcs);
    if (g == NULL)
        return NULL;
    writer w = {.secret = secret};
    /* Compact; '/' unescaped; yajl checks the UTF-8 of what jansson stored (a _nocheck
     * string may be anything) and stops at a byte that is not. */
    yajl_gen_config(g, yajl_gen_print_callback, append, &w);
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    int ok = write_value(g, value) && !w.failed;
    yajl_gen_free(g);
    if (ok)
        append(&w, "", 1); /* the NUL */
    if (!ok || w.failed) {
        if (w.text != NULL)
            (secret ? wiped_free : free)(w.text);
        return NULL;
    }
    if (length)
        *length = w.length - 1;
    return w.text;
}
