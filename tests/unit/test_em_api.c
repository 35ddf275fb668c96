/*
 * Unit tests of the EM simulator's protocol logic without sockets: each LcmCoordRequest
 * field error, the Version and Content-Type checks, body parsing failures, HTTP Basic
 * checking and redaction, and whole answers from em_handle() (sync 201, async 202 with
 * Location variants, rejects, 401/404/405/413) as a client would see them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "em.h"

static const char valid_request[] =
    "{\"vnfInstanceId\":\"vi-1\",\"vnfLcmOpOccId\":\"op-1\",\"lcmOperationType\":\"HEAL\","
    "\"coordinationActionName\":\"prv.example.check\",\"inputParams\":{\"k\":[1,2]},"
    "\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"http://vnfm/op\"},"
    "\"vnfInstance\":{\"href\":\"http://vnfm/vi\"}}}";

/* Validates valid_request with one attribute replaced (a NULL value deletes it). */
static int validate_with(const char *path1, const char *path2, json_t *value, char *detail,
                         size_t len)
{
    json_t *req = json_loads(valid_request, 0, NULL);
    assert_non_null(req);
    json_t *parent = path2 ? json_object_get(json_object_get(req, "_links"), path1) : req;
    const char *key = path2 ? path2 : path1;
    if (value)
        json_object_set_new(parent, key, value);
    else
        json_object_del(parent, key);
    detail[0] = '\0';
    int rc = em_validate_request(req, detail, len);
    json_decref(req);
    return rc;
}

static void expect_422(const char *p1, const char *p2, json_t *value, const char *detail_prefix)
{
    char detail[512];
    assert_int_equal(validate_with(p1, p2, value, detail, sizeof detail), 422);
    if (strncmp(detail, detail_prefix, strlen(detail_prefix)) != 0)
        fail_msg("detail '%s' does not start with '%s'", detail, detail_prefix);
}

static void test_valid_request_passes(void **state)
{
    (void)state;
    char detail[256];
    json_t *req = json_loads(valid_request, 0, NULL);
    assert_int_equal(em_validate_request(req, detail, sizeof detail), 0);
    json_object_del(req, "inputParams");
    assert_int_equal(em_validate_request(req, detail, sizeof detail), 0);
    json_decref(req);
}

static void test_each_field_error_names_the_field(void **state)
{
    (void)state;
    expect_422("vnfInstanceId", NULL, NULL, "vnfInstanceId: required attribute is missing");
    expect_422("vnfInstanceId", NULL, json_string(""), "vnfInstanceId: must not be an empty");
    expect_422("vnfInstanceId", NULL, json_integer(1),
               "vnfInstanceId: expected a non-empty "
               "string, got number");
    expect_422("vnfLcmOpOccId", NULL, json_null(), "vnfLcmOpOccId: expected");
    expect_422("vnfLcmOpOccId", NULL, NULL, "vnfLcmOpOccId: required");
    expect_422("lcmOperationType", NULL, json_string("FOO"),
               "lcmOperationType: 'FOO' is not a LcmOperationForCoordType");
    expect_422("lcmOperationType", NULL, json_string("heal"), "lcmOperationType: 'heal'");
    expect_422("lcmOperationType", NULL, json_true(), "lcmOperationType: expected");
    expect_422("lcmOperationType", NULL, NULL, "lcmOperationType: required");
    expect_422("coordinationActionName", NULL, json_array(), "coordinationActionName: expected");
    expect_422("coordinationActionName", NULL, NULL, "coordinationActionName: required");
    expect_422("inputParams", NULL, json_string("x"), "inputParams: expected an object");
    expect_422("inputParams", NULL, json_null(), "inputParams: expected an object");
    expect_422("_links", NULL, NULL, "_links.vnfLcmOpOcc.href: required");
    expect_422("_links", NULL, json_string("x"), "_links: expected an object");
    expect_422("vnfLcmOpOcc", "href", NULL, "_links.vnfLcmOpOcc.href: required");
    expect_422("vnfLcmOpOcc", "href", json_integer(3), "_links.vnfLcmOpOcc.href: expected");
    expect_422("vnfInstance", "href", json_string(""), "_links.vnfInstance.href: must not");
    char detail[256];
    json_t *req = json_loads(valid_request, 0, NULL);
    json_object_set_new(json_object_get(req, "_links"), "vnfInstance", json_string("x"));
    assert_int_equal(em_validate_request(req, detail, sizeof detail), 422);
    assert_string_equal(detail, "_links.vnfInstance: expected an object, got string");
    json_decref(req);
}

