/* The store of `lcmcoord serve`: where every coordination (request, state, result, times, who
 * asked) is kept before it is answered, so that GET and cancel work across restarts and, with
 * PostgreSQL, across several serve instances behind one load balancer. Two back ends behind one
 * interface: "sqlite:PATH" (embedded, one process: the file is locked for the store's lifetime)
 * and "postgresql://..." / "postgres://..." (libpq, shared by instances; leases and times use the
 * database server's clock, so the instances' clocks do not matter; over TCP, TLS with the
 * server's certificate verified against the system's CAs unless the URL's sslmode, sslrootcert
 * or PGSSLMODE says otherwise).
 *
 * Every function is thread-safe. Every failure writes ONE line into err (naming the store, a
 * PostgreSQL password redacted) and returns SERVE_STORE_ERROR; strings are stored and read back
 * byte for byte (any NUL-free bytes, not only UTF-8). */
#ifndef LCMCOORD_SERVE_STORE_H
#define LCMCOORD_SERVE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#define SERVE_STORE_OK        0
#define SERVE_STORE_ERROR     (-1)
#define SERVE_STORE_NOT_FOUND 1
#define SERVE_STORE_CONFLICT  2

/* The lease a new RUNNING row gets until the first heartbeat renews it. */
#define SERVE_STORE_DEFAULT_LEASE_TTL 15.0

struct serve_store; /* opaque; thread-safe */

enum serve_state { SERVE_RUNNING, SERVE_DONE };

/* One coordination row. Read back by serve_store_get with every string malloc'd (free with
 * serve_coord_clear). Times are stamped by the store (PostgreSQL: the server's clock): the
 * caller's created/finished/lease_until are ignored on insert. */
struct serve_coord {
    char id[37]; /* UUID v4 text */
    enum serve_state state;
    char *request_json;  /* the LcmCoordRequest as received (validated) */
    char *lcmcoord_json; /* the LcmCoord when DONE, else NULL */
    char *result;        /* "CONTINUE"|"ABORT"|"CANCELLED" when DONE, else NULL */
    char *client;        /* who asked (user / client id / cert CN), may be NULL */
    char *owner;         /* instance id holding the lease (RUNNING) / that decided */
    /* The exclusive keys (vnfInstanceId alone, or vnfInstanceId + each VNFC), a NULL-terminated
     * list; NULL when the coordination is not exclusive. While the row is RUNNING no other
     * RUNNING row may hold any of them. Duplicates in the list are ignored. */
    char **exclusive_keys;
    double created, finished, lease_until; /* epoch seconds (0 when not set) */
    bool cancel_requested;
};

/* "sqlite:PATH" or "postgresql://..." (also "postgres://"). Creates the schema when missing.
 * instance_id names this process in leases (any NUL-free string; for sqlite it only labels the
 * rows). NULL + one line in err when the store cannot be used. */
struct serve_store *serve_store_open(const char *url, const char *instance_id, char *err,
                                     size_t errlen);
void serve_store_close(struct serve_store *st);

/* The URL as it may be printed (a PostgreSQL password replaced by "***"). */
const char *serve_store_display_name(const struct serve_store *st);

/* Sets the lease a new RUNNING row gets (seconds); heartbeats renew with their own ttl. */
void serve_store_set_lease_ttl(struct serve_store *st, double seconds);

/* Inserts c as a RUNNING row owned by this instance, leased for the lease ttl. Atomic with
 * respect to the exclusive keys: SERVE_STORE_CONFLICT when another RUNNING row holds one of
 * them (conflict_id, when not NULL, gets that row's id), nothing inserted. SERVE_STORE_OK, or
 * SERVE_STORE_ERROR (also when the id exists). */
int serve_store_insert_running(struct serve_store *st, const struct serve_coord *c,
                               char conflict_id[37], char *err, size_t errlen);

/* Inserts c as a DONE row directly (decided within the sync budget): c->result and
 * c->lcmcoord_json required. Its exclusive keys are recorded but not held. */
int serve_store_insert_done(struct serve_store *st, const struct serve_coord *c, char *err,
                            size_t errlen);

