/*
 * The scripted transport and fake clock of flow_fake.h. The transport stands where libcurl
 * does: it takes each request the runtime hands over, checks it against the script, and
 * answers it when the fake time comes, with a result filled in as the libcurl transport
 * fills it (status, body, Content-Type, Location, Retry-After, or a failure with whether
 * the request went out). Time moves only inside the engine's wait, to the earliest of the
 * next answer and the engine's own next timer.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "flow_fake.h"

const char *const FAKE_REQUEST_JSON =
    "{\"vnfInstanceId\":\"vnf-1\",\"vnfLcmOpOccId\":\"op-1\","
    "\"lcmOperationType\":\"SCALE\",\"coordinationActionName\":\"prepare_vnfc_drain\","
    "\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"http://vnfm.test/lcm/op-1\"},"
    "\"vnfInstance\":{\"href\":\"http://vnfm.test/vnf/vnf-1\"}}}";

static char *copy(const char *s)
{
    return s ? strdup(s) : NULL;
}

static double fake_monotonic(void *ctx)
{
    return ((fake *)ctx)->now;
}

static double fake_wall(void *ctx)
{
    return FAKE_WALL + (((fake *)ctx)->now - FAKE_T0);
}

/* What libcurl reports as CURLINFO_RETRY_AFTER for a header's text (lib/http.c): an
 * HTTP-date becomes the seconds from now to it (negative when past), otherwise the leading
 * decimal number, and 0 for anything else (a sign, a fraction's part, garbage). */
static long long retry_after_seconds(const char *text, double wall_now)
{
    time_t date = curl_getdate(text, NULL);
    if (date != -1)
        return (long long)date - (long long)wall_now;
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9')
        return 0;
    return strtoll(text, NULL, 10);
}

static int fake_send(void *ctx, lcmc_transfer *t, const lcmc_transfer_spec *spec)
{
    fake *f = ctx;
    if (f->request_count == FAKE_MAX_REQUESTS)
        fail_msg("more than %d requests", FAKE_MAX_REQUESTS);
    if (f->expected_next == f->expected_count)
        fail_msg("unexpected request %s %s at +%.3f s", spec->method, spec->url, fake_elapsed(f));
    const fake_expectation *x = &f->expected[f->expected_next++];
    size_t url_length = strlen(spec->url), path_length = strlen(x->path);
    if (strcmp(spec->method, x->method) != 0 || url_length < path_length ||
        strcmp(spec->url + url_length - path_length, x->path) != 0)
        fail_msg("request %zu: expected %s ...%s, got %s %s", f->request_count + 1, x->method,
                 x->path, spec->method, spec->url);
    fake_request *r = &f->requests[f->request_count++];
    memset(r, 0, sizeof *r);
    r->method = copy(spec->method);
    r->url = copy(spec->url);
    if (spec->body)
        r->body = strndup(spec->body, spec->body_length);
    r->bearer_token = copy(spec->bearer_token);
    r->basic_user = copy(spec->basic_user);
    r->handed_at = f->now;
    r->deadline = spec->deadline;
    r->transfer = t;
    r->answer = x->answer;
    double due = f->now + r->answer.after;
    if (due > spec->deadline) {
        /* libcurl's own timeout (CURLOPT_TIMEOUT_MS) is what is left of the deadline. */
        due = spec->deadline > f->now ? spec->deadline : f->now;
        r->answer.failure = CURLE_OPERATION_TIMEDOUT;
    }
    r->due = due;
    if (!r->answer.never_sent)
        lcmc__transfer_sending(t);
    return 0;
}

static void fake_abandon(void *ctx, lcmc_transfer *t)
{
    fake *f = ctx;
    for (size_t i = 0; i < f->request_count; i++)
        if (f->requests[i].transfer == t) {
            f->requests[i].transfer = NULL;
            f->requests[i].outcome = 2;
            f->requests[i].ended_at = f->now;
            return;
        }
    fail_msg("the runtime abandoned a transfer the transport never had");
}

static void add_header(lcmc_transfer_result *res, const char *name, const char *value)
{
    if (value == NULL)
        return;
    res->header_names[res->header_count] = strdup(name);
    res->header_values[res->header_count] = strdup(value);
    res->header_count++;
}

static void deliver(fake *f, fake_request *r)
{
    lcmc_transfer_result res;
    memset(&res, 0, sizeof res);
    const fake_answer *a = &r->answer;
    res.elapsed = f->now - r->handed_at;
    res.request_sent = !a->never_sent;
    if (a->failure != CURLE_OK) {
        res.curl_code = a->failure;
        snprintf(res.curl_error, sizeof res.curl_error, "%s", curl_easy_strerror(a->failure));
    } else {
        res.status = a->status;
        if (a->body)
            assert_int_equal(lcmc__buffer_append(&res.body, a->body, strlen(a->body)), 0);
        res.content_type = copy(a->content_type);
        res.location = copy(a->location);
        if (a->retry_after) {
            res.retry_after_present = 1;
            res.retry_after = retry_after_seconds(a->retry_after, fake_wall(f));
        }
        res.header_names = calloc(4, sizeof(char *));
        res.header_values = calloc(4, sizeof(char *));
        add_header(&res, "Content-Type", a->content_type);
        add_header(&res, "Location", a->location);
        add_header(&res, "Retry-After", a->retry_after);
    }
    lcmc_transfer *t = r->transfer;
    r->transfer = NULL;
    r->outcome = 1;
    r->ended_at = f->now;
    lcmc__transfer_answered(t, &res);
    lcmc__transfer_result_free(&res);
}

