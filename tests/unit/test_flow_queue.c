/*
 * The transfer queue (docs/design.md, "Active transfers and the queue"), on the real
 * transfers and coordinations with a scripted EM and a fake clock (flow_fake.h): at most
 * twice the per-host connection limit is handed to the transport, the rest wait in FIFO
 * order and go out as places free up, a queued transfer dropped by its owner never goes
 * out, a coordination whose POST is still queued at its deadline ends at once, raising the
 * limit lets the queue go, and token fetches never wait in the queue.
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

static int setup(void **state)
{
    fake *f = fake_new(NULL);
    /* One connection per host: two active transfers. */
    assert_int_equal(lcmc_engine_set_max_host_connections(f->engine, 1), LCMC_OK);
    *state = f;
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

static fake_answer slow_201(const char *id, double after)
{
    fake_answer a = fake_lcmcoord(201, id, "CONTINUE");
    a.after = after;
    return a;
}

/* A coordination whose request names its position, so that the order of the POSTs shows. */
static lcmc_coordination *start_numbered(fake *f, int n, double timeout)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"vnfInstanceId\":\"vnf-%d\",\"vnfLcmOpOccId\":\"op-1\","
             "\"lcmOperationType\":\"SCALE\",\"coordinationActionName\":\"drain\","
             "\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"http://vnfm.test/lcm/op-1\"},"
             "\"vnfInstance\":{\"href\":\"http://vnfm.test/vnf/vnf-1\"}}}",
             n);
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_coordination_start(&c, f->client, body, timeout), LCMC_OK);
    return c;
}

static void assert_post_of(const fake *f, size_t i, int n)
{
    char needle[32];
    snprintf(needle, sizeof needle, "\"vnf-%d\"", n);
    if (strstr(fake_nth(f, i)->body, needle) == NULL)
        fail_msg("request %zu is not the POST of coordination %d: %s", i + 1, n,
                 fake_nth(f, i)->body);
}

/* Five coordinations, two places: the POSTs go out two at a time, in the order started. */
static void test_only_the_active_set_reaches_the_transport_in_order(void **state)
{
    fake *f = *state;
    for (int i = 0; i < 5; i++)
        fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    lcmc_coordination *c[5];
    for (int i = 0; i < 5; i++)
        c[i] = start_numbered(f, i, 600);
    assert_int_equal(f->request_count, 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(lcmc_coordination_wait(c[i]), LCMC_OK);
    static const double handed[5] = {0, 0, 10, 10, 20};
    for (size_t i = 0; i < 5; i++) {
        assert_near(fake_nth(f, i)->handed_at - FAKE_T0, handed[i]);
        assert_post_of(f, i, (int)i);
    }
    for (int i = 0; i < 5; i++)
        lcmc_coordination_free(c[i]);
}

/* A queued POST whose coordination is aborted never goes out; an active one aborted frees
 * its place at once. */
static void test_dropped_transfers_leave_the_queue_and_free_their_place(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    lcmc_coordination *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = start_numbered(f, i, 600);
    lcmc_coordination_abort(c[2]); /* queued */
    fake_run_for(f, 1);
    lcmc_coordination_abort(c[0]); /* active: coordination 3 takes its place now */
    assert_int_equal(f->request_count, 3);
    assert_post_of(f, 2, 3);
    assert_near(fake_nth(f, 2)->handed_at - FAKE_T0, 1);
    assert_int_equal(fake_nth(f, 0)->outcome, 2);
    assert_int_equal(lcmc_coordination_wait(c[1]), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(c[3]), LCMC_OK);
    fake_assert_all_used(f);
    for (int i = 0; i < 4; i++)
        lcmc_coordination_free(c[i]);
}

/* A POST still queued at its coordination's deadline: nothing was sent, it ends on the dot
 * and never goes out. */
static void test_deadline_while_queued_ends_without_sending(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 30));
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 30));
    lcmc_coordination *busy[2] = {start_numbered(f, 0, 600), start_numbered(f, 1, 600)};
    lcmc_coordination *late = start_numbered(f, 2, 5);
    assert_int_equal(lcmc_coordination_wait(late), LCMC_EDEADLINE);
    assert_near(fake_elapsed(f), 5);
    assert_string_equal(lcmc_error_message(lcmc_coordination_error(late)),
                        "deadline exceeded: the EM gave no answer to POST " COORDINATIONS
                        " in time");
    assert_int_equal(lcmc_coordination_wait(busy[0]), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(busy[1]), LCMC_OK);
    assert_int_equal(f->request_count, 2);
    lcmc_coordination_free(late);
    lcmc_coordination_free(busy[0]);
    lcmc_coordination_free(busy[1]);
}

