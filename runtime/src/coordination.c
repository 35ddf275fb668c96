/*
 * One coordination: POST the LcmCoordRequest, then follow the EM wherever the protocol
 * lets it lead (201 result, 503/429 wait and resend, 202 poll the Location until 200),
 * all under one wall-clock deadline that bounds requests and waits alike.
 *
 * Deadline choices (docs/design.md says why): a resent POST honours the EM's Retry-After,
 * so a wait that would end past the deadline fails at once; a poll may come early, so its
 * wait is shortened to leave one last look before the deadline. When the deadline passes
 * or the engine is interrupted while the EM holds an id, the EM is asked to cancel (a
 * short, separate budget) before the coordination ends. When that happens while the POST
 * is out, its answer is awaited for a short grace, so that what the EM may have started
 * can be cancelled too. A second interrupt ends either wait at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "engine.h"
#include "events.h"
#include "json_text.h"
#include "lcmcoord/json.h"

/* Time kept for the last poll before the deadline, for a cancel after it, and for the
 * answer to a POST that was out when the coordination had to end. */
#define LAST_LOOK_RESERVE_MAX 2.0
#define CANCEL_GRACE          5.0
#define POST_ANSWER_GRACE     5.0

typedef enum phase {
    PHASE_POST,       /* a POST is in flight */
    PHASE_POST_GRACE, /* ending: the POST's answer is awaited, to cancel what it started */
    PHASE_WAIT_POST,  /* waiting to resend the POST */
    PHASE_POLL,       /* a GET of the Location is in flight */
    PHASE_WAIT_POLL,  /* waiting to poll again */
    PHASE_CANCELLING, /* ending: the EM is being asked to cancel */
    PHASE_DONE,
} phase;

struct lcmc_coordination {
    lcmc_op op; /* first: the engine's interrupt finds us through it */
    lcmc_client *client;
    lcmc_engine *engine;
    const lcmc_client_options *options;
    phase phase;
    char *body; /* the request exactly as sent, identical on every resend */
    char *action;
    char *post_url;
    char *poll_url;
    char *cancel_url;
    char *id;
    lcmc_event_subject about; /* what its log events name: its action and id */
    double deadline;
    double reserve;
    lcmc_call *call;          /* the POST or GET in flight */
    lcmc_call *cancel_call;   /* a cancel request in flight */
    lcmc_timer timer;         /* waits; the deadline while the POST is out; the POST's grace */
    lcmc_retry_policy policy; /* the waits; whether to retry is the protocol's to say */
    int last_look;            /* the current wait was cut to the deadline: no poll after this one */
    int cancel_wanted;        /* lcmc_coordination_cancel was called */
    int cancel_sent;
    unsigned posts, polls;
    lcmc_record_entry *record;

    lcmc_status ending_status; /* what PHASE_CANCELLING ends with */
    lcmc_error ending_error;

    lcmc_status status;
    lcmc_error error;
    lcmc_result result;
    char *lcmcoord_json; /* as the EM sent it */
    json_t *lcmcoord;    /* the same, parsed once when it arrived */
};

static void send_post(lcmc_coordination *c);
static void send_poll(lcmc_coordination *c);
static void send_cancel(lcmc_coordination *c, double deadline);

static double left(const lcmc_coordination *c)
{
    double l = c->deadline - lcmc__now();
    return l > 0 ? l : 0;
}

/* Seconds for people: "5 s", "0.5 s", "3595 s". */
static void seconds_text(double s, char buf[32])
{
    if (s < 10 && s != (double)(long)s)
        snprintf(buf, 32, "%.1f s", s);
    else
        snprintf(buf, 32, "%.0f s", s);
}

static void finish(lcmc_coordination *c, lcmc_status status)
{
    LCMC_DEBUGASSERT(c->phase != PHASE_DONE); /* a coordination ends once */
    lcmc__timer_disarm(c->engine, &c->timer);
    lcmc__call_cancel(c->call);
    c->call = NULL;
    lcmc__call_cancel(c->cancel_call);
    c->cancel_call = NULL;
    c->status = status;
    c->phase = PHASE_DONE;
    lcmc__record_end(c->record, c->result, lcmc__wall_now());
    lcmc__op_unregister(c->engine, &c->op);
    if (!lcmc__log_enabled(c->engine, LCMC_LOG_INFO))
        return;
    if (status == LCMC_OK) {
        lcmc_event event = lcmc__event_make(LCMC_EVENT_RESULT, LCMC_LOG_INFO, &c->about);
        event.result = lcmc_result_name(c->result);
        lcmc__event_emit(c->engine, &event, "coordination %s: %s", c->id ? c->id : "?",
                         event.result);
    } else {
        lcmc_event event = lcmc__event_make(LCMC_EVENT_FAILED, LCMC_LOG_INFO, &c->about);
        event.error_kind = lcmc_status_name(status);
        event.status = c->error.http_status;
        event.method = lcmc_error_method(&c->error);
        event.url = lcmc_error_url(&c->error);
        lcmc__event_emit(c->engine, &event, "coordination failed: %s",
                         lcmc_error_message(&c->error));
    }
}

static void fail(lcmc_coordination *c, lcmc_status status, const char *method, const char *url,
                 const char *fmt, const char *detail)
{
    char *path = url ? lcmc__url_path(url) : NULL;
    if (url)
        lcmc__error_set(&c->error, status, "%s (%s %s)", detail ? detail : fmt, method,
                        path ? path : "?");
    else
        lcmc__error_set(&c->error, status, "%s", detail ? detail : fmt);
    lcmc__error_set_request(&c->error, method, url);
    free(path);
    finish(c, status);
}

/* Ends the coordination with `status`/`c->ending_error`, first asking the EM to cancel
 * when it holds an id for it and has not been asked yet. */
