/*
 * Unit tests of liblcmcoord's pure logic: how a wait fits the deadline, retry policies, URL
 * handling (apiRoot checks, Location resolution, origins), error messages
 * built from hostile answers, and the checks of LcmCoordRequest and LcmCoord.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "internal.h"

/* ---- waits ---------------------------------------------------------------------------- */

/* How a wait fits the deadline (lcmc__plan_wait). What the coordination waits for each
 * answer (Retry-After, the floor, the default interval) is tested on the coordination
 * itself, in test_flow_coordination.c. */

static void test_wait_that_fits_is_kept(void **state)
{
    (void)state;
    double until = 0;
    assert_int_equal(lcmc__plan_wait(100, 5, 110, 0, 1, &until), LCMC_WAIT_AS_ASKED);
    assert_true(until == 105);
}

static void test_post_wait_past_deadline_fails_at_once(void **state)
{
    (void)state;
    double until = 0;
    assert_int_equal(lcmc__plan_wait(100, 30, 110, 0, 1, &until), LCMC_WAIT_PAST_DEADLINE);
}

static void test_poll_wait_past_deadline_is_cut_for_a_last_look(void **state)
{
    (void)state;
    double until = 0;
    assert_int_equal(lcmc__plan_wait(100, 30, 110, 1, 2, &until), LCMC_WAIT_SHORTENED);
    assert_true(until == 108);
}

static void test_poll_wait_with_no_room_left_fails(void **state)
{
    (void)state;
    double until = 0;
    assert_int_equal(lcmc__plan_wait(109, 30, 110, 1, 2, &until), LCMC_WAIT_PAST_DEADLINE);
}

/* ---- URLs ----------------------------------------------------------------------------- */

static void test_endpoint_keeps_its_path_prefix_and_loses_trailing_slashes(void **state)
{
    (void)state;
    char why[128] = "";
    char *e = lcmc__normalise_endpoint("http://EM.example:6789/prefix//", why, sizeof why);
    assert_non_null(e);
    assert_string_equal(e, "http://EM.example:6789/prefix");
    char *joined = lcmc__url_join(e, "/lcmcoord/v1/coordinations");
    assert_string_equal(joined, "http://EM.example:6789/prefix/lcmcoord/v1/coordinations");
    free(joined);
    free(e);
}

static void test_endpoint_without_scheme_is_refused_with_a_reason(void **state)
{
    (void)state;
    char why[128] = "";
    assert_null(lcmc__normalise_endpoint("em.example:6789", why, sizeof why));
    assert_non_null(strstr(why, "endpoint"));
    assert_null(lcmc__normalise_endpoint("ftp://em.example/", why, sizeof why));
    assert_non_null(strstr(why, "http"));
    assert_null(lcmc__normalise_endpoint("", why, sizeof why));
    assert_null(lcmc__normalise_endpoint("http://h/?q=1", why, sizeof why));
    assert_non_null(strstr(why, "query"));
    assert_null(lcmc__normalise_endpoint("http://u:secret@h/", why, sizeof why));
    assert_null(strstr(why, "secret"));
}

static void test_relative_location_resolves_against_the_request(void **state)
{
    (void)state;
    char why[128] = "";
    const char *base = "http://h:1/p/lcmcoord/v1/coordinations";
    char *u = lcmc__resolve_location(base, "coordinations/abc", why, sizeof why);
    assert_string_equal(u, "http://h:1/p/lcmcoord/v1/coordinations/abc");
    free(u);
    u = lcmc__resolve_location(base, "/lcmcoord/v1/coordinations/abc", why, sizeof why);
    assert_string_equal(u, "http://h:1/lcmcoord/v1/coordinations/abc");
    free(u);
    u = lcmc__resolve_location(base, "../v1/coordinations/x#frag", why, sizeof why);
    assert_string_equal(u, "http://h:1/p/lcmcoord/v1/coordinations/x");
    free(u);
    u = lcmc__resolve_location(base, "http://u:pw@h:1/c/1", why, sizeof why);
    assert_string_equal(u, "http://h:1/c/1");
    free(u);
}

