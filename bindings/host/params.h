/*
 * Checking the VNFC parameters of `lcmcoord run` (params.c).
 */
#ifndef LCMCOORD_HOST_PARAMS_H
#define LCMCOORD_HOST_PARAMS_H

#include <stddef.h>

#include <lua.h>

/* Decodes `text` (the module must be open in L) and pushes the parameter table. With
 * `check_fields`, `endpoint` must be a string, `authentication` an object (or null) and
 * `LcmCoordRequest` an object. Returns 0, or -1 with nothing pushed and why set. */
int lcmc_params_push(lua_State *L, const char *text, size_t length, int check_fields, char *why,
                     size_t why_size);

#endif
