/*
 * Fuzz target: Retry-After values. The client reads them through libcurl (delay-seconds or
 * an HTTP-date) and turns them into waits with its retry policy; the EM simulator parses
 * its --retry-after spec. Every wait must be finite and never under the floor, whatever
 * the value.
 */
#include <math.h>
#include <stdio.h>

#include "em.h"
#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_string(data, size);
    if (text == NULL)
        return 0;
    struct em_retry spec;
    char why[200];
    em_retry_parse(text, &spec, why, sizeof why);

    time_t date = curl_getdate(text, NULL);
    lcmc_retry_policy policy = LCMC_RETRY_POLICY_INIT;
    policy.attempts = 0;
    lcmc_retry_outcome outcome = {0};
    outcome.attempt = size > 0 ? data[0] : 1;
    outcome.status = 503;
    outcome.retry_after_present = 1;
    outcome.retry_after = date != -1 ? (double)(date - time(NULL)) : strtod(text, NULL);
    outcome.elapsed = size > 1 ? data[1] : 0;
    double wait = lcmc_retry_next_wait(&policy, &outcome, size > 2 ? data[2] / 256.0 : 0.5);
    if (wait >= 0 && (isnan(wait) || isinf(wait) || wait < policy.floor)) {
        fprintf(stderr, "wait %f out of bounds for '%s'\n", wait, text);
        abort();
    }
    free(text);
    return 0;
}
