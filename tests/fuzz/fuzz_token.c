/*
 * Fuzz target: a token endpoint's answer, and the `authentication` structure a VNFM passes
 * (both outside input the client parses before using credentials).
 */
#include "auth.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = NULL;
    double expires_in = 0;
    int has_expiry = 0;
    char why[256];
    if (lcmc__parse_token_response((const char *)data, size, &token, &expires_in, &has_expiry, why,
                                   sizeof why) == 0)
        lcmc_free_secret(token);
    char *text = fuzz_string(data, size);
    if (text) {
        lcmc_auth auth;
        if (lcmc__auth_parse(&auth, text, why, sizeof why) == LCMC_OK)
            lcmc__auth_clear(&auth);
        free(text);
    }
    return 0;
}