static void end_with_cancel(lcmc_coordination *c, lcmc_status status)
{
    lcmc__timer_disarm(c->engine, &c->timer);
    lcmc__call_cancel(c->call);
    c->call = NULL;
    if (c->cancel_url && !c->cancel_sent) {
        c->ending_status = status;
        c->phase = PHASE_CANCELLING;
        lcmc_event event = lcmc__event_make(LCMC_EVENT_CANCEL, LCMC_LOG_INFO, &c->about);
        event.reason = "asking";
        event.method = "POST";
        event.url = c->cancel_url;
        event.error_kind = lcmc_status_name(status);
        event.time_left = left(c);
        lcmc__event_emit(c->engine, &event, "asking the EM to cancel coordination %s",
                         c->id ? c->id : "?");
        send_cancel(c, lcmc__now() + CANCEL_GRACE);
        if (c->cancel_call)
            return;
    }
    lcmc__error_move(&c->error, &c->ending_error);
    finish(c, status);
}

/* Like end_with_cancel, for a failure already described in c->error. */
static void end_with_cancel_keeping_error(lcmc_coordination *c, lcmc_status status)
{
    lcmc__error_move(&c->ending_error, &c->error);
    end_with_cancel(c, status);
}

/* Adds `suffix` to the message the coordination will end with. */
static void extend_ending_message(lcmc_coordination *c, const char *suffix)
{
    char *message = lcmc__asprintf("%s%s", lcmc_error_message(&c->ending_error), suffix);
    if (message) {
        free(c->ending_error.message);
        c->ending_error.message = message;
    }
}

/* The coordination must end while its POST is out and the EM may have all of it: wait a
 * short grace for the answer, so that a coordination it started can be cancelled. The
 * POST's own libcurl timeout already allows for this grace past the deadline. */
static void await_post_answer(lcmc_coordination *c, lcmc_status status)
{
    c->ending_status = status;
    c->phase = PHASE_POST_GRACE;
    /* Its answer is awaited, never a new POST: a 401 is not answered with another try. */
    lcmc__call_send_no_more(c->call);
    char grace_text[32];
    seconds_text(POST_ANSWER_GRACE, grace_text);
    lcmc_event event = lcmc__event_make(LCMC_EVENT_WAIT, LCMC_LOG_INFO, &c->about);
    event.reason = "post_answer";
    event.method = "POST";
    event.url = c->post_url;
    event.wait = POST_ANSWER_GRACE;
    event.error_kind = lcmc_status_name(status);
    lcmc__event_emit(c->engine, &event,
                     "waiting up to %s for the answer to the POST, to cancel what the EM may "
                     "have started",
                     grace_text);
    if (lcmc__timer_arm(c->engine, &c->timer, lcmc__now() + POST_ANSWER_GRACE) != 0) {
        lcmc__error_set(&c->error, LCMC_ENOMEM, "out of memory");
        finish(c, LCMC_ENOMEM);
    }
}

/* Ends a coordination the EM may hold without anyone able to cancel it, and says so. */
static void end_left_behind(lcmc_coordination *c, const char *why)
{
    char *suffix =
        lcmc__asprintf("; the EM may hold a coordination that could not be cancelled (%s)", why);
    extend_ending_message(c, suffix ? suffix : "; the EM may hold a coordination");
    free(suffix);
    /* An interrupted run reports only the interruption: this must reach the operator too. */
    if (c->ending_status == LCMC_ECANCELLED) {
        lcmc_event event = lcmc__event_make(LCMC_EVENT_WARNING, LCMC_LOG_WARN, &c->about);
        event.reason = "left_behind";
        event.error_kind = lcmc_status_name(c->ending_status);
        lcmc__event_emit(c->engine, &event,
                         "the EM may hold a coordination that could not be cancelled (%s)", why);
    }
    lcmc__error_move(&c->error, &c->ending_error);
    finish(c, c->ending_status);
}

/* Ends a coordination the EM never accepted, after a cancel was asked: nothing to cancel
 * there, and the POST is not sent again. */
static void end_cancelled_before_accepted(lcmc_coordination *c)
{
    lcmc__error_set(&c->error, LCMC_ECANCELLED,
                    "cancelled before the EM accepted the coordination; nothing was sent again");
    finish(c, LCMC_ECANCELLED);
}

static void fail_deadline(lcmc_coordination *c, const char *what)
{
    char *message = lcmc__asprintf("deadline exceeded: %s", what);
    lcmc__error_set(&c->ending_error, LCMC_EDEADLINE, "%s",
                    message ? message : "deadline exceeded");
    free(message);
    end_with_cancel(c, LCMC_EDEADLINE);
}

/* Ends at once a coordination that was waiting, while ending, for the EM's answer to its
 * cancel or to its POST: what the EM does with them is no longer awaited. */
static void stop_waiting(lcmc_coordination *c)
{
    if (c->phase == PHASE_POST_GRACE) {
        end_left_behind(c, "its answer to the POST was not awaited");
        return;
    }
    extend_ending_message(c, " (its answer was not awaited)");
    lcmc__error_move(&c->error, &c->ending_error);
    finish(c, c->ending_status);
}

static void interrupt(lcmc_op *op)
{
    lcmc_coordination *c = (lcmc_coordination *)op;
    if (c->phase == PHASE_DONE)
        return;
    if (c->phase == PHASE_POST && lcmc__call_request_started(c->call)) {
        lcmc__error_set(&c->ending_error, LCMC_ECANCELLED, "interrupted");
        await_post_answer(c, LCMC_ECANCELLED);
    } else if (c->phase != PHASE_CANCELLING && c->phase != PHASE_POST_GRACE) {
        lcmc__error_set(&c->ending_error, LCMC_ECANCELLED, "interrupted%s",
                        c->cancel_url && !c->cancel_sent ? "; the EM was asked to cancel" : "");
        end_with_cancel(c, LCMC_ECANCELLED);
    }
    /* The first interrupt leaves those waits to their short grace; another one (perhaps come
     * together with the first) ends them. */
    if ((c->phase == PHASE_CANCELLING || c->phase == PHASE_POST_GRACE) &&
        lcmc__engine_interrupted_again(c->engine))
        stop_waiting(c);
}

