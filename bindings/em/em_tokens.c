/*
 * The access tokens the simulator's token endpoint has issued. A token is 32 bytes from
 * the OpenSSL CSPRNG in base64url, so it cannot be guessed; the store keeps only its
 * SHA-256, so a memory dump or a log never holds a usable token. The store is a fixed ring
 * (the oldest token is forgotten once it is full), and a lookup compares the digest with
 * every slot in constant time, so neither the position of a match nor how much of a
 * guessed token was right shows in the timing. The clock is injectable so the unit tests
 * can expire tokens without waiting. One mutex serves the HTTP worker threads.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "em.h"

struct token_slot {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    unsigned long seq; /* 0: empty */
    uint64_t expires_ms;
    bool expires;
    bool revoked;
};

struct em_tokens {
    pthread_mutex_t mu;
    struct token_slot *slots;
    size_t capacity;
    unsigned long issued;
    long long ttl_s;
    em_clock_fn clock;
    void *clock_ctx;
};

static uint64_t monotonic_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct em_tokens *em_tokens_new(size_t capacity, long long ttl_s, em_clock_fn clock, void *ctx)
{
    struct em_tokens *t = em_xmalloc(sizeof *t);
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->capacity = capacity ? capacity : 1;
    t->slots = calloc(t->capacity, sizeof *t->slots);
    if (!t->slots)
        abort();
    t->ttl_s = ttl_s;
    t->clock = clock ? clock : monotonic_ms;
    t->clock_ctx = ctx;
    return t;
}

void em_tokens_free(struct em_tokens *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t);
}

unsigned long em_tokens_issue(struct em_tokens *t, char token[EM_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    char text[48];
    if (RAND_bytes(raw, sizeof raw) != 1)
        abort(); /* a guessable token would defeat the point of the endpoint */
    em_base64url(raw, sizeof raw, text);
    OPENSSL_cleanse(raw, sizeof raw);
    memcpy(token, text, EM_TOKEN_LEN + 1);

    pthread_mutex_lock(&t->mu);
    unsigned long seq = ++t->issued;
    struct token_slot *s = &t->slots[(seq - 1) % t->capacity];
    SHA256((const unsigned char *)text, EM_TOKEN_LEN, s->digest);
    s->seq = seq;
    s->revoked = false;
    s->expires = t->ttl_s != EM_TOKEN_TTL_NONE;
    s->expires_ms = t->clock(t->clock_ctx) + (uint64_t)(s->expires ? t->ttl_s : 0) * 1000u;
    pthread_mutex_unlock(&t->mu);
    OPENSSL_cleanse(text, sizeof text);
    return seq;
}

enum em_token_state em_tokens_check(struct em_tokens *t, const char *token, unsigned long *seq)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), digest);
    *seq = 0;
    pthread_mutex_lock(&t->mu);
    struct token_slot *found = NULL;
    for (size_t i = 0; i < t->capacity; i++) {
        /* No early exit: every slot costs the same whether or not it matches. */
        int differs = CRYPTO_memcmp(t->slots[i].digest, digest, sizeof digest);
        if (!differs && t->slots[i].seq)
            found = &t->slots[i];
    }
    enum em_token_state state = EM_TOKEN_UNKNOWN;
    if (found) {
        *seq = found->seq;
        if (found->revoked)
            state = EM_TOKEN_REVOKED;
        else if (found->expires && t->clock(t->clock_ctx) >= found->expires_ms)
            state = EM_TOKEN_EXPIRED;
        else
            state = EM_TOKEN_VALID;
    }
    pthread_mutex_unlock(&t->mu);
    return state;
}

bool em_tokens_revoke(struct em_tokens *t, unsigned long seq)
{
    if (seq == 0)
        return false;
    pthread_mutex_lock(&t->mu);
    struct token_slot *s = &t->slots[(seq - 1) % t->capacity];
    bool held = s->seq == seq;
    if (held)
        s->revoked = true;
    pthread_mutex_unlock(&t->mu);
    return held;
}
