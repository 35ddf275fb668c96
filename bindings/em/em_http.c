/*
 * The HTTP layer shared by the EM simulator (lcmcoord-em) and the EM server (lcmcoord-serve):
 * libmicrohttpd glue that collects each request (headers, body up to the limit), hands it to
 * the program's handler and sends the answer, logging one line per request. MHD runs a
 * thread pool over epoll. A handler may answer at once or defer: the connection is then
 * suspended, not slept on, and any thread answers it later (em_http_answer) while it is
 * still suspended, then resumes it. A request answered late on purpose (--delay) has its
 * answer queued and its connection suspended the same way, and a single timer thread resumes
 * it when due, so a stalled answer ties up neither a worker nor shutdown (which resumes
 * everything still waiting before stopping).
 *
 * The layer holds against hostile clients (docs/security.md): connections are capped in all
 * and per client address; MHD closes a connection silent for --idle-timeout, but its timer
 * restarts on every byte, so a reaper thread of ours also closes a connection whose request
 * head (TLS handshake included) is not complete --header-timeout seconds after it could
 * start, or whose body trickles in under --min-body-rate, or whose peer has gone with its
 * request incomplete (MHD 0.9.75's epoll loop can miss that FIN and keep the socket in
 * CLOSE-WAIT for good; its poll loop does not, but drops delayed answers to clients that
 * half-close, so epoll plus the reaper it is: docs/benchmarks.md). Framing is strict (RFC 9112):
 * anything a proxy in front could read differently is refused with 400 and the connection
 * closed, and routing sees the path exactly as sent (no percent-decoding). MHD's own
 * messages go through the same log as the requests: silent under --quiet, JSON under
 * --log-format json, and rate-limited.
 * Over HTTPS each connection carries what its TLS session says about the client (looked
 * at once, on its first request), for the handler to judge.
 */
#define _GNU_SOURCE /* POLLRDHUP: see a peer that has closed its side */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "em.h"

struct em_http_call;

/* Suspended connections waiting for their --delay to run out. */
struct delay_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct em_http_call *head;
    bool stopping;
    bool started;
    pthread_t thread;
};

/* Where a connection stands, as far as the deadlines are concerned. */
enum sock_phase {
    SOCK_WAITING_HEAD, /* TLS handshake or request head under way, or idle between requests */
    SOCK_RECEIVING,    /* head complete, body arriving */
    SOCK_ANSWERING,    /* request complete: ours to answer (maybe late), no deadline */
};

/* Per-connection state (MHD's socket context), from accept to close. */
struct em_sock {
    struct em_peer peer; /* over HTTPS */
    int fd;
    enum sock_phase phase;    /* these three under reaper.mu */
    struct timespec since;    /* CLOCK_MONOTONIC: when the phase began */
    unsigned long long bytes; /* body bytes received in SOCK_RECEIVING */
    bool cut;                 /* the reaper shut it down already */
    bool peer_gone;           /* seen closed by the peer, with nothing left to read */
    struct em_sock *prev, *next;
};

/* The thread enforcing what MHD's idle timeout cannot: head and body deadlines. It also
 * reports the log lines the rate limit held back. */
struct reaper {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct em_sock *head;
    bool stopping;
    bool started;
    pthread_t thread;
};

struct em_http {
    struct em_http_settings set;
    struct em_options opt; /* the HTTP options, copied */
    bool tls;
    struct MHD_Daemon *daemon;
    int listen_fd; /* ours to close once MHD gave it back (em_http_quiesce), else -1 */
    unsigned port;
    struct delay_queue delays;
    struct reaper reaper;
};

/* Per-request state, from the first callback to MHD's completion notice. */
struct em_http_call {
    struct em_http *srv;
    struct em_sock *sock;
    bool begun;             /* the request handler has seen the head */
    const char *raw_target; /* the target as MHD cut the request line (in its buffer) */
    size_t raw_target_len;
    const struct em_peer *peer; /* the connection's, over HTTPS */
    struct MHD_Connection *connection;
    struct timespec started;  /* CLOCK_MONOTONIC, for the log line */
    struct timespec received; /* CLOCK_REALTIME, for the journal */
    char *body;
    size_t body_len;
    bool too_large;
    bool unanswered; /* a deferred answer could not be queued: close on the next call */
    struct MHD_Response *response; /* decided, waiting to be queued */
    json_t *log_fields;            /* the handler's additions to the JSON log line */
    unsigned status;
    char *log_path;
    char method[16];
    struct timespec due; /* when suspended */
    struct em_http_call *next;
};

static void log_answer(const struct em_http_call *c);

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* ---- the delay timer ---- */

