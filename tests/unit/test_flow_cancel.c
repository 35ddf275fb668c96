/*
 * Cancel (docs/design.md, "Cancel"), on the real coordination with a scripted EM and a fake
 * clock (flow_fake.h): lcmc_coordination_cancel while polling, before the EM accepted (a
 * 503 being waited out, a POST not yet sent), while the POST is out (its 202 is cancelled,
 * its 503 is not waited out), an engine interrupt while polling and while the POST is
 * out, the cancel URL built from a Location with a query, and the cancel's own answers.
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
#define CANCEL        POLLED "/cancel"
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

static void assert_message(const lcmc_coordination *c, const char *expected)
{
    assert_string_equal(lcmc_error_message(lcmc_coordination_error(c)), expected);
}

static lcmc_coordination *start(fake *f, double timeout)
{
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_coordination_start(&c, f->client, FAKE_REQUEST_JSON, timeout), LCMC_OK);
    return c;
}

/* While polling: the cancel goes out at once, and polling goes on until the EM reports
 * the result (CANCELLED). */
static void test_cancel_while_polling_is_sent_and_polling_goes_on(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "10"));
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CANCELLED"));
    lcmc_coordination *c = start(f, 60);
    fake_run_until_ended(f, 0);
    fake_run_for(f, 2);
    assert_int_equal(lcmc_coordination_cancel(c), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_OK);
    assert_int_equal(lcmc_coordination_result(c), LCMC_RESULT_CANCELLED);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, ANSWER + 2);
    assert_null(fake_nth(f, 1)->body);
    assert_near(fake_nth(f, 1)->deadline - FAKE_T0, 60); /* the coordination's deadline */
    assert_near(fake_nth(f, 2)->handed_at - FAKE_T0, ANSWER + 10);
    fake_assert_all_used(f);
    /* A second cancel changes nothing. */
    assert_int_equal(lcmc_coordination_cancel(c), LCMC_OK);
    lcmc_coordination_free(c);
}

/* While a 503 is waited out: the EM holds nothing, the POST is not sent again. */
static void test_cancel_while_waiting_to_resend_ends_at_once(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, "30"));
    lcmc_coordination *c = start(f, 60);
    fake_run_until_ended(f, 0);
    fake_run_for(f, 1);
    assert_int_equal(lcmc_coordination_cancel(c), LCMC_OK);
    assert_true(lcmc_coordination_done(c));
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_message(c, "cancelled before the EM accepted the coordination; nothing was sent again");
    fake_run_for(f, 60);
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* Before the POST began to go out (a connection still opening): ends at once. */
static void test_cancel_before_the_post_left_ends_at_once(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_failure(CURLE_COULDNT_CONNECT, 1, 20));
    lcmc_coordination *c = start(f, 60);
    fake_run_until_handed(f, 0);
    assert_int_equal(lcmc_coordination_cancel(c), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_int_equal(fake_nth(f, 0)->outcome, 2); /* dropped, never answered */
    assert_near(fake_elapsed(f), 0);
    lcmc_coordination_free(c);
}

/* While the POST is out: it takes effect with the answer; a 202 is cancelled at once. */
static void test_cancel_while_the_post_is_out_cancels_its_202(void **state)
{
    fake *f = *state;
    fake_answer slow = fake_accepted(POLLED, "10");
    slow.after = 3;
    fake_expect(f, "POST", COORDINATIONS, slow);
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CANCELLED"));
    lcmc_coordination *c = start(f, 60);
    fake_run_for(f, 1);
    assert_int_equal(lcmc_coordination_cancel(c), LCMC_OK);
    assert_false(lcmc_coordination_done(c));
    assert_int_equal(lcmc_coordination_wait(c), LCMC_OK);
    assert_int_equal(lcmc_coordination_result(c), LCMC_RESULT_CANCELLED);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, 3);
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* ...and a 503 to it is not waited out: nothing was accepted, nothing is sent again. */
static void test_cancel_while_the_post_is_out_drops_its_503(void **state)
{
    fake *f = *state;
    fake_answer slow = fake_busy(503, "5");
    slow.after = 3;
    fake_expect(f, "POST", COORDINATIONS, slow);
    lcmc_coordination *c = start(f, 60);
    fake_run_for(f, 1);
    assert_int_equal(lcmc_coordination_cancel(c), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_near(fake_elapsed(f), 3);
    assert_message(c, "cancelled before the EM accepted the coordination; nothing was sent again");
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* An interrupt while polling: the EM is asked to cancel, with a budget of 5 s. */
static void test_interrupt_while_polling_cancels_at_the_em(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "10"));
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    lcmc_coordination *c = start(f, 600);
    fake_run_until_ended(f, 0);
    fake_run_for(f, 4);
    lcmc_engine_interrupt(f->engine);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_message(c, "interrupted; the EM was asked to cancel");
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, ANSWER + 4);
    assert_near(fake_nth(f, 1)->deadline - fake_nth(f, 1)->handed_at, 5);
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* An interrupt while the POST is out: its answer is awaited (a 202 is then cancelled). */
static void test_interrupt_while_the_post_is_out_awaits_and_cancels(void **state)
{
    fake *f = *state;
    fake_answer slow = fake_accepted(POLLED, "10");
    slow.after = 2;
    fake_expect(f, "POST", COORDINATIONS, slow);
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    lcmc_coordination *c = start(f, 600);
    fake_run_until_handed(f, 0);
    lcmc_engine_interrupt(f->engine);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_message(c, "interrupted; the EM was asked to cancel");
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* A second interrupt stops waiting for the EM's answer to the cancel (or to a POST that was
 * out): the coordination ends at once instead of after its 5 s grace. */
