/*
 * Fuzz target: the form body of a token request, as the EM simulator's token endpoint
 * parses it, and the copy of it the journal keeps. Besides memory errors it checks what
 * must hold for any input: the parse refuses bodies past the token endpoint's cap, and the
 * journal's copy never holds the value of a field outside the allow-list verbatim.
 */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "em.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct em_form form;
    char why[200];
    const char *body = (const char *)data;
    if (em_form_parse(body, size, &form, why, sizeof why) == 0) {
        if (size > EM_TOKEN_BODY_MAX || form.n > EM_FORM_MAX_FIELDS)
            abort();
        em_form_free(&form);
    }
    size_t n;
    char *shown = em_form_redact(body, size, &n);
    if (strlen(shown) != n)
        abort();
    /* A secret-bearing field's raw value never survives into the copy. */
    static const char field[] = "client_secret=";
    const char *at = size < 4096 ? memmem(body, size, field, sizeof field - 1) : NULL;
    if (at && (at == body || at[-1] == '&')) {
        const char *value = at + sizeof field - 1;
        size_t rest = (size_t)(body + size - value);
        const char *amp = memchr(value, '&', rest);
        size_t vlen = amp ? (size_t)(amp - value) : rest;
        char needle[64];
        if (vlen >= 12 && vlen < sizeof needle && !memchr(value, '\0', vlen)) {
            memcpy(needle, value, vlen);
            needle[vlen] = '\0';
            /* (when the same text is not also the value of a field that may be shown) */
            const char *again = memmem(value + 1, (size_t)(body + size - value - 1), needle, vlen);
            const char *before = memmem(body, (size_t)(value - body), needle, vlen);
            if (!again && !before && strstr(shown, needle))
                abort();
        }
    }
    free(shown);
    return 0;
}
