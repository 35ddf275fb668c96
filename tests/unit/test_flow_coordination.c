/*
 * The flow of one coordination (docs/design.md, "The flow of one coordination" and
 * "Waits"), row by row, on the real coordination state machine with a scripted EM and a
 * fake clock (flow_fake.h): 201, 202 and its polls, 503/429 on the POST and on a poll,
 * every form of Retry-After (seconds, HTTP-date ahead and past, absent, garbage), the
 * floor, error answers, and transport failures before and after the request went out.
 * Waits are checked to the millisecond of fake time.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow_fake.h"

#define COORDINATIONS "/lcmcoord/v1/coordinations"
#define POLLED        "/lcmcoord/v1/coordinations/c-1"
#define ANSWER        FAKE_ANSWER_TIME

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

static void assert_near(double actual, double expected)
{
    if (fabs(actual - expected) > 1e-6)
        fail_msg("%.6f != %.6f", actual, expected);
}

static const char *message(const lcmc_coordination *c)
{
    return lcmc_error_message(lcmc_coordination_error(c));
}

static void assert_contains(const char *text, const char *part)
{
    if (text == NULL || strstr(text, part) == NULL)
        fail_msg("'%s' does not contain '%s'", text ? text : "(null)", part);
}

/* POST -> 201: the LcmCoord is the result; the body sent is the request as given. */
static void test_post_201_is_the_result(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-9", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_int_equal(lcmc_coordination_result(c), LCMC_RESULT_CONTINUE);
    assert_string_equal(lcmc_coordination_id(c), "c-9");
    assert_string_equal(fake_nth(f, 0)->url, "http://em.test:8080" COORDINATIONS);
    assert_string_equal(fake_nth(f, 0)->body, FAKE_REQUEST_JSON);
    assert_near(fake_elapsed(f), ANSWER);
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* POST -> 201 whose body is no LcmCoord: a protocol error, nothing sent again. */
static void test_post_201_without_an_lcmcoord_is_a_protocol_error(void **state)
{
    fake *f = *state;
    fake_answer a = fake_status(201, ANSWER);
    a.body = "{\"id\":\"c-1\",\"coordinationResult\":\"MAYBE\"}";
    fake_expect(f, "POST", COORDINATIONS, a);
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EPROTOCOL);
    assert_contains(message(c), "EM answered 201 Created but");
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* POST -> 202 (Location relative, no Retry-After: the default interval), GET -> 202
 * (Retry-After 3), GET -> 200: the polls come exactly when the EM said. */
static void test_post_202_then_polls_until_200(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted("coordinations/c-1", NULL));
    fake_expect(f, "GET", POLLED, fake_accepted(NULL, "3"));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "ABORT"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_int_equal(lcmc_coordination_result(c), LCMC_RESULT_ABORT);
    assert_string_equal(lcmc_coordination_id(c), "c-1");
    /* Resolved against the POST's URL. */
    assert_string_equal(fake_nth(f, 1)->url, "http://em.test:8080" POLLED);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, ANSWER + 5);
    assert_near(fake_nth(f, 2)->handed_at - FAKE_T0, ANSWER + 5 + ANSWER + 3);
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* GET -> 200 about another coordination than the one polled: a protocol error. */
static void test_poll_answer_about_another_coordination_is_refused(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-2", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EPROTOCOL);
    assert_contains(message(c), "coordination 'c-2', not of 'c-1'");
    lcmc_coordination_free(c);
}

/* POST -> 202 without a Location: nothing to poll. */
static void test_post_202_without_location_is_a_protocol_error(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(NULL, "1"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EPROTOCOL);
    assert_contains(message(c), "without a Location header");
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* POST -> 503: a rejection in the record, the Retry-After waited, the identical body
 * resent. */
static void test_post_503_is_recorded_waited_and_resent_identically(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, "7"));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, ANSWER + 7);
    assert_string_equal(fake_nth(f, 1)->body, fake_nth(f, 0)->body);
    char *record = NULL;
    assert_int_equal(lcmc_client_record_json(f->client, &record), LCMC_OK);
    /* Rejected at +0.25 s, to be retried 7 s later. */
    assert_contains(record, "\"rejectionTime\": \"2027-01-15T08:00:00.250Z\"");
    assert_contains(record, "\"delay\": \"2027-01-15T08:00:07.250Z\"");
    lcmc_free(record);
    lcmc_coordination_free(c);
}