static void *delay_thread(void *arg)
{
    struct delay_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct em_http_call *due = NULL, **link = &q->head;
        struct timespec next = {0, 0};
        bool have_next = false;
        while (*link) {
            struct em_http_call *c = *link;
            if (!before(&now, &c->due)) {
                *link = c->next;
                c->next = due;
                due = c;
            } else {
                if (!have_next || before(&c->due, &next))
                    next = c->due;
                have_next = true;
                link = &c->next;
            }
        }
        if (due) {
            /* Resume outside our lock: MHD takes its own, and the worker may free c. */
            pthread_mutex_unlock(&q->mu);
            while (due) {
                struct em_http_call *c = due;
                due = c->next;
                /* c is ours until the resume: MHD leaves a suspended connection alone. */
                log_answer(c);
                MHD_resume_connection(c->connection);
            }
            pthread_mutex_lock(&q->mu);
            continue;
        }
        if (have_next)
            pthread_cond_timedwait(&q->cv, &q->mu, &next);
        else
            pthread_cond_wait(&q->cv, &q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static int delay_start(struct delay_queue *q)
{
    pthread_condattr_t attr;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &attr);
    pthread_condattr_destroy(&attr);
    q->head = NULL;
    q->stopping = false;
    q->started = pthread_create(&q->thread, NULL, delay_thread, q) == 0;
    return q->started ? 0 : -1;
}

/* Resumes every waiting connection now: MHD must not be stopped with any suspended. */
static void delay_stop(struct delay_queue *q)
{
    if (!q->started)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    struct em_http_call *pending = q->head;
    q->head = NULL;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    while (pending) {
        struct em_http_call *c = pending;
        pending = c->next;
        log_answer(c);
        MHD_resume_connection(c->connection);
    }
}

static void delay_destroy(struct delay_queue *q)
{
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

/* Suspends c until its delay runs out (a connection a scenario thread answered is suspended
 * already); false when shutting down (answer now instead). */
static bool delay_suspend(struct em_http *srv, struct em_http_call *c, bool suspended)
{
    struct delay_queue *q = &srv->delays;
    unsigned long ms = srv->opt.delay_ms;
    clock_gettime(CLOCK_MONOTONIC, &c->due);
    c->due.tv_sec += (time_t)(ms / 1000);
    c->due.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (c->due.tv_nsec >= 1000000000L) {
        c->due.tv_sec++;
        c->due.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    /* Suspend before the timer can see c, so a resume never precedes its suspend. */
    if (!suspended)
        MHD_suspend_connection(c->connection);
    c->next = q->head;
    q->head = c;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

/* ---- the log: one line per request, and the HTTP layer's own messages ---- */

/* `lcmcoord em --log-format json` (the option is taken by the program's main, em_program.c):
 * one JSON object per line for a log collector. Set once before the server starts. */
static bool log_json;
/* --quiet: nothing at all on stderr once serving. Set once before the server starts. */
static bool log_quiet;
/* What the layer's own text lines start with ("lcmcoord em"). Set once before it starts. */
static const char *log_program = "lcmcoord em";

void lcmc_em_set_log_json(int on)
{
    log_json = on != 0;
}

static void rfc3339_now(char stamp[40])
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(stamp, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, 40 - n, ".%03ldZ", now.tv_nsec / 1000000L);
}

/* The request line as JSON: {time, method, path, status, ms}; time is RFC 3339 UTC. */
static void log_request_json(const struct em_http_call *c, double ms)
{
    char stamp[40];
    rfc3339_now(stamp);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:f}", "time", stamp, "method", c->method, "path",
                          c->log_path, "status", (int)c->status, "ms", ms);
    /* The handler's fields (who called, what was decided) follow; they never replace ours. */
    const char *key;
    json_t *value;
    if (o != NULL && c->log_fields != NULL)
        json_object_foreach(c->log_fields, key, value) if (!json_object_get(o, key))
            json_object_set(o, key, value);
    char *line = o != NULL
                     ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))
                     : NULL;
    if (line != NULL)
        fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(o);
}

/* A message from the HTTP layer (MHD's or the reaper's), in the chosen format. */
static void log_http_line(const char *msg)
{
    if (!log_json) {
        fprintf(stderr, "%s: http: %s\n", log_program, msg);
        return;
    }
    char stamp[40];
    rfc3339_now(stamp);
    json_t *o = json_pack("{s:s, s:s, s:s}", "time", stamp, "level", "warning", "message", msg);
    char *line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (line != NULL)
        fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(o);
}

/* At most EM_HTTP_LOG_PER_SECOND messages a second: a client can make MHD complain once
 * per connection (an aborted handshake, a bad head), and must not flood the log or the
 * disk with it. What is held back is counted and reported once the second is over. */
#define EM_HTTP_LOG_PER_SECOND 5
static struct {
    pthread_mutex_t mu;
    time_t second;
    unsigned printed;
    unsigned long suppressed;
} http_log_limit = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};

/* Reports what was held back in a second now over (or at once, when stopping); call with
 * http_log_limit.mu held. */
static void http_log_report_suppressed(time_t now, bool stopping)
{
    if (http_log_limit.suppressed && (stopping || now != http_log_limit.second)) {
        char msg[128];
        snprintf(msg, sizeof msg, "%lu more messages suppressed (at most %d a second are logged)",
                 http_log_limit.suppressed, EM_HTTP_LOG_PER_SECOND);
        http_log_limit.suppressed = 0;
        log_http_line(msg);
    }
}

