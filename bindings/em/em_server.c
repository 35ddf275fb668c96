/*
 * libmicrohttpd glue for the EM simulator: collects each request (headers, body up to the
 * limit), hands it to em_handle() and sends the answer, logging one line per request.
 * MHD runs a thread pool over epoll; a request answered late (--delay) is suspended, not
 * slept on, and a single timer thread resumes it when due, so a stalled answer ties up
 * neither a worker nor shutdown (which resumes everything still waiting before stopping).
 * Over HTTPS each connection carries what its TLS session says about the client (looked
 * at once, on its first request), for the protocol logic to judge.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "em.h"
#include "subcommands.h"

struct em_conn;

/* Suspended connections waiting for their --delay to run out. */
struct delay_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct em_conn *head;
    bool stopping;
    bool started;
    pthread_t thread;
};

struct em_server {
    struct em *em;
    bool tls;
    struct MHD_Daemon *daemon;
    unsigned port;
    struct delay_queue delays;
};

/* Per-request state, from the first callback to MHD's completion notice. */
struct em_conn {
    struct em_server *srv;
    const struct em_peer *peer; /* the connection's, over HTTPS */
    struct MHD_Connection *connection;
    struct timespec started;  /* CLOCK_MONOTONIC, for the log line */
    struct timespec received; /* CLOCK_REALTIME, for the journal */
    char *body;
    size_t body_len;
    bool too_large;
    struct MHD_Response *response; /* decided, waiting to be queued */
    unsigned status;
    char *log_path;
    char method[16];
    struct timespec due; /* when suspended */
    struct em_conn *next;
};

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
        struct em_conn *due = NULL, **link = &q->head;
        struct timespec next = {0, 0};
        bool have_next = false;
        while (*link) {
            struct em_conn *c = *link;
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
                struct em_conn *c = due;
                due = c->next;
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
    struct em_conn *pending = q->head;
    q->head = NULL;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    while (pending) {
        struct em_conn *c = pending;
        pending = c->next;
        MHD_resume_connection(c->connection);
    }
}

static void delay_destroy(struct delay_queue *q)
{
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

/* Suspends c until its delay runs out; false when shutting down (answer now instead). */
static bool delay_suspend(struct em_server *srv, struct em_conn *c)
{
    struct delay_queue *q = &srv->delays;
    unsigned long ms = srv->em->opt.delay_ms;
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
    MHD_suspend_connection(c->connection);
    c->next = q->head;
    q->head = c;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
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

static void decide(struct em_conn *c, const char *url, const char *method)
{
    struct em_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.path = url;
    rq.body = c->body;
    rq.body_len = c->body_len;
    rq.body_too_large = c->too_large;
    rq.received = c->received;
    rq.peer = c->peer;
    MHD_get_connection_values(c->connection, MHD_HEADER_KIND, collect_header, &rq.headers);

    struct em_response rs;
    em_handle(c->srv->em, &rq, &rs);
    em_headers_free(&rq.headers);

    /* MHD frees the body with free() once sent; an empty one still needs a response. A
     * streamed body (the journal) is read chunk by chunk, never copied whole. */
    struct MHD_Response *resp =
        rs.stream_read ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                           rs.stream_read, rs.stream_ctx,
                                                           rs.stream_free)
        : rs.body_len ? MHD_create_response_from_buffer(rs.body_len, rs.body, MHD_RESPMEM_MUST_FREE)
                      : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (rs.stream_read && resp)
        rs.stream_ctx = NULL; /* MHD frees it now, even if the response is never sent */
    if (rs.body_len)
        rs.body = NULL;
    for (size_t i = 0; resp && i < rs.headers.n; i++)
        if (MHD_add_response_header(resp, rs.headers.v[i].name, rs.headers.v[i].value) != MHD_YES)
            fprintf(stderr, "lcmcoord em: header '%s' refused by the HTTP library\n",
                    rs.headers.v[i].name);
    c->response = resp;
    c->status = rs.status;
    em_response_free(&rs);
}

/* `lcmcoord em --log-format json` (the option is taken by the program's dispatcher, main.c):
 * one JSON object per request for a log collector. Set once before the server starts. */
static bool log_json;

void lcmc_em_set_log_json(int on)
{
    log_json = on != 0;
}

/* The request line as JSON: {time, method, path, status, ms}; time is RFC 3339 UTC. */
static void log_request_json(const struct em_conn *c, double ms)
{
    struct timespec now;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", now.tv_nsec / 1000000L);
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:f}", "time", stamp, "method", c->method, "path",
                          c->log_path, "status", (int)c->status, "ms", ms);
    char *line = o != NULL
                     ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))
                     : NULL;
    if (line != NULL)
        fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(o);
}

