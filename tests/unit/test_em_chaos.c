/*
 * Unit tests of `lcmcoord em --chaos`: the catalogue is big enough, sorted, unique and
 * describable on one line; every built-in scenario compiles and answers a valid POST
 * without a scenario error; --chaos is parsed; and the raw-socket server sends its broken
 * bytes, and stops promptly even while it holds a connection open that never gets an
 * answer (the case where a careless server would hang on shutdown).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "em.h"

static const char valid_post[] =
    "{\"vnfInstanceId\":\"vi-1\",\"vnfLcmOpOccId\":\"op-1\",\"lcmOperationType\":\"HEAL\","
    "\"coordinationActionName\":\"prv.chaos\",\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"http://v/"
    "o\"},"
    "\"vnfInstance\":{\"href\":\"http://v/i\"}}}";

static void test_catalogue_is_large_sorted_unique_and_described(void **state)
{
    (void)state;
    size_t n = em_chaos_count();
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const struct em_chaos *c = em_chaos_at(i);
        assert_non_null(c);
        assert_true(strlen(c->name) > 0);
        assert_int_equal(strspn(c->name, "abcdefghijklmnopqrstuvwxyz0123456789-"), strlen(c->name));
        assert_true(strlen(c->description) > 10);
        assert_null(strchr(c->description, '\n'));
        if (i > 0 && strcmp(em_chaos_at(i - 1)->name, c->name) >= 0)
            fail_msg("'%s' is not after '%s'", c->name, em_chaos_at(i - 1)->name);
        assert_ptr_equal(em_chaos_find(c->name), c);
        if (c->kind == EM_CHAOS_RAW)
            assert_non_null(c->run);
        if (c->kind == EM_CHAOS_SCENARIO)
            assert_true(c->source && c->source_len > 0);
    }
    assert_null(em_chaos_find("no-such-misbehaviour"));
    assert_null(em_chaos_at(n));
}

static void test_every_scenario_loads_and_answers_a_valid_post(void **state)
{
    (void)state;
    for (size_t i = 0; i < em_chaos_count(); i++) {
        const struct em_chaos *c = em_chaos_at(i);
        if (c->kind != EM_CHAOS_SCENARIO)
            continue;
        struct em_options opt;
        struct em em;
        char err[512];
        em_options_init(&opt);
        em_init(&em, &opt);
        em.scenario =
            em_scenario_load_buffer(c->name, c->source, c->source_len, &em, err, sizeof err);
        if (!em.scenario)
            fail_msg("%s: %s", c->name, err);
        struct em_request rq;
        memset(&rq, 0, sizeof rq);
        rq.method = "POST";
        rq.path = EM_COORDINATIONS_PATH;
        rq.body = valid_post;
        rq.body_len = strlen(valid_post);
        em_headers_add(&rq.headers, "version", "1.0.0");
        em_headers_add(&rq.headers, "content-type", "application/json");
        struct em_response rs;
        em_handle(&em, &rq, &rs);
        if (rs.status == 500)
            fail_msg("%s: scenario error: %.*s", c->name, (int)rs.body_len, rs.body);
        assert_in_range(rs.status, 100, 599);
        em_headers_free(&rq.headers);
        em_response_free(&rs);
        em_cleanup(&em);
    }
}

static void test_chaos_option_is_parsed(void **state)
{
    (void)state;
    struct em_options opt;
    char err[256];
    char *ok[] = {"em", "--chaos", "drip", NULL};
    em_options_init(&opt);
    assert_int_equal(em_options_parse(&opt, 3, ok, err, sizeof err), EM_PARSE_OK);
    assert_string_equal(opt.chaos, "drip");
    char *eq[] = {"em", "--chaos=list", NULL};
    em_options_init(&opt);
    assert_int_equal(em_options_parse(&opt, 2, eq, err, sizeof err), EM_PARSE_OK);
    assert_string_equal(opt.chaos, "list");
    char *empty[] = {"em", "--chaos=", NULL};
    em_options_init(&opt);
    assert_int_equal(em_options_parse(&opt, 2, empty, err, sizeof err), EM_PARSE_ERROR);
    assert_non_null(strstr(err, "--chaos"));
}

static int connect_to(const char *base_url)
{
    const char *colon = strrchr(base_url, ':');
    assert_non_null(colon);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static struct em_chaos_server *start_raw(const char *name, char *url, size_t len)
{
    struct em_options opt;
    char err[256];
    em_options_init(&opt);
    opt.port = 0;
    opt.quiet = true;
    const struct em_chaos *c = em_chaos_find(name);
    assert_non_null(c);
    assert_int_equal(c->kind, EM_CHAOS_RAW);
    struct em_chaos_server *srv = em_chaos_server_start(c, &opt, url, len, err, sizeof err);
    if (!srv)
        fail_msg("%s", err);
    return srv;
}

static void test_raw_server_sends_the_broken_answer(void **state)
{
    (void)state;
    char url[EM_BASE_URL_MAX];
    struct em_chaos_server *srv = start_raw("status-999", url, sizeof url);
    assert_memory_equal(url, "http://127.0.0.1:", 17);
    int fd = connect_to(url);
    static const char req[] = "POST /lcmcoord/v1/coordinations HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 2\r\n\r\n{}";
    assert_int_equal(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    char buf[256];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof buf - 1 && (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    assert_memory_equal(buf, "HTTP/1.1 999 ", 13);
    close(fd);
    em_chaos_server_stop(srv);
}

static void test_raw_server_stops_promptly_while_holding_a_connection(void **state)
{
    (void)state;
    char url[EM_BASE_URL_MAX];
    struct em_chaos_server *srv = start_raw("never-answer", url, sizeof url);
    int fd = connect_to(url);
    struct timespec pause = {0, 100 * 1000000L}, t0, t1;
    nanosleep(&pause, NULL); /* let the server take the connection */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    em_chaos_server_stop(srv);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    char c;
    assert_true(recv(fd, &c, 1, 0) <= 0); /* closed by the server, nothing sent */
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue_is_large_sorted_unique_and_described),
        cmocka_unit_test(test_every_scenario_loads_and_answers_a_valid_post),
        cmocka_unit_test(test_chaos_option_is_parsed),
        cmocka_unit_test(test_raw_server_sends_the_broken_answer),
        cmocka_unit_test(test_raw_server_stops_promptly_while_holding_a_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
