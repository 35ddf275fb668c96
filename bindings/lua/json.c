/*
 * The Lua module's one value model: a direct converter between Lua values and the runtime's
 * jansson values (lcmcoord/json.h), with no JSON text in between on the way to or from the
 * runtime, and lcmcoord.json (encode, decode) built on the same converter and the runtime's
 * own parse and dump, so that every JSON rule (duplicate keys, depth, NUL, UTF-8, numbers)
 * is the runtime's, whichever way a value travels. The rules, as docs/lua-api.md states them:
 *  - Lua integers are JSON integers and back (64-bit both sides); Lua floats are JSON reals
 *    and back, the same double (NaN and the infinities cannot be encoded);
 *  - JSON null is lcmcoord.null (a NULL light userdata, also lcmcoord.json.null);
 *  - a decoded array is a table whose metatable is the array marker (lcmcoord.json.array),
 *    so that an empty one encodes as [] again; an empty table without the marker encodes
 *    as {}; a table of keys 1..n is an array, one of string keys an object, anything else
 *    (mixed or sparse keys, functions, cycles, nesting past the limit) an error naming where.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"
#include "lcmcoord/json.h"

/* Registry key of the array marker metatable. */
#define ARRAY_MT "lcmcoord.json.array"

/* Pushes the marker metatable (made on first use). */
static void push_array_mt(lua_State *L)
{
    if (luaL_newmetatable(L, ARRAY_MT)) {
        lua_pushliteral(L, ARRAY_MT);
        lua_setfield(L, -2, "__name");
    }
}

int lcmc_lua_json_is_array(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    push_array_mt(L);
    int marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return marked;
}

int lcmc_lua_is_absent(lua_State *L, int idx)
{
    /* JSON null reads as absent: a field that is null in the stdin JSON (e.g.
     * "authentication": null) means the same as no field. */
    return lua_isnoneornil(L, idx) ||
           (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL);
}

/* ---- Lua to JSON -------------------------------------------------------------------- */

/* Where the converter is, for messages and for finding cycles: one frame per container on
 * the way down, naming the container and the member being converted in it. */
typedef struct frame {
    const struct frame *parent;
    const void *table;
    const char *key; /* NULL in an array */
    size_t key_length;
    lua_Integer index;
} frame;

typedef struct walk {
    lua_State *L;
    int message; /* the stack slot that receives the message of a failure */
    int array_mt;
} walk;

static int is_identifier(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* Path segments shown at each end of a long path; the middle becomes "...". */
#define PATH_ENDS 4

/* Adds the path of `at` as Lua would write it: inputParams.vnfc[2]["a b"]. Keys are shown
 * up to 40 bytes, anything but printable ASCII as \ddd, and a path longer than 2 *
 * PATH_ENDS segments loses its middle, so that a message stays one readable line. `count`
 * is the number of segments in all; `position` counts them from the root. */
static void add_path(luaL_Buffer *b, const frame *at, size_t count, size_t *position)
{
    if (at == NULL)
        return;
    add_path(b, at->parent, count, position);
    size_t here = (*position)++;
    if (count > 2 * PATH_ENDS && here >= PATH_ENDS && here < count - PATH_ENDS) {
        if (here == PATH_ENDS)
            luaL_addstring(b, "...");
        return;
    }
    if (at->key == NULL) {
        lua_pushfstring(b->L, "[%I]", (LUAI_UACINT)at->index);
        luaL_addvalue(b);
    } else if (is_identifier(at->key, at->key_length)) {
        if (here > 0)
            luaL_addchar(b, '.');
        luaL_addlstring(b, at->key, at->key_length);
    } else {
        luaL_addstring(b, "[\"");
        size_t n = at->key_length < 40 ? at->key_length : 40;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)at->key[i];
            if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
                char escaped[8];
                snprintf(escaped, sizeof escaped, "\\%u", (unsigned)c);
                luaL_addstring(b, escaped);
            } else {
                luaL_addchar(b, (char)c);
            }
        }
        luaL_addstring(b, n < at->key_length ? "...\"]" : "\"]");
    }
}

