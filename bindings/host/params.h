/*
 * Checking the VNFC parameters of `lcmcoord run` (params.c).
 */
#ifndef LCMCOORD_HOST_PARAMS_H
#define LCMCOORD_HOST_PARAMS_H

#include <stddef.h>

#include <lua.h>

/* The largest `timeout` the VNFC parameters may give, seconds (over 100 days). */
#define LCMC_PARAMS_TIMEOUT_MAX 1e7

/* Decodes `text` (the module must be open in L) and pushes the parameter table. With
 * `check_fields`, `endpoint` must be a string, `authentication` an object, null or absent
 * (both: no credentials), `LcmCoordRequest` an object, and `timeout`, when given and not
 * null, a positive number of seconds up to LCMC_PARAMS_TIMEOUT_MAX. Returns 0, or -1 with
 * nothing pushed and why set. */
int lcmc_params_push(lua_State *L, const char *text, size_t length, int check_fields, char *why,
                     size_t why_size);

#endif