static void test_absolute_location_on_another_host_is_kept(void **state)
{
    (void)state;
    char why[128] = "";
    char *u = lcmc__resolve_location("http://h:1/a", "https://other:8443/c/1", why, sizeof why);
    assert_string_equal(u, "https://other:8443/c/1");
    free(u);
}

static void test_location_to_another_scheme_or_empty_is_refused(void **state)
{
    (void)state;
    char why[128] = "";
    assert_null(lcmc__resolve_location("http://h:1/a", "file:///etc/passwd", why, sizeof why));
    assert_non_null(strstr(why, "http"));
    assert_null(lcmc__resolve_location("http://h:1/a", "", why, sizeof why));
    assert_non_null(strstr(why, "empty"));
}

static void test_origins_fill_default_ports_and_ignore_host_case(void **state)
{
    (void)state;
    char *a = lcmc__url_origin("https://EM.example/x");
    char *b = lcmc__url_origin("https://em.example:443/y");
    char *c = lcmc__url_origin("http://em.example/y");
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    free(a);
    free(b);
    free(c);
}

static void test_last_segment_is_the_coordination_id(void **state)
{
    (void)state;
    char *id = lcmc__url_last_segment("http://h/lcmcoord/v1/coordinations/ab%20c/");
    assert_string_equal(id, "ab c");
    free(id);
    assert_null(lcmc__url_last_segment("http://h/"));
}

/* ---- messages ------------------------------------------------------------------------- */

static void test_problem_detail_makes_the_message(void **state)
{
    (void)state;
    const char *body = "{\"status\":409,\"title\":\"Conflict\",\"detail\":\"VNFC still draining\"}";
    json_t *problem = lcmc__decode_problem(body, strlen(body));
    char *m =
        lcmc__http_error_message(409, problem, "application/problem+json; charset=utf-8", body,
                                 strlen(body), "POST", "http://h:1/lcmcoord/v1/coordinations");
    assert_string_equal(
        m, "EM answered 409 Conflict: VNFC still draining (POST /lcmcoord/v1/coordinations)");
    free(m);
    json_decref(problem);
}

static void test_problem_without_detail_falls_back_to_title(void **state)
{
    (void)state;
    const char *body = "{\"status\":403,\"title\":\"Rejected by policy\"}";
    json_t *problem = lcmc__decode_problem(body, strlen(body));
    char *m = lcmc__http_error_message(403, problem, NULL, body, strlen(body), "GET",
                                       "http://h/lcmcoord/v1/coordinations/1");
    assert_non_null(strstr(m, "403 Forbidden: Rejected by policy"));
    free(m);
    json_decref(problem);
}

static void test_html_error_page_is_described_not_quoted(void **state)
{
    (void)state;
    const char *body = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    char *m =
        lcmc__http_error_message(502, NULL, "text/html", body, strlen(body), "POST", "http://h/x");
    assert_non_null(strstr(m, "502 Bad Gateway: text/html body of"));
    assert_null(strstr(m, "<html>"));
    free(m);
}

static void test_short_plain_text_body_is_quoted_on_one_line(void **state)
{
    (void)state;
    const char *body = "upstream\r\ntimed out\x1b[31m";
    char *m =
        lcmc__http_error_message(504, NULL, "text/plain", body, strlen(body), "POST", "http://h/x");
    assert_string_equal(m, "EM answered 504 Gateway Timeout: upstream timed out [31m (POST /x)");
    free(m);
}

static void test_empty_error_body_says_so(void **state)
{
    (void)state;
    char *m = lcmc__http_error_message(500, NULL, NULL, NULL, 0, "POST", "http://h/x");
    assert_string_equal(m, "EM answered 500 Internal Server Error: empty body (POST /x)");
    free(m);
}