static void test_every_operation_type_is_accepted(void **state)
{
    (void)state;
    const char *types[] = {"INSTANTIATE",
                           "SCALE",
                           "SCALE_TO_LEVEL",
                           "CHANGE_FLAVOUR",
                           "TERMINATE",
                           "HEAL",
                           "OPERATE",
                           "CHANGE_EXT_CONN",
                           "MODIFY_INFO",
                           "CREATE_SNAPSHOT",
                           "REVERT_TO_SNAPSHOT",
                           "CHANGE_VNFPKG"};
    char detail[256];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        assert_int_equal(
            validate_with("lcmOperationType", NULL, json_string(types[i]), detail, sizeof detail),
            0);
}

static void test_version_header(void **state)
{
    (void)state;
    char detail[256];
    assert_int_equal(em_check_version(NULL, detail, sizeof detail), 400);
    assert_non_null(strstr(detail, "Version header is required"));
    assert_int_equal(em_check_version("", detail, sizeof detail), 400);
    const char *ok[] = {"1.0.0", "1.1.0", "1.0", "1", "1.12.345"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(em_check_version(ok[i], detail, sizeof detail), 0);
    const char *bad[] = {"2.0.0",  "0.9",       "10.0.0", "1.0.0.0", "1..0",
                         "v1.0.0", "1.0.0-rc1", "1.",     " 1.0.0",  "banana"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (em_check_version(bad[i], detail, sizeof detail) != 406)
            fail_msg("Version '%s' was not refused with 406", bad[i]);
        assert_non_null(strstr(detail, "not supported"));
    }
}

static void test_content_type(void **state)
{
    (void)state;
    assert_true(em_check_content_type("application/json"));
    assert_true(em_check_content_type("Application/JSON"));
    assert_true(em_check_content_type("application/json; charset=utf-8"));
    assert_true(em_check_content_type("application/json;charset=UTF-8"));
    assert_false(em_check_content_type(NULL));
    assert_false(em_check_content_type(""));
    assert_false(em_check_content_type("text/plain"));
    assert_false(em_check_content_type("application/jsonp"));
    assert_false(em_check_content_type("application/problem+json"));
}

static void expect_400(const char *body, size_t len, const char *needle)
{
    char detail[512];
    json_t *j = (json_t *)1;
    assert_int_equal(em_parse_body(body, len, &j, detail, sizeof detail), 400);
    assert_null(j);
    if (!strstr(detail, needle))
        fail_msg("detail '%s' does not mention '%s'", detail, needle);
}

static void test_body_parse_errors(void **state)
{
    (void)state;
    expect_400("", 0, "empty");
    expect_400("{\"a\":", 5, "not valid JSON");
    expect_400("{\"a\":\"\xc3\x28\"}", 10, "not valid UTF-8");
    expect_400("[1]", 3, "must be a JSON object, got array");
    expect_400("\"s\"", 3, "got string");
    expect_400("{\"a\":1}\0", 8, "not valid JSON");
    size_t depth = 100000;
    char *deep = malloc(depth * 2);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    expect_400(deep, depth * 2, "nested deeper");
    free(deep);
    char detail[64];
    json_t *j;
    assert_int_equal(em_parse_body("{}", 2, &j, detail, sizeof detail), 0);
    json_decref(j);
}

static void test_basic_auth_check(void **state)
{
    (void)state;
    struct em_auth a;
    /* alice:s3cret */
    em_auth_check("Basic YWxpY2U6czNjcmV0", "alice:s3cret", &a);
    assert_true(a.present && a.ok);
    assert_string_equal(a.scheme, "Basic");
    assert_string_equal(a.user, "alice");
    em_auth_clear(&a);
    em_auth_check("basic   YWxpY2U6czNjcmV0  ", "alice:s3cret", &a);
    assert_true(a.ok);
    em_auth_clear(&a);
    /* alice:wrong */
    em_auth_check("Basic YWxpY2U6d3Jvbmc=", "alice:s3cret", &a);
    assert_true(a.present);
    assert_false(a.ok);
    assert_string_equal(a.user, "alice");
    em_auth_clear(&a);
    em_auth_check("Basic !!!notbase64", "alice:s3cret", &a);
    assert_false(a.ok);
    assert_null(a.user);
    em_auth_clear(&a);
    /* "alices3cret": no colon */
    em_auth_check("Basic YWxpY2VzM2NyZXQ=", "alice:s3cret", &a);
    assert_false(a.ok);
    em_auth_clear(&a);
    em_auth_check("Bearer tok", "alice:s3cret", &a);
    assert_false(a.ok);
    assert_string_equal(a.scheme, "Bearer");
    assert_null(a.user);
    em_auth_clear(&a);
    em_auth_check(NULL, "alice:s3cret", &a);
    assert_false(a.present || a.ok);
    em_auth_check(NULL, NULL, &a);
    assert_true(a.ok);
    em_auth_check("Bearer tok", NULL, &a);
    assert_true(a.present && a.ok);
    em_auth_clear(&a);
}

static void test_authorization_is_redacted_to_its_scheme(void **state)
{
    (void)state;
    char *r = em_auth_redact("Basic YWxpY2U6czNjcmV0");
    assert_string_equal(r, "Basic <redacted>");
    free(r);
    r = em_auth_redact("Bearer abc.def");
    assert_string_equal(r, "Bearer <redacted>");
    free(r);
    r = em_auth_redact("");
    assert_string_equal(r, "<redacted>");
    free(r);
}

/* ---- whole answers ---- */

static void make_em(struct em *em, struct em_options *opt)
{
    em_init(em, opt);
}

static void handle(struct em *em, const char *method, const char *path, const char *body,
                   struct em_response *rs, ...)
{
    struct em_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.path = path;
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    clock_gettime(CLOCK_REALTIME, &rq.received);
    va_list ap;
    va_start(ap, rs);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;)
        em_headers_add(&rq.headers, name, va_arg(ap, const char *));
    va_end(ap);
    em_handle(em, &rq, rs);
    em_headers_free(&rq.headers);
    if (rs->stream_read) { /* the journal is streamed: read it all, as the server would */
        char *text = NULL;
        size_t len = 0;
        for (;;) {
            text = realloc(text, len + 1001);
            ssize_t got = rs->stream_read(rs->stream_ctx, len, text + len, 1000);
            if (got < 0)
                break;
            len += (size_t)got;
        }
        text[len] = '\0';
        em_response_set_body(rs, text, NULL);
        rs->stream_free(rs->stream_ctx);
        rs->stream_ctx = NULL;
        rs->stream_read = NULL;
    }
}