static void http_log(const char *msg)
{
    if (log_quiet)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&http_log_limit.mu);
    http_log_report_suppressed(now.tv_sec, false);
    if (now.tv_sec != http_log_limit.second) {
        http_log_limit.second = now.tv_sec;
        http_log_limit.printed = 0;
    }
    if (http_log_limit.printed < EM_HTTP_LOG_PER_SECOND) {
        http_log_limit.printed++;
        log_http_line(msg);
    } else {
        http_log_limit.suppressed++;
    }
    pthread_mutex_unlock(&http_log_limit.mu);
}

static void http_log_flush(bool stopping)
{
    if (log_quiet)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&http_log_limit.mu);
    http_log_report_suppressed(now.tv_sec, stopping);
    pthread_mutex_unlock(&http_log_limit.mu);
}

/* MHD_OPTION_EXTERNAL_LOGGER: MHD's messages, one line each, printable ASCII only. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] > 0x7e)
            msg[i] = '?';
    http_log(msg);
}

/* ---- deadlines: the reaper ---- */

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Moves a connection to a new phase; the deadlines count from now. */
static void sock_enter(struct reaper *r, struct em_sock *sock, enum sock_phase phase)
{
    pthread_mutex_lock(&r->mu);
    sock->phase = phase;
    sock->bytes = 0;
    sock->peer_gone = false;
    clock_gettime(CLOCK_MONOTONIC, &sock->since);
    pthread_mutex_unlock(&r->mu);
}

static void sock_add_bytes(struct reaper *r, struct em_sock *sock, size_t n)
{
    pthread_mutex_lock(&r->mu);
    sock->bytes += n;
    pthread_mutex_unlock(&r->mu);
}

/* Whether the peer has closed its side and every byte it sent has been read: a request
 * still incomplete then never will be. */
static bool peer_finished(int fd)
{
    struct pollfd p = {fd, POLLRDHUP, 0};
    int unread = 0;
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) &&
           ioctl(fd, FIONREAD, &unread) == 0 && unread == 0;
}

/* Whether a connection is past its deadline. A body gets --header-timeout seconds of
 * grace, then must have averaged --min-body-rate since its head was complete. */
static bool sock_overdue(const struct em_options *opt, const struct em_sock *sock,
                         const struct timespec *now)
{
    double age = seconds_between(&sock->since, now);
    if (sock->phase == SOCK_WAITING_HEAD)
        return age > (double)opt->header_timeout_s;
    return sock->phase == SOCK_RECEIVING && opt->min_body_rate &&
           age > (double)opt->header_timeout_s &&
           (double)sock->bytes < age * (double)opt->min_body_rate;
}

static void *reaper_thread(void *arg)
{
    struct em_http *srv = arg;
    struct reaper *r = &srv->reaper;
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        for (struct em_sock *sock = r->head; sock; sock = sock->next) {
            if (sock->cut)
                continue;
            bool cut = sock_overdue(&srv->opt, sock, &now);
            /* MHD's epoll loop (0.9.75) can miss a FIN that comes with data, and would keep
             * such a socket in CLOSE-WAIT for good; poll mode has no such miss but loses
             * delayed answers to clients that half-close. So the reaper looks: a peer gone
             * while its request is incomplete is cut like an overdue one: seen on two sweeps
             * in a row, or once the phase is old enough that MHD is not about to hand the
             * last bytes over. */
            if (!cut && sock->phase != SOCK_ANSWERING) {
                bool gone = peer_finished(sock->fd);
                cut = gone && (sock->peer_gone || seconds_between(&sock->since, &now) > 0.2);
                sock->peer_gone = gone;
            }
            if (!cut)
                continue;
            /* The socket stays open until MHD's close notice, which takes r->mu first, so
             * the descriptor is still this connection's. MHD sees the end of the stream
             * on its next poll and closes the connection the ordinary way. */
            shutdown(sock->fd, SHUT_RDWR);
            sock->cut = true;
        }
        http_log_flush(false);
        struct timespec wake = now;
        wake.tv_nsec += 100000000L; /* ten sweeps a second: abandoned sockets go quickly */
        if (wake.tv_nsec >= 1000000000L) {
            wake.tv_sec++;
            wake.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &wake);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int reaper_start(struct em_http *srv)
{
    struct reaper *r = &srv->reaper;
    pthread_condattr_t attr;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &attr);
    pthread_condattr_destroy(&attr);
    r->started = pthread_create(&r->thread, NULL, reaper_thread, srv) == 0;
    return r->started ? 0 : -1;
}

static void reaper_stop(struct reaper *r)
{
    if (!r->started)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->started = false;
}

static void reaper_destroy(struct reaper *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* ---- requests ---- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct em_headers *h = cls;
    char name[256];
    size_t n = strlen(key);
    if (n >= sizeof name)
        n = sizeof name - 1;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] - 'A' + 'a' : key[i]);
    name[n] = '\0';
    em_headers_add(h, name, value ? value : "");
    return MHD_YES;
}