/* The deadline came while the POST is out. */
static void deadline_during_post(lcmc_coordination *c)
{
    char *path = lcmc__url_path(c->post_url);
    char *what = lcmc__asprintf("the EM gave no answer to POST %s in time", path ? path : "?");
    free(path);
    if (!lcmc__call_request_started(c->call)) {
        fail_deadline(c, what ? what : "no answer in time");
    } else {
        char *message = lcmc__asprintf("deadline exceeded: %s", what ? what : "no answer");
        lcmc__error_set(&c->ending_error, LCMC_EDEADLINE, "%s",
                        message ? message : "deadline exceeded");
        free(message);
        await_post_answer(c, LCMC_EDEADLINE);
    }
    free(what);
}

static void timer_fired(lcmc_timer *timer)
{
    lcmc_coordination *c = timer->owner;
    /* Only these phases arm the timer; every other one disarms it on the way in. */
    LCMC_DEBUGASSERT(c->phase == PHASE_WAIT_POST || c->phase == PHASE_WAIT_POLL ||
                     c->phase == PHASE_POST || c->phase == PHASE_POST_GRACE);
    if (c->phase == PHASE_WAIT_POST)
        send_post(c);
    else if (c->phase == PHASE_WAIT_POLL)
        send_poll(c);
    else if (c->phase == PHASE_POST)
        deadline_during_post(c);
    else if (c->phase == PHASE_POST_GRACE) {
        char grace_text[32], why[64];
        seconds_text(POST_ANSWER_GRACE, grace_text);
        snprintf(why, sizeof why, "no answer to the POST within %s", grace_text);
        end_left_behind(c, why);
    }
}

/* The stable word for why a coordination waits after the answer `r` (events.h). */
static const char *wait_reason(const lcmc_coordination *c, const lcmc_transfer_result *r)
{
    if (r->curl_code != CURLE_OK)
        return "transport";
    if (r->status == 202)
        return c->phase == PHASE_POLL ? "in_progress" : "accepted";
    return r->status == 429 ? "rate_limited" : "busy";
}

/* The wait's log event: `why` (the answer `r`) for people, its fields for programs. */
static void log_wait(lcmc_coordination *c, const lcmc_transfer_result *r, double wait, double until,
                     double now, int is_poll, const char *why)
{
    if (!lcmc__log_enabled(c->engine, LCMC_LOG_INFO))
        return;
    lcmc_event event = lcmc__event_make(LCMC_EVENT_WAIT, LCMC_LOG_INFO, &c->about);
    event.reason = wait_reason(c, r);
    event.status = r->curl_code == CURLE_OK ? (int)r->status : 0;
    event.method = is_poll ? "GET" : "POST";
    event.url = is_poll ? c->poll_url : c->post_url;
    event.attempt = (int)(c->phase == PHASE_POLL ? c->polls : c->posts);
    event.wait = until - now;
    event.time_left = left(c);
    char wait_text[32], left_text[32];
    seconds_text(wait, wait_text);
    seconds_text(event.time_left, left_text);
    if (c->last_look) {
        event.wait_asked = wait;
        char cut_text[32];
        seconds_text(until - now, cut_text);
        lcmc__event_emit(c->engine, &event,
                         "%s, asked to wait %s; polling once more in %s, just before the deadline",
                         why, wait_text, cut_text);
    } else {
        lcmc__event_emit(c->engine, &event, "%s, %s in %s, %s left", why,
                         is_poll ? "polling" : "retrying", wait_text, left_text);
    }
}

/* Waits `wait` seconds then resends (POST) or polls again (GET) after the answer `r`.
 * Returns -1, having done nothing, when the deadline leaves no room for that: the caller
 * says why it ends. */
static int schedule(lcmc_coordination *c, const lcmc_transfer_result *r, double wait, int is_poll,
                    const char *why)
{
    if (!is_poll && c->cancel_wanted) {
        end_cancelled_before_accepted(c);
        return 0;
    }
    double now = lcmc__now();
    double until = now;
    lcmc_wait_plan plan = lcmc__plan_wait(now, wait, c->deadline, is_poll, c->reserve, &until);
    if (plan == LCMC_WAIT_PAST_DEADLINE)
        return -1;
    /* No wait ends past the deadline, nor before it began. */
    LCMC_DEBUGASSERT(until >= now && until <= c->deadline);
    c->last_look = plan == LCMC_WAIT_SHORTENED;
    log_wait(c, r, wait, until, now, is_poll, why);
    c->phase = is_poll ? PHASE_WAIT_POLL : PHASE_WAIT_POST;
    if (lcmc__timer_arm(c->engine, &c->timer, until) != 0) {
        lcmc__error_set(&c->error, LCMC_ENOMEM, "out of memory");
        finish(c, LCMC_ENOMEM);
    }
    return 0;
}

/* The EM asked for a wait (Retry-After, or our default when it named none) that the
 * deadline cannot honour. */
static void schedule_or_fail(lcmc_coordination *c, const lcmc_transfer_result *r, double wait,
                             int is_poll, const char *why)
{
    if (schedule(c, r, wait, is_poll, why) == 0)
        return;
    char wait_text[32], left_text[32];
    seconds_text(wait, wait_text);
    seconds_text(left(c), left_text);
    char *what =
        lcmc__asprintf("%s and asked to wait %s, but only %s were left", why, wait_text, left_text);
    fail_deadline(c, what ? what : why);
    free(what);
}

