/*
 * The `:` commands of `lcmcoord repl`: switches for what is shown (:trace, :time, :headers),
 * the EM simulator's journal (:journal), moving JSON between the session and files (:save,
 * :load), :help and :quit. They are not Lua so that they work whatever the session's globals
 * hold, and so that a replayed file can use them too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "host.h"
#include "lcmcoord_lua.h"
#include "repl.h"
#include "run_io.h"

/* A JSON file given to :load is a request or a fixture, never near this. */
#define LOAD_CAP ((size_t)16 * 1024 * 1024)

#define RESPONSE_GUARD_MT "lcmcoord.repl.response"

static void print_help(void)
{
    fputs(
        "Lua 5.4 with the lcmcoord module (global `lcmcoord`); `em` is the client of\n"
        "--endpoint. An expression is printed; a response as its status line and body.\n"
        "\n"
        "  em:api_versions()                 GET .../api_versions\n"
        "  em:post(req)  em:get(id)          one request, no retries (req: table or string)\n"
        "  em:cancel(id)                     POST .../coordinations/{id}/cancel\n"
        "  em:coordinate(req [, timeout])    a whole coordination (retries, polls)\n"
        "  lcmcoord.request{action=\"x\", input={...}}\n"
        "                                    a valid LcmCoordRequest (random ids, CHANGE_VNFPKG)\n"
        "  em = lcmcoord.client{endpoint=..., authentication=...}\n"
        "\n"
        "Commands:\n"
        "  :help                this text\n"
        "  :trace on|off        show every HTTP exchange (> sent, < received; no credentials),\n"
        "                       how long each answer took and each wait with its reason\n"
        "  :time on|off         show how long each line took\n"
        "  :headers on|off      show all response headers (Location, Retry-After always)\n"
        "  :journal             the requests the EM received (lcmcoord em's /_em/journal)\n"
        "  :save FILE           write the last result (a response's body) to FILE as JSON\n"
        "  :load FILE.json      read JSON into the global `body` (then: em:post(body))\n"
        "  :quit                leave (or Ctrl-D)\n"
        "\n"
        "Ctrl-C interrupts a call in progress (the EM is asked to cancel a coordination;\n"
        "Ctrl-C again stops waiting for its answer) or clears the line being typed. See\n"
        "docs/repl.md.\n",
        stdout);
}

/* Reports a command's failure: on stderr for a person, or as the one line that ends a replay. */
static int command_failed(lcmc_repl *repl, int exit_status, const char *fmt, const char *arg,
                          const char *detail)
{
    lua_State *L = repl->L;
    lua_pushfstring(L, fmt, arg);
    if (detail != NULL) {
        lua_pushfstring(L, ": %s", detail);
        lua_concat(L, 2);
    }
    if (repl->interactive) {
        lcmc_show_error(repl, -1);
    } else {
        lua_pushfstring(L, "line %d: %s", (int)repl->line_number, lua_tostring(L, -1));
        lcmc_host_report(lua_tostring(L, -1), 0);
        lua_pop(L, 1);
        repl->exit_status = exit_status;
        repl->quit = 1;
    }
    lua_pop(L, 1);
    return -1;
}

/* on|off switches; with no argument, tells the current state. */
static int switch_command(lcmc_repl *repl, const char *name, const char *arg, int *flag)
{
    if (arg[0] == '\0') {
        printf(":%s is %s\n", name, *flag ? "on" : "off");
        return 0;
    }
    if (strcmp(arg, "on") == 0)
        *flag = 1;
    else if (strcmp(arg, "off") == 0)
        *flag = 0;
    else
        return command_failed(repl, LCMC_EXIT_USAGE, "usage: :%s on|off", name, NULL);
    return 0;
}

static int response_guard_gc(lua_State *L)
{
    lcmc_response **slot = luaL_checkudata(L, 1, RESPONSE_GUARD_MT);
    lcmc_response_free(*slot);
    *slot = NULL;
    return 0;
}

