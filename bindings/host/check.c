/*
 * `lcmcoord check [options] SCRIPT.lua < VNFC_PARAM.json`: a preflight of everything that
 * can be known before a coordination is created, so that an operator finds a wrong field, a
 * script that never sets its action, an EM that is down, refused credentials or an untrusted
 * certificate before the VNFM's operation fails on it. One line per check on stdout (`ok`,
 * `FAIL` with what was wrong and the fix, or `skip` when an earlier failure leaves nothing to
 * check); exit 0 only when every check passed. Nothing is ever created at the EM: the script
 * runs against a stand-in `lcmcoord` whose coordination calls record the request instead of
 * sending it, and the only requests to the EM are a token (OAuth 2.0) and GET api_versions.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>

#include "host.h"
#include "lcmcoord/json.h"
#include "lcmcoord_lua.h"
#include "options.h"
#include "params.h"
#include "run_io.h"
#include "safe_text.h"
#include "script_limits.h"
#include "subcommands.h"

/* VNFC parameters are a few kilobytes; as `lcmcoord run`. */
#define STDIN_CAP ((size_t)16 * 1024 * 1024)
/* What the EM checks may take each, seconds, unless --timeout says otherwise. */
#define DEFAULT_EM_SECONDS 10.0
/* How long the script may run against the stand-in unless --script-timeout says otherwise. */
#define DEFAULT_SCRIPT_SECONDS 30.0
#define EXIT_FAILED            1
/* The Version header the runtime sends (lcmc_client_options.api_version NULL). */
#define CLIENT_API_VERSION "1.0.0"
/* What Tacker leaves in coordinationActionName for the script to replace. */
#define PLACEHOLDER_ACTION "should_be_set_by_script"

static const char usage_line[] =
    "usage: lcmcoord check [-v] [--offline] [--timeout S] [--script-timeout S] [--cacert FILE] "
    "[--capath DIR] [--cert FILE] [--key FILE] [--config FILE] [--log-format text|json] "
    "[--print-config] SCRIPT.lua < VNFC_PARAM.json";

typedef struct check_context {
    int verbosity;
    int offline; /* --offline: no EM checks */
    double script_timeout;
    double em_timeout;
    const char *script;
    lcmc_host_config config;
    lcmc_host_log log;
    char *input;
    size_t input_length;
    json_t *params; /* the decoded parameters, or NULL */
    int failed;
    char why[512];
} check_context;

static void print_help(void)
{
    printf("%s\n", usage_line);
    fputs("\n"
          "Checks, before any coordination is created, what `lcmcoord run` would need: the\n"
          "VNFC parameters on stdin (types, timeout, authentication, LcmCoordRequest), the\n"
          "script (it loads, and sets the action: it runs against a stand-in that records\n"
          "the request instead of sending it), and the EM (the endpoint resolves, a token is\n"
          "fetched, TLS is verified, api_versions answers with the credentials and supports\n"
          "the Version sent). Prints one line per check: ok, FAIL (what was wrong; fix: ...)\n"
          "or skip. Nothing is ever created at the EM.\n"
          "\n"
          "Options:\n"
          "  -v, --verbose    log each request to stderr (-vv: more detail)\n"
          "  --offline        skip the checks that talk to the EM\n"
          "  --timeout S      what each EM check may take (default 10)\n"
          "  --script-timeout S  stop the script after S seconds (default 30)\n"
          "  --cacert FILE    CA bundle for TLS (env LCMCOORD_CACERT)\n"
          "  --capath DIR     CA directory for TLS (env LCMCOORD_CAPATH)\n"
          "  --cert FILE      client certificate for mutual TLS (env LCMCOORD_CERT)\n"
          "  --key FILE       its private key (env LCMCOORD_KEY)\n"
          "  --config FILE    configuration file (env LCMCOORD_CONFIG; default\n"
          "                   " LCMCOORD_DEFAULT_CONFIG ")\n"
          "  --log-format F   text (default) or json, for the -v lines\n"
          "  --print-config   print the effective settings and where each comes from\n"
          "  -h, --help       show this help\n"
          "\n"
          "Exit status: 0 every check passed; 1 a check failed; 2 usage error.\n",
          stdout);
}

static int parse_options(check_context *ctx, int argc, char **argv)
{
    const lcmc_option own[] = {
        {"--offline", LCMC_OPTION_FLAG, &ctx->offline, 0},
        {"--script-timeout", LCMC_OPTION_NUMBER, &ctx->script_timeout, 1e7},
        {"--timeout", LCMC_OPTION_NUMBER, &ctx->em_timeout, 1e7},
        {NULL, LCMC_OPTION_FLAG, NULL, 0},
    };
    const lcmc_option_parser parser = {
        .subcommand = "check",
        .usage_line = usage_line,
        .print_help = print_help,
        .takes_operands = 1,
        .verbosity = &ctx->verbosity,
        .config = &ctx->config,
        .own = own,
    };
    return lcmc_host_parse_script_options(&parser, argc, argv, &ctx->script);
}

