/*
 * The operator's hooks: one Lua state with the whole `lcmcoord` module, made from the hooks
 * file (a chunk returning a table with `decide(req, ctx)`), living on the engine thread. Each
 * decision is a task of that state (lcmc_lua_spawn): inside it lcmcoord.sleep, http.request,
 * retry policies and ssh start their operation on the engine and yield, so thousands of
 * decisions wait at once and one slow decision never holds up another. What decide returns
 * is turned into an outcome here: CONTINUE (warnings, outputParams), ABORT (a ProblemDetails,
 * status and type filled in), busy, or ERROR for a Lua error or a result of the wrong shape
 * (the caller ends it as ABORT, logged). A reload runs the new file in the same state (the
 * same engine): new decisions use its decide, running ones finish on the one they began with.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lcmcoord_lua.h"
#include "serve.h"

/* The CPU one run of a decision may take without waiting (lcmcoord.sleep, http.request...):
 * a decide that loops without yielding would hold the engine, so every other decision, the
 * budgets' timers and the shutdown. Generous: deciding is waiting, not computing. */
#define SERVE_HOOK_CPU_SLICE 2.0

struct serve_hooks {
    lua_State *L;
    struct serve_loop *loop; /* set once the engine thread runs (serve_hooks_attach) */
    const char *file;
    int decide_ref;           /* the hooks table's decide */
    struct reload *reloading; /* a reload's task, while it runs */
};

/* What ctx's functions reach: NULLed when the decision ends, so a ctx a hook kept in a
 * global is harmless after. */
struct ctx_box {
    struct serve_decision *d;
};

struct serve_decision {
    struct serve_hooks *h;
    lcmc_lua_task *task; /* until it ends */
    char id[37];
    serve_decided_fn done;
    void *ud;
    bool cancelled;
    struct ctx_box *box; /* held by box_ref until the decision ends: the hook may drop ctx */
    int box_ref;
    struct serve_decision **handle; /* the caller's, NULLed when it ends */
};

void serve_outcome_clear(struct serve_outcome *o)
{
    json_decref(o->error);
    json_decref(o->warnings);
    json_decref(o->output);
    free(o->message);
    memset(o, 0, sizeof *o);
}

static void log_hook_line(const char *id, const char *level, const char *message)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "event", "hook", "level", level, "message", message);
    if (id)
        json_object_set_new(o, "id", json_string(id));
    serve_log(o);
}

/* Makes one line of any text: bounded, control characters as spaces (the JSON log escapes
 * the rest). malloc'd. */
static char *one_line(const char *s, size_t n)
{
    if (n > 1000)
        n = 1000;
    size_t outlen;
    char *t = em_utf8_sanitize(s, n, &outlen);
    for (size_t i = 0; i < outlen; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
            t[i] = ' ';
    return t;
}

/* ctx.log(...) / ctx:log(...): its arguments as text, one line, with the decision's id. */
static int ctx_log(lua_State *L)
{
    struct ctx_box *box = lua_touserdata(L, lua_upvalueindex(1));
    int first = lua_istable(L, 1) ? 2 : 1; /* ctx:log("...") */
    int n_args = lua_gettop(L);            /* the buffer may take stack slots */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = first; i <= n_args; i++) {
        if (i > first)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    char *line = one_line(s, n);
    log_hook_line(box->d ? box->d->id : NULL, "info", line);
    free(line);
    return 0;
}

static int ctx_cancelled(lua_State *L)
{
    struct ctx_box *box = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushboolean(L, box->d && box->d->cancelled);
    return 1;
}

/* print() in a hook: the log, not stdout (stdout carries the `listening on` line). */
static int hooks_print(lua_State *L)
{
    int n_args = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n_args; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    char *line = one_line(s, n);
    log_hook_line(NULL, "info", line);
    free(line);
    return 0;
}

/* Lua's allocator with a ceiling: a hook cannot take the host's memory. */
struct capped {
    size_t used, limit;
};
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct capped *c = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        c->used -= old;
        return NULL;
    }
    if (nsize > old && c->used + (nsize - old) > c->limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        c->used = c->used - old + nsize;
    return p;
}

