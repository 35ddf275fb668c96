/*
 * The structured entry points of lcmcoord/json.h (docs/c-api.md, "JSON as values") and the
 * one set of JSON rules behind them, on the real runtime with a scripted EM (flow_fake.h):
 * what a value sent becomes on the wire, what an answer gives back as a value, and what
 * lcmc_json_parse refuses, with messages that never quote the text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow_fake.h"
#include "lcmcoord/json.h"

#define COORDINATIONS "/lcmcoord/v1/coordinations"

static int setup(void **state)
{
    *state = fake_new(NULL);
    return 0;
}

static int teardown(void **state)
{
    fake_free(*state);
    return 0;
}

static void assert_contains(const char *text, const char *part)
{
    if (text == NULL || strstr(text, part) == NULL)
        fail_msg("'%s' does not contain '%s'", text ? text : "(null)", part);
}

/* A valid LcmCoordRequest whose inputParams hold numbers a double or 14 digits would
 * change. The caller owns it. */
static json_t *request_value(void)
{
    json_error_t err;
    json_t *request = json_pack_ex(
        &err, 0, "{s:s, s:s, s:s, s:s, s:{s:I, s:I, s:f, s:f}, s:{s:{s:s}, s:{s:s}}}",
        "vnfInstanceId", "vnf-1", "vnfLcmOpOccId", "op-1", "lcmOperationType", "SCALE",
        "coordinationActionName", "prepare_vnfc_drain", "inputParams", "requestSerial",
        (json_int_t)1732700000123456LL, "maxSessions", (json_int_t)12345678901234567LL, "ratio",
        0.1, "big", 1.7976931348623157e308, "_links", "vnfLcmOpOcc", "href",
        "http://vnfm.test/lcm/op-1", "vnfInstance", "href", "http://vnfm.test/vnf/vnf-1");
    if (request == NULL)
        fail_msg("json_pack: %s", err.text);
    return request;
}

/* The value is written once, as the body, and reads back as the same value: integers as
 * integers, reals as the same doubles. */
static void test_a_request_value_goes_out_with_the_same_numbers(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    json_t *request = request_value();
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_client_coordinate_value(f->client, request, 60, &c), LCMC_OK);
    const char *body = fake_nth(f, 0)->body;
    assert_contains(body, "\"requestSerial\":1732700000123456");
    assert_contains(body, "\"maxSessions\":12345678901234567");
    json_t *sent = lcmc_json_parse(body, strlen(body), NULL, 0);
    assert_non_null(sent);
    assert_true(json_equal(sent, request));
    json_t *input = json_object_get(sent, "inputParams");
    assert_true(json_is_integer(json_object_get(input, "requestSerial")));
    assert_true(json_real_value(json_object_get(input, "ratio")) == 0.1);
    assert_true(json_real_value(json_object_get(input, "big")) == 1.7976931348623157e308);
    json_decref(sent);
    json_decref(request);
    lcmc_coordination_free(c);
}

/* The LcmCoord as a value: parsed when it arrived, integers kept. */
static void test_the_lcmcoord_comes_back_as_a_value(void **state)
{
    fake *f = *state;
    fake_answer answer = fake_lcmcoord(201, "c-1", "CONTINUE");
    answer.body = "{\"id\":\"c-1\",\"coordinationResult\":\"CONTINUE\","
                  "\"outputParams\":{\"serial\":12345678901234567,\"ratio\":0.1,\"none\":null}}";
    fake_expect(f, "POST", COORDINATIONS, answer);
    json_t *request = request_value();
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_client_coordinate_value(f->client, request, 60, &c), LCMC_OK);
    const json_t *lcmcoord = lcmc_coordination_lcmcoord_value(c);
    assert_true(json_is_object(lcmcoord));
    const json_t *output = json_object_get(lcmcoord, "outputParams");
    assert_true(json_is_integer(json_object_get(output, "serial")));
    assert_true(json_integer_value(json_object_get(output, "serial")) == 12345678901234567LL);
    assert_true(json_real_value(json_object_get(output, "ratio")) == 0.1);
    assert_true(json_is_null(json_object_get(output, "none")));
    /* The text is still the EM's own bytes. */
    assert_string_equal(lcmc_coordination_lcmcoord_json(c), answer.body);
    json_decref(request);
    lcmc_coordination_free(c);
}

