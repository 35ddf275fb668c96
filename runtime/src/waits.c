/*
 * How long to wait before the next attempt, and whether that wait fits the deadline.
 * Pure arithmetic, kept apart so the unit tests pin every edge (Retry-After 0, past dates,
 * waits that end after the deadline).
 */
#include "internal.h"

double lcmc__retry_wait(int present, long long retry_after, double floor, double default_interval)
{
    if (!present)
        return default_interval > floor ? default_interval : floor;
    /* "0", a past HTTP-date and garbage all reach us as <= 0: a floor keeps a busy EM from
     * being hammered in a tight loop. */
    if ((double)retry_after < floor)
        return floor;
    return (double)retry_after;
}

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
