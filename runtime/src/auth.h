/*
 * Credentials of one client, parsed from the ETSI `authentication` structure (auth.c).
 */
#ifndef LCMCOORD_AUTH_H
#define LCMCOORD_AUTH_H

#include "internal.h"

typedef enum lcmc_auth_type {
    LCMC_AUTH_NONE = 0,
    LCMC_AUTH_BASIC,
} lcmc_auth_type;

typedef struct lcmc_auth {
    lcmc_auth_type type;
    char *basic_user;
    char *basic_password;
} lcmc_auth;

/* Reads the structure (NULL or JSON null: no auth). On failure `why` names the field; the
 * message never holds a secret. */
lcmc_status lcmc__auth_parse(lcmc_auth *auth, const char *authentication_json, char *why,
                             size_t why_size);
void lcmc__auth_clear(lcmc_auth *auth);
/* Adds the credentials to a request (only ever called for the EM's own origin). */
void lcmc__auth_apply(const lcmc_auth *auth, lcmc_transfer_spec *spec);

#endif