static void test_one_line_cuts_long_text_on_a_character_boundary(void **state)
{
    (void)state;
    const char *text = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"; /* four two-byte characters */
    char *s = lcmc__one_line(text, strlen(text), 5);
    assert_string_equal(s, "\xc3\xa9\xc3\xa9...");
    free(s);
}

static void test_reason_phrases(void **state)
{
    (void)state;
    assert_string_equal(lcmc__reason_phrase(503), "Service Unavailable");
    assert_string_equal(lcmc__reason_phrase(299), "");
}

/* ---- protocol data --------------------------------------------------------------------- */

static json_t *valid_request(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:{s:s}, s:{s:s}}}", "vnfInstanceId", "i",
                     "vnfLcmOpOccId", "o", "lcmOperationType", "CHANGE_VNFPKG",
                     "coordinationActionName", "a", "_links", "vnfLcmOpOcc", "href", "h",
                     "vnfInstance", "href", "h");
}

static void test_valid_request_passes(void **state)
{
    (void)state;
    json_t *r = valid_request();
    char why[256] = "";
    assert_int_equal(lcmc__validate_request(r, why, sizeof why), 0);
    json_decref(r);
}

static void expect_request_error(json_t *r, const char *needle)
{
    char why[256] = "";
    assert_int_equal(lcmc__validate_request(r, why, sizeof why), -1);
    if (strstr(why, needle) == NULL)
        fail_msg("expected '%s' in '%s'", needle, why);
    json_decref(r);
}

static void test_request_errors_name_the_field(void **state)
{
    (void)state;
    json_t *r = valid_request();
    json_object_del(r, "vnfLcmOpOccId");
    expect_request_error(r, "vnfLcmOpOccId is missing");

    r = valid_request();
    json_object_set_new(r, "lcmOperationType", json_string("UPGRADE"));
    expect_request_error(r, "lcmOperationType: 'UPGRADE'");

    r = valid_request();
    json_object_set_new(r, "coordinationActionName", json_integer(3));
    expect_request_error(r, "coordinationActionName must be a string");

    r = valid_request();
    json_object_set_new(r, "inputParams", json_array());
    expect_request_error(r, "inputParams must be an object");

    r = valid_request();
    json_object_del(json_object_get(r, "_links"), "vnfInstance");
    expect_request_error(r, "_links.vnfInstance is missing");

    r = valid_request();
    json_object_set_new(json_object_get(json_object_get(r, "_links"), "vnfLcmOpOcc"), "href",
                        json_string(""));
    expect_request_error(r, "_links.vnfLcmOpOcc.href must not be empty");

    expect_request_error(json_array(), "JSON object");
}

static void test_lcmcoord_results_are_checked(void **state)
{
    (void)state;
    lcmc_result result;
    char why[256] = "";
    json_t *ok = json_pack("{s:s, s:s, s:s}", "id", "1", "coordinationResult", "ABORT", "warnings",
                           "one warning");
    assert_int_equal(lcmc__validate_lcmcoord(ok, &result, why, sizeof why), 0);
    assert_int_equal(result, LCMC_RESULT_ABORT);
    json_decref(ok);

    json_t *list = json_pack("{s:s, s:s, s:[s,s]}", "id", "1", "coordinationResult", "CONTINUE",
                             "warnings", "a", "b");
    assert_int_equal(lcmc__validate_lcmcoord(list, &result, why, sizeof why), 0);
    json_decref(list);

    json_t *unknown = json_pack("{s:s, s:s}", "id", "1", "coordinationResult", "MAYBE");
    assert_int_equal(lcmc__validate_lcmcoord(unknown, &result, why, sizeof why), -1);
    assert_non_null(strstr(why, "'MAYBE'"));
    assert_int_equal(result, LCMC_RESULT_NONE);
    json_decref(unknown);

    json_t *no_result = json_pack("{s:s}", "id", "1");
    assert_int_equal(lcmc__validate_lcmcoord(no_result, &result, why, sizeof why), -1);
    assert_non_null(strstr(why, "no coordinationResult"));
    json_decref(no_result);

    json_t *numeric_id = json_pack("{s:i, s:s}", "id", 7, "coordinationResult", "CONTINUE");
    assert_int_equal(lcmc__validate_lcmcoord(numeric_id, &result, why, sizeof why), -1);
    assert_non_null(strstr(why, "id"));
    json_decref(numeric_id);
}