/* A copy of line with the query string of every URL in it replaced by "?<redacted>"
 * (malloc'd): the runtime logs each request's URL, and a query may carry a token
 * (access_token=..., a signed URL), which must never reach the log. */
static char *redact_url_queries(const char *line)
{
    static const char mark[] = "?<redacted>";
    size_t cap = strlen(line) + 1, n = 0;
    for (const char *p = line; (p = strstr(p, "://")) != NULL; p += 3)
        cap += sizeof mark; /* at most one mark per URL */
    char *out = em_xmalloc(cap);
    const char *p = line;
    for (const char *u; (u = strstr(p, "://")) != NULL;) {
        u += 3;
        size_t token = strcspn(u, " \t\"'<>()[]{},;");
        const char *q = memchr(u, '?', token);
        const char *upto = q ? q : u + token;
        memcpy(out + n, p, (size_t)(upto - p));
        n += (size_t)(upto - p);
        if (q) {
            memcpy(out + n, mark, sizeof mark - 1);
            n += sizeof mark - 1;
        }
        p = u + token;
    }
    memcpy(out + n, p, strlen(p) + 1);
    return out;
}

/* The module's own log (lcmcoord.log.*, the runtime's requests and warnings): JSON lines like
 * the rest. Which decision wrote it is not known here; ctx.log names it. */
static void engine_log(void *ud, lcmc_log_level level, const char *message)
{
    (void)ud;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char *redacted = redact_url_queries(message);
    char *line = one_line(redacted, strlen(redacted));
    free(redacted);
    log_hook_line(NULL, names[level <= LCMC_LOG_DEBUG ? level : LCMC_LOG_DEBUG], line);
    free(line);
}

static int open_state(lua_State *L)
{
    luaL_openlibs(L);
    luaL_requiref(L, "lcmcoord", luaopen_lcmcoord, 1);
    lcmc_engine_set_log(lcmc_lua_engine(L), engine_log, NULL, LCMC_LOG_INFO);
    lua_pop(L, 1);
    lua_pushcfunction(L, hooks_print);
    lua_setglobal(L, "print");
    return 0;
}

static int tostring_protected(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/* The error value on top of L as one line in err, popped. Converted under a protected call:
 * a table's __tostring may raise, yield or return no text, and an error raised outside one
 * aborts the process. */
static void error_text(lua_State *L, char *err, size_t len)
{
    lua_pushcfunction(L, tostring_protected);
    lua_insert(L, -2);
    size_t n = 0;
    const char *msg = lua_pcall(L, 1, 1, 0) == LUA_OK ? lua_tolstring(L, -1, &n) : NULL;
    if (!msg) {
        msg = "an error value that cannot be shown as text";
        n = strlen(msg);
    }
    char *line = one_line(msg, n);
    snprintf(err, len, "%s", line);
    free(line);
    lua_pop(L, 1);
}

/* Runs the hooks file; leaves its decide on the stack, or raises naming what is wrong. */
static int run_file(lua_State *L)
{
    const char *file = lua_touserdata(L, 1);
    if (luaL_loadfile(L, file) != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L,
                          "%s: the hooks file must return a table with decide(req, ctx), "
                          "not a %s",
                          file, luaL_typename(L, -1));
    lua_getfield(L, -1, "decide");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "%s: the table returned has no function 'decide' (it is a %s)", file,
                          luaL_typename(L, -1));
    return 1;
}

struct serve_hooks *serve_hooks_load(const char *file, char *err, size_t len)
{
    struct capped *cap = em_xmalloc(sizeof *cap);
    cap->used = 0;
    cap->limit = SERVE_HOOK_MEMORY;
    lua_State *L = lua_newstate(capped_alloc, cap);
    if (!L) {
        free(cap);
        snprintf(err, len, "%s: cannot make a Lua state", file);
        return NULL;
    }
    lua_pushcfunction(L, open_state);
    int rc = lua_pcall(L, 0, 0, 0);
    if (rc == LUA_OK) {
        lua_pushcfunction(L, run_file);
        lua_pushlightuserdata(L, (void *)file);
        rc = lua_pcall(L, 1, 1, 0);
    }
    if (rc != LUA_OK) {
        error_text(L, err, len);
        lua_close(L);
        free(cap);
        return NULL;
    }
    lcmc_lua_set_cpu_slice(L, SERVE_HOOK_CPU_SLICE);
    struct serve_hooks *h = em_xmalloc(sizeof *h);
    h->L = L;
    h->loop = NULL;
    h->file = file;
    h->decide_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    h->reloading = NULL;
    return h;
}

