/*
 * Fuzz target: what `lcmcoord serve` checks of a request beyond the EM's own validation
 * (fuzz_request.c): the Accept header, inputParams.vnfcInstanceId, and the exclusive keys made
 * from a valid request in each --exclusive mode. The input is the body; its first line is also
 * taken as an Accept value.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t line = 0;
    while (line < size && data[line] != '\n' && line < 4096)
        line++;
    char *accept = malloc(line + 1);
    if (!accept)
        return 0;
    memcpy(accept, data, line);
    accept[line] = '\0';
    (void)serve_accept_ok(accept);
    free(accept);
    char why[600];
    json_t *body = NULL;
    if (em_parse_body((const char *)data, size, &body, why, sizeof why) == 0 && body) {
        if (em_validate_request(body, why, sizeof why) == 0 &&
            serve_check_vnfcs(body, why, sizeof why) == 0) {
            for (int mode = SERVE_EXCLUSIVE_VNFC; mode <= SERVE_EXCLUSIVE_NONE; mode++) {
                char **keys = serve_exclusive_keys((enum serve_exclusive)mode, body);
                for (size_t i = 0; keys && keys[i]; i++)
                    if (!keys[i][0] && mode != SERVE_EXCLUSIVE_NONE)
                        abort(); /* never an empty key: vnfInstanceId is non-empty */
                serve_free_keys(keys);
            }
        }
        json_decref(body);
    }
    return 0;
}
