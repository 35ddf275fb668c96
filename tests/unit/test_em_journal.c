/*
 * Unit tests of the request journal: entry format (redacted Authorization, auth summary
 * without secrets, RFC 3339 times), invalid UTF-8 made valid, the cap dropping the oldest
 * entries, and clearing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "em.h"

static void test_utf8_sanitize(void **state)
{
    (void)state;
    struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
        {"a\xffz", 3, "a\xef\xbf\xbdz"},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* truncated */
        {"\xf4\x90\x80\x80", 4,
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *out = em_utf8_sanitize(cases[i].in, cases[i].len, &n);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(n, strlen(cases[i].out));
        free(out);
    }
    size_t n;
    char *nul = em_utf8_sanitize("a\0b", 3, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(nul, "a\0b", 3);
    free(nul);
}

static void test_rfc3339(void **state)
{
    (void)state;
    char buf[32];
    struct timespec ts = {.tv_sec = 784111777, .tv_nsec = 123999999};
    em_rfc3339(&ts, buf);
    assert_string_equal(buf, "1994-11-06T08:49:37.123Z");
}

static void add(struct em_journal *j, unsigned long seq, const char *auth_header,
                const char *expected, const char *body)
{
    struct em_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.path = "/lcmcoord/v1/coordinations";
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    rq.received.tv_sec = 784111777;
    em_headers_add(&rq.headers, "version", "1.0.0");
    em_headers_add(&rq.headers, "x-dup", "a");
    em_headers_add(&rq.headers, "x-dup", "b");
    if (auth_header)
        em_headers_add(&rq.headers, "authorization", auth_header);
    struct em_auth auth;
    em_auth_check(auth_header, expected, &auth);
    em_journal_add(j, &rq, seq, 201, &auth);
    em_auth_clear(&auth);
    em_headers_free(&rq.headers);
}

static void test_entries_keep_no_secrets(void **state)
{
    (void)state;
    struct em_journal *j = em_journal_new(10);
    /* alice:s3cret */
    add(j, 1, "Basic YWxpY2U6czNjcmV0", "alice:s3cret", "{\"vnfInstanceId\":\"1\"}");
    add(j, 2, NULL, NULL, NULL);
    char *text = em_journal_dump(j);
    assert_null(strstr(text, "YWxpY2U6czNjcmV0"));
    assert_null(strstr(text, "s3cret"));
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(json_array_size(arr), 2);
    json_t *e = json_array_get(arr, 0);
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
    assert_string_equal(json_string_value(json_object_get(e, "time")), "1994-11-06T08:49:37.000Z");
    assert_string_equal(json_string_value(json_object_get(e, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(e, "body")), "{\"vnfInstanceId\":\"1\"}");
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 201);
    json_t *h = json_object_get(e, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "authorization")), "Basic <redacted>");
    assert_string_equal(json_string_value(json_object_get(h, "x-dup")), "<redacted>, <redacted>");
    json_t *auth = json_object_get(e, "auth");
    assert_string_equal(json_string_value(json_object_get(auth, "scheme")), "Basic");
    assert_string_equal(json_string_value(json_object_get(auth, "user")), "alice");
    assert_true(json_is_true(json_object_get(auth, "ok")));
    assert_null(json_object_get(json_array_get(arr, 1), "auth"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 1), "body")), "");
    json_decref(arr);
    em_journal_free(j);
}

static void test_cap_drops_oldest_and_clear_empties(void **state)
{
    (void)state;
    struct em_journal *j = em_journal_new(3);
    char *text = em_journal_dump(j);
    assert_string_equal(text, "[]");
    free(text);
    for (unsigned long i = 1; i <= 5; i++)
        add(j, i, NULL, NULL, "b");
    assert_int_equal(em_journal_count(j), 3);
    text = em_journal_dump(j);
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, i), "seq")), i + 3);
    json_decref(arr);
    em_journal_clear(j);
    assert_int_equal(em_journal_count(j), 0);
    add(j, 6, NULL, NULL, NULL);
    assert_int_equal(em_journal_count(j), 1);
    em_journal_free(j);
}