/* The wait the policy gives for an answer (or for no answer, r->status 0). */
static double answer_wait(const lcmc_coordination *c, const lcmc_transfer_result *r)
{
    lcmc_retry_outcome outcome = {0};
    outcome.attempt = (int)(c->polls > 0 ? c->polls : c->posts);
    outcome.status = (int)r->status;
    outcome.transport_failure = r->curl_code != CURLE_OK;
    outcome.retry_after_present = r->retry_after_present;
    outcome.retry_after = (double)r->retry_after;
    return lcmc_retry_next_wait(&c->policy, &outcome, 0);
}

static void fail_with_answer(lcmc_coordination *c, const lcmc_transfer_result *r,
                             const char *method, const char *url)
{
    json_t *problem = lcmc__decode_problem(r->body.data, r->body.length);
    char *message = lcmc__http_error_message(r->status, problem, r->content_type, r->body.data,
                                             r->body.length, method, url);
    lcmc_status status = r->status == 401 ? LCMC_EAUTH : LCMC_EHTTP;
    lcmc__error_set(&c->error, status, "%s%s", message ? message : "EM answered an error",
                    r->status >= 300 && r->status < 400 ? "; redirects are not followed" : "");
    free(message);
    c->error.http_status = (int)r->status;
    if (problem)
        c->error.problem_json = json_dumps(problem, JSON_COMPACT | JSON_PRESERVE_ORDER);
    c->error.problem = problem; /* the error owns it now */
    lcmc__error_set_request(&c->error, method, url);
    if (c->phase == PHASE_POLL)
        end_with_cancel_keeping_error(c, status);
    else
        finish(c, status);
}

static void accept_lcmcoord(lcmc_coordination *c, const lcmc_transfer_result *r, const char *method,
                            const char *url)
{
    char why[320];
    if (r->body.length == 0) {
        snprintf(why, sizeof why, "EM answered %ld %s with an empty body instead of an LcmCoord",
                 r->status, lcmc__reason_phrase(r->status));
        fail(c, LCMC_EPROTOCOL, method, url, why, NULL);
        return;
    }
    /* yajl reads most LcmCoords into the value jansson would make; jansson reads, and names
     * the fault of, the rest. An LcmCoord holds none of the client's secrets: its blocks
     * are freed without the wipe (lcmc__json_plain_free). */
    json_error_t jerr;
    json_t *doc = lcmc__json_text_parse(r->body.data, r->body.length, 0);
    if (doc == NULL) {
        lcmc__json_plain_free(1);
        doc = json_loadb(r->body.data, r->body.length, JSON_REJECT_DUPLICATES, &jerr);
        lcmc__json_plain_free(0);
    }
    lcmc_result result = LCMC_RESULT_NONE;
    char problem[160] = "";
    if (doc == NULL) {
        char *shown = lcmc__one_line(jerr.text, strlen(jerr.text), 100);
        snprintf(problem, sizeof problem, "its body is not valid JSON (%s)", shown ? shown : "?");
        free(shown);
    } else if (lcmc__validate_lcmcoord(doc, &result, problem, sizeof problem) != 0) {
        /* problem says why */
    }
    if (problem[0]) {
        snprintf(why, sizeof why, "EM answered %ld %s but %s", r->status,
                 lcmc__reason_phrase(r->status), problem);
        lcmc__json_decref_plain(doc);
        fail(c, LCMC_EPROTOCOL, method, url, why, NULL);
        return;
    }
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (c->poll_url && c->id && strcmp(c->id, id) != 0) {
        /* The answer to a poll is about the coordination polled, or the EM is confused. */
        char *theirs = lcmc__one_line(id, strlen(id), 80);
        char *ours = lcmc__one_line(c->id, strlen(c->id), 80);
        snprintf(why, sizeof why,
                 "EM answered %ld %s with the LcmCoord of coordination '%s', not of '%s' that "
                 "was polled",
                 r->status, lcmc__reason_phrase(r->status), theirs ? theirs : "?",
                 ours ? ours : "?");
        free(theirs);
        free(ours);
        lcmc__json_decref_plain(doc);
        fail(c, LCMC_EPROTOCOL, method, url, why, NULL);
        return;
    }
    if (c->id == NULL || strcmp(c->id, id) != 0) {
        free(c->id);
        c->id = lcmc__strdup(id);
    }
    lcmc__record_set_id(c->record, c->id);
    c->lcmcoord = doc; /* kept: readers of the value need not parse it again */
    c->lcmcoord_json = malloc(r->body.length + 1);
    if (c->lcmcoord_json == NULL || c->id == NULL) {
        lcmc__error_set(&c->error, LCMC_ENOMEM, "out of memory");
        finish(c, LCMC_ENOMEM);
        return;
    }
    memcpy(c->lcmcoord_json, r->body.data, r->body.length + 1);
    c->result = result;
    finish(c, LCMC_OK);
}

/* Failures of a POST after which the EM may hold all of it: anything but a connection
 * that never opened (or timed out before any of the request left). */
static int post_may_have_reached(const lcmc_transfer_result *r)
{
    /* A proxy that refused the tunnel, or failed before it was up, never passed anything on. */
    if (r->proxy && (r->proxy_tunnel_failed ||
                     (r->proxy_connect_status != 0 &&
                      (r->proxy_connect_status < 200 || r->proxy_connect_status > 299)) ||
                     r->curl_code == CURLE_PROXY))
        return 0;
    switch (r->curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_FAILED_INIT:
    case CURLE_URL_MALFORMAT:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return r->request_sent;
    default:
        return 1;
    }
}

