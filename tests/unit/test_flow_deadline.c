/*
 * One wall-clock deadline (docs/design.md, "One wall-clock deadline"), on the real
 * coordination with a scripted EM and a fake clock (flow_fake.h): the timeouts handed to
 * the transport, a resent POST that cannot wait as asked, a poll cut short for one last
 * look, that last poll's two outcomes, the POST still out at the deadline (not yet sent;
 * sent and answered within the grace; never answered), and transport failures that meet
 * the deadline. Every end is checked at its exact fake time.
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

/* The POST may take what is left plus the 5 s grace; a poll only what is left. */
static void test_transfers_get_what_is_left_of_the_deadline(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "10"));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 100, &c), LCMC_OK);
    assert_near(fake_nth(f, 0)->deadline - FAKE_T0, 100 + 5);
    assert_near(fake_nth(f, 1)->deadline - FAKE_T0, 100);
    lcmc_coordination_free(c);
}

/* A resent POST honours the EM's wait or fails now: it never comes early. */
static void test_resent_post_that_cannot_wait_fails_at_once(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, "600"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 30, &c), LCMC_EDEADLINE);
    assert_message(c, "deadline exceeded: EM busy (503) and asked to wait 600 s, but only 30 s "
                      "were left");
    assert_near(fake_elapsed(f), ANSWER);
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* A poll whose wait would end past the deadline comes just before it instead, keeping
 * min(2 s, 10% of the timeout) for itself; a 202 then ends the coordination and the EM is
 * asked to cancel. */
static void test_poll_is_cut_to_a_last_look_that_finds_it_still_running(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "60"));
    fake_expect(f, "GET", POLLED, fake_accepted(NULL, "60"));
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 20, &c), LCMC_EDEADLINE);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, 20 - 2);
    assert_message(c, "deadline exceeded: the coordination was still in progress after 1 polls");
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

static void test_last_look_reserve_is_a_tenth_of_a_short_timeout(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "60"));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 10, &c), LCMC_OK);
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, 10 - 1);
    lcmc_coordination_free(c);
}

/* No room even for the last look: the deadline ends it now, and the EM is asked to cancel. */
static void test_accepted_too_late_for_any_poll_fails_and_cancels(void **state)
{
    fake *f = *state;
    fake_answer late = fake_accepted(POLLED, "5");
    late.after = 19;
    fake_expect(f, "POST", COORDINATIONS, late);
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 20, &c), LCMC_EDEADLINE);
    assert_message(c, "deadline exceeded: EM accepted the coordination (202) and asked to wait "
                      "5 s, but only 1 s were left");
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* The deadline while the POST is still connecting: the EM cannot have it, the coordination
 * ends on the dot and the POST is dropped. */
static void test_deadline_before_the_post_left_ends_at_once(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_failure(CURLE_COULDNT_CONNECT, 1, INFINITY));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 10, &c), LCMC_EDEADLINE);
    assert_message(c, "deadline exceeded: the EM gave no answer to POST " COORDINATIONS " in time");
    assert_near(fake_elapsed(f), 10);
    assert_int_equal(fake_nth(f, 0)->outcome, 2); /* abandoned */
    lcmc_coordination_free(c);
}

/* The deadline while the POST is out: its answer is awaited up to 5 s, and a 202 then is
 * cancelled at once. */