lcmc_engine *serve_hooks_engine(struct serve_hooks *h)
{
    return lcmc_lua_engine(h->L);
}

void serve_hooks_attach(struct serve_hooks *h, struct serve_loop *loop)
{
    h->loop = loop;
}

struct reload {
    struct serve_hooks *h;
    serve_reloaded_fn done;
    void *ud;
};

static void reload_done(void *ud, lua_State *co, int status, int nresults)
{
    struct reload *r = ud;
    struct serve_hooks *h = r->h;
    lua_State *L = h->L;
    h->reloading = NULL;
    char err[512] = "";
    if (!lua_checkstack(L, 2)) {
        snprintf(err, sizeof err, "%s: out of memory reloading", h->file);
    } else if (status == LUA_OK && nresults == 1) { /* run_file's decide */
        lua_xmove(co, L, 1);
        luaL_unref(L, LUA_REGISTRYINDEX, h->decide_ref);
        h->decide_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        lua_xmove(co, L, 1);
        error_text(L, err, sizeof err);
    }
    r->done(r->ud, err[0] ? err : NULL);
    free(r);
}

void serve_hooks_reload(struct serve_hooks *h, serve_reloaded_fn done, void *ud)
{
    lua_State *L = h->L;
    if (h->reloading) {
        done(ud, "a reload of the hooks file is running already");
        return;
    }
    struct reload *r = em_xmalloc(sizeof *r);
    r->h = h;
    r->done = done;
    r->ud = ud;
    lua_pushcfunction(L, run_file);
    lua_pushlightuserdata(L, (void *)h->file);
    if (!lcmc_lua_spawn(L, 1, reload_done, r)) {
        free(r);
        done(ud, "out of memory reloading the hooks file");
        return;
    }
    h->reloading = r;
}

void serve_hooks_release(struct serve_hooks *h)
{
    if (!h)
        return;
    void *cap;
    lua_getallocf(h->L, &cap);
    lua_close(h->L);
    free(cap);
    free(h->reloading); /* its task ended with the state: never done */
    free(h);
}

/* ---- a decision's outcome ---- */

/* The Lua value at idx as JSON (lcmcoord.json.encode's rules), or NULL with *why set. */
static json_t *to_json(lua_State *L, int idx, char *why, size_t len)
{
    idx = lua_absindex(L, idx);
    /* The registry's table of loaded modules: a hook may have changed the global `package`. */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L); /* keeps the count popped below */
    lua_getfield(L, -2, "lcmcoord");
    lua_getfield(L, -1, "json");
    lua_getfield(L, -1, "encode");
    lua_pushvalue(L, idx);
    json_t *out = NULL;
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isstring(L, -1)) {
        size_t n;
        const char *text = lua_tolstring(L, -1, &n);
        json_error_t e;
        out = json_loadb(text, n, JSON_DECODE_ANY, &e);
        if (!out)
            snprintf(why, len, "not JSON: %s", e.text);
    } else {
        snprintf(why, len, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "not encodable");
    }
    lua_pop(L, 5);
    return out;
}

static void set_error(struct serve_outcome *o, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    o->kind = SERVE_OUT_ERROR;
    o->message = one_line(msg, strlen(msg));
}

/* The LcmCoord's warnings are strings: one, or a list of them (a VNFM refuses anything else). */
static bool warnings_ok(const json_t *w)
{
    if (json_is_string(w))
        return true;
    if (!json_is_array(w))
        return false;
    size_t i;
    const json_t *v;
    json_array_foreach(w, i, v) if (!json_is_string(v)) return false;
    return true;
}