/* Raising the connection limit lets the queue go at once. */
static void test_raising_the_limit_starts_queued_transfers(void **state)
{
    fake *f = *state;
    for (int i = 0; i < 4; i++)
        fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    lcmc_coordination *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = start_numbered(f, i, 600);
    assert_int_equal(f->request_count, 2);
    assert_int_equal(lcmc_engine_set_max_host_connections(f->engine, 2), LCMC_OK);
    assert_int_equal(f->request_count, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lcmc_coordination_wait(c[i]), LCMC_OK);
        lcmc_coordination_free(c[i]);
    }
}

/* A token fetch never waits behind the queue: it is what the queued requests need. */
static void test_token_fetch_bypasses_a_full_queue(void **state)
{
    fake *f = *state;
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    fake_answer t = fake_status(200, 1);
    t.body = "{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
    t.content_type = "application/json";
    fake_expect(f, "POST", "/token", t);
    fake_expect(f, "POST", COORDINATIONS, slow_201("c", 10));
    lcmc_coordination *a = start_numbered(f, 0, 600), *b = start_numbered(f, 1, 600);

    lcmc_client_options o = LCMC_CLIENT_OPTIONS_INIT;
    o.endpoint = "http://em.test:8080";
    o.authentication_json =
        "{\"authType\":[\"OAUTH2_CLIENT_CREDENTIALS\"],\"paramsOauth2ClientCredentials\":"
        "{\"clientId\":\"vnfm\",\"clientPassword\":\"s3cret\","
        "\"tokenEndpoint\":\"http://auth.test/token\"}}";
    lcmc_client *with_oauth = NULL;
    assert_int_equal(lcmc_client_new(&with_oauth, f->engine, &o), LCMC_OK);
    lcmc_coordination *c = NULL;
    assert_int_equal(lcmc_coordination_start(&c, with_oauth, FAKE_REQUEST_JSON, 600), LCMC_OK);
    assert_int_equal(f->request_count, 3); /* the token request, past the two active POSTs */
    assert_int_equal(lcmc_coordination_wait(c), LCMC_OK);
    assert_near(fake_nth(f, 3)->handed_at - FAKE_T0, 10); /* its POST waited for a place */
    assert_string_equal(fake_nth(f, 3)->bearer_token, "tok");
    assert_int_equal(lcmc_coordination_wait(a), LCMC_OK);
    assert_int_equal(lcmc_coordination_wait(b), LCMC_OK);
    lcmc_coordination_free(a);
    lcmc_coordination_free(b);
    lcmc_coordination_free(c);
    lcmc_client_free(with_oauth);
}

/* Two thousand coordinations through two places, each answered in 10 ms of fake time:
 * all of them done, none lost, in the order started. */
static void test_many_coordinations_drain_through_the_queue(void **state)
{
    fake *f = *state;
    enum { N = 2000 };
    lcmc_coordination **c = calloc(N, sizeof *c);
    assert_non_null(c);
    size_t done = 0;
    while (f->expected_count < FAKE_MAX_EXPECTATIONS)
        fake_expect(f, "POST", COORDINATIONS, slow_201("c", 0.01));
    for (int i = 0; i < N; i++)
        assert_int_equal(lcmc_coordination_start(&c[i], f->client, FAKE_REQUEST_JSON, 3600),
                         LCMC_OK);
    /* The script holds 64 answers: the rest are given as the requests come. */
    while (done < N) {
        while (f->expected_count < FAKE_MAX_EXPECTATIONS)
            fake_expect(f, "POST", COORDINATIONS, slow_201("c", 0.01));
        if (f->expected_next > FAKE_MAX_EXPECTATIONS / 2) {
            memmove(f->expected, f->expected + f->expected_next,
                    (f->expected_count - f->expected_next) * sizeof f->expected[0]);
            f->expected_count -= f->expected_next;
            f->expected_next = 0;
        }
        if (f->request_count > FAKE_MAX_REQUESTS / 2) {
            size_t kept = 0;
            for (size_t i = 0; i < f->request_count; i++) {
                fake_request *r = &f->requests[i];
                if (r->transfer == NULL) {
                    free(r->method);
                    free(r->url);
                    free(r->body);
                    free(r->bearer_token);
                    free(r->basic_user);
                } else {
                    f->requests[kept++] = *r;
                }
            }
            f->request_count = kept;
        }
        assert_int_equal(lcmc__engine_step(f->engine), LCMC_OK);
        while (done < N && lcmc_coordination_done(c[done])) /* they end in order */
            done++;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(lcmc_coordination_status(c[i]), LCMC_OK);
        lcmc_coordination_free(c[i]);
    }
    free(c);
    /* Two at a time, 10 ms each. */
    assert_near(fake_elapsed(f), N / 2 * 0.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_only_the_active_set_reaches_the_transport_in_order),
        T(test_dropped_transfers_leave_the_queue_and_free_their_place),
        T(test_deadline_while_queued_ends_without_sending),
        T(test_raising_the_limit_starts_queued_transfers),
        T(test_token_fetch_bypasses_a_full_queue),
        T(test_many_coordinations_drain_through_the_queue),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