#define API_HEADERS "version", "1.0.0", "content-type", "application/json"

static void expect_problem(struct em_response *rs, unsigned status)
{
    assert_int_equal(rs->status, status);
    assert_string_equal(em_headers_get(&rs->headers, "Content-Type"), "application/problem+json");
    assert_string_equal(em_headers_get(&rs->headers, "Version"), "1.0.0");
    json_t *p = json_loads(rs->body, 0, NULL);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "status")), status);
    assert_non_null(json_string_value(json_object_get(p, "detail")));
    assert_non_null(json_string_value(json_object_get(p, "title")));
    json_decref(p);
}

static void test_sync_answer_is_201_with_lcmcoord(void **state)
{
    (void)state;
    struct em_options opt;
    struct em em;
    struct em_response rs;
    em_options_init(&opt);
    make_em(&em, &opt);
    handle(&em, "POST", EM_COORDINATIONS_PATH, valid_request, &rs, API_HEADERS, NULL);
    assert_int_equal(rs.status, 201);
    json_t *c = json_loads(rs.body, 0, NULL);
    const char *id = json_string_value(json_object_get(c, "id"));
    assert_int_equal(strlen(id), EM_ID_LEN);
    char want[256];
    snprintf(want, sizeof want, "http://127.0.0.1:6789/lcmcoord/v1/coordinations/%s", id);
    assert_string_equal(em_headers_get(&rs.headers, "Location"), want);
    assert_string_equal(json_string_value(json_object_get(c, "coordinationResult")), "CONTINUE");
    assert_string_equal(json_string_value(json_object_get(c, "vnfLcmOpOccId")), "op-1");
    assert_string_equal(json_string_value(json_object_get(c, "lcmOperationType")), "HEAL");
    assert_int_equal(json_array_size(json_object_get(json_object_get(c, "outputParams"), "k")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(c, "_links"), "vnfInstance"), "href")),
                        "http://vnfm/vi");
    em_response_free(&rs);

    /* The resource is then readable, and finished. */
    char path[128];
    snprintf(path, sizeof path, "%s/%s", EM_COORDINATIONS_PATH, id);
    handle(&em, "GET", path, NULL, &rs, "version", "1.0.0", NULL);
    assert_int_equal(rs.status, 200);
    em_response_free(&rs);
    snprintf(path, sizeof path, "%s/%s/cancel", EM_COORDINATIONS_PATH, id);
    handle(&em, "POST", path, NULL, &rs, "version", "1.0.0", NULL);
    expect_problem(&rs, 409);
    em_response_free(&rs);
    json_decref(c);
    em_cleanup(&em);
}