/* A transfer that got no complete answer. Only a POST that never left (the connection
 * did not open) is resent: anything later may have reached the EM. */
static void transport_failure(lcmc_coordination *c, const lcmc_transfer_result *r,
                              const char *method, const char *url, int is_poll)
{
    lcmc_error err = {0};
    lcmc_status status = lcmc__transfer_error(r, method, url, "the EM", &err);
    if (lcmc__now() >= c->deadline - 0.001 && status == LCMC_ETRANSPORT) {
        char *path = lcmc__url_path(url);
        char *what = lcmc__asprintf("the EM gave no complete answer to %s %s in time", method,
                                    path ? path : "?");
        fail_deadline(c, what ? what : "no answer in time");
        free(what);
        free(path);
        lcmc__error_clear(&err);
        return;
    }
    int never_sent = r->curl_code == CURLE_COULDNT_CONNECT && !r->request_sent;
    if (status == LCMC_ETRANSPORT && (is_poll || never_sent)) {
        double wait = answer_wait(c, r);
        if (schedule(c, r, wait, is_poll, lcmc_error_message(&err)) == 0) {
            lcmc__error_clear(&err);
            return;
        }
        /* The cause, not the clock, is what the operator must fix. */
        char *message = lcmc__asprintf("%s; no time left before the deadline to try again",
                                       lcmc_error_message(&err));
        if (message) {
            free(err.message);
            err.message = message;
        }
    }
    if (!is_poll && status == LCMC_ETRANSPORT && post_may_have_reached(r)) {
        /* libcurl may not resend it (transfer.c): a reused connection that died under the
         * POST ends here rather than in a second coordination. */
        char *message;
        if (r->curl_code == CURLE_SEND_FAIL_REWIND || r->curl_code == CURLE_GOT_NOTHING) {
            char *path = lcmc__url_path(url);
            message =
                lcmc__asprintf("the EM closed the connection without answering; it may have "
                               "started the coordination, which is not sent again (%s %s)%s",
                               method, path ? path : "?", lcmc__transfer_hint(r, url, "the EM"));
            free(path);
        } else {
            message = lcmc__asprintf("%s; the EM may have started the coordination, which is not "
                                     "sent again",
                                     lcmc_error_message(&err));
        }
        if (message) {
            free(err.message);
            err.message = message;
        }
    }
    lcmc__error_move(&c->error, &err);
    if (is_poll)
        end_with_cancel_keeping_error(c, status);
    else
        finish(c, status);
}

/* Takes the coordination's URLs and id from a 202's Location. Returns 0; -1 with `message`
 * saying why the Location cannot be used; -2 when memory ran out. */
static int take_location(lcmc_coordination *c, const lcmc_transfer_result *r, const char *url,
                         char *message, size_t message_size)
{
    if (r->location == NULL) {
        snprintf(message, message_size,
                 "EM answered 202 Accepted without a Location header, so there is nothing to "
                 "poll");
        return -1;
    }
    char why[160] = "";
    char *poll_url = lcmc__resolve_location(url, r->location, why, sizeof why);
    if (poll_url == NULL) {
        snprintf(message, message_size, "EM answered 202 Accepted but %s",
                 why[0] ? why : "the Location header cannot be used");
        return -1;
    }
    /* Judged now rather than at the first poll, after a wait: the answer is already known. */
    lcmc_error refused = {0};
    if (lcmc__session_judge_origin(lcmc__client_session(c->client), "GET", poll_url, &refused) <
        0) {
        char *origin = lcmc__url_origin(poll_url);
        snprintf(message, message_size,
                 "EM answered 202 Accepted with a Location on another origin (%s); the "
                 "EM's credentials are not sent there",
                 origin ? origin : "unparsable");
        free(origin);
        free(poll_url);
        lcmc__error_clear(&refused);
        return -1;
    }
    c->poll_url = poll_url;
    c->cancel_url = lcmc__url_cancel(poll_url);
    free(c->id);
    c->id = lcmc__url_last_segment(poll_url);
    lcmc__record_set_id(c->record, c->id);
    return c->cancel_url == NULL ? -2 : 0;
}

static void accepted(lcmc_coordination *c, const lcmc_transfer_result *r, const char *url)
{
    char message[400];
    int taken = take_location(c, r, url, message, sizeof message);
    if (taken == -1) {
        fail(c, LCMC_EPROTOCOL, "POST", url, message, NULL);
        return;
    }
    if (taken == -2) {
        lcmc__error_set(&c->error, LCMC_ENOMEM, "out of memory");
        finish(c, LCMC_ENOMEM);
        return;
    }
    if (c->cancel_wanted && !c->cancel_sent) {
        send_cancel(c, c->deadline);
        if (c->phase == PHASE_DONE)
            return; /* the cancel could not even start */
    }
    schedule_or_fail(c, r, answer_wait(c, r), 1, "EM accepted the coordination (202)");
}

static void busy(lcmc_coordination *c, const lcmc_transfer_result *r, int is_poll)
{
    double wait = answer_wait(c, r);
    if (r->status == 503 && !is_poll) {
        double now = lcmc__wall_now();
        lcmc__record_rejection(c->engine, lcmc__client_serial(c->client), c->action, now,
                               now + wait);
        lcmc__record_set_delay(c->record, now + wait);
    }
    char why[64];
    snprintf(why, sizeof why, "EM %s (%ld)", r->status == 429 ? "rate-limited us" : "busy",
             r->status);
    schedule_or_fail(c, r, wait, is_poll, why);
}

/* A call that got no answer because no credentials could be had (the token endpoint
 * failed or refused): the coordination ends with that reason. */
