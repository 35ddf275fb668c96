/*
 * The runtime's log events (lcmcoord.h, docs/c-api.md "Log events") on the real coordination
 * state machine with a scripted EM and a fake clock (flow_fake.h): each wait names its
 * reason, status, attempt, wait and time left; the last poll before the deadline names the
 * wait the EM asked for; the cancel and its answers, results and failures carry their
 * fields; lcmc_engine_set_log receives exactly the events' messages; nothing is delivered
 * below the level asked for.
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

#define COORDINATIONS "/lcmcoord/v1/coordinations"
#define POLLED        "/lcmcoord/v1/coordinations/c-1"
#define EM_URL        "http://em.test:8080"
#define ANSWER        FAKE_ANSWER_TIME
#define MAX_EVENTS    64

/* A copy of one event, its strings owned. */
typedef struct seen {
    lcmc_event_type type;
    lcmc_log_level level;
    char *message, *method, *url, *reason, *coordination_id, *action, *error_kind, *result;
    int status, attempt;
    double elapsed, wait, wait_asked, time_left;
} seen;

typedef struct capture {
    seen events[MAX_EVENTS];
    size_t count;
    char *lines[MAX_EVENTS];
    size_t line_count;
} capture;

static char *copy(const char *text)
{
    return text ? strdup(text) : NULL;
}

static void on_event(void *userdata, const lcmc_event *e)
{
    capture *l = userdata;
    assert_true(l->count < MAX_EVENTS);
    assert_non_null(e->message);
    l->events[l->count++] = (seen){
        e->type,
        e->level,
        copy(e->message),
        copy(e->method),
        copy(e->url),
        copy(e->reason),
        copy(e->coordination_id),
        copy(e->action),
        copy(e->error_kind),
        copy(e->result),
        e->status,
        e->attempt,
        e->elapsed,
        e->wait,
        e->wait_asked,
        e->time_left,
    };
}

static void on_line(void *userdata, lcmc_log_level level, const char *message)
{
    (void)level;
    capture *l = userdata;
    assert_true(l->line_count < MAX_EVENTS);
    l->lines[l->line_count++] = strdup(message);
}

static void log_free(capture *l)
{
    for (size_t i = 0; i < l->count; i++) {
        seen *s = &l->events[i];
        free(s->message);
        free(s->method);
        free(s->url);
        free(s->reason);
        free(s->coordination_id);
        free(s->action);
        free(s->error_kind);
        free(s->result);
    }
    for (size_t i = 0; i < l->line_count; i++)
        free(l->lines[i]);
    free(l);
}

static void assert_near(double actual, double expected)
{
    if (fabs(actual - expected) > 1e-6)
        fail_msg("%.6f != %.6f", actual, expected);
}

static void assert_str(const char *actual, const char *expected)
{
    if (expected == NULL) {
        if (actual != NULL)
            fail_msg("'%s' where none was expected", actual);
        return;
    }
    if (actual == NULL)
        fail_msg("none where '%s' was expected", expected);
    assert_string_equal(actual, expected);
}

/* The n-th event of `type` (from 0). */
static const seen *nth(const capture *l, lcmc_event_type type, size_t n)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->events[i].type == type && n-- == 0)
            return &l->events[i];
    fail_msg("no %s event number %zu", lcmc_event_name(type), n);
    return NULL;
}

static size_t count_of(const capture *l, lcmc_event_type type)
{
    size_t n = 0;
    for (size_t i = 0; i < l->count; i++)
        n += l->events[i].type == type;
    return n;
}

static const char REQUEST_WITH_ACTION[] =
    "{\"vnfInstanceId\":\"v\",\"vnfLcmOpOccId\":\"o\",\"lcmOperationType\":\"HEAL\","
    "\"coordinationActionName\":\"prv.test.events\","
    "\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"http://vnfm/o\"},"
    "\"vnfInstance\":{\"href\":\"http://vnfm/v\"}}}";

static lcmc_status coordinate(fake *f, double timeout, lcmc_coordination **out)
{
    lcmc_status s = lcmc_coordination_start(out, f->client, REQUEST_WITH_ACTION, timeout);
    if (s != LCMC_OK)
        return s;
    return lcmc_coordination_wait(*out);
}