/* The pending request answered first: earliest due, then earliest made. */
static fake_request *next_due(fake *f)
{
    fake_request *best = NULL;
    for (size_t i = 0; i < f->request_count; i++) {
        fake_request *r = &f->requests[i];
        if (r->transfer && isfinite(r->due) && (best == NULL || r->due < best->due))
            best = r;
    }
    return best;
}

static lcmc_status fake_wait(void *ctx, double timeout, struct curl_waitfd *fds, unsigned fd_count)
{
    fake *f = ctx;
    for (unsigned i = 0; i < fd_count; i++)
        fds[i].revents = 0;
    fake_request *r = next_due(f);
    double until = f->now + (timeout > 0 ? timeout : 0);
    if (r == NULL || r->due > until) {
        f->now = until;
        return LCMC_OK;
    }
    if (r->due > f->now)
        f->now = r->due;
    /* Everything due by now, in order; an answer's callback may make or drop requests. */
    while ((r = next_due(f)) != NULL && r->due <= f->now)
        deliver(f, r);
    return LCMC_OK;
}

static const lcmc_transport fake_transport = {
    .send = fake_send,
    .abandon = fake_abandon,
    .wait = fake_wait,
    .set_max_host_connections = NULL,
    .free = NULL,
};

fake *fake_new(const lcmc_client_options *options)
{
    fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->now = FAKE_T0;
    f->clock = (lcmc_clock){fake_monotonic, fake_wall, f};
    lcmc__use_clock(&f->clock);
    assert_int_equal(lcmc_engine_new(&f->engine), LCMC_OK);
    lcmc__engine_use_transport(f->engine, &fake_transport, f);
    lcmc_client_options o = LCMC_CLIENT_OPTIONS_INIT;
    if (options)
        o = *options;
    if (o.endpoint == NULL)
        o.endpoint = "http://em.test:8080";
    if (lcmc_client_new(&f->client, f->engine, &o) != LCMC_OK)
        fail_msg("client: %s", lcmc_error_message(lcmc_engine_last_error(f->engine)));
    return f;
}

void fake_free(fake *f)
{
    if (f == NULL)
        return;
    lcmc_client_free(f->client);
    lcmc_engine_free(f->engine);
    lcmc__use_clock(NULL);
    for (size_t i = 0; i < f->request_count; i++) {
        free(f->requests[i].method);
        free(f->requests[i].url);
        free(f->requests[i].body);
        free(f->requests[i].bearer_token);
        free(f->requests[i].basic_user);
    }
    free(f);
}

void fake_expect(fake *f, const char *method, const char *path, fake_answer answer)
{
    assert_true(f->expected_count < FAKE_MAX_EXPECTATIONS);
    f->expected[f->expected_count++] = (fake_expectation){method, path, answer};
}

void fake_assert_all_used(const fake *f)
{
    if (f->expected_next != f->expected_count)
        fail_msg("%zu expected request(s) never made, the first %s ...%s",
                 f->expected_count - f->expected_next, f->expected[f->expected_next].method,
                 f->expected[f->expected_next].path);
}

fake_answer fake_status(long status, double after)
{
    fake_answer a = {0};
    a.status = status;
    a.after = after;
    return a;
}

fake_answer fake_lcmcoord(long status, const char *id, const char *result)
{
    static char bodies[8][256];
    static int next;
    char *body = bodies[next++ % 8];
    snprintf(body, 256, "{\"id\":\"%s\",\"coordinationResult\":\"%s\"}", id, result);
    fake_answer a = fake_status(status, FAKE_ANSWER_TIME);
    a.body = body;
    a.content_type = "application/json";
    return a;
}

fake_answer fake_accepted(const char *location, const char *retry_after)
{
    fake_answer a = fake_status(202, FAKE_ANSWER_TIME);
    a.location = location;
    a.retry_after = retry_after;
    return a;
}

fake_answer fake_busy(long status, const char *retry_after)
{
    fake_answer a = fake_status(status, FAKE_ANSWER_TIME);
    a.retry_after = retry_after;
    return a;
}

fake_answer fake_failure(CURLcode code, int never_sent, double after)
{
    fake_answer a = {0};
    a.failure = code;
    a.never_sent = never_sent;
    a.after = after;
    return a;
}

const fake_request *fake_nth(const fake *f, size_t i)
{
    if (i >= f->request_count)
        fail_msg("request %zu was never made (%zu were)", i + 1, f->request_count);
    return &f->requests[i];
}

double fake_elapsed(const fake *f)
{
    return f->now - FAKE_T0;
}

void fake_run_until_handed(fake *f, size_t i)
{
    for (int turns = 0; f->request_count <= i; turns++)
        if (turns > 10000 || lcmc__engine_step(f->engine) == LCMC_EUSAGE)
            fail_msg("request %zu was never made", i + 1);
}

void fake_run_until_ended(fake *f, size_t i)
{
    fake_run_until_handed(f, i);
    for (int turns = 0; f->requests[i].outcome == 0; turns++)
        if (turns > 10000 || lcmc__engine_step(f->engine) == LCMC_EUSAGE)
            fail_msg("request %zu never ended", i + 1);
}

void fake_run_for(fake *f, double seconds)
{
    assert_int_equal(lcmc_engine_sleep(f->engine, seconds), LCMC_OK);
}

lcmc_status fake_coordinate(fake *f, double timeout, lcmc_coordination **out)
{
    lcmc_status s = lcmc_coordination_start(out, f->client, FAKE_REQUEST_JSON, timeout);
    if (*out == NULL)
        return s;
    return lcmc_coordination_wait(*out);
}
