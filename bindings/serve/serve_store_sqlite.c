/* The SQLite back end of the serve store ("sqlite:PATH"): one connection guarded by a mutex,
 * in WAL mode with synchronous=FULL (a coordination is on disk before it is answered), a busy
 * timeout, and locking_mode=EXCLUSIVE so that a second process (another `lcmcoord serve` on
 * the same file, which would reap this one's running decisions at its start-up) is refused
 * with a clear error instead of sharing the file. Every statement is prepared once at open
 * with bound parameters: no SQL is ever built from data. The schema is created when missing
 * and carries its version in serve_schema. */
#include "serve_store_impl.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SQLITE_SCHEMA_VERSION 1
#define SQLITE_BUSY_MS        5000

enum sqlite_stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INSERT,
    S_INSERT_KEY,
    S_KEY_HOLDER,
    S_KEY_RELATIVE,
    S_FINISH,
    S_RELEASE_KEYS,
    S_GET,
    S_GET_KEYS,
    S_CANCEL,
    S_STATE,
    S_RENEW,
    S_CANCEL_NEW,
    S_REAP_SELECT,
    S_REAP_ONE,
    S_PURGE,
    S_PING,
    S_DELETE,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_COUNT
};

#define ROW_COLUMNS                                                                                \
    "id, state, request_json, lcmcoord_json, result, client, owner, created, finished, "           \
    "lease_until, cancel_requested"