/* The path as it may appear in a log line: printable ASCII only, bounded. */
static char *loggable(const char *s)
{
    size_t n = strlen(s);
    if (n > 200)
        n = 200;
    char *out = em_xstrndup(s, n);
    for (size_t i = 0; i < n; i++)
        if (out[i] < 0x21 || out[i] > 0x7e)
            out[i] = '?';
    return out;
}

/* The request as the protocol logic sees it: the headers are copies (em_headers_free), the
 * rest points into c and the strings given. Read on the worker thread. */
static void collect_request(struct em_http_call *c, const char *url, const char *method,
                            struct em_request *rq)
{
    memset(rq, 0, sizeof *rq);
    rq->method = method;
    rq->path = url;
    rq->body = c->body;
    rq->body_len = c->body_len;
    rq->body_too_large = c->too_large;
    rq->received = c->received;
    rq->peer = c->peer;
    MHD_get_connection_values(c->connection, MHD_HEADER_KIND, collect_header, &rq->headers);
}

/* The decided answer as c->response (to queue) and c->status; rs is freed. */
static void prepare_response(struct em_http_call *c, struct em_response *rs)
{
    /* MHD frees the body with free() once sent; an empty one still needs a response. A
     * streamed body (the journal) is read chunk by chunk, never copied whole. */
    struct MHD_Response *resp =
        rs->stream_read
            ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, rs->stream_read,
                                                rs->stream_ctx, rs->stream_free)
        : rs->body_len
            ? MHD_create_response_from_buffer(rs->body_len, rs->body, MHD_RESPMEM_MUST_FREE)
            : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (rs->stream_read && resp)
        rs->stream_ctx = NULL; /* MHD frees it now, even if the response is never sent */
    if (rs->body_len)
        rs->body = NULL;
    for (size_t i = 0; resp && i < rs->headers.n; i++)
        if (MHD_add_response_header(resp, rs->headers.v[i].name, rs->headers.v[i].value) != MHD_YES)
            fprintf(stderr, "%s: header '%s' refused by the HTTP library\n", log_program,
                    rs->headers.v[i].name);
    c->response = resp;
    c->status = rs->status;
    json_decref(c->log_fields);
    c->log_fields = rs->log_fields;
    rs->log_fields = NULL;
    em_response_free(rs);
}

/* Asks the handler; true when it answered (c->response is ready), false when it deferred. */
static bool decide(struct em_http_call *c, const char *url, const char *method, bool *may_delay)
{
    struct em_request rq;
    collect_request(c, url, method, &rq);
    struct em_response rs;
    memset(&rs, 0, sizeof rs);
    bool answered = c->srv->set.handle(c->srv->set.ctx, c, &rq, &rs);
    em_headers_free(&rq.headers);
    if (!answered) {
        em_response_free(&rs);
        return false;
    }
    *may_delay = rs.may_delay;
    prepare_response(c, &rs);
    return true;
}

static bool plain_word(const char *v)
{
    if (!*v)
        return false;
    for (; *v; v++)
        if (!isalnum((unsigned char)*v) && !strchr("._-:/@+", *v))
            return false;
    return true;
}

char *em_log_fields_text(const json_t *fields)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return em_xstrdup("");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)fields, key, value)
    {
        const char *word = json_string_value(value);
        if (word != NULL && plain_word(word)) {
            fprintf(out, " %s=%s", key, word);
            continue;
        }
        char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
        fprintf(out, " %s=%s", key, dumped != NULL ? dumped : "null");
        free(dumped);
    }
    fclose(out);
    return text;
}

/* One line per request, once its answer is on its way. In text, the handler's fields (who
 * called, what was decided) follow as key=value. */
static void log_answer(const struct em_http_call *c)
{
    if (!log_quiet && log_json) {
        log_request_json(c, ms_since(&c->started));
    } else if (!log_quiet) {
        char *fields = em_log_fields_text(c->log_fields);
        fprintf(stderr, "%s %s %u %.1f ms%s\n", c->method, c->log_path, c->status,
                ms_since(&c->started), fields);
        free(fields);
    }
}

