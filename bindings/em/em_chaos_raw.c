/*
 * The raw-socket side of `lcmcoord em --chaos`: a deliberately hand-written server for the
 * misbehaviours libmicrohttpd is too well-behaved to produce (a body cut short, a reset in
 * the middle of the headers, one byte per second, ten thousand headers, bytes that are not
 * TLS on an https:// URL...). It is not an HTTP server: it reads a request head up to the
 * blank line (and a declared body, so that closing does not turn into a reset by
 * accident), ignores what it says, and writes the broken bytes the chosen misbehaviour
 * calls for. One thread per connection; every wait also watches a stop pipe, so SIGTERM
 * ends even a connection that is being held open forever, and every thread is joined.
 */
#define _GNU_SOURCE /* POLLRDHUP: notice a client that hangs up while we pause */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "em.h"

#define HEAD_MAX     (64 * 1024)
#define BODY_DRAIN   (16 * 1024 * 1024)
#define HUGE_BODY    (100ull * 1024 * 1024)
#define STREAM_CHUNK (64 * 1024)

struct em_chaos_conn {
    struct em_chaos_server *srv;
    int fd;
    unsigned long serial;
    pthread_t thread;
    atomic_bool done;
    struct em_chaos_conn *next;
};

struct em_chaos_server {
    const struct em_chaos *chaos;
    bool quiet;
    int listen_fd;
    int stop_pipe[2]; /* readable once stopping */
    pthread_t acceptor;
    pthread_mutex_t mu;
    struct em_chaos_conn *conns;
    unsigned long serial;
};

/* ---- helpers the misbehaviours are written with ---- */

/* Waits up to ms (-1: forever) for fd to be ready for `events`; 1 ready, 0 timed out,
 * -1 stopping or the socket failed. */
static int wait_fd(struct em_chaos_conn *c, short events, int ms)
{
    struct pollfd p[2] = {{c->fd, events, 0}, {c->srv->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        int n = poll(p, 2, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[1].revents)
            return -1;
        if (n == 0)
            return 0;
        if (p[0].revents & (events | POLLHUP | POLLERR))
            return (p[0].revents & events) ? 1 : -1;
    }
}

/* Sleeps ms unless stopping; false when stopping or the client hung up. */
static bool pause_ms(struct em_chaos_conn *c, int ms)
{
    struct pollfd p[2] = {{c->fd, POLLRDHUP, 0}, {c->srv->stop_pipe[0], POLLIN, 0}};
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = (long)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000L;
        if (left <= 0)
            return true;
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 0)
            return false; /* stop pipe, or the peer closed (POLLRDHUP/HUP/ERR) */
    }
}

static bool send_all(struct em_chaos_conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(c, POLLOUT, -1) <= 0)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static bool send_str(struct em_chaos_conn *c, const char *s)
{
    return send_all(c, s, strlen(s));
}

static bool sendf(struct em_chaos_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool sendf(struct em_chaos_conn *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < sizeof buf && send_all(c, buf, (size_t)n);
}

/* The close that ends the connection will be an RST instead of a FIN. */
static void arm_reset(struct em_chaos_conn *c)
{
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* Keeps the connection open until the client hangs up or the server stops. */
static void hold(struct em_chaos_conn *c)
{
    while (pause_ms(c, 60000))
        ;
}

/* Reads what the client sends for up to ms (a TLS ClientHello, say), so that closing
 * afterwards is a FIN, not a reset for unread data. */
static void swallow(struct em_chaos_conn *c, int ms)
{
    char buf[4096];
    while (wait_fd(c, POLLIN, ms) == 1) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n <= 0)
            return;
        ms = 50; /* the rest of a flight follows at once */
    }
}

/* Content-Length of a request head, or 0. */
static size_t content_length(const char *head)
{
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "content-length:", 15) == 0) {
            unsigned long long n = strtoull(p + 17, NULL, 10);
            return n > BODY_DRAIN ? BODY_DRAIN : (size_t)n;
        }
    }
    return 0;
}

/* Reads one request head and its declared body; false when the client went away first.
 * line receives the request line, for the log. */
