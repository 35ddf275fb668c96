/*
 * The one check every options table of the module goes through (client, client options,
 * lcmcoord.request, http.request, retry.policy, ssh.connect): a key that is not one of the
 * function's fields raises, naming it, because a misspelt option (`timout = 30`) would
 * otherwise be ignored silently and the default would apply.
 */
#include <string.h>

#include "binding.h"

void lcmc_lua_check_fields(lua_State *L, int t, int arg, const char *const *known, const char *what)
{
    t = lua_absindex(L, t);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        /* lua_tostring would turn a number key into a string in place and break lua_next. */
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        for (const char *const *k = known; key != NULL && *k != NULL && !ok; k++)
            ok = strcmp(key, *k) == 0;
        if (ok)
            continue;
        if (key != NULL)
            luaL_argerror(L, arg, lua_pushfstring(L, "unknown %s '%s'", what, key));
        luaL_argerror(L, arg, lua_pushfstring(L, "unexpected %s key", luaL_typename(L, -1)));
    }
}