/* A value that is no LcmCoordRequest is refused as the text would be; nothing is sent. */
static void test_an_invalid_request_value_is_refused_before_sending(void **state)
{
    fake *f = *state;
    json_t *request = json_pack("[i]", 1);
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_coordination_start_value(&c, f->client, request, 60), LCMC_EINVALID);
    assert_non_null(c);
    assert_contains(lcmc_error_message(lcmc_coordination_error(c)), "invalid LcmCoordRequest");
    assert_null(lcmc_coordination_lcmcoord_value(c));
    assert_int_equal(f->request_count, 0);
    lcmc_coordination_free(c);
    json_decref(request);
    assert_int_equal(lcmc_coordination_start_value(&c, f->client, NULL, 60), LCMC_EUSAGE);
    assert_null(c);
}

/* The ProblemDetails of an error answer as a value. */
static void test_the_problem_comes_back_as_a_value(void **state)
{
    fake *f = *state;
    fake_answer answer = fake_status(409, FAKE_ANSWER_TIME);
    answer.body = "{\"status\":409,\"detail\":\"not now\",\"retryAfterSerial\":1732700000123456}";
    answer.content_type = "application/problem+json";
    fake_expect(f, "POST", COORDINATIONS, answer);
    json_t *request = request_value();
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_client_coordinate_value(f->client, request, 60, &c), LCMC_EHTTP);
    const json_t *problem = lcmc_error_problem_value(lcmc_coordination_error(c));
    assert_true(json_is_object(problem));
    assert_string_equal(json_string_value(json_object_get(problem, "detail")), "not now");
    assert_true(json_integer_value(json_object_get(problem, "retryAfterSerial")) ==
                1732700000123456LL);
    json_decref(request);
    lcmc_coordination_free(c);
}

/* A single request with a value body, and its answer's body as a value (parsed once, then
 * the same pointer); a body that breaks the rules has no value. */
static void test_single_requests_send_and_read_values(void **state)
{
    fake *f = *state;
    fake_answer ok = fake_status(200, FAKE_ANSWER_TIME);
    ok.body = "{\"n\":12345678901234567,\"list\":[]}";
    ok.content_type = "application/json";
    fake_expect(f, "POST", "/anything", ok);
    fake_answer duplicate = fake_status(200, FAKE_ANSWER_TIME);
    duplicate.body = "{\"a\":1,\"a\":2}";
    duplicate.content_type = "application/json";
    fake_expect(f, "GET", "/duplicate", duplicate);

    json_t *body = json_pack("{s:I}", "serial", (json_int_t)1732700000123456LL);
    lcmc_response *r = NULL;
    assert_int_equal(lcmc_client_request_value(f->client, "POST", "/anything", body, 10, &r),
                     LCMC_OK);
    assert_string_equal(fake_nth(f, 0)->body, "{\"serial\":1732700000123456}");
    const json_t *value = lcmc_response_body_value(r);
    assert_true(json_is_object(value));
    assert_true(json_integer_value(json_object_get(value, "n")) == 12345678901234567LL);
    assert_true(json_is_array(json_object_get(value, "list")));
    assert_ptr_equal(lcmc_response_body_value(r), value);
    lcmc_response_free(r);
    json_decref(body);

    assert_int_equal(lcmc_client_request(f->client, "GET", "/duplicate", NULL, 10, &r), LCMC_OK);
    assert_null(lcmc_response_body_value(r));
    size_t length = 0;
    assert_string_equal(lcmc_response_body(r, &length), duplicate.body);
    lcmc_response_free(r);
    fake_assert_all_used(f);
}