static enum MHD_Result answer(struct em_conn *c)
{
    struct MHD_Response *resp = c->response;
    c->response = NULL;
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c->connection, c->status, resp);
    MHD_destroy_response(resp);
    if (!c->srv->em->opt.quiet && log_json)
        log_request_json(c, ms_since(&c->started));
    else if (!c->srv->em->opt.quiet)
        fprintf(stderr, "%s %s %u %.1f ms\n", c->method, c->log_path, c->status,
                ms_since(&c->started));
    return ret;
}

static bool is_journal(const char *url)
{
    return strcmp(url, EM_JOURNAL_PATH) == 0;
}

/* The TLS facts of a connection, inspected on its first request: the handshake is over by
 * then, and a connection's requests are handled one at a time, so no lock is needed. */
static const struct em_peer *connection_peer(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *ctx =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct em_peer *peer = ctx ? ctx->socket_context : NULL;
    if (!peer)
        return NULL;
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

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)connection;
    const struct em_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED && srv->tls) {
        struct em_peer *peer = em_xmalloc(sizeof *peer);
        memset(peer, 0, sizeof *peer);
        *socket_context = peer;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    struct em_server *srv = cls;
    struct em_conn *c = *req_cls;
    size_t limit = em_body_limit(srv->em, url);

    if (!c) {
        c = em_xmalloc(sizeof *c);
        memset(c, 0, sizeof *c);
        c->srv = srv;
        c->connection = connection;
        clock_gettime(CLOCK_MONOTONIC, &c->started);
        clock_gettime(CLOCK_REALTIME, &c->received);
        snprintf(c->method, sizeof c->method, "%s", method);
        for (char *p = c->method; *p; p++)
            if (*p < 0x21 || *p > 0x7e)
                *p = '?';
        char *shown_path = em_redact_path(url); /* no query string or userinfo in logs */
        c->log_path = loggable(shown_path);
        free(shown_path);
        if (srv->tls)
            c->peer = connection_peer(connection);
        *req_cls = c;
        /* A declared body over the limit is refused before reading a byte of it. */
        const char *cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && !is_journal(url)) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || n > limit) {
                c->too_large = true;
                decide(c, url, method);
                return answer(c);
            }
        }
        return MHD_YES;
    }
    if (c->response) /* resumed after --delay */
        return answer(c);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
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
    decide(c, url, method);
    if (srv->em->opt.delay_ms && !is_journal(url) && delay_suspend(srv, c))
        return MHD_YES;
    return answer(c);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    struct em_conn *c = *req_cls;
    if (!c)
        return;
    if (c->response)
        MHD_destroy_response(c->response);
    free(c->body);
    free(c->log_path);
    free(c);
    *req_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    fprintf(stderr, "lcmcoord em: http: %s\n", msg);
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

/* TLS 1.2 and 1.3 only, as SOL 013 asks; GnuTLS's NORMAL set otherwise. */
static const char tls_priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

struct em_server *em_server_start(struct em *em, const struct em_tls_files *tls, char *err,
                                  size_t errlen)
{
    bool v6 = false;
    unsigned port;
    int fd = em_listen(&em->opt, &v6, &port, err, errlen);
    if (fd < 0)
        return NULL;
    em_set_base_url(em, port);
    struct em_server *srv = em_xmalloc(sizeof *srv);
    memset(srv, 0, sizeof *srv);
    srv->em = em;
    srv->port = port;
    srv->tls = tls != NULL;
    if (delay_start(&srv->delays) < 0) {
        snprintf(err, errlen, "cannot start the delay timer thread");
        close(fd);
        free(srv);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
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
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)em->opt.threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)300, MHD_OPTION_ARRAY, tls_options,
        MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server on %s:%u", em->opt.host, port);
        close(fd);
        delay_stop(&srv->delays);
        delay_destroy(&srv->delays);
        free(srv);
        return NULL;
    }
    return srv;
}

unsigned em_server_port(const struct em_server *srv)
{
    return srv->port;
}

void em_server_stop(struct em_server *srv)
{
    if (!srv)
        return;
    delay_stop(&srv->delays);
    MHD_stop_daemon(srv->daemon);
    delay_destroy(&srv->delays);
    free(srv);
}
