/*
 * The engine's asynchronous API (lcmc_timer_start, lcmc_request_start, lcmc_engine_post)
 * on the scripted transport and fake clock (flow_fake.h): timers fire in the order they are
 * due and at that time, cancelled ones never; an interrupt ends timers and requests with
 * LCMC_ECANCELLED as it ends lcmc_engine_sleep and lcmc_request; a request started without
 * waiting goes out at once, retries as its policy says, honours its deadline and sends
 * credentials to its own origin only, and its callback receives exactly what lcmc_request
 * returns for the same exchange; a cancelled one is abandoned and never calls back. Every
 * callback runs from the loop, never from inside the call that started it.
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

#include "flow_fake.h"

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

/* ---- timers --------------------------------------------------------------------------- */

typedef struct fired {
    int order[8];
    double at[8];
    lcmc_status status[8];
    int count;
} fired;

typedef struct timer_probe {
    fired *log;
    int id;
} timer_probe;

static void note_timer(void *userdata, lcmc_status status)
{
    timer_probe *p = userdata;
    fired *log = p->log;
    log->order[log->count] = p->id;
    log->at[log->count] = lcmc_now();
    log->status[log->count] = status;
    log->count++;
}

static void timers_fire_when_due_in_order(void **state)
{
    fake *f = *state;
    fired log = {0};
    timer_probe p[3] = {{&log, 3}, {&log, 1}, {&log, 2}};
    double start = lcmc_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(lcmc_timer_start(f->engine, p[i].id, note_timer, &p[i], NULL), LCMC_OK);
    /* Nothing runs from inside the call that started it. */
    assert_int_equal(log.count, 0);
    /* lcmc_engine_run waits for timers. */
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(log.count, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(log.order[i], i + 1);
        assert_int_equal(log.status[i], LCMC_OK);
        assert_near(log.at[i] - start, i + 1);
    }
}

static void cancelled_timer_never_fires(void **state)
{
    fake *f = *state;
    fired log = {0};
    timer_probe kept = {&log, 1}, dropped = {&log, 2};
    lcmc_timer_handle *h = NULL;
    assert_int_equal(lcmc_timer_start(f->engine, 2, note_timer, &dropped, &h), LCMC_OK);
    assert_non_null(h);
    assert_int_equal(lcmc_timer_start(f->engine, 1, note_timer, &kept, NULL), LCMC_OK);
    lcmc_timer_cancel(h);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(log.count, 1);
    assert_int_equal(log.order[0], 1);
}

/* Two timers due at the same time both fire in one turn; the first one's callback cancels
 * the second, whose callback is then already queued: it is never called. */
static lcmc_timer_handle *the_second;

static void cancel_the_second(void *userdata, lcmc_status status)
{
    note_timer(userdata, status);
    lcmc_timer_cancel(the_second);
}

static void cancel_between_due_and_callback(void **state)
{
    fake *f = *state;
    fired log = {0};
    timer_probe first = {&log, 1}, second = {&log, 2};
    assert_int_equal(lcmc_timer_start(f->engine, 1, cancel_the_second, &first, NULL), LCMC_OK);
    assert_int_equal(lcmc_timer_start(f->engine, 1, note_timer, &second, &the_second), LCMC_OK);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(log.count, 1);
    assert_int_equal(log.order[0], 1);
}

static void interrupt_ends_timers_cancelled(void **state)
{
    fake *f = *state;
    fired log = {0};
    timer_probe a = {&log, 1}, b = {&log, 2};
    double start = lcmc_now();
    assert_int_equal(lcmc_timer_start(f->engine, 100, note_timer, &a, NULL), LCMC_OK);
    lcmc_engine_interrupt(f->engine);
    /* Started while interrupted: ends at once, like lcmc_engine_sleep. */
    assert_int_equal(lcmc_timer_start(f->engine, 100, note_timer, &b, NULL), LCMC_OK);
    lcmc_engine_run(f->engine);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.status[0], LCMC_ECANCELLED);
    assert_int_equal(log.status[1], LCMC_ECANCELLED);
    assert_true(lcmc_now() - start < 1);
}

static void timer_refuses_bad_seconds(void **state)
{
    fake *f = *state;
    fired log = {0};
    timer_probe p = {&log, 1};
    lcmc_timer_handle *h = (lcmc_timer_handle *)&p;
    assert_int_equal(lcmc_timer_start(f->engine, -1, note_timer, &p, &h), LCMC_EUSAGE);
    assert_null(h);
    assert_int_equal(lcmc_timer_start(f->engine, NAN, note_timer, &p, &h), LCMC_EUSAGE);
    assert_int_equal(lcmc_timer_start(f->engine, 1e8, note_timer, &p, &h), LCMC_EUSAGE);
    assert_int_equal(lcmc_timer_start(f->engine, 1, NULL, &p, &h), LCMC_EUSAGE);
}

