/*
 * A host of Lua tasks for the end-to-end tests (tests/e2e/test_ssh_tasks.py): runs
 * SCRIPT.lua with the `lcmcoord` module (its main chunk runs as a plain script: blocking),
 * takes the list of functions it returns, and runs each as a task (lcmc_lua_spawn) on the
 * state's engine until all have ended. Then prints one JSON object: {"elapsed": seconds
 * the tasks took, "tasks": [{"status": "ok"|"error"|"aborted", "result": first result or
 * error, JSON-encoded by lcmcoord.json}...]}. With LCMC_ABORT_TASK=N and
 * LCMC_ABORT_AFTER=S, task N (from 1) is aborted S seconds after the tasks start.
 *
 *   lua_tasks_driver SCRIPT.lua [ARG]   (ARG is passed to the main chunk as `...`)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lcmcoord_lua.h"

#define MAX_TASKS 64

typedef struct task_slot {
    lcmc_lua_task *task;
    int ended;
    int aborted;
    int status;
    char *json;
} task_slot;

static lua_State *L;
static task_slot slots[MAX_TASKS];
static int task_count, ended_count;

static void maybe_stop(void)
{
    if (ended_count == task_count)
        lcmc_engine_stop(lcmc_lua_engine(L));
}

/* The value on top of co, as JSON text made by lcmcoord.json.encode on the main thread. */
static char *encode(lua_State *co)
{
    lua_getglobal(L, "ENCODE");
    lua_xmove(co, L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
        lua_pop(L, 1);
        return strdup("\"(not encodable)\"");
    }
    char *text = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return text;
}

static void task_done(void *userdata, lua_State *co, int status, int nresults)
{
    task_slot *slot = userdata;
    slot->ended = 1;
    slot->task = NULL;
    slot->status = status;
    if (nresults == 0)
        lua_pushnil(co);
    else if (nresults > 1)
        lua_pop(co, nresults - 1);
    slot->json = encode(co);
    ended_count++;
    maybe_stop();
}

static void abort_due(void *userdata, lcmc_status status)
{
    (void)status;
    task_slot *slot = userdata;
    if (slot->task == NULL)
        return;
    lcmc_lua_abort(slot->task);
    slot->task = NULL;
    slot->ended = slot->aborted = 1;
    ended_count++;
    maybe_stop();
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: lua_tasks_driver SCRIPT.lua [ARG]\n");
        return 2;
    }
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "lcmcoord", luaopen_lcmcoord, 1);
    lua_getfield(L, -1, "json");
    lua_getfield(L, -1, "encode");
    lua_setglobal(L, "ENCODE");
    lua_pop(L, 2);
    if (luaL_loadfile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_pushstring(L, argc > 2 ? argv[2] : "");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        fprintf(stderr, "script: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "no list");
        return 1;
    }
    int list = lua_gettop(L);
    task_count = (int)luaL_len(L, list);
    if (task_count > MAX_TASKS)
        task_count = MAX_TASKS;
    lcmc_engine *engine = lcmc_lua_engine(L);
    for (int i = 0; i < task_count; i++) {
        lua_geti(L, list, i + 1);
        slots[i].task = lcmc_lua_spawn(L, 0, task_done, &slots[i]);
        if (slots[i].task == NULL) {
            fprintf(stderr, "task %d: cannot spawn\n", i + 1);
            return 1;
        }
    }
    const char *abort_task = getenv("LCMC_ABORT_TASK");
    const char *abort_after = getenv("LCMC_ABORT_AFTER");
    if (abort_task != NULL && abort_after != NULL) {
        int n = atoi(abort_task);
        if (n >= 1 && n <= task_count)
            lcmc_timer_start(engine, atof(abort_after), abort_due, &slots[n - 1], NULL);
    }
    double start = lcmc_now();
    if (task_count > 0)
        lcmc_engine_serve(engine);
    double elapsed = lcmc_now() - start;
    printf("{\"elapsed\": %.3f, \"tasks\": [", elapsed);
    for (int i = 0; i < task_count; i++) {
        const task_slot *s = &slots[i];
        printf("%s{\"status\": \"%s\", \"result\": %s}", i ? ", " : "",
               s->aborted            ? "aborted"
               : s->status == LUA_OK ? "ok"
                                     : "error",
               s->json ? s->json : "null");
        free(s->json);
    }
    printf("]}\n");
    lua_close(L);
    return 0;
}