static void credentials_failure(lcmc_coordination *c, const lcmc_error *err, int is_poll)
{
    lcmc_error copy = {0};
    lcmc__error_set(&copy, err->status, "%s", lcmc_error_message(err));
    copy.http_status = err->http_status;
    lcmc__error_set_request(&copy, err->method, err->url);
    if (is_poll) {
        lcmc__error_move(&c->ending_error, &copy);
        end_with_cancel(c, err->status);
    } else {
        lcmc__error_move(&c->error, &copy);
        finish(c, c->error.status);
    }
}

/* The answer to a POST that was out when the coordination had to end. */
static void post_answer_in_grace(lcmc_coordination *c, const lcmc_transfer_result *r,
                                 const lcmc_error *err)
{
    lcmc__timer_disarm(c->engine, &c->timer);
    if (err == NULL && r->curl_code == CURLE_OK && r->status == 202) {
        char message[400];
        int taken = take_location(c, r, c->post_url, message, sizeof message);
        if (taken == 0) {
            extend_ending_message(c, "; the EM was asked to cancel");
            end_with_cancel(c, c->ending_status);
        } else {
            end_left_behind(c, taken == -1 ? message : "out of memory");
        }
    } else if (err == NULL && r->curl_code != CURLE_OK && post_may_have_reached(r)) {
        char grace_text[32], why[64];
        seconds_text(POST_ANSWER_GRACE, grace_text);
        if (r->curl_code == CURLE_OPERATION_TIMEDOUT)
            snprintf(why, sizeof why, "no answer to the POST within %s", grace_text);
        else
            snprintf(why, sizeof why, "the POST got no complete answer");
        end_left_behind(c, why);
    } else {
        /* A 201 finished it, any other answer refused it, or nothing reached the EM. */
        lcmc__error_move(&c->error, &c->ending_error);
        finish(c, c->ending_status);
    }
}

static void post_done(void *userdata, lcmc_transfer_result *r, const lcmc_error *err)
{
    lcmc_coordination *c = userdata;
    LCMC_DEBUGASSERT(c->phase == PHASE_POST || c->phase == PHASE_POST_GRACE);
    c->call = NULL;
    if (c->phase == PHASE_POST_GRACE) {
        post_answer_in_grace(c, r, err);
        return;
    }
    lcmc__timer_disarm(c->engine, &c->timer);
    if (err)
        credentials_failure(c, err, 0);
    else if (r->curl_code != CURLE_OK)
        transport_failure(c, r, "POST", c->post_url, 0);
    else {
        lcmc__log_response(c->engine, &c->about, "POST", c->post_url, r->status, r->elapsed);
        if (r->status == 201)
            accept_lcmcoord(c, r, "POST", c->post_url);
        else if (r->status == 202)
            accepted(c, r, c->post_url);
        else if (r->status == 503 || r->status == 429)
            busy(c, r, 0);
        else
            fail_with_answer(c, r, "POST", c->post_url);
    }
}

static void poll_done(void *userdata, lcmc_transfer_result *r, const lcmc_error *err)
{
    lcmc_coordination *c = userdata;
    LCMC_DEBUGASSERT(c->phase == PHASE_POLL);
    c->call = NULL;
    if (err)
        credentials_failure(c, err, 1);
    else if (r->curl_code != CURLE_OK)
        transport_failure(c, r, "GET", c->poll_url, 1);
    else {
        lcmc__log_response(c->engine, &c->about, "GET", c->poll_url, r->status, r->elapsed);
        if (r->status == 200)
            accept_lcmcoord(c, r, "GET", c->poll_url);
        else if (r->status == 202 && c->last_look) {
            char what[96];
            snprintf(what, sizeof what, "the coordination was still in progress after %u polls",
                     c->polls);
            fail_deadline(c, what);
        } else if (r->status == 202)
            schedule_or_fail(c, r, answer_wait(c, r), 1, "still in progress (202)");
        else if (r->status == 503 || r->status == 429)
            busy(c, r, 1);
        else
            fail_with_answer(c, r, "GET", c->poll_url);
    }
}

static void cancel_done(void *userdata, lcmc_transfer_result *r, const lcmc_error *err)
{
    lcmc_coordination *c = userdata;
    c->cancel_call = NULL;
    const char *id = c->id ? c->id : "?";
    lcmc_event event = lcmc__event_make(LCMC_EVENT_CANCEL, LCMC_LOG_INFO, &c->about);
    event.method = "POST";
    event.url = c->cancel_url;
    event.status = err ? err->http_status : r->curl_code == CURLE_OK ? (int)r->status : 0;
    if (err || r->curl_code != CURLE_OK) {
        event.level = LCMC_LOG_WARN;
        event.reason = "failed";
        event.error_kind = err ? lcmc_status_name(err->status) : "transport";
        lcmc__event_emit(c->engine, &event, "the cancel request for coordination %s failed: %s", id,
                         err                ? lcmc_error_message(err)
                         : r->curl_error[0] ? r->curl_error
                                            : "no answer");
    } else if (r->status == 202 || r->status == 200 || r->status == 204) {
        event.reason = "accepted";
        lcmc__event_emit(c->engine, &event, "EM accepted the cancel of coordination %s", id);
    } else if (r->status == 404 || r->status == 405) {
        /* A 1.0.0 producer may not know the cancel resource at all. */
        event.reason = "unsupported";
        lcmc__event_emit(c->engine, &event, "EM does not support cancel (%ld)", r->status);
    } else if (r->status == 409) {
        event.reason = "already_finished";
        lcmc__event_emit(c->engine, &event, "EM says coordination %s is already finished (409)",
                         id);
    } else {
        event.level = LCMC_LOG_WARN;
        event.reason = "refused";
        lcmc__event_emit(c->engine, &event, "EM answered %ld to the cancel of coordination %s",
                         r->status, id);
    }
    if (c->phase == PHASE_CANCELLING) {
        lcmc__error_move(&c->error, &c->ending_error);
        finish(c, c->ending_status);
    }
}

