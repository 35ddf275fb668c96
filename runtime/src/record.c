/*
 * The record a VNFM keeps in its VnfLcmOpOcc: one lcmCoordinations[] entry per
 * coordination and one rejectedLcmCoordinations[] entry per 503. Entries live on the
 * engine, tagged with the client that made them, so a host can write the record of a whole
 * run after the script has freed its clients. Every string in it is UTF-8, so the record
 * can always be written.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "lcmcoord/json.h"

struct lcmc_record_entry {
    unsigned long client;
    char *id;
    char *action;
    lcmc_result result;
    double start, end, delay_end;
    int ended, delayed;
};

struct lcmc_rejection {
    unsigned long client;
    char *action;
    double time, delay_end;
};

/* The record of one engine's run. */
struct lcmc_records {
    struct lcmc_record_entry **records;
    size_t record_count, record_allocated;
    struct lcmc_rejection *rejections;
    size_t rejection_count, rejection_allocated;
    unsigned long next_client_serial;
};

static char *utf8_copy(const char *text);

int lcmc__records_new(struct lcmc_records **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -1;
}

unsigned long lcmc__engine_next_client_serial(lcmc_engine *engine)
{
    return ++lcmc__engine_records(engine)->next_client_serial;
}

lcmc_record_entry *lcmc__record_begin(lcmc_engine *engine, unsigned long client, const char *action,
                                      double start)
{
    struct lcmc_records *e = lcmc__engine_records(engine);
    if (e->record_count == e->record_allocated) {
        size_t grown = e->record_allocated ? e->record_allocated * 2 : 16;
        lcmc_record_entry **bigger = realloc(e->records, grown * sizeof *bigger);
        if (bigger == NULL)
            return NULL;
        e->records = bigger;
        e->record_allocated = grown;
    }
    lcmc_record_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL)
        return NULL;
    entry->client = client;
    entry->action = utf8_copy(action ? action : "");
    entry->start = start;
    e->records[e->record_count++] = entry;
    return entry;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0 when s does not start
 * one (overlong forms, surrogates and values past U+10FFFF included). */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    size_t length = s[0] < 0x80                    ? 1
                    : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                    : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                    : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                   : 0;
    if (length == 0 || length > n)
        return 0;
    for (size_t i = 1; i < length; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* The second byte's range rules out what the lead byte alone cannot. */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return length;
}

/* A copy of an id (or action) that is UTF-8 (JSON can hold nothing else): an id taken from a
 * Location is percent-decoded and may hold any byte; each byte that is not UTF-8 is written %XX, as
 * it was in the Location, so the record keeps the coordination instead of losing itself. */
static char *utf8_copy(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(text);
    char *copy = malloc(n * 3 + 1);
    if (copy == NULL)
        return NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t at = 0, end = 0;
    while (at < n) {
        size_t length = utf8_length(s + at, n - at);
        if (length == 0) {
            copy[end++] = '%';
            copy[end++] = hex[s[at] >> 4];
            copy[end++] = hex[s[at] & 0x0f];
            at++;
            continue;
        }
        memcpy(copy + end, s + at, length);
        end += length;
        at += length;
    }
    copy[end] = '\0';
    return copy;
}

void lcmc__record_set_id(lcmc_record_entry *entry, const char *id)
{
    if (entry == NULL || id == NULL)
        return;
    free(entry->id);
    entry->id = utf8_copy(id);
}

void lcmc__record_set_delay(lcmc_record_entry *entry, double delay_end)
{
    if (entry == NULL)
        return;
    entry->delay_end = delay_end;
    entry->delayed = 1;
}

void lcmc__record_end(lcmc_record_entry *entry, lcmc_result result, double end)
{
    if (entry == NULL || entry->ended)
        return;
    entry->result = result;
    entry->end = end;
    entry->ended = 1;
}

int lcmc__record_rejection(lcmc_engine *engine, unsigned long client, const char *action,
                           double time, double delay_end)
{
    struct lcmc_records *e = lcmc__engine_records(engine);
    if (e->rejection_count == e->rejection_allocated) {
        size_t grown = e->rejection_allocated ? e->rejection_allocated * 2 : 16;
        struct lcmc_rejection *bigger = realloc(e->rejections, grown * sizeof *bigger);
        if (bigger == NULL)
            return -1;
        e->rejections = bigger;
        e->rejection_allocated = grown;
    }
    struct lcmc_rejection *r = &e->rejections[e->rejection_count++];
    r->client = client;
    r->action = lcmc__strdup(action ? action : "");
    r->time = time;
    r->delay_end = delay_end;
    return 0;
}