/* ---- reporting ---------------------------------------------------------------------- */

/* Text from the parameters, the script or an EM (a token endpoint's error_description, a
 * coordination action): one line, and nothing a terminal would act on (safe_text.h). */
static void put_safe(const char *text)
{
    lcmc_safe_write(stdout, text, strlen(text), LCMC_SAFE_SPACE_LINES);
}

static void pass(const char *check, const char *detail)
{
    printf("ok    %s: ", check);
    put_safe(detail);
    putchar('\n');
    fflush(stdout);
}

static void fail(check_context *ctx, const char *check, const char *what, const char *fix)
{
    printf("FAIL  %s: ", check);
    put_safe(what);
    fputs("; fix: ", stdout);
    put_safe(fix);
    putchar('\n');
    fflush(stdout);
    ctx->failed = 1;
}

static void skip(const char *check, const char *why)
{
    printf("skip  %s: %s\n", check, why);
    fflush(stdout);
}

/* ---- the parameters ----------------------------------------------------------------- */

static int is_absent(const json_t *value)
{
    return value == NULL || json_is_null(value);
}

/* A non-empty string field of `object`; else why in ctx->why. */
static int string_field(check_context *ctx, const json_t *object, const char *field,
                        const char *shown)
{
    const json_t *value = json_object_get(object, field);
    if (is_absent(value))
        snprintf(ctx->why, sizeof ctx->why, "%s is missing", shown);
    else if (!json_is_string(value))
        snprintf(ctx->why, sizeof ctx->why, "%s must be a string", shown);
    else if (json_string_length(value) == 0)
        snprintf(ctx->why, sizeof ctx->why, "%s must not be empty", shown);
    else
        return 0;
    return -1;
}

/* An LcmCoordRequest as the API defines it. With `from_vnfm`, the VNFM's placeholder action
 * is expected (the script replaces it); otherwise it is an error. */
static int request_is_valid(check_context *ctx, const json_t *request, int from_vnfm)
{
    if (!json_is_object(request)) {
        snprintf(ctx->why, sizeof ctx->why, "the LcmCoordRequest is not a JSON object");
        return 0;
    }
    if (string_field(ctx, request, "vnfInstanceId", "vnfInstanceId") ||
        string_field(ctx, request, "vnfLcmOpOccId", "vnfLcmOpOccId") ||
        string_field(ctx, request, "lcmOperationType", "lcmOperationType") ||
        string_field(ctx, request, "coordinationActionName", "coordinationActionName"))
        return 0;
    const char *type = json_string_value(json_object_get(request, "lcmOperationType"));
    if (!lcmc_operation_type_is_valid(type)) {
        snprintf(ctx->why, sizeof ctx->why,
                 "lcmOperationType '%.40s' is not one of INSTANTIATE, SCALE, SCALE_TO_LEVEL, "
                 "CHANGE_FLAVOUR, TERMINATE, HEAL, OPERATE, CHANGE_EXT_CONN, MODIFY_INFO, "
                 "CREATE_SNAPSHOT, REVERT_TO_SNAPSHOT, CHANGE_VNFPKG",
                 type);
        return 0;
    }
    const char *action = json_string_value(json_object_get(request, "coordinationActionName"));
    if (!from_vnfm && strcmp(action, PLACEHOLDER_ACTION) == 0) {
        snprintf(ctx->why, sizeof ctx->why,
                 "coordinationActionName is still the VNFM's placeholder '" PLACEHOLDER_ACTION "'");
        return 0;
    }
    const json_t *input = json_object_get(request, "inputParams");
    if (input != NULL && !json_is_object(input) && !json_is_null(input)) {
        snprintf(ctx->why, sizeof ctx->why, "inputParams must be an object");
        return 0;
    }
    const json_t *links = json_object_get(request, "_links");
    if (!json_is_object(links)) {
        snprintf(ctx->why, sizeof ctx->why, "_links %s",
                 links == NULL ? "is missing" : "must be an object");
        return 0;
    }
    static const char *const link_names[] = {"vnfLcmOpOcc", "vnfInstance"};
    for (size_t i = 0; i < 2; i++) {
        char shown[64];
        const json_t *link = json_object_get(links, link_names[i]);
        snprintf(shown, sizeof shown, "_links.%s.href", link_names[i]);
        if (!json_is_object(link)) {
            snprintf(ctx->why, sizeof ctx->why, "_links.%s must be an object with href",
                     link_names[i]);
            return 0;
        }
        if (string_field(ctx, link, "href", shown))
            return 0;
    }
    return 1;
}

