/*
 * The protocol logic of the EM simulator: which answer each request gets. It checks what
 * SOL 002/SOL 013 ask of a request (client certificate, credentials, Version header, media
 * type, LcmCoordRequest content), routes it, applies the command-line behaviour
 * (sync/async, rejects, polls, result) and journals the outcome. It never touches a socket,
 * so the unit tests call em_handle() directly with hand-made requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "em.h"
#include "lcmcoord/lcmcoord.h"

void em_init(struct em *em, const struct em_options *opt)
{
    memset(em, 0, sizeof *em);
    em->opt = *opt;
    atomic_init(&em->requests, 0);
    atomic_init(&em->posts, 0);
    atomic_init(&em->valid_posts, 0);
    em->store = em_store_new(EM_STORE_CAPACITY, EM_STORE_BYTES);
    em->journal = em_journal_new(opt->journal_max);
    if (opt->oauth2) {
        const char *colon = strchr(opt->oauth2, ':');
        em->client_id = colon ? em_xstrndup(opt->oauth2, (size_t)(colon - opt->oauth2))
                              : em_xstrdup(opt->oauth2);
        em->client_secret = colon ? em_xstrdup(colon + 1) : NULL;
        em->tokens = em_tokens_new(EM_TOKEN_CAPACITY, opt->token_ttl, NULL, NULL);
    }
    em_set_base_url(em, opt->port);
}

static const char *scheme_of(const struct em *em)
{
    return em->opt.tls_cert ? "https" : "http";
}

void em_set_base_url(struct em *em, unsigned port)
{
    bool v6 = strchr(em->opt.host, ':') != NULL;
    snprintf(em->base_url, sizeof em->base_url, "%s://%s%s%s:%u", scheme_of(em), v6 ? "[" : "",
             em->opt.host, v6 ? "]" : "", port);
    if (em->scenario)
        em_scenario_set_base_url(em->scenario, em->base_url);
}

void em_cleanup(struct em *em)
{
    em_scenario_free(em->scenario);
    em_store_free(em->store);
    em_journal_free(em->journal);
    em_tokens_free(em->tokens);
    free(em->client_id);
    if (em->client_secret)
        OPENSSL_cleanse(em->client_secret, strlen(em->client_secret));
    free(em->client_secret);
    em->tokens = NULL;
    em->client_id = em->client_secret = NULL;
    em->scenario = NULL;
    em->store = NULL;
    em->journal = NULL;
}

/* ---- checks on a request ---- */

int em_check_version(const char *value, char *detail, size_t len)
{
    if (!value || !*value) {
        snprintf(detail, len, "the Version header is required (this API is version %s)",
                 EM_API_VERSION);
        return 400;
    }
    /* MAJOR[.MINOR[.PATCH]], digits only; only major version 1 is served. */
    const char *p = value;
    int parts = 0;
    bool well_formed = true;
    while (well_formed) {
        if (*p < '0' || *p > '9') {
            well_formed = false;
            break;
        }
        while (*p >= '0' && *p <= '9')
            p++;
        parts++;
        if (*p == '\0')
            break;
        if (*p != '.' || parts == 3)
            well_formed = false;
        p++;
    }
    if (!well_formed || strtoul(value, NULL, 10) != 1) {
        snprintf(detail, len, "Version '%.64s' is not supported; this API serves %s", value,
                 EM_API_VERSION);
        return 406;
    }
    return 0;
}

bool em_check_content_type(const char *value)
{
    static const char want[] = "application/json";
    if (!value)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, want, sizeof want - 1) != 0)
        return false;
    const char *rest = value + sizeof want - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest == '\0' || *rest == ';';
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "value";
}

