/*
 * How long to wait before the next attempt, and whether that wait fits the deadline.
 * Pure arithmetic, kept apart so the unit tests pin every edge (Retry-After 0, past dates,
 * waits that end after the deadline).
 */
#include <math.h>

#include "internal.h"

lcmc_wait_plan lcmc__plan_wait(double now, double wait, double deadline, int shortenable,
                               double reserve, double *until)
{
    double end = now + wait;
    if (end <= deadline) {
        *until = end;
        return LCMC_WAIT_AS_ASKED;
    }
    /* A resent POST must honour the EM's Retry-After: asking earlier would only be
     * refused again, so a wait past the deadline is a failure now, not later. */
    if (!shortenable) {
        *until = now;
        return LCMC_WAIT_PAST_DEADLINE;
    }
    /* A poll may come early: one last look just before the deadline can still find the
     * result, and costs the EM one GET. */
    double last_look = deadline - reserve;
    if (last_look <= now) {
        *until = now;
        return LCMC_WAIT_PAST_DEADLINE;
    }
    *until = last_look;
    return LCMC_WAIT_SHORTENED;
}

static int is_retryable(const lcmc_retry_policy *p, const lcmc_retry_outcome *o)
{
    if (o->transport_failure)
        return p->retry_on_transport;
    for (int i = 0; i < LCMC_RETRY_MAX_STATUSES && p->retry_on[i] != 0; i++)
        if (p->retry_on[i] == o->status)
            return 1;
    return 0;
}

double lcmc_retry_next_wait(const lcmc_retry_policy *p, const lcmc_retry_outcome *o, double random)
{
    if (p == NULL || o == NULL || p->version != LCMC_RETRY_POLICY_VERSION)
        return -1;
    if (!is_retryable(p, o))
        return -1;
    if (p->attempts > 0 && o->attempt >= p->attempts)
        return -1;
    double wait;
    if (p->honour_retry_after && o->retry_after_present) {
        /* As a double all the way: a hostile value (1e20, NaN) must neither overflow a
         * conversion nor slip under the floor. */
        double asked = o->retry_after;
        wait = !(asked >= p->floor) ? p->floor : asked;
        if (p->max > 0 && wait > p->max)
            wait = p->max;
    } else {
        /* Exponential backoff from `base`, capped, then shortened at random by up to
         * `jitter` so that many clients refused together do not come back together. */
        double multiplier = p->multiplier > 0 ? p->multiplier : 1;
        wait = p->base;
        for (int i = 1; i < o->attempt && (p->max <= 0 || wait < p->max); i++)
            wait *= multiplier;
        if (p->max > 0 && wait > p->max)
            wait = p->max;
        double jitter = p->jitter < 0 ? 0 : p->jitter > 1 ? 1 : p->jitter;
        wait *= 1 - jitter * random;
        if (wait < p->floor)
            wait = p->floor;
    }
    if (p->deadline > 0) {
        /* The deadline bounds when an attempt may start: a wait past it is cut to end
         * there, and none is left once it has passed. */
        double left = p->deadline - o->elapsed;
        if (left <= 0)
            return -1;
        if (wait > left)
            wait = left;
    }
    return wait;
}
