/*
 * The `authentication` structure of additionalParams, read once per client: which authType
 * wins (OAUTH2_CLIENT_CERT > OAUTH2_CLIENT_CREDENTIALS > BASIC) and the parameters it
 * needs; the client certificate checks done before anything is sent (the certificateRef
 * thumbprint, a key that matches); and the reading of a token endpoint's answer. Secrets
 * are wiped when freed and never copied into a message.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth.h"

/* jansson frees its strings, and its parser's scratch buffers, without wiping them; the
 * authentication structure and a token endpoint's answer go through it. Every block jansson
 * frees is wiped first (all of it: malloc_usable_size), from the first parse of either on.
 * jansson's allocator is process-wide: the process's other jansson users get the same. */
static _Thread_local int plain_free;

static void free_wiped(void *block)
{
    if (block && !plain_free)
        OPENSSL_cleanse(block, malloc_usable_size(block));
    free(block);
}

void lcmc__json_plain_free(int on)
{
    plain_free = on;
}

void lcmc__json_decref_plain(json_t *value)
{
    plain_free = 1;
    json_decref(value);
    plain_free = 0;
}

static void install_wiping_free(void)
{
    json_set_alloc_funcs(malloc, free_wiped);
}

void lcmc__json_wipe_on_free(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_wiping_free);
}

void lcmc__auth_clear(lcmc_auth *auth)
{
    free(auth->basic_user);
    lcmc__free_secret(auth->basic_password);
    free(auth->client_id);
    lcmc__free_secret(auth->client_secret);
    free(auth->token_endpoint);
    free(auth->certificate_ref);
    memset(auth, 0, sizeof *auth);
}