static int setup(void **state)
{
    fake *f = fake_new(NULL);
    capture *l = calloc(1, sizeof *l);
    assert_non_null(l);
    lcmc_engine_set_events(f->engine, on_event, l, LCMC_LOG_DEBUG);
    void **pair = calloc(2, sizeof *pair);
    assert_non_null(pair);
    pair[0] = f;
    pair[1] = l;
    *state = pair;
    return 0;
}

static int teardown(void **state)
{
    void **pair = *state;
    fake_free(pair[0]);
    log_free(pair[1]);
    free(pair);
    return 0;
}

/* Every wait says why, with the answer's status, the attempt answered, the wait and the
 * time left; requests and responses name their method and URL; the id appears once the EM
 * gave it; the action throughout. */
static void test_each_wait_names_its_reason(void **state)
{
    fake *f = ((void **)*state)[0];
    capture *l = ((void **)*state)[1];
    fake_expect(f, "POST", COORDINATIONS, fake_busy(503, "7"));
    fake_expect(f, "POST", COORDINATIONS, fake_busy(429, "2"));
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_accepted(NULL, "3"));
    fake_expect(f, "GET", POLLED, fake_failure(CURLE_RECV_ERROR, 0, 0.5));
    fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "CONTINUE"));
    lcmc_coordination *c;
    assert_int_equal(coordinate(f, 100, &c), LCMC_OK);
    fake_assert_all_used(f);

    static const struct {
        const char *reason;
        int status, attempt;
        const char *method, *url, *id;
        double wait, time_left;
    } waits[] = {
        {"busy", 503, 1, "POST", EM_URL COORDINATIONS, NULL, 7, 100 - ANSWER},
        {"rate_limited", 429, 2, "POST", EM_URL COORDINATIONS, NULL, 2, 100 - 7 - 2 * ANSWER},
        {"accepted", 202, 3, "GET", EM_URL POLLED, "c-1", 1, 100 - 9 - 3 * ANSWER},
        {"in_progress", 202, 1, "GET", EM_URL POLLED, "c-1", 3, 100 - 10 - 4 * ANSWER},
        /* No answer: no status; the default interval (5 s). */
        {"transport", 0, 2, "GET", EM_URL POLLED, "c-1", 5, 100 - 13 - 4 * ANSWER - 0.5},
    };
    assert_int_equal(count_of(l, LCMC_EVENT_WAIT), 5);
    for (size_t i = 0; i < 5; i++) {
        const seen *w = nth(l, LCMC_EVENT_WAIT, i);
        assert_int_equal(w->level, LCMC_LOG_INFO);
        assert_str(w->reason, waits[i].reason);
        assert_int_equal(w->status, waits[i].status);
        assert_int_equal(w->attempt, waits[i].attempt);
        assert_str(w->method, waits[i].method);
        assert_str(w->url, waits[i].url);
        assert_str(w->coordination_id, waits[i].id);
        assert_str(w->action, "prv.test.events");
        assert_near(w->wait, waits[i].wait);
        assert_true(w->wait_asked < 0);
        assert_near(w->time_left, waits[i].time_left);
        assert_null(w->error_kind);
    }
    /* A transport failure's text is the runtime's, not a status line. */
    assert_non_null(strstr(nth(l, LCMC_EVENT_WAIT, 4)->message, "polling in 5 s"));

    assert_int_equal(count_of(l, LCMC_EVENT_REQUEST), 6);
    assert_int_equal(count_of(l, LCMC_EVENT_RESPONSE), 5); /* the failure had none */
    const seen *first = nth(l, LCMC_EVENT_REQUEST, 0);
    assert_str(first->method, "POST");
    assert_str(first->url, EM_URL COORDINATIONS);
    assert_str(first->action, "prv.test.events");
    assert_null(first->coordination_id);
    assert_str(first->message, "POST " EM_URL COORDINATIONS);
    const seen *poll = nth(l, LCMC_EVENT_REQUEST, 3);
    assert_str(poll->method, "GET");
    assert_str(poll->coordination_id, "c-1");
    const seen *busy = nth(l, LCMC_EVENT_RESPONSE, 0);
    assert_int_equal(busy->status, 503);
    assert_near(busy->elapsed, ANSWER);
    assert_str(busy->method, "POST");
    assert_str(busy->message, "503 Service Unavailable (250 ms)");

    const seen *result = nth(l, LCMC_EVENT_RESULT, 0);
    assert_str(result->result, "CONTINUE");
    assert_str(result->coordination_id, "c-1");
    assert_str(result->message, "coordination c-1: CONTINUE");
    assert_int_equal(count_of(l, LCMC_EVENT_FAILED), 0);
    lcmc_coordination_free(c);
}

