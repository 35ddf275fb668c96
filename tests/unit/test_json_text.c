/*
 * The yajl fast path (runtime/src/json_text.c) against jansson, the judge: for every text,
 * a value from the fast parse must be the value json_loadb makes (same types, same key
 * order, same numbers: compared by jansson's own dump), and a text from the fast dump must
 * be the bytes json_dumps writes. Hand-picked texts cover each form the fast path must
 * leave to jansson (where yajl's reading differs) and each it must take (so the test
 * cannot pass by the fast path declining everything); then a few thousand seeded random
 * mutations of them look for a difference nobody thought of.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_text.h"

#define LOAD (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)
#define DUMP (JSON_COMPACT | JSON_ENCODE_ANY)

/* Returns 1 when the fast parse took the text (and agreed with jansson), 0 when it left it.
 * Fails the test on any disagreement. */
static int check_parse(const char *text, size_t length, int how)
{
    json_t *fast = lcmc__json_text_parse(text, length, how);
    json_error_t err;
    json_t *slow =
        json_loadb(text, length, how & LCMC_JSON_TEXT_ANY ? LOAD : JSON_REJECT_DUPLICATES, &err);
    if (fast == NULL) {
        json_decref(slow);
        return 0;
    }
    if (slow == NULL) {
        fprintf(stderr, "fast parse took a text jansson refuses (%s): %.*s\n", err.text,
                (int)length, text);
        fail();
    }
    char *a = json_dumps(fast, DUMP | JSON_REAL_PRECISION(17));
    char *b = json_dumps(slow, DUMP | JSON_REAL_PRECISION(17));
    if (!json_equal(fast, slow) || strcmp(a, b) != 0) {
        fprintf(stderr, "values differ for %.*s:\n fast %s\n jansson %s\n", (int)length, text, a,
                b);
        fail();
    }
    free(a);
    free(b);
    json_decref(fast);
    json_decref(slow);
    return 1;
}

static int check_dump(const json_t *value)
{
    size_t n = 0;
    char *fast = lcmc__json_text_dump(value, &n, 0);
    char *slow = json_dumps(value, DUMP);
    if (fast == NULL) {
        free(slow);
        return 0;
    }
    assert_non_null(slow);
    assert_int_equal(n, strlen(slow));
    if (strcmp(fast, slow) != 0) {
        fprintf(stderr, "dumps differ:\n fast    %s\n jansson %s\n", fast, slow);
        fail();
    }
    free(fast);
    free(slow);
    return 1;
}

#define TEXT(s) s, sizeof(s) - 1

static const char lcmcoord[] =
    "{\"id\":\"5c1f0a3e-9b2d-4e47-8a61-000000000001\",\"coordinationResult\":\"CONTINUE\","
    "\"vnfInstanceId\":\"9b3f2a86\",\"lcmOperationType\":\"CHANGE_VNFPKG\","
    "\"outputParams\":{\"vnfcInstanceId\":[\"VDU1-6f1e2d3c\"],\"n\":12345678901234567,"
    "\"r\":0.1,\"big\":1e300,\"neg\":-9223372036854775808,\"t\":true,\"f\":false,\"z\":null},"
    "\"_links\":{\"self\":{\"href\":\"http://127.0.0.1/lcmcoord/v1/coordinations/5c1f0a3e\"}}}";