static void test_post_answered_within_the_grace_is_cancelled(void **state)
{
    fake *f = *state;
    fake_answer late = fake_accepted(POLLED, "1");
    late.after = 12;
    fake_expect(f, "POST", COORDINATIONS, late);
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 10, &c), LCMC_EDEADLINE);
    assert_message(c, "deadline exceeded: the EM gave no answer to POST " COORDINATIONS
                      " in time; the EM was asked to cancel");
    assert_near(fake_nth(f, 1)->handed_at - FAKE_T0, 12);
    assert_near(fake_nth(f, 1)->deadline - FAKE_T0, 12 + 5); /* the cancel's own budget */
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* ...and when no answer comes within the grace, the message says what may be left. */
static void test_post_unanswered_within_the_grace_is_reported_left_behind(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_status(202, INFINITY));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 10, &c), LCMC_EDEADLINE);
    assert_message(c, "deadline exceeded: the EM gave no answer to POST " COORDINATIONS
                      " in time; the EM may hold a coordination that could not be cancelled "
                      "(no answer to the POST within 5 s)");
    assert_near(fake_elapsed(f), 15);
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* A 201 within the grace: finished at the EM, nothing to cancel. */
static void test_post_finished_within_the_grace_needs_no_cancel(void **state)
{
    fake *f = *state;
    fake_answer late = fake_lcmcoord(201, "c-1", "CONTINUE");
    late.after = 11;
    fake_expect(f, "POST", COORDINATIONS, late);
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 10, &c), LCMC_EDEADLINE);
    assert_message(c, "deadline exceeded: the EM gave no answer to POST " COORDINATIONS " in time");
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* A poll that times out at the deadline: deadline exceeded, and the EM asked to cancel. */
static void test_poll_timing_out_at_the_deadline_fails_and_cancels(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_status(200, INFINITY));
    fake_expect(f, "POST", CANCEL, fake_status(202, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 20, &c), LCMC_EDEADLINE);
    assert_message(c,
                   "deadline exceeded: the EM gave no complete answer to GET " POLLED " in time");
    assert_near(fake_nth(f, 2)->handed_at - FAKE_T0, 20);
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

/* A POST that never left, with no time to try again: the cause is what is reported. */
static void test_connect_failure_without_time_to_retry_names_the_cause(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_failure(CURLE_COULDNT_CONNECT, 1, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 3, &c), LCMC_ETRANSPORT);
    const char *m = lcmc_error_message(lcmc_coordination_error(c));
    assert_non_null(strstr(m, "cannot reach the EM"));
    assert_non_null(strstr(m, "no time left before the deadline to try again"));
    assert_int_equal(f->request_count, 1);
    lcmc_coordination_free(c);
}

/* The deadline bounds every wait: polls every 30 s under a 100 s deadline end with a last
 * look at 98 s, whatever the EM keeps asking. */
static void test_many_polls_stay_within_the_deadline(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "30"));
    for (int i = 0; i < 4; i++)
        fake_expect(f, "GET", POLLED, fake_accepted(NULL, "30"));
    fake_expect(f, "POST", CANCEL, fake_status(404, ANSWER)); /* a 1.0.0 EM: tolerated */
    lcmc_coordination *c;
    assert_int_equal(fake_coordinate(f, 100, &c), LCMC_EDEADLINE);
    for (size_t i = 1; i < 4; i++)
        assert_near(fake_nth(f, i)->handed_at - FAKE_T0, ANSWER + i * (30 + ANSWER) - ANSWER);
    assert_near(fake_nth(f, 4)->handed_at - FAKE_T0, 98);
    assert_message(c, "deadline exceeded: the coordination was still in progress after 4 polls");
    fake_assert_all_used(f);
    lcmc_coordination_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_transfers_get_what_is_left_of_the_deadline),
        T(test_resent_post_that_cannot_wait_fails_at_once),
        T(test_poll_is_cut_to_a_last_look_that_finds_it_still_running),
        T(test_last_look_reserve_is_a_tenth_of_a_short_timeout),
        T(test_accepted_too_late_for_any_poll_fails_and_cancels),
        T(test_deadline_before_the_post_left_ends_at_once),
        T(test_post_answered_within_the_grace_is_cancelled),
        T(test_post_unanswered_within_the_grace_is_reported_left_behind),
        T(test_post_finished_within_the_grace_needs_no_cancel),
        T(test_poll_timing_out_at_the_deadline_fails_and_cancels),
        T(test_connect_failure_without_time_to_retry_names_the_cause),
        T(test_many_polls_stay_within_the_deadline),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
