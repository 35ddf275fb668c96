/*
 * The engine's asynchronous API against the real transport (libcurl) and a real HTTP peer
 * on 127.0.0.1 (loopback_peer.c, one thread per connection): lcmc_engine_serve waits while
 * idle (using next to no CPU) until lcmc_engine_stop comes from another thread or a signal
 * handler; functions posted from several threads at once all run, on the engine's thread;
 * requests started without waiting run concurrently (fifty answers that take 0.3 s each
 * come in well under fifty times that); a blocking call made from a callback turns the
 * loop, so other requests finish meanwhile; a cancelled request closes its connection (the
 * peer sees the end of the stream) and never calls back; an SSH connection made without
 * waiting (on a thread of its own) to a server that never speaks fails at its deadline
 * while lcmc_engine_run waits for it, and a cancelled one returns at once. Time bounds are
 * multiplied by LCMCOORD_TIME_FACTOR.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lcmcoord/lcmcoord.h"
#include "lcmcoord/ssh.h"
#include "loopback_peer.h"

/* ---- fixtures ---------------------------------------------------------------------------- */

typedef struct world {
    lcmc_engine *engine;
    peer *peer;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_int_equal(lcmc_engine_new(&w->engine), LCMC_OK);
    w->peer = peer_start();
    w->peer->engine = w->engine;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    peer_stop(w->peer); /* first: its connection threads may still tell the engine */
    lcmc_engine_free(w->engine);
    free(w);
    return 0;
}

/* Fails the test when it has not ended in `seconds` (times the factor). */
static void guard_timeout(void *userdata, lcmc_status status)
{
    (void)userdata;
    (void)status;
    fail_msg("the test did not end in time");
}

static lcmc_timer_handle *arm_guard(lcmc_engine *e, double seconds)
{
    lcmc_timer_handle *h = NULL;
    assert_int_equal(lcmc_timer_start(e, seconds * time_factor(), guard_timeout, NULL, &h),
                     LCMC_OK);
    return h;
}

/* ---- serve and stop ------------------------------------------------------------------- */

typedef struct stopper {
    lcmc_engine *engine;
    double after;
} stopper;

static void *stop_later(void *arg)
{
    stopper *s = arg;
    sleep_seconds(s->after); /* the scenario: a stop that comes while the loop is idle */
    lcmc_engine_stop(s->engine);
    return NULL;
}

static void serve_waits_idle_until_stopped_from_another_thread(void **state)
{
    world *w = *state;
    stopper s = {w->engine, 0.3};
    pthread_t t;
    double start = lcmc_now();
    assert_int_equal(pthread_create(&t, NULL, stop_later, &s), 0);
    /* Nothing in flight: lcmc_engine_run would return at once; serve waits for the stop. */
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    double took = lcmc_now() - start;
    pthread_join(t, NULL);
    assert_true(took >= 0.3);
    assert_true(took < 0.3 + 2 * time_factor());
    /* A stop before serve ends the next serve at once; that one stop is spent then. */
    lcmc_engine_stop(w->engine);
    start = lcmc_now();
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    assert_true(lcmc_now() - start < 1 * time_factor());
    assert_int_equal(lcmc_engine_serve(NULL), LCMC_EUSAGE);
    lcmc_engine_stop(NULL);
}

/* Idle, the loop sleeps in poll(2): half a second of serving costs next to no CPU. And a
 * stop may come from a signal handler. */
static lcmc_engine *signalled_engine;

static void stop_on_signal(int signo)
{
    (void)signo;
    lcmc_engine_stop(signalled_engine);
}