static enum MHD_Result queue_answer(struct em_http_call *c)
{
    struct MHD_Response *resp = c->response;
    c->response = NULL;
    if (!resp)
        return MHD_NO;
    if (c->sock)
        sock_enter(&c->srv->reaper, c->sock, SOCK_ANSWERING);
    enum MHD_Result ret = MHD_queue_response(c->connection, c->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result answer(struct em_http_call *c)
{
    enum MHD_Result ret = queue_answer(c);
    log_answer(c);
    return ret;
}

/* The EM's journal: never delayed, nor refused for its declared length before it is read. */
static bool is_exempt(const struct em_http *srv, const char *url)
{
    return srv->set.exempt_path && strcmp(url, srv->set.exempt_path) == 0;
}

/* The TLS facts of a connection, inspected on its first request: the handshake is over by
 * then, and a connection's requests are handled one at a time, so no lock is needed. */
static const struct em_peer *connection_peer(struct MHD_Connection *connection,
                                             struct em_sock *sock)
{
    struct em_peer *peer = &sock->peer;
    if (!peer->inspected) {
        const union MHD_ConnectionInfo *tls =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (tls && tls->tls_session)
            em_tls_inspect(tls->tls_session, peer);
        else
            peer->inspected = true;
    }
    return peer;
}

static struct em_sock *connection_sock(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *ctx =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ctx ? ctx->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct em_http *srv = cls;
    struct reaper *r = &srv->reaper;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct em_sock *sock = em_xmalloc(sizeof *sock);
        memset(sock, 0, sizeof *sock);
        sock->fd = fd ? fd->connect_fd : -1;
        sock->phase = SOCK_WAITING_HEAD;
        clock_gettime(CLOCK_MONOTONIC, &sock->since);
        pthread_mutex_lock(&r->mu);
        sock->next = r->head;
        if (r->head)
            r->head->prev = sock;
        r->head = sock;
        pthread_mutex_unlock(&r->mu);
        *socket_context = sock;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct em_sock *sock = *socket_context;
        pthread_mutex_lock(&r->mu);
        if (sock->prev)
            sock->prev->next = sock->next;
        else
            r->head = sock->next;
        if (sock->next)
            sock->next->prev = sock->prev;
        pthread_mutex_unlock(&r->mu);
        free(sock);
        *socket_context = NULL;
    }
}

/* MHD_OPTION_UNESCAPE_CALLBACK: leave the path as the client sent it. Routing on a decoded
 * path lets `/_em/%6Aournal` reach the journal and `%00` cut a path short. */
static size_t keep_escaped(void *cls, struct MHD_Connection *connection, char *s)
{
    (void)cls;
    (void)connection;
    return strlen(s);
}

/* What the head says about framing, gathered from MHD's parsed fields. */
struct framing {
    unsigned hosts, content_lengths, transfer_encodings;
    bool bad_name, bad_length, bad_coding, bad_line, bad_value;
    const char *first_length;
    const char *line_end; /* where the previous line's text ended in MHD's buffer */
};

static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* MHD 0.9.75 cuts the head into lines in place, in its read buffer, turning the colon and
 * each CR and LF of a line end into NUL, and keeps pointers to the method, target, version
 * and every field's name and value there. It also takes a bare LF as a line end and joins
 * a folded line (obs-fold) to the field before it. So a well-formed head is, from one
 * line's text to the next line's name, exactly two NULs (CR LF), and from the last line's
 * text to the head's end exactly four (CR LF and the blank line): anything else is a bare
 * LF, a NUL inside a line or a folded line, which RFC 9112 §2.2 and §5.2 let a server
 * refuse (and a proxy in front could read differently). */
static bool follows_crlf(const char *line_end, const char *name)
{
    return name == line_end + 2 && !line_end[0] && !line_end[1];
}

static enum MHD_Result look_at_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct framing *f = cls;
    for (const char *p = key; *p; p++)
        if (!is_tchar((unsigned char)*p))
            f->bad_name = true;
    if (!*key)
        f->bad_name = true;
    if (!follows_crlf(f->line_end, key))
        f->bad_line = true;
    /* Between the colon (now NUL) and the value only the blanks MHD skipped. */
    const char *colon = key + strlen(key);
    const char *p = colon + 1;
    while (p < value && (*p == ' ' || *p == '\t'))
        p++;
    if (!value || p != value)
        f->bad_line = true;
    f->line_end = value && p == value ? value + strlen(value) : colon;
    /* RFC 9110 §5.5: no CR, LF, NUL or other control in a value (a bare CR inside one is
     * what a proxy in front could take for a line end). */
    for (const char *v = value; v && *v; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
            f->bad_value = true;
    if (strcasecmp(key, "host") == 0) {
        f->hosts++;
    } else if (strcasecmp(key, "content-length") == 0) {
        if (f->content_lengths++ == 0)
            f->first_length = value;
        if (!value || !*value || strspn(value, "0123456789") != strlen(value))
            f->bad_length = true;
    } else if (strcasecmp(key, "transfer-encoding") == 0) {
        f->transfer_encodings++;
        if (!value || strcasecmp(value, "chunked") != 0)
            f->bad_coding = true;
    }
    return MHD_YES;
}

/* RFC 9110 §5.5: a field value has no leading or trailing blanks; MHD 0.9.75 skips the
 * leading ones only. Trimmed in place, in MHD's buffer where the value lives, so every
 * reader of the field (Version, Accept, Authorization...) sees it as sent minus the blanks. */
static enum MHD_Result trim_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)cls;
    (void)kind;
    (void)key;
    if (value) {
        char *end = (char *)value + strlen(value);
        while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
    }
    return MHD_YES;
}

/* The path of a request target: origin-form as it is; absolute-form (RFC 9112 §3.2.2,
 * which a server must accept) without its scheme and authority; NULL when neither. */
static const char *target_path(const char *target)
{
    if (target[0] == '/')
        return target;
    size_t scheme = strncasecmp(target, "http://", 7) == 0    ? 7
                    : strncasecmp(target, "https://", 8) == 0 ? 8
                                                              : 0;
    if (!scheme || !target[scheme] || target[scheme] == '/')
        return NULL;
    const char *path = strchr(target + scheme, '/');
    /* No path, or a query or fragment before it: no resource this server has. */
    if (!path || strcspn(target + scheme, "?#") < (size_t)(path - target - scheme))
        return NULL;
    return path;
}