/* The deadline cuts the wait to one last poll (wait_asked is what the EM asked for), then
 * the coordination ends: the cancel is asked for and its answer reported, then the failure. */
static void test_the_last_poll_and_the_cancel(void **state)
{
    fake *f = ((void **)*state)[0];
    capture *l = ((void **)*state)[1];
    fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
    fake_expect(f, "GET", POLLED, fake_accepted(NULL, "30"));
    fake_expect(f, "GET", POLLED, fake_accepted(NULL, "30"));
    fake_expect(f, "POST", POLLED "/cancel", fake_status(409, ANSWER));
    lcmc_coordination *c;
    assert_int_equal(coordinate(f, 10, &c), LCMC_EDEADLINE);
    fake_assert_all_used(f);

    const seen *last = nth(l, LCMC_EVENT_WAIT, 1);
    assert_str(last->reason, "in_progress");
    assert_near(last->wait_asked, 30);
    /* Polled at 1.5 s; the last look is 1 s (10 % of 10 s) before the deadline. */
    assert_near(last->wait, 10 - 1 - (1 + 2 * ANSWER));
    assert_non_null(strstr(last->message, "polling once more in"));

    const seen *asking = nth(l, LCMC_EVENT_CANCEL, 0);
    assert_str(asking->reason, "asking");
    assert_str(asking->error_kind, "deadline");
    assert_str(asking->method, "POST");
    assert_str(asking->url, EM_URL POLLED "/cancel");
    assert_str(asking->coordination_id, "c-1");
    assert_true(asking->time_left >= 0);
    const seen *answer = nth(l, LCMC_EVENT_CANCEL, 1);
    assert_str(answer->reason, "already_finished");
    assert_int_equal(answer->status, 409);
    assert_int_equal(answer->level, LCMC_LOG_INFO);

    const seen *failed = nth(l, LCMC_EVENT_FAILED, 0);
    assert_str(failed->error_kind, "deadline");
    assert_str(failed->coordination_id, "c-1");
    assert_str(failed->action, "prv.test.events");
    assert_null(failed->result);
    assert_int_equal(count_of(l, LCMC_EVENT_RESULT), 0);
    lcmc_coordination_free(c);
}