/* GET /_em/journal with the client in `em`; shown as JSON. */
static int journal_command(lcmc_repl *repl)
{
    lua_State *L = repl->L;
    lua_getglobal(L, "em");
    lcmc_client *client = lcmc_lua_to_client(L, -1);
    if (client == NULL) {
        lua_pop(L, 1);
        return command_failed(
            repl, LCMC_EXIT_USAGE, "%s",
            ":journal needs a client in `em` (start with --endpoint, or em = lcmcoord.client{...})",
            NULL);
    }
    /* The response is owned by a userdata from before the request on, so that a Lua error
     * while it is copied frees it at the next collection instead of leaking it. */
    lcmc_response **slot = lua_newuserdatauv(L, sizeof *slot, 0);
    *slot = NULL;
    if (luaL_newmetatable(L, RESPONSE_GUARD_MT)) {
        lua_pushcfunction(L, response_guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);

    lcmc_host_signals_arm(repl->engine, NULL);
    int early = lcmc_edit_take_interrupt();
    if (early != 0)
        raise(early);
    lcmc_status status = lcmc_client_request(client, "GET", "/_em/journal", NULL, 0, slot);
    int caught = lcmc_host_signals_disarm(NULL);
    lcmc_engine_reset_interrupt(repl->engine);
    if (caught == SIGTERM) {
        repl->exit_status = 128 + SIGTERM;
        repl->quit = 1;
    }
    int rc = 0;
    if (status != LCMC_OK || *slot == NULL) {
        const lcmc_error *err = *slot != NULL ? lcmc_response_error(*slot) : NULL;
        rc = command_failed(repl, lcmc_host_exit_status(status), "%s", ":journal failed",
                            err != NULL ? lcmc_error_message(err) : lcmc_strerror(status));
    } else {
        int http = lcmc_response_status(*slot);
        const json_t *journal = http == 200 ? lcmc_response_body_value(*slot) : NULL;
        int decoded = journal != NULL;
        if (decoded && !lcmc_lua_push_json(L, journal)) {
            lua_pop(L, 1); /* the converter's message */
            decoded = 0;
        }
        if (!decoded) {
            char detail[80];
            snprintf(detail, sizeof detail, "the EM answered %d %s%s", http, lcmc_show_reason(http),
                     http == 200 ? " without JSON" : "");
            rc = command_failed(repl, LCMC_EXIT_REFUSED, "%s",
                                ":journal failed (is the endpoint an `lcmcoord em`?)", detail);
        } else {
            lcmc_show_results(repl, 1);
            lua_pop(L, 1);
        }
    }
    lcmc_response_free(*slot);
    *slot = NULL;
    lua_pop(L, 2);
    return rc;
}

/* Writes its second argument as plain JSON to the FILE given as its first. */
static int render_protected(lua_State *L)
{
    lcmc_show_style plain = {0};
    lcmc_show_json(L, 2, lua_touserdata(L, 1), &plain);
    return 0;
}

static int save_command(lcmc_repl *repl, const char *path)
{
    lua_State *L = repl->L;
    if (path[0] == '\0')
        return command_failed(repl, LCMC_EXIT_USAGE, "%s", "usage: :save FILE", NULL);
    lua_getfield(L, LUA_REGISTRYINDEX, LCMC_REPL_LAST_KEY);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return command_failed(repl, LCMC_EXIT_USAGE, "%s",
                              ":save: nothing to save yet (show a response or a table first)",
                              NULL);
    }
    if (lcmc_show_is_response(L, -1)) {
        if (lua_getfield(L, -1, "json") == LUA_TNIL) {
            lua_pop(L, 1);
            lua_getfield(L, -1, "body");
        }
        lua_remove(L, -2);
    }
    char *text = NULL;
    if (lua_type(L, -1) == LUA_TSTRING) {
        text = strdup(lua_tostring(L, -1));
    } else {
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        if (out != NULL) {
            lua_pushcfunction(L, render_protected);
            lua_pushlightuserdata(L, out);
            lua_pushvalue(L, -3);
            int status = lua_pcall(L, 2, 0, 0);
            fclose(out);
            if (status != LUA_OK) {
                free(text);
                return lua_error(L);
            }
        }
    }
    lua_pop(L, 1);
    if (text == NULL)
        return command_failed(repl, LCMC_EXIT_REFUSED, "%s", ":save: not enough memory", NULL);
    int rc = lcmc_write_atomic(path, text);
    int saved_errno = errno;
    size_t length = strlen(text);
    free(text);
    if (rc != 0)
        return command_failed(repl, LCMC_EXIT_USAGE, ":save: cannot write %s", path,
                              strerror(saved_errno));
    if (repl->interactive)
        printf("saved %zu bytes to %s\n", length + 1, path);
    return 0;
}