static void test_async_answers_and_location_variants(void **state)
{
    (void)state;
    const enum em_location locs[] = {EM_LOCATION_ABSOLUTE, EM_LOCATION_RELATIVE, EM_LOCATION_NONE};
    for (size_t i = 0; i < 3; i++) {
        struct em_options opt;
        struct em em;
        struct em_response rs;
        em_options_init(&opt);
        opt.mode = EM_MODE_ASYNC;
        opt.polls = 2;
        opt.location = locs[i];
        em_retry_parse("7", &opt.retry, NULL, 0);
        make_em(&em, &opt);
        handle(&em, "POST", EM_COORDINATIONS_PATH, valid_request, &rs, API_HEADERS, NULL);
        assert_int_equal(rs.status, 202);
        assert_null(rs.body);
        assert_string_equal(em_headers_get(&rs.headers, "Retry-After"), "7");
        const char *loc = em_headers_get(&rs.headers, "Location");
        if (locs[i] == EM_LOCATION_NONE) {
            assert_null(loc);
        } else {
            const char *want = locs[i] == EM_LOCATION_ABSOLUTE ? "http://127.0.0.1:6789/lcmcoord/"
                                                               : "/lcmcoord/v1/coordinations/";
            assert_memory_equal(loc, want, strlen(want));
            const char *path = strstr(loc, "/lcmcoord/");
            char *p = strdup(path);
            em_response_free(&rs);
            for (int k = 0; k < 2; k++) {
                handle(&em, "GET", p, NULL, &rs, "version", "1.0.0", NULL);
                assert_int_equal(rs.status, 202);
                assert_string_equal(em_headers_get(&rs.headers, "Retry-After"), "7");
                em_response_free(&rs);
            }
            handle(&em, "GET", p, NULL, &rs, "version", "1.0.0", NULL);
            assert_int_equal(rs.status, 200);
            free(p);
        }
        em_response_free(&rs);
        em_cleanup(&em);
    }
}

static void test_rejects_count_valid_posts_only(void **state)
{
    (void)state;
    struct em_options opt;
    struct em em;
    struct em_response rs;
    em_options_init(&opt);
    opt.rejects = 1;
    em_retry_parse("none", &opt.retry, NULL, 0);
    make_em(&em, &opt);
    handle(&em, "POST", EM_COORDINATIONS_PATH, "{}", &rs, API_HEADERS, NULL);
    expect_problem(&rs, 422);
    em_response_free(&rs);
    handle(&em, "POST", EM_COORDINATIONS_PATH, valid_request, &rs, API_HEADERS, NULL);
    expect_problem(&rs, 503);
    assert_null(em_headers_get(&rs.headers, "Retry-After"));
    em_response_free(&rs);
    handle(&em, "POST", EM_COORDINATIONS_PATH, valid_request, &rs, API_HEADERS, NULL);
    assert_int_equal(rs.status, 201);
    em_response_free(&rs);
    assert_int_equal(atomic_load(&em.posts), 3);
    assert_int_equal(em_journal_count(em.journal), 3);
    em_cleanup(&em);
}