/* What the EM answers to the cancel, each in one word; what needs a look is a warning. */
static void test_each_cancel_answer_has_its_reason(void **state)
{
    static const struct {
        fake_answer answer;
        const char *reason;
        lcmc_log_level level;
        int status;
        const char *error_kind;
    } cases[] = {
        {{.after = ANSWER, .status = 202}, "accepted", LCMC_LOG_INFO, 202, NULL},
        {{.after = ANSWER, .status = 404}, "unsupported", LCMC_LOG_INFO, 404, NULL},
        {{.after = ANSWER, .status = 500}, "refused", LCMC_LOG_WARN, 500, NULL},
        {{.after = ANSWER, .failure = CURLE_RECV_ERROR}, "failed", LCMC_LOG_WARN, 0, "transport"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake *f = fake_new(NULL);
        capture *l = calloc(1, sizeof *l);
        assert_non_null(l);
        lcmc_engine_set_events(f->engine, on_event, l, LCMC_LOG_INFO);
        fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
        fake_expect(f, "GET", POLLED, fake_status(500, ANSWER));
        fake_expect(f, "POST", POLLED "/cancel", cases[i].answer);
        lcmc_coordination *c;
        assert_int_equal(coordinate(f, 60, &c), LCMC_EHTTP);
        const seen *answer = nth(l, LCMC_EVENT_CANCEL, 1);
        assert_str(answer->reason, cases[i].reason);
        assert_int_equal(answer->level, cases[i].level);
        assert_int_equal(answer->status, cases[i].status);
        assert_str(answer->error_kind, cases[i].error_kind);
        /* The failure is the poll's 500, with its request. */
        const seen *failed = nth(l, LCMC_EVENT_FAILED, 0);
        assert_str(failed->error_kind, "http");
        assert_int_equal(failed->status, 500);
        assert_str(failed->method, "GET");
        assert_str(failed->url, EM_URL POLLED);
        lcmc_coordination_free(c);
        fake_free(f);
        log_free(l);
    }
}

/* A refused POST: the failure names the status, the kind and the request; its message
 * quotes the EM's detail, which no field is read from. */
static void test_a_refusal_is_a_failed_event(void **state)
{
    fake *f = ((void **)*state)[0];
    capture *l = ((void **)*state)[1];
    fake_answer a = fake_status(409, ANSWER);
    a.content_type = "application/problem+json";
    a.body = "{\"status\":409,\"detail\":\"coordination 42: CONTINUE, retrying in 5 s\"}";
    fake_expect(f, "POST", COORDINATIONS, a);
    lcmc_coordination *c;
    assert_int_equal(coordinate(f, 60, &c), LCMC_EHTTP);
    assert_int_equal(count_of(l, LCMC_EVENT_RESULT), 0);
    assert_int_equal(count_of(l, LCMC_EVENT_WAIT), 0);
    const seen *failed = nth(l, LCMC_EVENT_FAILED, 0);
    assert_str(failed->message, "coordination failed: EM answered 409 Conflict: coordination "
                                "42: CONTINUE, retrying in 5 s (POST /lcmcoord/v1/coordinations)");
    assert_int_equal(failed->status, 409);
    assert_str(failed->error_kind, "http");
    assert_str(failed->method, "POST");
    assert_str(failed->url, EM_URL COORDINATIONS);
    assert_null(failed->coordination_id);
    assert_null(failed->result);
    assert_true(failed->wait < 0);
    lcmc_coordination_free(c);
}

/* The same flow twice: lcmc_engine_set_log receives each event's message, in order, and
 * nothing else; an event below the level asked for is not delivered at all. */
static void test_the_line_callback_gets_the_events_messages(void **state)
{
    (void)state;
    capture *events = calloc(1, sizeof *events);
    capture *lines = calloc(1, sizeof *lines);
    capture *warnings = calloc(1, sizeof *warnings);
    assert_true(events && lines && warnings);
    for (int round = 0; round < 3; round++) {
        fake *f = fake_new(NULL);
        if (round == 0)
            lcmc_engine_set_events(f->engine, on_event, events, LCMC_LOG_DEBUG);
        else if (round == 1)
            lcmc_engine_set_log(f->engine, on_line, lines, LCMC_LOG_DEBUG);
        else
            lcmc_engine_set_events(f->engine, on_event, warnings, LCMC_LOG_WARN);
        fake_expect(f, "POST", COORDINATIONS, fake_busy(503, "2"));
        fake_expect(f, "POST", COORDINATIONS, fake_accepted(POLLED, "1"));
        fake_expect(f, "GET", POLLED, fake_lcmcoord(200, "c-1", "ABORT"));
        lcmc_coordination *c;
        assert_int_equal(coordinate(f, 60, &c), LCMC_OK);
        lcmc_engine_log(f->engine, LCMC_LOG_INFO, "a script's line");
        lcmc_coordination_free(c);
        fake_free(f);
    }
    assert_int_equal(lines->line_count, events->count);
    assert_true(events->count >= 9);
    for (size_t i = 0; i < events->count; i++)
        assert_string_equal(lines->lines[i], events->events[i].message);
    const seen *script = &events->events[events->count - 1];
    assert_int_equal(script->type, LCMC_EVENT_MESSAGE);
    assert_str(script->message, "a script's line");
    assert_null(script->method);
    assert_int_equal(warnings->count, 0);
    log_free(events);
    log_free(lines);
    log_free(warnings);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_wait_names_its_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_last_poll_and_the_cancel, setup, teardown),
        cmocka_unit_test(test_each_cancel_answer_has_its_reason),
        cmocka_unit_test_setup_teardown(test_a_refusal_is_a_failed_event, setup, teardown),
        cmocka_unit_test(test_the_line_callback_gets_the_events_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