/* Why the request must be refused before anything else looks at it, or NULL; *status is
 * the answer's status then. */
static const char *framing_problem(struct MHD_Connection *connection, const char *method,
                                   const char *url, const char *version, unsigned *status)
{
    *status = 400;
    struct framing f;
    memset(&f, 0, sizeof f);
    /* MHD measures the head from the method to just past the blank line. */
    const union MHD_ConnectionInfo *size =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!size)
        return "the request head could not be measured";
    f.line_end = version + strlen(version);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, look_at_field, &f);
    if (f.bad_name)
        return "a header field name is not a token (RFC 9112 §5.1: no space before the colon)";
    const char *head_end = method + size->header_size;
    if (f.bad_line || f.line_end + 4 != head_end || f.line_end[0] || f.line_end[1] ||
        f.line_end[2] || f.line_end[3])
        return "a line of the request head does not end in CRLF (a bare LF or CR, a NUL, or "
               "a folded line)";
    if (f.bad_value)
        return "a header field value has a control character (a CR, a NUL...)";
    if (f.content_lengths && f.transfer_encodings)
        return "Content-Length and Transfer-Encoding together (RFC 9112 §6.3)";
    if (f.content_lengths > 1)
        return "more than one Content-Length";
    if (f.bad_length)
        return "Content-Length is not a decimal number";
    if (f.transfer_encodings > 1 || f.bad_coding)
        return "Transfer-Encoding other than a single 'chunked'";
    /* libmicrohttpd 0.9.75 reads chunk lines and trailers leniently (bare LF line ends,
     * controls in extensions, folded trailers), which a proxy in front could frame
     * differently; every client of this API knows its body's length beforehand. */
    if (f.transfer_encodings) {
        *status = 411;
        return "a chunked body (send Content-Length)";
    }
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 ? f.hosts != 1 : f.hosts > 1)
        return "a request needs exactly one Host field (RFC 9112 §3.2)";
    if (!target_path(url))
        return "the request target is neither an absolute path nor an http(s) absolute URL";
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return "the path has a control character, a space or a non-ASCII byte";
    if (strstr(url, "%00"))
        return "the path has an encoded NUL (%00)";
    MHD_get_connection_values(connection, MHD_HEADER_KIND, trim_value, NULL);
    return NULL;
}

/* 400 (or 411) with a ProblemDetails, and the connection closed after it: what follows a
 * head we could not frame cannot be trusted to be the next request. */
static void refuse_framing(struct em_http_call *c, unsigned status, const char *why)
{
    struct em_response rs;
    memset(&rs, 0, sizeof rs);
    em_response_problem(&rs, status, "%s: %s",
                        status == 411 ? "length required" : "malformed request", why);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(rs.body_len, rs.body, MHD_RESPMEM_MUST_FREE);
    if (resp) {
        rs.body = NULL;
        MHD_add_response_header(resp, "Content-Type", "application/problem+json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    c->response = resp;
    c->status = status;
    em_response_free(&rs);
}

/* MHD_OPTION_URI_LOG_CALLBACK: called once the request line is cut, before the target is
 * split at '?'. The request's state begins here, so it can remember where the target
 * started and how long it looked. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *connection)
{
    struct em_http_call *c = em_xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->srv = cls;
    c->connection = connection;
    c->raw_target = uri;
    c->raw_target_len = strlen(uri);
    return c;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct em_http *srv = cls;
    struct em_http_call *c = *req_cls;
    /* Everything after the framing check (routing, limits, logs) sees the path: an
     * absolute-form target is routed on its path, its scheme and authority ignored. */
    const char *target = url, *path = target_path(target);
    if (path)
        url = path;
    size_t limit = srv->set.body_limit(srv->set.ctx, url);

    if (!c) /* on_request_line() always runs first */
        return MHD_NO;
    if (!c->begun) { /* c comes from on_request_line() */
        c->begun = true;
        c->sock = connection_sock(connection);
        clock_gettime(CLOCK_MONOTONIC, &c->started);
        clock_gettime(CLOCK_REALTIME, &c->received);
        snprintf(c->method, sizeof c->method, "%s", em_shown_method(method));
        char *shown_path = em_redact_path(url); /* no query string or parameters in logs */
        c->log_path = loggable(shown_path);
        free(shown_path);
        if (srv->tls && c->sock)
            c->peer = connection_peer(connection, c->sock);
        *req_cls = c;
        if (c->sock)
            sock_enter(&srv->reaper, c->sock, SOCK_RECEIVING);
        unsigned status;
        const char *bad = framing_problem(connection, method, target, version, &status);
        /* MHD ends the target at the space before the version with a NUL: a shorter
         * string seen when the line was cut means a NUL byte inside the target. */
        if (!bad && target == c->raw_target && version != c->raw_target + c->raw_target_len + 1)
            bad = "the request target has a NUL byte";
        if (bad) {
            refuse_framing(c, status, bad);
            return answer(c);
        }
        /* A declared body over the limit is refused before reading a byte of it. */
        const char *cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && !is_exempt(srv, url)) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || n > limit) {
                c->too_large = true;
                bool may_delay;
                if (!decide(c, url, method, &may_delay))
                    return MHD_YES; /* deferred: answered from elsewhere */
                return answer(c);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->sock)
            sock_add_bytes(&srv->reaper, c->sock, n);
        if (c->too_large)
            return MHD_YES;
        if (n > limit - c->body_len) {
            /* Streamed past the limit: drop what we have, read the rest away, then 413. */
            c->too_large = true;
            free(c->body);
            c->body = NULL;
            c->body_len = 0;
            return MHD_YES;
        }
        c->body = em_xrealloc(c->body, c->body_len + n + 1);
        memcpy(c->body + c->body_len, upload_data, n);
        c->body_len += n;
        c->body[c->body_len] = '\0';
        return MHD_YES;
    }
    if (c->unanswered) /* its deferred answer could not be queued */
        return MHD_NO;
    if (c->sock)
        sock_enter(&srv->reaper, c->sock, SOCK_ANSWERING);
    bool may_delay = false;
    if (!decide(c, url, method, &may_delay))
        return MHD_YES; /* deferred: em_http_answer queues the answer and resumes */
    if (may_delay && srv->opt.delay_ms && !is_exempt(srv, url)) {
        /* The answer is queued before the connection is suspended: once resumed, MHD
         * sends it first. Queued after the resume instead, it is lost whenever MHD reads
         * the end of a half-closed client's stream before calling us again (0.9.75). */
        enum MHD_Result ret = queue_answer(c);
        if (ret == MHD_YES && delay_suspend(srv, c, false))
            return MHD_YES; /* logged by the timer when due */
        log_answer(c);
        return ret;
    }
    return answer(c);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct em_http *srv = cls;
    (void)toe;
    struct em_http_call *c = *req_cls;
    /* The next request's head is due within --header-timeout from now. */
    struct em_sock *sock = connection_sock(connection);
    if (sock)
        sock_enter(&srv->reaper, sock, SOCK_WAITING_HEAD);
    if (!c)
        return;
    if (c->response)
        MHD_destroy_response(c->response);
    json_decref(c->log_fields);
    free(c->body);
    free(c->log_path);
    free(c);
    *req_cls = NULL;
}