/* POST -> 429: waited and resent like a 503, but it is no rejection of the record. */
static void test_post_429_is_resent_without_a_rejection(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_busy(429, "2"));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, ANSWER + 2);
    char *record = NULL;
    assert_int_equal(lcmc_client_record_json(f->client, &record), LCMC_OK);
    assert_contains(record, "\"rejectedLcmCoordinations\": []");
    lcmc_free(record);
    lcmc_coordination_free(c);
}

/* GET -> 503 and GET -> 429: wait, GET again. */
static void test_poll_503_and_429_are_waited_and_polled_again(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_busy(503, "4"));
    fake_expect(f, "GET", POLLED, fake_busy(429, "6"));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_near(fake_nth(f, 2)->handed_at - fake_nth(f, 1)->ended_at, 4);
    assert_near(fake_nth(f, 3)->handed_at - fake_nth(f, 2)->ended_at, 6);
    char *record = NULL;
    assert_int_equal(lcmc_client_record_json(f->client, &record), LCMC_OK);
    assert_contains(record, "\"rejectedLcmCoordinations\": []"); /* a poll is no rejection */
    lcmc_free(record);
    lcmc_coordination_free(c);
}

/* The wait before the resend of a POST answered 503 with `retry_after`. */
static double wait_for_retry_after(fake *f, const char *retry_after)
{
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, retry_after));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 3600, &c), LCMC_OK);
    lcmc_coordination_free(c);
    return fake_nth(f, 1)->handed_at - fake_nth(f, 0)->ended_at;
}

static void test_retry_after_seconds_are_waited(void **state)
{
    assert_near(wait_for_retry_after(*state, "42"), 42);
}

static void test_retry_after_http_date_is_waited_until(void **state)
{
    /* The answer comes at 08:00:00.250 and names 08:01:00: libcurl counts from its time()
     * in whole seconds (08:00:00), so 60 s. */
    assert_near(wait_for_retry_after(*state, "Fri, 15 Jan 2027 08:01:00 GMT"), 60);
}

static void test_retry_after_http_date_in_the_past_is_the_floor(void **state)
{
    assert_near(wait_for_retry_after(*state, "Thu, 14 Jan 2027 08:00:00 GMT"), 1);
}

static void test_retry_after_absent_is_the_default_interval(void **state)
{
    assert_near(wait_for_retry_after(*state, NULL), 5);
}

static void test_retry_after_garbage_is_the_floor(void **state)
{
    assert_near(wait_for_retry_after(*state, "soon, please"), 1);
}

static void test_retry_after_zero_and_negative_are_the_floor(void **state)
{
    fake *f = *state;
    assert_near(wait_for_retry_after(f, "0"), 1);
    fake_free(f);
    *state = f = fake_new(NULL);
    assert_near(wait_for_retry_after(f, "-30"), 1);
}

static void test_retry_after_fraction_is_truncated_then_floored(void **state)
{
    fake *f = *state;
    assert_near(wait_for_retry_after(f, "2.9"), 2);
    fake_free(f);
    *state = f = fake_new(NULL);
    assert_near(wait_for_retry_after(f, "0.5"), 1);
}

/* The floor and the default interval are the client's options. */
static void test_floor_and_default_interval_follow_the_options(void **state)
{
    fake_free(*state);
    lcmc_client_options o = LCMC_CLIENT_OPTIONS_INIT;
    o.wait_floor = 3;
    o.default_interval = 11;
    fake *f = fake_new(&o);
    *state = f;
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, "0"));
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, NULL));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 600, &c), LCMC_OK);
    assert_near(fake_nth(f, 1)->handed_at - fake_nth(f, 0)->ended_at, 3);
    assert_near(fake_nth(f, 2)->handed_at - fake_nth(f, 1)->ended_at, 11);
    lcmc_coordination_free(c);
}

/* Anything else: an error with the status, the ProblemDetails and one line of text. */
static void test_error_answer_to_the_post_carries_the_problem(void **state)
{
    fake *f = *state;
    fake_answer a = fake_status(409, ANSWER);
    a.body = "{\"status\":409,\"detail\":\"VNFC still draining\"}";
    a.content_type = "application/problem+json";
    fake_expect(f, "POST", COORDINATIONS, a);
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EHTTP);
    const lcmc_error *err = lcmc_coordination_error(c);
    assert_string_equal(lcmc_error_message(err),
                        "EM answered 409 Conflict: VNFC still draining (POST " COORDINATIONS ")");
    assert_int_equal(lcmc_error_http_status(err), 409);
    assert_contains(lcmc_error_problem_json(err), "VNFC still draining");
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