static void test_http_level_errors(void **state)
{
    (void)state;
    struct em_options opt;
    struct em em;
    struct em_response rs;
    em_options_init(&opt);
    opt.basic = "u:p";
    make_em(&em, &opt);

    handle(&em, "POST", EM_COORDINATIONS_PATH, valid_request, &rs, API_HEADERS, NULL);
    expect_problem(&rs, 401);
    assert_string_equal(em_headers_get(&rs.headers, "WWW-Authenticate"),
                        "Basic realm=\"lcmcoord\"");
    em_response_free(&rs);

    /* u:p */
    handle(&em, "GET", EM_COORDINATIONS_PATH, NULL, &rs, "authorization", "Basic dTpw", NULL);
    expect_problem(&rs, 405);
    assert_string_equal(em_headers_get(&rs.headers, "Allow"), "POST");
    em_response_free(&rs);
    handle(&em, "GET", "/lcmcoord/v1/nothing", NULL, &rs, "authorization", "Basic dTpw", NULL);
    expect_problem(&rs, 404);
    em_response_free(&rs);
    handle(&em, "POST", EM_COORDINATIONS_PATH, valid_request, &rs, "authorization", "Basic dTpw",
           "content-type", "application/json", NULL);
    expect_problem(&rs, 400);
    em_response_free(&rs);
    handle(&em, "POST", EM_COORDINATIONS_PATH, valid_request, &rs, "authorization", "Basic dTpw",
           "version", "1.0.0", "content-type", "text/json", NULL);
    expect_problem(&rs, 415);
    em_response_free(&rs);
    handle(&em, "GET", EM_COORDINATIONS_PATH "/x", NULL, &rs, "authorization", "Basic dTpw",
           "version", "3", NULL);
    expect_problem(&rs, 406);
    em_response_free(&rs);

    struct em_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.path = EM_COORDINATIONS_PATH;
    rq.body_too_large = true;
    em_headers_add(&rq.headers, "authorization", "Basic dTpw");
    em_handle(&em, &rq, &rs);
    expect_problem(&rs, 413);
    assert_true(rs.may_delay);
    em_headers_free(&rq.headers);
    em_response_free(&rs);

    /* The journal is neither counted, journaled nor delayed; with --basic it needs the
     * same credentials as the API, for reading and for clearing alike. */
    handle(&em, "GET", EM_JOURNAL_PATH, NULL, &rs, NULL);
    expect_problem(&rs, 401);
    em_response_free(&rs);
    handle(&em, "DELETE", EM_JOURNAL_PATH, NULL, &rs, "authorization", "Basic dTpx", NULL);
    expect_problem(&rs, 401);
    em_response_free(&rs);
    assert_int_equal(em_journal_count(em.journal), 7);
    handle(&em, "GET", EM_JOURNAL_PATH, NULL, &rs, "authorization", "Basic dTpw", NULL);
    assert_int_equal(rs.status, 200);
    assert_false(rs.may_delay);
    json_t *j = json_loads(rs.body, 0, NULL);
    assert_int_equal(json_array_size(j), 7);
    json_decref(j);
    em_response_free(&rs);
    handle(&em, "PUT", EM_JOURNAL_PATH, NULL, &rs, NULL);
    expect_problem(&rs, 405);
    assert_string_equal(em_headers_get(&rs.headers, "Allow"), "GET, DELETE");
    em_response_free(&rs);
    handle(&em, "DELETE", EM_JOURNAL_PATH, NULL, &rs, "authorization", "Basic dTpw", NULL);
    assert_int_equal(rs.status, 204);
    em_response_free(&rs);
    assert_int_equal(em_journal_count(em.journal), 0);
    assert_int_equal(atomic_load(&em.requests), 7);
    em_cleanup(&em);
}

static void test_api_versions_need_no_version_header(void **state)
{
    (void)state;
    struct em_options opt;
    struct em em;
    struct em_response rs;
    em_options_init(&opt);
    make_em(&em, &opt);
    handle(&em, "GET", "/lcmcoord/api_versions", NULL, &rs, NULL);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body,
                        "{\"uriPrefix\":\"http://127.0.0.1:6789/lcmcoord/v1\","
                        "\"apiVersions\":[{\"version\":\"1.0.0\",\"isDeprecated\":false}]}");
    em_response_free(&rs);
    em_cleanup(&em);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_request_passes),
        cmocka_unit_test(test_each_field_error_names_the_field),
        cmocka_unit_test(test_every_operation_type_is_accepted),
        cmocka_unit_test(test_version_header),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_body_parse_errors),
        cmocka_unit_test(test_basic_auth_check),
        cmocka_unit_test(test_authorization_is_redacted_to_its_scheme),
        cmocka_unit_test(test_sync_answer_is_201_with_lcmcoord),
        cmocka_unit_test(test_async_answers_and_location_variants),
        cmocka_unit_test(test_rejects_count_valid_posts_only),
        cmocka_unit_test(test_http_level_errors),
        cmocka_unit_test(test_api_versions_need_no_version_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
