/*
 * Coordinations the simulator has created, and the small state machine behind GET and
 * cancel. Identifiers look like UUIDs: a random per-process prefix (so ids differ between
 * runs) followed by a 48-bit serial number, which doubles as the index into a fixed ring
 * of slots. Lookup is therefore O(1) without a hash table, and memory is bounded twice:
 * once the ring is full the oldest coordination is forgotten (its GET answers 404), and the
 * serialized documents kept never exceed a byte budget. Only the serialized text is kept
 * (a jansson tree of a large inputParams costs several times its text). When the budget is
 * short, finished coordinations are forgotten, oldest first; when every byte belongs to one
 * still in progress, a new one is refused (the caller answers 503 with Retry-After), since
 * forgetting a running coordination would break a client that is polling it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em.h"

unsigned em_coord_poll(struct em_coord *c)
{
    if (c->phase == EM_COORD_DONE)
        return 200;
    if (c->polls_left > 0) {
        c->polls_left--;
        return 202;
    }
    if (c->phase == EM_COORD_CANCELLING)
        c->cancelled = true;
    c->phase = EM_COORD_DONE;
    return 200;
}

unsigned em_coord_cancel(struct em_coord *c)
{
    switch (c->phase) {
    case EM_COORD_RUNNING:
        /* The protocol has GET answer 202 while cancelling: exactly one more, then 200. */
        c->phase = EM_COORD_CANCELLING;
        c->polls_left = 1;
        return 202;
    case EM_COORD_CANCELLING:
        return 202;
    case EM_COORD_DONE:
        break;
    }
    return 409;
}

struct em_slot {
    char id[EM_ID_LEN + 1];
    struct em_coord coord;
    bool used;
    bool cancel_applied;
    char *body;
    size_t len;
    struct em_slot *older, *newer; /* the order coordinations were stored in */
};

struct em_store {
    pthread_mutex_t mu;
    size_t mask;
    struct em_slot *slots;
    atomic_ullong next;
    struct em_slot *oldest, *newest;
    size_t bytes, max_bytes;
    unsigned prefix_a, prefix_b, prefix_c, prefix_d;
};