static void test_long_bodies_are_truncated(void **state)
{
    (void)state;
    struct em_journal *j = em_journal_new(2);
    char *big = malloc(EM_JOURNAL_BODY_MAX + 40);
    strcpy(big, "{\"inputParams\":{\"a\":\"");
    size_t at = strlen(big);
    memset(big + at, 'x', EM_JOURNAL_BODY_MAX + 10 - at);
    strcpy(big + EM_JOURNAL_BODY_MAX + 10, "\"}}");
    add(j, 1, NULL, NULL, big);
    free(big);
    char *text = em_journal_dump(j);
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    json_t *e = json_array_get(arr, 0);
    assert_int_equal(json_string_length(json_object_get(e, "body")), EM_JOURNAL_BODY_MAX);
    assert_true(json_is_true(json_object_get(e, "bodyTruncated")));
    json_decref(arr);
    em_journal_free(j);
}

/* The journal is bounded in bytes too, and a reader's snapshot outlives what it refers to:
 * entries dropped or cleared while it reads are still read whole, then freed. */
static void test_byte_budget_and_snapshot_readers(void **state)
{
    (void)state;
    struct em_journal *j = em_journal_new(1000);
    em_journal_set_budget(j, 8 * 1024);
    char body[1200];
    snprintf(body, sizeof body, "{\"vnfInstanceId\":\"%01000d\"}", 7);
    for (unsigned long i = 1; i <= 50; i++) {
        add(j, i, NULL, NULL, body);
        assert_true(em_journal_bytes(j) <= 8 * 1024);
    }
    size_t kept = em_journal_count(j);
    assert_true(kept > 1 && kept < 50);
    struct em_journal_reader *r = em_journal_reader_new(j);
    em_journal_clear(j); /* the reader still holds its entries */
    add(j, 51, NULL, NULL, NULL);
    char text[64 * 1024];
    size_t len = 0;
    for (ssize_t got; (got = em_journal_reader_read(r, len, text + len, 100)) >= 0;)
        len += (size_t)got;
    text[len] = '\0';
    em_journal_reader_free(r);
    json_t *arr = json_loads(text, 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), kept);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, kept - 1), "seq")), 50);
    json_decref(arr);
    /* A reader dropped half-way releases what it did not send. */
    r = em_journal_reader_new(j);
    assert_true(em_journal_reader_read(r, 0, text, 10) == 10);
    em_journal_reader_free(r);
    em_journal_free(j);
}

/* Readers that took their snapshots at different times, with the journal rotated in
 * between, would each pin a whole journal. Once the dropped entries still held reach the
 * budget, new readers are refused and a reader still on a dropped entry is cut off, so
 * the memory comes back. */
static void test_pinned_entries_have_a_budget(void **state)
{
    (void)state;
    struct em_journal *j = em_journal_new(1000);
    em_journal_set_budget(j, 8 * 1024);
    char body[1200];
    snprintf(body, sizeof body, "{\"vnfInstanceId\":\"%01000d\"}", 7);
    unsigned long seq = 0;
    char text[256];
    for (int i = 0; i < 20; i++)
        add(j, ++seq, NULL, NULL, body);
    struct em_journal_reader *a = em_journal_reader_new(j);
    assert_non_null(a);
    assert_true(em_journal_reader_read(a, 0, text, 10) == 10);
    for (int i = 0; i < 20; i++) /* a whole journal's worth: a's entries are all dropped */
        add(j, ++seq, NULL, NULL, body);
    assert_true(em_journal_pinned(j) > 0 && em_journal_pinned(j) < 8 * 1024);
    struct em_journal_reader *b = em_journal_reader_new(j); /* still under the budget */
    assert_non_null(b);
    assert_true(em_journal_reader_read(b, 0, text, 10) == 10);
    for (int i = 0; i < 20; i++)
        add(j, ++seq, NULL, NULL, body);
    assert_true(em_journal_pinned(j) >= 8 * 1024);
    assert_null(em_journal_reader_new(j));                      /* refused: 503 */
    assert_true(em_journal_reader_read(a, 10, text, 10) == -2); /* cut off */
    em_journal_reader_free(a);
    struct em_journal_reader *c = em_journal_reader_new(j); /* room again */
    assert_non_null(c);
    em_journal_reader_free(b);
    em_journal_reader_free(c);
    assert_int_equal(em_journal_pinned(j), 0);
    em_journal_free(j);
}

