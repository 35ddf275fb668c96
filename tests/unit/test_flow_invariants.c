/*
 * LCMC_DEBUGASSERT (runtime/src/internal.h) does what docs/design.md says: a broken
 * invariant of the engine aborts the process with its file, line and expression. Each case
 * breaks one on purpose in a child process (the flow suites build the runtime with the
 * checks on) and reads what the child left.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "flow_fake.h"

/* Runs `breaker` in a child with stderr into a pipe; returns what it wrote, and whether it
 * died of SIGABRT in *aborted. */
static char *run_child(void (*breaker)(void), int *aborted)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        breaker();
        _exit(0); /* not reached when the invariant is checked */
    }
    close(fds[1]);
    static char text[4096];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof text - 1 && (n = read(fds[0], text + used, sizeof text - 1 - used)) > 0)
        used += (size_t)n;
    text[used] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    return text;
}

static void ignore_fire(lcmc_timer *timer)
{
    (void)timer;
}

/* A timer that claims a place in the heap it does not hold. */
static void disarm_a_timer_the_heap_does_not_hold(void)
{
    lcmc_engine *e = NULL;
    lcmc_engine_new(&e);
    lcmc_timer held, stray;
    lcmc__timer_init(&held, ignore_fire, NULL);
    lcmc__timer_init(&stray, ignore_fire, NULL);
    lcmc__timer_arm(e, &held, 5);
    stray.heap_index = 0;
    lcmc__timer_disarm(e, &stray);
}

/* A timer due at NaN would break the heap's order for every other timer. */
static void arm_a_timer_at_nan(void)
{
    lcmc_engine *e = NULL;
    lcmc_engine_new(&e);
    lcmc_timer t;
    lcmc__timer_init(&t, ignore_fire, NULL);
    lcmc__timer_arm(e, &t, NAN);
}

static void test_a_stray_timer_aborts_with_where(void **state)
{
    (void)state;
    int aborted = 0;
    const char *err = run_child(disarm_a_timer_the_heap_does_not_hold, &aborted);
    assert_true(aborted);
    assert_non_null(strstr(err, "lcmcoord: internal invariant broken at "));
    assert_non_null(strstr(err, "engine.c:"));
    assert_non_null(strstr(err, "(lcmc__timer_disarm): i < e->heap_length && e->heap[i] == t"));
}

static void test_a_nan_deadline_aborts(void **state)
{
    (void)state;
    int aborted = 0;
    const char *err = run_child(arm_a_timer_at_nan, &aborted);
    assert_true(aborted);
    assert_non_null(strstr(err, "(lcmc__timer_arm): due == due"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_stray_timer_aborts_with_where),
        cmocka_unit_test(test_a_nan_deadline_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
