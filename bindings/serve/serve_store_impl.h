/* What serve_store.c (URL dispatch, shared helpers) and the two back ends
 * (serve_store_sqlite.c, serve_store_pg.c) share: the table of operations each back end fills
 * in, the common part of a store handle, and the helpers that write the one-line errors. Not
 * part of the store's interface. */
#ifndef LCMCOORD_SERVE_STORE_IMPL_H
#define LCMCOORD_SERVE_STORE_IMPL_H

#include "serve_store.h"

#include <stdarg.h>

struct serve_store_ops {
    void (*close)(struct serve_store *st);
    int (*insert)(struct serve_store *st, const struct serve_coord *c, bool running,
                  char conflict_id[37], char *err, size_t errlen);
    int (*finish)(struct serve_store *st, const char *id, const char *result,
                  const char *lcmcoord_json, char *err, size_t errlen);
    int (*remove)(struct serve_store *st, const char *id, char *err, size_t errlen);
    /* Optional (NULL: every write commits alone): a group commit. */
    int (*batch_begin)(struct serve_store *st, char *err, size_t errlen);
    int (*batch_end)(struct serve_store *st, char *err, size_t errlen);
    int (*get)(struct serve_store *st, const char *id, struct serve_coord *out, char *err,
               size_t errlen);
    int (*request_cancel)(struct serve_store *st, const char *id, char *err, size_t errlen);
    int (*heartbeat)(struct serve_store *st, double ttl, char ***cancel_ids, size_t *n, char *err,
                     size_t errlen);
    /* Reads the RUNNING rows to reap (all fields), malloc'd array into *rows. */
    int (*reap_candidates)(struct serve_store *st, bool all_running, struct serve_coord **rows,
                           size_t *n, char *err, size_t errlen);
    /* Finishes one candidate as ABORT if it is still reapable; 1 finished, 0 not, -1 error. */
    int (*reap_one)(struct serve_store *st, const char *id, bool all_running,
                    const char *lcmcoord_json, char *err, size_t errlen);
    int (*purge)(struct serve_store *st, double max_age_seconds, char *err, size_t errlen);
    int (*ping)(struct serve_store *st, char *err, size_t errlen);
};

/* The head of every back end's handle (each back end's struct starts with it). */
struct serve_store {
    const struct serve_store_ops *ops;
    char *display;     /* the URL, password redacted */
    char *instance_id; /* owner written into leases */
    double lease_ttl;
};

/* "store DISPLAY: " + the formatted message, one line (control characters made spaces). */
void serve_store_errorf(const struct serve_store *st, char *err, size_t errlen, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
/* Same, for before a handle exists. */
void serve_store_errorf_name(const char *display, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills the common head; false (err written) when out of memory. */
bool serve_store_init_head(struct serve_store *st, const struct serve_store_ops *ops,
                           const char *display, const char *instance_id, char *err, size_t errlen);
void serve_store_free_head(struct serve_store *st);

/* A URL with the password (userinfo and a password= query parameter) replaced by "***";
 * malloc'd, NULL when out of memory. */
char *serve_store_redact_url(const char *url);

/* The distinct keys of a NULL-terminated list: returns how many of keys[0..] are first
 * occurrences, in *idx their positions (malloc'd; NULL list gives 0). -1 out of memory. */
int serve_store_distinct_keys(char *const *keys, size_t **idx);

/* The keys a RUNNING key of another coordination must not be for key to be taken: a whole
 * instance "I" clashes with "I" and every "I/C" (*low = "I/", *high = "I0": the range of keys
 * starting "I/", as '0' follows '/'); a VNFC key "I/C" clashes with "I" (*low, *high NULL). The
 * parts are percent-encoded, so the first '/' is the only separator. Each result is malloc'd;
 * false when out of memory. The equal key "I/C" itself is the unique index's business. */
bool serve_store_key_relatives(const char *key, char **equal, char **low, char **high);

/* Current time, epoch seconds. */
double serve_store_now(void);

bool serve_store_valid_result(const char *result);

struct serve_store *serve_store_sqlite_open(const char *path, const char *display,
                                            const char *instance_id, char *err, size_t errlen);
struct serve_store *serve_store_pg_open(const char *url, const char *display,
                                        const char *instance_id, char *err, size_t errlen);

#endif
