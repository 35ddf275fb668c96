/*
 * Unit tests of Lua scenarios without sockets: load errors report file:line, a scenario
 * returning nothing falls through to the options, returned tables become JSON with the
 * right media type, the `em` helpers (lcmcoord, accept, problem, null, state) behave, and
 * a runtime error or a bad return value becomes a 500 ProblemDetails; library calls that
 * work long in C keep the deadline, values copied out of a state have byte budgets, and
 * em.http_date refuses offsets it cannot spell (issue 16 review, F1, F2, F10).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "em.h"

static char *write_scenario(const char *text)
{
    char *path = strdup("/tmp/test_em_scenario_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

struct fixture {
    struct em em;
    char *path;
};

static struct fixture *start(const char *text)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct em_options opt;
    char err[512];
    em_options_init(&opt);
    em_init(&f->em, &opt);
    f->path = write_scenario(text);
    f->em.scenario = em_scenario_load(f->path, &f->em, err, sizeof err);
    if (!f->em.scenario)
        fail_msg("load failed: %s", err);
    return f;
}

static void stop(struct fixture *f)
{
    em_cleanup(&f->em);
    unlink(f->path);
    free(f->path);
    free(f);
}

static void request(struct fixture *f, const char *method, const char *path, const char *body,
                    struct em_response *rs)
{
    struct em_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.path = path;
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    em_headers_add(&rq.headers, "version", "1.0.0");
    em_headers_add(&rq.headers, "content-type", "application/json");
    em_headers_add(&rq.headers, "authorization", "Bearer secret-token");
    em_handle(&f->em, &rq, rs);
    em_headers_free(&rq.headers);
}

static void expect_load_error(const char *text, const char *needle)
{
    struct em_options opt;
    struct em em;
    char err[512];
    em_options_init(&opt);
    em_init(&em, &opt);
    char *path = write_scenario(text);
    assert_null(em_scenario_load(path, &em, err, sizeof err));
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_memory_equal(err, path, strlen(path));
    em_cleanup(&em);
    unlink(path);
    free(path);
}

static void test_load_errors_name_file_and_line(void **state)
{
    (void)state;
    expect_load_error("local x = 1\nreturn function(\n", ":3:");
    expect_load_error("\n\nerror('no good')\n", ":3: no good");
    expect_load_error("return {}\n", "must return a function, got table");
    expect_load_error("return dofile('/etc/passwd')\n", "dofile");
}

static void test_fall_through_and_decisions(void **state)
{
    (void)state;
    struct fixture *f = start("return function(req)\n"
                              "  if req.path == '/teapot' then\n"
                              "    return 418, {['X-Auth'] = req.headers.authorization},\n"
                              "      {count = req.count, posts = req.posts, method = req.method}\n"
                              "  end\n"
                              "  if req.path == '/text' then return 200, nil, 'hello' end\n"
                              "end\n");
    struct em_response rs;
    request(f, "GET", "/lcmcoord/api_versions", NULL, &rs);
    assert_int_equal(rs.status, 200);
    em_response_free(&rs);
    request(f, "DELETE", "/teapot", NULL, &rs);
    assert_int_equal(rs.status, 418);
    assert_string_equal(em_headers_get(&rs.headers, "Content-Type"), "application/problem+json");
    assert_string_equal(em_headers_get(&rs.headers, "X-Auth"), "Bearer <redacted>");
    assert_string_equal(em_headers_get(&rs.headers, "Version"), "1.0.0");
    json_t *j = json_loads(rs.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "posts")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "DELETE");
    json_decref(j);
    em_response_free(&rs);
    request(f, "GET", "/text", NULL, &rs);
    assert_int_equal(rs.status, 200);
    assert_int_equal(rs.body_len, 5);
    assert_string_equal(em_headers_get(&rs.headers, "Content-Type"), "text/plain; charset=utf-8");
    em_response_free(&rs);
    stop(f);
}

static const char valid_request[] =
    "{\"vnfInstanceId\":\"vi-1\",\"vnfLcmOpOccId\":\"op-1\",\"lcmOperationType\":\"HEAL\","
    "\"coordinationActionName\":\"a\",\"inputParams\":{\"n\":null},"
    "\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"h1\"},\"vnfInstance\":{\"href\":\"h2\"}}}";

static void test_helpers(void **state)
{
    (void)state;
    struct fixture *f =
        start("return function(req)\n"
              "  em.state.n = (em.state.n or 0) + 1\n"
              "  if req.path == '/abort' then\n"
              "    assert(req.json.inputParams.n == em.null)\n"
              "    local c = em.lcmcoord(req.json, 'ABORT')\n"
              "    return 201, {Location = c._links.self.href}, c\n"
              "  end\n"
              "  if req.path == '/accept' then return em.accept(req.json, {polls = 0}) end\n"
              "  if req.path == '/problem' then\n"
              "    return 409, {}, em.problem(409, 'busy ' .. em.state.n)\n"
              "  end\n"
              "end\n");
    struct em_response rs;
    request(f, "POST", "/abort", valid_request, &rs);
    assert_int_equal(rs.status, 201);
    json_t *c = json_loads(rs.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(c, "coordinationResult")), "ABORT");
    assert_non_null(json_object_get(c, "error"));
    assert_true(json_is_null(json_object_get(json_object_get(c, "outputParams"), "n")));
    const char *loc = em_headers_get(&rs.headers, "Location");
    assert_non_null(loc);
    char *path = strdup(strstr(loc, "/lcmcoord/"));
    json_decref(c);
    em_response_free(&rs);
    request(f, "GET", path, NULL, &rs);
    assert_int_equal(rs.status, 200);
    free(path);
    em_response_free(&rs);

    request(f, "POST", "/accept", valid_request, &rs);
    assert_int_equal(rs.status, 202);
    assert_string_equal(em_headers_get(&rs.headers, "Retry-After"), "1");
    path = strdup(strstr(em_headers_get(&rs.headers, "Location"), "/lcmcoord/"));
    em_response_free(&rs);
    request(f, "GET", path, NULL, &rs);
    assert_int_equal(rs.status, 200);
    free(path);
    em_response_free(&rs);

    request(f, "GET", "/problem", NULL, &rs);
    assert_int_equal(rs.status, 409);
    assert_non_null(strstr(rs.body, "\"detail\":\"busy 5\""));
    assert_non_null(strstr(rs.body, "\"title\":\"Conflict\""));
    em_response_free(&rs);
    stop(f);
}

static void test_errors_become_500(void **state)
{
    (void)state;
    struct fixture *f = start("return function(req)\n"
                              "  if req.path == '/err' then error('broken here') end\n"
                              "  if req.path == '/status' then return 99 end\n"
                              "  if req.path == '/cycle' then local t = {}; t.t = t; "
                              "return 200, {}, t end\n"
                              "  if req.path == '/hdr' then return 200, {[1] = 'x'} end\n"
                              "  if req.path == '/nan' then return 200, {}, {x = 0/0} end\n"
                              "end\n");
    const char *paths[] = {"/err", "/status", "/cycle", "/hdr", "/nan"};
    const char *needles[] = {"broken here", "status 99", "a cycle", "header name", "cannot encode"};
    for (size_t i = 0; i < 5; i++) {
        struct em_response rs;
        request(f, "GET", paths[i], NULL, &rs);
        assert_int_equal(rs.status, 500);
        if (!strstr(rs.body, needles[i]))
            fail_msg("body '%s' does not mention '%s'", rs.body, needles[i]);
        em_response_free(&rs);
    }
    stop(f);
}

/* LCMCOORD_TIME_FACTOR stretches wall-clock bounds on slow (or sanitized) builds. */
static double time_factor(void)
{
    const char *f = getenv("LCMCOORD_TIME_FACTOR");
    double v = f ? atof(f) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

/* Milliseconds of wall time since t0. */
static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Each hostile call ends with a 500 naming why, within the deadline plus a margin, and the
 * state still answers an ordinary call afterwards. */
static void test_sandbox_bounds_every_call(void **state)
{
    (void)state;
    struct fixture *f = start(
        "return function(req)\n"
        "  if req.path == '/pcall-loop' then\n"
        "    while true do pcall(function() while true do end end) end\n"
        "  end\n"
        "  if req.path == '/xpcall-loop' then\n"
        "    while true do xpcall(function() while true do end end, function(e) return e end) end\n"
        "  end\n"
        "  if req.path == '/coroutine-loop' then\n"
        "    while true do coroutine.resume(coroutine.create(function() while true do end end)) "
        "end\n"
        "  end\n"
        "  if req.path == '/find' then\n"
        "    return 200, {}, tostring(string.find(string.rep('a', 20000), '.-.-.-.-.-.-b'))\n"
        "  end\n"
        "  if req.path == '/method-find' then\n"
        "    local s = string.rep('a', 5000); return 200, {}, tostring(s:match('(a*)*b'))\n"
        "  end\n"
        "  if req.path == '/os' then os.exit(7) end\n"
        "  if req.path == '/execute' then os.execute('true') end\n"
        "  if req.path == '/getenv' then return 200, {}, os.getenv('HOME') end\n"
        "  if req.path == '/io' then io.open('/etc/passwd') end\n"
        "  if req.path == '/bytecode' then\n"
        "    local f = load(string.char(27, 76, 117, 97, 84, 0)); return 200, {}, tostring(f)\n"
        "  end\n"
        "  if req.path == '/dump' then return 200, {}, string.dump(function() end) end\n"
        "  if req.path == '/hog' then\n"
        /* 4 MiB a turn, built from 4 KiB pieces: string.rep copies piece by piece, and a
         * sanitized build makes millions of one-byte copies take most of the deadline. */
        "    local m = ('x'):rep(4096):rep(1024)\n"
        "    local t = {}; while true do t[#t + 1] = m .. #t end\n"
        "  end\n"
        "  if req.path == '/hog-pcall' then\n"
        "    local t = {}\n"
        "    while true do pcall(function() t[#t + 1] = string.rep('y', 1 << 20) .. #t end) end\n"
        "  end\n"
        "  if req.path == '/gc' then setmetatable({}, {__gc = function() while true do end end}) "
        "end\n"
        "  if req.path == '/ok' then return 200, {}, 'fine' end\n"
        "end\n");
    const char *paths[] = {"/pcall-loop",  "/xpcall-loop", "/coroutine-loop", "/find",
                           "/method-find", "/os",          "/execute",        "/getenv",
                           "/io",          "/bytecode",    "/dump",           "/hog",
                           "/hog-pcall",   "/gc"};
    const char *needles[] = {"longer than", "longer than", "longer than", "too costly",
                             "too costly",  "exit",        "execute",     "getenv",
                             "io",          "nil",         "dump",        "memory",
                             "longer than", "__gc"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct em_response rs;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        request(f, "GET", paths[i], NULL, &rs);
        double ms = ms_since(&t0);
        printf("%-16s -> %u in %.0f ms\n", paths[i], rs.status, ms);
        /* /bytecode answers 200 "nil": load refused the binary chunk without raising. */
        assert_int_equal(rs.status, strcmp(paths[i], "/bytecode") == 0 ? 200 : 500);
        if (!strstr(rs.body, needles[i]))
            fail_msg("%s: body '%s' does not mention '%s'", paths[i], rs.body, needles[i]);
        assert_true(ms < (EM_SCENARIO_DEADLINE_MS + 1500) * time_factor());
        em_response_free(&rs);
        request(f, "GET", "/ok", NULL, &rs);
        assert_int_equal(rs.status, 200);
        em_response_free(&rs);
    }
    stop(f);
}

/* em.state holds JSON copies shared by every state of the pool. */
static void test_state_is_shared_as_json_copies(void **state)
{
    (void)state;
    struct fixture *f =
        start("return function(req)\n"
              "  if req.path == '/set' then em.state.t = {a = 1, b = {'x'}} end\n"
              "  if req.path == '/get' then return 200, {}, em.state.t end\n"
              "  if req.path == '/fn' then em.state.f = print end\n"
              "  if req.path == '/del' then em.state.t = nil end\n"
              "  if req.path == '/count' then\n"
              "    em.state.n = (em.state.n or 0) + 1; return 200, {}, tostring(em.state.n)\n"
              "  end\n"
              "end\n");
    struct em_response rs;
    request(f, "GET", "/set", NULL, &rs);
    em_response_free(&rs);
    request(f, "GET", "/get", NULL, &rs);
    assert_int_equal(rs.status, 200);
    json_t *got = json_loads(rs.body, 0, NULL);
    json_t *expected = json_pack("{s:i, s:[s]}", "a", 1, "b", "x");
    assert_true(json_equal(got, expected)); /* (member order follows Lua's table order) */
    json_decref(got);
    json_decref(expected);
    em_response_free(&rs);
    request(f, "GET", "/fn", NULL, &rs);
    assert_int_equal(rs.status, 500);
    assert_non_null(strstr(rs.body, "em.state.f"));
    em_response_free(&rs);
    request(f, "GET", "/del", NULL, &rs);
    em_response_free(&rs);
    request(f, "GET", "/get", NULL, &rs);
    assert_int_equal(rs.status, 200);
    assert_null(rs.body);
    em_response_free(&rs);
    for (int i = 1; i <= 3; i++) {
        request(f, "GET", "/count", NULL, &rs);
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        assert_string_equal(rs.body, want);
        em_response_free(&rs);
    }
    stop(f);
}

/* C library calls that work long without returning to the VM (F1 of the issue-16 review)
 * end by the deadline plus its margin, with the deadline's error or a refusal; and what
 * leaves a state as JSON (F2) is bounded in bytes, em.state in all. */
static void test_c_library_work_keeps_the_deadline(void **state)
{
    (void)state;
    struct fixture *f = start(
        "return function(req)\n"
        "  if req.path == '/rep' then return 200, {}, 'n' .. #string.rep('', math.maxinteger) end\n"
        "  if req.path == '/move' then table.move({}, 1, math.maxinteger - 1, 1) end\n"
        "  if req.path == '/plain' then\n"
        "    string.rep('a', 1600000):find(string.rep('a', 800000) .. 'b', 1, true)\n"
        "  end\n"
        "  if req.path == '/backref' then string.rep('a', 3000):find('(a*)%1b') end\n"
        "  if req.path == '/concat' then\n"
        "    table.concat(setmetatable({}, {__index = rawlen}), '', 1, 1000000000)\n"
        "  end\n"
        "  if req.path == '/insert' then\n"
        "    table.insert(setmetatable({}, {__len = function() return math.maxinteger end}), 1, "
        "1)\n"
        "  end\n"
        "  if req.path == '/ok' then return 200, {}, 'fine' end\n"
        "end\n");
    const char *paths[] = {"/rep", "/move", "/plain", "/backref", "/concat", "/insert"};
    const char *needles[] = {"n0",         "longer than", "longer than",
                             "too costly", "longer than", "__len"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct em_response rs;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        request(f, "GET", paths[i], NULL, &rs);
        double ms = ms_since(&t0);
        printf("%-10s -> %u in %.0f ms\n", paths[i], rs.status, ms);
        assert_int_equal(rs.status, i == 0 ? 200 : 500);
        if (!strstr(rs.body, needles[i]))
            fail_msg("%s: body '%s' does not mention '%s'", paths[i], rs.body, needles[i]);
        assert_true(ms < (EM_SCENARIO_DEADLINE_MS + EM_SCENARIO_MARGIN_MS) * time_factor());
        em_response_free(&rs);
        request(f, "GET", "/ok", NULL, &rs);
        assert_int_equal(rs.status, 200);
        em_response_free(&rs);
    }
    stop(f);
}

static void test_json_copies_have_byte_budgets(void **state)
{
    (void)state;
    struct fixture *f = start(
        "return function(req)\n"
        "  if req.path == '/dag' then\n"
        "    local x = {}; for i = 1, 24 do x = {a = x, b = x} end; return 200, {}, x\n"
        "  end\n"
        "  if req.path == '/shared' then local l = {1}; return 200, {}, {l, l} end\n"
        "  if req.path == '/state' then em.state['k' .. req.count] = string.rep('s', 7 << 20)\n"
        "    return 204\n"
        "  end\n"
        "  if req.path == '/free' then for i = 1, 10 do em.state['k' .. i] = nil end end\n"
        "end\n");
    struct em_response rs;
    request(f, "GET", "/shared", NULL, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "[[1],[1]]");
    em_response_free(&rs);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    request(f, "GET", "/dag", NULL, &rs);
    printf("/dag (2^24 values once copied) -> %u in %.0f ms\n", rs.status, ms_since(&t0));
    assert_int_equal(rs.status, 500);
    assert_non_null(strstr(rs.body, "too large to encode"));
    em_response_free(&rs);
    /* 7 MiB values: two fit in em.state's 16 MiB, the third does not until others go. */
    unsigned want[] = {204, 204, 500};
    for (size_t i = 0; i < 3; i++) {
        request(f, "GET", "/state", NULL, &rs);
        assert_int_equal(rs.status, want[i]);
        if (want[i] == 500)
            if (!strstr(rs.body, "em.state would hold more than"))
                fail_msg("%s", rs.body);
        em_response_free(&rs);
    }
    request(f, "GET", "/free", NULL, &rs);
    em_response_free(&rs);
    request(f, "GET", "/state", NULL, &rs);
    assert_int_equal(rs.status, 204);
    em_response_free(&rs);
    stop(f);
}

/* em.http_date refuses offsets it cannot add or spell (F10: signed overflow before). */
static void test_http_date_range(void **state)
{
    (void)state;
    struct fixture *f =
        start("return function(req)\n"
              "  local n = ({['/max'] = math.maxinteger, ['/min'] = math.mininteger,\n"
              "             ['/big'] = 1 << 60, ['/past'] = -os.time() - 1,\n"
              "             ['/last'] = 253402300799 - os.time()})[req.path]\n"
              "  return 200, {}, em.http_date(n)\n"
              "end\n");
    const char *bad[] = {"/max", "/min", "/big", "/past"};
    for (size_t i = 0; i < 4; i++) {
        struct em_response rs;
        request(f, "GET", bad[i], NULL, &rs);
        assert_int_equal(rs.status, 500);
        if (!strstr(rs.body, "out of range"))
            fail_msg("%s: %s", bad[i], rs.body);
        em_response_free(&rs);
    }
    struct em_response rs;
    request(f, "GET", "/last", NULL, &rs);
    assert_int_equal(rs.status, 200);
    assert_string_equal(rs.body, "Fri, 31 Dec 9999 23:59:59 GMT");
    em_response_free(&rs);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_errors_name_file_and_line),
        cmocka_unit_test(test_fall_through_and_decisions),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_errors_become_500),
        cmocka_unit_test(test_sandbox_bounds_every_call),
        cmocka_unit_test(test_state_is_shared_as_json_copies),
        cmocka_unit_test(test_c_library_work_keeps_the_deadline),
        cmocka_unit_test(test_json_copies_have_byte_budgets),
        cmocka_unit_test(test_http_date_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
