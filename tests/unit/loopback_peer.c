/*
 * The loopback HTTP peer of loopback_peer.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loopback_peer.h"

double time_factor(void)
{
    const char *text = getenv("LCMCOORD_TIME_FACTOR");
    double f = text ? atof(text) : 1;
    return f >= 1 ? f : 1;
}

void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- the peer --------------------------------------------------------------------------
 * GET /delay/MS answers 200 "ok" after MS milliseconds; GET /hold never answers and reports
 * (hold_reached, then hold_saw_eof) when the request came and when the client closed. */

typedef struct connection {
    peer *p;
    int fd;
    int slot; /* in p->connections */
} connection;

static void *serve_connection(void *arg)
{
    connection *c = arg;
    peer *p = c->p;
    char request[4096];
    size_t got = 0;
    while (got < sizeof request - 1) {
        ssize_t n = recv(c->fd, request + got, sizeof request - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        request[got] = '\0';
        if (strstr(request, "\r\n\r\n"))
            break;
    }
    request[got] = '\0';
    int ms = 0;
    if (sscanf(request, "GET /delay/%d", &ms) == 1) {
        sleep_seconds(ms / 1000.0);
        const char *answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        ssize_t ignored = send(c->fd, answer, strlen(answer), MSG_NOSIGNAL);
        (void)ignored;
    } else if (strncmp(request, "GET /hold", 9) == 0) {
        pthread_mutex_lock(&p->lock);
        p->hold_reached = 1;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        pthread_mutex_lock(&p->lock);
        if (p->on_hold && p->engine)
            assert_int_equal(lcmc_engine_post(p->engine, p->on_hold, p->on_hold_userdata), LCMC_OK);
        pthread_mutex_unlock(&p->lock);
        /* The client closing the connection ends the stream: recv returns 0. */
        struct timeval tv = {(time_t)(10 * time_factor()), 0};
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char sink[256];
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        pthread_mutex_lock(&p->lock);
        p->hold_saw_eof = n == 0;
        pthread_cond_broadcast(&p->changed);
        if (p->on_hold && p->engine)
            lcmc_engine_stop(p->engine);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    p->connections[c->slot] = -1;
    close(c->fd);
    p->live--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    free(c);
    return NULL;
}

static void *accept_connections(void *arg)
{
    peer *p = arg;
    for (;;) {
        int fd = accept(p->listener, NULL, NULL);
        if (fd < 0)
            return NULL; /* the listener was shut down */
        connection *c = malloc(sizeof *c);
        assert_non_null(c);
        c->p = p;
        c->fd = fd;
        c->slot = -1;
        pthread_mutex_lock(&p->lock);
        for (int i = 0; i < (int)(sizeof p->connections / sizeof p->connections[0]); i++)
            if (p->connections[i] < 0) {
                c->slot = i;
                p->connections[i] = fd;
                p->live++;
                break;
            }
        pthread_mutex_unlock(&p->lock);
        if (c->slot < 0) { /* more at once than any test makes: refused */
            close(fd);
            free(c);
            continue;
        }
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, serve_connection, c), 0);
        pthread_detach(t);
    }
}

peer *peer_start(void)
{
    peer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    for (size_t i = 0; i < sizeof p->connections / sizeof p->connections[0]; i++)
        p->connections[i] = -1;
    p->listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->listener >= 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->listener, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(p->listener, 128), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(p->listener, (struct sockaddr *)&addr, &len), 0);
    p->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&p->acceptor, NULL, accept_connections, p), 0);
    return p;
}

void peer_stop(peer *p)
{
    shutdown(p->listener, SHUT_RDWR);
    close(p->listener);
    pthread_join(p->acceptor, NULL);
    /* Ends the connections still served (a /hold waits for its client) and waits for their
     * threads: none may touch the peer or the engine afterwards. */
    pthread_mutex_lock(&p->lock);
    p->engine = NULL;
    p->on_hold = NULL;
    for (size_t i = 0; i < sizeof p->connections / sizeof p->connections[0]; i++)
        if (p->connections[i] >= 0)
            shutdown(p->connections[i], SHUT_RDWR);
    while (p->live > 0)
        pthread_cond_wait(&p->changed, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    free(p);
}

void peer_url(const peer *p, const char *path, char *out, size_t size)
{
    snprintf(out, size, "http://127.0.0.1:%d%s", p->port, path);
}