/* The records as values, the same as their text. */
static void test_records_as_values(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    lcmc_coordination *c = NULL;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    lcmc_coordination_free(c);
    json_t *value = NULL;
    char *text = NULL;
    assert_int_equal(lcmc_client_record_value(f->client, &value), LCMC_OK);
    assert_int_equal(lcmc_client_record_json(f->client, &text), LCMC_OK);
    json_t *parsed = lcmc_json_parse(text, strlen(text), NULL, 0);
    assert_true(json_equal(value, parsed));
    assert_int_equal(json_array_size(json_object_get(value, "lcmCoordinations")), 1);
    json_decref(parsed);
    json_decref(value);
    lcmc_free(text);
    assert_int_equal(lcmc_engine_record_value(f->engine, &value), LCMC_OK);
    assert_int_equal(json_array_size(json_object_get(value, "lcmCoordinations")), 1);
    json_decref(value);
}

/* Parses `text`, which must be refused with a reason containing `part` and never `secret`. */
static void assert_refused(const char *text, size_t length, const char *part)
{
    char why[200] = "";
    json_t *value = lcmc_json_parse(text, length, why, sizeof why);
    if (value != NULL)
        fail_msg("accepted: %s", text);
    assert_contains(why, part);
    assert_contains(why, "at line 1, column ");
    if (strstr(why, "s3cret") != NULL)
        fail_msg("the reason quotes the text: %s", why);
}

static void test_the_rules_of_every_text(void **state)
{
    (void)state;
    assert_refused("{\"password\":\"s3cret\",\"password\":\"x\"}", 36, "same key twice");
    assert_refused("{\"password\":\"s3cret\",\"n\":92233720368547758070}", 46, "out of range");
    assert_refused("{\"password\":\"s3cret\",\"n\":1e400}", 31, "out of range");
    assert_refused("{\"password\":\"s3cret\\u0000\"}", 27, "NUL");
    assert_refused("{\"password\":\"s3cret\xff\"}", 22, "invalid UTF-8");
    assert_refused("{\"password\":\"s3cret\",\"n\":NaN}", 29, "invalid JSON");
    assert_refused("{\"password\":\"s3cret\"", 20, "ends before the value does");
    assert_refused("{\"password\":\"s3cret\"} x", 23, "more text after the value");

    /* Nesting: LCMC_JSON_MAX_DEPTH accepted, one more refused. */
    size_t depth = LCMC_JSON_MAX_DEPTH + 1;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    assert_refused(deep, 2 * depth, "nested deeper than 2048");
    json_t *value = lcmc_json_parse(deep + 1, 2 * depth - 2, NULL, 0);
    assert_non_null(value);
    json_decref(value);
    free(deep);

    /* Any value at the top; integers and reals written back exactly. */
    const char *numbers = "[1732700000123456,-9223372036854775808,0.1,-0.0,3.0,1e+300]";
    value = lcmc_json_parse(numbers, strlen(numbers), NULL, 0);
    assert_non_null(value);
    size_t length = 0;
    char *text = lcmc_json_dump(value, &length);
    assert_string_equal(text, "[1732700000123456,-9223372036854775808,0.10000000000000001,-0.0,"
                              "3.0,1.0000000000000001e300]");
    assert_int_equal(length, strlen(text));
    json_t *again = lcmc_json_parse(text, length, NULL, 0);
    assert_true(json_equal(value, again));
    json_decref(again);
    lcmc_free(text);
    json_decref(value);
    value = lcmc_json_parse("\"x\"", 3, NULL, 0);
    assert_true(json_is_string(value));
    json_decref(value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_request_value_goes_out_with_the_same_numbers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_lcmcoord_comes_back_as_a_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_invalid_request_value_is_refused_before_sending,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_problem_comes_back_as_a_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_requests_send_and_read_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_as_values, setup, teardown),
        cmocka_unit_test(test_the_rules_of_every_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
