/*
 * The `authentication` structure of additionalParams, read once per client: which authType
 * wins (CLIENT_CERT > CLIENT_CREDENTIALS > BASIC) and the parameters it needs. This is the
 * one seam through which credentials reach a request; secrets are wiped when freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

void lcmc__auth_clear(lcmc_auth *auth)
{
    free(auth->basic_user);
    lcmc__free_secret(auth->basic_password);
    memset(auth, 0, sizeof *auth);
}

static int type_listed(const json_t *types, const char *name)
{
    if (json_is_string(types))
        return strcmp(json_string_value(types), name) == 0;
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), name) == 0)
            return 1;
    }
    return 0;
}

static const char *string_field(const json_t *object, const char *field)
{
    json_t *v = json_object_get(object, field);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

lcmc_status lcmc__auth_parse(lcmc_auth *auth, const char *authentication_json, char *why,
                             size_t why_size)
{
    memset(auth, 0, sizeof *auth);
    if (authentication_json == NULL)
        return LCMC_OK;
    json_error_t jerr;
    json_t *doc = json_loads(authentication_json, JSON_REJECT_DUPLICATES, &jerr);
    lcmc_status status = LCMC_EUSAGE;
    if (doc == NULL) {
        snprintf(why, why_size, "authentication is not valid JSON: %s", jerr.text);
        return LCMC_EUSAGE;
    }
    if (json_is_null(doc)) {
        json_decref(doc);
        return LCMC_OK;
    }
    if (!json_is_object(doc)) {
        snprintf(why, why_size, "authentication must be an object");
        goto done;
    }
    json_t *types = json_object_get(doc, "authType");
    if (types == NULL || (!json_is_array(types) && !json_is_string(types))) {
        snprintf(why, why_size,
                 "authentication.authType must be a list of BASIC, "
                 "OAUTH2_CLIENT_CREDENTIALS, OAUTH2_CLIENT_CERT");
        goto done;
    }
    size_t i;
    json_t *t;
    if (json_is_array(types)) {
        json_array_foreach(types, i, t)
        {
            const char *name = json_string_value(t);
            if (name == NULL ||
                (strcmp(name, "BASIC") && strcmp(name, "OAUTH2_CLIENT_CREDENTIALS") &&
                 strcmp(name, "OAUTH2_CLIENT_CERT"))) {
                snprintf(why, why_size,
                         "authentication.authType[%zu] is not BASIC, "
                         "OAUTH2_CLIENT_CREDENTIALS or OAUTH2_CLIENT_CERT",
                         i + 1);
                goto done;
            }
        }
    }
    /* The strongest listed type wins. */
    if (type_listed(types, "OAUTH2_CLIENT_CERT")) {
        snprintf(why, why_size, "authType OAUTH2_CLIENT_CERT is not supported by this build");
        goto done;
    }
    if (type_listed(types, "OAUTH2_CLIENT_CREDENTIALS")) {
        snprintf(why, why_size,
                 "authType OAUTH2_CLIENT_CREDENTIALS is not supported by this build");
        goto done;
    }
    if (type_listed(types, "BASIC")) {
        json_t *params = json_object_get(doc, "paramsBasic");
        if (!json_is_object(params)) {
            snprintf(why, why_size, "authentication.paramsBasic is missing");
            goto done;
        }
        const char *user = string_field(params, "userName");
        const char *password = string_field(params, "password");
        if (user == NULL) {
            snprintf(why, why_size, "authentication.paramsBasic.userName is missing");
            goto done;
        }
        if (password == NULL) {
            snprintf(why, why_size, "authentication.paramsBasic.password is missing");
            goto done;
        }
        if (strchr(user, ':')) {
            snprintf(why, why_size, "authentication.paramsBasic.userName must not contain ':'");
            goto done;
        }
        auth->type = LCMC_AUTH_BASIC;
        auth->basic_user = lcmc__strdup(user);
        auth->basic_password = lcmc__strdup(password);
        if (!auth->basic_user || !auth->basic_password) {
            lcmc__auth_clear(auth);
            status = LCMC_ENOMEM;
            goto done;
        }
        status = LCMC_OK;
        goto done;
    }
    snprintf(why, why_size, "authentication.authType lists no type");
done:
    json_decref(doc);
    return status;
}

void lcmc__auth_apply(const lcmc_auth *auth, lcmc_transfer_spec *spec)
{
    if (auth->type == LCMC_AUTH_BASIC) {
        spec->basic_user = auth->basic_user;
        spec->basic_password = auth->basic_password;
    }
}