static const char *const statement_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_INSERT] = "INSERT INTO serve_coord (id, state, request_json, lcmcoord_json, result, "
                 "client, owner, created, finished, lease_until, cancel_requested, cancel_seen) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, 0)",
    [S_INSERT_KEY] = "INSERT INTO serve_coord_key (coord_id, pos, key, running) "
                     "VALUES (?1, ?2, ?3, ?4)",
    [S_KEY_HOLDER] = "SELECT coord_id FROM serve_coord_key WHERE key = ?1 AND running = 1",
    [S_KEY_RELATIVE] = "SELECT coord_id FROM serve_coord_key WHERE running = 1 AND "
                       "coord_id <> ?1 AND (key = ?2 OR (key >= ?3 AND key < ?4)) LIMIT 1",
    [S_FINISH] = "UPDATE serve_coord SET state = 'DONE', result = ?2, lcmcoord_json = ?3, "
                 "finished = ?4, lease_until = NULL "
                 "WHERE id = ?1 AND state = 'RUNNING' AND owner = ?5",
    [S_RELEASE_KEYS] = "UPDATE serve_coord_key SET running = 0 WHERE coord_id = ?1",
    [S_GET] = "SELECT " ROW_COLUMNS " FROM serve_coord WHERE id = ?1",
    [S_GET_KEYS] = "SELECT key FROM serve_coord_key WHERE coord_id = ?1 ORDER BY pos",
    [S_CANCEL] = "UPDATE serve_coord SET cancel_requested = 1 "
                 "WHERE id = ?1 AND state = 'RUNNING'",
    [S_STATE] = "SELECT state FROM serve_coord WHERE id = ?1",
    [S_RENEW] = "UPDATE serve_coord SET lease_until = ?2 WHERE state = 'RUNNING' AND owner = ?1",
    [S_CANCEL_NEW] = "UPDATE serve_coord SET cancel_seen = 1 WHERE state = 'RUNNING' AND "
                     "owner = ?1 AND cancel_requested = 1 AND cancel_seen = 0 RETURNING id",
    [S_REAP_SELECT] = "SELECT " ROW_COLUMNS " FROM serve_coord "
                      "WHERE state = 'RUNNING' AND (?1 OR lease_until < ?2) ORDER BY created",
    [S_REAP_ONE] = "UPDATE serve_coord SET state = 'DONE', result = 'ABORT', lcmcoord_json = ?2, "
                   "finished = ?3, lease_until = NULL "
                   "WHERE id = ?1 AND state = 'RUNNING' AND (?4 OR lease_until < ?3)",
    [S_PURGE] = "DELETE FROM serve_coord WHERE state = 'DONE' AND finished < ?1",
    [S_PING] = "SELECT version FROM serve_schema",
    [S_DELETE] = "DELETE FROM serve_coord WHERE id = ?1 AND state = 'RUNNING' AND owner = ?2",
    [S_SAVEPOINT] = "SAVEPOINT one_write",
    [S_RELEASE] = "RELEASE one_write",
    [S_ROLLBACK_TO] = "ROLLBACK TO one_write",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS serve_schema (version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS serve_coord ("
    " id TEXT PRIMARY KEY,"
    " state TEXT NOT NULL CHECK (state IN ('RUNNING', 'DONE')),"
    " request_json TEXT NOT NULL,"
    " lcmcoord_json TEXT,"
    " result TEXT CHECK (result IN ('CONTINUE', 'ABORT', 'CANCELLED')),"
    " client TEXT,"
    " owner TEXT,"
    " created REAL NOT NULL,"
    " finished REAL,"
    " lease_until REAL,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0,"
    " cancel_seen INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS serve_coord_running ON serve_coord (owner) "
    " WHERE state = 'RUNNING';"
    "CREATE INDEX IF NOT EXISTS serve_coord_finished ON serve_coord (finished) "
    " WHERE state = 'DONE';"
    "CREATE TABLE IF NOT EXISTS serve_coord_key ("
    " coord_id TEXT NOT NULL REFERENCES serve_coord (id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " key TEXT NOT NULL,"
    " running INTEGER NOT NULL,"
    " PRIMARY KEY (coord_id, key));"
    /* The exclusive keys: at most one RUNNING coordination per key. */
    "CREATE UNIQUE INDEX IF NOT EXISTS serve_coord_key_running ON serve_coord_key (key) "
    " WHERE running = 1;";

struct sqlite_store {
    struct serve_store head;
    pthread_mutex_t lock; /* recursive: a group commit holds it around the writes it groups */
    bool batch;           /* in a group commit: each write is a savepoint */
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
};

static struct sqlite_store *as_sqlite(struct serve_store *st)
{
    return (struct sqlite_store *)st;
}

/* The one-line error for a failed SQLite call, with what was being done. */
static int fail(struct sqlite_store *s, char *err, size_t errlen, const char *doing)
{
    int code = sqlite3_extended_errcode(s->db);
    const char *why = sqlite3_errmsg(s->db);
    if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
        serve_store_errorf(&s->head, err, errlen,
                           "%s: %s (another process holds the file: only one lcmcoord serve "
                           "may use a SQLite store)",
                           doing, why);
    else if ((code & 0xff) == SQLITE_IOERR && sqlite3_system_errno(s->db) != 0)
        /* "disk I/O error" alone does not say what to fix: the system's reason does. */
        serve_store_errorf(&s->head, err, errlen, "%s: %s (%s)", doing, why,
                           strerror(sqlite3_system_errno(s->db)));
    else
        serve_store_errorf(&s->head, err, errlen, "%s: %s", doing, why);
    return SERVE_STORE_ERROR;
}

static sqlite3_stmt *use(struct sqlite_store *s, enum sqlite_stmt k)
{
    sqlite3_stmt *stmt = s->stmt[k];
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

static void done_with(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* Binds a NUL-free string (any bytes) or NULL. */
static void bind_str(sqlite3_stmt *stmt, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(stmt, i, v, (int)strlen(v), SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, i);
}

static int step_done(struct sqlite_store *s, enum sqlite_stmt k, char *err, size_t errlen,
                     const char *doing)
{
    int rc = sqlite3_step(s->stmt[k]);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fail(s, err, errlen, doing);
        done_with(s->stmt[k]);
        return SERVE_STORE_ERROR;
    }
    done_with(s->stmt[k]);
    return SERVE_STORE_OK;
}

static void rollback(struct sqlite_store *s);

static int begin(struct sqlite_store *s, char *err, size_t errlen)
{
    enum sqlite_stmt k = s->batch ? S_SAVEPOINT : S_BEGIN;
    use(s, k);
    return step_done(s, k, err, errlen, "beginning a transaction");
}

static int commit(struct sqlite_store *s, char *err, size_t errlen)
{
    enum sqlite_stmt k = s->batch ? S_RELEASE : S_COMMIT;
    use(s, k);
    if (step_done(s, k, err, errlen, "committing") != SERVE_STORE_OK) {
        rollback(s);
        return SERVE_STORE_ERROR;
    }
    return SERVE_STORE_OK;
}

/* The write in progress undone: the whole transaction, or in a group commit this write's
 * savepoint only (the others stand). */
static void rollback(struct sqlite_store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return;
    if (s->batch) {
        use(s, S_ROLLBACK_TO);
        sqlite3_step(s->stmt[S_ROLLBACK_TO]);
        done_with(s->stmt[S_ROLLBACK_TO]);
        use(s, S_RELEASE);
        sqlite3_step(s->stmt[S_RELEASE]);
        done_with(s->stmt[S_RELEASE]);
        return;
    }
    use(s, S_ROLLBACK);
    sqlite3_step(s->stmt[S_ROLLBACK]);
    done_with(s->stmt[S_ROLLBACK]);
}

/* A group commit: the lock held and one transaction open until sq_batch_end, so several
 * writes reach the disk with one sync (synchronous=FULL). */
static int sq_batch_begin(struct serve_store *st, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    pthread_mutex_lock(&s->lock);
    use(s, S_BEGIN);
    if (step_done(s, S_BEGIN, err, errlen, "beginning a transaction") != SERVE_STORE_OK) {
        pthread_mutex_unlock(&s->lock);
        return SERVE_STORE_ERROR;
    }
    s->batch = true;
    return SERVE_STORE_OK;
}

static int sq_batch_end(struct serve_store *st, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    s->batch = false;
    int rc = commit(s, err, errlen);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static char *column_str(sqlite3_stmt *stmt, int col, bool *oom)
{
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *text = sqlite3_column_text(stmt, col);
    int len = sqlite3_column_bytes(stmt, col);
    char *copy = malloc((size_t)len + 1);
    if (!copy || !text) {
        free(copy);
        *oom = true;
        return NULL;
    }
    memcpy(copy, text, (size_t)len);
    copy[len] = '\0';
    return copy;
}

static double column_double(sqlite3_stmt *stmt, int col)
{
    return sqlite3_column_type(stmt, col) == SQLITE_NULL ? 0 : sqlite3_column_double(stmt, col);
}

/* Reads the ROW_COLUMNS of the current row into out; false when out of memory. */
static bool read_row(sqlite3_stmt *stmt, struct serve_coord *out)
{
    bool oom = false;
    memset(out, 0, sizeof *out);
    const unsigned char *id = sqlite3_column_text(stmt, 0);
    snprintf(out->id, sizeof out->id, "%s", id ? (const char *)id : "");
    const unsigned char *state = sqlite3_column_text(stmt, 1);
    out->state = state && strcmp((const char *)state, "DONE") == 0 ? SERVE_DONE : SERVE_RUNNING;
    out->request_json = column_str(stmt, 2, &oom);
    out->lcmcoord_json = column_str(stmt, 3, &oom);
    out->result = column_str(stmt, 4, &oom);
    out->client = column_str(stmt, 5, &oom);
    out->owner = column_str(stmt, 6, &oom);
    out->created = column_double(stmt, 7);
    out->finished = column_double(stmt, 8);
    out->lease_until = column_double(stmt, 9);
    out->cancel_requested = sqlite3_column_int(stmt, 10) != 0;
    if (oom)
        serve_coord_clear(out);
    return !oom;
}

/* ---- operations ------------------------------------------------------------------------- */

static int key_holder(struct sqlite_store *s, const char *key, char conflict_id[37])
{
    sqlite3_stmt *stmt = use(s, S_KEY_HOLDER);
    bind_str(stmt, 1, key);
    if (sqlite3_step(stmt) == SQLITE_ROW && conflict_id) {
        const unsigned char *id = sqlite3_column_text(stmt, 0);
        snprintf(conflict_id, 37, "%s", id ? (const char *)id : "");
    }
    done_with(stmt);
    return 0;
}

/* Whether another RUNNING coordination holds the instance of a VNFC key or a VNFC of an
 * instance key (serve_store_key_relatives): CONFLICT with its id, OK, or ERROR. Inside the
 * write transaction, so no other writer comes between this check and the insert. */
static int relative_holder(struct sqlite_store *s, const char *id, const char *key,
                           char conflict_id[37], char *err, size_t errlen)
{
    char *equal, *low, *high;
    if (!serve_store_key_relatives(key, &equal, &low, &high)) {
        serve_store_errorf(&s->head, err, errlen, "out of memory");
        return SERVE_STORE_ERROR;
    }
    sqlite3_stmt *stmt = use(s, S_KEY_RELATIVE);
    bind_str(stmt, 1, id);
    bind_str(stmt, 2, equal);
    bind_str(stmt, 3, low);
    bind_str(stmt, 4, high);
    int step = sqlite3_step(stmt);
    int rc = SERVE_STORE_OK;
    if (step == SQLITE_ROW) {
        const unsigned char *holder = sqlite3_column_text(stmt, 0);
        if (conflict_id)
            snprintf(conflict_id, 37, "%s", holder ? (const char *)holder : "");
        rc = SERVE_STORE_CONFLICT;
    } else if (step != SQLITE_DONE) {
        fail(s, err, errlen, "reading who holds a related exclusive key");
        rc = SERVE_STORE_ERROR;
    }
    done_with(stmt);
    free(equal);
    free(low);
    free(high);
    return rc;
}

static int sq_insert(struct serve_store *st, const struct serve_coord *c, bool running,
                     char conflict_id[37], char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    size_t *idx = NULL;
    int nkeys = serve_store_distinct_keys(c->exclusive_keys, &idx);
    if (nkeys < 0) {
        serve_store_errorf(st, err, errlen, "out of memory");
        return SERVE_STORE_ERROR;
    }
    int rc = SERVE_STORE_ERROR;
    pthread_mutex_lock(&s->lock);
    if (begin(s, err, errlen) != SERVE_STORE_OK)
        goto out;
    double now = serve_store_now();
    sqlite3_stmt *stmt = use(s, S_INSERT);
    bind_str(stmt, 1, c->id);
    bind_str(stmt, 2, running ? "RUNNING" : "DONE");
    bind_str(stmt, 3, c->request_json);
    bind_str(stmt, 4, running ? NULL : c->lcmcoord_json);
    bind_str(stmt, 5, running ? NULL : c->result);
    bind_str(stmt, 6, c->client);
    bind_str(stmt, 7, st->instance_id);
    sqlite3_bind_double(stmt, 8, now);
    if (running) {
        sqlite3_bind_null(stmt, 9);
        sqlite3_bind_double(stmt, 10, now + st->lease_ttl);
    } else {
        sqlite3_bind_double(stmt, 9, now);
        sqlite3_bind_null(stmt, 10);
    }
    int step = sqlite3_step(stmt);
    if (step != SQLITE_DONE) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
            serve_store_errorf(st, err, errlen, "coordination %s already exists", c->id);
        else
            fail(s, err, errlen, "inserting a coordination");
        done_with(stmt);
        goto rollback;
    }
    done_with(stmt);
    for (int i = 0; i < nkeys; i++) {
        if (running) {
            rc = relative_holder(s, c->id, c->exclusive_keys[idx[i]], conflict_id, err, errlen);
            if (rc != SERVE_STORE_OK)
                goto rollback;
            rc = SERVE_STORE_ERROR;
        }
        stmt = use(s, S_INSERT_KEY);
        bind_str(stmt, 1, c->id);
        sqlite3_bind_int(stmt, 2, i);
        bind_str(stmt, 3, c->exclusive_keys[idx[i]]);
        sqlite3_bind_int(stmt, 4, running ? 1 : 0);
        step = sqlite3_step(stmt);
        int code = sqlite3_extended_errcode(s->db);
        done_with(stmt);
        if (step == SQLITE_DONE)
            continue;
        if (code == SQLITE_CONSTRAINT_UNIQUE) {
            /* Another RUNNING coordination holds this key: the unique index said so. */
            key_holder(s, c->exclusive_keys[idx[i]], conflict_id);
            rc = SERVE_STORE_CONFLICT;
        } else {
            fail(s, err, errlen, "inserting an exclusive key");
        }
        goto rollback;
    }
    rc = commit(s, err, errlen);
    goto out;
rollback:
    rollback(s);
out:
    pthread_mutex_unlock(&s->lock);
    free(idx);
    return rc;
}

static int sq_finish(struct serve_store *st, const char *id, const char *result,
                     const char *lcmcoord_json, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    int rc = SERVE_STORE_ERROR;
    pthread_mutex_lock(&s->lock);
    if (begin(s, err, errlen) != SERVE_STORE_OK)
        goto out;
    sqlite3_stmt *stmt = use(s, S_FINISH);
    bind_str(stmt, 1, id);
    bind_str(stmt, 2, result);
    bind_str(stmt, 3, lcmcoord_json);
    sqlite3_bind_double(stmt, 4, serve_store_now());
    bind_str(stmt, 5, st->instance_id);
    if (step_done(s, S_FINISH, err, errlen, "finishing a coordination") != SERVE_STORE_OK)
        goto rollback;
    if (sqlite3_changes(s->db) == 0) {
        rc = SERVE_STORE_NOT_FOUND;
        goto rollback;
    }
    stmt = use(s, S_RELEASE_KEYS);
    bind_str(stmt, 1, id);
    if (step_done(s, S_RELEASE_KEYS, err, errlen, "releasing exclusive keys") != SERVE_STORE_OK)
        goto rollback;
    rc = commit(s, err, errlen);
    goto out;
rollback:
    rollback(s);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_remove(struct serve_store *st, const char *id, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    int rc = SERVE_STORE_ERROR;
    pthread_mutex_lock(&s->lock);
    if (begin(s, err, errlen) != SERVE_STORE_OK)
        goto out;
    /* Its keys go with it (ON DELETE CASCADE, foreign_keys on). */
    sqlite3_stmt *stmt = use(s, S_DELETE);
    bind_str(stmt, 1, id);
    bind_str(stmt, 2, st->instance_id);
    if (step_done(s, S_DELETE, err, errlen, "deleting a coordination") != SERVE_STORE_OK)
        goto rollback;
    if (sqlite3_changes(s->db) == 0) {
        rc = SERVE_STORE_NOT_FOUND;
        goto rollback;
    }
    rc = commit(s, err, errlen);
    goto out;
rollback:
    rollback(s);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int load_keys(struct sqlite_store *s, const char *id, char ***keys_out, char *err,
                     size_t errlen)
{
    sqlite3_stmt *stmt = use(s, S_GET_KEYS);
    bind_str(stmt, 1, id);
    char **keys = NULL;
    size_t n = 0;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        bool oom = false;
        char **grown = realloc(keys, (n + 2) * sizeof *keys);
        char *key = grown ? column_str(stmt, 0, &oom) : NULL;
        if (grown)
            keys = grown;
        if (!grown || !key) {
            free(key);
            serve_store_free_ids(keys, n);
            done_with(stmt);
            serve_store_errorf(&s->head, err, errlen, "out of memory");
            return SERVE_STORE_ERROR;
        }
        keys[n++] = key;
        keys[n] = NULL;
    }
    if (step != SQLITE_DONE) {
        fail(s, err, errlen, "reading exclusive keys");
        serve_store_free_ids(keys, n);
        done_with(stmt);
        return SERVE_STORE_ERROR;
    }
    done_with(stmt);
    *keys_out = keys;
    return SERVE_STORE_OK;
}

static int sq_get(struct serve_store *st, const char *id, struct serve_coord *out, char *err,
                  size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    int rc = SERVE_STORE_ERROR;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *stmt = use(s, S_GET);
    bind_str(stmt, 1, id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        rc = SERVE_STORE_NOT_FOUND;
    } else if (step != SQLITE_ROW) {
        fail(s, err, errlen, "reading a coordination");
    } else if (!read_row(stmt, out)) {
        serve_store_errorf(st, err, errlen, "out of memory");
    } else {
        done_with(stmt);
        rc = load_keys(s, id, &out->exclusive_keys, err, errlen);
        if (rc != SERVE_STORE_OK)
            serve_coord_clear(out);
    }
    done_with(stmt);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_request_cancel(struct serve_store *st, const char *id, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    int rc = SERVE_STORE_ERROR;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *stmt = use(s, S_CANCEL);
    bind_str(stmt, 1, id);
    if (step_done(s, S_CANCEL, err, errlen, "requesting a cancel") != SERVE_STORE_OK)
        goto out;
    if (sqlite3_changes(s->db) > 0) {
        rc = 202;
        goto out;
    }
    stmt = use(s, S_STATE);
    bind_str(stmt, 1, id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        rc = 409; /* DONE (a RUNNING row would have been updated above) */
    else if (step == SQLITE_DONE)
        rc = 404;
    else
        fail(s, err, errlen, "reading a coordination's state");
    done_with(stmt);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_heartbeat(struct serve_store *st, double ttl, char ***cancel_ids, size_t *n,
                        char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    int rc = SERVE_STORE_ERROR;
    char **ids = NULL;
    size_t count = 0;
    pthread_mutex_lock(&s->lock);
    if (begin(s, err, errlen) != SERVE_STORE_OK)
        goto out;
    sqlite3_stmt *stmt = use(s, S_RENEW);
    bind_str(stmt, 1, st->instance_id);
    sqlite3_bind_double(stmt, 2, serve_store_now() + ttl);
    if (step_done(s, S_RENEW, err, errlen, "renewing leases") != SERVE_STORE_OK)
        goto rollback;
    int renewed = sqlite3_changes(s->db);
    stmt = use(s, S_CANCEL_NEW);
    bind_str(stmt, 1, st->instance_id);
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        bool oom = false;
        char **grown = realloc(ids, (count + 1) * sizeof *ids);
        char *id = grown ? column_str(stmt, 0, &oom) : NULL;
        if (grown)
            ids = grown;
        if (!grown || !id) {
            free(id);
            done_with(stmt);
            serve_store_errorf(st, err, errlen, "out of memory");
            goto rollback;
        }
        ids[count++] = id;
    }
    if (step != SQLITE_DONE) {
        fail(s, err, errlen, "reading cancel requests");
        done_with(stmt);
        goto rollback;
    }
    done_with(stmt);
    if (commit(s, err, errlen) != SERVE_STORE_OK)
        goto failed;
    *cancel_ids = ids;
    *n = count;
    rc = renewed;
    goto out;
rollback:
    rollback(s);
failed:
    serve_store_free_ids(ids, count);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_reap_candidates(struct serve_store *st, bool all_running, struct serve_coord **rows,
                              size_t *n, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    struct serve_coord *list = NULL;
    size_t count = 0;
    int rc = SERVE_STORE_OK;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *stmt = use(s, S_REAP_SELECT);
    sqlite3_bind_int(stmt, 1, all_running ? 1 : 0);
    sqlite3_bind_double(stmt, 2, serve_store_now());
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct serve_coord *grown = realloc(list, (count + 1) * sizeof *list);
        if (!grown || !read_row(stmt, &grown[count])) {
            if (grown)
                list = grown;
            serve_store_errorf(st, err, errlen, "out of memory");
            rc = SERVE_STORE_ERROR;
            break;
        }
        list = grown;
        count++;
    }
    if (rc == SERVE_STORE_OK && step != SQLITE_DONE)
        rc = fail(s, err, errlen, "reading coordinations to reap");
    done_with(stmt);
    pthread_mutex_unlock(&s->lock);
    if (rc != SERVE_STORE_OK) {
        for (size_t i = 0; i < count; i++)
            serve_coord_clear(&list[i]);
        free(list);
        return rc;
    }
    *rows = list;
    *n = count;
    return SERVE_STORE_OK;
}

static int sq_reap_one(struct serve_store *st, const char *id, bool all_running,
                       const char *lcmcoord_json, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    int rc = -1;
    pthread_mutex_lock(&s->lock);
    if (begin(s, err, errlen) != SERVE_STORE_OK)
        goto out;
    sqlite3_stmt *stmt = use(s, S_REAP_ONE);
    bind_str(stmt, 1, id);
    bind_str(stmt, 2, lcmcoord_json);
    sqlite3_bind_double(stmt, 3, serve_store_now());
    sqlite3_bind_int(stmt, 4, all_running ? 1 : 0);
    if (step_done(s, S_REAP_ONE, err, errlen, "finishing a coordination as ABORT") !=
        SERVE_STORE_OK)
        goto rollback;
    int changed = sqlite3_changes(s->db);
    if (changed > 0) {
        stmt = use(s, S_RELEASE_KEYS);
        bind_str(stmt, 1, id);
        if (step_done(s, S_RELEASE_KEYS, err, errlen, "releasing exclusive keys") != SERVE_STORE_OK)
            goto rollback;
    }
    if (commit(s, err, errlen) == SERVE_STORE_OK)
        rc = changed > 0 ? 1 : 0;
    goto out;
rollback:
    rollback(s);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_purge(struct serve_store *st, double max_age_seconds, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *stmt = use(s, S_PURGE);
    sqlite3_bind_double(stmt, 1, serve_store_now() - max_age_seconds);
    int rc = step_done(s, S_PURGE, err, errlen, "purging finished coordinations");
    if (rc == SERVE_STORE_OK)
        rc = sqlite3_changes(s->db);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_ping(struct serve_store *st, char *err, size_t errlen)
{
    struct sqlite_store *s = as_sqlite(st);
    pthread_mutex_lock(&s->lock);
    use(s, S_PING);
    int rc = step_done(s, S_PING, err, errlen, "querying");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void sq_close(struct serve_store *st)
{
    struct sqlite_store *s = as_sqlite(st);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    serve_store_free_head(st);
    free(s);
}

static const struct serve_store_ops sqlite_ops = {
    .close = sq_close,
    .insert = sq_insert,
    .finish = sq_finish,
    .remove = sq_remove,
    .batch_begin = sq_batch_begin,
    .batch_end = sq_batch_end,
    .get = sq_get,
    .request_cancel = sq_request_cancel,
    .heartbeat = sq_heartbeat,
    .reap_candidates = sq_reap_candidates,
    .reap_one = sq_reap_one,
    .purge = sq_purge,
    .ping = sq_ping,
};

/* ---- opening ---------------------------------------------------------------------------- */

static int exec_sql(struct sqlite_store *s, const char *sql, char *err, size_t errlen,
                    const char *doing)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, err, errlen, doing);
    return SERVE_STORE_OK;
}

/* Creates the schema when missing and checks its version, in one write transaction (which also
 * takes the file's exclusive lock for the store's lifetime). */
static int prepare_schema(struct sqlite_store *s, char *err, size_t errlen)
{
    if (exec_sql(s, "BEGIN IMMEDIATE", err, errlen, "opening") != SERVE_STORE_OK)
        return SERVE_STORE_ERROR;
    if (exec_sql(s, schema_sql, err, errlen, "creating the schema") != SERVE_STORE_OK)
        goto rollback;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT max(version), count(*) FROM serve_schema", -1, &stmt,
                           NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        fail(s, err, errlen, "reading the schema version");
        sqlite3_finalize(stmt);
        goto rollback;
    }
    int version = sqlite3_column_int(stmt, 0);
    int rows = sqlite3_column_int(stmt, 1);
    sqlite3_finalize(stmt);
    if (rows == 0) {
        if (exec_sql(s, "INSERT INTO serve_schema (version) VALUES (1)", err, errlen,
                     "recording the schema version") != SERVE_STORE_OK)
            goto rollback;
    } else if (version != SQLITE_SCHEMA_VERSION) {
        serve_store_errorf(&s->head, err, errlen,
                           "schema version %d, this lcmcoord knows version %d only", version,
                           SQLITE_SCHEMA_VERSION);
        goto rollback;
    }
    if (exec_sql(s, "COMMIT", err, errlen, "creating the schema") != SERVE_STORE_OK)
        goto rollback;
    return SERVE_STORE_OK;
rollback:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return SERVE_STORE_ERROR;
}

static int set_pragma(struct sqlite_store *s, const char *sql, const char *expect, char *err,
                      size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return fail(s, err, errlen, "opening");
    }
    int step = sqlite3_step(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        sqlite3_finalize(stmt);
        return fail(s, err, errlen, "opening");
    }
    if (expect) {
        const unsigned char *got = step == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
        if (!got || strcmp((const char *)got, expect) != 0) {
            serve_store_errorf(&s->head, err, errlen, "cannot switch to %s (\"%s\" refused)",
                               expect, sql);
            sqlite3_finalize(stmt);
            return SERVE_STORE_ERROR;
        }
    }
    sqlite3_finalize(stmt);
    return SERVE_STORE_OK;
}

/* Why a file cannot be opened, in the system's words: SQLite's own errno after a failed open
 * is that of its last fallback attempt, which misleads ("No such file" for a directory that is
 * not writable). Empty when nothing is found. */
static void diagnose_path(const char *path, char *why, size_t whylen)
{
    why[0] = '\0';
    struct stat info;
    if (stat(path, &info) == 0) {
        if (S_ISDIR(info.st_mode))
            snprintf(why, whylen, " (%s is a directory)", path);
        else if (access(path, R_OK | W_OK) != 0)
            snprintf(why, whylen, " (%s: %s)", path, strerror(errno));
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &info) != 0)
        snprintf(why, whylen, " (directory %s: %s)", dir, strerror(errno));
    else if (!S_ISDIR(info.st_mode))
        snprintf(why, whylen, " (%s is not a directory)", dir);
    else if (access(dir, W_OK | X_OK) != 0)
        snprintf(why, whylen, " (cannot create a file in %s: %s)", dir, strerror(errno));
}

struct serve_store *serve_store_sqlite_open(const char *path, const char *display,
                                            const char *instance_id, char *err, size_t errlen)
{
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s) {
        serve_store_errorf_name(display, err, errlen, "out of memory");
        return NULL;
    }
    if (!serve_store_init_head(&s->head, &sqlite_ops, display, instance_id, err, errlen)) {
        free(s);
        return NULL;
    }
    pthread_mutexattr_t recursive;
    pthread_mutexattr_init(&recursive);
    pthread_mutexattr_settype(&recursive, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->lock, &recursive);
    pthread_mutexattr_destroy(&recursive);
    /* The mutex above serialises every use of the connection (transactions span calls). */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        char why[4200];
        diagnose_path(path, why, sizeof why);
        if (s->db)
            serve_store_errorf(&s->head, err, errlen, "opening: %s%s", sqlite3_errmsg(s->db), why);
        else
            serve_store_errorf(&s->head, err, errlen, "opening: out of memory");
        goto failed;
    }
    sqlite3_extended_result_codes(s->db, 1);
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        serve_store_errorf(&s->head, err, errlen, "opening: the file is read-only");
        goto failed;
    }
    sqlite3_busy_timeout(s->db, SQLITE_BUSY_MS);
    /* EXCLUSIVE before WAL: no shared-memory index, and the file stays locked to us. */
    if (set_pragma(s, "PRAGMA locking_mode = EXCLUSIVE", "exclusive", err, errlen) ||
        set_pragma(s, "PRAGMA journal_mode = WAL", "wal", err, errlen) ||
        set_pragma(s, "PRAGMA synchronous = FULL", NULL, err, errlen) ||
        set_pragma(s, "PRAGMA foreign_keys = ON", NULL, err, errlen) ||
        prepare_schema(s, err, errlen) != SERVE_STORE_OK)
        goto failed;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                               NULL) != SQLITE_OK) {
            fail(s, err, errlen, "preparing statements");
            goto failed;
        }
    }
    return &s->head;
failed:
    sq_close(&s->head);
    return NULL;
}
