/* Adversarial review of the serve store (bindings/serve/serve_store.h): the cases its own suite
 * (test_serve_store.c) did not try, each one a promise of serve_store.h broken before its fix.
 *   - A PostgreSQL password never shows: not when the URL is in libpq's key=value form (taken
 *     for an unknown URL and echoed whole), nor when the query parameter's name is
 *     percent-encoded (libpq decodes it: "%70assword" is "password"), nor for the client
 *     key's passphrase (sslpassword); and redacting many empty passwords stays inside its
 *     buffer (it overflowed by a byte per "***" past the second).
 *   - "a connection broken by a server restart is dropped and the call retried once on a fresh
 *     one": with several pooled connections, all broken by the restart, the retry took the
 *     next broken one from the pool and the call failed.
 * The PostgreSQL part runs against the cluster of the ctest fixture (tests/e2e/pg_cluster.py,
 * its state file in LCMCOORD_TEST_PG_STATE), which it restarts. */
#include "serve_store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char pg_state_path[512];
static char pg_url[1200];

static const char *source_dir(void)
{
    const char *dir = getenv("LCMCOORD_SOURCE_DIR");
    return dir && *dir ? dir : SOURCE_DIR_DEFAULT;
}

static int run_cluster_command(const char *action)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/e2e/pg_cluster.py' %s '%s' >/dev/null",
             source_dir(), action, pg_state_path);
    return system(cmd);
}

static int pg_group_setup(void **state)
{
    (void)state;
    const char *given = getenv("LCMCOORD_TEST_PG_STATE");
    if (!given || !*given) {
        fprintf(stderr, "test_serve_store_review: LCMCOORD_TEST_PG_STATE is not set (run it "
                        "through ctest: the serve_pg fixture starts the cluster)\n");
        return -1;
    }
    snprintf(pg_state_path, sizeof pg_state_path, "%s", given);
    FILE *f = fopen(pg_state_path, "r");
    if (!f) {
        fprintf(stderr, "test_serve_store_review: cannot read %s\n", pg_state_path);
        return -1;
    }
    char line[1200];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "url=", 4) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(pg_url, sizeof pg_url, "%s", line + 4);
        }
    fclose(f);
    return pg_url[0] ? 0 : -1;
}

/* ---- passwords in store URLs ------------------------------------------------------------ */

static void assert_hidden(const char *url, const char *secret)
{
    char err[1024] = "";
    struct serve_store *st = serve_store_open(url, "review", err, sizeof err);
    if (st) {
        const char *shown = serve_store_display_name(st);
        if (strstr(shown, secret))
            fail_msg("%s shown in the store's display name: %s", secret, shown);
        serve_store_close(st);
        return;
    }
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    if (strstr(err, secret))
        fail_msg("%s shown in the error: %s", secret, err);
}

static void test_password_never_shown(void **state)
{
    (void)state;
    /* libpq's key=value form is not a store URL: refused, without echoing its password. */
    assert_hidden("host=/nonexistent-dir port=1 password=hunter2Secret", "hunter2Secret");
    assert_hidden("postgresql:host=db password=hunter2Secret", "hunter2Secret");
    /* libpq percent-decodes parameter names: %70assword is password. */
    assert_hidden("postgresql://u@/db?host=/nonexistent-dir&port=1&%70assword=hunter2Secret",
                  "hunter2Secret");
    assert_hidden("postgresql://u@/db?host=/nonexistent-dir&port=1&pass%77ord=hunter2Secret",
                  "hunter2Secret");
    /* The passphrase of the client's TLS key is a secret too. */
    assert_hidden("postgresql://u@/db?host=/nonexistent-dir&port=1&sslpassword=keyPassphrase",
                  "keyPassphrase");
    /* Still shown: what is not secret (the error must stay useful). */
    /* Many short secrets: each "***" is longer than the value it replaces (the redacted copy
       overflowed its buffer with three empty ones: ASan saw it). */
    assert_hidden("postgresql://u:@/db?password=&password=&password=&host=/nonexistent-dir&"
                  "port=1",
                  "nothing secret here");
    assert_hidden("postgresql://u:@/db?password=&sslpassword=&%70assword=&password=x&"
                  "sslpassword=y&host=/nonexistent-dir&port=1",
                  "password=x");
    char err[1024] = "";
    assert_null(serve_store_open("mysql://root:hunter2Secret@db/x", "review", err, sizeof err));
    assert_non_null(strstr(err, "mysql:"));
    assert_null(strstr(err, "hunter2Secret"));
    assert_null(serve_store_open("postgresql://u@/db?host=/nonexistent-dir&port=1&"
                                 "%70assword=hunter2Secret",
                                 "review", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir"));
}

/* ---- reconnecting after a server restart with several pooled connections ---------------- */

struct pinger {
    struct serve_store *st;
    pthread_barrier_t *start;
    int failures;
    char err[512];
};

static void *ping_many(void *arg)
{
    struct pinger *p = arg;
    pthread_barrier_wait(p->start);
    for (int i = 0; i < 40; i++)
        if (serve_store_ping(p->st, p->err, sizeof p->err) != SERVE_STORE_OK)
            p->failures++;
    return NULL;
}

static int backends_of_store(void)
{
    PGconn *conn = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *res = PQexec(conn, "SELECT count(*) FROM pg_stat_activity "
                                 "WHERE application_name = 'lcmcoord-serve'");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    int n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return n;
}

static void test_pg_restart_with_pooled_connections(void **state)
{
    (void)state;
    enum { THREADS = 6 };
    char err[512] = "";
    struct serve_store *st = serve_store_open(pg_url, "review-pool", err, sizeof err);
    if (!st)
        fail_msg("open: %s", err);
    /* Fill the pool: threads calling at once each need a connection of their own. */
    int pooled = 0;
    for (int round = 0; round < 20 && pooled < 3; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, THREADS);
        struct pinger pingers[THREADS];
        pthread_t threads[THREADS];
        for (int i = 0; i < THREADS; i++) {
            pingers[i] = (struct pinger){.st = st, .start = &start};
            pthread_create(&threads[i], NULL, ping_many, &pingers[i]);
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(threads[i], NULL);
            if (pingers[i].failures)
                fail_msg("ping before the restart: %s", pingers[i].err);
        }
        pthread_barrier_destroy(&start);
        pooled = backends_of_store();
    }
    if (pooled < 3)
        fail_msg("the pool holds %d connections: the scenario needs 3 or more", pooled);

    assert_int_equal(run_cluster_command("restart"), 0);
    /* Every pooled connection is now broken; each call must still succeed on its own. */
    for (int i = 0; i < 4; i++)
        if (serve_store_ping(st, err, sizeof err) != SERVE_STORE_OK)
            fail_msg("call %d after the restart (with %d pooled connections) failed: %s", i + 1,
                     pooled, err);
    serve_store_close(st);
}

int main(void)
{
    const struct CMUnitTest url_tests[] = {
        cmocka_unit_test(test_password_never_shown),
    };
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test(test_pg_restart_with_pooled_connections),
    };
    int failed = cmocka_run_group_tests_name("serve store review: URLs", url_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("serve store review: postgresql", pg_tests,
                                          pg_group_setup, NULL);
    return failed ? 1 : 0;
}
