/*
 * `lcmcoord coordinate`: one coordination from the shell, for an operator checking an EM or a
 * shell script that needs one: the request is built from a few flags (by the module's
 * `lcmcoord.request`, the same helper scripts and the REPL use) or taken whole from a file or
 * stdin; the LcmCoord is printed on stdout as JSON, and the exit status and one stderr line
 * follow `lcmcoord run`'s conventions, with CONTINUE the only success.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "host.h"
#include "lcmcoord_lua.h"
#include "options.h"
#include "progress.h"
#include "repl.h"
#include "run_io.h"
#include "subcommands.h"

/* A request is a few kilobytes; this only stops a runaway pipe. */
#define REQUEST_CAP ((size_t)16 * 1024 * 1024)

static const char usage_line[] =
    "usage: lcmcoord coordinate --endpoint URL (--action NAME | --request FILE|-) "
    "[--auth FILE] [--input JSON] [--instance ID] [--op-occ ID] [--operation TYPE] "
    "[--version V] [--timeout S] [-v] [--cacert FILE] [--capath DIR] [--cert FILE] [--key FILE] "
    "[--config FILE] [--log-format text|json] [--print-config]";

typedef struct coordinate_options {
    lcmc_host_client_options client;
    lcmc_host_config config;
    lcmc_host_log log;
    const char *action;
    const char *request;
    const char *input;
    const char *instance;
    const char *op_occ;
    const char *operation;
    int verbosity;
    int exit_status;
} coordinate_options;

static int usage_error(const char *fmt, const char *arg)
{
    return lcmc_host_usage_error("coordinate", usage_line, fmt, arg);
}

static void print_help(void)
{
    printf("%s\n", usage_line);
    fputs("\n"
          "Runs one coordination against an EM and prints the LcmCoord (JSON) on stdout.\n"
          "The request is built from --action and the optional fields (random ids,\n"
          "CHANGE_VNFPKG), or read whole from --request FILE (- for stdin).\n"
          "\n"
          "Options:\n"
          "  --endpoint URL     the EM's apiRoot (required)\n"
          "  --action NAME      coordinationActionName (required without --request)\n"
          "  --request FILE|-   the LcmCoordRequest as JSON, instead of building one\n"
          "  --input JSON       inputParams, a JSON object\n"
          "  --instance ID      vnfInstanceId (default: a random UUID)\n"
          "  --op-occ ID        vnfLcmOpOccId (default: a random UUID)\n"
          "  --operation TYPE   lcmOperationType, any case: heal is HEAL (default\n"
          "                     CHANGE_VNFPKG)\n"
          "  --auth FILE        the `authentication` structure (JSON, as in additionalParams)\n"
          "  --version V        the Version header sent (default 1.0.0)\n"
          "  --timeout S        deadline of the whole coordination, seconds (default 3600)\n"
          "  -v, --verbose      log each request and wait to stderr (-vv: more detail)\n"
          "  --cacert FILE      CA bundle for TLS (env LCMCOORD_CACERT)\n"
          "  --capath DIR       CA directory for TLS (env LCMCOORD_CAPATH)\n"
          "  --cert FILE        client certificate for mutual TLS (env LCMCOORD_CERT)\n"
          "  --key FILE         its private key (env LCMCOORD_KEY; passphrase in\n"
          "                     LCMCOORD_KEY_PASSWORD)\n"
          "  --config FILE      configuration file (env LCMCOORD_CONFIG; default\n"
          "                     " LCMCOORD_DEFAULT_CONFIG ")\n"
          "  --log-format F     text (default) or json: one JSON object per log line\n"
          "                     (env LCMCOORD_LOG_FORMAT)\n"
          "  --print-config     print the effective settings and where each comes from\n"
          "  -h, --help         show this help\n"
          "\n"
          "Exit status: 0 CONTINUE; 1 ABORT, CANCELLED or an error answer; 2 usage or\n"
          "invalid input; 3 deadline exceeded; 4 transport, TLS or authentication failure;\n"
          "130/143 interrupted by SIGINT/SIGTERM.\n",
          stdout);
}