/* ---- posted functions ------------------------------------------------------------------ */

typedef struct post_log {
    int values[8];
    int count;
    lcmc_engine *engine;
} post_log;

static post_log *the_post_log;

static void post_note(void *userdata)
{
    the_post_log->values[the_post_log->count++] = (int)(intptr_t)userdata;
}

/* A posted function that posts another: the second runs on a later turn, after the first
 * returned. */
static void post_again(void *userdata)
{
    post_note(userdata);
    assert_int_equal(lcmc_engine_post(the_post_log->engine, post_note, (void *)(intptr_t)9),
                     LCMC_OK);
    assert_int_equal(the_post_log->count, 1);
}

static void posted_functions_run_in_order(void **state)
{
    fake *f = *state;
    post_log log = {.engine = f->engine};
    the_post_log = &log;
    assert_int_equal(lcmc_engine_post(f->engine, post_again, (void *)(intptr_t)1), LCMC_OK);
    assert_int_equal(lcmc_engine_post(f->engine, post_note, (void *)(intptr_t)2), LCMC_OK);
    assert_int_equal(log.count, 0);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(log.count, 3);
    assert_int_equal(log.values[0], 1);
    assert_int_equal(log.values[1], 2);
    assert_int_equal(log.values[2], 9);
    assert_int_equal(lcmc_engine_post(NULL, post_note, NULL), LCMC_EUSAGE);
    assert_int_equal(lcmc_engine_post(f->engine, NULL, NULL), LCMC_EUSAGE);
}

/* ---- requests without waiting ------------------------------------------------------------ */

typedef struct answer {
    int calls;
    lcmc_status status;
    lcmc_response *response;
    double at;
} answer;

static void note_answer(void *userdata, lcmc_status status, lcmc_response *response)
{
    answer *a = userdata;
    a->calls++;
    a->status = status;
    a->response = response;
    a->at = lcmc_now();
}

static fake_answer with_retry_after(long status, const char *retry_after)
{
    fake_answer a = fake_status(status, FAKE_ANSWER_TIME);
    a.retry_after = retry_after;
    return a;
}

static void request_retries_as_its_policy_says(void **state)
{
    fake *f = *state;
    fake_expect(f, "GET", "/health", with_retry_after(503, "2"));
    fake_expect(f, "GET", "/health", fake_status(200, FAKE_ANSWER_TIME));
    lcmc_retry_policy policy = LCMC_RETRY_POLICY_INIT;
    policy.jitter = 0;
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.url = "http://vnfc.test:8000/health";
    o.retry = &policy;
    answer a = {0};
    lcmc_request_handle *h = NULL;
    double start = lcmc_now();
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_OK);
    assert_non_null(h);
    /* Out at once (the caller need not turn the loop for it to leave), answered later. */
    assert_int_equal(f->request_count, 1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, LCMC_OK);
    assert_int_equal(lcmc_response_status(a.response), 200);
    assert_near(a.at - start, FAKE_ANSWER_TIME + 2 + FAKE_ANSWER_TIME);
    fake_assert_all_used(f);
    lcmc_response_free(a.response);
}

/* The same exchange, once with lcmc_request and once without waiting: the same status, the
 * same message, at the same (fake) time. Here: no answer before the deadline. */
static void deadline_ends_it_as_lcmc_request_does(void **state)
{
    fake *f = *state;
    fake_answer never = fake_status(200, INFINITY);
    fake_expect(f, "POST", "/slow", never);
    fake_expect(f, "POST", "/slow", never);
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.method = "POST";
    o.url = "http://vnfc.test:8000/slow";
    o.body = "{}";
    o.body_length = 2;
    o.timeout = 7;
    double start = lcmc_now();
    lcmc_response *blocking = NULL;
    lcmc_status blocking_status = lcmc_request(f->engine, &o, &blocking);
    double blocking_took = lcmc_now() - start;
    assert_int_not_equal(blocking_status, LCMC_OK);

    answer a = {0};
    lcmc_request_handle *h = NULL;
    start = lcmc_now();
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_OK);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, blocking_status);
    assert_near(a.at - start, blocking_took);
    assert_near(blocking_took, 7);
    assert_string_equal(lcmc_error_message(lcmc_response_error(a.response)),
                        lcmc_error_message(lcmc_response_error(blocking)));
    assert_string_equal(fake_nth(f, 1)->body, "{}");
    lcmc_response_free(a.response);
    lcmc_response_free(blocking);
}

