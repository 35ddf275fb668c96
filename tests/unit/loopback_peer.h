/*
 * A small HTTP peer on 127.0.0.1 for the C tests of the asynchronous API (test_engine_async,
 * test_lua_tasks): one thread per connection. GET /delay/MS answers 200 "ok" after MS
 * milliseconds; GET /hold never answers: it posts `on_hold` to the engine once the request
 * came, waits for the client to close the connection (recording hold_saw_eof), then stops
 * the engine's serve loop (when on_hold is set). Time bounds come from LCMCOORD_TIME_FACTOR.
 */
#ifndef LCMC_LOOPBACK_PEER_H
#define LCMC_LOOPBACK_PEER_H

#include <pthread.h>
#include <stddef.h>

#include "lcmcoord/lcmcoord.h"

typedef struct peer {
    int listener;
    int port;
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int hold_reached;
    int hold_saw_eof;
    lcmc_engine *engine;             /* for /hold: told through lcmc_engine_post */
    void (*on_hold)(void *userdata); /* posted when /hold's request came */
    void *on_hold_userdata;
    /* The connections being served (-1: a free slot): peer_stop ends them and waits until
     * none is left, so that no connection thread outlives the peer (or the engine). */
    int connections[64];
    int live;
} peer;

peer *peer_start(void);
void peer_stop(peer *p);
/* "http://127.0.0.1:PORT" + path */
void peer_url(const peer *p, const char *path, char *out, size_t size);
/* LCMCOORD_TIME_FACTOR, at least 1. */
double time_factor(void);
void sleep_seconds(double seconds);

#endif
