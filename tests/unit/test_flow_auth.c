/*
 * The token waiters and the 401 retry (docs/design.md, "Sessions, calls and tokens"), on
 * the real calls, token cache and coordinations with a scripted EM and token endpoint and a
 * fake clock (flow_fake.h): one fetch for every call that needs the token, each waiter
 * bounded by its own deadline and not the fetch, the token reused until its refresh margin,
 * one new token and one resend after a 401 (and no second), no resend after a 401 once the
 * coordination had to end, and a token endpoint's refusal reported as such.
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

#include "auth.h"
#include "flow_fake.h"

#define COORDINATIONS "/lcmcoord/v1/coordinations"
#define POLLED        "/lcmcoord/v1/coordinations/c-1"
#define TOKEN         "/oauth/token"
#define ANSWER        FAKE_ANSWER_TIME

static const char *const OAUTH =
    "{\"authType\":[\"OAUTH2_CLIENT_CREDENTIALS\"],\"paramsOauth2ClientCredentials\":"
    "{\"clientId\":\"vnfm\",\"clientPassword\":\"s3cret\","
    "\"tokenEndpoint\":\"http://auth.test" TOKEN "\"}}";

static int setup(void **state)
{
    lcmc_client_options o = LCMC_CLIENT_OPTIONS_INIT;
    o.authentication_json = OAUTH;
    *state = fake_new(&o);
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

static fake_answer token(const char *value, int expires_in, double after)
{
    static char bodies[8][128];
    static int next;
    char *body = bodies[next++ % 8];
    snprintf(body, 128, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%d}",
             value, expires_in);
    fake_answer a = fake_status(200, after);
    a.body = body;
    a.content_type = "application/json";
    return a;
}

static lcmc_coordination *start(fake *f, double timeout)
{
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_coordination_start(&c, f->client, FAKE_REQUEST_JSON, timeout), LCMC_OK);
    return c;
}

/* Two coordinations that need the token at once: one fetch, both wait for it, both POSTs
 * carry it; the secret goes to the token endpoint only. */
static void test_one_fetch_serves_every_waiter(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 3600, 1));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-2", "CONTINUE"));
    lcmc_coordination *a = start(f, 60), *b = start(f, 60);
    assert_int_equal(lcmc_coordination_wait(a), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(b), LCMC_OK);
    assert_int_equal(lcmc__token_requests(f->engine), 1);
    assert_string_equal(fake_nth(f, 0)->basic_user, "vnfm"); /* client_secret_basic */
    assert_null(fake_nth(f, 0)->bearer_token);
    for (size_t i = 1; i <= 2; i++) {
        assert_string_equal(fake_nth(f, i)->bearer_token, "tok-1");
        assert_null(fake_nth(f, i)->basic_user);
        assert_near(fake_nth(f, i)->handed_at - FAKE_T0, 1);
    }
    fake_assert_all_used(f);
    lcmc_coordination_free(a);
    lcmc_coordination_free(b);
}

/* A waiter gives up at its own deadline; the fetch goes on for the others. */
static void test_each_waiter_is_bounded_by_its_own_deadline(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 3600, 30));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-2", "CONTINUE"));
    lcmc_coordination *hasty = start(f, 2), *patient = start(f, 100);
    assert_int_equal(lcmc_coordination_wait(hasty), LCMC_EDEADLINE);
    assert_near(fake_elapsed(f), 2);
    /* Its POST was still waiting for the token: the EM cannot hold it. */
    assert_string_equal(lcmc_error_message(lcmc_coordination_error(hasty)),
                        "deadline exceeded: the EM gave no answer to POST " COORDINATIONS
                        " in time");
    assert_int_equal(fake_nth(f, 0)->outcome, 0); /* the fetch is not cut short */
    assert_int_equal(lcmc_coordination_wait(patient), LCMC_OK);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, 30);
    assert_int_equal(lcmc__token_requests(f->engine), 1);
    fake_assert_all_used(f);
    lcmc_coordination_free(hasty);
    lcmc_coordination_free(patient);
}

/* A poll that must wait for a new token ends at the coordination's deadline with that
 * reason; the cancel that follows waits for the same fetch, within its own 5 s. */