/* Returns -1 when the options are fine, else the exit status to return. */
static int parse_options(coordinate_options *o, int argc, char **argv)
{
    const lcmc_option own[] = {
        {"--action", LCMC_OPTION_VALUE, &o->action, 0},
        {"--request", LCMC_OPTION_VALUE, &o->request, 0},
        {"--input", LCMC_OPTION_VALUE, &o->input, 0},
        {"--instance", LCMC_OPTION_VALUE, &o->instance, 0},
        {"--op-occ", LCMC_OPTION_VALUE, &o->op_occ, 0},
        {"--operation", LCMC_OPTION_VALUE, &o->operation, 0},
        {NULL, LCMC_OPTION_FLAG, NULL, 0},
    };
    const lcmc_option_parser parser = {
        .subcommand = "coordinate",
        .usage_line = usage_line,
        .print_help = print_help,
        .verbosity = &o->verbosity,
        .config = &o->config,
        .config_timeout = 1,
        .client = &o->client,
        .own = own,
    };
    int rc = lcmc_host_parse_options(&parser, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (o->config.print)
        return -1;
    if (o->client.endpoint == NULL)
        return usage_error("%s", "--endpoint is required");
    if (o->request == NULL && o->action == NULL)
        return usage_error("%s", "--action or --request is required");
    if (o->request != NULL && (o->action != NULL || o->input != NULL || o->instance != NULL ||
                               o->op_occ != NULL || o->operation != NULL))
        return usage_error("%s", "--request takes the whole request: drop --action, --input, "
                                 "--instance, --op-occ and --operation");
    return -1;
}

/* Pushes the request text read from --request (a file, or stdin for "-"). 0, or reports. */
static int push_request_file(lua_State *L, const char *path)
{
    int from_stdin = strcmp(path, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(path, "rb");
    size_t length = 0;
    char *text = in != NULL ? lcmc_read_all(in, REQUEST_CAP, &length) : NULL;
    int saved_errno = errno;
    if (in != NULL && !from_stdin)
        fclose(in);
    if (text == NULL) {
        fprintf(stderr, "lcmcoord coordinate: cannot read the request from %s: %s\n",
                from_stdin ? "stdin" : path, strerror(saved_errno));
        return -1;
    }
    lua_pushlstring(L, text, length);
    lcmc_free_wiped(text, length); /* wiped like every input the host reads */
    return 0;
}

/* Calls module.field(arg at idx) in protection; pushes the result, or reports `what` and
 * returns -1 with nothing pushed. */
static int call_module(lua_State *L, const char *path, int idx, const char *what)
{
    idx = lua_absindex(L, idx);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "lcmcoord");
    if (strcmp(path, "request") == 0) {
        lua_getfield(L, -1, "request");
    } else {
        lua_getfield(L, -1, "json");
        lua_getfield(L, -1, "encode");
        lua_remove(L, -2);
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "lcmcoord coordinate: %s: %s\n", what, luaL_tolstring(L, -1, NULL));
        lua_pop(L, 2);
        return -1;
    }
    return 0;
}

/* Builds the request from the flags with lcmcoord.request and pushes it as JSON text. */
static int push_built_request(lua_State *L, const coordinate_options *o)
{
    lua_createtable(L, 0, 5);
    int fields = lua_gettop(L);
    lua_pushstring(L, o->action);
    lua_setfield(L, fields, "action");
    if (o->instance != NULL) {
        lua_pushstring(L, o->instance);
        lua_setfield(L, fields, "instance");
    }
    if (o->op_occ != NULL) {
        lua_pushstring(L, o->op_occ);
        lua_setfield(L, fields, "op_occ");
    }
    if (o->operation != NULL) {
        /* The spec's names are upper-case; at a command line `--operation heal` means HEAL. */
        luaL_Buffer upper;
        luaL_buffinit(L, &upper);
        for (const char *c = o->operation; *c != '\0'; c++)
            luaL_addchar(&upper, (char)toupper((unsigned char)*c));
        luaL_pushresult(&upper);
        lua_setfield(L, fields, "operation");
    }
    if (o->input != NULL) {
        /* Only an object is a KeyValuePairs (an array decodes to a marked table). */
        int decoded = lcmc_lua_json_decode(L, o->input, strlen(o->input));
        int object = decoded && lua_istable(L, -1) && !lcmc_lua_json_is_array(L, -1);
        if (!object) {
            fprintf(stderr,
                    "lcmcoord coordinate: --input is not a JSON object%s%s (see lcmcoord "
                    "coordinate --help)\n",
                    decoded ? "" : ": ", decoded ? "" : lua_tostring(L, -1));
            lua_settop(L, fields - 1);
            return -1;
        }
        lua_setfield(L, fields, "input");
    }
    if (call_module(L, "request", fields, "cannot build the request") != 0 ||
        call_module(L, "json.encode", -1, "cannot encode the request") != 0) {
        lua_settop(L, fields - 1);
        return -1;
    }
    lua_replace(L, fields);
    lua_settop(L, fields);
    return 0;
}

/* What is kept of a finished coordination once it is freed (it must go before its client,
 * and nothing that may raise runs while it is alive). */
typedef struct outcome {
    lcmc_status status;
    lcmc_result result;
    char *lcmcoord_json;
    char *message;
} outcome;

static void run_coordination(lcmc_engine *engine, lcmc_client *client, const char *request,
                             outcome *out, int *caught)
{
    lcmc_coordination *coord = NULL;
    lcmc_host_signals_arm(engine, NULL);
    out->status = lcmc_client_coordinate(client, request, 0, &coord);
    *caught = lcmc_host_signals_disarm(NULL);
    out->result = coord != NULL ? lcmc_coordination_result(coord) : LCMC_RESULT_NONE;
    const char *json = coord != NULL ? lcmc_coordination_lcmcoord_json(coord) : NULL;
    const lcmc_error *err = coord != NULL ? lcmc_coordination_error(coord) : NULL;
    out->lcmcoord_json = json != NULL ? strdup(json) : NULL;
    out->message = strdup(err != NULL ? lcmc_error_message(err) : lcmc_strerror(out->status));
    lcmc_coordination_free(coord);
}