/* The newest request is kept however many old ones must go to make room for it. */
static void test_the_newest_entry_is_kept_when_the_budget_is_full(void **state)
{
    (void)state;
    struct em_journal *j = em_journal_new(100000);
    em_journal_set_budget(j, 64 * 1024);
    for (unsigned long i = 1; i <= 2000; i++)
        add(j, i, NULL, NULL, NULL);
    char big[40 * 1024];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *body = em_xasprintf("{\"vnfInstanceId\":\"%s\"}", big);
    add(j, 2001, NULL, NULL, body);
    free(body);
    char *text = em_journal_dump(j);
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(arr);
    json_t *last = json_array_get(arr, json_array_size(arr) - 1);
    assert_int_equal(json_integer_value(json_object_get(last, "seq")), 2001);
    json_decref(arr);
    assert_true(em_journal_bytes(j) <= 64 * 1024);
    em_journal_free(j);
}

/* Allow-lists: what is not known to be harmless is not shown. */
static void test_redaction_keeps_only_what_is_known(void **state)
{
    (void)state;
    const char *shown_headers[][3] = {
        {"content-type", "application/json", "application/json"},
        {"user-agent", "curl/7.88", "curl/7.88"},
        {"cookie", "session=s3cret", "<redacted>"},
        {"proxy-authorization", "Basic czNjcmV0", "<redacted>"},
        {"x-api-key", "s3cret", "<redacted>"},
        {"authorization", "s3cret", "<redacted>"},
        {"authorization", "bearer s3cret", "Bearer <redacted>"},
        {"authorization", "Basic czNjcmV0", "Basic <redacted>"},
    };
    for (size_t i = 0; i < sizeof shown_headers / sizeof shown_headers[0]; i++) {
        char *v = em_redact_header(shown_headers[i][0], shown_headers[i][1]);
        assert_string_equal(v, shown_headers[i][2]);
        free(v);
    }
    const char *paths[][2] = {
        {"/lcmcoord/v1/coordinations", "/lcmcoord/v1/coordinations"},
        {"/token?client_secret=s3cret", "/token?<redacted>"},
        {"/lcmcoord/v1/coordinations/a-b_c.d~e%41", "/lcmcoord/v1/coordinations/a-b_c.d~e%41"},
        {"/x;jsessionid=s3cret", "/x<redacted>"},
        {"/x%3Fk=s3cret", "/x<redacted>"},
        {"/x%3fk=s3cret", "/x<redacted>"},
        {"/x%23s3cret", "/x<redacted>"},
        {"/x:s3cret@y", "/x<redacted>"},
        {"/x%", "/x<redacted>"},
        {"/x%4", "/x<redacted>"},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *v = em_redact_path(paths[i][0]);
        assert_string_equal(v, paths[i][1]);
        free(v);
    }
    /* Methods: the standard ones as sent, anything else (a secret, say) never. */
    assert_string_equal(em_shown_method("POST"), "POST");
    assert_string_equal(em_shown_method("PATCH"), "PATCH");
    assert_string_equal(em_shown_method("S3CRET"), "OTHER");
    assert_string_equal(em_shown_method("post"), "OTHER");
    /* JSON bodies keep LcmCoordRequest members only; others are dropped and flagged. */
    struct em_journal *j = em_journal_new(10);
    add(j, 1, NULL, NULL, "{\"vnfInstanceId\":\"v\",\"password\":\"s3cret\"}");
    add(j, 2, NULL, NULL, "not json s3cret");
    char *text = em_journal_dump(j);
    assert_null(strstr(text, "s3cret"));
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    json_t *e = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(e, "body")), "{\"vnfInstanceId\":\"v\"}");
    assert_true(json_is_true(json_object_get(e, "bodyRedacted")));
    e = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(e, "body")), "");
    assert_true(json_is_true(json_object_get(e, "bodyRedacted")));
    json_decref(arr);
    em_journal_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_sanitize),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_entries_keep_no_secrets),
        cmocka_unit_test(test_cap_drops_oldest_and_clear_empties),
        cmocka_unit_test(test_long_bodies_are_truncated),
        cmocka_unit_test(test_byte_budget_and_snapshot_readers),
        cmocka_unit_test(test_pinned_entries_have_a_budget),
        cmocka_unit_test(test_the_newest_entry_is_kept_when_the_budget_is_full),
        cmocka_unit_test(test_redaction_keeps_only_what_is_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