static int start_call(lcmc_coordination *c, lcmc_call **slot, const char *method, const char *url,
                      const char *body, double deadline, lcmc_call_done_fn *done)
{
    lcmc_error err = {0};
    lcmc_call_request request = {method, url,      body,     body ? strlen(body) : 0,
                                 NULL,   deadline, &c->about};
    *slot = lcmc__call_start(lcmc__client_session(c->client), &request, done, c, &err);
    if (*slot == NULL) {
        lcmc__error_move(&c->error, &err);
        finish(c, c->error.status);
        return -1;
    }
    return 0;
}

/* The POST may outlive the deadline by POST_ANSWER_GRACE, no more: the deadline itself is
 * a timer, at which the coordination ends, waiting out that grace only when the EM may
 * already hold the whole request. */
static void send_post(lcmc_coordination *c)
{
    LCMC_DEBUGASSERT(c->call == NULL && !c->cancel_wanted);
    c->phase = PHASE_POST;
    c->posts++;
    if (start_call(c, &c->call, "POST", c->post_url, c->body, c->deadline + POST_ANSWER_GRACE,
                   post_done) != 0)
        return;
    if (lcmc__timer_arm(c->engine, &c->timer, c->deadline) != 0) {
        lcmc__error_set(&c->error, LCMC_ENOMEM, "out of memory");
        finish(c, LCMC_ENOMEM);
    }
}

static void send_poll(lcmc_coordination *c)
{
    LCMC_DEBUGASSERT(c->call == NULL && c->poll_url != NULL);
    c->phase = PHASE_POLL;
    c->polls++;
    start_call(c, &c->call, "GET", c->poll_url, NULL, c->deadline, poll_done);
}

static void send_cancel(lcmc_coordination *c, double deadline)
{
    LCMC_DEBUGASSERT(c->cancel_call == NULL && !c->cancel_sent && c->cancel_url != NULL);
    c->cancel_sent = 1;
    /* An empty body: the cancel task resource takes none. */
    start_call(c, &c->cancel_call, "POST", c->cancel_url, NULL, deadline, cancel_done);
}

/* ---- public ---------------------------------------------------------------------------- */

/* Starts a coordination from the request as text (sent as it is) or as a value (written
 * once here): exactly one of request_json and request is given. Either way the request is
 * parsed at most once. */
static lcmc_status start(lcmc_coordination **out, lcmc_client *client, const char *request_json,
                         const json_t *request, double timeout)
{
    if (out)
        *out = NULL;
    if (out == NULL || client == NULL || (request_json == NULL && request == NULL))
        return LCMC_EUSAGE;
    lcmc_coordination *c = calloc(1, sizeof *c);
    if (c == NULL)
        return LCMC_ENOMEM;
    c->client = client;
    c->engine = lcmc__client_engine(client);
    c->about.action = &c->action;
    c->about.id = &c->id;
    c->options = lcmc__client_options(client);
    c->op.interrupt = interrupt;
    lcmc__timer_init(&c->timer, timer_fired, c);
    /* Constant waits of default_interval when the EM names none, never under the floor,
     * for as long as the deadline allows (plan_wait holds the deadline). */
    c->policy = (lcmc_retry_policy){.version = LCMC_RETRY_POLICY_VERSION,
                                    .base = c->options->default_interval,
                                    .multiplier = 1,
                                    .floor = c->options->wait_floor,
                                    .honour_retry_after = 1,
                                    .retry_on_transport = 1,
                                    .retry_on = {202, 429, 503}};
    double total = timeout > 0 ? timeout : c->options->timeout;
    /* Beyond this no deadline means anything, and larger values would overflow the
     * millisecond timeouts handed to libcurl. */
    if (!(total <= LCMC_MAX_TIMEOUT))
        total = LCMC_MAX_TIMEOUT;
    c->deadline = lcmc__now() + total;
    c->reserve = total * 0.1 < LAST_LOOK_RESERVE_MAX ? total * 0.1 : LAST_LOOK_RESERVE_MAX;
    c->post_url = lcmc__url_join(c->options->endpoint, "/lcmcoord/v1/coordinations");
    c->body = request_json ? lcmc__strdup(request_json) : lcmc_json_dump(request, NULL);
    if (c->post_url == NULL || c->body == NULL) {
        lcmc_coordination_free(c);
        return LCMC_ENOMEM;
    }
    *out = c;

    char why[300] = "";
    json_t *parsed = NULL;
    if (request == NULL) {
        /* The reason names only where: the text may hold inputParams' values. */
        char reason[200];
        parsed = lcmc_json_parse(request_json, strlen(request_json), reason, sizeof reason);
        if (parsed == NULL)
            snprintf(why, sizeof why, "the LcmCoordRequest is not valid JSON (%s)", reason);
        request = parsed;
    }
    if (request == NULL) {
        /* why says it */
    } else if (lcmc__validate_request(request, why, sizeof why) != 0) {
        /* why names the field */
    } else {
        c->action =
            lcmc__strdup(json_string_value(json_object_get(request, "coordinationActionName")));
        /* Sent as it is (the API may grow), but most often a misspelt field. */
        const char *unknown = lcmc__request_unknown_field(request);
        if (unknown) {
            lcmc_event event = lcmc__event_make(LCMC_EVENT_WARNING, LCMC_LOG_WARN, &c->about);
            event.reason = "unknown_field";
            lcmc__event_emit(
                c->engine, &event,
                "the LcmCoordRequest has a field the API does not define: '%s' (misspelt?)",
                unknown);
        }
    }
    json_decref(parsed);
    if (why[0]) {
        char *message = lcmc__asprintf("invalid LcmCoordRequest: %s", why);
        lcmc__error_set(&c->error, LCMC_EINVALID, "%s", message ? message : why);
        free(message);
        c->status = LCMC_EINVALID;
        c->phase = PHASE_DONE;
        return LCMC_EINVALID;
    }
    if (lcmc_engine_interrupted(c->engine)) {
        lcmc__error_set(&c->error, LCMC_ECANCELLED, "interrupted before the coordination began");
        c->status = LCMC_ECANCELLED;
        c->phase = PHASE_DONE;
        return LCMC_ECANCELLED;
    }
    c->record =
        lcmc__record_begin(c->engine, lcmc__client_serial(client), c->action, lcmc__wall_now());
    if (c->action == NULL || c->record == NULL) {
        lcmc__error_set(&c->error, LCMC_ENOMEM, "out of memory");
        c->status = LCMC_ENOMEM;
        c->phase = PHASE_DONE;
        return LCMC_ENOMEM;
    }
    lcmc__op_register(c->engine, &c->op);
    send_post(c);
    return c->phase == PHASE_DONE ? c->status : LCMC_OK;
}

