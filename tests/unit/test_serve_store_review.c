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
 *   - "TLS verification stays on unless explicitly turned off": over TCP the store used
 *     libpq's default sslmode=prefer, which verifies no certificate and goes on in clear text
 *     when the server (or whoever sits in between) declines TLS.
 * And what held (kept as a test): a finish racing a reap of the same lapsed rows, on both back
 * ends: each row decided once, the owner told NOT_FOUND exactly when the reaper won, the
 * exclusive key free again either way.
 * The PostgreSQL part runs against the cluster of the ctest fixture (tests/e2e/pg_cluster.py,
 * its state file in LCMCOORD_TEST_PG_STATE; run bare, it starts and stops its own), which it
 * restarts. */
#include "serve_store.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static char pg_state_path[512];
static char pg_url[1200];
static bool pg_own_cluster; /* started by this program (no ctest fixture) */

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

static int pg_group_teardown(void **state)
{
    (void)state;
    if (pg_own_cluster)
        run_cluster_command("stop");
    return 0;
}

static int pg_group_setup(void **state)
{
    (void)state;
    const char *given = getenv("LCMCOORD_TEST_PG_STATE");
    if (given && *given) {
        snprintf(pg_state_path, sizeof pg_state_path, "%s", given);
    } else {
        /* Run bare (scripts/valgrind.sh): a cluster of its own, stopped at the end. */
        snprintf(pg_state_path, sizeof pg_state_path, "/tmp/test_serve_store_review-pg-%ld.state",
                 (long)getpid());
        if (run_cluster_command("start") != 0) {
            fprintf(stderr, "test_serve_store_review: could not start a PostgreSQL cluster "
                            "(tests/e2e/pg_cluster.py start)\n");
            return -1;
        }
        pg_own_cluster = true;
    }
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

/* ---- TLS to a PostgreSQL server over TCP ------------------------------------------------ */

/* A PostgreSQL server that speaks no TLS: it declines the SSLRequest ('N') and notes whether
   the client then carries on in clear text (its StartupMessage: user, database). */
struct plain_server {
    int listener;
    int port;
    bool clear_text_startup;
};

static void *plain_server_run(void *arg)
{
    struct plain_server *srv = arg;
    int conn = accept(srv->listener, NULL, NULL);
    if (conn < 0)
        return NULL;
    for (int round = 0; round < 3; round++) {
        unsigned char head[8];
        size_t got = 0;
        while (got < sizeof head) {
            ssize_t n = read(conn, head + got, sizeof head - got);
            if (n <= 0)
                goto done;
            got += (size_t)n;
        }
        uint32_t code =
            (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 | (uint32_t)head[6] << 8 | head[7];
        if (code == 80877103 || code == 80877104) { /* SSLRequest, GSSENCRequest */
            if (write(conn, "N", 1) != 1)
                goto done;
            continue;
        }
        if (code == 196608) /* protocol 3.0: the StartupMessage, in clear text */
            srv->clear_text_startup = true;
        goto done;
    }
done:
    close(conn);
    return NULL;
}

static void test_pg_over_tcp_verifies_tls_unless_turned_off(void **state)
{
    (void)state;
    struct plain_server srv = {0};
    srv.listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(srv.listener, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(srv.listener, 4), 0);
    socklen_t alen = sizeof addr;
    getsockname(srv.listener, (struct sockaddr *)&addr, &alen);
    srv.port = ntohs(addr.sin_port);
    unsetenv("PGSSLMODE");
    pthread_t t;
    pthread_create(&t, NULL, plain_server_run, &srv);
    char url[160], err[1024] = "";
    snprintf(url, sizeof url, "postgresql://lcmcoord@127.0.0.1:%d/postgres", srv.port);
    assert_null(serve_store_open(url, "review", err, sizeof err));
    pthread_join(t, NULL);
    if (srv.clear_text_startup)
        fail_msg("the store went on in clear text with a server that declined TLS (%s)", err);
    assert_non_null(strstr(err, "SSL"));
    assert_null(strchr(err, '\n'));

    /* Turned off explicitly: then clear text is what the operator asked for. */
    pthread_create(&t, NULL, plain_server_run, &srv);
    snprintf(url, sizeof url, "postgresql://lcmcoord@127.0.0.1:%d/postgres?sslmode=disable",
             srv.port);
    assert_null(serve_store_open(url, "review", err, sizeof err));
    pthread_join(t, NULL);
    assert_true(srv.clear_text_startup);
    close(srv.listener);
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

/* ---- a finish racing a reap: decided once ---------------------------------------------- */

enum { RACE_ROWS = 60 };

struct race {
    struct serve_store *owner, *reaper;
    pthread_barrier_t start;
    int finish_rc[RACE_ROWS];
    int reaped;
    char err[512];
};

static void race_id(char id[37], int i)
{
    snprintf(id, 37, "00000000-0000-4000-9000-%012d", i);
}

static char *abort_json(const struct serve_coord *c, void *ud)
{
    (void)ud;
    char *json = malloc(96);
    snprintf(json, 96, "{\"id\":\"%s\",\"by\":\"reaper\"}", c->id);
    return json;
}

static void *finisher(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < RACE_ROWS; i++) {
        char id[37], err[512];
        race_id(id, i);
        r->finish_rc[i] =
            serve_store_finish(r->owner, id, "CONTINUE", "{\"by\":\"owner\"}", err, sizeof err);
    }
    return NULL;
}

static void *reaper(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(&r->start);
    for (int round = 0; round < 200; round++) {
        int n = serve_store_reap(r->reaper, false, abort_json, NULL, r->err, sizeof r->err);
        if (n < 0) {
            r->reaped = -1;
            return NULL;
        }
        r->reaped += n;
    }
    return NULL;
}

static double epoch_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish_races_reap(const char *url, bool two_instances)
{
    char err[512] = "";
    struct race r = {0};
    r.owner = serve_store_open(url, "race-owner", err, sizeof err);
    if (!r.owner)
        fail_msg("open: %s", err);
    r.reaper = two_instances ? serve_store_open(url, "race-reaper", err, sizeof err) : r.owner;
    if (!r.reaper)
        fail_msg("open: %s", err);
    serve_store_set_lease_ttl(r.owner, 0.01);
    for (int i = 0; i < RACE_ROWS; i++) {
        struct serve_coord c = {0};
        race_id(c.id, i);
        c.request_json = "{}";
        char key[32];
        snprintf(key, sizeof key, "race-key-%d", i);
        char *keys[] = {key, NULL};
        c.exclusive_keys = keys;
        if (serve_store_insert_running(r.owner, &c, NULL, err, sizeof err) != SERVE_STORE_OK)
            fail_msg("insert: %s", err);
    }
    /* Every lease lapsed (10 ms, the stores' clocks): wait for the clock, bounded. */
    double lapsed = epoch_now() + 0.05;
    while (epoch_now() < lapsed) {
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    pthread_barrier_init(&r.start, NULL, 2);
    pthread_t a, b;
    pthread_create(&a, NULL, finisher, &r);
    pthread_create(&b, NULL, reaper, &r);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_barrier_destroy(&r.start);
    if (r.reaped < 0)
        fail_msg("reap: %s", r.err);
    int aborted = 0;
    for (int i = 0; i < RACE_ROWS; i++) {
        char id[37];
        race_id(id, i);
        struct serve_coord got;
        assert_int_equal(serve_store_get(r.owner, id, &got, err, sizeof err), SERVE_STORE_OK);
        assert_int_equal(got.state, SERVE_DONE);
        bool by_owner = strcmp(got.result, "CONTINUE") == 0;
        if (by_owner != (r.finish_rc[i] == SERVE_STORE_OK))
            fail_msg("row %d: stored %s (%s) but the owner's finish returned %d", i, got.result,
                     got.lcmcoord_json, r.finish_rc[i]);
        if (!by_owner) {
            aborted++;
            assert_int_equal(r.finish_rc[i], SERVE_STORE_NOT_FOUND);
            assert_non_null(strstr(got.lcmcoord_json, "reaper"));
        } else {
            assert_non_null(strstr(got.lcmcoord_json, "owner"));
        }
        serve_coord_clear(&got);
        /* The key is free again whoever finished it. */
        struct serve_coord again = {0};
        snprintf(again.id, sizeof again.id, "00000000-0000-4000-a000-%012d", i);
        again.request_json = "{}";
        char key[32];
        snprintf(key, sizeof key, "race-key-%d", i);
        char *keys[] = {key, NULL};
        again.exclusive_keys = keys;
        if (serve_store_insert_running(r.owner, &again, NULL, err, sizeof err) != SERVE_STORE_OK)
            fail_msg("row %d: its key is still held: %s", i, err);
    }
    assert_int_equal(aborted, r.reaped);
    print_message("finish vs reap: %d finished by the owner, %d reaped\n", RACE_ROWS - aborted,
                  aborted);
    if (r.reaper != r.owner)
        serve_store_close(r.reaper);
    serve_store_close(r.owner);
}

static void test_sqlite_finish_races_reap(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_serve_store_review-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/store.db", dir);
    finish_races_reap(url, false);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_pg_finish_races_reap(void **state)
{
    (void)state;
    PGconn *conn = PQconnectdb(pg_url);
    PQclear(PQexec(conn, "SET client_min_messages = warning; DROP TABLE IF EXISTS "
                         "serve_coord_key, serve_coord, serve_schema CASCADE"));
    PQfinish(conn);
    finish_races_reap(pg_url, true);
}

int main(void)
{
    const struct CMUnitTest url_tests[] = {
        cmocka_unit_test(test_password_never_shown),
        cmocka_unit_test(test_sqlite_finish_races_reap),
        cmocka_unit_test(test_pg_over_tcp_verifies_tls_unless_turned_off),
    };
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test(test_pg_restart_with_pooled_connections),
        cmocka_unit_test(test_pg_finish_races_reap),
    };
    int failed = cmocka_run_group_tests_name("serve store review: URLs", url_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("serve store review: postgresql", pg_tests,
                                          pg_group_setup, pg_group_teardown);
    return failed ? 1 : 0;
}