void lcmc__records_free(struct lcmc_records *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->record_count; i++) {
        free(e->records[i]->id);
        free(e->records[i]->action);
        free(e->records[i]);
    }
    free(e->records);
    for (size_t i = 0; i < e->rejection_count; i++)
        free(e->rejections[i].action);
    free(e->rejections);
    free(e);
}

static int set_time(json_t *object, const char *key, double when)
{
    char text[32];
    lcmc__format_time(when, text);
    return json_object_set_new(object, key, json_string(text));
}

static json_t *entry_json(const lcmc_record_entry *entry)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int failed = 0;
    failed |= json_object_set_new(o, "id", entry->id ? json_string(entry->id) : json_null());
    failed |= json_object_set_new(o, "coordinationActionName", json_string(entry->action));
    const char *result = lcmc_result_name(entry->result);
    if (result)
        failed |= json_object_set_new(o, "coordinationResult", json_string(result));
    failed |= set_time(o, "startTime", entry->start);
    if (entry->ended)
        failed |= set_time(o, "endTime", entry->end);
    failed |= json_object_set_new(o, "endpointType", json_string("MGMT"));
    if (entry->delayed)
        failed |= set_time(o, "delay", entry->delay_end);
    if (failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

lcmc_status lcmc__record_json(const lcmc_engine *engine, unsigned long client, char **out)
{
    const struct lcmc_records *e = lcmc__engine_records(engine);
    *out = NULL;
    json_t *doc = json_object();
    json_t *coordinations = json_array();
    json_t *rejections = json_array();
    lcmc_status status = LCMC_ENOMEM;
    if (!doc || !coordinations || !rejections)
        goto done;
    for (size_t i = 0; i < e->record_count; i++) {
        if (client && e->records[i]->client != client)
            continue;
        if (json_array_append_new(coordinations, entry_json(e->records[i])) != 0)
            goto done;
    }
    for (size_t i = 0; i < e->rejection_count; i++) {
        const struct lcmc_rejection *r = &e->rejections[i];
        if (client && r->client != client)
            continue;
        json_t *o = json_object();
        if (o == NULL || json_object_set_new(o, "coordinationActionName", json_string(r->action)) ||
            set_time(o, "rejectionTime", r->time) ||
            json_object_set_new(o, "endpointType", json_string("MGMT")) ||
            set_time(o, "delay", r->delay_end)) {
            json_decref(o);
            goto done;
        }
        if (json_array_append_new(rejections, o) != 0)
            goto done;
    }
    json_object_set(doc, "lcmCoordinations", coordinations);
    json_object_set(doc, "rejectedLcmCoordinations", rejections);
    /* ASCII only: an id or action from the EM may hold C1 controls or bidi overrides that
     * JSON allows raw, and a record is read by people too (`cat record.json`); \uXXXX
     * escapes mean the same to every JSON reader. */
    *out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    status = *out ? LCMC_OK : LCMC_ENOMEM;
done:
    json_decref(coordinations);
    json_decref(rejections);
    json_decref(doc);
    return status;
}

lcmc_status lcmc_engine_record_json(const lcmc_engine *e, char **out)
{
    if (e == NULL || out == NULL)
        return LCMC_EUSAGE;
    return lcmc__record_json(e, 0, out);
}

/* The record as a value: its text read back under the JSON rules. A record is written once
 * per run, so one more parse costs nothing that matters, and the text stays the one source. */
static lcmc_status record_value(const lcmc_engine *e, unsigned long client, json_t **out)
{
    *out = NULL;
    char *text = NULL;
    lcmc_status status = lcmc__record_json(e, client, &text);
    if (status != LCMC_OK)
        return status;
    *out = lcmc_json_parse(text, strlen(text), NULL, 0);
    free(text);
    return *out ? LCMC_OK : LCMC_ENOMEM;
}

lcmc_status lcmc_engine_record_value(const lcmc_engine *e, json_t **out)
{
    if (e == NULL || out == NULL)
        return LCMC_EUSAGE;
    return record_value(e, 0, out);
}

lcmc_status lcmc_client_record_value(const lcmc_client *client, json_t **out)
{
    if (client == NULL || out == NULL)
        return LCMC_EUSAGE;
    return record_value(lcmc__client_engine(client), lcmc__client_serial(client), out);
}