static void test_redirect_is_an_error_not_followed(void **state)
{
    fake *f = *state;
    fake_answer a = fake_status(307, ANSWER);
    a.location = "http://elsewhere.test/x";
    fake_expect(f, "POST", COORDINATIONS, a);
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EHTTP);
    assert_contains(message(c), "redirects are not followed");
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* An error answer to a poll: the EM holds the coordination, so it is asked to cancel. */
static void test_error_answer_to_a_poll_cancels_at_the_em(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_status(500, ANSWER));
    fake_expect(f, "POST", POLLED "/cancel", fake_status(202, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EHTTP);
    assert_contains(message(c), "EM answered 500 Internal Server Error");
    assert_null(fake_nth(f, 2)->body); /* a cancel has no body */
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* A connection that never opened: nothing reached the EM, the POST is resent. */
static void test_post_never_sent_is_resent(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_failure(CURLE_COULDNT_CONNECT, 1, 0.01));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_near(fake_nth(f, 1)->handed_at - fake_nth(f, 0)->ended_at, 5);
    lcmc_coordination_free(c);
}

/* Failures after the POST went out: the EM may hold it, so it is never sent again. */
static void test_post_failures_after_sending_are_not_resent(void **state)
{
    (void)state;
    static const struct {
        CURLcode code;
        const char *says;
    } cases[] = {
        {CURLE_GOT_NOTHING, "the EM closed the connection without answering; it may have "
                            "started the coordination, which is not sent again"},
        {CURLE_SEND_FAIL_REWIND, "the EM closed the connection without answering"},
        {CURLE_RECV_ERROR, "the EM may have started the coordination, which is not sent again"},
        {CURLE_PARTIAL_FILE, "the EM may have started the coordination"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake *f = fake_new(NULL);
        fake_expect(f, "POST", COORDINATIONS, fake_failure(cases[i].code, 0, 0.2));
        lcmc_coordination *c;
        assert_int_equal(fake_coordinate(f, 60, &c), LCMC_ETRANSPORT);
        assert_contains(message(c), cases[i].says);
        assert_int_equal(f->request_count, 1);
        lcmc_coordination_free(c);
        fake_free(f);
    }
}

/* A poll is safe to repeat: any transport failure is waited out and polled again. */
static void test_poll_transport_failures_are_polled_again(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_failure(CURLE_RECV_ERROR, 0, 0.1));
    fake_expect(f, "GET", POLLED, fake_failure(CURLE_COULDNT_CONNECT, 1, 0.1));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_near(fake_nth(f, 2)->handed_at - fake_nth(f, 1)->ended_at, 5);
    assert_near(fake_nth(f, 3)->handed_at - fake_nth(f, 2)->ended_at, 5);
    lcmc_coordination_free(c);
}

/* A record entry per coordination, with its result and times. */
static void test_record_has_the_coordination(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, "2"));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-7", "CANCELLED"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    char *record = NULL;
    assert_int_equal(lcmc_client_record_json(f->client, &record), LCMC_OK);
    assert_contains(record, "\"id\": \"c-7\"");
    assert_contains(record, "\"coordinationResult\": \"CANCELLED\"");
    assert_contains(record, "\"startTime\": \"2027-01-15T08:00:00.000Z\"");
    assert_contains(record, "\"endTime\": \"2027-01-15T08:00:02.500Z\"");
    lcmc_free(record);
    lcmc_coordination_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_post_201_is_the_result),
        T(test_post_201_without_an_lcmcoord_is_a_protocol_error),
        T(test_post_202_then_polls_until_200),
        T(test_poll_answer_about_another_coordination_is_refused),
        T(test_post_202_without_location_is_a_protocol_error),
        T(test_post_503_is_recorded_waited_and_resent_identically),
        T(test_post_429_is_resent_without_a_rejection),
        T(test_poll_503_and_429_are_waited_and_polled_again),
        T(test_retry_after_seconds_are_waited),
        T(test_retry_after_http_date_is_waited_until),
        T(test_retry_after_http_date_in_the_past_is_the_floor),
        T(test_retry_after_absent_is_the_default_interval),
        T(test_retry_after_garbage_is_the_floor),
        T(test_retry_after_zero_and_negative_are_the_floor),
        T(test_retry_after_fraction_is_truncated_then_floored),
        T(test_floor_and_default_interval_follow_the_options),
        T(test_error_answer_to_the_post_carries_the_problem),
        T(test_redirect_is_an_error_not_followed),
        T(test_error_answer_to_a_poll_cancels_at_the_em),
        T(test_post_never_sent_is_resent),
        T(test_post_failures_after_sending_are_not_resent),
        T(test_poll_transport_failures_are_polled_again),
        T(test_record_has_the_coordination),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
