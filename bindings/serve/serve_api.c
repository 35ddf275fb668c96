/*
 * The API of `lcmcoord serve` on the shared HTTP layer (bindings/em/em_http.c), and the life
 * of each coordination. On the HTTP worker: routing, authentication, the SOL 013 checks
 * (Version, Accept, Content-Type, the body validated by the EM's own validator), the limits
 * (--max-decisions, one coordination at a time per exclusive key), and every store read (GET,
 * cancel). A valid POST is deferred (its connection suspended) and its decision started on the
 * engine thread; the answer is given from there: 201 when decide returned within
 * --sync-budget (stored DONE first), 503 + Retry-After for busy (nothing stored), or, once the
 * budget has passed, 202 + Location (stored RUNNING first, holding the exclusive keys in the
 * store too, and a lease other instances respect). Cancel sets the store's flag; the decision
 * sees it at once when it runs here, at the next heartbeat when it runs on another instance.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "serve.h"
#include "serve_auth.h"

/* A key held by a decision of this instance, from its start to its end. */
struct serve_key {
    char *key;
    char id[37];
    struct serve_key *next;
};

struct serve_coordination {
    struct serve *s;
    char id[37];
    json_t *req;
    char *request_json;
    char **keys; /* NULL-terminated, or NULL */
    char *client;
    struct em_http_call *call; /* until answered (201, 202, 503, 409) */
    struct serve_timer *budget, *retry, *grace;
    struct serve_decision *decision; /* while decide runs */
    bool running_stored; /* the store has it RUNNING (after its 202; at once when shared) */
    bool cancel_requested;
    bool shutting_down; /* ended by the shutdown: ABORT */
    bool discard;       /* refused after its start (409, store error): nothing to store */
    double started;
    /* The store: one write at a time (its order is the coordination's), done off the engine
     * thread; a decision that ends meanwhile waits in stash for it. */
    struct serve_write write;
    bool writing;
    bool stashed;
    struct serve_outcome stash;
    /* The end, being stored: the LcmCoord, its result, the outcome (for the log). */
    struct serve_outcome outcome;
    char *text;
    enum em_result result;
    const char *result_name;
    double ms;
    struct serve_coordination *prev, *next; /* s->running */
};

static struct serve *the_server; /* for the layer's callbacks that carry no context */

/* ---- the log ---- */

static bool log_quiet;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void serve_log(json_t *fields)
{
    if (!fields)
        return;
    if (!log_quiet && !em_http_log_is_json()) {
        /* --log-format text: "lcmcoord serve: EVENT key=value ..." (the journal stamps it). */
        json_t *rest = json_deep_copy(fields);
        const char *event = json_string_value(json_object_get(fields, "event"));
        json_object_del(rest, "event");
        char *text = em_log_fields_text(rest);
        pthread_mutex_lock(&log_mu);
        fprintf(stderr, SERVE_PROGRAM ": %s%s\n", event ? event : "log", text);
        pthread_mutex_unlock(&log_mu);
        free(text);
        json_decref(rest);
    } else if (!log_quiet) {
        struct timespec now;
        struct tm tm;
        char stamp[40];
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", now.tv_nsec / 1000000L);
        json_t *line = json_pack("{s:s}", "time", stamp);
        json_object_update_missing(line, fields);
        char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        pthread_mutex_lock(&log_mu);
        if (text)
            fprintf(stderr, "%s\n", text);
        pthread_mutex_unlock(&log_mu);
        free(text);
        json_decref(line);
    }
    json_decref(fields);
}

/* ---- small things ---- */

