/*
 * Fuzz target: an LcmCoordRequest, as the client checks it before sending and as the EM
 * simulator checks it when it arrives.
 */
#include "em.h"
#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[300];
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (doc) {
        lcmc__validate_request(doc, why, sizeof why);
        json_decref(doc);
    }
    json_t *body = NULL;
    if (em_parse_body((const char *)data, size, &body, why, sizeof why) == 0 && body) {
        em_validate_request(body, why, sizeof why);
        json_decref(body);
    }
    return 0;
}
