/* Tests of the serve store (bindings/serve/serve_store.h) against the real thing: a SQLite
 * file in a temporary directory, and a real PostgreSQL cluster started by
 * tests/e2e/pg_cluster.py (the ctest fixture passes its state file in LCMCOORD_TEST_PG_STATE;
 * run by hand without it, this program starts and stops its own cluster). The same scenarios
 * run on both back ends: state transitions (202/409/404), the exclusive keys under concurrent
 * inserters (exactly one wins), leases lapsing and reaped by another instance, start-up reap,
 * purge by age, durability across close/reopen, hostile values read back byte for byte, and
 * errors that are one line naming the store, with a PostgreSQL password never shown. A last
 * test prints inserts per second for each back end (a number, not an assertion). */
#include "serve_store.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- fixtures --------------------------------------------------------------------------- */

static char pg_state_path[512];
static char pg_url[1200];
static bool pg_own_cluster; /* started by this program (no ctest fixture) */

struct fx {
    bool pg;
    char dir[256];
    char url[1300];
};

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

static bool read_pg_url(void)
{
    FILE *f = fopen(pg_state_path, "r");
    if (!f)
        return false;
    char line[1200];
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "url=", 4) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(pg_url, sizeof pg_url, "%s", line + 4);
            found = true;
        }
    }
    fclose(f);
    return found;
}

static int pg_group_setup(void **state)
{
    (void)state;
    const char *given = getenv("LCMCOORD_TEST_PG_STATE");
    if (given && *given) {
        snprintf(pg_state_path, sizeof pg_state_path, "%s", given);
    } else {
        snprintf(pg_state_path, sizeof pg_state_path, "/tmp/test_serve_store-pg-%ld.state",
                 (long)getpid());
        if (run_cluster_command("start") != 0) {
            fprintf(stderr, "test_serve_store: could not start a PostgreSQL cluster "
                            "(tests/e2e/pg_cluster.py start)\n");
            return -1;
        }
        pg_own_cluster = true;
    }
    if (!read_pg_url()) {
        fprintf(stderr, "test_serve_store: no PostgreSQL cluster: cannot read %s\n", pg_state_path);
        return -1;
    }
    return 0;
}

static int pg_group_teardown(void **state)
{
    (void)state;
    if (pg_own_cluster)
        run_cluster_command("stop");
    return 0;
}

/* A fresh database state for each PostgreSQL test: the store's tables dropped. */
static void pg_reset(void)
{
    PGconn *conn = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *res = PQexec(conn, "SET client_min_messages = warning; DROP TABLE IF EXISTS "
                                 "serve_coord_key, serve_coord, serve_schema CASCADE");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(conn);
}