lcmc_status lcmc_coordination_start(lcmc_coordination **out, lcmc_client *client,
                                    const char *request_json, double timeout)
{
    if (request_json == NULL) {
        if (out)
            *out = NULL;
        return LCMC_EUSAGE;
    }
    return start(out, client, request_json, NULL, timeout);
}

lcmc_status lcmc_coordination_start_value(lcmc_coordination **out, lcmc_client *client,
                                          const json_t *request, double timeout)
{
    if (request == NULL) {
        if (out)
            *out = NULL;
        return LCMC_EUSAGE;
    }
    return start(out, client, NULL, request, timeout);
}

lcmc_status lcmc_coordination_wait(lcmc_coordination *c)
{
    if (c == NULL)
        return LCMC_EUSAGE;
    while (c->phase != PHASE_DONE) {
        if (lcmc__engine_step(c->engine) == LCMC_EUSAGE && c->phase != PHASE_DONE) {
            lcmc__error_set(&c->error, LCMC_ETRANSPORT, "the coordination was lost by the engine");
            finish(c, LCMC_ETRANSPORT);
        }
    }
    return c->status;
}

lcmc_status lcmc_client_coordinate(lcmc_client *client, const char *request_json, double timeout,
                                   lcmc_coordination **out)
{
    lcmc_status s = lcmc_coordination_start(out, client, request_json, timeout);
    if (*out == NULL)
        return s;
    return lcmc_coordination_wait(*out);
}

lcmc_status lcmc_client_coordinate_value(lcmc_client *client, const json_t *request, double timeout,
                                         lcmc_coordination **out)
{
    lcmc_status s = lcmc_coordination_start_value(out, client, request, timeout);
    if (out == NULL || *out == NULL)
        return s;
    return lcmc_coordination_wait(*out);
}

lcmc_status lcmc_coordination_cancel(lcmc_coordination *c)
{
    if (c == NULL)
        return LCMC_EUSAGE;
    if (c->phase == PHASE_DONE || c->phase == PHASE_CANCELLING || c->phase == PHASE_POST_GRACE)
        return LCMC_OK;
    /* Before the EM has the POST there is nothing to cancel there, and it is not sent again. */
    if (c->phase == PHASE_WAIT_POST ||
        (c->phase == PHASE_POST && !lcmc__call_request_started(c->call))) {
        end_cancelled_before_accepted(c);
        return LCMC_OK;
    }
    c->cancel_wanted = 1;
    if (c->phase == PHASE_POST)
        lcmc__call_send_no_more(c->call); /* the POST out is the last one sent */
    if (c->cancel_url && !c->cancel_sent)
        send_cancel(c, c->deadline);
    return LCMC_OK;
}

void lcmc_coordination_abort(lcmc_coordination *c)
{
    if (c == NULL || c->phase == PHASE_DONE)
        return;
    lcmc__error_set(&c->error, LCMC_ECANCELLED, "the coordination was aborted");
    finish(c, LCMC_ECANCELLED);
}

void lcmc_coordination_free(lcmc_coordination *c)
{
    if (c == NULL)
        return;
    lcmc_coordination_abort(c);
    lcmc__error_clear(&c->error);
    lcmc__error_clear(&c->ending_error);
    free(c->body);
    free(c->action);
    free(c->post_url);
    free(c->poll_url);
    free(c->cancel_url);
    free(c->id);
    free(c->lcmcoord_json);
    lcmc__json_decref_plain(c->lcmcoord);
    free(c);
}

int lcmc_coordination_done(const lcmc_coordination *c)
{
    return c == NULL || c->phase == PHASE_DONE;
}

lcmc_status lcmc_coordination_status(const lcmc_coordination *c)
{
    return c ? c->status : LCMC_EUSAGE;
}

const lcmc_error *lcmc_coordination_error(const lcmc_coordination *c)
{
    if (c == NULL || c->phase != PHASE_DONE || c->status == LCMC_OK)
        return NULL;
    return &c->error;
}

lcmc_result lcmc_coordination_result(const lcmc_coordination *c)
{
    return c ? c->result : LCMC_RESULT_NONE;
}

const char *lcmc_coordination_lcmcoord_json(const lcmc_coordination *c)
{
    return c ? c->lcmcoord_json : NULL;
}

const json_t *lcmc_coordination_lcmcoord_value(const lcmc_coordination *c)
{
    return c ? c->lcmcoord : NULL;
}

const char *lcmc_coordination_id(const lcmc_coordination *c)
{
    return c ? c->id : NULL;
}