/* Records a failure at `at`: "<path>: <what>" (or just <what> at the top) in the message
 * slot. Returns -1 for the callers' convenience. */
static int failed(walk *w, const frame *at, const char *what)
{
    lua_State *L = w->L;
    size_t count = 0, position = 0;
    for (const frame *f = at; f != NULL; f = f->parent)
        count++;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_path(&b, at, count, &position);
    if (count > 0)
        luaL_addstring(&b, ": ");
    luaL_addstring(&b, what);
    luaL_pushresult(&b);
    lua_replace(L, w->message);
    return -1;
}

/* The value at idx when it is not a table, or NULL after failed(). */
static json_t *scalar(walk *w, int idx, const frame *at)
{
    lua_State *L = w->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) {
            failed(w, at,
                   isnan(d) ? "NaN is not a JSON number" : "an infinity is not a JSON number");
            return NULL;
        }
        json_t *real = json_real(d);
        if (real == NULL)
            failed(w, at, "out of memory");
        return real;
    }
    case LUA_TSTRING: {
        size_t n = 0;
        const char *s = lua_tolstring(L, idx, &n);
        if (memchr(s, '\0', n) != NULL) {
            failed(w, at, "a string with a NUL byte (JSON text here never carries \\u0000)");
            return NULL;
        }
        json_t *string = json_stringn(s, n);
        if (string == NULL)
            failed(w, at, "a string that is not valid UTF-8");
        return string;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return json_null();
        failed(w, at, "a light userdata other than lcmcoord.null cannot be JSON");
        return NULL;
    default: {
        char what[80];
        snprintf(what, sizeof what, "a %s cannot be JSON", luaL_typename(L, idx));
        failed(w, at, what);
        return NULL;
    }
    }
}

enum { KIND_OBJECT, KIND_ARRAY };

/* Decides what the table at idx becomes, refusing what has no JSON form. `depth` is the
 * table's own (1 at the top). Returns a KIND or -1 after failed(). */
static int classify(walk *w, int idx, const frame *at, int depth)
{
    lua_State *L = w->L;
    const void *self = lua_topointer(L, idx);
    for (const frame *f = at; f != NULL; f = f->parent)
        if (f->table == self)
            return failed(w, at, "a table that contains itself (a cycle) cannot be JSON");
    if (depth > LCMC_JSON_MAX_DEPTH) {
        char what[80];
        snprintf(what, sizeof what, "tables nested deeper than %d", LCMC_JSON_MAX_DEPTH);
        return failed(w, at, what);
    }
    if (!lua_checkstack(L, 4))
        return failed(w, at, "tables nested too deeply for the Lua stack");
    int marked = 0;
    if (lua_getmetatable(L, idx)) {
        marked = lua_rawequal(L, -1, w->array_mt);
        lua_pop(L, 1);
    }
    lua_Integer count = 0, integers = 0, strings = 0, largest = 0;
    const char *odd = NULL; /* a key that is neither a string nor an index */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            strings++;
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
            integers++;
            if (lua_tointeger(L, -1) > largest)
                largest = lua_tointeger(L, -1);
        } else if (odd == NULL) {
            odd = lua_isinteger(L, -1)              ? "an integer key below 1"
                  : lua_type(L, -1) == LUA_TNUMBER  ? "a float key"
                  : lua_type(L, -1) == LUA_TBOOLEAN ? "a boolean key"
                                                    : "a key that is neither a string nor a number";
        }
    }
    char what[160];
    if (odd != NULL) {
        snprintf(what, sizeof what, "a table with %s cannot be JSON", odd);
        return failed(w, at, what);
    }
    if (marked && strings > 0)
        return failed(w, at, "an array (lcmcoord.json.array) with a string key");
    if (count == 0)
        return marked ? KIND_ARRAY : KIND_OBJECT;
    if (strings == count)
        return KIND_OBJECT;
    if (integers == count) {
        if (largest == count)
            return KIND_ARRAY;
        snprintf(what, sizeof what,
                 "a sparse array (index %lld is set but only %lld values are): JSON arrays have "
                 "no holes",
                 (long long)largest, (long long)count);
        return failed(w, at, what);
    }
    return failed(w, at, "a table with both string and integer keys cannot be JSON");
}