/* decide's return value (at the top of co) as an outcome. */
static void read_result(lua_State *co, int nres, struct serve_outcome *o)
{
    memset(o, 0, sizeof *o);
    char why[400];
    if (nres < 1 || !lua_istable(co, -nres)) {
        set_error(o, "decide returned %s, not a table such as {result = \"CONTINUE\"}",
                  nres < 1 ? "nothing" : luaL_typename(co, -nres));
        return;
    }
    int t = lua_absindex(co, -nres);
    lua_getfield(co, t, "busy");
    if (!lua_isnil(co, -1)) {
        lua_Number s = lua_tonumber(co, -1);
        if (!lua_isnumber(co, -1) || !isfinite(s) || s < 1 || s > 86400) {
            lua_pop(co, 1);
            set_error(o, "decide returned busy = %s; expected a number of seconds from 1 to 86400",
                      "a bad value");
            return;
        }
        o->kind = SERVE_OUT_BUSY;
        o->busy_seconds = ceil(s);
        lua_pop(co, 1);
        return;
    }
    lua_pop(co, 1);
    lua_getfield(co, t, "result");
    const char *r = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : NULL;
    if (r && strcmp(r, "CONTINUE") == 0) {
        o->kind = SERVE_OUT_CONTINUE;
    } else if (r && strcmp(r, "ABORT") == 0) {
        o->kind = SERVE_OUT_ABORT;
    } else {
        char shown[80];
        snprintf(shown, sizeof shown, "%.60s", r ? r : luaL_typename(co, -1));
        lua_pop(co, 1);
        set_error(o,
                  "decide returned result '%s'; expected \"CONTINUE\" or \"ABORT\" (or busy = "
                  "seconds)",
                  shown);
        return;
    }
    lua_pop(co, 1);
    lua_getfield(co, t, "outputParams");
    if (!lua_isnil(co, -1)) {
        o->output = to_json(co, -1, why, sizeof why);
        if (!json_is_object(o->output)) {
            json_decref(o->output);
            o->output = NULL;
            lua_pop(co, 1);
            set_error(o,
                      "decide returned outputParams that are %s; expected a table of "
                      "key-value pairs",
                      "not one");
            return;
        }
    }
    lua_pop(co, 1);
    if (o->kind == SERVE_OUT_CONTINUE) {
        lua_getfield(co, t, "warnings");
        if (!lua_isnil(co, -1)) {
            o->warnings = to_json(co, -1, why, sizeof why);
            if (json_is_object(o->warnings) && json_object_size(o->warnings) == 0) {
                json_decref(o->warnings); /* {}: an empty Lua table, no warnings */
                o->warnings = NULL;
            }
            if (json_is_array(o->warnings) && json_array_size(o->warnings) == 0) {
                json_decref(o->warnings);
                o->warnings = NULL;
            }
            if (o->warnings && !warnings_ok(o->warnings)) {
                json_decref(o->warnings);
                o->warnings = NULL;
                lua_pop(co, 1);
                set_error(o,
                          "decide returned warnings that are %s; expected a string or a list "
                          "of strings",
                          "not text");
                return;
            }
        }
        lua_pop(co, 1);
        return;
    }
    lua_getfield(co, t, "error");
    json_t *e = lua_isnil(co, -1) ? json_object() : to_json(co, -1, why, sizeof why);
    lua_pop(co, 1);
    if (!json_is_object(e)) {
        json_decref(e);
        set_error(o,
                  "decide returned an ABORT whose error is %s; expected a ProblemDetails "
                  "table {title = ..., detail = ...}",
                  "not a table");
        return;
    }
    if (!json_is_integer(json_object_get(e, "status")))
        json_object_set_new(e, "status", json_integer(409));
    if (!json_is_string(json_object_get(e, "type")))
        json_object_set_new(e, "type", json_string("about:blank"));
    if (!json_is_string(json_object_get(e, "title")))
        json_object_set_new(e, "title", json_string("Coordination aborted"));
    if (!json_is_string(json_object_get(e, "detail")))
        json_object_set_new(e, "detail", json_string("the EM's hook decided to abort"));
    o->error = e;
}

/* ---- running a decision ---- */