static void test_buffer_refuses_to_grow_past_its_cap(void **state)
{
    (void)state;
    lcmc_buffer b = {.cap = 8};
    assert_int_equal(lcmc__buffer_append(&b, "1234", 4), 0);
    assert_int_equal(lcmc__buffer_append(&b, "5678", 4), 0);
    assert_int_equal(lcmc__buffer_append(&b, "9", 1), -1);
    assert_true(b.overflowed);
    assert_string_equal(b.data, "12345678");
    lcmc__buffer_free(&b);
}

static void test_times_are_rfc3339_utc_with_milliseconds(void **state)
{
    (void)state;
    char text[32];
    lcmc__format_time(1764076800.25, text);
    assert_string_equal(text, "2025-11-25T13:20:00.250Z");
}

/* ---- retry policies --------------------------------------------------------------------- */

static lcmc_retry_outcome answered(int attempt, int status)
{
    lcmc_retry_outcome o = {0};
    o.attempt = attempt;
    o.status = status;
    return o;
}

static void test_policy_backs_off_exponentially_up_to_its_cap(void **state)
{
    (void)state;
    lcmc_retry_policy p = LCMC_RETRY_POLICY_INIT;
    p.attempts = 10;
    p.jitter = 0;
    lcmc_retry_outcome o = answered(1, 503);
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 1);
    o.attempt = 3;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 4);
    o.attempt = 9;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 30);
}

static void test_policy_jitter_shortens_within_its_fraction(void **state)
{
    (void)state;
    lcmc_retry_policy p = LCMC_RETRY_POLICY_INIT;
    p.base = 10;
    p.jitter = 0.5;
    p.floor = 0;
    lcmc_retry_outcome o = answered(1, 429);
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 10);
    assert_true(lcmc_retry_next_wait(&p, &o, 0.5) == 7.5);
    assert_true(lcmc_retry_next_wait(&p, &o, 0.999) > 5);
}

static void test_policy_honours_retry_after_over_backoff(void **state)
{
    (void)state;
    lcmc_retry_policy p = LCMC_RETRY_POLICY_INIT;
    lcmc_retry_outcome o = answered(1, 503);
    o.retry_after_present = 1;
    o.retry_after = 7;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 7);
    o.retry_after = 0; /* never a hot loop */
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 1);
    p.honour_retry_after = 0;
    o.retry_after = 7;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 1);
}

static void test_policy_stops_on_other_statuses_and_when_attempts_run_out(void **state)
{
    (void)state;
    lcmc_retry_policy p = LCMC_RETRY_POLICY_INIT;
    lcmc_retry_outcome o = answered(1, 400);
    assert_true(lcmc_retry_next_wait(&p, &o, 0) < 0);
    o = answered(3, 503); /* the third of three attempts */
    assert_true(lcmc_retry_next_wait(&p, &o, 0) < 0);
    o = answered(1, 0);
    o.transport_failure = 1;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) >= 1);
    p.retry_on_transport = 0;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) < 0);
}

static void test_policy_deadline_caps_the_wait_then_ends(void **state)
{
    (void)state;
    lcmc_retry_policy p = LCMC_RETRY_POLICY_INIT;
    p.attempts = 0;
    p.deadline = 10;
    lcmc_retry_outcome o = answered(1, 503);
    o.retry_after_present = 1;
    o.retry_after = 600;
    o.elapsed = 8;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) == 2);
    o.elapsed = 10;
    assert_true(lcmc_retry_next_wait(&p, &o, 0) < 0);
}

/* ---- OAuth 2.0 -------------------------------------------------------------------------- */