static bool read_request(struct em_chaos_conn *c, char *line, size_t linelen)
{
    char *head = em_xmalloc(HEAD_MAX + 1);
    size_t have = 0;
    char *end = NULL;
    bool ok = false;
    while (!end) {
        if (have == HEAD_MAX || wait_fd(c, POLLIN, -1) <= 0)
            goto done;
        ssize_t n = recv(c->fd, head + have, HEAD_MAX - have, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            goto done;
        }
        have += (size_t)n;
        head[have] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t llen = strcspn(head, "\r\n");
    if (llen >= linelen)
        llen = linelen - 1;
    for (size_t i = 0; i < llen; i++)
        line[i] = head[i] >= 0x20 && head[i] < 0x7f ? head[i] : '?';
    line[llen] = '\0';
    *end = '\0';
    size_t body = content_length(head);
    size_t already = have - (size_t)(end + 4 - head);
    body = already >= body ? 0 : body - already;
    while (body) {
        char buf[4096];
        if (wait_fd(c, POLLIN, -1) <= 0)
            goto done;
        ssize_t n = recv(c->fd, buf, body < sizeof buf ? body : sizeof buf, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            goto done;
        }
        body -= (size_t)n;
    }
    ok = true;
done:
    free(head);
    return ok;
}

/* ---- the misbehaviours ---- */

/* A complete, valid LcmCoord (CONTINUE): what the answers that are only broken in their
 * framing carry, so that the framing is the only thing wrong with them. */
static const char lcmcoord_body[] =
    "{\"id\":\"c4a05c1f-0000-4000-8000-000000000001\",\"coordinationResult\":\"CONTINUE\","
    "\"vnfInstanceId\":\"chaos-vnf-instance\",\"vnfLcmOpOccId\":\"chaos-op-occ\","
    "\"lcmOperationType\":\"CHANGE_VNFPKG\",\"coordinationActionName\":\"prv.chaos\","
    "\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"http://vnfm.invalid/op\"},"
    "\"vnfInstance\":{\"href\":\"http://vnfm.invalid/vi\"}}}";

static bool send_head(struct em_chaos_conn *c, const char *status, size_t length)
{
    return sendf(c,
                 "HTTP/1.1 %s\r\nVersion: 1.0.0\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 status, length);
}

static void truncated_body(struct em_chaos_conn *c)
{
    size_t n = sizeof lcmcoord_body - 1;
    if (send_head(c, "201 Created", n + 1000))
        send_all(c, lcmcoord_body, n / 2);
}

static void short_content_length(struct em_chaos_conn *c)
{
    size_t n = sizeof lcmcoord_body - 1;
    if (send_head(c, "201 Created", n / 2))
        send_all(c, lcmcoord_body, n);
}

static void overlong_body(struct em_chaos_conn *c)
{
    size_t n = sizeof lcmcoord_body - 1;
    if (send_head(c, "201 Created", n) && send_all(c, lcmcoord_body, n))
        send_str(c, "{\"coordinationResult\":\"ABORT\"} and then some more bytes\r\n\r\n");
}

static void chunked_garbage(struct em_chaos_conn *c)
{
    send_str(c, "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                "zz; not-hex\r\n{\"id\":\r\n-5\r\nxx\r\n0\r\n\r\n");
}

static void reset_mid_headers(struct em_chaos_conn *c)
{
    send_str(c, "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\nContent-Ty");
    pause_ms(c, 50); /* let the partial head reach the client before the reset */
    arm_reset(c);
}

static void reset_mid_body(struct em_chaos_conn *c)
{
    size_t n = sizeof lcmcoord_body - 1;
    if (send_head(c, "201 Created", n) && send_all(c, lcmcoord_body, n / 2))
        pause_ms(c, 50);
    arm_reset(c);
}

static void empty_reply(struct em_chaos_conn *c)
{
    (void)c; /* the request was read; closing now is the whole answer */
}

static void drip(struct em_chaos_conn *c)
{
    char resp[1024];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     sizeof lcmcoord_body - 1, lcmcoord_body);
    for (int i = 0; i < n; i++)
        if (!send_all(c, resp + i, 1) || !pause_ms(c, 1000))
            return;
}

static void never_answer(struct em_chaos_conn *c)
{
    hold(c);
}

static void many_headers(struct em_chaos_conn *c)
{
    if (!send_str(c,
                  "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\nContent-Type: application/json\r\n"))
        return;
    for (int i = 0; i < 10000; i++)
        if (!sendf(c, "X-Chaos-%05d: %d\r\n", i, i))
            return;
    if (sendf(c, "Content-Length: %zu\r\n\r\n", sizeof lcmcoord_body - 1))
        send_str(c, lcmcoord_body);
}

static void long_header_line(struct em_chaos_conn *c)
{
    if (!send_str(c, "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\nContent-Type: application/json\r\n"
                     "X-Chaos-Long: "))
        return;
    char *value = em_xmalloc(64 * 1024);
    memset(value, 'a', 64 * 1024);
    bool ok = send_all(c, value, 64 * 1024);
    free(value);
    if (ok && sendf(c, "\r\nContent-Length: %zu\r\n\r\n", sizeof lcmcoord_body - 1))
        send_str(c, lcmcoord_body);
}

static void endless_headers(struct em_chaos_conn *c)
{
    if (!send_str(c, "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\n"))
        return;
    char block[STREAM_CHUNK];
    size_t used = 0;
    for (unsigned i = 0; used + 32 < sizeof block; i++)
        used += (size_t)snprintf(block + used, sizeof block - used, "X-More-%08u: yes\r\n", i);
    /* Bounded at 1 GiB in case a client really swallows it all. */
    for (int i = 0; i < 16384; i++)
        if (!send_all(c, block, used))
            return;
}

/* A body that is valid JSON as far as it goes: an object whose one string never ends. */
static bool stream_padding(struct em_chaos_conn *c, unsigned long long total, bool chunked)
{
    static const char start[] = "{\"id\":\"huge\",\"coordinationResult\":\"CONTINUE\",\"pad\":\"";
    char *block = em_xmalloc(STREAM_CHUNK);
    memset(block, 'x', STREAM_CHUNK);
    bool ok = chunked ? sendf(c, "%zx\r\n%s\r\n", sizeof start - 1, start) : send_str(c, start);
    unsigned long long sent = sizeof start - 1;
    while (ok && sent < total) {
        size_t n = total - sent < STREAM_CHUNK ? (size_t)(total - sent) : STREAM_CHUNK;
        ok = chunked ? sendf(c, "%zx\r\n", n) && send_all(c, block, n) && send_str(c, "\r\n")
                     : send_all(c, block, n);
        sent += n;
    }
    free(block);
    return ok;
}

static void huge_body(struct em_chaos_conn *c)
{
    if (send_head(c, "201 Created", (size_t)HUGE_BODY))
        stream_padding(c, HUGE_BODY, false);
}

static void huge_body_chunked(struct em_chaos_conn *c)
{
    if (send_str(c, "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n") &&
        stream_padding(c, HUGE_BODY, true))
        send_str(c, "0\r\n\r\n");
}

static void tls_plain_http(struct em_chaos_conn *c)
{
    static const char page[] = "<html><body><h1>400 Bad Request</h1>This port speaks plain "
                               "HTTP.</body></html>\n";
    swallow(c, 1000);
    if (sendf(c,
              "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n",
              sizeof page - 1))
        send_str(c, page);
}

static void tls_garbage(struct em_chaos_conn *c)
{
    unsigned char junk[4096];
    uint32_t x = 0x9e3779b9u ^ (uint32_t)c->serial;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (unsigned char)x;
    }
    junk[0] = 0x00; /* no TLS record type starts with 0 */
    swallow(c, 1000);
    send_all(c, junk, sizeof junk);
}

static void not_http(struct em_chaos_conn *c)
{
    send_str(c, "SSH-2.0-OpenSSH_9.6 chaos\r\nProtocol mismatch.\r\n");
}

static void status_999(struct em_chaos_conn *c)
{
    send_str(c, "HTTP/1.1 999 Chaos Reigns\r\nVersion: 1.0.0\r\nContent-Length: 0\r\n\r\n");
}

static void endless_continue(struct em_chaos_conn *c)
{
    while (send_str(c, "HTTP/1.1 100 Continue\r\n\r\n") && pause_ms(c, 10))
        ;
}

static void missing_content_type(struct em_chaos_conn *c)
{
    if (sendf(c, "HTTP/1.1 201 Created\r\nVersion: 1.0.0\r\nContent-Length: %zu\r\n\r\n",
              sizeof lcmcoord_body - 1))
        send_str(c, lcmcoord_body);
}

/* name, description, function, reads the request first, advertises https. */
#define RAW(name, desc, fn, reads, https)                                                          \
    {                                                                                              \
        name, EM_CHAOS_RAW, desc, fn, reads, https, NULL, 0                                        \
    }

const struct em_chaos em_chaos_raw_table[] = {
    RAW("truncated-body", "201 whose Content-Length is 1000 bytes more than is sent, then close",
        truncated_body, true, false),
    RAW("short-content-length",
        "201 whose Content-Length covers half the JSON, the rest follows anyway",
        short_content_length, true, false),
    RAW("overlong-body", "201 with a valid LcmCoord, then bytes beyond its Content-Length",
        overlong_body, true, false),
    RAW("chunked-garbage", "201 Transfer-Encoding: chunked with chunk sizes that are not hex",
        chunked_garbage, true, false),
    RAW("reset-mid-headers", "half a status line and header, then a TCP reset", reset_mid_headers,
        true, false),
    RAW("reset-mid-body", "full head, half the body, then a TCP reset", reset_mid_body, true,
        false),
    RAW("empty-reply", "reads the request, closes without a byte", empty_reply, true, false),
    RAW("drip", "a valid 201 sent one byte per second", drip, true, false),
    RAW("never-answer", "accepts the connection, never reads nor answers", never_answer, false,
        false),
    RAW("many-headers", "a valid 201 with 10,000 extra header fields (about 200 KB)", many_headers,
        true, false),
    RAW("long-header-line", "a valid 201 with one 64 KiB header line", long_header_line, true,
        false),
    RAW("endless-headers", "a status line, then header fields without end", endless_headers, true,
        false),
    RAW("huge-body", "201 declaring and streaming a 100 MB body (never held in memory)", huge_body,
        true, false),
    RAW("huge-body-chunked", "201 streaming a 100 MB chunked body", huge_body_chunked, true, false),
    RAW("tls-plain-http", "an https:// URL whose server answers in plain HTTP", tls_plain_http,
        false, true),
    RAW("tls-garbage", "an https:// URL whose server answers the ClientHello with random bytes",
        tls_garbage, false, true),
    RAW("not-http", "answers with an SSH banner instead of HTTP", not_http, true, false),
    RAW("status-999", "HTTP/1.1 999 (no such status)", status_999, true, false),
    RAW("endless-100-continue", "100 Continue every 10 ms, never a final status", endless_continue,
        true, false),
    RAW("missing-content-type", "a valid 201 LcmCoord without Content-Type", missing_content_type,
        true, false),
};
const size_t em_chaos_raw_count = sizeof em_chaos_raw_table / sizeof em_chaos_raw_table[0];

/* ---- the server ---- */

static void *conn_thread(void *arg)
{
    struct em_chaos_conn *c = arg;
    const struct em_chaos *chaos = c->srv->chaos;
    char line[200] = "";
    bool go = !chaos->reads_request || read_request(c, line, sizeof line);
    if (!c->srv->quiet) {
        flockfile(stderr);
        fprintf(stderr, "chaos %s: connection %lu%s%s\n", chaos->name, c->serial,
                line[0] ? ": " : "", line);
        funlockfile(stderr);
    }
    if (go)
        chaos->run(c);
    close(c->fd);
    atomic_store(&c->done, true);
    return NULL;
}

/* Joins the connections that have finished; with all, every one (at shutdown). */
static void reap(struct em_chaos_server *srv, bool all)
{
    pthread_mutex_lock(&srv->mu);
    struct em_chaos_conn **link = &srv->conns;
    while (*link) {
        struct em_chaos_conn *c = *link;
        if (all || atomic_load(&c->done)) {
            *link = c->next;
            pthread_join(c->thread, NULL);
            free(c);
        } else {
            link = &c->next;
        }
    }
    pthread_mutex_unlock(&srv->mu);
}

static void *accept_thread(void *arg)
{
    struct em_chaos_server *srv = arg;
    for (;;) {
        struct pollfd p[2] = {{srv->listen_fd, POLLIN, 0}, {srv->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        reap(srv, false);
        struct em_chaos_conn *c = em_xmalloc(sizeof *c);
        memset(c, 0, sizeof *c);
        c->srv = srv;
        c->fd = fd;
        atomic_init(&c->done, false);
        pthread_mutex_lock(&srv->mu);
        c->serial = ++srv->serial;
        if (pthread_create(&c->thread, NULL, conn_thread, c) != 0) {
            pthread_mutex_unlock(&srv->mu);
            close(fd);
            free(c);
            continue;
        }
        c->next = srv->conns;
        srv->conns = c;
        pthread_mutex_unlock(&srv->mu);
    }
    return NULL;
}

struct em_chaos_server *em_chaos_server_start(const struct em_chaos *chaos,
                                              const struct em_options *opt, char *base_url,
                                              size_t base_len, char *err, size_t errlen)
{
    unsigned port;
    bool v6 = false;
    int fd = em_listen(opt, &v6, &port, err, errlen);
    if (fd < 0)
        return NULL;
    struct em_chaos_server *srv = em_xmalloc(sizeof *srv);
    memset(srv, 0, sizeof *srv);
    srv->chaos = chaos;
    srv->quiet = opt->quiet;
    srv->listen_fd = fd;
    pthread_mutex_init(&srv->mu, NULL);
    if (pipe(srv->stop_pipe) < 0 || pthread_create(&srv->acceptor, NULL, accept_thread, srv)) {
        snprintf(err, errlen, "cannot start the chaos server: %s", strerror(errno));
        close(fd);
        pthread_mutex_destroy(&srv->mu);
        free(srv);
        return NULL;
    }
    snprintf(base_url, base_len, "%s://%s%s%s:%u", chaos->https ? "https" : "http", v6 ? "[" : "",
             opt->host, v6 ? "]" : "", port);
    return srv;
}

void em_chaos_server_stop(struct em_chaos_server *srv)
{
    if (!srv)
        return;
    /* Closing the write end makes the read end readable for every poll at once. */
    close(srv->stop_pipe[1]);
    pthread_join(srv->acceptor, NULL);
    reap(srv, true);
    close(srv->stop_pipe[0]);
    close(srv->listen_fd);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
