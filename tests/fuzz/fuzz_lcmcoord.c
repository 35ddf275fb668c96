/*
 * Fuzz target: an EM's answer body, read as an LcmCoord (201/200) and as a ProblemDetails
 * (error answers), and the one-line message made from it.
 */
#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (doc) {
        lcmc_result result;
        char why[200];
        lcmc__validate_lcmcoord(doc, &result, why, sizeof why);
        json_decref(doc);
    }
    json_t *problem = lcmc__decode_problem((const char *)data, size);
    long status = size > 0 ? 300 + data[0] : 500;
    char *message = lcmc__http_error_message(
        status, problem, size > 1 && data[1] & 1 ? "text/plain" : NULL, (const char *)data, size,
        "POST", "http://h/lcmcoord/v1/coordinations");
    free(message);
    json_decref(problem);
    return 0;
}