static void test_form_encoding_follows_rfc6749(void **state)
{
    (void)state;
    char *e = lcmc__form_encode("a b:c%d+e/f~g.h_i-j*k\xc3\xa9");
    assert_string_equal(e, "a+b%3Ac%25d%2Be%2Ff%7Eg.h_i-j*k%C3%A9");
    free(e);
}

static void test_token_answer_is_read(void **state)
{
    (void)state;
    const char *body = "{\"access_token\":\"t0k\",\"token_type\":\"bearer\",\"expires_in\":60}";
    char *token = NULL;
    double expires_in = 0;
    int has_expiry = 0;
    char why[160] = "";
    assert_int_equal(lcmc__parse_token_response(body, strlen(body), &token, &expires_in,
                                                &has_expiry, why, sizeof why),
                     0);
    assert_string_equal(token, "t0k");
    assert_true(has_expiry);
    assert_true(expires_in == 60);
    free(token);
}

static void expect_token_error(const char *body, const char *needle)
{
    char *token = NULL;
    double expires_in = 0;
    int has_expiry = 0;
    char why[160] = "";
    assert_int_equal(lcmc__parse_token_response(body, strlen(body), &token, &expires_in,
                                                &has_expiry, why, sizeof why),
                     -1);
    assert_null(token);
    if (strstr(why, needle) == NULL)
        fail_msg("expected '%s' in '%s'", needle, why);
}

static void test_bad_token_answers_are_named(void **state)
{
    (void)state;
    expect_token_error("{\"token_type\":\"Bearer\"}", "no access_token");
    expect_token_error("{\"access_token\":\"x\"}", "no token_type");
    expect_token_error("{\"access_token\":\"x\",\"token_type\":\"mac\"}", "'mac' is not Bearer");
    expect_token_error("{\"access_token\":\"x\",\"token_type\":\"Bearer\",\"expires_in\":\"1\"}",
                       "expires_in is not a number");
    expect_token_error("<html>", "not a JSON object");
    expect_token_error("", "not a JSON object");
}

static void test_token_without_expiry_is_kept(void **state)
{
    (void)state;
    const char *body = "{\"access_token\":\"x\",\"token_type\":\"Bearer\"}";
    char *token = NULL;
    double expires_in = 0;
    int has_expiry = 1;
    char why[160] = "";
    assert_int_equal(lcmc__parse_token_response(body, strlen(body), &token, &expires_in,
                                                &has_expiry, why, sizeof why),
                     0);
    assert_false(has_expiry);
    free(token);
}

static void test_strongest_auth_type_wins(void **state)
{
    (void)state;
    lcmc_auth auth;
    char why[256] = "";
    const char *both = "{\"authType\":[\"BASIC\",\"OAUTH2_CLIENT_CREDENTIALS\"],"
                       "\"paramsBasic\":{\"userName\":\"u\",\"password\":\"p\"},"
                       "\"paramsOauth2ClientCredentials\":{\"clientId\":\"c\","
                       "\"clientPassword\":\"s\",\"tokenEndpoint\":\"https://h/token\"}}";
    assert_int_equal(lcmc__auth_parse(&auth, both, why, sizeof why), LCMC_OK);
    assert_int_equal(auth.type, LCMC_AUTH_OAUTH2_CLIENT_CREDENTIALS);
    lcmc__auth_clear(&auth);
}