/* RUNNING -> DONE with result and lcmcoord_json, only if still RUNNING and owned by this
 * instance; releases its exclusive keys in the same transaction. SERVE_STORE_OK,
 * SERVE_STORE_NOT_FOUND (unknown, already DONE, or owned by another instance), or
 * SERVE_STORE_ERROR. */
int serve_store_finish(struct serve_store *st, const char *id, const char *result,
                       const char *lcmcoord_json, char *err, size_t errlen);

/* Deletes a RUNNING row owned by this instance, releasing its exclusive keys: a coordination
 * whose id was never given out (answered 503 busy). SERVE_STORE_OK, SERVE_STORE_NOT_FOUND
 * (unknown, DONE, or owned by another instance), or SERVE_STORE_ERROR. */
int serve_store_delete(struct serve_store *st, const char *id, char *err, size_t errlen);

/* A group commit: the writes of this thread between serve_store_batch_begin and
 * serve_store_batch_end (insert, finish, delete) are one transaction, made durable once; each
 * still succeeds or fails on its own (a savepoint each) until the end, which commits them all
 * or, on SERVE_STORE_ERROR, none. Other threads wait meanwhile. Returns SERVE_STORE_NOT_FOUND
 * from begin when the back end has no group commit (PostgreSQL: it takes writes from several
 * threads at once instead): then each write commits alone and end is not to be called. */
int serve_store_batch_begin(struct serve_store *st, char *err, size_t errlen);
int serve_store_batch_end(struct serve_store *st, char *err, size_t errlen);

/* Reads one row into out (cleared first). SERVE_STORE_OK / NOT_FOUND / ERROR. */
int serve_store_get(struct serve_store *st, const char *id, struct serve_coord *out, char *err,
                    size_t errlen);
/* Frees what serve_store_get filled in and zeroes *c. */
void serve_coord_clear(struct serve_coord *c);

/* Asks to cancel: 202 when RUNNING (cancel_requested set), 409 when DONE, 404 when unknown,
 * SERVE_STORE_ERROR on a store error. */
int serve_store_request_cancel(struct serve_store *st, const char *id, char *err, size_t errlen);

/* Renews every RUNNING row of this instance to now + ttl. *cancel_ids (a malloc'd array of
 * malloc'd ids, free with serve_store_free_ids) gets the ids of this instance's RUNNING rows
 * whose cancel_requested is newly seen (each id is reported once), *n their count. Returns the
 * number of leases renewed, or SERVE_STORE_ERROR. */
int serve_store_heartbeat(struct serve_store *st, double ttl, char ***cancel_ids, size_t *n,
                          char *err, size_t errlen);
void serve_store_free_ids(char **ids, size_t n);

/* Finishes as ABORT every RUNNING row whose lease lapsed (any owner), and when all_running is
 * true: with sqlite every RUNNING row (start-up: the previous process died); with PostgreSQL
 * every RUNNING row owned by this instance id (an instance restarted under the same id; other
 * instances' live leases are never taken). build_abort makes the LcmCoord JSON of each row (a
 * malloc'd string the store frees; NULL skips the row), so the store knows nothing of its
 * shape; it is called without any store lock held but must not call the store. A row finished
 * meanwhile by its owner is left alone. Returns how many rows were finished, or
 * SERVE_STORE_ERROR. A lapsed lease is reaped whoever owns it, this instance included (with
 * sqlite too): an instance keeps its decisions alive by heartbeats well within the ttl. */
int serve_store_reap(struct serve_store *st, bool all_running,
                     char *(*build_abort)(const struct serve_coord *c, void *ud), void *ud,
                     char *err, size_t errlen);

/* Deletes the DONE rows finished more than max_age_seconds ago (store's clock). Returns how
 * many, or SERVE_STORE_ERROR. */
int serve_store_purge(struct serve_store *st, double max_age_seconds, char *err, size_t errlen);

/* /healthz: SERVE_STORE_OK when the store answers a query now. */
int serve_store_ping(struct serve_store *st, char *err, size_t errlen);

#endif
