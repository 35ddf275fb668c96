/*
 * Making the runtime's log events (lcmc_event in lcmcoord.h). A place that has something to
 * report fills the fields it knows and gives the English line for people; the engine hands
 * both to whoever listens (lcmc_engine_set_events), or the line alone (lcmc_engine_set_log).
 * Fields are never recovered from the line: that is the point. Everything here costs one
 * comparison when nobody listens at the event's level (check lcmc__log_enabled before
 * computing anything expensive for an event).
 */
#ifndef LCMCOORD_EVENTS_H
#define LCMCOORD_EVENTS_H

#include "internal.h"

/* What the events of a call are about, when it is a coordination's: the places where the
 * coordination keeps its action and id (the id comes later, from the EM), read when an
 * event is made. */
typedef struct lcmc_event_subject {
    char *const *action;
    char *const *id;
} lcmc_event_subject;

/* An event of `type` at `level`, every field absent, about `about` (NULL: nothing). */
lcmc_event lcmc__event_make(lcmc_event_type type, lcmc_log_level level,
                            const lcmc_event_subject *about);

/* Delivers `event` with its message formatted from `fmt` (the engine checks the level). */
void lcmc__event_emit(lcmc_engine *engine, lcmc_event *event, const char *fmt, ...)
    LCMC_PRINTF(3, 4);

/* An event with no fields but its type: the line says it all. */
void lcmc__log_as(lcmc_engine *engine, lcmc_log_level level, lcmc_event_type type, const char *fmt,
                  ...) LCMC_PRINTF(4, 5);

/* The events every exchange makes: "POST https://..." and "201 Created (3 ms)". */
void lcmc__log_request(lcmc_engine *engine, const lcmc_event_subject *about, const char *method,
                       const char *url);
void lcmc__log_response(lcmc_engine *engine, const lcmc_event_subject *about, const char *method,
                        const char *url, long status, double elapsed);

/* Hands a finished event to the engine's receiver (engine.c). */
void lcmc__event_deliver(lcmc_engine *engine, const lcmc_event *event);

#endif