static int fx_setup(void **state, bool pg)
{
    struct fx *fx = calloc(1, sizeof *fx);
    fx->pg = pg;
    if (pg) {
        pg_reset();
        snprintf(fx->url, sizeof fx->url, "%s", pg_url);
    } else {
        snprintf(fx->dir, sizeof fx->dir, "/tmp/test_serve_store-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->url, sizeof fx->url, "sqlite:%s/store.db", fx->dir);
    }
    *state = fx;
    return 0;
}

static int sqlite_setup(void **state)
{
    return fx_setup(state, false);
}

static int pg_setup(void **state)
{
    return fx_setup(state, true);
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    if (!fx->pg) {
        const char *names[] = {"store.db",         "store.db-wal", "store.db-shm",
                               "store.db-journal", "corrupt.db",   "sub"};
        char path[512];
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            snprintf(path, sizeof path, "%s/%s", fx->dir, names[i]);
            unlink(path);
            rmdir(path);
        }
        rmdir(fx->dir);
    }
    free(fx);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void make_id(char id[37], unsigned n)
{
    snprintf(id, 37, "00000000-0000-4000-8000-%012u", n);
}

static struct serve_store *open_ok(const char *url, const char *instance)
{
    char err[512] = "";
    struct serve_store *st = serve_store_open(url, instance, err, sizeof err);
    if (!st)
        fail_msg("open %s: %s", url, err);
    return st;
}

static void assert_one_line(const char *err, const char *must_contain)
{
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    assert_null(strchr(err, '\r'));
    assert_true(strncmp(err, "store ", 6) == 0);
    if (must_contain && !strstr(err, must_contain))
        fail_msg("error \"%s\" lacks \"%s\"", err, must_contain);
}

static int insert_running(struct serve_store *st, const char *id, char **keys, char conflict[37])
{
    struct serve_coord c = {0};
    snprintf(c.id, sizeof c.id, "%s", id);
    c.request_json = "{\"vnfInstanceId\":\"v1\"}";
    c.client = "alice";
    c.exclusive_keys = keys;
    char err[512] = "";
    int rc = serve_store_insert_running(st, &c, conflict, err, sizeof err);
    if (rc == SERVE_STORE_ERROR)
        fail_msg("insert_running %s: %s", id, err);
    return rc;
}

static void insert_done(struct serve_store *st, const char *id, const char *result)
{
    struct serve_coord c = {0};
    snprintf(c.id, sizeof c.id, "%s", id);
    c.request_json = "{}";
    c.lcmcoord_json = "{\"coordinationResult\":\"CONTINUE\"}";
    c.result = (char *)result;
    char err[512] = "";
    if (serve_store_insert_done(st, &c, err, sizeof err) != SERVE_STORE_OK)
        fail_msg("insert_done %s: %s", id, err);
}

static double now_epoch(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double time_factor(void)
{
    const char *f = getenv("LCMCOORD_TIME_FACTOR");
    double v = f ? atof(f) : 1;
    return v > 0 ? v : 1;
}

struct reap_log {
    int calls;
    char last_id[37];
};

static char *build_abort(const struct serve_coord *c, void *ud)
{
    struct reap_log *log = ud;
    log->calls++;
    snprintf(log->last_id, sizeof log->last_id, "%s", c->id);
    char *json = malloc(128);
    snprintf(json, 128, "{\"id\":\"%s\",\"coordinationResult\":\"ABORT\"}", c->id);
    return json;
}

/* Reaps until count rows were finished or the deadline (seconds, scaled) passes. */
static int reap_until(struct serve_store *st, bool all, int want, double seconds,
                      struct reap_log *log)
{
    double deadline = now_epoch() + seconds * time_factor();
    int total = 0;
    char err[512];
    while (total < want && now_epoch() < deadline) {
        int n = serve_store_reap(st, all, build_abort, log, err, sizeof err);
        if (n < 0)
            fail_msg("reap: %s", err);
        total += n;
        if (total < want) {
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL); /* polling a real condition, bounded by the deadline */
        }
    }
    return total;
}

/* ---- scenarios shared by both back ends ------------------------------------------------- */

static void lifecycle(struct fx *fx)
{
    struct serve_store *st = open_ok(fx->url, "instance-a");
    char err[512] = "", id[37], other[37];
    make_id(id, 1);
    make_id(other, 2);
    assert_int_equal(insert_running(st, id, NULL, NULL), SERVE_STORE_OK);

    struct serve_coord got;
    assert_int_equal(serve_store_get(st, id, &got, err, sizeof err), SERVE_STORE_OK);
    assert_string_equal(got.id, id);
    assert_int_equal(got.state, SERVE_RUNNING);
    assert_string_equal(got.request_json, "{\"vnfInstanceId\":\"v1\"}");
    assert_null(got.lcmcoord_json);
    assert_null(got.result);
    assert_string_equal(got.client, "alice");
    assert_string_equal(got.owner, "instance-a");
    assert_null(got.exclusive_keys);
    assert_false(got.cancel_requested);
    double now = now_epoch();
    assert_true(got.created > now - 60 && got.created < now + 60);
    assert_true(got.lease_until > got.created);
    serve_coord_clear(&got);

    /* Nothing to cancel yet: a heartbeat renews the one lease and reports no cancel. */
    char **ids = NULL;
    size_t n = 99;
    assert_int_equal(serve_store_heartbeat(st, 30, &ids, &n, err, sizeof err), 1);
    assert_int_equal(n, 0);
    serve_store_free_ids(ids, n);

    assert_int_equal(serve_store_request_cancel(st, id, err, sizeof err), 202);
    assert_int_equal(serve_store_request_cancel(st, id, err, sizeof err), 202);
    assert_int_equal(serve_store_get(st, id, &got, err, sizeof err), SERVE_STORE_OK);
    assert_true(got.cancel_requested);
    serve_coord_clear(&got);
    /* The cancel is reported by the next heartbeat, once. */
    assert_int_equal(serve_store_heartbeat(st, 30, &ids, &n, err, sizeof err), 1);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], id);
    serve_store_free_ids(ids, n);
    assert_int_equal(serve_store_heartbeat(st, 30, &ids, &n, err, sizeof err), 1);
    assert_int_equal(n, 0);
    serve_store_free_ids(ids, n);

    assert_int_equal(
        serve_store_finish(st, id, "CANCELLED", "{\"r\":\"CANCELLED\"}", err, sizeof err),
        SERVE_STORE_OK);
    assert_int_equal(serve_store_get(st, id, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_DONE);
    assert_string_equal(got.result, "CANCELLED");
    assert_string_equal(got.lcmcoord_json, "{\"r\":\"CANCELLED\"}");
    assert_true(got.finished >= got.created);
    serve_coord_clear(&got);
    /* Decided once: a second finish finds nothing RUNNING; cancel of DONE is 409. */
    assert_int_equal(serve_store_finish(st, id, "CONTINUE", "{}", err, sizeof err),
                     SERVE_STORE_NOT_FOUND);
    assert_int_equal(serve_store_request_cancel(st, id, err, sizeof err), 409);
    assert_int_equal(serve_store_heartbeat(st, 30, &ids, &n, err, sizeof err), 0);
    serve_store_free_ids(ids, n);

    /* Unknown ids, and ids no row can have. */
    assert_int_equal(serve_store_request_cancel(st, other, err, sizeof err), 404);
    assert_int_equal(serve_store_get(st, other, &got, err, sizeof err), SERVE_STORE_NOT_FOUND);
    assert_int_equal(serve_store_finish(st, other, "ABORT", "{}", err, sizeof err),
                     SERVE_STORE_NOT_FOUND);
    assert_int_equal(serve_store_get(st, "x'; DROP TABLE serve_coord; --", &got, err, sizeof err),
                     SERVE_STORE_NOT_FOUND);
    assert_int_equal(serve_store_request_cancel(st, "", err, sizeof err), 404);

    /* A DONE row inserted directly; an existing id refused with one line. */
    insert_done(st, other, "ABORT");
    assert_int_equal(serve_store_get(st, other, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_DONE);
    assert_string_equal(got.result, "ABORT");
    assert_string_equal(got.owner, "instance-a");
    serve_coord_clear(&got);
    struct serve_coord dup = {0};
    snprintf(dup.id, sizeof dup.id, "%s", other);
    dup.request_json = "{}";
    assert_int_equal(serve_store_insert_running(st, &dup, NULL, err, sizeof err),
                     SERVE_STORE_ERROR);
    assert_one_line(err, "already exists");
    /* A bad result is refused before reaching the database. */
    make_id(id, 3);
    snprintf(dup.id, sizeof dup.id, "%s", id);
    dup.lcmcoord_json = "{}";
    dup.result = "MAYBE";
    assert_int_equal(serve_store_insert_done(st, &dup, err, sizeof err), SERVE_STORE_ERROR);
    assert_one_line(err, "result");
    assert_int_equal(serve_store_ping(st, err, sizeof err), SERVE_STORE_OK);
    serve_store_close(st);
}

static void exclusive_keys(struct fx *fx)
{
    struct serve_store *st = open_ok(fx->url, "instance-a");
    char a[37], b[37], c[37], d[37], conflict[37], err[512];
    make_id(a, 10);
    make_id(b, 11);
    make_id(c, 12);
    make_id(d, 13);
    char *keys_a[] = {"vnf-1/vnfc-1", "vnf-1/vnfc-2", "vnf-1/vnfc-2", NULL};
    char *keys_b[] = {"vnf-1/vnfc-3", "vnf-1/vnfc-2", NULL};
    char *keys_c[] = {"vnf-1/vnfc-3", NULL};
    assert_int_equal(insert_running(st, a, keys_a, conflict), SERVE_STORE_OK);
    assert_int_equal(insert_running(st, b, keys_b, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, a);
    /* Nothing of the refused one was kept: not the row, not its free key. */
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, b, &got, err, sizeof err), SERVE_STORE_NOT_FOUND);
    assert_int_equal(insert_running(st, c, keys_c, conflict), SERVE_STORE_OK);
    assert_int_equal(serve_store_get(st, a, &got, err, sizeof err), SERVE_STORE_OK);
    assert_non_null(got.exclusive_keys);
    assert_string_equal(got.exclusive_keys[0], "vnf-1/vnfc-1");
    assert_string_equal(got.exclusive_keys[1], "vnf-1/vnfc-2");
    assert_null(got.exclusive_keys[2]);
    serve_coord_clear(&got);
    /* Finishing a releases its keys; c still holds vnfc-3. */
    assert_int_equal(serve_store_finish(st, a, "CONTINUE", "{}", err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(insert_running(st, b, keys_b, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, c);
    assert_int_equal(serve_store_finish(st, c, "ABORT", "{}", err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(insert_running(st, b, keys_b, conflict), SERVE_STORE_OK);
    /* A DONE row never holds its keys. */
    struct serve_coord done = {0};
    snprintf(done.id, sizeof done.id, "%s", d);
    done.request_json = "{}";
    done.lcmcoord_json = "{}";
    done.result = "CONTINUE";
    done.exclusive_keys = keys_b;
    assert_int_equal(serve_store_insert_done(st, &done, err, sizeof err), SERVE_STORE_OK);
    serve_store_close(st);
}

/* Many inserters, on two instances, released at once on the same key: exactly one wins. */
struct racer {
    struct serve_store *st;
    pthread_barrier_t *start;
    char id[37];
    char key[64];
    char conflict[37];
    int rc;
    char err[512];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct serve_coord c = {0};
    snprintf(c.id, sizeof c.id, "%s", r->id);
    c.request_json = "{}";
    char *keys[] = {r->key, NULL};
    c.exclusive_keys = keys;
    pthread_barrier_wait(r->start);
    r->rc = serve_store_insert_running(r->st, &c, r->conflict, r->err, sizeof r->err);
    return NULL;
}

static void concurrent_inserters(struct fx *fx)
{
    enum { RACERS = 8, ROUNDS = 6 };
    struct serve_store *a = open_ok(fx->url, "instance-a");
    /* SQLite is one process's store: its threads race; PostgreSQL: two instances do. */
    struct serve_store *b = fx->pg ? open_ok(fx->url, "instance-b") : a;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        struct racer racers[RACERS];
        pthread_t threads[RACERS];
        for (int i = 0; i < RACERS; i++) {
            memset(&racers[i], 0, sizeof racers[i]);
            racers[i].st = i % 2 ? b : a;
            racers[i].start = &start;
            make_id(racers[i].id, (unsigned)(1000 + round * RACERS + i));
            snprintf(racers[i].key, sizeof racers[i].key, "vnf-race/vnfc-%d", round);
            pthread_create(&threads[i], NULL, race, &racers[i]);
        }
        for (int i = 0; i < RACERS; i++)
            pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&start);
        int winners = 0, winner = -1;
        for (int i = 0; i < RACERS; i++) {
            if (racers[i].rc == SERVE_STORE_ERROR)
                fail_msg("racer %d: %s", i, racers[i].err);
            if (racers[i].rc == SERVE_STORE_OK) {
                winners++;
                winner = i;
            }
        }
        assert_int_equal(winners, 1);
        for (int i = 0; i < RACERS; i++)
            if (i != winner) {
                assert_int_equal(racers[i].rc, SERVE_STORE_CONFLICT);
                assert_string_equal(racers[i].conflict, racers[winner].id);
            }
    }
    if (b != a)
        serve_store_close(b);
    serve_store_close(a);
}

/* A lapsed lease is reaped by another instance as ABORT, once, and the owner's late finish
 * then finds nothing: never decided twice. */
static void lease_reap(struct fx *fx)
{
    struct serve_store *a = open_ok(fx->url, "instance-a");
    char id[37], id2[37], err[512], conflict[37];
    make_id(id, 20);
    make_id(id2, 21);
    char *keys[] = {"vnf-2", NULL};
    serve_store_set_lease_ttl(a, 3600);
    assert_int_equal(insert_running(a, id, keys, NULL), SERVE_STORE_OK);
    /* SQLite allows one process: the "other instance" is the same file reopened later. */
    struct serve_store *b = fx->pg ? open_ok(fx->url, "instance-b") : a;
    struct reap_log log = {0};
    assert_int_equal(serve_store_reap(b, false, build_abort, &log, err, sizeof err), 0);
    assert_int_equal(log.calls, 0);
    /* A live instance's rows are not taken even by a start-up reap of another instance. */
    if (fx->pg) {
        assert_int_equal(serve_store_reap(b, true, build_abort, &log, err, sizeof err), 0);
    }
    /* The owner's heartbeat shortens its lease to almost nothing: it lapses. */
    char **ids;
    size_t n;
    assert_int_equal(serve_store_heartbeat(a, 0.001, &ids, &n, err, sizeof err), 1);
    serve_store_free_ids(ids, n);
    assert_int_equal(reap_until(b, false, 1, 10, &log), 1);
    assert_int_equal(log.calls, 1);
    assert_string_equal(log.last_id, id);
    struct serve_coord got;
    assert_int_equal(serve_store_get(a, id, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_DONE);
    assert_string_equal(got.result, "ABORT");
    assert_true(strstr(got.lcmcoord_json, id) != NULL);
    serve_coord_clear(&got);
    assert_int_equal(serve_store_finish(a, id, "CONTINUE", "{}", err, sizeof err),
                     SERVE_STORE_NOT_FOUND);
    assert_int_equal(serve_store_reap(b, false, build_abort, &log, err, sizeof err), 0);
    /* Its key is free again. */
    assert_int_equal(insert_running(a, id2, keys, conflict), SERVE_STORE_OK);
    /* Only the owner may finish its row. */
    if (fx->pg) {
        assert_int_equal(serve_store_finish(b, id2, "CONTINUE", "{}", err, sizeof err),
                         SERVE_STORE_NOT_FOUND);
        serve_store_close(b);
    }
    assert_int_equal(serve_store_finish(a, id2, "CONTINUE", "{}", err, sizeof err), SERVE_STORE_OK);
    serve_store_close(a);
}

static void purge_by_age(struct fx *fx)
{
    struct serve_store *st = open_ok(fx->url, "instance-a");
    char id[37], running[37], err[512];
    char *keys[] = {"vnf-3", NULL};
    make_id(running, 30);
    assert_int_equal(insert_running(st, running, keys, NULL), SERVE_STORE_OK);
    for (unsigned i = 0; i < 3; i++) {
        make_id(id, 31 + i);
        insert_done(st, id, "CONTINUE");
    }
    assert_int_equal(serve_store_purge(st, 3600, err, sizeof err), 0);
    /* Wait until the rows are measurably older than an age of 0.5 s... by the store's clock,
     * which purge itself reads: poll it. */
    double deadline = now_epoch() + 10 * time_factor();
    int purged = 0;
    while (purged < 3 && now_epoch() < deadline) {
        int rc = serve_store_purge(st, 0.2, err, sizeof err);
        if (rc < 0)
            fail_msg("purge: %s", err);
        purged += rc;
        struct timespec pause = {0, 50 * 1000 * 1000};
        if (purged < 3)
            nanosleep(&pause, NULL);
    }
    assert_int_equal(purged, 3);
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, id, &got, err, sizeof err), SERVE_STORE_NOT_FOUND);
    /* RUNNING rows are never purged, and keep their key. */
    assert_int_equal(serve_store_get(st, running, &got, err, sizeof err), SERVE_STORE_OK);
    assert_non_null(got.exclusive_keys);
    serve_coord_clear(&got);
    assert_int_equal(serve_store_purge(st, 0, err, sizeof err), 0);
    assert_int_equal(serve_store_purge(st, -1, err, sizeof err), SERVE_STORE_ERROR);
    assert_one_line(err, "purge age");
    serve_store_close(st);
}

static void durability(struct fx *fx)
{
    char running[37], done[37], err[512];
    make_id(running, 40);
    make_id(done, 41);
    struct serve_store *st = open_ok(fx->url, "instance-a");
    char *keys[] = {"vnf-4/a", "vnf-4/b", NULL};
    assert_int_equal(insert_running(st, running, keys, NULL), SERVE_STORE_OK);
    insert_done(st, done, "CONTINUE");
    serve_store_close(st);

    st = open_ok(fx->url, "instance-a");
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, done, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_DONE);
    assert_string_equal(got.lcmcoord_json, "{\"coordinationResult\":\"CONTINUE\"}");
    serve_coord_clear(&got);
    assert_int_equal(serve_store_get(st, running, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_RUNNING);
    assert_string_equal(got.exclusive_keys[1], "vnf-4/b");
    serve_coord_clear(&got);
    /* The keys are still held after the reopen. */
    char other[37], conflict[37];
    make_id(other, 42);
    char *one[] = {"vnf-4/b", NULL};
    assert_int_equal(insert_running(st, other, one, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, running);
    serve_store_close(st);
}

/* Values no SQL text could carry unescaped, and sizes beyond a page, read back exactly. */
static void hostile_values(struct fx *fx)
{
    struct serve_store *st = open_ok(fx->url, "inst'\"\\; DROP TABLE serve_coord; --");
    size_t big = 4u << 20;
    char *request = malloc(big + 1);
    static const char pattern[] = "{\"'\\\"x; DROP TABLE serve_coord;--\xc3\xa9\xff\x01\x7f}";
    for (size_t i = 0; i < big; i++)
        request[i] = pattern[i % (sizeof pattern - 1)];
    request[big] = '\0';
    char binary[255];
    for (int i = 1; i < 256; i++)
        binary[i - 1] = (char)(256 - i); /* 0xff ... 0x01: invalid UTF-8 included */
    binary[254] = '\0';
    char *long_key = malloc(20001);
    memset(long_key, 'k', 20000);
    long_key[0] = '\'';
    long_key[20000] = '\0';
    char *keys[] = {binary, long_key, "$1", NULL};

    char id[37], err[512];
    make_id(id, 50);
    struct serve_coord c = {0};
    snprintf(c.id, sizeof c.id, "%s", id);
    c.request_json = request;
    c.client = binary;
    c.exclusive_keys = keys;
    assert_int_equal(serve_store_insert_running(st, &c, NULL, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(serve_store_finish(st, id, "ABORT", request, err, sizeof err), SERVE_STORE_OK);
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, id, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(strlen(got.request_json), big);
    assert_memory_equal(got.request_json, request, big);
    assert_int_equal(strlen(got.lcmcoord_json), big);
    assert_memory_equal(got.lcmcoord_json, request, big);
    assert_string_equal(got.client, binary);
    assert_string_equal(got.owner, "inst'\"\\; DROP TABLE serve_coord; --");
    assert_string_equal(got.exclusive_keys[0], binary);
    assert_string_equal(got.exclusive_keys[1], long_key);
    assert_string_equal(got.exclusive_keys[2], "$1");
    assert_null(got.exclusive_keys[3]);
    serve_coord_clear(&got);
    /* A binary key is enforced like any other. */
    char other[37], conflict[37];
    make_id(other, 51);
    char *again[] = {binary, NULL};
    assert_int_equal(insert_running(st, other, again, conflict), SERVE_STORE_OK);
    make_id(id, 52);
    assert_int_equal(insert_running(st, id, again, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, other);
    free(request);
    free(long_key);
    serve_store_close(st);
}

/* Every operation at once from several threads (as the HTTP threads and the engine thread
 * of one serve do): each thread's coordinations end exactly as it drove them. */
struct worker {
    struct serve_store *st;
    int index;
    char err[512];
    bool failed;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25 && !w->failed; i++) {
        char id[37], key[32];
        make_id(id, (unsigned)(5000 + w->index * 100 + i));
        snprintf(key, sizeof key, "vnf-w%d", w->index);
        char *keys[] = {key, NULL};
        struct serve_coord c = {0}, got;
        snprintf(c.id, sizeof c.id, "%s", id);
        c.request_json = "{\"w\":1}";
        c.exclusive_keys = keys;
        const char *result = i % 3 == 0 ? "CANCELLED" : "CONTINUE";
        w->failed = serve_store_insert_running(w->st, &c, NULL, w->err, sizeof w->err) != 0 ||
                    serve_store_get(w->st, id, &got, w->err, sizeof w->err) != 0;
        if (w->failed)
            break;
        w->failed = got.state != SERVE_RUNNING;
        serve_coord_clear(&got);
        if (i % 3 == 0)
            w->failed |= serve_store_request_cancel(w->st, id, w->err, sizeof w->err) != 202;
        w->failed |= serve_store_finish(w->st, id, result, id, w->err, sizeof w->err) != 0;
        w->failed |= serve_store_get(w->st, id, &got, w->err, sizeof w->err) != 0;
        if (w->failed)
            break;
        w->failed = got.state != SERVE_DONE || strcmp(got.result, result) != 0 ||
                    strcmp(got.lcmcoord_json, id) != 0;
        serve_coord_clear(&got);
    }
    return NULL;
}

static void *beat(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25 && !w->failed; i++) {
        char **ids;
        size_t n;
        w->failed = serve_store_heartbeat(w->st, 3600, &ids, &n, w->err, sizeof w->err) < 0 ||
                    serve_store_ping(w->st, w->err, sizeof w->err) != 0;
        serve_store_free_ids(ids, n);
    }
    return NULL;
}

static void mixed_threads(struct fx *fx)
{
    enum { WORKERS = 4 };
    struct serve_store *st = open_ok(fx->url, "instance-a");
    serve_store_set_lease_ttl(st, 3600);
    struct worker workers[WORKERS + 1];
    pthread_t threads[WORKERS + 1];
    for (int i = 0; i <= WORKERS; i++) {
        workers[i] = (struct worker){.st = st, .index = i};
        pthread_create(&threads[i], NULL, i < WORKERS ? work : beat, &workers[i]);
    }
    for (int i = 0; i <= WORKERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i <= WORKERS; i++)
        if (workers[i].failed)
            fail_msg("thread %d: %s", i, workers[i].err);
    serve_store_close(st);
}

/* ---- the tests -------------------------------------------------------------------------- */

#define BOTH(name)                                                                                 \
    static void test_sqlite_##name(void **state)                                                   \
    {                                                                                              \
        name(*state);                                                                              \
    }                                                                                              \
    static void test_pg_##name(void **state)                                                       \
    {                                                                                              \
        name(*state);                                                                              \
    }

BOTH(lifecycle)
BOTH(exclusive_keys)
BOTH(concurrent_inserters)
BOTH(lease_reap)
BOTH(purge_by_age)
BOTH(durability)
BOTH(hostile_values)
BOTH(mixed_threads)

/* Delete: a RUNNING row of this instance goes with its keys (the key is free at once); a DONE
 * row, another instance's row or an unknown id is left alone (NOT_FOUND). */
static void delete_running(struct fx *fx)
{
    struct serve_store *st = open_ok(fx->url, "instance-a");
    char a[37], b[37], c[37], d[37], conflict[37], err[512];
    make_id(a, 40);
    make_id(b, 41);
    make_id(c, 42);
    make_id(d, 43);
    char *keys[] = {"vnf-9/vnfc-1", NULL};
    char *keys_other[] = {"vnf-9/vnfc-2", NULL};
    assert_int_equal(insert_running(st, a, keys, conflict), SERVE_STORE_OK);
    assert_int_equal(serve_store_delete(st, a, err, sizeof err), SERVE_STORE_OK);
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, a, &got, err, sizeof err), SERVE_STORE_NOT_FOUND);
    assert_int_equal(insert_running(st, b, keys, conflict), SERVE_STORE_OK); /* key free */
    assert_int_equal(serve_store_delete(st, a, err, sizeof err), SERVE_STORE_NOT_FOUND);
    if (fx->pg) { /* another instance's RUNNING row is not ours to delete (one SQLite user) */
        struct serve_store *other = open_ok(fx->url, "instance-b");
        assert_int_equal(insert_running(other, c, keys_other, conflict), SERVE_STORE_OK);
        assert_int_equal(serve_store_delete(st, c, err, sizeof err), SERVE_STORE_NOT_FOUND);
        assert_int_equal(serve_store_get(st, c, &got, err, sizeof err), SERVE_STORE_OK);
        serve_coord_clear(&got);
        serve_store_close(other);
    }
    /* A finished row stays. */
    insert_done(st, d, "CONTINUE");
    assert_int_equal(serve_store_delete(st, d, err, sizeof err), SERVE_STORE_NOT_FOUND);
    assert_int_equal(serve_store_get(st, d, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_DONE);
    serve_coord_clear(&got);
    assert_int_equal(serve_store_delete(st, "", err, sizeof err), SERVE_STORE_ERROR);
    assert_one_line(err, "id");
    serve_store_close(st);
}
BOTH(delete_running)

/* A whole instance ("I") and one of its VNFCs ("I/C") never run at once, whichever came first
 * and whichever store handle (serve instance) inserted them; keys whose parts are
 * percent-encoded ("%2F" for a '/' inside an id) are plain, distinct keys. */
static void instance_vs_vnfc(struct fx *fx)
{
    struct serve_store *a = open_ok(fx->url, "instance-a");
    /* SQLite is one process's store (one handle): its threads race; PostgreSQL: two instances. */
    struct serve_store *b = fx->pg ? open_ok(fx->url, "instance-b") : a;
    char x[37], y[37], z[37], conflict[37], err[512];
    make_id(x, 40);
    make_id(y, 41);
    make_id(z, 42);
    char *whole[] = {"vnf-h", NULL};
    char *one_vnfc[] = {"vnf-h/vnfc-1", NULL};
    char *two_vnfcs[] = {"vnf-h/vnfc-2", "vnf-h/vnfc-3", NULL};
    char *other_instance[] = {"vnf-hx", "vnf-h%2Fvnfc-1", NULL};
    assert_int_equal(insert_running(a, x, whole, conflict), SERVE_STORE_OK);
    assert_int_equal(insert_running(b, y, one_vnfc, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, x);
    assert_int_equal(insert_running(b, y, two_vnfcs, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, x);
    /* A longer instance id sharing the prefix, and an encoded '/', are other instances. */
    assert_int_equal(insert_running(b, z, other_instance, conflict), SERVE_STORE_OK);
    assert_int_equal(serve_store_finish(a, x, "CONTINUE", "{}", err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(insert_running(b, y, one_vnfc, conflict), SERVE_STORE_OK);
    make_id(x, 43);
    assert_int_equal(insert_running(a, x, whole, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, y);
    assert_int_equal(serve_store_finish(b, y, "CONTINUE", "{}", err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(insert_running(a, x, whole, conflict), SERVE_STORE_OK);
    /* A VNFC id holding a '/' (encoded) does not clash with the VNFC named by its first part. */
    char *slashed[] = {"vnf-s/a%2Fb", NULL};
    char *plain[] = {"vnf-s/a", NULL};
    make_id(y, 44);
    make_id(z, 45);
    assert_int_equal(insert_running(a, y, slashed, conflict), SERVE_STORE_OK);
    assert_int_equal(insert_running(b, z, plain, conflict), SERVE_STORE_OK);
    if (b != a)
        serve_store_close(b);
    serve_store_close(a);
}
BOTH(instance_vs_vnfc)

/* Two serve instances insert "I" and "I/C" at the same moment, round after round: exactly one
 * wins and the other names it. */
static void instance_vs_vnfc_race(struct fx *fx)
{
    enum { ROUNDS = 20 };
    struct serve_store *a = open_ok(fx->url, "instance-a");
    /* SQLite is one process's store (one handle): its threads race; PostgreSQL: two instances. */
    struct serve_store *b = fx->pg ? open_ok(fx->url, "instance-b") : a;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        struct racer racers[2];
        pthread_t threads[2];
        for (int i = 0; i < 2; i++) {
            memset(&racers[i], 0, sizeof racers[i]);
            racers[i].st = i ? b : a;
            racers[i].start = &start;
            make_id(racers[i].id, (unsigned)(3000 + round * 2 + i));
            snprintf(racers[i].key, sizeof racers[i].key, i ? "vnf-hr-%d/vnfc-1" : "vnf-hr-%d",
                     round);
            pthread_create(&threads[i], NULL, race, &racers[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < 2; i++)
            if (racers[i].rc == SERVE_STORE_ERROR)
                fail_msg("racer %d: %s", i, racers[i].err);
        int winners = (racers[0].rc == SERVE_STORE_OK) + (racers[1].rc == SERVE_STORE_OK);
        if (winners != 1)
            fail_msg("round %d: %d winners", round, winners);
        int loser = racers[0].rc == SERVE_STORE_OK ? 1 : 0;
        assert_int_equal(racers[loser].rc, SERVE_STORE_CONFLICT);
        assert_string_equal(racers[loser].conflict, racers[1 - loser].id);
    }
    if (b != a)
        serve_store_close(b);
    serve_store_close(a);
}
BOTH(instance_vs_vnfc_race)

/* SQLite group commit: the writes between begin and end are kept together, each with its own
 * outcome (a conflict or a missing row undoes that write only); after a reopen they are all
 * there. A failed write in the group leaves the others. */
static void test_sqlite_group_commit(void **state)
{
    struct fx *fx = *state;
    struct serve_store *st = open_ok(fx->url, "instance-a");
    char ids[6][37], conflict[37] = "", err[512] = "";
    for (unsigned i = 0; i < 6; i++)
        make_id(ids[i], 50 + i);
    char *keys[] = {"vnf-7", NULL};
    assert_int_equal(insert_running(st, ids[0], keys, conflict), SERVE_STORE_OK);
    assert_int_equal(insert_running(st, ids[5], NULL, conflict), SERVE_STORE_OK);
    assert_int_equal(serve_store_batch_begin(st, err, sizeof err), SERVE_STORE_OK);
    insert_done(st, ids[1], "CONTINUE");
    assert_int_equal(insert_running(st, ids[2], keys, conflict), SERVE_STORE_CONFLICT);
    assert_string_equal(conflict, ids[0]);
    assert_int_equal(serve_store_finish(st, ids[0], "ABORT", "{}", err, sizeof err),
                     SERVE_STORE_OK);
    assert_int_equal(insert_running(st, ids[3], keys, conflict), SERVE_STORE_OK); /* freed */
    assert_int_equal(serve_store_finish(st, ids[4], "ABORT", "{}", err, sizeof err),
                     SERVE_STORE_NOT_FOUND);
    assert_int_equal(serve_store_delete(st, ids[5], err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(serve_store_batch_end(st, err, sizeof err), SERVE_STORE_OK);
    serve_store_close(st);
    /* Reopened (the store's startup reap ends RUNNING rows: ids[3] becomes DONE). */
    st = open_ok(fx->url, "instance-a");
    struct serve_coord got;
    const int want[6] = {SERVE_STORE_OK, SERVE_STORE_OK,        SERVE_STORE_NOT_FOUND,
                         SERVE_STORE_OK, SERVE_STORE_NOT_FOUND, SERVE_STORE_NOT_FOUND};
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(serve_store_get(st, ids[i], &got, err, sizeof err), want[i]);
        serve_coord_clear(&got);
    }
    assert_int_equal(serve_store_get(st, ids[0], &got, err, sizeof err), SERVE_STORE_OK);
    assert_string_equal(got.result, "ABORT");
    serve_coord_clear(&got);
    serve_store_close(st);
}

/* PostgreSQL takes writes from several threads at once instead: no group commit. */
static void test_pg_no_group_commit(void **state)
{
    struct fx *fx = *state;
    struct serve_store *st = open_ok(fx->url, "instance-a");
    char err[512] = "";
    assert_int_equal(serve_store_batch_begin(st, err, sizeof err), SERVE_STORE_NOT_FOUND);
    serve_store_close(st);
}

/* SQLite: a restart finds RUNNING rows of the dead process and finishes them all as ABORT. */
static void test_sqlite_startup_reap(void **state)
{
    struct fx *fx = *state;
    char id[37], id2[37], err[512];
    make_id(id, 60);
    make_id(id2, 61);
    struct serve_store *st = open_ok(fx->url, "run-1");
    assert_int_equal(insert_running(st, id, NULL, NULL), SERVE_STORE_OK);
    assert_int_equal(insert_running(st, id2, NULL, NULL), SERVE_STORE_OK);
    serve_store_close(st);
    st = open_ok(fx->url, "run-2");
    struct reap_log log = {0};
    assert_int_equal(serve_store_reap(st, false, build_abort, &log, err, sizeof err), 0);
    assert_int_equal(serve_store_reap(st, true, build_abort, &log, err, sizeof err), 2);
    assert_int_equal(log.calls, 2);
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, id2, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_DONE);
    assert_string_equal(got.result, "ABORT");
    serve_coord_clear(&got);
    assert_int_equal(serve_store_reap(st, true, build_abort, &log, err, sizeof err), 0);
    serve_store_close(st);
}

/* The process dies (SIGKILL) right after the store said a row was stored: the next process
 * opens the file (the lock died with it), finds every row, and reaps the RUNNING one. The
 * file is in WAL mode (its header says so). */
static void test_sqlite_killed_process(void **state)
{
    struct fx *fx = *state;
    char running[37], done[37], err[512];
    make_id(running, 80);
    make_id(done, 81);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char e[512];
        struct serve_store *st = serve_store_open(fx->url, "doomed", e, sizeof e);
        struct serve_coord c = {0};
        snprintf(c.id, sizeof c.id, "%s", running);
        c.request_json = "{}";
        bool ok = st && serve_store_insert_running(st, &c, NULL, e, sizeof e) == 0;
        snprintf(c.id, sizeof c.id, "%s", done);
        c.lcmcoord_json = "{\"stored\":true}";
        c.result = "CONTINUE";
        ok = ok && serve_store_insert_done(st, &c, e, sizeof e) == 0;
        if (write(ready[1], ok ? "k" : "x", 1) != 1)
            _exit(2);
        for (;;)
            pause(); /* killed here, store open, nothing closed */
    }
    close(ready[1]);
    char answer = 0;
    assert_int_equal(read(ready[0], &answer, 1), 1);
    close(ready[0]);
    assert_int_equal(answer, 'k');
    kill(child, SIGKILL);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);

    struct serve_store *st = open_ok(fx->url, "next");
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, done, &got, err, sizeof err), SERVE_STORE_OK);
    assert_string_equal(got.lcmcoord_json, "{\"stored\":true}");
    serve_coord_clear(&got);
    struct reap_log log = {0};
    assert_int_equal(serve_store_reap(st, true, build_abort, &log, err, sizeof err), 1);
    assert_string_equal(log.last_id, running);
    serve_store_close(st);

    char path[512];
    snprintf(path, sizeof path, "%s/store.db", fx->dir);
    unsigned char header[20];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(header, 1, sizeof header, f), sizeof header);
    fclose(f);
    assert_int_equal(header[18], 2); /* file format write version 2: WAL */
    assert_int_equal(header[19], 2);
}

static void test_sqlite_bad_files(void **state)
{
    struct fx *fx = *state;
    char url[600], err[512];
    /* Not a database. */
    char path[512];
    snprintf(path, sizeof path, "%s/corrupt.db", fx->dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 8192; i++)
        fputc("garbage!"[i % 8], f);
    fclose(f);
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_null(serve_store_open(url, "i", err, sizeof err));
    assert_one_line(err, url);
    assert_true(strstr(err, "not a database") != NULL);
    /* A directory that does not exist, and a directory where the file should be. */
    snprintf(url, sizeof url, "sqlite:%s/missing/store.db", fx->dir);
    assert_null(serve_store_open(url, "i", err, sizeof err));
    assert_one_line(err, url);
    assert_non_null(strstr(err, "missing: No such file or directory"));
    snprintf(path, sizeof path, "%s/sub", fx->dir);
    mkdir(path, 0700);
    snprintf(url, sizeof url, "sqlite:%s", path);
    assert_null(serve_store_open(url, "i", err, sizeof err));
    assert_one_line(err, url);
    assert_non_null(strstr(err, "sub is a directory"));
    /* Unwritable: where no file can be created (procfs), and, when not root (root writes
     * anyway), a read-only database file. */
    assert_null(serve_store_open("sqlite:/proc/lcmcoord-store.db", "i", err, sizeof err));
    assert_one_line(err, "sqlite:/proc/lcmcoord-store.db");
    if (geteuid() != 0) {
        serve_store_close(open_ok(fx->url, "i"));
        snprintf(path, sizeof path, "%s/store.db", fx->dir);
        assert_int_equal(chmod(path, 0400), 0);
        assert_null(serve_store_open(fx->url, "i", err, sizeof err));
        assert_one_line(err, "read-only");
        assert_int_equal(chmod(path, 0600), 0);
    }
    /* Locked: the file in use by another store (the other process of the same file). */
    struct serve_store *st = open_ok(fx->url, "first");
    assert_null(serve_store_open(fx->url, "second", err, sizeof err));
    assert_one_line(err, fx->url);
    assert_true(strstr(err, "locked") != NULL);
    assert_true(strstr(err, "another process") != NULL);
    serve_store_close(st);
    /* Once it is closed, the file opens again. */
    st = open_ok(fx->url, "second");
    serve_store_close(st);
    /* URL mistakes. */
    assert_null(serve_store_open("sqlite:", "i", err, sizeof err));
    assert_one_line(err, "no file path");
    assert_null(serve_store_open("mysql://root:hunter2@db/x", "i", err, sizeof err));
    assert_one_line(err, "unknown store URL");
    assert_null(strstr(err, "hunter2"));
    assert_null(serve_store_open(fx->url, "", err, sizeof err));
    assert_one_line(err, "instance id");
}

/* Two instances creating the schema at the same moment both succeed. */
struct opener {
    const char *url;
    pthread_barrier_t *start;
    struct serve_store *st;
    char err[512];
};

static void *open_racing(void *arg)
{
    struct opener *o = arg;
    pthread_barrier_wait(o->start);
    o->st = serve_store_open(o->url, "racer", o->err, sizeof o->err);
    return NULL;
}

static void test_pg_concurrent_schema(void **state)
{
    struct fx *fx = *state;
    enum { OPENERS = 4 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, OPENERS);
    struct opener openers[OPENERS];
    pthread_t threads[OPENERS];
    for (int i = 0; i < OPENERS; i++) {
        openers[i] = (struct opener){.url = fx->url, .start = &start};
        pthread_create(&threads[i], NULL, open_racing, &openers[i]);
    }
    for (int i = 0; i < OPENERS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < OPENERS; i++) {
        if (!openers[i].st)
            fail_msg("opener %d: %s", i, openers[i].err);
        serve_store_close(openers[i].st);
    }
}

/* The server restarts under an open store: the next calls reconnect by themselves. While it is
 * down, calls fail with one line naming the store, and the password never shows. */
static void test_pg_restart_and_unreachable(void **state)
{
    struct fx *fx = *state;
    /* Trust authentication accepts any password: put one in the URL to see it never shown. */
    char url[1200];
    const char *rest = strstr(fx->url, "://") + 3;
    snprintf(url, sizeof url, "postgresql://lcmcoord:Sup3rSecretPw@%s", strchr(rest, '@') + 1);
    struct serve_store *st = open_ok(url, "instance-a");
    assert_null(strstr(serve_store_display_name(st), "Sup3rSecretPw"));
    assert_non_null(strstr(serve_store_display_name(st), "lcmcoord:***@"));
    char id[37], err[512];
    make_id(id, 70);
    assert_int_equal(insert_running(st, id, NULL, NULL), SERVE_STORE_OK);

    assert_int_equal(run_cluster_command("restart"), 0);
    struct serve_coord got;
    assert_int_equal(serve_store_get(st, id, &got, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(got.state, SERVE_RUNNING);
    serve_coord_clear(&got);

    assert_int_equal(run_cluster_command("pause"), 0);
    assert_int_equal(serve_store_ping(st, err, sizeof err), SERVE_STORE_ERROR);
    assert_one_line(err, "lcmcoord:***@");
    assert_null(strstr(err, "Sup3rSecretPw"));
    assert_int_equal(serve_store_get(st, id, &got, err, sizeof err), SERVE_STORE_ERROR);
    assert_one_line(err, "store postgresql://lcmcoord:***@");
    assert_int_equal(run_cluster_command("resume"), 0);
    assert_int_equal(serve_store_ping(st, err, sizeof err), SERVE_STORE_OK);
    assert_int_equal(serve_store_finish(st, id, "CONTINUE", "{}", err, sizeof err), SERVE_STORE_OK);
    serve_store_close(st);

    /* Nobody listening: one line, the password redacted (also as a query parameter). */
    const char *unreachable[] = {
        "postgresql://lcmcoord:Sup3rSecretPw@/postgres?host=/nonexistent-dir&port=1",
        "postgres://lcmcoord@/postgres?host=/nonexistent-dir&port=1&password=Sup3rSecretPw",
        "postgresql://lcmcoord:Sup3rSecretPw@127.0.0.1:1/postgres?connect_timeout=2",
    };
    for (size_t i = 0; i < sizeof unreachable / sizeof *unreachable; i++) {
        assert_null(serve_store_open(unreachable[i], "i", err, sizeof err));
        assert_one_line(err, "connecting");
        assert_non_null(strstr(err, "***"));
        if (strstr(err, "Sup3rSecretPw"))
            fail_msg("password shown: %s", err);
    }
    assert_null(
        serve_store_open("postgresql://u:Sup3rSecretPw@h:notaport/db", "i", err, sizeof err));
    assert_one_line(err, NULL);
    assert_null(strstr(err, "Sup3rSecretPw"));
}

/* ---- benchmark hook --------------------------------------------------------------------- */

/* Prints how many durable inserts (each committed before returning, as a POST answered 201)
 * per second each back end takes on this machine; LCMCOORD_STORE_BENCH_N sets the count. */
static void bench_inserts(const char *label, const char *url)
{
    const char *env = getenv("LCMCOORD_STORE_BENCH_N");
    int count = env ? atoi(env) : 200;
    if (count <= 0)
        count = 200;
    struct serve_store *st = open_ok(url, "bench");
    double t0 = now_epoch();
    for (int i = 0; i < count; i++) {
        char id[37];
        make_id(id, (unsigned)(900000 + i));
        insert_done(st, id, "CONTINUE");
    }
    double elapsed = now_epoch() - t0;
    printf("bench: %s: %d durable inserts in %.3f s: %.0f inserts/s\n", label, count, elapsed,
           count / (elapsed > 0 ? elapsed : 1e-9));
    serve_store_close(st);
}

static void test_sqlite_bench(void **state)
{
    bench_inserts("sqlite (WAL, synchronous=FULL)", ((struct fx *)*state)->url);
}

static void test_pg_bench(void **state)
{
    bench_inserts("postgresql (unix socket)", ((struct fx *)*state)->url);
}

#define SQLITE_TEST(name)                                                                          \
    cmocka_unit_test_setup_teardown(test_sqlite_##name, sqlite_setup, fx_teardown)
#define PG_TEST(name) cmocka_unit_test_setup_teardown(test_pg_##name, pg_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        SQLITE_TEST(lifecycle),
        SQLITE_TEST(exclusive_keys),
        SQLITE_TEST(concurrent_inserters),
        SQLITE_TEST(lease_reap),
        SQLITE_TEST(purge_by_age),
        SQLITE_TEST(durability),
        SQLITE_TEST(hostile_values),
        SQLITE_TEST(startup_reap),
        SQLITE_TEST(bad_files),
        SQLITE_TEST(killed_process),
        SQLITE_TEST(mixed_threads),
        SQLITE_TEST(bench),
        SQLITE_TEST(delete_running),
        SQLITE_TEST(group_commit),
        SQLITE_TEST(instance_vs_vnfc),
        SQLITE_TEST(instance_vs_vnfc_race),
    };
    const struct CMUnitTest pg_tests[] = {
        PG_TEST(lifecycle),
        PG_TEST(exclusive_keys),
        PG_TEST(concurrent_inserters),
        PG_TEST(lease_reap),
        PG_TEST(purge_by_age),
        PG_TEST(durability),
        PG_TEST(hostile_values),
        PG_TEST(concurrent_schema),
        PG_TEST(restart_and_unreachable),
        PG_TEST(mixed_threads),
        PG_TEST(bench),
        PG_TEST(delete_running),
        PG_TEST(no_group_commit),
        PG_TEST(instance_vs_vnfc),
        PG_TEST(instance_vs_vnfc_race),
    };
    int failed = cmocka_run_group_tests_name("serve store: sqlite", sqlite_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("serve store: postgresql", pg_tests, pg_group_setup,
                                          pg_group_teardown);
    return failed ? 1 : 0;
}