static void test_poll_waiting_for_a_token_meets_the_deadline(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 40, ANSWER)); /* renewed after 20 s */
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "25"));
    fake_expect(f, "POST", TOKEN, token("tok-2", 3600, 30));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 27, &c), LCMC_EDEADLINE);
    assert_string_equal(lcmc_error_message(lcmc_coordination_error(c)),
                        "deadline exceeded while waiting for an access token from the token "
                        "endpoint");
    assert_near(fake_elapsed(f), 27 + 5);
    assert_int_equal(f->request_count, 3); /* neither the GET nor the cancel went out */
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* A token is reused until its expiry minus the refresh margin (30 s), then renewed. */
static void test_token_is_reused_until_its_refresh_margin(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 100, ANSWER));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-2", "CONTINUE"));
    fake_expect(f, "POST", TOKEN, token("tok-2", 100, ANSWER));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-3", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    lcmc_coordination_free(c);
    fake_run_for(f, 69 - fake_elapsed(f)); /* fetched at +0.25: renewal due at +70.25 */
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    lcmc_coordination_free(c);
    fake_run_for(f, 2);
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    lcmc_coordination_free(c);
    assert_string_equal(fake_nth(f, 2)->bearer_token, "tok-1");
    assert_string_equal(fake_nth(f, 4)->bearer_token, "tok-2");
    assert_int_equal(lcmc__token_requests(f->engine), 2);
    fake_assert_all_used(f);
}

/* A 401 to a token: that token is dropped, a new one fetched, the request sent once more. */
static void test_401_gets_a_new_token_and_resends_once(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 3600, ANSWER));
    fake_expect(f, "POST", COORDINATIONS, fake_status(401, ANSWER));
    fake_expect(f, "POST", TOKEN, token("tok-2", 3600, ANSWER));
    fake_expect(f, "POST", COORDINATIONS, fake_lcmcoord(201, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_string_equal(fake_nth(f, 1)->bearer_token, "tok-1");
    assert_string_equal(fake_nth(f, 3)->bearer_token, "tok-2");
    assert_string_equal(fake_nth(f, 3)->body, fake_nth(f, 1)->body);
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* A second 401 is the answer: an authentication failure, no third try. */
static void test_second_401_is_an_auth_failure(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 3600, ANSWER));
    fake_expect(f, "POST", COORDINATIONS, fake_status(401, ANSWER));
    fake_expect(f, "POST", TOKEN, token("tok-2", 3600, ANSWER));
    fake_expect(f, "POST", COORDINATIONS, fake_status(401, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EAUTH);
    assert_int_equal(lcmc_error_http_status(lcmc_coordination_error(c)), 401);
    assert_int_equal(f->request_count, 4);
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* A poll answered 401 is retried the same way. */
static void test_401_to_a_poll_is_retried_with_a_new_token(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 3600, ANSWER));
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_status(401, ANSWER));
    fake_expect(f, "POST", TOKEN, token("tok-2", 3600, ANSWER));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_OK);
    assert_string_equal(fake_nth(f, 4)->bearer_token, "tok-2");
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* Once the coordination had to end while its POST was out, a 401 to that POST is the end:
 * nothing new may reach the EM. */
static void test_no_resend_after_401_once_ending(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", TOKEN, token("tok-1", 3600, ANSWER));
    fake_answer refused = fake_status(401, 2);
    fake_expect(f, "POST", COORDINATIONS, refused);
    lcmc_coordination *c = start(f, 60);
    fake_run_until_handed(f, 1);
    lcmc_engine_interrupt(f->engine);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_int_equal(f->request_count, 2);
    assert_int_equal(lcmc__token_requests(f->engine), 1);
    lcmc_coordination_free(c);
}

/* The token endpoint's refusal ends the coordination with its reason; the POST is never
 * sent without a token. */
static void test_token_endpoint_refusal_is_reported(void **state)
{
    fake *f = *state;
    fake_answer refused = fake_status(400, ANSWER);
    refused.body = "{\"error\":\"invalid_client\",\"error_description\":\"unknown client\"}";
    refused.content_type = "application/json";
    fake_expect(f, "POST", TOKEN, refused);
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EAUTH);
    assert_string_equal(lcmc_error_message(lcmc_coordination_error(c)),
                        "token endpoint answered 400 Bad Request: invalid_client: unknown client "
                        "(POST " TOKEN ")");
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_one_fetch_serves_every_waiter),
        T(test_each_waiter_is_bounded_by_its_own_deadline),
        T(test_poll_waiting_for_a_token_meets_the_deadline),
        T(test_token_is_reused_until_its_refresh_margin),
        T(test_401_gets_a_new_token_and_resends_once),
        T(test_second_401_is_an_auth_failure),
        T(test_401_to_a_poll_is_retried_with_a_new_token),
        T(test_no_resend_after_401_once_ending),
        T(test_token_endpoint_refusal_is_reported),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