/* Texts the fast path must take, each agreeing with jansson. */
static void takes_the_usual_texts(void **state)
{
    (void)state;
    assert_true(check_parse(TEXT(lcmcoord), 0));
    assert_true(check_parse(TEXT(" {\"a\" : [1, 2.5, -0, -0.0, 1E2, 1e-400, \"x\"]}\r\n\t"), 0));
    assert_true(check_parse(TEXT("{\"esc\":\"a\\\"b\\\\c\\/d\\n\\t\\r\\b\"}"), 0));
    assert_true(check_parse(TEXT("{\"k\\n\":\"v\\n\",\"\":{},\"e\":[]}"), 0));
    assert_true(check_parse(TEXT("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"), 0));
    assert_true(check_parse(TEXT("{\"\xc3\xa9\":1}"), 0));
    assert_true(check_parse(TEXT("true "), LCMC_JSON_TEXT_ANY));
    assert_true(check_parse(TEXT("\"s\""), LCMC_JSON_TEXT_ANY | LCMC_JSON_TEXT_SECRET));
    assert_true(check_parse(TEXT("[9223372036854775807,-9223372036854775808]"), 0));
    assert_true(check_parse(TEXT("[1.7976931348623157e308,5e-324,0.30000000000000004]"), 0));
    /* Long texts (yajl's buffers doubling in the arena): a 30,000-byte string of escapes,
     * the same cut short, and many long keys with escapes. */
    size_t n = 30000;
    char *text = malloc(n + 16);
    assert_non_null(text);
    memcpy(text, "[\"", 2);
    for (size_t i = 2; i < n; i += 2)
        memcpy(text + i, "\\n", 2);
    memcpy(text + n, "\"]", 3);
    assert_true(check_parse(text, n + 2, LCMC_JSON_TEXT_SECRET));
    assert_false(check_parse(text, n, 0));
    assert_false(check_parse(text, n - 1, 0));
    size_t at = 0;
    text[at++] = '{';
    for (int k = 0; k < 10; k++) {
        at += (size_t)sprintf(text + at, "%s\"k%d", k ? "," : "", k);
        for (int i = 0; i < 1000; i++)
            text[at++] = i % 2 ? 'x' : '\\', text[at++] = i % 2 ? 'y' : 't';
        at += (size_t)sprintf(text + at, "\":%d", k);
    }
    text[at++] = '}';
    assert_true(at < n);
    assert_true(check_parse(text, at, 0));
    free(text);
}

/* Texts where yajl and jansson differ, or that are bad: the fast path must leave them. */
static void leaves_what_jansson_must_judge(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t length;
        int how;
    } left[] = {
        {TEXT("{\"a\":1,\"a\":2}"), 0},         /* duplicate key */
        {TEXT("{\"a\":{\"b\":1,\"b\":1}}"), 0}, /* duplicate key, nested */
        {TEXT("[\"\\ud800\"]"), 0},             /* lone surrogate: yajl writes '?' */
        {TEXT("[\"\\u0000\"]"), 0},             /* NUL */
        {TEXT("[\"\\u00e9\"]"), 0},             /* any \u, even a good one */
        {TEXT("{\"a\":1}\v"), 0},               /* \v: whitespace to yajl only */
        {TEXT("\f[1]"), 0},                     /* \f */
        {TEXT("[\"\xc0\xaf\"]"), 0},            /* overlong UTF-8 */
        {TEXT("[\"\xed\xa0\x80\"]"), 0},        /* an encoded surrogate */
        {TEXT("[\"\xf4\x90\x80\x80\"]"), 0},    /* beyond U+10FFFF */
        {TEXT("{\"\xff\":1}"), 0},              /* a key that is not UTF-8 */
        {TEXT("[\"a\x01\"]"), 0},               /* a raw control character */
        {TEXT("[9223372036854775808]"), 0},     /* beyond 64 bits */
        {TEXT("[-9223372036854775809]"), 0},    /* below */
        {TEXT("[1e400]"), 0},                   /* beyond a double */
        {TEXT("[01]"), 0},                      /* leading zero */
        {TEXT("[1.]"), 0},                      /* no digit after the point */
        {TEXT("[.5]"), 0},
        {TEXT("[+1]"), 0},
        {TEXT("[NaN]"), 0},
        {TEXT("[1,]"), 0}, /* trailing comma */
        {TEXT("{\"a\":1,}"), 0},
        {TEXT("[1]//c"), 0},  /* comment */
        {TEXT("[1] [2]"), 0}, /* two values */
        {TEXT("[1] x"), 0},   /* trailing text */
        {TEXT("[1"), 0},      /* cut short */
        {TEXT(""), 0},
        {TEXT("   "), 0},
        {TEXT("17"), 0},                    /* a scalar where only a container goes */
        {TEXT("17"), LCMC_JSON_TEXT_ANY},   /* a number alone: not known whole */
        {TEXT("\"ab"), LCMC_JSON_TEXT_ANY}, /* a string left open */
        {TEXT("[1] \"x"), 0},               /* a string left open after the value */
        {TEXT("[1] \"x]"), 0},
        {TEXT("{\"a\":1} \"x\\"), 0}, /* ... ending in an escaped backslash */
        {TEXT("[1] \"x\\\\"), 0},
        {TEXT("\"s\""), 0},
        {TEXT("\xef\xbb\xbf[1]"), 0}, /* a byte order mark */
        {TEXT("[1]\0"), 0},           /* a NUL byte after the value */
        {TEXT("[\"a\0b\"]"), 0},      /* a NUL byte inside a string */
        {TEXT("[1.00000000000000000000000000000000000000000000000000000000000000000001]"), 0},
    };
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        if (check_parse(left[i].text, left[i].length, left[i].how)) {
            fprintf(stderr, "the fast path took case %zu\n", i);
            fail();
        }
    }
    /* Nesting beyond the fast path's 64 levels: left; at 64, taken. */
    char deep[2 * 65 + 1];
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    assert_false(check_parse(deep, 130, 0));
    assert_true(check_parse(deep + 1, 128, 0));
}