static int load_command(lcmc_repl *repl, const char *path)
{
    lua_State *L = repl->L;
    if (path[0] == '\0')
        return command_failed(repl, LCMC_EXIT_USAGE, "%s", "usage: :load FILE.json", NULL);
    FILE *in = fopen(path, "rb");
    size_t length = 0;
    char *text = in != NULL ? lcmc_read_all(in, LOAD_CAP, &length) : NULL;
    int saved_errno = errno;
    if (in != NULL)
        fclose(in);
    if (text == NULL)
        return command_failed(repl, LCMC_EXIT_USAGE, ":load: cannot read %s", path,
                              strerror(saved_errno));
    lua_pushlstring(L, text, length);
    free(text);
    int ok = lcmc_lua_json_decode(L, lua_tostring(L, -1), length);
    lua_remove(L, -2);
    if (!ok) {
        lua_pushfstring(L, "%s is not JSON: %s", path, lua_tostring(L, -1));
        lua_remove(L, -2);
        int rc = command_failed(repl, LCMC_EXIT_USAGE, ":load: %s", lua_tostring(L, -1), NULL);
        lua_pop(L, 1);
        return rc;
    }
    lua_pushvalue(L, -1);
    lua_setglobal(L, "body");
    lcmc_show_results(repl, 1);
    lua_pop(L, 1);
    return 0;
}

int lcmc_repl_command(lcmc_repl *repl, const char *line)
{
    lua_State *L = repl->L;
    /* ":name rest", the argument trimmed at both ends. */
    const char *name = line + 1;
    size_t name_len = strcspn(name, " \t");
    const char *arg = name + name_len + strspn(name + name_len, " \t");
    size_t arg_len = strlen(arg);
    while (arg_len > 0 && (arg[arg_len - 1] == ' ' || arg[arg_len - 1] == '\t'))
        arg_len--;
    lua_pushlstring(L, name, name_len);
    lua_pushlstring(L, arg, arg_len);
    const char *command = lua_tostring(L, -2);
    arg = lua_tostring(L, -1);

    int rc = 0;
    if (strcmp(command, "help") == 0 || strcmp(command, "h") == 0) {
        print_help();
    } else if (strcmp(command, "quit") == 0 || strcmp(command, "q") == 0) {
        repl->quit = 1;
    } else if (strcmp(command, "trace") == 0) {
        rc = switch_command(repl, "trace", arg, &repl->trace);
        lcmc_engine_set_trace(repl->engine, repl->trace ? lcmc_show_trace : NULL, repl);
        lcmc_host_set_event_tap(repl->trace ? lcmc_show_trace_event : NULL, repl);
    } else if (strcmp(command, "time") == 0) {
        rc = switch_command(repl, "time", arg, &repl->show_time);
    } else if (strcmp(command, "headers") == 0) {
        rc = switch_command(repl, "headers", arg, &repl->show_headers);
    } else if (strcmp(command, "journal") == 0) {
        rc = journal_command(repl);
    } else if (strcmp(command, "save") == 0) {
        rc = save_command(repl, arg);
    } else if (strcmp(command, "load") == 0) {
        rc = load_command(repl, arg);
    } else {
        rc = command_failed(repl, LCMC_EXIT_USAGE, "unknown command ':%s' (:help lists them)",
                            command, NULL);
    }
    lua_pop(L, 2);
    fflush(stdout);
    return rc;
}

int lcmc_repl_pcall(lua_State *L, lua_CFunction fn, void *arg)
{
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, arg);
    return lua_pcall(L, 1, 0, 0);
}