/* The endpoint as check may print it: a user:password@ in it is a secret (the runtime refuses
 * such an endpoint without showing it), so such an endpoint is never shown. */
static const char *shown_endpoint(const char *endpoint)
{
    return strchr(endpoint, '@') != NULL ? "(not shown: it holds an '@')" : endpoint;
}

/* The endpoint's host, parsed by libcurl as the runtime will (malloc'd), or NULL with why.
 * What the runtime refuses (lcmc__normalise_endpoint) is refused here too, so that --offline
 * never passes an endpoint that `lcmcoord run` would not take. */
static char *endpoint_host(check_context *ctx, const char *endpoint)
{
    if (strstr(endpoint, "://") == NULL) {
        snprintf(ctx->why, sizeof ctx->why, "'%.200s' is missing its scheme (http:// or https://)",
                 shown_endpoint(endpoint));
        return NULL;
    }
    CURLU *url = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL, *fragment = NULL;
    char *copy = NULL;
    if (url == NULL || curl_url_set(url, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == NULL) {
        snprintf(ctx->why, sizeof ctx->why, "'%.200s' is not a valid URL",
                 shown_endpoint(endpoint));
    } else if (curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(ctx->why, sizeof ctx->why, "'%.200s' must be an http:// or https:// URL",
                 shown_endpoint(endpoint));
    } else if (curl_url_get(url, CURLUPART_USER, &user, 0) == CURLUE_OK && user != NULL) {
        /* As the runtime: credentials go in 'authentication', never in the URL. */
        snprintf(ctx->why, sizeof ctx->why,
                 "'endpoint' must not carry user:password@ (not shown); use 'authentication'");
    } else if (curl_url_get(url, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query != NULL) {
        snprintf(ctx->why, sizeof ctx->why, "'endpoint' must not have a query string");
    } else if (curl_url_get(url, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK &&
               fragment != NULL) {
        snprintf(ctx->why, sizeof ctx->why, "'endpoint' must not have a fragment");
    } else {
        copy = strdup(host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(url);
    return copy;
}

/* The parameter checks; returns 1 when the EM checks have what they need. */
static int check_parameters(check_context *ctx, lcmc_engine *engine, lcmc_tls_options *tls)
{
    char why[256];
    ctx->params = lcmc_json_parse(ctx->input, ctx->input_length, why, sizeof why);
    if (ctx->params == NULL || !json_is_object(ctx->params)) {
        fail(ctx, "parameters", ctx->params == NULL ? why : "stdin is not a JSON object",
             "pass the VNFC parameters as one JSON object on stdin (`lcmcoord params` makes "
             "them from a package's additionalParams)");
        static const char *const rest[] = {"endpoint", "authentication", "timeout",
                                           "LcmCoordRequest"};
        for (size_t i = 0; i < 4; i++)
            skip(rest[i], "no parameters to check");
        return 0;
    }
    pass("parameters", "a JSON object");
    int em_ready = 1;

    const json_t *endpoint = json_object_get(ctx->params, "endpoint");
    if (string_field(ctx, ctx->params, "endpoint", "'endpoint'") == 0) {
        char *host = endpoint_host(ctx, json_string_value(endpoint));
        if (host != NULL)
            pass("endpoint", shown_endpoint(json_string_value(endpoint)));
        else
            fail(ctx, "endpoint", ctx->why,
                 "set 'endpoint' to the EM's apiRoot, e.g. \"https://em.example:6789\"");
        em_ready = host != NULL;
        free(host);
    } else {
        fail(ctx, "endpoint", ctx->why,
             "set 'endpoint' to the EM's apiRoot, e.g. \"https://em.example:6789\"");
        em_ready = 0;
    }

    const json_t *auth = json_object_get(ctx->params, "authentication");
    if (is_absent(auth)) {
        pass("authentication", "none (the EM must take requests without credentials)");
    } else if (!json_is_object(auth)) {
        fail(ctx, "authentication", "'authentication' must be an object",
             "give {\"authType\": [\"BASIC\"], \"paramsBasic\": {\"userName\": ..., "
             "\"password\": ...}} or an OAUTH2 form (see lcmcoord(1))");
        em_ready = 0;
    } else {
        char *text = lcmc_json_dump(auth, NULL);
        lcmc_credentials *credentials = NULL;
        lcmc_status status =
            text != NULL ? lcmc_credentials_new(&credentials, engine, text, tls) : LCMC_ENOMEM;
        if (text != NULL)
            lcmc_free_wiped(text, strlen(text));
        if (status == LCMC_OK) {
            pass("authentication", lcmc_credentials_type(credentials));
        } else {
            const lcmc_error *err = lcmc_engine_last_error(engine);
            fail(ctx, "authentication",
                 err != NULL ? lcmc_error_message(err) : lcmc_strerror(status),
                 "complete 'authentication' as the EM expects: authType and the params object "
                 "of that type (paramsBasic, paramsOauth2ClientCredentials, "
                 "paramsOauth2ClientCert)");
            em_ready = 0;
        }
        lcmc_credentials_free(credentials);
    }

    const json_t *timeout = json_object_get(ctx->params, "timeout");
    if (is_absent(timeout)) {
        pass("timeout", "not given (the default 3600 s)");
    } else if (!json_is_number(timeout) || !(json_number_value(timeout) > 0) ||
               json_number_value(timeout) > LCMC_PARAMS_TIMEOUT_MAX) {
        fail(ctx, "timeout", "'timeout' is not a positive number of seconds",
             "give a number such as 300 (seconds), or leave it out for 3600");
    } else {
        char text[64];
        snprintf(text, sizeof text, "%g s", json_number_value(timeout));
        pass("timeout", text);
    }

    const json_t *request = json_object_get(ctx->params, "LcmCoordRequest");
    if (is_absent(request))
        fail(ctx, "LcmCoordRequest", "the VNFC parameters have no LcmCoordRequest object",
             "the VNFM adds it; for a test, make the parameters with `lcmcoord params`");
    else if (!request_is_valid(ctx, request, 1))
        fail(ctx, "LcmCoordRequest", ctx->why,
             "give every attribute of an LcmCoordRequest (see `lcmcoord params`)");
    else
        pass("LcmCoordRequest", "valid (the script sets the action)");
    return em_ready;
}

/* ---- the script, against a stand-in ------------------------------------------------- */

/* Replaces the coordination calls of the module with ones that record the request (as JSON
 * text, in the table passed as the second argument) and answer CONTINUE, so that the script
 * runs to its end without anything being sent; SSH, HTTP requests that change things, and
 * commands on this host (os.execute, io.popen) answer as if they succeeded, without being
 * made. */
static const char stand_in_source[] =
    "local lcmcoord, sent = ...\n"
    "local function record(request)\n"
    "  if type(request) ~= 'table' then\n"
    "    error('the LcmCoordRequest must be a table, got ' .. type(request), 3)\n"
    "  end\n"
    "  sent[#sent + 1] = lcmcoord.json.encode(request)\n"
    "  return {id = 'preflight-' .. #sent, coordinationResult = 'CONTINUE',\n"
    "          vnfInstanceId = request.vnfInstanceId, vnfLcmOpOccId = request.vnfLcmOpOccId,\n"
    "          lcmOperationType = request.lcmOperationType,\n"
    "          coordinationActionName = request.coordinationActionName,\n"
    "          _links = request._links}\n"
    "end\n"
    "lcmcoord.create_coordination = function(endpoint, authentication, request)\n"
    "  return record(request)\n"
    "end\n"
    "local Client = {}\n"
    "Client.__index = Client\n"
    "function Client:coordinate(request) return record(request) end\n"
    "function Client:coordinate_all(requests)\n"
    "  local out = {}\n"
    "  for i, request in ipairs(requests) do out[i] = {coord = record(request)} end\n"
    "  return out\n"
    "end\n"
    "-- post, get and cancel answer as the EM would: a script that runs a coordination step\n"
    "-- by step (post, then get of the id it got) runs to its end, with nothing sent.\n"
    "local answered = {}\n"
    "local function response(status, coord, location)\n"
    "  return {status = status, headers = {location = location,\n"
    "          ['content-type'] = coord and 'application/json' or nil},\n"
    "          body = coord and lcmcoord.json.encode(coord) or '', json = coord}\n"
    "end\n"
    "function Client:post(request)\n"
    "  if type(request) ~= 'table' then return response(201) end\n"
    "  local coord = record(request)\n"
    "  answered[coord.id] = coord\n"
    "  return response(201, coord, self.base .. '/lcmcoord/v1/coordinations/' .. coord.id)\n"
    "end\n"
    "function Client:get(id)\n"
    "  local coord = type(id) == 'string' and answered[id:match('([^/]+)$')]\n"
    "  if coord then return response(200, coord) end\n"
    "  return response(404)\n"
    "end\n"
    "function Client:cancel(id) return response(202) end\n"
    "function Client:api_versions()\n"
    "  return {status = 200, headers = {}, body = '{}'}\n"
    "end\n"
    "function Client:record() return {lcmCoordinations = {}, rejectedLcmCoordinations = {}} end\n"
    "function Client:close() end\n"
    "Client.__close = Client.close\n"
    "lcmcoord.client = function(options)\n"
    "  local endpoint = type(options) == 'table' and options.endpoint\n"
    "  return setmetatable({base = type(endpoint) == 'string' and endpoint:gsub('/+$', '')\n"
    "                             or 'http://em.invalid'}, Client)\n"
    "end\n"
    "-- Nothing else with an effect either: SSH commands on the VNFC and HTTP requests\n"
    "-- other than GET and HEAD are not made; they answer as if they succeeded.\n"
    "local Session = {}\n"
    "Session.__index = Session\n"
    "function Session:exec() return {status = 0, stdout = '', stderr = '', elapsed = 0} end\n"
    "function Session:host_key_sha256() return '' end\n"
    "function Session:close() end\n"
    "Session.__close = Session.close\n"
    "if lcmcoord.ssh then\n"
    "  lcmcoord.ssh.connect = function() return setmetatable({}, Session) end\n"
    "end\n"
    "if lcmcoord.http then\n"
    "  local request = lcmcoord.http.request\n"
    "  local fields = {'method', 'url', 'headers', 'body', 'json', 'auth', 'tls', 'timeout',\n"
    "                  'retry', 'max_body'}\n"
    "  lcmcoord.http.request = function(options)\n"
    "    if type(options) ~= 'table' then return request(options) end\n"
    "    -- The method that is judged is the one sent: a plain copy, each field read once\n"
    "    -- (an __index could answer GET here and POST to the request).\n"
    "    local copy = {}\n"
    "    for key, value in next, options do copy[key] = value end\n"
    "    for _, key in ipairs(fields) do copy[key] = options[key] end\n"
    "    local method = copy.method == nil and 'GET' or copy.method\n"
    "    method = type(method) == 'string' and method:upper() or method\n"
    "    if method == 'GET' or method == 'HEAD' then return request(copy) end\n"
    "    return {status = 200, headers = {}, body = ''}\n"
    "  end\n"
    "end\n"
    "-- The real module cannot be had again: not by require once package.loaded forgets it\n"
    "-- (a searcher answers the stand-in first), nor by package.loadlib of its library.\n"
    "if package then\n"
    "  table.insert(package.searchers, 1, function(name)\n"
    "    if name == 'lcmcoord' then return function() return lcmcoord end, ':stand-in:' end\n"
    "    return nil\n"
    "  end)\n"
    "  local loadlib = package.loadlib\n"
    "  package.loadlib = function(path, symbol)\n"
    "    if type(symbol) == 'string' and symbol:find('^luaopen_lcmcoord') then\n"
    "      return function() return lcmcoord end\n"
    "    end\n"
    "    return loadlib(path, symbol)\n"
    "  end\n"
    "end\n"
    "-- Nor a command on this host: os.execute and io.popen answer as if it succeeded, with\n"
    "-- no output.\n"
    "if os then os.execute = function(command)\n"
    "  if command == nil then return true end\n"
    "  return true, 'exit', 0\n"
    "end end\n"
    "if io then\n"
    "  local Pipe = {}\n"
    "  Pipe.__index = Pipe\n"
    "  function Pipe:read() return nil end\n"
    "  function Pipe:lines() return function() return nil end end\n"
    "  function Pipe:write() return self end\n"
    "  function Pipe:flush() return self end\n"
    "  function Pipe:setvbuf() return true end\n"
    "  function Pipe:close() return true, 'exit', 0 end\n"
    "  Pipe.__close = Pipe.close\n"
    "  io.popen = function(command, mode)\n"
    "    if type(command) ~= 'string' then\n"
    "      error(\"bad argument #1 to 'popen' (string expected, got \" .. type(command) .. ')', "
    "2)\n"
    "    end\n"
    "    return setmetatable({}, Pipe)\n"
    "  end\n"
    "end\n"
    "-- stdout is check's report, one line per check: what the script prints goes to stderr.\n"
    "if io then\n"
    "  local stderr = io.stderr\n"
    "  print = function(...)\n"
    "    local n = select('#', ...)\n"
    "    local parts = {...}\n"
    "    for i = 1, n do parts[i] = tostring(parts[i]) end\n"
    "    stderr:write(table.concat(parts, '\\t', 1, n), '\\n')\n"
    "  end\n"
    "  io.output(stderr)\n"
    "  io.stdout = io.stderr\n"
    "end\n"
    "if os then os.exit = function(code)\n"
    "  local ok = code == nil or code == true or code == 0\n"
    "  error(setmetatable({preflight_exit = true, ok = ok}, {__tostring = function()\n"
    "    return 'the script called os.exit(' .. tostring(code) .. ')' end}), 0)\n"
    "end end\n";

typedef struct script_run {
    check_context *ctx;
    lcmc_script_limits limits;
    int not_run; /* the parameters are no JSON object: the script was only loaded */
} script_run;

/* Loads the stand-in and the script, and runs it; pushes the table of recorded requests. */
static int run_script_protected(lua_State *L)
{
    script_run *run = lua_touserdata(L, 1);
    check_context *ctx = run->ctx;
    lua_settop(L, 0);
    lcmc_host_open_libraries(L);
    ctx->log.hold_until_outcome = 0;
    lcmc_host_apply_config(L, &ctx->config, ctx->verbosity, &ctx->log);

    lua_newtable(L); /* 1: the requests sent */
    if (luaL_loadbufferx(L, stand_in_source, sizeof stand_in_source - 1, "=stand-in", "t") !=
        LUA_OK)
        return lua_error(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "lcmcoord");
    lua_remove(L, -2);
    lua_pushvalue(L, 1);
    lua_call(L, 2, 0);

    if (luaL_loadfilex(L, ctx->script, "t") != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 3; /* sent, false, message */
    }
    char why[256];
    if (lcmc_params_push(L, ctx->input, ctx->input_length, 0, why, sizeof why) != 0) {
        /* Already reported by the parameters' check; a script run without them proves
         * nothing. */
        run->not_run = 1;
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
        lua_pushnil(L);
        return 3; /* sent (empty), loaded, no error */
    }
    int caught = 0;
    int rc = lcmc_limits_call_script(L, ctx->script, 1, 0, &run->limits, &caught);
    lua_pushboolean(L, 1); /* loaded */
    if (rc == LUA_OK) {
        lua_pushnil(L);
    } else {
        lua_pushvalue(L, -2);
        lua_remove(L, -3);
    }
    return 3; /* sent, loaded, error or nil */
}

/* Whether the script's outcome (top of the stack: nil, or what it raised) is a failure: an
 * error, or os.exit with anything but success. */
static int script_failed(lua_State *L)
{
    if (lua_isnil(L, -1))
        return 0;
    if (!lua_istable(L, -1))
        return 1;
    lua_getfield(L, -1, "preflight_exit");
    int is_exit = lua_toboolean(L, -1);
    lua_getfield(L, -2, "ok");
    int ok = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return !(is_exit && ok);
}

/* Runs the script; reports "script loads" and "script sets the action". */
static void check_script(check_context *ctx, int have_params)
{
    script_run run;
    memset(&run, 0, sizeof run);
    run.ctx = ctx;
    run.limits.seconds = ctx->script_timeout > 0 ? ctx->script_timeout : DEFAULT_SCRIPT_SECONDS;
    run.limits.memory_bytes = (size_t)512 * 1024 * 1024;
    lua_State *L = lcmc_limits_new_state(&run.limits);
    if (L == NULL) {
        fail(ctx, "script loads", "not enough memory", "free some memory");
        skip("script sets the action", "the script could not run");
        return;
    }
    lua_pushcfunction(L, run_script_protected);
    lua_pushlightuserdata(L, &run);
    if (lua_pcall(L, 1, 3, 0) != LUA_OK) {
        fail(ctx, "script loads", luaL_tolstring(L, -1, NULL), "see the message");
        skip("script sets the action", "the script could not run");
        lua_close(L);
        return;
    }
    if (!lua_toboolean(L, -2)) {
        fail(ctx, "script loads", lua_tostring(L, -1),
             "give the path of a Lua 5.4 text script and fix the syntax error it names");
        skip("script sets the action", "the script did not load");
        lua_close(L);
        return;
    }
    pass("script loads", ctx->script);
    const char *check = "script sets the action";
    if (run.not_run) {
        skip(check, "no VNFC parameters to run it with");
        lua_close(L);
        return;
    }
    const char *fix_run = "make the script run to its end with the parameters given (lcmcoord "
                          "check runs it with a stand-in that answers CONTINUE)";
    int sent = (int)lua_rawlen(L, -3);
    if (run.limits.deadline_passed) {
        char text[96];
        snprintf(text, sizeof text, "the script ran past %g s", run.limits.seconds);
        fail(ctx, check, text, fix_run);
    } else if (script_failed(L)) {
        fail(ctx, check, luaL_tolstring(L, -1, NULL),
             have_params ? fix_run : "give valid VNFC parameters first");
    } else if (sent == 0) {
        fail(ctx, check, "the script sent no coordination request",
             "call lcmcoord.create_coordination(p.endpoint, p.authentication, req, p.timeout) "
             "(or a client's coordinate) with the LcmCoordRequest");
    } else {
        lua_settop(L, 1);
        for (int i = 1; i <= sent; i++) {
            lua_rawgeti(L, 1, i);
            json_t *request = lcmc_json_parse(lua_tostring(L, -1), lua_rawlen(L, -1), NULL, 0);
            lua_pop(L, 1);
            int valid = request_is_valid(ctx, request, 0);
            if (valid && i == sent) {
                char text[200];
                snprintf(text, sizeof text, "%.150s",
                         json_string_value(json_object_get(request, "coordinationActionName")));
                pass(check, text);
            }
            json_decref(request);
            if (!valid) {
                fail(ctx, check, ctx->why,
                     "set req.coordinationActionName to one of the coordination actions the "
                     "VNFD declares, and send a complete LcmCoordRequest");
                break;
            }
        }
    }
    lua_close(L);
}

/* ---- the EM ------------------------------------------------------------------------- */

static const char *fix_for(lcmc_status status, const char *endpoint)
{
    static char text[400];
    switch (status) {
    case LCMC_ETLS:
        return "give the CA that signed the EM's certificate with --cacert FILE (or cacert in "
               "the configuration file), and check the endpoint's scheme matches the port";
    case LCMC_EAUTH:
        return "correct the credentials in 'authentication' (user name and password, or "
               "clientId, clientPassword and tokenEndpoint)";
    case LCMC_EDEADLINE:
        return "check the EM is up and answering; give more time with --timeout S";
    default:
        snprintf(text, sizeof text,
                 "start the EM, or correct 'endpoint' (%.200s) to where it listens",
                 shown_endpoint(endpoint));
        return text;
    }
}

static void check_em(check_context *ctx, lcmc_engine *engine, const lcmc_tls_options *tls,
                     int ready)
{
    static const char *const checks[] = {"endpoint resolves", "token", "EM answers api_versions",
                                         "Version " CLIENT_API_VERSION " supported"};
    if (ctx->offline || !ready) {
        for (size_t i = 0; i < 4; i++)
            skip(checks[i], ctx->offline ? "--offline" : "the parameters are not usable");
        return;
    }
    const char *endpoint = json_string_value(json_object_get(ctx->params, "endpoint"));
    double timeout = ctx->em_timeout > 0 ? ctx->em_timeout : DEFAULT_EM_SECONDS;

    char *host = endpoint_host(ctx, endpoint);
    struct addrinfo *found = NULL;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int gai = host != NULL ? getaddrinfo(host, NULL, &hints, &found) : EAI_FAIL;
    if (gai != 0) {
        char text[400];
        snprintf(text, sizeof text, "cannot resolve '%.200s': %s", host != NULL ? host : "?",
                 gai_strerror(gai));
        fail(ctx, checks[0], text, "correct the host name in 'endpoint', or the DNS or /etc/hosts");
        free(host);
        for (size_t i = 1; i < 4; i++)
            skip(checks[i], "the endpoint does not resolve");
        return;
    }
    freeaddrinfo(found);
    pass(checks[0], host);
    free(host);

    const json_t *auth = json_object_get(ctx->params, "authentication");
    char *auth_text = is_absent(auth) ? NULL : lcmc_json_dump(auth, NULL);
    lcmc_client_options options = LCMC_CLIENT_OPTIONS_INIT;
    options.endpoint = endpoint;
    options.authentication_json = auth_text;
    options.timeout = timeout;
    options.tls = *tls;

    /* The token first, on its own line: a refused client secret is told apart from an EM
     * that refuses the token. */
    const char *type = "NONE";
    lcmc_credentials *credentials = NULL;
    if (auth_text != NULL && lcmc_credentials_new(&credentials, engine, auth_text, tls) == LCMC_OK)
        type = lcmc_credentials_type(credentials);
    if (strncmp(type, "OAUTH2", 6) == 0) {
        char *header = NULL;
        lcmc_status status = lcmc_credentials_header(credentials, timeout, &header);
        lcmc_free_secret(header);
        if (status != LCMC_OK) {
            const lcmc_error *err = lcmc_engine_last_error(engine);
            fail(ctx, checks[1], err != NULL ? lcmc_error_message(err) : lcmc_strerror(status),
                 status == LCMC_EAUTH ? "correct clientId and clientPassword (or the client "
                                        "certificate) the token endpoint expects"
                                      : fix_for(status, endpoint));
            skip(checks[2], "no token");
            skip(checks[3], "no token");
            lcmc_credentials_free(credentials);
            lcmc_free_wiped(auth_text, auth_text != NULL ? strlen(auth_text) : 0);
            return;
        }
        pass(checks[1], "fetched from the token endpoint");
    } else {
        skip(checks[1], strcmp(type, "BASIC") == 0 ? "BASIC: no token" : "no credentials");
    }
    lcmc_credentials_free(credentials);

    lcmc_client *client = NULL;
    lcmc_status status = lcmc_client_new(&client, engine, &options);
    lcmc_response *response = NULL;
    if (status == LCMC_OK)
        status = lcmc_client_request(client, "GET", "/lcmcoord/v1/api_versions", NULL, timeout,
                                     &response);
    int http = response != NULL && status == LCMC_OK ? lcmc_response_status(response) : 0;
    if (status != LCMC_OK) {
        const lcmc_error *err =
            response != NULL ? lcmc_response_error(response) : lcmc_engine_last_error(engine);
        fail(ctx, checks[2], err != NULL ? lcmc_error_message(err) : lcmc_strerror(status),
             fix_for(status, endpoint));
        skip(checks[3], "no answer");
    } else if (http != 200) {
        char text[300];
        snprintf(text, sizeof text, "GET /lcmcoord/v1/api_versions answered %d%s", http,
                 http == 401 || http == 403 ? ": the EM refused the credentials" : "");
        fail(ctx, checks[2], text,
             http == 401 || http == 403 ? fix_for(LCMC_EAUTH, endpoint)
                                        : "check 'endpoint' is the EM's apiRoot (without "
                                          "/lcmcoord/v1)");
        skip(checks[3], "no ApiVersionInformation");
    } else {
        pass(checks[2], "200");
        size_t length = 0;
        const char *body = lcmc_response_body(response, &length);
        json_t *info = body != NULL ? lcmc_json_parse(body, length, NULL, 0) : NULL;
        const json_t *versions = json_object_get(info, "apiVersions");
        int supported = 0;
        size_t i;
        const json_t *entry;
        json_array_foreach(versions, i, entry)
        {
            const char *version = json_string_value(json_object_get(entry, "version"));
            if (version != NULL && strcmp(version, CLIENT_API_VERSION) == 0)
                supported = 1;
        }
        if (supported)
            pass(checks[3], "listed in apiVersions");
        else
            fail(ctx, checks[3],
                 json_is_array(versions) ? "the EM's apiVersions do not list " CLIENT_API_VERSION
                                         : "the answer is not an ApiVersionInformation",
                 "use an EM that implements the LCM coordination API " CLIENT_API_VERSION);
        json_decref(info);
    }
    lcmc_response_free(response);
    lcmc_client_free(client);
    lcmc_free_wiped(auth_text, auth_text != NULL ? strlen(auth_text) : 0);
}

/* The parameter and EM checks, in a Lua state of their own (the engine and logging). */
static int check_protected(lua_State *L)
{
    check_context *ctx = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lcmc_host_open_libraries(L);
    lcmc_host_apply_config(L, &ctx->config, ctx->verbosity, &ctx->log);
    lcmc_engine *engine = lcmc_lua_engine(L);
    lcmc_tls_options tls;
    memset(&tls, 0, sizeof tls);
    lcmc_host_config_tls(&ctx->config, &tls);
    int ready = check_parameters(ctx, engine, &tls);
    check_script(ctx, ctx->params != NULL);
    check_em(ctx, engine, &tls, ready);
    return 0;
}

int lcmc_check_main(int argc, char **argv)
{
    check_context ctx;
    memset(&ctx, 0, sizeof ctx);
    int rc = parse_options(&ctx, argc, argv);
    if (rc >= 0)
        return rc;
    rc = lcmc_host_settle_config(&ctx.config, "check", usage_line);
    if (rc >= 0) {
        lcmc_host_config_free(&ctx.config);
        return rc;
    }
    /* As `run`: someone at a terminal may not know the parameters come on stdin. */
    if (isatty(STDIN_FILENO)) {
        fputs("lcmcoord check: waiting for the VNFC parameters (a JSON object) on stdin; end "
              "with Ctrl-D\n",
              stderr);
        fflush(stderr);
    }
    ctx.input = lcmc_read_all(stdin, STDIN_CAP, &ctx.input_length);
    if (ctx.input == NULL) {
        /* Why, as `run` says it: a closed stdin, one larger than the cap (File too large). */
        fprintf(stderr, "lcmcoord check: cannot read stdin: %s\n", strerror(errno));
        lcmc_host_config_free(&ctx.config);
        return LCMC_EXIT_USAGE;
    }
    lcmc_script_limits limits;
    memset(&limits, 0, sizeof limits);
    lua_State *L = lcmc_limits_new_state(&limits);
    rc = EXIT_FAILED;
    if (L == NULL) {
        fputs("lcmcoord check: not enough memory\n", stderr);
    } else {
        lua_pushcfunction(L, check_protected);
        lua_pushlightuserdata(L, &ctx);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK)
            fprintf(stderr, "lcmcoord check: %s\n", luaL_tolstring(L, -1, NULL));
        else
            rc = ctx.failed ? EXIT_FAILED : 0;
        lua_close(L);
    }
    json_decref(ctx.params);
    lcmc_free_wiped(ctx.input, ctx.input_length);
    lcmc_host_log_finish(&ctx.log, 1);
    lcmc_host_config_free(&ctx.config);
    return rc;
}
