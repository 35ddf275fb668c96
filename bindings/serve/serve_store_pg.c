/* The PostgreSQL back end of the serve store ("postgresql://..."), for several serve instances
 * on one database. libpq connections are kept in a small mutex-guarded pool, so any thread may
 * call while others wait only when all of them are busy; a connection broken by a server
 * restart is dropped and the call retried once on a fresh one. Times (created, finished,
 * leases) come from the database server's clock, so instances' clocks do not matter. The
 * exclusive keys are enforced by the server: a unique partial index over the keys of RUNNING
 * coordinations, inserted with ON CONFLICT DO NOTHING inside the coordination's transaction,
 * so of two instances inserting the same key at once exactly one wins. Free-form strings are
 * bytea, sent and read in binary, so any NUL-free bytes come back exactly; every statement
 * takes its values as parameters. The schema is created under an advisory lock, so two
 * instances starting together do not race. Over TCP, TLS is required and the server's
 * certificate verified (sslmode=verify-full against the system's CAs) unless the URL or
 * PGSSLMODE says otherwise. */
#include "serve_store_impl.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_SCHEMA_VERSION 1
#define PG_POOL_MAX       8
/* Debian's bundle of the system's trusted CAs (ca-certificates): what a server certificate is
   verified against unless the URL names its own sslrootcert (libpq 15 has no "system"). */
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
/* Any constant: the advisory lock that serialises schema creation between instances. */
#define PG_SCHEMA_LOCK "7228913342013715200"
/* The server's clock, epoch seconds. */
#define PG_NOW "extract(epoch FROM clock_timestamp())::float8"