static void *signal_later(void *arg)
{
    (void)arg;
    sleep_seconds(0.5); /* the scenario: a signal while the loop is idle */
    kill(getpid(), SIGUSR1);
    return NULL;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void idle_serve_costs_no_cpu_and_a_signal_stops_it(void **state)
{
    world *w = *state;
    signalled_engine = w->engine;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop_on_signal;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
    pthread_t t;
    double cpu = cpu_seconds(), start = lcmc_now();
    assert_int_equal(pthread_create(&t, NULL, signal_later, NULL), 0);
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    double took = lcmc_now() - start, used = cpu_seconds() - cpu;
    pthread_join(t, NULL);
    signal(SIGUSR1, SIG_DFL);
    assert_true(took >= 0.5);
    if (used > 0.05 * time_factor())
        fail_msg("idle serving for %.2f s used %.3f s of CPU", took, used);
}

/* ---- posting from other threads ---------------------------------------------------------- */

#define POSTERS      4
#define POSTS_EACH   250
#define POSTS_IN_ALL (POSTERS * POSTS_EACH)

typedef struct posts {
    lcmc_engine *engine;
    pthread_t engine_thread;
    int ran; /* touched on the engine's thread only */
    int wrong_thread;
    int last_seen[POSTERS]; /* per poster: the sequence number last run */
    int out_of_order;
} posts;

typedef struct post_item {
    posts *all;
    int poster, seq;
} post_item;

static void run_item(void *userdata)
{
    post_item *item = userdata;
    posts *all = item->all;
    if (!pthread_equal(pthread_self(), all->engine_thread))
        all->wrong_thread++;
    if (item->seq != all->last_seen[item->poster] + 1)
        all->out_of_order++;
    all->last_seen[item->poster] = item->seq;
    if (++all->ran == POSTS_IN_ALL)
        lcmc_engine_stop(all->engine);
}

typedef struct poster_arg {
    posts *all;
    int poster;
    post_item items[POSTS_EACH];
} poster_arg;

static void *post_many(void *arg)
{
    poster_arg *a = arg;
    for (int i = 0; i < POSTS_EACH; i++) {
        a->items[i] = (post_item){a->all, a->poster, i + 1};
        assert_int_equal(lcmc_engine_post(a->all->engine, run_item, &a->items[i]), LCMC_OK);
    }
    return NULL;
}

static void posts_from_many_threads_all_run_on_the_engine_thread(void **state)
{
    world *w = *state;
    posts all = {0};
    all.engine = w->engine;
    all.engine_thread = pthread_self();
    static poster_arg args[POSTERS];
    pthread_t threads[POSTERS];
    lcmc_timer_handle *guard = arm_guard(w->engine, 10);
    for (int i = 0; i < POSTERS; i++) {
        args[i].all = &all;
        args[i].poster = i;
        assert_int_equal(pthread_create(&threads[i], NULL, post_many, &args[i]), 0);
    }
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    for (int i = 0; i < POSTERS; i++)
        pthread_join(threads[i], NULL);
    lcmc_timer_cancel(guard);
    assert_int_equal(all.ran, POSTS_IN_ALL);
    assert_int_equal(all.wrong_thread, 0);
    assert_int_equal(all.out_of_order, 0);
}

/* ---- requests without waiting -------------------------------------------------------------- */

#define CONCURRENT 50

typedef struct tally {
    lcmc_engine *engine;
    int done, ok;
    int stop_at;
} tally;

static void count_answer(void *userdata, lcmc_status status, lcmc_response *response)
{
    tally *t = userdata;
    t->done++;
    if (status == LCMC_OK && lcmc_response_status(response) == 200) {
        size_t length = 0;
        const char *body = lcmc_response_body(response, &length);
        t->ok += length == 2 && memcmp(body, "ok", 2) == 0;
    }
    lcmc_response_free(response);
    if (t->done == t->stop_at)
        lcmc_engine_stop(t->engine);
}

static void requests_run_concurrently(void **state)
{
    world *w = *state;
    char url[128];
    peer_url(w->peer, "/delay/300", url, sizeof url);
    tally t = {w->engine, 0, 0, CONCURRENT};
    lcmc_timer_handle *guard = arm_guard(w->engine, 15);
    double start = lcmc_now();
    for (int i = 0; i < CONCURRENT; i++) {
        lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
        o.url = url;
        lcmc_request_handle *h = NULL;
        assert_int_equal(lcmc_request_start(w->engine, &o, count_answer, &t, &h), LCMC_OK);
    }
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    double took = lcmc_now() - start;
    lcmc_timer_cancel(guard);
    assert_int_equal(t.ok, CONCURRENT);
    /* One after the other they would take 15 s. */
    if (took > 2.5 * time_factor())
        fail_msg("%d requests of 0.3 s took %.2f s", CONCURRENT, took);
}

/* A blocking lcmc_request made from a posted function: while it waits, the loop it turns
 * finishes the requests started before it. */
typedef struct nested {
    lcmc_engine *engine;
    char slow_url[128];
    tally *quick;
    int quick_done_before_slow;
    lcmc_status slow_status;
    int slow_http;
} nested;

static void blocking_request(void *userdata)
{
    nested *n = userdata;
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.url = n->slow_url;
    lcmc_response *r = NULL;
    n->slow_status = lcmc_request(n->engine, &o, &r);
    n->slow_http = lcmc_response_status(r);
    n->quick_done_before_slow = n->quick->done;
    lcmc_response_free(r);
    lcmc_engine_stop(n->engine);
}

static void blocking_call_from_a_callback_lets_others_finish(void **state)
{
    world *w = *state;
    char quick_url[128];
    peer_url(w->peer, "/delay/100", quick_url, sizeof quick_url);
    tally quick = {w->engine, 0, 0, -1};
    nested n = {.engine = w->engine, .quick = &quick};
    peer_url(w->peer, "/delay/800", n.slow_url, sizeof n.slow_url);
    lcmc_timer_handle *guard = arm_guard(w->engine, 15);
    for (int i = 0; i < 5; i++) {
        lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
        o.url = quick_url;
        lcmc_request_handle *h = NULL;
        assert_int_equal(lcmc_request_start(w->engine, &o, count_answer, &quick, &h), LCMC_OK);
    }
    assert_int_equal(lcmc_engine_post(w->engine, blocking_request, &n), LCMC_OK);
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    lcmc_timer_cancel(guard);
    assert_int_equal(n.slow_status, LCMC_OK);
    assert_int_equal(n.slow_http, 200);
    assert_int_equal(n.quick_done_before_slow, 5);
    assert_int_equal(quick.ok, 5);
}

/* ---- cancelling ------------------------------------------------------------------------------ */

typedef struct held {
    lcmc_request_handle *handle;
    int calls;
} held;

static void never_called(void *userdata, lcmc_status status, lcmc_response *response)
{
    held *h = userdata;
    (void)status;
    h->calls++;
    lcmc_response_free(response);
}

/* Posted by the peer once it has the request: cancels it. */
static void cancel_held(void *userdata)
{
    held *h = userdata;
    lcmc_request_cancel(h->handle);
    h->handle = NULL;
}

static void cancel_closes_the_connection(void **state)
{
    world *w = *state;
    char url[128];
    peer_url(w->peer, "/hold", url, sizeof url);
    held h = {0};
    w->peer->on_hold = cancel_held;
    w->peer->on_hold_userdata = &h;
    lcmc_request_options o = LCMC_REQUEST_OPTIONS_INIT;
    o.url = url;
    o.timeout = 60;
    assert_int_equal(lcmc_request_start(w->engine, &o, never_called, &h, &h.handle), LCMC_OK);
    /* Until the peer saw the client close, or gave up waiting for it: it stops the loop. */
    lcmc_timer_handle *guard = arm_guard(w->engine, 15);
    assert_int_equal(lcmc_engine_serve(w->engine), LCMC_OK);
    lcmc_timer_cancel(guard);
    assert_null(h.handle);
    pthread_mutex_lock(&w->peer->lock);
    assert_true(w->peer->hold_reached);
    assert_true(w->peer->hold_saw_eof);
    pthread_mutex_unlock(&w->peer->lock);
    assert_int_equal(lcmc_engine_run(w->engine), LCMC_OK);
    assert_int_equal(h.calls, 0);
}

/* ---- SSH connections without waiting --------------------------------------------------------
 * Against a listener that takes connections and never speaks: the connection (made on a
 * thread of its own) fails at its deadline, and lcmc_engine_run waits for its callback; a
 * cancelled one returns at once and never calls back. */

static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

typedef struct connected {
    int calls;
    lcmc_status status;
    lcmc_ssh_session *session;
    char message[256];
    lcmc_engine *engine;
} connected;

static void note_connect(void *userdata, lcmc_status status, lcmc_ssh_session *session)
{
    connected *c = userdata;
    c->calls++;
    c->status = status;
    c->session = session;
    if (session == NULL)
        snprintf(c->message, sizeof c->message, "%s",
                 lcmc_error_message(lcmc_engine_last_error(c->engine)));
}

static void ssh_connect_start_fails_at_its_deadline(void **state)
{
    world *w = *state;
    int port = 0;
    int listener = silent_listener(&port);
    lcmc_ssh_options o = LCMC_SSH_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = port;
    o.user = "nobody";
    o.password = "not-a-real-secret";
    o.host_key_sha256 = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    o.timeout = 0.5;
    connected c = {.engine = w->engine};
    lcmc_ssh_connect_handle *h = NULL;
    double start = lcmc_now();
    assert_int_equal(lcmc_ssh_connect_start(w->engine, &o, note_connect, &c, &h), LCMC_OK);
    assert_int_equal(c.calls, 0);
    /* Nothing else is in flight: run waits for the connection all the same. */
    assert_int_equal(lcmc_engine_run(w->engine), LCMC_OK);
    double took = lcmc_now() - start;
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, LCMC_EDEADLINE);
    assert_null(c.session);
    assert_non_null(strstr(c.message, "deadline of 0.5 s passed"));
    assert_null(strstr(c.message, "not-a-real-secret"));
    assert_true(took >= 0.5 && took < 0.5 + 5 * time_factor());

    /* Cancelled: returns at once, never calls back. */
    o.timeout = 60;
    connected never = {.engine = w->engine};
    assert_int_equal(lcmc_ssh_connect_start(w->engine, &o, note_connect, &never, &h), LCMC_OK);
    start = lcmc_now();
    lcmc_ssh_connect_cancel(h);
    assert_true(lcmc_now() - start < 5 * time_factor());
    assert_int_equal(lcmc_engine_run(w->engine), LCMC_OK);
    assert_int_equal(never.calls, 0);
    close(listener);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(serve_waits_idle_until_stopped_from_another_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(idle_serve_costs_no_cpu_and_a_signal_stops_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(posts_from_many_threads_all_run_on_the_engine_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(requests_run_concurrently, setup, teardown),
        cmocka_unit_test_setup_teardown(blocking_call_from_a_callback_lets_others_finish, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cancel_closes_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(ssh_connect_start_fails_at_its_deadline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
