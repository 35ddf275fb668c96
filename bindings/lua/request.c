/*
 * `lcmcoord.request{...}`: builds a valid LcmCoordRequest from the few fields a person
 * actually cares about when trying an EM (the action name, maybe the ids, the operation and
 * the input parameters), so that a first coordination from the REPL or from
 * `lcmcoord coordinate` is one short line. What is left out gets a sensible value: fresh
 * random UUIDs for the ids, CHANGE_VNFPKG (the operation Tacker coordinates) and `_links`
 * hrefs on an example VNFM derived from the ids. The result is a plain table a script may
 * change further before sending it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "binding.h"

#define DEFAULT_OPERATION "CHANGE_VNFPKG"
#define DEFAULT_VNFM      "http://vnfm.example:9890"

/* Pushes a random (version 4) UUID. The kernel's generator rather than math.random: ids of
 * coordinations from different processes started in the same second must not collide. */
static void push_uuid(lua_State *L)
{
    unsigned char b[16];
    /* getrandom(2): 16 bytes straight from the kernel, with no file to open per id. */
    ssize_t got = getrandom(b, sizeof b, 0);
    if (got != (ssize_t)sizeof b)
        luaL_error(L, "cannot make a random id: the kernel's random generator failed");
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char text[37];
    snprintf(text, sizeof text,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    lua_pushstring(L, text);
}

/* The string field `name` of the options table (pushed, or a default pushed by `fallback`
 * when absent; returns NULL with nothing pushed when absent and there is no fallback). */
static const char *string_field(lua_State *L, const char *name, const char *fallback, int random_id)
{
    lua_getfield(L, 1, name);
    if (lcmc_lua_is_absent(L, -1)) {
        lua_pop(L, 1);
        if (random_id)
            push_uuid(L);
        else if (fallback != NULL)
            lua_pushstring(L, fallback);
        else
            return NULL;
        return lua_tostring(L, -1);
    }
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "field '%s': non-empty string expected, got %s", name,
                                      lua_type(L, -1) == LUA_TSTRING ? "empty string"
                                                                     : luaL_typename(L, -1)));
    }
    return lua_tostring(L, -1);
}

/* Pushes base .. "/" .. segment .. "/" .. id, the id percent-encoded as one path segment. */
static void push_href(lua_State *L, const char *base, const char *segment, const char *id)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, base, base_len);
    luaL_addstring(&b, "/vnflcm/v2/");
    luaL_addstring(&b, segment);
    luaL_addchar(&b, '/');
    for (const unsigned char *c = (const unsigned char *)id; *c != '\0'; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            luaL_addchar(&b, (char)*c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[*c >> 4]);
            luaL_addchar(&b, hex[*c & 15]);
        }
    }
    luaL_pushresult(&b);
}

static void push_link(lua_State *L, const char *base, const char *segment, const char *id)
{
    lua_createtable(L, 0, 1);
    push_href(L, base, segment, id);
    lua_setfield(L, -2, "href");
}

int lcmc_lua_request(lua_State *L)
{
    static const char *const known[] = {"action", "instance", "op_occ", "operation",
                                        "input",  "vnfm",     NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    /* A misspelt field (`opration = "HEAL"`) would otherwise silently become the default. */
    lcmc_lua_check_fields(L, 1, 1, known, "field");

    const char *action = string_field(L, "action", NULL, 0);
    if (action == NULL)
        luaL_argerror(L, 1, "field 'action': non-empty string expected, got nil");
    const char *instance = string_field(L, "instance", NULL, 1);
    const char *op_occ = string_field(L, "op_occ", NULL, 1);
    const char *operation = string_field(L, "operation", DEFAULT_OPERATION, 0);
    if (!lcmc_operation_type_is_valid(operation))
        luaL_argerror(L, 1,
                      lua_pushfstring(L,
                                      "field 'operation': '%s' is not a LcmOperationForCoordType "
                                      "(one of INSTANTIATE, SCALE, SCALE_TO_LEVEL, "
                                      "CHANGE_FLAVOUR, TERMINATE, HEAL, OPERATE, "
                                      "CHANGE_EXT_CONN, MODIFY_INFO, CREATE_SNAPSHOT, "
                                      "REVERT_TO_SNAPSHOT, CHANGE_VNFPKG)",
                                      operation));
    const char *vnfm = string_field(L, "vnfm", DEFAULT_VNFM, 0);
    lua_getfield(L, 1, "input");
    int input = lua_gettop(L);
    if (!lcmc_lua_is_absent(L, input) && !lua_istable(L, input))
        luaL_argerror(
            L, 1,
            lua_pushfstring(L, "field 'input': table expected, got %s", luaL_typename(L, input)));

    lua_createtable(L, 0, 6);
    lua_pushstring(L, instance);
    lua_setfield(L, -2, "vnfInstanceId");
    lua_pushstring(L, op_occ);
    lua_setfield(L, -2, "vnfLcmOpOccId");
    lua_pushstring(L, operation);
    lua_setfield(L, -2, "lcmOperationType");
    lua_pushstring(L, action);
    lua_setfield(L, -2, "coordinationActionName");
    if (lua_istable(L, input)) {
        lua_pushvalue(L, input);
        lua_setfield(L, -2, "inputParams");
    }
    lua_createtable(L, 0, 2);
    push_link(L, vnfm, "vnf_lcm_op_occs", op_occ);
    lua_setfield(L, -2, "vnfLcmOpOcc");
    push_link(L, vnfm, "vnf_instances", instance);
    lua_setfield(L, -2, "vnfInstance");
    lua_setfield(L, -2, "_links");
    return 1;
}