#define ROW_COLUMNS                                                                                \
    "id, state, request_json, lcmcoord_json, result, client, owner, created, finished, "           \
    "lease_until, cancel_requested"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS serve_schema (version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS serve_coord ("
    " id text PRIMARY KEY,"
    " state text NOT NULL CHECK (state IN ('RUNNING', 'DONE')),"
    " request_json bytea NOT NULL,"
    " lcmcoord_json bytea,"
    " result text CHECK (result IN ('CONTINUE', 'ABORT', 'CANCELLED')),"
    " client bytea,"
    " owner bytea,"
    " created float8 NOT NULL,"
    " finished float8,"
    " lease_until float8,"
    " cancel_requested boolean NOT NULL DEFAULT false,"
    " cancel_seen boolean NOT NULL DEFAULT false);"
    "CREATE INDEX IF NOT EXISTS serve_coord_running ON serve_coord (owner)"
    " WHERE state = 'RUNNING';"
    "CREATE INDEX IF NOT EXISTS serve_coord_finished ON serve_coord (finished)"
    " WHERE state = 'DONE';"
    "CREATE TABLE IF NOT EXISTS serve_coord_key ("
    " coord_id text NOT NULL REFERENCES serve_coord (id) ON DELETE CASCADE,"
    " pos integer NOT NULL,"
    " key bytea NOT NULL,"
    " running boolean NOT NULL,"
    " PRIMARY KEY (coord_id, pos));"
    /* At most one RUNNING coordination per key; hashed, as a key may be longer than a btree
     * entry may be. */
    "CREATE UNIQUE INDEX IF NOT EXISTS serve_coord_key_running ON serve_coord_key"
    " (sha256(key)) WHERE running;";

struct pg_store {
    struct serve_store head;
    char *url;
    char *password;           /* scrubbed from any message that would carry it */
    bool verify_tls;          /* neither the URL nor PGSSLMODE chose an sslmode */
    const char *system_roots; /* the CA bundle, when neither chose an sslrootcert */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    PGconn *idle[PG_POOL_MAX];
    size_t n_idle, n_open;
};

static struct pg_store *as_pg(struct serve_store *st)
{
    return (struct pg_store *)st;
}

/* ---- errors ----------------------------------------------------------------------------- */

static void scrub(const struct pg_store *s, char *err)
{
    size_t plen = s->password ? strlen(s->password) : 0;
    if (!err || plen < 4)
        return;
    char *hit;
    while ((hit = strstr(err, s->password)) != NULL) {
        memcpy(hit, "***", 3);
        memmove(hit + 3, hit + plen, strlen(hit + plen) + 1);
    }
}

static int pg_fail(const struct pg_store *s, char *err, size_t errlen, const char *doing,
                   const char *why)
{
    serve_store_errorf(&s->head, err, errlen, "%s: %s", doing, why && *why ? why : "unknown error");
    scrub(s, err);
    return SERVE_STORE_ERROR;
}

/* ---- the connection pool ---------------------------------------------------------------- */

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like: not for stderr */
}

static PGconn *connect_one(struct pg_store *s, char *err, size_t errlen)
{
    /* Defaults first: a value in the URL (expanded from dbname) overrides them. Over TCP, a
     * server gone silent (host down, network cut) is noticed in about 10 s instead of the
     * system's two hours, so a call never holds an HTTP thread for long. */
    const char *keys[12] = {"connect_timeout",     "application_name", "keepalives_idle",
                            "keepalives_interval", "keepalives_count", "tcp_user_timeout"};
    const char *vals[12] = {"5", "lcmcoord-serve", "5", "2", "3", "10000"};
    size_t n = 6;
    /* TLS verified unless turned off (sslmode in the URL or PGSSLMODE): libpq's own default,
       "prefer", falls back to clear text without a word and verifies no certificate, so
       anyone on the path could read and rewrite the coordinations. Unix sockets are not
       concerned (libpq uses no TLS there). */
    if (s->verify_tls) {
        keys[n] = "sslmode";
        vals[n++] = "verify-full";
        if (s->system_roots) {
            keys[n] = "sslrootcert";
            vals[n++] = s->system_roots;
        }
    }
    keys[n] = "dbname";
    vals[n++] = s->url;
    keys[n] = vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        pg_fail(s, err, errlen, "connecting", "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        pg_fail(s, err, errlen, "connecting", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    return conn;
}

/* A pooled connection, or a new one. fresh: a call found its pooled connection broken (the
   server restarted or went away): the other idle connections predate that too and are as
   broken, so they are closed first and the retry does not get the next dead one. */
static PGconn *acquire(struct pg_store *s, bool fresh, char *err, size_t errlen)
{
    PGconn *stale[PG_POOL_MAX];
    size_t n_stale = 0;
    pthread_mutex_lock(&s->lock);
    if (fresh) {
        n_stale = s->n_idle;
        memcpy(stale, s->idle, n_stale * sizeof *stale);
        s->n_idle = 0;
        s->n_open -= n_stale;
    }
    while (s->n_idle == 0 && s->n_open >= PG_POOL_MAX)
        pthread_cond_wait(&s->freed, &s->lock);
    /* An idle one now was released after the flush, by a call that used it successfully. */
    PGconn *conn = s->n_idle > 0 ? s->idle[--s->n_idle] : NULL;
    if (!conn)
        s->n_open++;
    if (n_stale)
        pthread_cond_broadcast(&s->freed);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n_stale; i++)
        PQfinish(stale[i]);
    if (conn)
        return conn;
    conn = connect_one(s, err, errlen);
    if (!conn) {
        pthread_mutex_lock(&s->lock);
        s->n_open--;
        pthread_cond_signal(&s->freed);
        pthread_mutex_unlock(&s->lock);
    }
    return conn;
}

/* Back to the pool, or closed when broken (or left inside a transaction by a failure). */
static void release(struct pg_store *s, PGconn *conn)
{
    bool keep = PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
    if (!keep)
        PQfinish(conn);
    pthread_mutex_lock(&s->lock);
    if (keep)
        s->idle[s->n_idle++] = conn;
    else
        s->n_open--;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* ---- statements ------------------------------------------------------------------------- */

/* The parameters of one statement: strings go in binary (raw bytes, no escaping), numbers and
 * booleans as text. */
struct pg_params {
    const char *value[8];
    int length[8];
    int format[8];
    char number[8][40];
    int n;
};

static void p_bytes(struct pg_params *p, const char *v)
{
    p->value[p->n] = v;
    p->length[p->n] = v ? (int)strlen(v) : 0;
    p->format[p->n] = 1;
    p->n++;
}

static void p_double(struct pg_params *p, double v)
{
    snprintf(p->number[p->n], sizeof p->number[p->n], "%.17g", v);
    p->value[p->n] = p->number[p->n];
    p->length[p->n] = 0;
    p->format[p->n] = 0;
    p->n++;
}

static void p_int(struct pg_params *p, long v)
{
    snprintf(p->number[p->n], sizeof p->number[p->n], "%ld", v);
    p->value[p->n] = p->number[p->n];
    p->length[p->n] = 0;
    p->format[p->n] = 0;
    p->n++;
}

static void p_bool(struct pg_params *p, bool v)
{
    p->value[p->n] = v ? "t" : "f";
    p->length[p->n] = 0;
    p->format[p->n] = 0;
    p->n++;
}

/* One call's use of a connection: a broken connection found by the call's first statement
 * (a server restart since it was pooled) asks for one retry on a fresh connection. */
struct pg_call {
    struct pg_store *s;
    PGconn *conn;
    bool first;
    bool retry;
    char *err;
    size_t errlen;
};

/* Runs sql; NULL (error written) unless it ends with want. Results come in binary. */
static PGresult *run(struct pg_call *call, const char *sql, const struct pg_params *p,
                     ExecStatusType want, const char *doing)
{
    PGresult *res = PQexecParams(call->conn, sql, p ? p->n : 0, NULL, p ? p->value : NULL,
                                 p ? p->length : NULL, p ? p->format : NULL, 1);
    bool first = call->first;
    call->first = false;
    if (res && PQresultStatus(res) == want)
        return res;
    if (first && PQstatus(call->conn) == CONNECTION_BAD)
        call->retry = true;
    const char *why = res ? PQresultErrorMessage(res) : NULL;
    if (!why || !*why)
        why = PQerrorMessage(call->conn);
    pg_fail(call->s, call->err, call->errlen, doing, why);
    PQclear(res);
    return NULL;
}

static bool run_command(struct pg_call *call, const char *sql, const char *doing)
{
    PGresult *res = run(call, sql, NULL, PGRES_COMMAND_OK, doing);
    PQclear(res);
    return res != NULL;
}

static void rollback(struct pg_call *call)
{
    if (PQtransactionStatus(call->conn) != PQTRANS_IDLE)
        PQclear(PQexec(call->conn, "ROLLBACK"));
}

static char *field_bytes(const PGresult *res, int row, int col, bool *oom)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    int len = PQgetlength(res, row, col);
    char *copy = malloc((size_t)len + 1);
    if (!copy) {
        *oom = true;
        return NULL;
    }
    memcpy(copy, PQgetvalue(res, row, col), (size_t)len);
    copy[len] = '\0';
    return copy;
}

static double field_double(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
        return 0;
    const unsigned char *b = (const unsigned char *)PQgetvalue(res, row, col);
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | b[i];
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static bool field_bool(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && PQgetlength(res, row, col) == 1 &&
           PQgetvalue(res, row, col)[0] != 0;
}

static bool read_row(const PGresult *res, int row, struct serve_coord *out)
{
    bool oom = false;
    memset(out, 0, sizeof *out);
    int idlen = PQgetlength(res, row, 0);
    if (idlen > 36)
        idlen = 36;
    memcpy(out->id, PQgetvalue(res, row, 0), (size_t)idlen);
    out->id[idlen] = '\0';
    out->state = strcmp(PQgetvalue(res, row, 1), "DONE") == 0 ? SERVE_DONE : SERVE_RUNNING;
    out->request_json = field_bytes(res, row, 2, &oom);
    out->lcmcoord_json = field_bytes(res, row, 3, &oom);
    out->result = field_bytes(res, row, 4, &oom);
    out->client = field_bytes(res, row, 5, &oom);
    out->owner = field_bytes(res, row, 6, &oom);
    out->created = field_double(res, row, 7);
    out->finished = field_double(res, row, 8);
    out->lease_until = field_double(res, row, 9);
    out->cancel_requested = field_bool(res, row, 10);
    if (oom)
        serve_coord_clear(out);
    return !oom;
}

/* Runs body on a pooled connection, once more on a new one (the idle ones closed) when the
 * first statement found the pooled connection broken. */
#define WITH_CONNECTION(s, err, errlen, rc, ...)                                                   \
    do {                                                                                           \
        for (int attempt_ = 0; attempt_ < 2; attempt_++) {                                         \
            struct pg_call call_ = {                                                               \
                (s), acquire((s), attempt_ > 0, (err), (errlen)), true, false, (err), (errlen)};   \
            if (!call_.conn) {                                                                     \
                (rc) = SERVE_STORE_ERROR;                                                          \
                break;                                                                             \
            }                                                                                      \
            struct pg_call *call = &call_;                                                         \
            __VA_ARGS__;                                                                           \
            release((s), call_.conn);                                                              \
            if (!call_.retry)                                                                      \
                break;                                                                             \
        }                                                                                          \
    } while (0)

/* ---- operations ------------------------------------------------------------------------- */

/* Whether another RUNNING coordination holds the instance of a VNFC key or a VNFC of an
 * instance key (serve_store_key_relatives). The caller holds the instance's advisory lock, so
 * no other inserter of the same instance comes between this check and its commit. CONFLICT
 * with the holder's id, OK, or ERROR. */
static int relative_holder(struct pg_call *call, const char *id, const char *key,
                           char conflict_id[37])
{
    char *equal, *low, *high;
    if (!serve_store_key_relatives(key, &equal, &low, &high))
        return SERVE_STORE_ERROR;
    struct pg_params p = {0};
    p_bytes(&p, id);
    p_bytes(&p, equal);
    p_bytes(&p, low);
    p_bytes(&p, high);
    PGresult *res = run(call,
                        "SELECT coord_id FROM serve_coord_key WHERE running AND coord_id <> "
                        "$1::text AND (key = $2::bytea OR (key >= $3::bytea AND key < "
                        "$4::bytea)) LIMIT 1",
                        &p, PGRES_TUPLES_OK, "reading who holds a related exclusive key");
    int rc = !res ? SERVE_STORE_ERROR : PQntuples(res) > 0 ? SERVE_STORE_CONFLICT : SERVE_STORE_OK;
    if (rc == SERVE_STORE_CONFLICT && conflict_id)
        snprintf(conflict_id, 37, "%.*s", PQgetlength(res, 0, 0) > 36 ? 36 : PQgetlength(res, 0, 0),
                 PQgetvalue(res, 0, 0));
    PQclear(res);
    free(equal);
    free(low);
    free(high);
    return rc;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Takes, until the transaction ends, the advisory lock of the instance part of each key (in
 * ascending order, so two inserters never wait on each other in a circle): inserters of one
 * instance, on any serve instance, check and insert one after the other. */
static bool lock_instances(struct pg_call *call, const struct serve_coord *c, const size_t *idx,
                           int nkeys)
{
    char **parts = calloc((size_t)nkeys + 1, sizeof *parts);
    bool ok = parts != NULL;
    for (int i = 0; ok && i < nkeys; i++) {
        const char *key = c->exclusive_keys[idx[i]];
        parts[i] = strndup(key, strcspn(key, "/"));
        ok = parts[i] != NULL;
    }
    if (ok)
        qsort(parts, (size_t)nkeys, sizeof *parts, compare_strings);
    for (int i = 0; ok && i < nkeys; i++) {
        if (i > 0 && strcmp(parts[i], parts[i - 1]) == 0)
            continue;
        struct pg_params p = {0};
        p_bytes(&p, parts[i]);
        PGresult *res = run(call,
                            "SELECT pg_advisory_xact_lock(('x' || left(encode(sha256("
                            "$1::bytea), 'hex'), 16))::bit(64)::bigint)",
                            &p, PGRES_TUPLES_OK, "locking an instance's exclusive keys");
        ok = res != NULL;
        PQclear(res);
    }
    for (int i = 0; parts && i < nkeys; i++)
        free(parts[i]);
    free(parts);
    return ok;
}

static int insert_body(struct pg_call *call, const struct serve_coord *c, bool running,
                       const size_t *idx, int nkeys, char conflict_id[37])
{
    struct pg_store *s = call->s;
    if (!run_command(call, "BEGIN", "beginning a transaction"))
        return SERVE_STORE_ERROR;
    struct pg_params p = {0};
    p_bytes(&p, c->id);
    p_bytes(&p, running ? "RUNNING" : "DONE");
    p_bytes(&p, c->request_json);
    p_bytes(&p, running ? NULL : c->lcmcoord_json);
    p_bytes(&p, running ? NULL : c->result);
    p_bytes(&p, c->client);
    p_bytes(&p, s->head.instance_id);
    p_double(&p, running ? s->head.lease_ttl : -1);
    PGresult *res = run(call,
                        "INSERT INTO serve_coord (id, state, request_json, lcmcoord_json, "
                        "result, client, owner, created, finished, lease_until) VALUES "
                        "($1::text, $2::text, $3::bytea, $4::bytea, $5::text, $6::bytea, "
                        "$7::bytea, " PG_NOW ", CASE WHEN $2::text = 'DONE' THEN " PG_NOW
                        " END, CASE WHEN $2::text = 'RUNNING' THEN " PG_NOW " + $8::float8 END)",
                        &p, PGRES_COMMAND_OK, "inserting a coordination");
    if (!res) {
        rollback(call);
        return SERVE_STORE_ERROR;
    }
    PQclear(res);
    if (running && !lock_instances(call, c, idx, nkeys)) {
        rollback(call);
        return SERVE_STORE_ERROR;
    }
    for (int i = 0; i < nkeys; i++) {
        const char *key = c->exclusive_keys[idx[i]];
        if (running) {
            int related = relative_holder(call, c->id, key, conflict_id);
            if (related != SERVE_STORE_OK) {
                rollback(call);
                return related;
            }
        }
        struct pg_params kp = {0};
        p_bytes(&kp, c->id);
        p_int(&kp, i);
        p_bytes(&kp, key);
        p_bool(&kp, running);
        /* A key held by another RUNNING row inserts nothing (after waiting for that row's
         * transaction if it is in flight): exactly one of two concurrent inserters wins. */
        res = run(call,
                  "INSERT INTO serve_coord_key (coord_id, pos, key, running) VALUES "
                  "($1::text, $2::integer, $3::bytea, $4::boolean) "
                  "ON CONFLICT (sha256(key)) WHERE running DO NOTHING RETURNING pos",
                  &kp, PGRES_TUPLES_OK, "inserting an exclusive key");
        if (!res) {
            rollback(call);
            return SERVE_STORE_ERROR;
        }
        int inserted = PQntuples(res);
        PQclear(res);
        if (inserted == 1)
            continue;
        struct pg_params hp = {0};
        p_bytes(&hp, key);
        res = run(call,
                  "SELECT coord_id FROM serve_coord_key "
                  "WHERE sha256(key) = sha256($1::bytea) AND running",
                  &hp, PGRES_TUPLES_OK, "reading who holds an exclusive key");
        if (res && PQntuples(res) > 0 && conflict_id)
            snprintf(conflict_id, 37, "%.*s",
                     PQgetlength(res, 0, 0) > 36 ? 36 : PQgetlength(res, 0, 0),
                     PQgetvalue(res, 0, 0));
        int holders = res ? PQntuples(res) : -1;
        PQclear(res);
        rollback(call);
        if (holders < 0)
            return SERVE_STORE_ERROR;
        /* 0: the holder finished in between: the caller tries again. */
        return holders > 0 ? SERVE_STORE_CONFLICT : SERVE_STORE_NOT_FOUND;
    }
    if (!run_command(call, "COMMIT", "committing")) {
        rollback(call);
        return SERVE_STORE_ERROR;
    }
    return SERVE_STORE_OK;
}

static int pg_insert(struct serve_store *st, const struct serve_coord *c, bool running,
                     char conflict_id[37], char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    size_t *idx = NULL;
    int nkeys = serve_store_distinct_keys(c->exclusive_keys, &idx);
    if (nkeys < 0) {
        serve_store_errorf(st, err, errlen, "out of memory");
        return SERVE_STORE_ERROR;
    }
    int rc = SERVE_STORE_ERROR;
    for (int tries = 0; tries < 5; tries++) {
        WITH_CONNECTION(s, err, errlen, rc,
                        rc = insert_body(call, c, running, idx, nkeys, conflict_id));
        if (rc != SERVE_STORE_NOT_FOUND)
            break;
    }
    if (rc == SERVE_STORE_NOT_FOUND) {
        serve_store_errorf(st, err, errlen, "coordination %s: an exclusive key kept changing hands",
                           c->id);
        rc = SERVE_STORE_ERROR;
    }
    if (rc == SERVE_STORE_ERROR && err && strstr(err, "serve_coord_pkey"))
        serve_store_errorf(st, err, errlen, "coordination %s already exists", c->id);
    free(idx);
    return rc;
}

static int pg_finish(struct serve_store *st, const char *id, const char *result,
                     const char *lcmcoord_json, char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    struct pg_params p = {0};
    p_bytes(&p, id);
    p_bytes(&p, result);
    p_bytes(&p, lcmcoord_json);
    p_bytes(&p, st->instance_id);
    /* One statement: the row and its keys change together. */
    WITH_CONNECTION(s, err, errlen, rc, {
        PGresult *res = run(call,
                            "WITH f AS (UPDATE serve_coord SET state = 'DONE', result = "
                            "$2::text, lcmcoord_json = $3::bytea, finished = " PG_NOW
                            ", lease_until = NULL WHERE id = $1::text AND state = 'RUNNING' "
                            "AND owner = $4::bytea RETURNING id), "
                            "k AS (UPDATE serve_coord_key SET running = false "
                            "WHERE coord_id IN (SELECT id FROM f)) SELECT id FROM f",
                            &p, PGRES_TUPLES_OK, "finishing a coordination");
        rc = !res ? SERVE_STORE_ERROR : PQntuples(res) > 0 ? SERVE_STORE_OK : SERVE_STORE_NOT_FOUND;
        PQclear(res);
    });
    return rc;
}

static int pg_remove(struct serve_store *st, const char *id, char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    struct pg_params p = {0};
    p_bytes(&p, id);
    p_bytes(&p, st->instance_id);
    /* Its keys go with it (ON DELETE CASCADE). */
    WITH_CONNECTION(s, err, errlen, rc, {
        PGresult *res = run(call,
                            "DELETE FROM serve_coord WHERE id = $1::text AND state = 'RUNNING' "
                            "AND owner = $2::bytea",
                            &p, PGRES_COMMAND_OK, "deleting a coordination");
        rc = !res                         ? SERVE_STORE_ERROR
             : atoi(PQcmdTuples(res)) > 0 ? SERVE_STORE_OK
                                          : SERVE_STORE_NOT_FOUND;
        PQclear(res);
    });
    return rc;
}

static int get_body(struct pg_call *call, const char *id, struct serve_coord *out)
{
    struct pg_params p = {0};
    p_bytes(&p, id);
    PGresult *res = run(call, "SELECT " ROW_COLUMNS " FROM serve_coord WHERE id = $1::text", &p,
                        PGRES_TUPLES_OK, "reading a coordination");
    if (!res)
        return SERVE_STORE_ERROR;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return SERVE_STORE_NOT_FOUND;
    }
    bool ok = read_row(res, 0, out);
    PQclear(res);
    if (!ok)
        return pg_fail(call->s, call->err, call->errlen, "reading a coordination", "out of memory");
    res = run(call, "SELECT key FROM serve_coord_key WHERE coord_id = $1::text ORDER BY pos", &p,
              PGRES_TUPLES_OK, "reading exclusive keys");
    if (!res) {
        serve_coord_clear(out);
        return SERVE_STORE_ERROR;
    }
    int n = PQntuples(res);
    if (n > 0) {
        bool oom = false;
        out->exclusive_keys = calloc((size_t)n + 1, sizeof *out->exclusive_keys);
        oom = !out->exclusive_keys;
        for (int i = 0; i < n && !oom; i++)
            out->exclusive_keys[i] = field_bytes(res, i, 0, &oom);
        if (oom) {
            PQclear(res);
            serve_coord_clear(out);
            return pg_fail(call->s, call->err, call->errlen, "reading exclusive keys",
                           "out of memory");
        }
    }
    PQclear(res);
    return SERVE_STORE_OK;
}

static int pg_get(struct serve_store *st, const char *id, struct serve_coord *out, char *err,
                  size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    WITH_CONNECTION(s, err, errlen, rc, rc = get_body(call, id, out));
    return rc;
}

static int cancel_body(struct pg_call *call, const char *id)
{
    struct pg_params p = {0};
    p_bytes(&p, id);
    PGresult *res = run(call,
                        "UPDATE serve_coord SET cancel_requested = true "
                        "WHERE id = $1::text AND state = 'RUNNING' RETURNING id",
                        &p, PGRES_TUPLES_OK, "requesting a cancel");
    if (!res)
        return SERVE_STORE_ERROR;
    int updated = PQntuples(res);
    PQclear(res);
    if (updated > 0)
        return 202;
    res = run(call, "SELECT state FROM serve_coord WHERE id = $1::text", &p, PGRES_TUPLES_OK,
              "reading a coordination's state");
    if (!res)
        return SERVE_STORE_ERROR;
    int rows = PQntuples(res);
    PQclear(res);
    return rows > 0 ? 409 : 404;
}

static int pg_request_cancel(struct serve_store *st, const char *id, char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    WITH_CONNECTION(s, err, errlen, rc, rc = cancel_body(call, id));
    return rc;
}

static int heartbeat_body(struct pg_call *call, double ttl, char ***cancel_ids, size_t *n)
{
    struct pg_params p = {0};
    p_bytes(&p, call->s->head.instance_id);
    p_double(&p, ttl);
    PGresult *res = run(call,
                        "UPDATE serve_coord SET lease_until = " PG_NOW " + $2::float8 "
                        "WHERE state = 'RUNNING' AND owner = $1::bytea",
                        &p, PGRES_COMMAND_OK, "renewing leases");
    if (!res)
        return SERVE_STORE_ERROR;
    int renewed = atoi(PQcmdTuples(res));
    PQclear(res);
    p.n = 1;
    res = run(call,
              "UPDATE serve_coord SET cancel_seen = true WHERE state = 'RUNNING' AND "
              "owner = $1::bytea AND cancel_requested AND NOT cancel_seen RETURNING id",
              &p, PGRES_TUPLES_OK, "reading cancel requests");
    if (!res)
        return SERVE_STORE_ERROR;
    int rows = PQntuples(res);
    char **ids = rows > 0 ? calloc((size_t)rows, sizeof *ids) : NULL;
    bool oom = rows > 0 && !ids;
    for (int i = 0; i < rows && !oom; i++)
        ids[i] = field_bytes(res, i, 0, &oom);
    PQclear(res);
    if (oom) {
        serve_store_free_ids(ids, (size_t)rows);
        return pg_fail(call->s, call->err, call->errlen, "reading cancel requests",
                       "out of memory");
    }
    *cancel_ids = ids;
    *n = (size_t)rows;
    return renewed;
}

static int pg_heartbeat(struct serve_store *st, double ttl, char ***cancel_ids, size_t *n,
                        char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    WITH_CONNECTION(s, err, errlen, rc, rc = heartbeat_body(call, ttl, cancel_ids, n));
    return rc;
}

static int candidates_body(struct pg_call *call, bool all_running, struct serve_coord **rows,
                           size_t *n)
{
    struct pg_params p = {0};
    p_bool(&p, all_running);
    p_bytes(&p, call->s->head.instance_id);
    PGresult *res = run(call,
                        "SELECT " ROW_COLUMNS " FROM serve_coord WHERE state = 'RUNNING' AND "
                        "(lease_until < " PG_NOW " OR ($1::boolean AND owner = $2::bytea)) "
                        "ORDER BY created",
                        &p, PGRES_TUPLES_OK, "reading coordinations to reap");
    if (!res)
        return SERVE_STORE_ERROR;
    int count = PQntuples(res);
    struct serve_coord *list = count > 0 ? calloc((size_t)count, sizeof *list) : NULL;
    bool oom = count > 0 && !list;
    int i = 0;
    for (; i < count && !oom; i++)
        oom = !read_row(res, i, &list[i]);
    PQclear(res);
    if (oom) {
        for (int j = 0; list && j < count; j++)
            serve_coord_clear(&list[j]);
        free(list);
        return pg_fail(call->s, call->err, call->errlen, "reading coordinations to reap",
                       "out of memory");
    }
    *rows = list;
    *n = (size_t)count;
    return SERVE_STORE_OK;
}

static int pg_reap_candidates(struct serve_store *st, bool all_running, struct serve_coord **rows,
                              size_t *n, char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    WITH_CONNECTION(s, err, errlen, rc, rc = candidates_body(call, all_running, rows, n));
    return rc;
}

static int pg_reap_one(struct serve_store *st, const char *id, bool all_running,
                       const char *lcmcoord_json, char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    struct pg_params p = {0};
    p_bytes(&p, id);
    p_bytes(&p, lcmcoord_json);
    p_bool(&p, all_running);
    p_bytes(&p, st->instance_id);
    /* The same conditions again, checked by the server at update time: a lease renewed or a
     * row finished since it was read is left alone. */
    WITH_CONNECTION(s, err, errlen, rc, {
        PGresult *res =
            run(call,
                "WITH f AS (UPDATE serve_coord SET state = 'DONE', result = 'ABORT', "
                "lcmcoord_json = $2::bytea, finished = " PG_NOW ", lease_until = "
                "NULL WHERE id = $1::text AND state = 'RUNNING' AND (lease_until < " PG_NOW
                " OR ($3::boolean AND owner = $4::bytea)) RETURNING id), "
                "k AS (UPDATE serve_coord_key SET running = false "
                "WHERE coord_id IN (SELECT id FROM f)) SELECT id FROM f",
                &p, PGRES_TUPLES_OK, "finishing a coordination as ABORT");
        rc = !res ? SERVE_STORE_ERROR : PQntuples(res) > 0 ? 1 : 0;
        PQclear(res);
    });
    return rc;
}

static int pg_purge(struct serve_store *st, double max_age_seconds, char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    struct pg_params p = {0};
    p_double(&p, max_age_seconds);
    WITH_CONNECTION(s, err, errlen, rc, {
        PGresult *res = run(call,
                            "DELETE FROM serve_coord WHERE state = 'DONE' AND finished < " PG_NOW
                            " - $1::float8",
                            &p, PGRES_COMMAND_OK, "purging finished coordinations");
        rc = res ? atoi(PQcmdTuples(res)) : SERVE_STORE_ERROR;
        PQclear(res);
    });
    return rc;
}

static int pg_ping(struct serve_store *st, char *err, size_t errlen)
{
    struct pg_store *s = as_pg(st);
    int rc = SERVE_STORE_ERROR;
    WITH_CONNECTION(s, err, errlen, rc, {
        PGresult *res =
            run(call, "SELECT version FROM serve_schema", NULL, PGRES_TUPLES_OK, "querying");
        rc = res ? SERVE_STORE_OK : SERVE_STORE_ERROR;
        PQclear(res);
    });
    return rc;
}

static void pg_close(struct serve_store *st)
{
    struct pg_store *s = as_pg(st);
    for (size_t i = 0; i < s->n_idle; i++)
        PQfinish(s->idle[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->freed);
    free(s->url);
    free(s->password);
    serve_store_free_head(st);
    free(s);
}

static const struct serve_store_ops pg_ops = {
    .close = pg_close,
    .insert = pg_insert,
    .finish = pg_finish,
    .remove = pg_remove,
    .get = pg_get,
    .request_cancel = pg_request_cancel,
    .heartbeat = pg_heartbeat,
    .reap_candidates = pg_reap_candidates,
    .reap_one = pg_reap_one,
    .purge = pg_purge,
    .ping = pg_ping,
};

/* ---- opening ---------------------------------------------------------------------------- */

static int schema_body(struct pg_call *call)
{
    if (!run_command(call, "BEGIN", "beginning a transaction"))
        return SERVE_STORE_ERROR;
    PGresult *res = run(call, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")", NULL,
                        PGRES_TUPLES_OK, "locking the schema");
    PQclear(res);
    if (!res)
        goto rollback;
    /* Several statements: the simple query protocol (no parameters, nothing from data). */
    res = PQexec(call->conn, schema_sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_fail(call->s, call->err, call->errlen, "creating the schema", PQresultErrorMessage(res));
        PQclear(res);
        goto rollback;
    }
    PQclear(res);
    res = run(call, "SELECT max(version)::float8, count(*)::float8 FROM serve_schema", NULL,
              PGRES_TUPLES_OK, "reading the schema version");
    if (!res)
        goto rollback;
    int version = (int)field_double(res, 0, 0), rows = (int)field_double(res, 0, 1);
    PQclear(res);
    if (rows == 0) {
        if (!run_command(call, "INSERT INTO serve_schema (version) VALUES (1)",
                         "recording the schema version"))
            goto rollback;
    } else if (version != PG_SCHEMA_VERSION) {
        pg_fail(call->s, call->err, call->errlen, "opening",
                "the schema's version is not the one this lcmcoord knows (1)");
        goto rollback;
    }
    if (!run_command(call, "COMMIT", "creating the schema"))
        goto rollback;
    return SERVE_STORE_OK;
rollback:
    rollback(call);
    return SERVE_STORE_ERROR;
}

struct serve_store *serve_store_pg_open(const char *url, const char *display,
                                        const char *instance_id, char *err, size_t errlen)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s) {
        serve_store_errorf_name(display, err, errlen, "out of memory");
        return NULL;
    }
    if (!serve_store_init_head(&s->head, &pg_ops, display, instance_id, err, errlen)) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->url = strdup(url);
    if (!s->url) {
        serve_store_errorf(&s->head, err, errlen, "out of memory");
        goto failed;
    }
    /* libpq parses the URL (its own rules, percent-decoding): its errors would not carry the
     * password, but keep it to scrub any message that might. */
    char *parse_error = NULL;
    PQconninfoOption *options = PQconninfoParse(url, &parse_error);
    if (!options) {
        /* libpq's message may quote the URL: say what is wrong without it. */
        serve_store_errorf(&s->head, err, errlen, "not a valid PostgreSQL URL");
        PQfreemem(parse_error);
        goto failed;
    }
    bool sslmode_given = getenv("PGSSLMODE") != NULL;
    bool rootcert_given = getenv("PGSSLROOTCERT") != NULL;
    for (PQconninfoOption *o = options; o->keyword; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            s->password = strdup(o->val);
        if (strcmp(o->keyword, "sslmode") == 0 && o->val)
            sslmode_given = true;
        if (strcmp(o->keyword, "sslrootcert") == 0 && o->val)
            rootcert_given = true;
    }
    PQconninfoFree(options);
    s->verify_tls = !sslmode_given;
    if (!rootcert_given && access(SYSTEM_CA_BUNDLE, R_OK) == 0)
        s->system_roots = SYSTEM_CA_BUNDLE;
    int rc = SERVE_STORE_ERROR;
    WITH_CONNECTION(s, err, errlen, rc, rc = schema_body(call));
    if (rc != SERVE_STORE_OK)
        goto failed;
    return &s->head;
failed:
    pg_close(&s->head);
    return NULL;
}
