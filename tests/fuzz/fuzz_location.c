/*
 * Fuzz target: a Location header (and an apiRoot) as an EM might send them: resolution
 * against the request URL, origins, paths and coordination ids taken from the result.
 */
#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_string(data, size);
    if (text == NULL)
        return 0;
    char why[160];
    char *url = lcmc__resolve_location("http://em.example:6789/p/lcmcoord/v1/coordinations", text,
                                       why, sizeof why);
    if (url) {
        free(lcmc__url_origin(url));
        free(lcmc__url_path(url));
        free(lcmc__url_last_segment(url));
        free(url);
    }
    free(lcmc__normalise_endpoint(text, why, sizeof why));
    free(text);
    return 0;
}