int em_parse_body(const char *body, size_t len, json_t **out, char *detail, size_t dlen)
{
    *out = NULL;
    if (len == 0) {
        snprintf(detail, dlen, "the request body is empty; expected a LcmCoordRequest object");
        return 400;
    }
    json_error_t e;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &e);
    if (!j) {
        switch (json_error_code(&e)) {
        case json_error_invalid_utf8:
            snprintf(detail, dlen, "the request body is not valid UTF-8");
            break;
        case json_error_stack_overflow:
            snprintf(detail, dlen,
                     "the request body is not acceptable JSON: nested deeper than "
                     "%d levels",
                     JSON_PARSER_MAX_DEPTH);
            break;
        default:
            snprintf(detail, dlen, "the request body is not valid JSON: %s (line %d, column %d)",
                     e.text, e.line, e.column);
            break;
        }
        return 400;
    }
    if (!json_is_object(j)) {
        snprintf(detail, dlen, "the request body must be a JSON object, got %s", json_type_name(j));
        json_decref(j);
        return 400;
    }
    if (em_json_check_limits(j, detail, dlen) < 0) {
        json_decref(j);
        return 400;
    }
    *out = j;
    return 0;
}

/* Walks a decoded body once; members counts object members and array elements. */
static int json_limits_walk(const json_t *j, unsigned depth, size_t *members, char *detail,
                            size_t dlen)
{
    if (depth > EM_JSON_MAX_DEPTH) {
        snprintf(detail, dlen, "the request body is nested deeper than %u levels",
                 EM_JSON_MAX_DEPTH);
        return -1;
    }
    if (json_is_string(j) && json_string_length(j) > EM_JSON_MAX_STRING) {
        snprintf(detail, dlen, "the request body has a string longer than %u bytes",
                 EM_JSON_MAX_STRING);
        return -1;
    }
    size_t n = json_is_object(j) ? json_object_size(j) : json_is_array(j) ? json_array_size(j) : 0;
    *members += n;
    if (*members > EM_JSON_MAX_MEMBERS) {
        snprintf(detail, dlen, "the request body has more than %u members and elements",
                 EM_JSON_MAX_MEMBERS);
        return -1;
    }
    if (json_is_object(j)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v)
        {
            if (strlen(key) > EM_JSON_MAX_STRING) {
                snprintf(detail, dlen, "the request body has a key longer than %u bytes",
                         EM_JSON_MAX_STRING);
                return -1;
            }
            if (json_limits_walk(v, depth + 1, members, detail, dlen) < 0)
                return -1;
        }
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < n; i++)
            if (json_limits_walk(json_array_get(j, i), depth + 1, members, detail, dlen) < 0)
                return -1;
    }
    return 0;
}

int em_json_check_limits(const json_t *j, char *detail, size_t dlen)
{
    size_t members = 0;
    return json_limits_walk(j, 1, &members, detail, dlen);
}

size_t em_body_limit(const struct em *em, const char *path)
{
    if (em->opt.oauth2 && strcmp(path, EM_TOKEN_PATH) == 0)
        return em->opt.body_limit < EM_TOKEN_BODY_MAX ? em->opt.body_limit : EM_TOKEN_BODY_MAX;
    return em->opt.body_limit;
}

static int check_string(const json_t *parent, const char *key, const char *path, char *detail,
                        size_t len)
{
    const json_t *v = parent ? json_object_get(parent, key) : NULL;
    if (!v) {
        snprintf(detail, len, "%s: required attribute is missing", path);
        return 422;
    }
    if (!json_is_string(v)) {
        snprintf(detail, len, "%s: expected a non-empty string, got %s", path, json_type_name(v));
        return 422;
    }
    if (json_string_length(v) == 0) {
        snprintf(detail, len, "%s: must not be an empty string", path);
        return 422;
    }
    return 0;
}

/* Walks _links.NAME.href, naming the first level that is missing or of the wrong type. */
static int check_link(const json_t *req, const char *name, char *detail, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "_links.%s.href", name);
    const json_t *links = json_object_get(req, "_links");
    if (links && !json_is_object(links)) {
        snprintf(detail, len, "_links: expected an object, got %s", json_type_name(links));
        return 422;
    }
    const json_t *link = links ? json_object_get(links, name) : NULL;
    if (link && !json_is_object(link)) {
        snprintf(detail, len, "_links.%s: expected an object, got %s", name, json_type_name(link));
        return 422;
    }
    return check_string(link, "href", path, detail, len);
}