/* Binds the listening socket ourselves so the real port (for port 0) is known, and the
 * base URL set, before the first request can arrive. */
int em_listen(const struct em_options *opt, bool *v6, unsigned *bound, char *err, size_t errlen)
{
    char port[8];
    snprintf(port, sizeof port, "%u", opt->port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(opt->host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", opt->host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", opt->host, opt->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    *bound = opt->port;
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0)
        *bound = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                : ((struct sockaddr_in *)&sa)->sin_port);
    return fd;
}

/* TLS 1.2 and 1.3 only, as SOL 013 asks, and only suites with forward secrecy (ECDHE or
 * DHE key exchange; TLS 1.3 always) and an AEAD cipher: no static RSA, no CBC, no SHA-1 MAC. */
static const char tls_priorities[] =
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-PSK:-RSA-PSK:-DHE-PSK:-ECDHE-PSK:"
    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:+AES-256-CCM:+AES-128-CCM:"
    "-MAC-ALL:+AEAD";

/* Every descriptor the hard limit allows: each connection costs one, and running out makes
 * MHD stop accepting anyone. The connection cap is then kept under what is left. */
static unsigned usable_descriptors(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur > 1000000 ? 1000000u : (unsigned)rl.rlim_cur;
}

/* Stops the timer and reaper threads of a server that did not start (or has stopped). */
static void threads_stop(struct em_http *srv)
{
    delay_stop(&srv->delays);
    delay_destroy(&srv->delays);
    reaper_stop(&srv->reaper);
    reaper_destroy(&srv->reaper);
}