static void test_second_interrupt_stops_waiting_for_the_cancel(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "10"));
    fake_expect(f, "POST", CANCEL, fake_status(202, INFINITY));
    lcmc_coordination *c = start(f, 600);
    fake_run_until_ended(f, 0);
    fake_run_for(f, 4);
    /* Both before the loop turns (the fake hands a request over and lets its time pass in
     * one turn): the second ends the wait the first began. */
    lcmc_engine_interrupt(f->engine);
    lcmc_engine_interrupt(f->engine);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_near(fake_elapsed(f), ANSWER + 4);
    assert_message(c, "interrupted; the EM was asked to cancel (its answer was not awaited)");
    lcmc_coordination_free(c);
}

static void test_second_interrupt_stops_waiting_for_the_posts_answer(void **state)
{
    fake *f = *state;
    fake_answer never = fake_accepted(POLLED, "10");
    never.after = INFINITY;
    fake_expect(f, "POST", COORDINATIONS, never);
    lcmc_coordination *c = start(f, 600);
    fake_run_until_handed(f, 0);
    lcmc_engine_interrupt(f->engine);
    lcmc_engine_interrupt(f->engine); /* both before the loop turns: the same at once */
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_near(fake_elapsed(f), fake_nth(f, 0)->handed_at - FAKE_T0);
    assert_message(c, "interrupted; the EM may hold a coordination that could not be cancelled "
                      "(its answer to the POST was not awaited)");
    assert_int_equal(fake_nth(f, 0)->outcome, 2);
    lcmc_coordination_free(c);
}

/* An interrupt before the coordination began refuses to start it. */
static void test_interrupted_engine_starts_nothing(void **state)
{
    fake *f = *state;
    lcmc_engine_interrupt(f->engine);
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_coordination_start(&c, f->client, FAKE_REQUEST_JSON, 60),
                     LCMC_ECANCELLED);
    assert_message(c, "interrupted before the coordination began");
    assert_int_equal(f->request_count, 0);
    lcmc_coordination_free(c);
}

/* The cancel URL: "/cancel" on the Location's path, its query kept, its fragment dropped. */
static void test_cancel_url_keeps_the_query(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS,
                fake_accepted("/lcmcoord/v1/coordinations/abc?shard=7#top", "10"));
    fake_expect(f, "POST", "/lcmcoord/v1/coordinations/abc/cancel?shard=7",
                fake_status(202, ANSWER));
    fake_expect(f, "GET", "/lcmcoord/v1/coordinations/abc?shard=7",
                fake_lcmcoord(200, "abc", "CANCELLED"));
    lcmc_coordination *c = start(f, 60);
    fake_run_until_ended(f, 0);
    assert_int_equal(lcmc_coordination_cancel(c), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_OK);
    assert_string_equal(fake_nth(f, 1)->url,
                        "http://em.test:8080/lcmcoord/v1/coordinations/abc/cancel?shard=7");
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* The cancel's own failures (a 1.0.0 EM's 404, no answer at all) never change how the
 * coordination ends. */
static void test_cancel_failures_are_tolerated(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_status(500, ANSWER));
    fake_expect(f, "POST", CANCEL, fake_status(404, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EHTTP);
    lcmc_coordination_free(c);
    fake_free(f);

    *state = f = fake_new(NULL);
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_status(500, ANSWER));
    fake_expect(f, "POST", CANCEL, fake_status(202, INFINITY));
    assert_int_equal(fake_coordinate(f, 60, &c), LCMC_EHTTP);
    /* The cancel had 5 s, no more. */
    assert_near(fake_elapsed(f) - fake_nth(f, 2)->handed_at + FAKE_T0, 5);
    lcmc_coordination_free(c);
}

/* Abort ends it locally, at once, sending nothing more. */
static void test_abort_ends_locally(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "10"));
    lcmc_coordination *c = start(f, 60);
    fake_run_until_ended(f, 0);
    lcmc_coordination_abort(c);
    assert_int_equal(lcmc_coordination_wait(c), LCMC_ECANCELLED);
    assert_message(c, "the coordination was aborted");
    fake_run_for(f, 30);
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_cancel_while_polling_is_sent_and_polling_goes_on),
        T(test_cancel_while_waiting_to_resend_ends_at_once),
        T(test_cancel_before_the_post_left_ends_at_once),
        T(test_cancel_while_the_post_is_out_cancels_its_202),
        T(test_cancel_while_the_post_is_out_drops_its_503),
        T(test_interrupt_while_polling_cancels_at_the_em),
        T(test_interrupt_while_the_post_is_out_awaits_and_cancels),
        T(test_second_interrupt_stops_waiting_for_the_cancel),
        T(test_second_interrupt_stops_waiting_for_the_posts_answer),
        T(test_interrupted_engine_starts_nothing),
        T(test_cancel_url_keeps_the_query),
        T(test_cancel_failures_are_tolerated),
        T(test_abort_ends_locally),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