int em_validate_request(const json_t *req, char *detail, size_t len)
{
    int rc;
    if ((rc = check_string(req, "vnfInstanceId", "vnfInstanceId", detail, len)) ||
        (rc = check_string(req, "vnfLcmOpOccId", "vnfLcmOpOccId", detail, len)))
        return rc;
    const json_t *op = json_object_get(req, "lcmOperationType");
    if (!op) {
        snprintf(detail, len, "lcmOperationType: required attribute is missing");
        return 422;
    }
    if (!json_is_string(op)) {
        snprintf(detail, len,
                 "lcmOperationType: expected a LcmOperationForCoordType string, got %s",
                 json_type_name(op));
        return 422;
    }
    /* The client's own check: one list of LcmOperationForCoordType values. */
    if (!lcmc_operation_type_is_valid(json_string_value(op))) {
        snprintf(detail, len, "lcmOperationType: '%.64s' is not a LcmOperationForCoordType",
                 json_string_value(op));
        return 422;
    }
    if ((rc = check_string(req, "coordinationActionName", "coordinationActionName", detail, len)))
        return rc;
    const json_t *input = json_object_get(req, "inputParams");
    if (input && !json_is_object(input)) {
        snprintf(detail, len, "inputParams: expected an object (KeyValuePairs), got %s",
                 json_type_name(input));
        return 422;
    }
    if ((rc = check_link(req, "vnfLcmOpOcc", detail, len)) ||
        (rc = check_link(req, "vnfInstance", detail, len)))
        return rc;
    return 0;
}

/* ---- documents ---- */

const char *em_reason(unsigned status)
{
    const char *r = MHD_get_reason_phrase_for(status);
    return r && *r && strcmp(r, "Unknown") != 0 ? r : "Error";
}

json_t *em_problem(unsigned status, const char *detail)
{
    return json_pack("{s:s, s:I, s:s}", "title", em_reason(status), "status", (json_int_t)status,
                     "detail", detail);
}

json_t *em_lcmcoord_build(const json_t *req, const char *id, const char *self_href,
                          enum em_result result)
{
    static const char *const echoed[] = {"vnfInstanceId", "vnfLcmOpOccId", "lcmOperationType",
                                         "coordinationActionName"};
    json_t *doc = json_object();
    json_object_set_new(doc, "id", json_string(id));
    json_object_set_new(doc, "coordinationResult", json_string(em_result_name(result)));
    for (size_t i = 0; i < sizeof echoed / sizeof echoed[0]; i++) {
        json_t *v = json_object_get(req, echoed[i]);
        if (v)
            json_object_set_new(doc, echoed[i], json_deep_copy(v));
    }
    json_t *input = json_object_get(req, "inputParams");
    json_object_set_new(doc, "outputParams",
                        json_is_object(input) ? json_deep_copy(input) : json_object());
    if (result == EM_RESULT_ABORT)
        json_object_set_new(doc, "error",
                            json_pack("{s:s, s:i, s:s}", "title", "Coordination aborted", "status",
                                      409, "detail", "VNFC not ready"));
    json_t *links = json_object();
    json_object_set_new(links, "self", json_pack("{s:s}", "href", self_href));
    json_t *req_links = json_object_get(req, "_links");
    static const char *const copied[] = {"vnfLcmOpOcc", "vnfInstance"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(req_links, copied[i]);
        if (v)
            json_object_set_new(links, copied[i], json_deep_copy(v));
    }
    json_object_set_new(doc, "_links", links);
    return doc;
}

void em_request_base_url(const struct em *em, const struct em_request *rq, char *buf, size_t len)
{
    /* Never the client's Host header: --base-url, else the address listened on. */
    (void)rq;
    snprintf(buf, len, "%s", em->base_url);
}

/* ---- routing and answers ---- */

enum em_route {
    R_UNKNOWN,
    R_COORDINATIONS,
    R_COORDINATION,
    R_CANCEL,
    R_VERSIONS,
    R_JOURNAL,
    R_TOKEN
};

enum em_api_path em_api_path(const char *path, char *id, size_t idlen)
{
    static const char coords[] = EM_COORDINATIONS_PATH;
    if (strcmp(path, "/lcmcoord/api_versions") == 0 ||
        strcmp(path, "/lcmcoord/v1/api_versions") == 0)
        return EM_PATH_VERSIONS;
    if (strncmp(path, coords, sizeof coords - 1) != 0)
        return EM_PATH_OTHER;
    const char *rest = path + sizeof coords - 1;
    if (*rest == '\0')
        return EM_PATH_COORDINATIONS;
    if (*rest != '/' || rest[1] == '\0' || rest[1] == '/')
        return EM_PATH_OTHER;
    rest++;
    size_t n = strcspn(rest, "/");
    if (n >= idlen)
        return EM_PATH_OTHER;
    memcpy(id, rest, n);
    id[n] = '\0';
    if (rest[n] == '\0')
        return EM_PATH_COORDINATION;
    return strcmp(rest + n, "/cancel") == 0 ? EM_PATH_CANCEL : EM_PATH_OTHER;
}