/* Prints the LcmCoord and returns the exit status its result means. */
static int finish(lua_State *L, const outcome *out)
{
    if (!lcmc_lua_json_decode(L, out->lcmcoord_json, strlen(out->lcmcoord_json))) {
        lcmc_host_report("the LcmCoord cannot be decoded", 0);
        return LCMC_EXIT_REFUSED;
    }
    lcmc_show_style plain = {0};
    lcmc_show_json(L, -1, stdout, &plain);
    fputc('\n', stdout);
    fflush(stdout);
    if (out->result == LCMC_RESULT_CONTINUE)
        return 0;
    /* One line saying why the operation will not go on: the EM's own words when it gave
     * some (error.detail of an ABORT). */
    lua_getfield(L, -1, "id");
    lua_getfield(L, -2, "error");
    if (lua_istable(L, -1))
        lua_getfield(L, -1, "detail");
    else
        lua_pushnil(L);
    const char *result = lcmc_result_name(out->result);
    if (lua_type(L, -1) == LUA_TSTRING)
        lua_pushfstring(L, "coordination %s ended with %s: %s", lua_tostring(L, -3),
                        result != NULL ? result : "?", lua_tostring(L, -1));
    else
        lua_pushfstring(L, "coordination %s ended with %s",
                        lua_tostring(L, -3) != NULL ? lua_tostring(L, -3) : "?",
                        result != NULL ? result : "?");
    lcmc_host_report(lua_tostring(L, -1), 0);
    lua_pop(L, 4);
    return LCMC_EXIT_REFUSED;
}

static int coordinate_protected(lua_State *L)
{
    coordinate_options *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    o->exit_status = LCMC_EXIT_USAGE;
    lcmc_host_open_libraries(L);
    lcmc_engine *engine = lcmc_lua_engine(L);
    o->log.action = o->action;
    o->log.hold_until_outcome = 1;
    lcmc_host_apply_config(L, &o->config, o->verbosity, &o->log);
    /* The timeout of this coordination, from --timeout, the environment or the file. */
    o->client.timeout = lcmc_host_config_number(&o->config, LCMC_CONF_TIMEOUT);

    /* The request first: a bad one is refused before anything is sent or any file read. */
    int rc = o->request != NULL ? push_request_file(L, o->request) : push_built_request(L, o);
    if (rc != 0)
        return 0;
    int request = lua_gettop(L);
    rc = lcmc_host_push_client(L, "lcmcoord coordinate", &o->client);
    if (rc != 0) {
        o->exit_status = rc;
        return 0;
    }
    lcmc_client *client = lcmc_lua_to_client(L, -1);

    outcome out = {LCMC_OK, LCMC_RESULT_NONE, NULL, NULL};
    int caught = 0;
    run_coordination(engine, client, lua_tostring(L, request), &out, &caught);
    if (caught != 0) {
        lcmc_host_report_interrupt(caught, out.message);
        o->exit_status = 128 + caught;
    } else if (out.status == LCMC_OK && out.lcmcoord_json != NULL) {
        /* Freed first: finish() may raise on a memory error. */
        lua_pushstring(L, out.lcmcoord_json);
        free(out.lcmcoord_json);
        out.lcmcoord_json = (char *)lua_tostring(L, -1);
        free(out.message);
        out.message = NULL;
        o->exit_status = finish(L, &out);
        return 0;
    } else {
        /* At a terminal, an EM that never answered says how often it was tried. */
        if (out.message != NULL)
            lua_pushfstring(L, "%s%s", out.message, lcmc_progress_attempts());
        lcmc_host_report(out.message != NULL ? lua_tostring(L, -1) : "not enough memory", 0);
        o->exit_status = lcmc_host_exit_status(out.status != LCMC_OK ? out.status : LCMC_EPROTOCOL);
    }
    free(out.lcmcoord_json);
    free(out.message);
    return 0;
}

int lcmc_coordinate_main(int argc, char **argv)
{
    coordinate_options options;
    memset(&options, 0, sizeof options);
    int rc = parse_options(&options, argc, argv);
    if (rc >= 0)
        return rc;
    rc = lcmc_host_settle_config(&options.config, "coordinate", usage_line);
    if (rc >= 0) {
        lcmc_host_config_free(&options.config);
        return rc;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        lcmc_host_config_free(&options.config);
        fputs("lcmcoord coordinate: not enough memory\n", stderr);
        return LCMC_EXIT_REFUSED;
    }
    lua_pushcfunction(L, coordinate_protected);
    lua_pushlightuserdata(L, &options);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lcmc_host_signals_disarm(NULL);
        fprintf(stderr, "lcmcoord coordinate: %s\n", luaL_tolstring(L, -1, NULL));
        options.exit_status = LCMC_EXIT_REFUSED;
    }
    lua_close(L);
    lcmc_host_log_finish(&options.log, options.exit_status == 0);
    lcmc_host_config_free(&options.config);
    return options.exit_status;
}