static void new_id(char id[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        fputs(SERVE_PROGRAM ": no randomness for an id\n", stderr);
        abort();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(id, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void retry_after(struct em_response *rs, double seconds)
{
    char v[32];
    snprintf(v, sizeof v, "%.0f", seconds < 1 ? 1.0 : ceil(seconds));
    em_headers_add(&rs->headers, "Retry-After", v);
}

static void unavailable(struct em_response *rs, double seconds, const char *detail)
{
    em_response_problem(rs, 503, "%s", detail);
    retry_after(rs, seconds);
    serve_metrics_unavailable();
}

void serve_free_keys(char **keys)
{
    for (size_t i = 0; keys && keys[i]; i++)
        free(keys[i]);
    free(keys);
}

/* One part of a key with '%' and '/' percent-encoded: the only '/' in a key is the separator
 * of instance and VNFC, so an id holding a '/' neither clashes falsely nor forges a VNFC. */
static char *key_part(const char *id)
{
    if (!id) /* validated before; never NULL in practice */
        id = "";
    size_t n = 0;
    for (const char *p = id; *p; p++)
        n += *p == '%' || *p == '/' ? 3 : 1;
    char *out = em_xmalloc(n + 1), *o = out;
    for (const char *p = id; *p; p++) {
        if (*p == '%' || *p == '/') {
            memcpy(o, *p == '%' ? "%25" : "%2F", 3);
            o += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static char *vnfc_key(const char *inst, const char *vnfc)
{
    char *part = key_part(vnfc);
    char *key = em_xasprintf("%s/%s", inst, part);
    free(part);
    return key;
}

/* The exclusive keys of a request: vnfInstanceId alone, or with each VNFC of
 * inputParams.vnfcInstanceId (a string or a list of strings), each part percent-encoded
 * (key_part); NULL with --exclusive none. */
char **serve_exclusive_keys(enum serve_exclusive mode, const json_t *req)
{
    if (mode == SERVE_EXCLUSIVE_NONE)
        return NULL;
    char *inst = key_part(json_string_value(json_object_get(req, "vnfInstanceId")));
    const json_t *vnfc = json_object_get(json_object_get(req, "inputParams"), "vnfcInstanceId");
    size_t n = 0;
    if (mode == SERVE_EXCLUSIVE_VNFC)
        n = json_is_string(vnfc) ? 1 : json_is_array(vnfc) ? json_array_size(vnfc) : 0;
    char **keys = em_xmalloc((n + 2) * sizeof *keys);
    size_t k = 0;
    if (mode == SERVE_EXCLUSIVE_VNFC && json_is_string(vnfc)) {
        keys[k++] = vnfc_key(inst, json_string_value(vnfc));
    } else if (mode == SERVE_EXCLUSIVE_VNFC && json_is_array(vnfc)) {
        size_t i;
        json_t *v;
        json_array_foreach(vnfc, i, v) if (json_is_string(v)) keys[k++] =
            vnfc_key(inst, json_string_value(v));
    }
    if (k == 0) /* no VNFC named: the whole instance */
        keys[k++] = em_xstrdup(inst);
    keys[k] = NULL;
    free(inst);
    return keys;
}

/* Holds every key for id, or none: false with the holder's id when one is held. A key of an
 * instance ("I") and one of its VNFC ("I/C") conflict too. */
static bool keys_take(struct serve *s, char **keys, const char *id, char holder[37])
{
    if (!keys)
        return true;
    pthread_mutex_lock(&s->keys_mu);
    for (struct serve_key *h = s->keys; h; h = h->next)
        for (size_t i = 0; keys[i]; i++) {
            size_t a = strlen(h->key), b = strlen(keys[i]);
            size_t m = a < b ? a : b;
            bool same = strcmp(h->key, keys[i]) == 0 ||
                        (strncmp(h->key, keys[i], m) == 0 &&
                         ((a > b && h->key[b] == '/') || (b > a && keys[i][a] == '/')));
            if (same) {
                snprintf(holder, 37, "%s", h->id);
                pthread_mutex_unlock(&s->keys_mu);
                return false;
            }
        }
    for (size_t i = 0; keys[i]; i++) {
        struct serve_key *k = em_xmalloc(sizeof *k);
        k->key = em_xstrdup(keys[i]);
        snprintf(k->id, sizeof k->id, "%s", id);
        k->next = s->keys;
        s->keys = k;
    }
    pthread_mutex_unlock(&s->keys_mu);
    return true;
}

static void keys_release(struct serve *s, const char *id)
{
    pthread_mutex_lock(&s->keys_mu);
    for (struct serve_key **link = &s->keys; *link;) {
        struct serve_key *k = *link;
        if (strcmp(k->id, id) == 0) {
            *link = k->next;
            free(k->key);
            free(k);
        } else {
            link = &k->next;
        }
    }
    pthread_mutex_unlock(&s->keys_mu);
}

static char *self_url(const struct serve *s, const char *id)
{
    return em_xasprintf("%s%s/%s", s->base_url, EM_COORDINATIONS_PATH, id);
}

/* The LcmCoord of a finished coordination, as JSON text (malloc'd). */
static char *lcmcoord_text(const struct serve *s, const json_t *req, const char *id,
                           enum em_result result, const struct serve_outcome *o,
                           const char *abort_detail)
{
    char *self = self_url(s, id);
    json_t *doc = em_lcmcoord_build(req, id, self, result);
    free(self);
    json_object_del(doc, "outputParams");
    if (o && o->output)
        json_object_set(doc, "outputParams", o->output);
    if (o && o->warnings)
        json_object_set_new(doc, "warnings",
                            json_is_string(o->warnings) ? json_pack("[O]", o->warnings)
                                                        : json_incref(o->warnings));
    if (result == EM_RESULT_ABORT) {
        if (o && o->error)
            json_object_set(doc, "error", o->error);
        else
            json_object_set_new(doc, "error",
                                json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
                                          "Coordination aborted", "status", 409, "detail",
                                          abort_detail ? abort_detail : "aborted"));
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

/* ---- the life of a coordination, on the engine thread ---- */

/* Out of s->running (idempotent): a coordination whose last write is on its way is no longer
 * found by cancels or by the shutdown. */
static void unlink_running(struct serve_coordination *c)
{
    struct serve *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else if (s->running == c)
        s->running = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void coordination_free(struct serve_coordination *c)
{
    struct serve *s = c->s;
    if (c->budget)
        serve_timer_cancel(s->loop, c->budget);
    if (c->retry)
        serve_timer_cancel(s->loop, c->retry);
    if (c->grace)
        serve_timer_cancel(s->loop, c->grace);
    unlink_running(c);
    keys_release(s, c->id);
    json_decref(c->req);
    free(c->request_json);
    serve_free_keys(c->keys);
    free(c->client);
    free(c->text);
    if (c->stashed)
        serve_outcome_clear(&c->stash);
    serve_outcome_clear(&c->outcome);
    free(c);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* With PostgreSQL other instances decide too: the store's RUNNING row, taken before decide
 * starts, is what keeps one coordination at a time per key across them. */
static bool shared_store(const struct serve *s)
{
    return strncmp(s->opt.store, "postgres", 8) == 0;
}

/* Hands one write of c to the store writer; done(c) runs on the engine thread once it is
 * stored (or failed). One write per coordination at a time: its writes keep their order. */
static void submit_write(struct serve_coordination *c, enum serve_write_kind kind, serve_fn done)
{
    struct serve_write *w = &c->write;
    memset(w, 0, sizeof *w);
    w->kind = kind;
    snprintf(w->row.id, sizeof w->row.id, "%s", c->id);
    w->row.state = kind == SERVE_W_INSERT_RUNNING ? SERVE_RUNNING : SERVE_DONE;
    w->row.request_json = c->request_json;
    w->row.client = c->client;
    w->row.exclusive_keys = c->keys;
    w->row.lcmcoord_json = c->text;
    w->row.result = (char *)c->result_name;
    w->done = done;
    w->ud = c;
    c->writing = true;
    serve_writer_submit(c->s->writer, w);
}

static void answer_call(struct serve_coordination *c, struct em_response *rs)
{
    em_headers_add(&rs->headers, "Version", EM_API_VERSION);
    if (!rs->log_fields)
        rs->log_fields = json_object();
    json_object_set_new(rs->log_fields, "id", json_string(c->id));
    json_object_set_new(rs->log_fields, "action", json_string("coordinate"));
    if (c->client)
        json_object_set_new(rs->log_fields, "client", json_string(c->client));
    em_http_answer(c->call, rs);
    c->call = NULL;
}

static void log_decision(const struct serve_coordination *c, const char *result,
                         const struct serve_outcome *o, double ms)
{
    json_t *line = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:f}", "event", "decision", "id", c->id, "action",
        "coordinate", "client", c->client, "vnfInstanceId",
        json_string_value(json_object_get(c->req, "vnfInstanceId")), "coordinationActionName",
        json_string_value(json_object_get(c->req, "coordinationActionName")), "result", result,
        "ms", ms);
    if (o && o->kind == SERVE_OUT_ERROR && o->message)
        json_object_set_new(line, "hook_error", json_string(o->message));
    if (o && o->kind == SERVE_OUT_BUSY)
        json_object_set_new(line, "busy", json_real(o->busy_seconds));
    serve_log(line);
}

static void start_decision(struct serve_coordination *c);

static void retry_decision(void *ud)
{
    struct serve_coordination *c = ud;
    c->retry = NULL;
    start_decision(c);
}

static void busy_answered(void *ud)
{
    struct serve_coordination *c = ud;
    c->writing = false;
    if (c->write.rc == SERVE_STORE_ERROR)
        em_http_log_error("store: ", c->write.err);
    struct em_response rs;
    memset(&rs, 0, sizeof rs);
    char detail[128];
    snprintf(detail, sizeof detail, "the EM cannot coordinate now; retry in %.0f s",
             c->outcome.busy_seconds);
    unavailable(&rs, c->outcome.busy_seconds, detail);
    answer_call(c, &rs);
    coordination_free(c);
}

/* The decision's result is stored (or not): the answer when the call waits, then the end. */
static void decision_stored(void *ud)
{
    struct serve_coordination *c = ud;
    struct serve *s = c->s;
    c->writing = false;
    int rc = c->write.rc;
    if (c->call) {
        struct em_response rs;
        memset(&rs, 0, sizeof rs);
        if (rc != SERVE_STORE_OK) {
            em_http_log_error("store: ", c->write.err);
            unavailable(&rs, s->opt.retry_after, "the EM cannot store the coordination now");
        } else {
            rs.status = 201;
            em_response_set_body(&rs, c->text, "application/json");
            c->text = NULL;
            char *self = self_url(s, c->id);
            em_headers_add(&rs.headers, "Location", self);
            free(self);
        }
        rs.log_fields = json_pack("{s:s}", "result", c->result_name);
        answer_call(c, &rs);
    } else if (rc == SERVE_STORE_ERROR) {
        em_http_log_error("store: ", c->write.err);
    } else if (rc == SERVE_STORE_NOT_FOUND) {
        serve_log(json_pack("{s:s, s:s, s:s}", "event", "decision_lost", "id", c->id, "message",
                            "finished elsewhere meanwhile (its lease lapsed)"));
    }
    serve_metrics_decided(c->result == EM_RESULT_CONTINUE ? SERVE_M_CONTINUE
                          : c->result == EM_RESULT_ABORT  ? SERVE_M_ABORT
                                                          : SERVE_M_CANCELLED,
                          c->ms / 1e3);
    log_decision(c, c->result_name, &c->outcome, c->ms);
    coordination_free(c);
}

static void decided(void *ud, struct serve_outcome *o)
{
    struct serve_coordination *c = ud;
    struct serve *s = c->s;
    c->decision = NULL;
    if (c->writing) { /* its RUNNING row is on its way: the rest waits for it */
        c->stash = *o;
        c->stashed = true;
        memset(o, 0, sizeof *o);
        return;
    }
    double ms = (serve_monotonic() - c->started) * 1e3;
    if (c->budget) { /* the answer comes from here now, never a 202 as well */
        serve_timer_cancel(s->loop, c->budget);
        c->budget = NULL;
    }
    if (c->discard) { /* answered already (409, store error): nothing to keep */
        serve_outcome_clear(o);
        coordination_free(c);
        return;
    }
    if (o->kind == SERVE_OUT_BUSY && !c->cancel_requested && !c->shutting_down) {
        log_decision(c, "busy", o, ms);
        if (c->call) { /* within the budget: 503, nothing stored */
            serve_outcome_clear(&c->outcome);
            c->outcome = *o;
            memset(o, 0, sizeof *o);
            unlink_running(c);
            if (c->running_stored) /* shared store: the row taken for the keys goes */
                submit_write(c, SERVE_W_DELETE, busy_answered);
            else
                busy_answered(c);
            return;
        }
        /* After its 202: the server asks again once the time has passed. */
        c->retry = serve_timer_start(s->loop, o->busy_seconds, retry_decision, c);
        serve_outcome_clear(o);
        return;
    }
    enum em_result result = o->kind == SERVE_OUT_CONTINUE ? EM_RESULT_CONTINUE : EM_RESULT_ABORT;
    const char *detail = NULL;
    char buf[1200];
    if (c->shutting_down) {
        result = EM_RESULT_ABORT;
        detail = "the EM shut down before deciding";
    } else if (c->cancel_requested) {
        result = EM_RESULT_CANCELLED;
    } else if (o->kind == SERVE_OUT_ERROR) {
        snprintf(buf, sizeof buf, "the EM's decision failed: %s", o->message);
        detail = buf;
        json_t *err = json_pack("{s:s, s:s}", "event", "hook_error", "id", c->id);
        json_object_set_new(err, "message", json_string(o->message));
        serve_log(err);
    }
    bool keep_outcome = !c->shutting_down && !c->cancel_requested;
    c->text = lcmcoord_text(s, c->req, c->id, result, keep_outcome ? o : NULL, detail);
    c->result = result;
    c->result_name = em_result_name(result);
    c->ms = ms;
    serve_outcome_clear(&c->outcome);
    c->outcome = *o;
    memset(o, 0, sizeof *o);
    unlink_running(c);
    submit_write(c, c->running_stored ? SERVE_W_FINISH : SERVE_W_INSERT_DONE, decision_stored);
}

/* What was held back while a write was on its way goes on. */
static void resume_after_write(struct serve_coordination *c)
{
    if (c->stashed) {
        struct serve_outcome o = c->stash;
        c->stashed = false;
        decided(c, &o);
        serve_outcome_clear(&o);
    } else if (c->shutting_down && c->decision) {
        serve_decision_abort(c->decision); /* -> decided */
    }
}

static void start_decision(struct serve_coordination *c)
{
    struct serve *s = c->s;
    if (c->shutting_down || c->cancel_requested) {
        struct serve_outcome o = {.kind = SERVE_OUT_CANCELLED};
        decided(c, &o);
        return;
    }
    serve_decision_start(s->hooks, c->id, c->req, decided, c, &c->decision);
}

/* A RUNNING row that could not be stored: 409 or 503, and the coordination ends unkept. */
static void refuse_unstored(struct serve_coordination *c)
{
    struct serve *s = c->s;
    struct em_response rs;
    memset(&rs, 0, sizeof rs);
    if (c->write.rc == SERVE_STORE_CONFLICT) {
        em_response_problem(&rs, 409,
                            "coordination %s of this VNF instance or VNFC is in progress; one at "
                            "a time",
                            c->write.conflict);
    } else {
        em_http_log_error("store: ", c->write.err);
        unavailable(&rs, s->opt.retry_after, "the EM cannot store the coordination now");
    }
    if (c->call)
        answer_call(c, &rs);
    else
        em_response_free(&rs);
    c->discard = true;
    if (c->decision) {
        serve_decision_abort(c->decision); /* -> decided, which frees c */
    } else {
        coordination_free(c);
    }
}

/* The RUNNING row of a decision past its budget is stored: 202 (or, decided meanwhile, the
 * finish and 201). */
static void running_stored_late(void *ud)
{
    struct serve_coordination *c = ud;
    struct serve *s = c->s;
    c->writing = false;
    if (c->write.rc != SERVE_STORE_OK) {
        if (c->stashed) {
            serve_outcome_clear(&c->stash);
            c->stashed = false;
        }
        refuse_unstored(c);
        return;
    }
    c->running_stored = true;
    if (c->call && !c->stashed) {
        struct em_response rs;
        memset(&rs, 0, sizeof rs);
        rs.status = 202;
        char *self = self_url(s, c->id);
        em_headers_add(&rs.headers, "Location", self);
        free(self);
        retry_after(&rs, s->opt.retry_after);
        rs.log_fields = json_pack("{s:s}", "result", "accepted");
        answer_call(c, &rs);
    }
    resume_after_write(c);
}

/* The budget has passed with decide still running: 202, stored RUNNING first. */
static void budget_passed(void *ud)
{
    struct serve_coordination *c = ud;
    struct serve *s = c->s;
    c->budget = NULL;
    if (!c->call || c->writing) /* answered, or answered once the write in flight is done */
        return;
    if (!c->running_stored) {
        submit_write(c, SERVE_W_INSERT_RUNNING, running_stored_late);
        return;
    }
    struct em_response rs;
    memset(&rs, 0, sizeof rs);
    rs.status = 202;
    char *self = self_url(s, c->id);
    em_headers_add(&rs.headers, "Location", self);
    free(self);
    retry_after(&rs, s->opt.retry_after);
    rs.log_fields = json_pack("{s:s}", "result", "accepted");
    answer_call(c, &rs);
}

/* Shared store: the RUNNING row (the keys across instances) is stored, decide may start. */
static void running_stored_first(void *ud)
{
    struct serve_coordination *c = ud;
    struct serve *s = c->s;
    c->writing = false;
    if (c->write.rc != SERVE_STORE_OK) {
        refuse_unstored(c);
        return;
    }
    c->running_stored = true;
    c->budget = serve_timer_start(s->loop, s->opt.sync_budget, budget_passed, c);
    start_decision(c);
}

static void begin_coordination(void *ud)
{
    struct serve_coordination *c = ud;
    struct serve *s = c->s;
    c->next = s->running;
    if (s->running)
        s->running->prev = c;
    s->running = c;
    if (shared_store(s)) {
        submit_write(c, SERVE_W_INSERT_RUNNING, running_stored_first);
        return;
    }
    c->budget = serve_timer_start(s->loop, s->opt.sync_budget, budget_passed, c);
    start_decision(c);
}

static struct serve_coordination *find_running(struct serve *s, const char *id)
{
    for (struct serve_coordination *c = s->running; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static void grace_over(void *ud)
{
    struct serve_coordination *c = ud;
    c->grace = NULL;
    serve_decision_abort(c->decision);
}

/* A cancel reached a decision of this instance (engine thread). */
static void cancel_local(struct serve *s, const char *id)
{
    struct serve_coordination *c = find_running(s, id);
    if (!c || c->cancel_requested)
        return;
    c->cancel_requested = true;
    if (c->decision) {
        serve_decision_cancel(c->decision);
        c->grace = serve_timer_start(s->loop, s->opt.cancel_grace, grace_over, c);
    } else if (c->retry) { /* waiting to ask again after busy: ends now */
        serve_timer_cancel(s->loop, c->retry);
        c->retry = NULL;
        struct serve_outcome o = {.kind = SERVE_OUT_CANCELLED};
        decided(c, &o);
    }
}

struct posted_cancel {
    struct serve *s;
    char id[37];
};

static void posted_cancel_run(void *ud)
{
    struct posted_cancel *p = ud;
    cancel_local(p->s, p->id);
    free(p);
}

/* ---- the heartbeat: leases, cancels seen by other instances, reaping, retention ---- */

static char *build_abort(const struct serve_coord *row, void *ud)
{
    struct serve *s = ud;
    json_t *req = json_loads(row->request_json ? row->request_json : "{}", 0, NULL);
    const char *why = strcmp(row->owner ? row->owner : "", s->opt.instance_id) == 0 ||
                              strncmp(s->opt.store, "sqlite:", 7) == 0
                          ? "the EM restarted while deciding"
                          : "the EM instance deciding it stopped (its lease lapsed)";
    char *text = lcmcoord_text(s, req, row->id, EM_RESULT_ABORT, NULL, why);
    json_decref(req);
    return text;
}

static struct serve_timer *heartbeat_timer;
static unsigned heartbeats; /* writer threads only, one heartbeat at a time */
static void heartbeat(void *ud);

/* One heartbeat's store work, on a writer thread, and what it found for the engine. */
struct heartbeat_work {
    struct serve *s;
    struct serve_write write;
    char **cancel_ids;
    size_t n;
};

static void heartbeat_store(void *ud)
{
    struct heartbeat_work *h = ud;
    struct serve *s = h->s;
    char err[512];
    if (serve_store_heartbeat(s->store, s->opt.lease_ttl, &h->cancel_ids, &h->n, err, sizeof err) <
        0)
        em_http_log_error("store: ", err);
    int reaped = serve_store_reap(s->store, false, build_abort, s, err, sizeof err);
    if (reaped < 0)
        em_http_log_error("store: ", err);
    else if (reaped > 0)
        serve_log(json_pack("{s:s, s:i}", "event", "reaped", "count", reaped));
    /* Retention: at the first heartbeat, then once a minute. */
    if (heartbeats++ % 60 == 0 &&
        serve_store_purge(s->store, s->opt.retention, err, sizeof err) < 0)
        em_http_log_error("store: ", err);
}

static void heartbeat_done(void *ud)
{
    struct heartbeat_work *h = ud;
    struct serve *s = h->s;
    for (size_t i = 0; i < h->n; i++)
        cancel_local(s, h->cancel_ids[i]);
    serve_store_free_ids(h->cancel_ids, h->n);
    free(h);
    if (!atomic_load(&s->stopping))
        heartbeat_timer = serve_timer_start(s->loop, SERVE_HEARTBEAT_S, heartbeat, s);
}

/* Leases, cancels seen by other instances, reaping, retention: on a writer thread, the next
 * one a second after this one is done. */
static void heartbeat(void *ud)
{
    struct serve *s = ud;
    heartbeat_timer = NULL;
    struct heartbeat_work *h = em_xmalloc(sizeof *h);
    memset(h, 0, sizeof *h);
    h->s = s;
    h->write.kind = SERVE_W_CALL;
    h->write.call = heartbeat_store;
    h->write.done = heartbeat_done;
    h->write.ud = h;
    serve_writer_submit(s->writer, &h->write);
}

/* ---- the HTTP handler, on the workers ---- */

enum route {
    R_UNKNOWN,
    R_COORDINATIONS,
    R_COORDINATION,
    R_CANCEL,
    R_VERSIONS,
    R_HEALTH,
    R_METRICS
};

static enum route route(const char *path, char *id, size_t idlen)
{
    if (strcmp(path, "/healthz") == 0)
        return R_HEALTH;
    if (strcmp(path, "/metrics") == 0)
        return R_METRICS;
    switch (em_api_path(path, id, idlen)) { /* the API's paths, read as lcmcoord em reads them */
    case EM_PATH_COORDINATIONS:
        return R_COORDINATIONS;
    case EM_PATH_COORDINATION:
        return R_COORDINATION;
    case EM_PATH_CANCEL:
        return R_CANCEL;
    case EM_PATH_VERSIONS:
        return R_VERSIONS;
    case EM_PATH_OTHER:
        break;
    }
    return R_UNKNOWN;
}

/* Accept (RFC 9110 §12.5.1): absent, or admitting application/json (or problem+json, the
 * errors' type) with a q above 0. */
bool serve_accept_ok(const char *accept)
{
    if (!accept || !*accept)
        return true;
    char *copy = em_xstrdup(accept), *save = NULL;
    bool ok = false;
    for (char *item = strtok_r(copy, ",", &save); item && !ok; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ' || *item == '\t')
            item++;
        char *semi = strchr(item, ';');
        double q = 1;
        if (semi) {
            *semi = '\0';
            const char *qp = strstr(semi + 1, "q=");
            if (qp)
                q = strtod(qp + 2, NULL);
        }
        char *end = item + strlen(item);
        while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (q > 0 && (strcasecmp(item, "*/*") == 0 || strcasecmp(item, "application/*") == 0 ||
                      strcasecmp(item, "application/json") == 0 ||
                      strcasecmp(item, "application/problem+json") == 0))
            ok = true;
    }
    free(copy);
    return ok;
}

static void method_not_allowed(struct em_response *rs, const char *method, const char *allow)
{
    em_response_problem(rs, 405, "method %.16s is not allowed here; allowed: %s", method, allow);
    em_headers_add(&rs->headers, "Allow", allow);
}

static void answer_versions(struct serve *s, struct em_response *rs)
{
    char *prefix = em_xasprintf("%s/lcmcoord/v1/", s->base_url);
    json_t *doc = json_pack("{s:s, s:[{s:s, s:b}]}", "uriPrefix", prefix, "apiVersions", "version",
                            EM_API_VERSION, "isDeprecated", 0);
    free(prefix);
    rs->status = 200;
    em_response_set_body(rs, json_dumps(doc, JSON_COMPACT), "application/json");
    json_decref(doc);
}

static void answer_get(struct serve *s, const char *id, struct em_response *rs)
{
    struct serve_coord row;
    memset(&row, 0, sizeof row);
    char err[512];
    int rc = serve_store_get(s->store, id, &row, err, sizeof err);
    if (rc == SERVE_STORE_NOT_FOUND) {
        em_response_problem(rs, 404, "no coordination with id '%.64s'", id);
    } else if (rc != SERVE_STORE_OK) {
        em_http_log_error("store: ", err);
        unavailable(rs, s->opt.retry_after, "the EM cannot read its store now");
    } else if (row.state == SERVE_RUNNING) {
        rs->status = 202;
        retry_after(rs, s->opt.retry_after);
    } else {
        rs->status = 200;
        em_response_set_body(rs, em_xstrdup(row.lcmcoord_json ? row.lcmcoord_json : "{}"),
                             "application/json");
        rs->log_fields = json_pack("{s:s}", "result", row.result ? row.result : "");
    }
    serve_coord_clear(&row);
}

static void answer_cancel(struct serve *s, const char *id, struct em_response *rs)
{
    char err[512];
    int rc = serve_store_request_cancel(s->store, id, err, sizeof err);
    if (rc == 202) {
        rs->status = 202;
        struct posted_cancel *p = em_xmalloc(sizeof *p);
        p->s = s;
        snprintf(p->id, sizeof p->id, "%.36s", id);
        if (!serve_loop_post(s->loop, posted_cancel_run, p))
            free(p);
    } else if (rc == 409) {
        em_response_problem(rs, 409, "coordination %s is finished and cannot be cancelled", id);
    } else if (rc == 404) {
        em_response_problem(rs, 404, "no coordination with id '%.64s'", id);
    } else {
        em_http_log_error("store: ", err);
        unavailable(rs, s->opt.retry_after, "the EM cannot reach its store now");
    }
}

/* inputParams.vnfcInstanceId, what the exclusive keys are made of: absent, a string, or a
 * list of strings. 0, or 422 with the element named. */
int serve_check_vnfcs(const json_t *req, char *detail, size_t len)
{
    const json_t *vnfc = json_object_get(json_object_get(req, "inputParams"), "vnfcInstanceId");
    if (vnfc && !json_is_string(vnfc) && !json_is_array(vnfc)) {
        snprintf(detail, len, "inputParams.vnfcInstanceId: expected a string or a list of strings");
        return 422;
    }
    size_t i;
    json_t *v;
    json_array_foreach(vnfc, i, v)
    {
        if (!json_is_string(v)) {
            snprintf(detail, len, "inputParams.vnfcInstanceId[%zu]: expected a string", i);
            return 422;
        }
    }
    return 0;
}

/* A valid POST: limits, then the decision on the engine thread (the call deferred). */
static bool answer_post(struct serve *s, struct em_http_call *call, const struct em_request *rq,
                        const char *client, struct em_response *rs)
{
    char detail[512];
    if (!em_check_content_type(em_headers_get(&rq->headers, "content-type"))) {
        em_response_problem(rs, 415, "Content-Type must be application/json");
        return true;
    }
    json_t *req;
    unsigned rc = (unsigned)em_parse_body(rq->body, rq->body_len, &req, detail, sizeof detail);
    if (!rc)
        rc = (unsigned)em_validate_request(req, detail, sizeof detail);
    if (!rc)
        rc = (unsigned)serve_check_vnfcs(req, detail, sizeof detail);
    if (rc) {
        json_decref(req);
        em_response_problem(rs, rc, "%s", detail);
        return true;
    }
    if (atomic_load(&s->stopping)) {
        json_decref(req);
        unavailable(rs, s->opt.retry_after, "the EM is shutting down");
        return true;
    }
    if (atomic_fetch_add(&s->in_flight, 1) >= s->opt.max_decisions) {
        atomic_fetch_sub(&s->in_flight, 1);
        json_decref(req);
        snprintf(detail, sizeof detail, "the EM is deciding %u coordinations, its limit; retry",
                 s->opt.max_decisions);
        unavailable(rs, s->opt.retry_after, detail);
        return true;
    }
    struct serve_coordination *c = em_xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->s = s;
    new_id(c->id);
    c->req = req;
    c->request_json = json_dumps(req, JSON_COMPACT);
    c->keys = serve_exclusive_keys(s->opt.exclusive, req);
    c->client = client ? em_xstrdup(client) : NULL;
    c->started = serve_monotonic();
    char holder[37];
    if (!keys_take(s, c->keys, c->id, holder)) {
        em_response_problem(rs, 409,
                            "coordination %s of this VNF instance or VNFC is in progress; one at "
                            "a time",
                            holder);
        json_decref(c->req);
        free(c->request_json);
        serve_free_keys(c->keys);
        free(c->client);
        free(c);
        atomic_fetch_sub(&s->in_flight, 1);
        return true;
    }
    c->call = call;
    em_http_defer(call);
    if (!serve_loop_post(s->loop, begin_coordination, c)) { /* never: the loop outlives HTTP */
        c->call = NULL;
        unavailable(rs, s->opt.retry_after, "the EM is shutting down");
        em_http_answer(call, rs);
        keys_release(s, c->id);
        json_decref(c->req);
        free(c->request_json);
        serve_free_keys(c->keys);
        free(c->client);
        free(c);
        atomic_fetch_sub(&s->in_flight, 1);
    }
    return false;
}

static const char *shown_action(enum route r, const char *method)
{
    switch (r) {
    case R_COORDINATIONS:
        return strcmp(method, "POST") == 0 ? "coordinate" : "other";
    case R_COORDINATION:
        return "get";
    case R_CANCEL:
        return "cancel";
    case R_VERSIONS:
        return "api_versions";
    case R_HEALTH:
        return "healthz";
    case R_METRICS:
        return "metrics";
    default:
        return "other";
    }
}

static bool handle(void *ctx, struct em_http_call *call, const struct em_request *rq,
                   struct em_response *rs)
{
    struct serve *s = ctx;
    char id[128];
    enum route r = route(rq->path, id, sizeof id);
    serve_metrics_request();
    const char *client = NULL;
    char who[300] = "";
    bool answered = true;
    /* The operational endpoints are not part of the API: no version, no credentials. */
    if (r == R_HEALTH || r == R_METRICS) {
        if (strcmp(rq->method, "GET") != 0) {
            method_not_allowed(rs, rq->method, "GET");
        } else if (r == R_HEALTH) {
            char err[512];
            if (serve_store_ping(s->store, err, sizeof err) == SERVE_STORE_OK) {
                rs->status = 200;
                em_response_set_body(rs, em_xstrdup("{\"status\":\"ok\"}"), "application/json");
            } else {
                em_http_log_error("store: ", err);
                em_response_problem(rs, 503, "the store does not answer");
            }
        } else {
            rs->status = 200;
            em_response_set_body(rs, serve_metrics_text(atomic_load(&s->in_flight)),
                                 "text/plain; version=0.0.4");
        }
        goto done;
    }
    if (s->auth && serve_auth_enabled(s->auth)) {
        struct serve_identity idn;
        memset(&idn, 0, sizeof idn);
        serve_auth_check(s->auth, em_headers_get(&rq->headers, "authorization"),
                         rq->peer && rq->peer->cert_verified ? rq->peer->thumbprint : NULL, &idn);
        if (!idn.ok) {
            unsigned status = idn.status >= 400 && idn.status < 600 ? (unsigned)idn.status : 401;
            if (status == 503)
                unavailable(rs, s->opt.retry_after,
                            "the authorization server could not check the token; retry");
            else {
                serve_metrics_auth_failure();
                em_response_problem(rs, status, "%s",
                                    idn.error ? idn.error : "authentication is required");
            }
            for (size_t i = 0; i < idn.n_challenges && status != 503; i++)
                em_headers_add(&rs->headers, "WWW-Authenticate", idn.challenges[i]);
            goto done;
        }
        snprintf(who, sizeof who, "%s", idn.who);
        client = who;
    }
    if (!client && rq->peer && rq->peer->cert_verified && rq->peer->subject_cn[0]) {
        snprintf(who, sizeof who, "cn=%s", rq->peer->subject_cn);
        client = who;
    }
    if (s->opt.http.client_ca && !(rq->peer && rq->peer->cert_verified)) {
        serve_metrics_auth_failure();
        em_response_problem(rs, 401, "%s",
                            rq->peer && rq->peer->problem[0] ? rq->peer->problem
                                                             : "a client certificate is required");
        goto done;
    }
    if (r == R_UNKNOWN) {
        em_response_problem(rs, 404, "no resource at this path");
        goto done;
    }
    if (!serve_accept_ok(em_headers_get(&rq->headers, "accept"))) {
        em_response_problem(rs, 406, "this API answers application/json only (see Accept)");
        goto done;
    }
    if (r == R_VERSIONS) {
        if (strcmp(rq->method, "GET") != 0)
            method_not_allowed(rs, rq->method, "GET");
        else
            answer_versions(s, rs);
        goto done;
    }
    const char *allowed = r == R_COORDINATION ? "GET" : "POST";
    if (strcmp(rq->method, allowed) != 0) {
        method_not_allowed(rs, rq->method, allowed);
        goto done;
    }
    char detail[256];
    unsigned rc =
        (unsigned)em_check_version(em_headers_get(&rq->headers, "version"), detail, sizeof detail);
    if (rc) {
        em_response_problem(rs, rc, "%s", detail);
        goto done;
    }
    if (rq->body_too_large) {
        em_response_problem(rs, 413, "the request body is larger than %zu bytes",
                            s->opt.http.body_limit);
        goto done;
    }
    if (r == R_COORDINATIONS)
        answered = answer_post(s, call, rq, client, rs);
    else if (r == R_COORDINATION)
        answer_get(s, id, rs);
    else
        answer_cancel(s, id, rs);
done:
    if (answered) {
        if (!em_headers_get(&rs->headers, "Version"))
            em_headers_add(&rs->headers, "Version", EM_API_VERSION);
        if (!rs->log_fields)
            rs->log_fields = json_object();
        json_object_set_new(rs->log_fields, "action", json_string(shown_action(r, rq->method)));
        if (client)
            json_object_set_new(rs->log_fields, "client", json_string(client));
        if ((r == R_COORDINATION || r == R_CANCEL) && strlen(id) < 64)
            json_object_set_new(rs->log_fields, "id", json_string(id));
    }
    return answered;
}

static size_t body_limit(void *ctx, const char *path)
{
    (void)path;
    return ((struct serve *)ctx)->opt.http.body_limit;
}

static void bound(void *ctx, unsigned port)
{
    struct serve *s = ctx;
    if (s->opt.http.base_url) {
        snprintf(s->base_url, sizeof s->base_url, "%s", s->opt.http.base_url);
        return;
    }
    bool v6 = strchr(s->opt.http.host, ':') != NULL;
    snprintf(s->base_url, sizeof s->base_url, "%s://%s%s%s:%u",
             s->opt.http.tls_cert ? "https" : "http", v6 ? "[" : "", s->opt.http.host,
             v6 ? "]" : "", port);
}

/* ---- start, reload, shutdown ---- */

static void start_heartbeat(void *ud)
{
    struct serve *s = ud;
    heartbeat_timer = serve_timer_start(s->loop, SERVE_HEARTBEAT_S, heartbeat, s);
}

int serve_start(struct serve *s, const struct em_tls_files *tls, char *err, size_t len)
{
    the_server = s;
    log_quiet = s->opt.http.quiet;
    pthread_mutex_init(&s->keys_mu, NULL);
    atomic_init(&s->stopping, false);
    atomic_init(&s->in_flight, 0);
    s->store = serve_store_open(s->opt.store, s->opt.instance_id, err, len);
    if (!s->store)
        return -1;
    serve_store_set_lease_ttl(s->store, s->opt.lease_ttl);
    /* What the previous process left running was never answered as decided: ABORT. */
    char why[512];
    int reaped = serve_store_reap(s->store, true, build_abort, s, why, sizeof why);
    if (reaped < 0) {
        snprintf(err, len, "%s", why);
        return -1;
    }
    if (reaped > 0)
        serve_log(json_pack("{s:s, s:i, s:s}", "event", "reaped", "count", reaped, "message",
                            "coordinations left running by a previous process ended as ABORT"));
    s->hooks = serve_hooks_load(s->opt.hooks, err, len);
    if (!s->hooks)
        return -1;
    s->loop = serve_loop_start(serve_hooks_engine(s->hooks), err, len);
    if (!s->loop)
        return -1;
    serve_hooks_attach(s->hooks, s->loop);
    /* SQLite has one connection: one writer, its writes grouped; PostgreSQL a few at once. */
    s->writer = serve_writer_start(s->store, s->loop, shared_store(s) ? 4 : 1, err, len);
    if (!s->writer)
        return -1;
    struct em_http_settings set = {
        .opt = &s->opt.http,
        .program = SERVE_PROGRAM,
        .ctx = s,
        .body_limit = body_limit,
        .bound = bound,
        .handle = handle,
    };
    s->http = em_http_start(&set, tls, err, len);
    if (!s->http)
        return -1;
    serve_loop_post(s->loop, start_heartbeat, s);
    return 0;
}

static void reloaded(void *ud, const char *error)
{
    struct serve *s = ud;
    if (error)
        serve_log(
            json_pack("{s:s, s:s, s:s}", "event", "reload", "level", "error", "message", error));
    else
        serve_log(json_pack("{s:s, s:s}", "event", "reload", "hooks", s->opt.hooks));
}

/* On the engine thread: the file runs again in the hooks' state. */
static void reload_hooks(void *ud)
{
    struct serve *s = ud;
    serve_hooks_reload(s->hooks, reloaded, s);
}

void serve_reload(struct serve *s)
{
    serve_loop_post(s->loop, reload_hooks, s);
}

static void stop_everything(void *ud)
{
    struct serve *s = ud;
    if (heartbeat_timer) {
        serve_timer_cancel(s->loop, heartbeat_timer);
        heartbeat_timer = NULL;
    }
    struct serve_coordination *next;
    for (struct serve_coordination *c = s->running; c; c = next) {
        next = c->next;
        c->shutting_down = true;
        if (c->writing) /* goes on once its write is done (resume_after_write) */
            continue;
        if (c->decision) {
            serve_decision_abort(c->decision); /* -> decided, which unlinks c */
        } else {
            struct serve_outcome o = {.kind = SERVE_OUT_CANCELLED};
            decided(c, &o);
        }
    }
}

static void wait_idle(struct serve *s, double seconds)
{
    double until = serve_monotonic() + seconds;
    while (atomic_load(&s->in_flight) && serve_monotonic() < until) {
        struct timespec t = {0, 20 * 1000000L};
        nanosleep(&t, NULL);
    }
}

static char *build_shutdown_abort(const struct serve_coord *row, void *ud)
{
    json_t *req = json_loads(row->request_json ? row->request_json : "{}", 0, NULL);
    char *text =
        lcmcoord_text(ud, req, row->id, EM_RESULT_ABORT, NULL, "the EM shut down before deciding");
    json_decref(req);
    return text;
}

/* The engine thread did not come back: a hook holds it in a call that never yields
 * (os.execute, a blocking read). Nothing it owns can be touched from here, and MHD cannot be
 * stopped with the connections it suspended (it aborts the process). This instance's RUNNING
 * rows are ended in the store from this thread, and the process leaves without the teardown. */
static void leave_held_engine(struct serve *s)
{
    char err[512] = "";
    int ended = serve_store_reap(s->store, true, build_shutdown_abort, s, err, sizeof err);
    if (ended < 0)
        em_http_log_error("store: ", err);
    serve_log(json_pack("{s:s, s:s, s:s, s:I, s:i}", "event", "shutdown", "level", "error",
                        "message",
                        "a hook holds the engine in a call that does not yield: leaving without "
                        "it",
                        "decisions_running", (json_int_t)atomic_load(&s->in_flight),
                        "ended_as_abort", ended > 0 ? ended : 0));
    _exit(0);
}

void serve_shutdown(struct serve *s)
{
    atomic_store(&s->stopping, true);
    em_http_quiesce(s->http);
    serve_log(json_pack("{s:s, s:I}", "event", "shutdown", "decisions_running",
                        (json_int_t)atomic_load(&s->in_flight)));
    wait_idle(s, s->opt.shutdown_grace);
    serve_loop_post(s->loop, stop_everything, s);
    wait_idle(s, 5);
    if (atomic_load(&s->in_flight))
        leave_held_engine(s);
    em_http_stop(s->http);
    serve_writer_stop(s->writer); /* its completions reach the loop, still turning */
    serve_loop_stop(s->loop);
    serve_writer_free(s->writer);
    serve_hooks_release(s->hooks);
    serve_store_close(s->store);
    pthread_mutex_destroy(&s->keys_mu);
}