static json_t *new_container(walk *w, int kind, const frame *at)
{
    json_t *container = kind == KIND_ARRAY ? json_array() : json_object();
    if (container == NULL)
        failed(w, at, "out of memory");
    return container;
}

/* The value at idx as a member of the container being filled at `here`: a scalar, or an
 * empty container that the caller adds to its parent before filling it, so that whatever
 * has been made is reachable from the root (and freed with it) if a Lua error interrupts.
 * NULL after failed(). */
static json_t *member(walk *w, int idx, const frame *here, int depth)
{
    if (lua_type(w->L, idx) != LUA_TTABLE)
        return scalar(w, idx, here);
    int kind = classify(w, idx, here, depth + 1);
    return kind < 0 ? NULL : new_container(w, kind, here);
}

/* Fills `container` (made by classify's verdict on the table at idx, at depth `depth`).
 * Returns 0, or -1 after failed(); the stack is as it was either way. */
static int fill(walk *w, int idx, json_t *container, const frame *at, int depth)
{
    lua_State *L = w->L;
    frame here = {at, lua_topointer(L, idx), NULL, 0, 0};
    if (json_is_array(container)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            here.index = i;
            lua_rawgeti(L, idx, i);
            json_t *value = member(w, lua_gettop(L), &here, depth);
            int result = value == NULL ? -1
                         : json_array_append_new(container, value) != 0
                             ? failed(w, &here, "out of memory")
                         : json_is_object(value) || json_is_array(value)
                             ? fill(w, lua_gettop(L), value, &here, depth + 1)
                             : 0;
            lua_pop(L, 1);
            if (result != 0)
                return -1;
        }
        return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* A string: classify let no other key through, so tolstring converts nothing. */
        here.key = lua_tolstring(L, -2, &here.key_length);
        int result;
        if (memchr(here.key, '\0', here.key_length) != NULL) {
            result =
                failed(w, &here, "a key with a NUL byte (JSON text here never carries \\u0000)");
        } else {
            json_t *value = member(w, lua_gettop(L), &here, depth);
            /* set_new takes value over even when it fails, which it does on a key that is
             * not UTF-8; on success the object keeps value alive for the fill below. */
            result = value == NULL ? -1
                     : json_object_set_new(container, here.key, value) != 0
                         ? failed(w, &here, "a key that is not valid UTF-8")
                     : json_is_object(value) || json_is_array(value)
                         ? fill(w, lua_gettop(L), value, &here, depth + 1)
                         : 0;
        }
        lua_pop(L, 1);
        if (result != 0) {
            lua_pop(L, 1);
            return -1;
        }
    }
    return 0;
}

int lcmc_lua_to_json(lua_State *L, int idx, lcmc_lua_guard *guard)
{
    idx = lua_absindex(L, idx);
    json_decref(guard->value);
    guard->value = NULL;
    lua_pushnil(L); /* the message slot */
    walk w = {L, lua_gettop(L), 0};
    push_array_mt(L);
    w.array_mt = lua_gettop(L);
    int ok;
    if (lua_type(L, idx) != LUA_TTABLE) {
        guard->value = scalar(&w, idx, NULL);
        ok = guard->value != NULL;
    } else {
        int kind = classify(&w, idx, NULL, 1);
        ok = kind >= 0 && (guard->value = new_container(&w, kind, NULL)) != NULL &&
             fill(&w, idx, guard->value, NULL, 1) == 0;
    }
    if (ok) {
        lua_pop(L, 2);
        return 1;
    }
    json_decref(guard->value);
    guard->value = NULL;
    lua_settop(L, w.message);
    return 0;
}

/* ---- JSON to Lua -------------------------------------------------------------------- */