static void finish(struct serve_decision *d, struct serve_outcome *o)
{
    struct serve_hooks *h = d->h;
    if (d->box) {
        d->box->d = NULL;
        luaL_unref(h->L, LUA_REGISTRYINDEX, d->box_ref);
    }
    if (d->handle)
        *d->handle = NULL;
    serve_decided_fn done = d->done;
    void *ud = d->ud;
    free(d);
    done(ud, o);
}

struct reading {
    struct serve_outcome *o;
    int status, nresults;
};

/* Protected: decide's results (or its error value) as an outcome. Reading them runs the
 * hook's metamethods (__index, __tostring, __pairs...), which may raise or try to yield. */
static int read_protected(lua_State *L)
{
    struct reading *r = lua_touserdata(L, 1);
    lua_remove(L, 1);
    if (r->status == LUA_OK) {
        read_result(L, r->nresults, r->o);
    } else {
        size_t n;
        const char *msg = luaL_tolstring(L, 1, &n);
        r->o->kind = SERVE_OUT_ERROR;
        r->o->message = one_line(msg, n);
    }
    return 0;
}

/* The task ended by itself (lcmc_lua_done_fn): its results, or its error, are on co. They
 * are read on the main thread under a protected call: nothing runs co any more (it may be
 * dead with an error), and an error raised outside a protected call aborts the process. */
static void task_done(void *ud, lua_State *co, int status, int nresults)
{
    struct serve_decision *d = ud;
    lua_State *L = d->h->L;
    d->task = NULL;
    struct serve_outcome o;
    memset(&o, 0, sizeof o);
    struct reading r = {&o, status, nresults};
    int top = lua_gettop(L);
    if (!lua_checkstack(L, nresults + 2)) {
        set_error(&o, "%s", "decide returned more values than can be read");
    } else {
        lua_pushcfunction(L, read_protected);
        lua_pushlightuserdata(L, &r);
        lua_xmove(co, L, nresults);
        if (lua_pcall(L, nresults + 1, 0, 0) != LUA_OK) {
            const char *why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            serve_outcome_clear(&o);
            set_error(&o, "decide's result could not be read: %s",
                      why ? why : "an error value that is not text");
        }
    }
    lua_settop(L, top);
    finish(d, &o);
}

void serve_decision_start(struct serve_hooks *h, const char *id, const json_t *req,
                          serve_decided_fn done, void *ud, struct serve_decision **handle)
{
    lua_State *L = h->L;
    struct serve_decision *d = em_xmalloc(sizeof *d);
    memset(d, 0, sizeof *d);
    d->h = h;
    snprintf(d->id, sizeof d->id, "%s", id);
    d->done = done;
    d->ud = ud;
    d->handle = handle;
    *handle = d;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->decide_ref);
    if (!lcmc_lua_push_json(L, req)) {
        lua_settop(L, top);
        struct serve_outcome o = {0};
        set_error(&o, "%s", "the request nests too deep for Lua");
        finish(d, &o);
        return;
    }
    /* ctx = {id = ..., log = function, cancelled = function} */
    lua_createtable(L, 0, 3);
    lua_pushstring(L, id);
    lua_setfield(L, -2, "id");
    d->box = lua_newuserdatauv(L, sizeof *d->box, 0);
    d->box->d = d;
    lua_pushvalue(L, -1);
    d->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, ctx_log, 1);
    lua_setfield(L, -3, "log");
    lua_pushcclosure(L, ctx_cancelled, 1);
    lua_setfield(L, -2, "cancelled");
    d->task = lcmc_lua_spawn(L, 2, task_done, d);
    lua_settop(L, top);
    if (!d->task) {
        struct serve_outcome o = {0};
        set_error(&o, "%s", "out of memory starting the decision");
        finish(d, &o);
    }
}

void serve_decision_cancel(struct serve_decision *d)
{
    if (d)
        d->cancelled = true;
}

void serve_decision_abort(struct serve_decision *d)
{
    if (!d)
        return;
    /* Its pending operation cancelled, its coroutine dropped; done_fn is never called. */
    lcmc_lua_abort(d->task);
    d->task = NULL;
    struct serve_outcome o = {0};
    o.kind = SERVE_OUT_CANCELLED;
    finish(d, &o);
}
