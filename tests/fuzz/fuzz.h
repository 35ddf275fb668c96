/*
 * What every fuzz target shares: the libFuzzer entry point it defines, and a helper that
 * gives parsers wanting C strings a NUL-terminated copy of the input.
 */
#ifndef LCMCOORD_FUZZ_H
#define LCMCOORD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