static enum em_route route(const struct em *em, const char *path, char *id, size_t idlen)
{
    if (strcmp(path, EM_JOURNAL_PATH) == 0)
        return R_JOURNAL;
    if (em->opt.oauth2 && strcmp(path, EM_TOKEN_PATH) == 0)
        return R_TOKEN;
    switch (em_api_path(path, id, idlen)) {
    case EM_PATH_COORDINATIONS:
        return R_COORDINATIONS;
    case EM_PATH_COORDINATION:
        return R_COORDINATION;
    case EM_PATH_CANCEL:
        return R_CANCEL;
    case EM_PATH_VERSIONS:
        return R_VERSIONS;
    case EM_PATH_OTHER:
        break;
    }
    return R_UNKNOWN;
}

static void add_retry_after(const struct em *em, struct em_response *rs)
{
    char value[256];
    if (em_retry_value(&em->opt.retry, time(NULL), value, sizeof value))
        em_headers_add(&rs->headers, "Retry-After", value);
}

static void method_not_allowed(struct em_response *rs, const char *method, const char *allow)
{
    em_response_problem(rs, 405, "method %.16s is not allowed here; allowed: %s", method, allow);
    em_headers_add(&rs->headers, "Allow", allow);
}

static void answer_versions(const struct em *em, const struct em_request *rq,
                            struct em_response *rs)
{
    char base[EM_BASE_URL_MAX];
    em_request_base_url(em, rq, base, sizeof base);
    char *prefix = em_xasprintf("%s/lcmcoord/v1", base);
    json_t *doc = json_pack("{s:s, s:[{s:s, s:b}]}", "uriPrefix", prefix, "apiVersions", "version",
                            EM_API_VERSION, "isDeprecated", 0);
    free(prefix);
    rs->status = 200;
    em_response_set_body(rs, json_dumps(doc, JSON_COMPACT), "application/json");
    json_decref(doc);
}

static void answer_post(struct em *em, const struct em_request *rq, struct em_response *rs)
{
    char detail[512];
    if (!em_check_content_type(em_headers_get(&rq->headers, "content-type"))) {
        em_response_problem(rs, 415, "Content-Type must be application/json");
        return;
    }
    json_t *req;
    unsigned rc = (unsigned)em_parse_body(rq->body, rq->body_len, &req, detail, sizeof detail);
    if (!rc)
        rc = (unsigned)em_validate_request(req, detail, sizeof detail);
    if (rc) {
        json_decref(req);
        em_response_problem(rs, rc, "%s", detail);
        return;
    }
    unsigned long n = atomic_fetch_add(&em->valid_posts, 1) + 1;
    if (n <= em->opt.rejects) {
        json_decref(req);
        em_response_problem(rs, 503,
                            "the EM cannot coordinate now (rejection %lu of %lu); retry later", n,
                            em->opt.rejects);
        add_retry_after(em, rs);
        return;
    }
    char id[EM_ID_LEN + 1], base[EM_BASE_URL_MAX];
    em_store_new_id(em->store, id);
    em_request_base_url(em, rq, base, sizeof base);
    char *self = em_xasprintf("%s%s/%s", base, EM_COORDINATIONS_PATH, id);
    json_t *doc = em_lcmcoord_build(req, id, self, em->opt.result);
    json_decref(req);
    bool sync = em->opt.mode == EM_MODE_SYNC;
    char *stored = NULL;
    if (em_store_put(em->store, id, doc, sync ? 0 : em->opt.polls, sync, sync ? &stored : NULL) <
        0) {
        em_response_problem(rs, 503,
                            "the EM holds %u MiB of coordinations in progress, its limit; retry "
                            "once some have finished",
                            EM_STORE_BYTES / (1024u * 1024u));
        em_headers_add(&rs->headers, "Retry-After", "1");
    } else if (sync) {
        rs->status = 201;
        em_response_set_body(rs, stored, "application/json");
        em_headers_add(&rs->headers, "Location", self);
    } else {
        rs->status = 202;
        if (em->opt.location == EM_LOCATION_ABSOLUTE)
            em_headers_add(&rs->headers, "Location", self);
        else if (em->opt.location == EM_LOCATION_RELATIVE)
            em_headers_add(&rs->headers, "Location", self + strlen(base));
        add_retry_after(em, rs);
    }
    free(self);
}