static void random_bytes(unsigned char *buf, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(buf, 1, n, f) : 0;
    if (f)
        fclose(f);
    if (got < n) {
        /* Only uniqueness across runs matters here, not unpredictability. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = got; i < n; i++)
            buf[i] = (unsigned char)((unsigned long)ts.tv_nsec >> (i % 24));
    }
}

struct em_store *em_store_new(size_t capacity, size_t max_bytes)
{
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    struct em_store *s = em_xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->mask = cap - 1;
    s->slots = calloc(cap, sizeof *s->slots);
    if (!s->slots)
        abort();
    atomic_init(&s->next, 0);
    s->max_bytes = max_bytes;
    unsigned char r[10];
    random_bytes(r, sizeof r);
    s->prefix_a = (unsigned)r[0] << 24 | (unsigned)r[1] << 16 | (unsigned)r[2] << 8 | r[3];
    s->prefix_b = (unsigned)r[4] << 8 | r[5];
    s->prefix_c = ((unsigned)r[6] << 8 | r[7]) & 0x0fff;
    s->prefix_d = (((unsigned)r[8] << 8 | r[9]) & 0x3fff) | 0x8000;
    return s;
}

static void slot_clear(struct em_store *s, struct em_slot *slot)
{
    if (slot->older)
        slot->older->newer = slot->newer;
    else
        s->oldest = slot->newer;
    if (slot->newer)
        slot->newer->older = slot->older;
    else
        s->newest = slot->older;
    s->bytes -= slot->len;
    free(slot->body);
    memset(slot, 0, sizeof *slot);
}

void em_store_free(struct em_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i <= s->mask; i++)
        if (s->slots[i].used)
            slot_clear(s, &s->slots[i]);
    free(s->slots);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void em_store_new_id(struct em_store *s, char id[EM_ID_LEN + 1])
{
    unsigned long long serial = (atomic_fetch_add(&s->next, 1) + 1) & 0xffffffffffffULL;
    snprintf(id, EM_ID_LEN + 1, "%08x-%04x-4%03x-%04x-%012llx", s->prefix_a, s->prefix_b,
             s->prefix_c, s->prefix_d, serial);
}

/* The slot an id would live in, or NULL when the id cannot be one of ours. */
static struct em_slot *slot_for(struct em_store *s, const char *id)
{
    if (strlen(id) != EM_ID_LEN || id[EM_ID_LEN - 13] != '-')
        return NULL;
    const char *hex = id + EM_ID_LEN - 12;
    if (strspn(hex, "0123456789abcdef") != 12)
        return NULL;
    unsigned long long serial = strtoull(hex, NULL, 16);
    return &s->slots[serial & s->mask];
}

/* Forgets finished coordinations, oldest first, until `need` more bytes fit; false when
 * they do not (what is left is in progress). */
static bool make_room_locked(struct em_store *s, size_t need)
{
    if (need > s->max_bytes)
        return false;
    for (struct em_slot *slot = s->oldest; slot && s->bytes + need > s->max_bytes;) {
        struct em_slot *next = slot->newer;
        if (slot->coord.phase == EM_COORD_DONE)
            slot_clear(s, slot);
        slot = next;
    }
    return s->bytes + need <= s->max_bytes;
}

int em_store_put(struct em_store *s, const char *id, json_t *doc, unsigned polls, bool done,
                 char **body_out)
{
    if (body_out)
        *body_out = NULL;
    struct em_slot *slot = slot_for(s, id);
    if (!slot) {
        json_decref(doc);
        return -1;
    }
    /* Serialize outside the lock: inputParams can be large. */
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    size_t len = strlen(body);
    pthread_mutex_lock(&s->mu);
    if (slot->used)
        slot_clear(s, slot); /* the ring came round: the oldest goes, whatever its state */
    if (!make_room_locked(s, len)) {
        pthread_mutex_unlock(&s->mu);
        free(body);
        return -1;
    }
    memcpy(slot->id, id, EM_ID_LEN + 1);
    slot->used = true;
    slot->coord.phase = done ? EM_COORD_DONE : EM_COORD_RUNNING;
    slot->coord.polls_left = done ? 0 : polls;
    slot->body = body;
    slot->len = len;
    s->bytes += len;
    slot->older = s->newest;
    slot->newer = NULL;
    if (s->newest)
        s->newest->newer = slot;
    else
        s->oldest = slot;
    s->newest = slot;
    if (body_out)
        *body_out = em_xstrndup(body, len);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

size_t em_store_bytes(struct em_store *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->bytes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static struct em_slot *find_locked(struct em_store *s, const char *id)
{
    struct em_slot *slot = slot_for(s, id);
    return slot && slot->used && strcmp(slot->id, id) == 0 ? slot : NULL;
}

unsigned em_store_get(struct em_store *s, const char *id, char **body)
{
    *body = NULL;
    pthread_mutex_lock(&s->mu);
    struct em_slot *slot = find_locked(s, id);
    unsigned status = slot ? em_coord_poll(&slot->coord) : 404;
    if (status == 200) {
        if (slot->coord.cancelled && !slot->cancel_applied) {
            json_t *doc = json_loadb(slot->body, slot->len, 0, NULL);
            if (doc) {
                json_object_set_new(doc, "coordinationResult",
                                    json_string(em_result_name(EM_RESULT_CANCELLED)));
                json_object_del(doc, "error");
                char *again = json_dumps(doc, JSON_COMPACT);
                json_decref(doc);
                s->bytes -= slot->len;
                free(slot->body);
                slot->body = again;
                slot->len = strlen(again);
                s->bytes += slot->len;
            }
            slot->cancel_applied = true;
        }
        *body = em_xstrdup(slot->body);
    }
    pthread_mutex_unlock(&s->mu);
    return status;
}

unsigned em_store_cancel(struct em_store *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    struct em_slot *slot = find_locked(s, id);
    unsigned status = slot ? em_coord_cancel(&slot->coord) : 404;
    pthread_mutex_unlock(&s->mu);
    return status;
}
