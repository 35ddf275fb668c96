/*
 * The token cache shared by introspection answers and verified JWTs: a fixed-size table keyed
 * by the SHA-256 of a token (the token itself is never kept), each entry holding the token's
 * claims (NULL: known inactive) until an expiry the caller chooses. The table never grows:
 * an insert takes the same token's slot, a free or stale slot, or else the one of its small
 * probe window that expires first. Lookups hand out a new reference to the claims, so the
 * caller judges them outside the lock while other threads use the table (jansson's reference
 * counts are atomic, and cached claims are never modified).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "serve_auth_internal.h"

#define PROBE 8 /* slots looked at per lookup and insert */

struct cached {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    bool used;
    double expires;
    json_t *claims;
};

struct serve_token_cache {
    pthread_mutex_t lock;
    size_t cap;
    struct cached *slots;
};

struct serve_token_cache *serve_token_cache_new(size_t cap)
{
    struct serve_token_cache *cache = calloc(1, sizeof *cache);
    if (!cache)
        return NULL;
    cache->cap = cap ? cap : 1;
    cache->slots = calloc(cache->cap, sizeof *cache->slots);
    if (!cache->slots) {
        free(cache);
        return NULL;
    }
    pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

void serve_token_cache_free(struct serve_token_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->cap; i++)
        json_decref(cache->slots[i].claims);
    free(cache->slots);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

void serve_token_digest(const char *token, unsigned char digest[SERVE_TOKEN_DIGEST_LEN])
{
    SHA256((const unsigned char *)token, strlen(token), digest);
}

static size_t slot_of(const struct serve_token_cache *cache, const unsigned char *digest)
{
    size_t h;
    memcpy(&h, digest, sizeof h);
    return h % cache->cap;
}

bool serve_token_cache_get(struct serve_token_cache *cache, const unsigned char *digest, double now,
                           json_t **claims)
{
    bool hit = false;
    *claims = NULL;
    size_t start = slot_of(cache, digest);
    pthread_mutex_lock(&cache->lock);
    for (size_t i = 0; i < PROBE && i < cache->cap; i++) {
        struct cached *c = &cache->slots[(start + i) % cache->cap];
        if (c->used && memcmp(c->digest, digest, sizeof c->digest) == 0) {
            hit = c->expires > now;
            if (hit)
                *claims = json_incref(c->claims);
            break;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return hit;
}

void serve_token_cache_put(struct serve_token_cache *cache, const unsigned char *digest,
                           json_t *claims, double expires, double now)
{
    size_t start = slot_of(cache, digest);
    pthread_mutex_lock(&cache->lock);
    struct cached *victim = NULL;
    for (size_t i = 0; i < PROBE && i < cache->cap; i++) {
        struct cached *c = &cache->slots[(start + i) % cache->cap];
        if (c->used && memcmp(c->digest, digest, sizeof c->digest) == 0) {
            victim = c;
            break;
        }
        if (!c->used || c->expires <= now) {
            if (!victim || (victim->used && victim->expires > now))
                victim = c;
        } else if (!victim ||
                   (victim->used && victim->expires > now && c->expires < victim->expires)) {
            victim = c;
        }
    }
    json_t *old = victim->claims;
    memcpy(victim->digest, digest, sizeof victim->digest);
    victim->used = true;
    victim->expires = expires;
    victim->claims = claims;
    pthread_mutex_unlock(&cache->lock);
    json_decref(old);
}