static void answer_coordination(struct em *em, enum em_route r, const char *id,
                                struct em_response *rs)
{
    char *body = NULL;
    unsigned status =
        r == R_CANCEL ? em_store_cancel(em->store, id) : em_store_get(em->store, id, &body);
    switch (status) {
    case 200:
        rs->status = 200;
        em_response_set_body(rs, body, "application/json");
        break;
    case 202:
        rs->status = 202;
        add_retry_after(em, rs);
        break;
    case 409:
        em_response_problem(rs, 409, "coordination %s is finished and cannot be cancelled", id);
        break;
    default:
        em_response_problem(rs, 404, "no coordination with id '%.64s'", id);
        break;
    }
}

static void answer_default(struct em *em, enum em_route r, const char *id,
                           const struct em_request *rq, struct em_response *rs)
{
    const char *method = rq->method;
    char detail[256];
    if (r == R_UNKNOWN) {
        em_response_problem(rs, 404, "no resource at this path");
        return;
    }
    if (r == R_VERSIONS) {
        if (strcmp(method, "GET") != 0)
            method_not_allowed(rs, method, "GET");
        else
            answer_versions(em, rq, rs);
        return;
    }
    const char *allowed = r == R_COORDINATION ? "GET" : "POST";
    if (strcmp(method, allowed) != 0) {
        method_not_allowed(rs, method, allowed);
        return;
    }
    unsigned rc =
        (unsigned)em_check_version(em_headers_get(&rq->headers, "version"), detail, sizeof detail);
    if (rc) {
        em_response_problem(rs, rc, "%s", detail);
        return;
    }
    if (r == R_COORDINATIONS)
        answer_post(em, rq, rs);
    else
        answer_coordination(em, r, id, rs);
}

/* The journal shows what clients sent: when the EM has credentials, so does the journal.
 * It takes --basic, a valid Bearer token, or the --oauth2 client's id and secret as Basic. */
static bool journal_authorized(struct em *em, const struct em_request *rq)
{
    if (!em->opt.basic && !em->opt.oauth2)
        return true;
    if (em->opt.client_ca && rq->peer && rq->peer->cert_verified)
        return true; /* a certificate the EM verified is a credential of its own */
    struct em_auth auth;
    memset(&auth, 0, sizeof auth);
    const char *token_error;
    em_api_authenticate(em, rq, &auth, &token_error);
    bool ok = auth.ok;
    em_auth_clear(&auth);
    const char *authorization = em_headers_get(&rq->headers, "authorization");
    if (!ok && em->client_secret && authorization) {
        /* As RFC 6749 §2.3.1 encodes it, or as plain HTTP Basic (RFC 7617). */
        for (int encoded = 1; encoded >= 0 && !ok; encoded--) {
            char *user = NULL, *password = NULL;
            size_t plen = 0;
            if (em_basic_decode(authorization, encoded, &user, &password, &plen) == 0) {
                /* Both compared, whatever the first says: no timing hint of which failed. */
                int id_ok =
                    em_secret_equal(user, strlen(user), em->client_id, strlen(em->client_id));
                int secret_ok =
                    em_secret_equal(password, plen, em->client_secret, strlen(em->client_secret));
                ok = (id_ok & secret_ok) != 0;
                OPENSSL_cleanse(password, plen);
            }
            free(user);
            free(password);
        }
    }
    return ok;
}