int lcmc__auth_uses_token(const lcmc_auth *auth)
{
    return auth->type == LCMC_AUTH_OAUTH2_CLIENT_CREDENTIALS ||
           auth->type == LCMC_AUTH_OAUTH2_CLIENT_CERT;
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

static int is_known_type(const char *name)
{
    return name && (strcmp(name, "BASIC") == 0 || strcmp(name, "OAUTH2_CLIENT_CREDENTIALS") == 0 ||
                    strcmp(name, "OAUTH2_CLIENT_CERT") == 0);
}

/* Copies a required non-empty string field of `params`, or says which one is missing. */
static int take_string(const json_t *params, const char *group, const char *field, char **out,
                       char *why, size_t why_size)
{
    json_t *v = json_object_get(params, field);
    if (v == NULL || json_is_null(v)) {
        snprintf(why, why_size, "authentication.%s.%s is missing", group, field);
        return -1;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(why, why_size, "authentication.%s.%s must be a non-empty string", group, field);
        return -1;
    }
    *out = lcmc__strdup(json_string_value(v));
    if (*out == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    return 0;
}

static const json_t *take_group(const json_t *doc, const char *group, char *why, size_t why_size)
{
    json_t *params = json_object_get(doc, group);
    if (!json_is_object(params)) {
        snprintf(why, why_size, "authentication.%s is missing (the authType needs it)", group);
        return NULL;
    }
    return params;
}

static int check_token_endpoint(const char *url, const char *group, char *why, size_t why_size)
{
    char detail[128] = "";
    char *normal = lcmc__normalise_endpoint(url, detail, sizeof detail);
    if (normal == NULL) {
        snprintf(why, why_size, "authentication.%s.tokenEndpoint is not an http(s) URL", group);
        return -1;
    }
    free(normal);
    return 0;
}

static int parse_client_cert(lcmc_auth *auth, const json_t *doc, char *why, size_t why_size)
{
    const char *group = "paramsOauth2ClientCert";
    const json_t *params = take_group(doc, group, why, why_size);
    if (params == NULL)
        return -1;
    if (take_string(params, group, "clientId", &auth->client_id, why, why_size) ||
        take_string(params, group, "tokenEndpoint", &auth->token_endpoint, why, why_size) ||
        check_token_endpoint(auth->token_endpoint, group, why, why_size))
        return -1;
    json_t *ref = json_object_get(params, "certificateRef");
    if (!json_is_object(ref)) {
        snprintf(why, why_size, "authentication.%s.certificateRef is missing", group);
        return -1;
    }
    const char *type = json_string_value(json_object_get(ref, "type"));
    if (type == NULL || strcmp(type, "x5t#S256") != 0) {
        snprintf(why, why_size, "authentication.%s.certificateRef.type must be x5t#S256", group);
        return -1;
    }
    char *ref_group = lcmc__asprintf("%s.certificateRef", group);
    int failed = ref_group == NULL ||
                 take_string(ref, ref_group, "value", &auth->certificate_ref, why, why_size);
    free(ref_group);
    if (failed)
        return -1;
    auth->type = LCMC_AUTH_OAUTH2_CLIENT_CERT;
    auth->token_client_auth = LCMC_TOKEN_AUTH_CERT;
    return 0;
}

static int parse_client_credentials(lcmc_auth *auth, const json_t *doc, char *why, size_t why_size)
{
    const char *group = "paramsOauth2ClientCredentials";
    const json_t *params = take_group(doc, group, why, why_size);
    if (params == NULL)
        return -1;
    if (take_string(params, group, "clientId", &auth->client_id, why, why_size) ||
        take_string(params, group, "clientPassword", &auth->client_secret, why, why_size) ||
        take_string(params, group, "tokenEndpoint", &auth->token_endpoint, why, why_size) ||
        check_token_endpoint(auth->token_endpoint, group, why, why_size))
        return -1;
    auth->type = LCMC_AUTH_OAUTH2_CLIENT_CREDENTIALS;
    auth->token_client_auth = LCMC_TOKEN_AUTH_BASIC;
    return 0;
}

static int parse_basic(lcmc_auth *auth, const json_t *doc, char *why, size_t why_size)
{
    const json_t *params = take_group(doc, "paramsBasic", why, why_size);
    if (params == NULL)
        return -1;
    if (take_string(params, "paramsBasic", "userName", &auth->basic_user, why, why_size))
        return -1;
    /* An empty password is unusual but legal in Basic. */
    json_t *password = json_object_get(params, "password");
    if (!json_is_string(password)) {
        snprintf(why, why_size, "authentication.paramsBasic.password is missing");
        return -1;
    }
    if (strchr(auth->basic_user, ':')) {
        snprintf(why, why_size, "authentication.paramsBasic.userName must not contain ':'");
        return -1;
    }
    auth->basic_password = lcmc__strdup(json_string_value(password));
    if (auth->basic_password == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    auth->type = LCMC_AUTH_BASIC;
    return 0;
}

lcmc_status lcmc__auth_parse(lcmc_auth *auth, const char *authentication_json, char *why,
                             size_t why_size)
{
    memset(auth, 0, sizeof *auth);
    if (authentication_json == NULL)
        return LCMC_OK;
    lcmc__json_wipe_on_free();
    json_error_t jerr;
    json_t *doc = json_loads(authentication_json, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        /* Only where: jansson's text quotes the input near the error, which may be a secret. */
        int line, column;
        lcmc__json_error_place(authentication_json, strlen(authentication_json), &jerr, &line,
                               &column);
        snprintf(why, why_size, "authentication is not valid JSON (line %d, column %d)", line,
                 column);
        return LCMC_EUSAGE;
    }
    lcmc_status status = LCMC_EUSAGE;
    if (json_is_null(doc)) {
        status = LCMC_OK;
        goto done;
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
    if (json_is_string(types) && !is_known_type(json_string_value(types))) {
        snprintf(why, why_size,
                 "authentication.authType is not BASIC, "
                 "OAUTH2_CLIENT_CREDENTIALS or OAUTH2_CLIENT_CERT");
        goto done;
    }
    size_t i;
    json_t *t;
    if (json_is_array(types)) {
        json_array_foreach(types, i, t)
        {
            if (!is_known_type(json_string_value(t))) {
                snprintf(why, why_size,
                         "authentication.authType[%zu] is not BASIC, "
                         "OAUTH2_CLIENT_CREDENTIALS or OAUTH2_CLIENT_CERT",
                         i + 1);
                goto done;
            }
        }
    }
    /* The strongest listed type wins. */
    int failed;
    if (type_listed(types, "OAUTH2_CLIENT_CERT"))
        failed = parse_client_cert(auth, doc, why, why_size);
    else if (type_listed(types, "OAUTH2_CLIENT_CREDENTIALS"))
        failed = parse_client_credentials(auth, doc, why, why_size);
    else if (type_listed(types, "BASIC"))
        failed = parse_basic(auth, doc, why, why_size);
    else {
        /* An empty list: the operator asked for no authentication. */
        failed = 0;
    }
    if (failed)
        lcmc__auth_clear(auth);
    else
        status = LCMC_OK;
done:
    json_decref(doc);
    return status;
}

/* ---- certificates ----------------------------------------------------------------------- */

int lcmc__certificate_thumbprint(const char *pem_path, char out[64], char *why, size_t why_size)
{
    FILE *f = fopen(pem_path, "r");
    if (f == NULL) {
        snprintf(why, why_size, "cannot read the client certificate '%s'", pem_path);
        return -1;
    }
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (cert == NULL) {
        snprintf(why, why_size, "the client certificate '%s' is not a PEM certificate", pem_path);
        return -1;
    }
    unsigned char *der = NULL;
    int der_length = i2d_X509(cert, &der);
    X509_free(cert);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_length = 0;
    int ok = der_length > 0 &&
             EVP_Digest(der, (size_t)der_length, digest, &digest_length, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok) {
        snprintf(why, why_size, "cannot hash the client certificate '%s'", pem_path);
        return -1;
    }
    /* base64url without padding (RFC 7515): EVP's base64, then its alphabet swapped. */
    unsigned char encoded[64];
    int n = EVP_EncodeBlock(encoded, digest, (int)digest_length);
    while (n > 0 && encoded[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++)
        out[i] = encoded[i] == '+' ? '-' : encoded[i] == '/' ? '_' : (char)encoded[i];
    out[n] = '\0';
    return 0;
}

static int pass_key_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)rwflag;
    const char *password = userdata;
    if (password == NULL || size <= 0)
        return 0;
    int n = (int)strlen(password);
    if (n > size)
        return -1;
    memcpy(buf, password, (size_t)n);
    return n;
}

int lcmc__check_client_keypair(const char *cert_path, const char *key_path,
                               const char *key_password, char *why, size_t why_size)
{
    FILE *f = fopen(cert_path, "r");
    if (f == NULL) {
        snprintf(why, why_size, "cannot read the client certificate '%s'", cert_path);
        return -1;
    }
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (cert == NULL) {
        ERR_clear_error();
        snprintf(why, why_size, "the client certificate '%s' is not a PEM certificate", cert_path);
        return -1;
    }
    f = fopen(key_path, "r");
    if (f == NULL) {
        X509_free(cert);
        snprintf(why, why_size, "cannot read the client key '%s'", key_path);
        return -1;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, pass_key_password, (void *)key_password);
    fclose(f);
    int result = 0;
    if (key == NULL) {
        snprintf(why, why_size, "the client key '%s' cannot be read: not a PEM private key, or %s",
                 key_path,
                 key_password ? "a wrong key password" : "encrypted and no key password given");
        result = -1;
    } else if (X509_check_private_key(cert, key) != 1) {
        snprintf(why, why_size, "the client key '%s' does not belong to the certificate '%s'",
                 key_path, cert_path);
        result = -1;
    }
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(cert);
    return result;
}

/* ---- OAuth 2.0 ------------------------------------------------------------------------- */

char *lcmc__form_encode(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(text);
    char *out = malloc(3 * n + 1);
    if (out == NULL)
        return NULL;
    char *p = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '*') {
            *p++ = (char)c;
        } else if (c == ' ') {
            *p++ = '+';
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

int lcmc__parse_token_response(const char *body, size_t length, char **token, double *expires_in,
                               int *has_expiry, char *why, size_t why_size)
{
    *token = NULL;
    *has_expiry = 0;
    *expires_in = 0;
    lcmc__json_wipe_on_free();
    json_t *doc = length ? json_loadb(body, length, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int result = -1;
    if (!json_is_object(doc)) {
        snprintf(why, why_size, "its answer is not a JSON object");
        goto done;
    }
    json_t *access = json_object_get(doc, "access_token");
    if (!json_is_string(access) || json_string_length(access) == 0) {
        snprintf(why, why_size, "its answer has no access_token");
        goto done;
    }
    const char *type = json_string_value(json_object_get(doc, "token_type"));
    if (type == NULL) {
        snprintf(why, why_size, "its answer has no token_type");
        goto done;
    }
    if (strcasecmp(type, "Bearer") != 0) {
        char *shown = lcmc__one_line(type, strlen(type), 40);
        snprintf(why, why_size, "its token_type '%s' is not Bearer", shown ? shown : "?");
        free(shown);
        goto done;
    }
    json_t *expiry = json_object_get(doc, "expires_in");
    if (expiry && !json_is_null(expiry)) {
        if (!json_is_number(expiry)) {
            snprintf(why, why_size, "its expires_in is not a number");
            goto done;
        }
        *expires_in = json_number_value(expiry);
        *has_expiry = 1;
    }
    *token = lcmc__strdup(json_string_value(access));
    if (*token == NULL) {
        snprintf(why, why_size, "out of memory");
        goto done;
    }
    result = 0;
done:
    json_decref(doc);
    return result;
}

int lcmc__check_credentials_tls(const lcmc_auth *auth, const lcmc_tls_options *tls, char *why,
                                size_t why_size)
{
    if (auth->type == LCMC_AUTH_OAUTH2_CLIENT_CERT && (tls->cert == NULL || tls->key == NULL)) {
        snprintf(why, why_size,
                 "authType OAUTH2_CLIENT_CERT needs a client certificate and key (tls.cert and "
                 "tls.key, --cert and --key, or LCMCOORD_CERT and LCMCOORD_KEY)");
        return -1;
    }
    if ((tls->cert == NULL) != (tls->key == NULL)) {
        snprintf(why, why_size, "a client certificate needs its key and a key its certificate");
        return -1;
    }
    if (tls->cert &&
        lcmc__check_client_keypair(tls->cert, tls->key, tls->key_password, why, why_size) != 0)
        return -1;
    if (auth->type != LCMC_AUTH_OAUTH2_CLIENT_CERT)
        return 0;
    char thumbprint[64];
    if (lcmc__certificate_thumbprint(tls->cert, thumbprint, why, why_size) != 0)
        return -1;
    if (strcmp(thumbprint, auth->certificate_ref) != 0) {
        snprintf(why, why_size,
                 "authentication.paramsOauth2ClientCert.certificateRef does not match the "
                 "client certificate '%s' (its x5t#S256 is %s)",
                 tls->cert, thumbprint);
        return -1;
    }
    return 0;
}

const char *lcmc__auth_type_name(const lcmc_auth *auth)
{
    switch (auth->type) {
    case LCMC_AUTH_BASIC:
        return "BASIC";
    case LCMC_AUTH_OAUTH2_CLIENT_CREDENTIALS:
        return "OAUTH2_CLIENT_CREDENTIALS";
    case LCMC_AUTH_OAUTH2_CLIENT_CERT:
        return "OAUTH2_CLIENT_CERT";
    case LCMC_AUTH_NONE:
        break;
    }
    return "NONE";
}