/* The dump: the same bytes as json_dumps for every kind of value. */
static void writes_what_json_dumps_writes(void **state)
{
    (void)state;
    json_t *v = json_loadb(TEXT(lcmcoord), 0, NULL);
    assert_non_null(v);
    assert_true(check_dump(v));
    json_decref(v);
    json_t *mixed = json_pack("{s:s, s:[f,f,f,f,f,f,f,f,f], s:[I,I,I], s:b, s:n, s:{}, s:[]}", "s",
                              "a/\x01\x1f\x7f\"\\\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80", "reals", 0.1,
                              1.0, -0.0, 1e16, 1e-5, 5e-324, 1.7976931348623157e308, 123456789.125,
                              -2.5, "ints", (json_int_t)INT64_MAX, (json_int_t)INT64_MIN,
                              (json_int_t)0, "b", 1, "z", "o", "a");
    assert_non_null(mixed);
    assert_true(check_dump(mixed));
    /* Keys with every escape, and a key with a NUL (jansson 2.14 keeps key lengths). */
    assert_int_equal(json_object_setn_new(mixed, "k\"\\\n\x02\x00z", 7, json_true()), 0);
    assert_true(check_dump(mixed));
    json_decref(mixed);
    json_t *scalar = json_string("top");
    assert_true(check_dump(scalar));
    json_decref(scalar);
    scalar = json_real(3.0);
    assert_true(check_dump(scalar));
    json_decref(scalar);
    /* Past yajl's nesting limit the dump is left to json_dumps. */
    json_t *deep = json_array();
    json_t *inner = deep;
    for (int i = 0; i < 200; i++) {
        json_t *next = json_array();
        json_array_append_new(inner, next);
        inner = next;
    }
    assert_false(check_dump(deep));
    json_decref(deep);
}

/* Seeded random mutations of the texts above: whatever the fast path takes, jansson must
 * read the same; whatever value jansson reads back from the dump must be the value. */
static void random_mutations_agree_with_jansson(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        lcmcoord,
        "{\"a\":[1,2.5,-0,1E2,\"x\\ny\",true,false,null],\"b\":{\"c\":\"\xc3\xa9\"}}",
        "[[[]],{},\"\",0,-1.5e-3]",
    };
    unsigned seed = 20261128;
    const char alphabet[] = "{}[]\",:\\u0123456789.eE+-tfnrl \t\r\n\v\f\x01\x7f\xc3\xa9\xff";
    size_t taken = 0;
    for (int round = 0; round < 6000; round++) {
        const char *base = seeds[round % 3];
        size_t n = strlen(base);
        char text[1024];
        memcpy(text, base, n);
        int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            char c = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
            switch ((seed >> 4) % 3) {
            case 0: /* replace */
                text[at] = c;
                break;
            case 1: /* insert */
                if (n + 1 < sizeof text) {
                    memmove(text + at + 1, text + at, n - at);
                    text[at] = c;
                    n++;
                }
                break;
            default: /* delete */
                memmove(text + at, text + at + 1, n - at - 1);
                n--;
            }
        }
        taken += (size_t)check_parse(text, n, round & 1 ? LCMC_JSON_TEXT_ANY : 0);
        json_t *value = json_loadb(text, n, LOAD, NULL);
        if (value != NULL) {
            check_dump(value);
            json_decref(value);
        }
    }
    /* Most single edits break the text; enough survive to mean something. */
    assert_true(taken > 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(takes_the_usual_texts),
        cmocka_unit_test(leaves_what_jansson_must_judge),
        cmocka_unit_test(writes_what_json_dumps_writes),
        cmocka_unit_test(random_mutations_agree_with_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