static void answer_journal(struct em *em, const struct em_request *rq, struct em_response *rs)
{
    if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "DELETE") != 0) {
        method_not_allowed(rs, rq->method, "GET, DELETE");
    } else if (!journal_authorized(em, rq)) {
        em_unauthorized(em, rs, NULL, "the journal needs the EM's credentials");
    } else if (strcmp(rq->method, "GET") == 0) {
        struct em_journal_reader *reader = em_journal_reader_new(em->journal);
        if (!reader) { /* slow readers already hold the journal's budget */
            em_response_problem(rs, 503, "slow journal readers hold too much; try again");
            em_headers_add(&rs->headers, "Retry-After", "1");
            return;
        }
        rs->status = 200;
        em_headers_add(&rs->headers, "Content-Type", "application/json");
        rs->stream_ctx = reader;
        rs->stream_read = em_journal_reader_read;
        rs->stream_free = em_journal_reader_free;
    } else if (strcmp(rq->method, "DELETE") == 0) {
        em_journal_clear(em->journal);
        rs->status = 204;
    } else {
        method_not_allowed(rs, rq->method, "GET, DELETE");
    }
}

/* --client-ca: nothing but the journal is served to a client without a good certificate. */
static bool client_cert_refused(const struct em *em, const struct em_request *rq, enum em_route r,
                                struct em_auth *auth, struct em_response *rs)
{
    if (!em->opt.client_ca || (rq->peer && rq->peer->cert_verified))
        return false;
    const char *why = rq->peer && rq->peer->problem[0] ? rq->peer->problem
                                                       : "no client certificate was presented";
    if (r == R_TOKEN) {
        auth->present = true;
        json_t *doc = json_pack("{s:s, s:s}", "error", "invalid_client", "error_description",
                                "a client certificate signed by the configured CA is required");
        rs->status = 401;
        em_response_set_body(rs, json_dumps(doc, JSON_COMPACT), "application/json");
        json_decref(doc);
        em_headers_add(&rs->headers, "Cache-Control", "no-store");
        em_headers_add(&rs->headers, "Pragma", "no-cache");
        em_headers_add(&rs->headers, "WWW-Authenticate", "Basic realm=\"" EM_REALM "\"");
    } else {
        em_unauthorized(em, rs, NULL, why);
    }
    return true;
}

void em_handle(struct em *em, const struct em_request *rq, struct em_response *rs)
{
    char id[128];
    enum em_route r = route(em, rq->path, id, sizeof id);
    memset(rs, 0, sizeof *rs);
    if (r == R_JOURNAL) {
        answer_journal(em, rq, rs);
        em_headers_add(&rs->headers, "Version", EM_API_VERSION);
        return;
    }
    rs->may_delay = true;
    unsigned long count = atomic_fetch_add(&em->requests, 1) + 1;
    unsigned long posts = r == R_COORDINATIONS && strcmp(rq->method, "POST") == 0
                              ? atomic_fetch_add(&em->posts, 1) + 1
                              : atomic_load(&em->posts);
    /* What the journal and the scenario see of a token request: no client secret. */
    struct em_request shown = *rq;
    char *redacted = NULL;
    if (r == R_TOKEN && rq->body) {
        redacted = em_form_redact(rq->body, rq->body_len, &shown.body_len);
        shown.body = redacted;
    }
    struct em_auth auth;
    memset(&auth, 0, sizeof auth);
    const char *token_error = NULL;
    if (client_cert_refused(em, rq, r, &auth, rs)) {
        /* answered */
    } else if (r == R_TOKEN) {
        em_token_endpoint(em, rq, &shown, &auth, count, posts, rs);
    } else {
        em_api_authenticate(em, rq, &auth, &token_error);
        if (!auth.ok)
            em_unauthorized(em, rs, token_error,
                            token_error      ? token_error
                            : auth.present   ? "the credentials are not valid"
                            : em->opt.oauth2 ? "authentication is required: a Bearer access token"
                                             : "HTTP Basic authentication is required");
        else if (rq->body_too_large)
            em_response_problem(rs, 413, "the request body is larger than %zu bytes",
                                em_body_limit(em, rq->path));
        else if (!(em->scenario && em_scenario_call(em->scenario, rq, auth.present ? &auth : NULL,
                                                    count, posts, rs)))
            answer_default(em, r, id, rq, rs);
    }
    if (!em_headers_get(&rs->headers, "Version"))
        em_headers_add(&rs->headers, "Version", EM_API_VERSION);
    em_journal_add(em->journal, &shown, count, rs->status, &auth);
    em_auth_clear(&auth);
    free(redacted);
}