static int push_value(lua_State *L, const json_t *v, int array_mt, int depth)
{
    if (depth > LCMC_JSON_MAX_DEPTH || !lua_checkstack(L, 4))
        return 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        lua_createtable(L, 0, (int)(json_object_size(v) < 1 << 20 ? json_object_size(v) : 0));
        json_object_foreach((json_t *)v, key, member)
        {
            lua_pushstring(L, key);
            if (!push_value(L, member, array_mt, depth + 1))
                return 0;
            lua_rawset(L, -3);
        }
        return 1;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, n < 1 << 20 ? (int)n : 0, 0);
        for (size_t i = 0; i < n; i++) {
            if (!push_value(L, json_array_get(v, i), array_mt, depth + 1))
                return 0;
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_pushvalue(L, array_mt);
        lua_setmetatable(L, -2);
        return 1;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        return 1;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        return 1;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        return 1;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        return 1;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        return 1;
    case JSON_NULL:
    default:
        lua_pushlightuserdata(L, NULL);
        return 1;
    }
}

int lcmc_lua_push_json(lua_State *L, const json_t *value)
{
    if (value == NULL) {
        lua_pushliteral(L, "no value");
        return 0;
    }
    push_array_mt(L);
    int base = lua_gettop(L);
    if (push_value(L, value, base, 1)) {
        lua_remove(L, base);
        return 1;
    }
    lua_settop(L, base - 1);
    lua_pushfstring(L, "arrays and objects nested deeper than %d", LCMC_JSON_MAX_DEPTH);
    return 0;
}

/* ---- text ------------------------------------------------------------------------------ */

const char *lcmc_lua_json_encode(lua_State *L, int idx, size_t *len)
{
    idx = lua_absindex(L, idx);
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    if (!lcmc_lua_to_json(L, idx, guard)) {
        lua_remove(L, -2);
        return NULL;
    }
    size_t n = 0;
    guard->text = lcmc_json_dump(guard->value, &n);
    if (guard->text == NULL) {
        lcmc_lua_guard_release(guard);
        lua_pop(L, 1);
        lua_pushliteral(L, "out of memory");
        return NULL;
    }
    const char *text = lua_pushlstring(L, guard->text, n);
    lcmc_lua_guard_release(guard);
    lua_remove(L, -2);
    if (len)
        *len = n;
    return text;
}

int lcmc_lua_json_decode(lua_State *L, const char *text, size_t len)
{
    char why[200];
    lcmc_lua_guard *guard = lcmc_lua_guard_new(L);
    guard->value = lcmc_json_parse(text, len, why, sizeof why);
    if (guard->value == NULL) {
        lua_pop(L, 1);
        lua_pushstring(L, why);
        return 0;
    }
    int ok = lcmc_lua_push_json(L, guard->value);
    lcmc_lua_guard_release(guard);
    lua_remove(L, -2);
    return ok;
}

/* ---- lcmcoord.json ------------------------------------------------------------------- */

/* lcmcoord.json.encode(value) -> text */
static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    if (lcmc_lua_json_encode(L, 1, NULL) == NULL)
        return luaL_error(L, "lcmcoord.json.encode: %s", lua_tostring(L, -1));
    return 1;
}

/* lcmcoord.json.decode(text) -> value */
static int json_decode(lua_State *L)
{
    size_t len = 0;
    const char *text = luaL_checklstring(L, 1, &len);
    if (!lcmc_lua_json_decode(L, text, len))
        return luaL_error(L, "lcmcoord.json.decode: %s", lua_tostring(L, -1));
    return 1;
}

/* lcmcoord.json.array([t]) -> t, marked as an array (a new empty one without t) */
static int json_array_fn(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
        if (lua_getmetatable(L, 1)) {
            push_array_mt(L);
            int same = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
            luaL_argcheck(L, same, 1, "the table already has a metatable");
        }
    }
    push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

/* lcmcoord.json.is_array(v) -> boolean */
static int json_is_array_fn(lua_State *L)
{
    lua_pushboolean(L, lcmc_lua_json_is_array(L, 1));
    return 1;
}

void lcmc_lua_json_open(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"encode", json_encode},
        {"decode", json_decode},
        {"array", json_array_fn},
        {"is_array", json_is_array_fn},
        {NULL, NULL},
    };
    luaL_newlib(L, functions);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushinteger(L, LCMC_JSON_MAX_DEPTH);
    lua_setfield(L, -2, "max_depth");
}