static void test_auth_errors_name_the_field_not_the_secret(void **state)
{
    (void)state;
    lcmc_auth auth;
    char why[256] = "";
    const char *no_endpoint = "{\"authType\":[\"OAUTH2_CLIENT_CREDENTIALS\"],"
                              "\"paramsOauth2ClientCredentials\":{\"clientId\":\"c\","
                              "\"clientPassword\":\"Sup3rS3cret\"}}";
    assert_int_equal(lcmc__auth_parse(&auth, no_endpoint, why, sizeof why), LCMC_EUSAGE);
    assert_non_null(strstr(why, "paramsOauth2ClientCredentials.tokenEndpoint is missing"));
    assert_null(strstr(why, "Sup3rS3cret"));

    const char *bad_ref = "{\"authType\":[\"OAUTH2_CLIENT_CERT\"],"
                          "\"paramsOauth2ClientCert\":{\"clientId\":\"c\","
                          "\"tokenEndpoint\":\"https://h/token\","
                          "\"certificateRef\":{\"type\":\"x5t\",\"value\":\"v\"}}}";
    assert_int_equal(lcmc__auth_parse(&auth, bad_ref, why, sizeof why), LCMC_EUSAGE);
    assert_non_null(strstr(why, "certificateRef.type must be x5t#S256"));

    /* jansson quotes the input near a syntax error: a secret must not reach the message. */
    assert_int_equal(lcmc__auth_parse(&auth, "{\"paramsBasic\":{\"password\":\"Sup3r\\qS3cret\"}}",
                                      why, sizeof why),
                     LCMC_EUSAGE);
    assert_non_null(strstr(why, "not valid JSON"));
    assert_null(strstr(why, "Sup3r"));

    assert_int_equal(lcmc__auth_parse(&auth, "{\"authType\":[\"DIGEST\"]}", why, sizeof why),
                     LCMC_EUSAGE);
    assert_non_null(strstr(why, "authType[1]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_that_fits_is_kept),
        cmocka_unit_test(test_post_wait_past_deadline_fails_at_once),
        cmocka_unit_test(test_poll_wait_past_deadline_is_cut_for_a_last_look),
        cmocka_unit_test(test_poll_wait_with_no_room_left_fails),
        cmocka_unit_test(test_endpoint_keeps_its_path_prefix_and_loses_trailing_slashes),
        cmocka_unit_test(test_endpoint_without_scheme_is_refused_with_a_reason),
        cmocka_unit_test(test_relative_location_resolves_against_the_request),
        cmocka_unit_test(test_absolute_location_on_another_host_is_kept),
        cmocka_unit_test(test_location_to_another_scheme_or_empty_is_refused),
        cmocka_unit_test(test_origins_fill_default_ports_and_ignore_host_case),
        cmocka_unit_test(test_last_segment_is_the_coordination_id),
        cmocka_unit_test(test_problem_detail_makes_the_message),
        cmocka_unit_test(test_problem_without_detail_falls_back_to_title),
        cmocka_unit_test(test_html_error_page_is_described_not_quoted),
        cmocka_unit_test(test_short_plain_text_body_is_quoted_on_one_line),
        cmocka_unit_test(test_empty_error_body_says_so),
        cmocka_unit_test(test_one_line_cuts_long_text_on_a_character_boundary),
        cmocka_unit_test(test_reason_phrases),
        cmocka_unit_test(test_valid_request_passes),
        cmocka_unit_test(test_request_errors_name_the_field),
        cmocka_unit_test(test_lcmcoord_results_are_checked),
        cmocka_unit_test(test_buffer_refuses_to_grow_past_its_cap),
        cmocka_unit_test(test_times_are_rfc3339_utc_with_milliseconds),
        cmocka_unit_test(test_policy_backs_off_exponentially_up_to_its_cap),
        cmocka_unit_test(test_policy_jitter_shortens_within_its_fraction),
        cmocka_unit_test(test_policy_honours_retry_after_over_backoff),
        cmocka_unit_test(test_policy_stops_on_other_statuses_and_when_attempts_run_out),
        cmocka_unit_test(test_policy_deadline_caps_the_wait_then_ends),
        cmocka_unit_test(test_form_encoding_follows_rfc6749),
        cmocka_unit_test(test_token_answer_is_read),
        cmocka_unit_test(test_bad_token_answers_are_named),
        cmocka_unit_test(test_token_without_expiry_is_kept),
        cmocka_unit_test(test_strongest_auth_type_wins),
        cmocka_unit_test(test_auth_errors_name_the_field_not_the_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