static void credentials_are_sent(void **state)
{
    fake *f = *state;
    lcmc_credentials *c = NULL;
    assert_int_equal(
        lcmc_credentials_new(&c, f->engine,
                             "{\"authType\":[\"BASIC\"],\"paramsBasic\":{\"userName\":\"ops\","
                             "\"password\":\"s3cret\"}}",
                             NULL),
        LCMC_OK);
    fake_expect(f, "GET", "/own", fake_status(200, FAKE_ANSWER_TIME));
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.url = "http://vnfc.test:8000/own";
    o.credentials = c;
    answer a = {0};
    lcmc_request_handle *h = NULL;
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_OK);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(a.status, LCMC_OK);
    assert_string_equal(fake_nth(f, 0)->basic_user, "ops");
    lcmc_response_free(a.response);
    lcmc_credentials_free(c);
}

static void cancel_abandons_the_transfer_and_never_calls_back(void **state)
{
    fake *f = *state;
    fake_expect(f, "GET", "/slow", fake_status(200, 30));
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.url = "http://vnfc.test:8000/slow";
    answer a = {0};
    lcmc_request_handle *h = NULL;
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_OK);
    fake_run_for(f, 1);
    assert_int_equal(fake_nth(f, 0)->outcome, 0);
    lcmc_request_cancel(h);
    assert_int_equal(fake_nth(f, 0)->outcome, 2); /* abandoned */
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(a.calls, 0);
}

/* Cancelled after its answer came but before the loop handed it over: never called back,
 * and nothing leaks (ASan). */
static void cancel_after_answer_before_callback(void **state)
{
    fake *f = *state;
    fake_expect(f, "GET", "/quick", fake_status(200, FAKE_ANSWER_TIME));
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.url = "http://vnfc.test:8000/quick";
    answer a = {0};
    lcmc_request_handle *h = NULL;
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_OK);
    /* Turns the loop until the answer is in, without a safe point after it: the fake's wait
     * delivers it inside lcmc__transfers_wait. */
    while (fake_nth(f, 0)->outcome == 0)
        assert_int_equal(lcmc__transfers_wait(lcmc__engine_transfers(f->engine), 1, NULL, 0),
                         LCMC_OK);
    assert_int_equal(a.calls, 0);
    lcmc_request_cancel(h);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(a.calls, 0);
}

static void interrupt_ends_request_cancelled(void **state)
{
    fake *f = *state;
    fake_expect(f, "GET", "/slow", fake_status(200, 30));
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.url = "http://vnfc.test:8000/slow";
    answer a = {0}, late = {0};
    lcmc_request_handle *h = NULL;
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_OK);
    fake_run_for(f, 1);
    lcmc_engine_interrupt(f->engine);
    lcmc_engine_run(f->engine);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, LCMC_ECANCELLED);
    assert_int_equal(fake_nth(f, 0)->outcome, 2);
    /* Started while interrupted: nothing goes out, the callback says why. */
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &late, &h), LCMC_OK);
    lcmc_engine_run(f->engine);
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.status, LCMC_ECANCELLED);
    assert_int_equal(f->request_count, 1);
    lcmc_response_free(a.response);
    lcmc_response_free(late.response);
}

static void request_start_refuses_bad_options(void **state)
{
    fake *f = *state;
    answer a = {0};
    lcmc_request_handle *h = (lcmc_request_handle *)&a;
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_EUSAGE);
    assert_null(h);
    o.url = "ftp://vnfc.test/x";
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, &h), LCMC_EUSAGE);
    assert_non_null(
        strstr(lcmc_error_message(lcmc_engine_last_error(f->engine)), "cannot request"));
    o.url = "http://vnfc.test/x";
    assert_int_equal(lcmc_request_start(f->engine, &o, NULL, &a, &h), LCMC_EUSAGE);
    assert_int_equal(lcmc_request_start(f->engine, &o, note_answer, &a, NULL), LCMC_EUSAGE);
    assert_int_equal(lcmc_engine_run(f->engine), LCMC_OK);
    assert_int_equal(a.calls, 0);
    assert_int_equal(f->request_count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(timers_fire_when_due_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(cancelled_timer_never_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_between_due_and_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(interrupt_ends_timers_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(timer_refuses_bad_seconds, setup, teardown),
        cmocka_unit_test_setup_teardown(posted_functions_run_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(request_retries_as_its_policy_says, setup, teardown),
        cmocka_unit_test_setup_teardown(deadline_ends_it_as_lcmc_request_does, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials_are_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_abandons_the_transfer_and_never_calls_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cancel_after_answer_before_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(interrupt_ends_request_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(request_start_refuses_bad_options, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
