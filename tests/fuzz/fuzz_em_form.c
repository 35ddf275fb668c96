/*
 * Fuzz target: the form body of a token request, as the EM simulator's token endpoint
 * parses it.
 */
#include "em.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct em_form form;
    char why[200];
    if (em_form_parse((const char *)data, size, &form, why, sizeof why) == 0)
        em_form_free(&form);
    return 0;
}