struct em_http *em_http_start(const struct em_http_settings *set, const struct em_tls_files *tls,
                              char *err, size_t errlen)
{
    const struct em_options *opt = set->opt;
    bool v6 = false;
    unsigned port;
    /* Descriptors for the listener, the log, the threads' wake-up pipes and libraries. */
    unsigned fds = usable_descriptors();
    unsigned spare = 64 + 2 * opt->threads;
    unsigned max_connections = opt->max_connections;
    if (fds < spare + 16) {
        snprintf(err, errlen, "only %u file descriptors allowed (ulimit -n): too few to serve",
                 fds);
        return NULL;
    }
    if (max_connections > fds - spare)
        max_connections = fds - spare;
    int fd = em_listen(opt, &v6, &port, err, errlen);
    if (fd < 0)
        return NULL;
    if (set->bound)
        set->bound(set->ctx, port);
    log_quiet = opt->quiet;
    if (set->program)
        log_program = set->program;
    struct em_http *srv = em_xmalloc(sizeof *srv);
    memset(srv, 0, sizeof *srv);
    srv->set = *set;
    srv->opt = *opt;
    srv->port = port;
    srv->listen_fd = -1;
    srv->tls = tls != NULL;
    if (delay_start(&srv->delays) < 0 || reaper_start(srv) < 0) {
        snprintf(err, errlen, "cannot start the timer threads");
        close(fd);
        threads_stop(srv);
        free(srv);
        return NULL;
    }
    /* ITC: so that em_http_quiesce can take the listening socket back from the pool. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (v6)
        flags |= MHD_USE_IPv6;
    /* Unused TLS options are passed as MHD_OPTION_ARRAY entries that end the list early. */
    struct MHD_OptionItem tls_options[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, tls ? tls->cert : NULL},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, tls ? tls->key : NULL},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls_priorities},
        {tls && tls->ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, tls ? tls->ca : NULL},
        {MHD_OPTION_END, 0, NULL}};
    if (tls)
        flags |= MHD_USE_TLS;
    else
        tls_options[0].option = MHD_OPTION_END;
    /* MHD's own strict level (1) would refuse a missing Host, but its error answers send
     * their header block twice (0.9.75), so framing_problem() judges that, and the rest. */
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)opt->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)opt->idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        opt->max_per_client, MHD_OPTION_STRICT_FOR_CLIENT, (int)0, MHD_OPTION_UNESCAPE_CALLBACK,
        keep_escaped, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, srv, MHD_OPTION_ARRAY,
        tls_options, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server on %s:%u", opt->host, port);
        close(fd);
        threads_stop(srv);
        free(srv);
        return NULL;
    }
    return srv;
}

unsigned em_http_port(const struct em_http *srv)
{
    return srv->port;
}

void em_http_defer(struct em_http_call *call)
{
    /* Suspended before the handler hands the call on, so that its answer is always queued on
     * a suspended connection, and its resume follows the suspend. */
    MHD_suspend_connection(call->connection);
}

void em_http_answer(struct em_http_call *c, struct em_response *rs)
{
    struct em_http *srv = c->srv;
    bool may_delay = rs->may_delay;
    prepare_response(c, rs);
    /* Queued while still suspended (MHD allows that from any thread), then resumed. Queued
     * after the resume instead, MHD 0.9.75 would drop it for a client that half-closed. */
    if (queue_answer(c) != MHD_YES)
        c->unanswered = true; /* MHD calls on_request again once resumed: it closes */
    else if (may_delay && srv->opt.delay_ms && delay_suspend(srv, c, true))
        return; /* logged and resumed by the timer when due */
    log_answer(c);
    MHD_resume_connection(c->connection);
}

void em_http_quiesce(struct em_http *srv)
{
    if (!srv || srv->listen_fd >= 0)
        return;
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        srv->listen_fd = fd;
}

void em_http_stop(struct em_http *srv)
{
    if (!srv)
        return;
    delay_stop(&srv->delays);
    /* The program answers what it deferred before MHD stops: MHD must not be stopped with
     * any connection suspended. */
    if (srv->set.stopping)
        srv->set.stopping(srv->set.ctx);
    MHD_stop_daemon(srv->daemon);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    reaper_stop(&srv->reaper);
    http_log_flush(true);
    delay_destroy(&srv->delays);
    reaper_destroy(&srv->reaper);
    free(srv);
}

/* A line from the program through the layer's log: --quiet, the log format and the rate
 * limit of the HTTP layer's messages apply (a client may be able to cause it once per
 * request), the text made valid UTF-8, bounded, and its control characters escaped as \xNN,
 * so that request data quoted in a message can neither forge a line nor break a JSON one. */
void em_http_log_error(const char *prefix, const char *message)
{
    if (log_quiet)
        return;
    size_t len = strlen(message);
    char *utf8 = em_utf8_sanitize(message, len > 400 ? 400 : len, &len);
    char line[2048];
    size_t n = (size_t)snprintf(line, sizeof line, "%s", prefix);
    for (size_t i = 0; i < len && n + 5 < sizeof line; i++) {
        unsigned char ch = (unsigned char)utf8[i];
        if (ch < 0x20 || ch == 0x7f)
            n += (size_t)snprintf(line + n, sizeof line - n, "\\x%02x", ch);
        else
            line[n++] = (char)ch;
    }
    line[n] = '\0';
    free(utf8);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&http_log_limit.mu);
    http_log_report_suppressed(now.tv_sec, false);
    if (now.tv_sec != http_log_limit.second) {
        http_log_limit.second = now.tv_sec;
        http_log_limit.printed = 0;
    }
    if (http_log_limit.printed >= EM_HTTP_LOG_PER_SECOND) {
        http_log_limit.suppressed++;
    } else if (log_json) {
        http_log_limit.printed++;
        char stamp[40];
        rfc3339_now(stamp);
        json_t *o = json_pack("{s:s, s:s, s:s}", "time", stamp, "level", "error", "message", line);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text != NULL)
            fprintf(stderr, "%s\n", text);
        free(text);
        json_decref(o);
    } else {
        http_log_limit.printed++;
        fprintf(stderr, "%s: %s\n", log_program, line);
    }
    pthread_mutex_unlock(&http_log_limit.mu);
}

bool em_http_log_is_json(void)
{
    return log_json;
}
