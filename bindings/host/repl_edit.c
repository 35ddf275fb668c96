/*
 * Reading lines for `lcmcoord repl`: libedit (through its readline-compatible API) for an
 * interactive session, plain getline for a replayed file. Also the session's memory: the
 * history file under $XDG_DATA_HOME/lcmcoord (private to the user, and never given a line
 * that looks like it holds a credential, as redis-cli does), and tab completion of globals,
 * module functions and client methods, read from the live Lua state without running any of
 * its code.
 */
#define _DEFAULT_SOURCE /* libedit's header wants the BSD/ioctl declarations */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>
#include <lauxlib.h>

#include "repl.h"

/* Lines kept in the history file; it is trimmed back to this once it is twice as long. */
#define HISTORY_KEEP 1000

static lcmc_repl *edit_repl; /* the session completion looks into */
static char *history_path;   /* NULL: no history file for this session */
static int history_warned;
static volatile sig_atomic_t prompt_interrupted;

/* ---- secrets ------------------------------------------------------------------------------ */

static int contains_word(const char *line, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = line; *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] != '\0' && tolower((unsigned char)p[i]) == word[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

int lcmc_edit_is_secret(const char *line)
{
    /* Lower case. Broad on purpose: a line wrongly kept out of the file costs a retype, a
     * password wrongly written to it stays on disk. */
    static const char *const words[] = {
        "password",      "passwd", "secret",     "token",  "paramsbasic", "clientpassword",
        "authorization", "bearer", "credential", "apikey", "api_key",     NULL,
    };
    for (const char *const *w = words; *w != NULL; w++)
        if (contains_word(line, *w))
            return 1;
    return 0;
}

/* ---- the history file --------------------------------------------------------------------- */

static void history_warning(const char *what)
{
    if (history_warned)
        return;
    history_warned = 1;
    fprintf(stderr, "lcmcoord repl: history not saved: %s %s: %s\n", what, history_path,
            strerror(errno));
}

/* $XDG_DATA_HOME/lcmcoord/history, or ~/.local/share/lcmcoord/history (a relative
 * XDG_DATA_HOME is ignored, as the XDG specification asks). */
static char *make_history_path(void)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    const char *base = NULL;
    const char *suffix = "";
    if (xdg != NULL && xdg[0] == '/') {
        base = xdg;
    } else if (home != NULL && home[0] != '\0') {
        base = home;
        suffix = "/.local/share";
    } else {
        return NULL;
    }
    size_t len = strlen(base) + strlen(suffix) + sizeof "/lcmcoord/history";
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s%s/lcmcoord/history", base, suffix);
    return path;
}

/* Creates the missing directories above `path`'s file, private to the user (0700). */
static int make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -1;
    char *slash = strrchr(copy, '/');
    if (slash != NULL)
        *slash = '\0';
    for (char *p = copy + 1; p != NULL;) {
        char *next = strchr(p, '/');
        if (next != NULL)
            *next = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
            free(copy);
            return -1;
        }
        if (next != NULL)
            *next = '/';
        p = next != NULL ? next + 1 : NULL;
    }
    free(copy);
    return 0;
}

static int write_lines(int fd, char *const *lines, size_t count, size_t first)
{
    for (size_t i = 0; i < count; i++) {
        const char *line = lines[(first + i) % count];
        size_t len = strlen(line);
        if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
            return -1;
    }
    return 0;
}

/* Replaces the file with the last lines only, atomically, keeping it private. */
static void trim_history(char *const *ring, size_t count, size_t first)
{
    size_t len = strlen(history_path) + sizeof ".XXXXXX";
    char *tmp = malloc(len);
    if (tmp == NULL)
        return;
    snprintf(tmp, len, "%s.XXXXXX", history_path);
    int fd = mkstemp(tmp); /* 0600 */
    if (fd >= 0) {
        int ok = write_lines(fd, ring, count, first) == 0 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        if (!ok || rename(tmp, history_path) != 0)
            unlink(tmp);
    }
    free(tmp);
}

/* Loads the file into the session history, skipping any line that looks secret (one written
 * by hand, or by an older version). */
static void load_history(void)
{
    FILE *in = fopen(history_path, "r");
    if (in == NULL) {
        if (errno != ENOENT)
            history_warning("cannot read");
        return;
    }
    char **ring = calloc(HISTORY_KEEP, sizeof *ring);
    size_t total = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (ring != NULL && (n = getline(&line, &cap, in)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || lcmc_edit_is_secret(line))
            continue;
        char *copy = strdup(line);
        if (copy == NULL)
            break;
        free(ring[total % HISTORY_KEEP]);
        ring[total % HISTORY_KEEP] = copy;
        total++;
    }
    free(line);
    fclose(in);
    if (ring == NULL)
        return;
    size_t count = total < HISTORY_KEEP ? total : HISTORY_KEEP;
    size_t first = total < HISTORY_KEEP ? 0 : total % HISTORY_KEEP;
    for (size_t i = 0; i < count; i++)
        add_history(ring[(first + i) % HISTORY_KEEP]);
    if (total > 2 * HISTORY_KEEP)
        trim_history(ring, count, first);
    for (size_t i = 0; i < HISTORY_KEEP; i++)
        free(ring[i]);
    free(ring);
}

void lcmc_edit_remember(lcmc_repl *repl, const char *chunk)
{
    if (!repl->interactive)
        return;
    int secret = 0;
    const char *start = chunk;
    while (*start != '\0') {
        size_t len = strcspn(start, "\n");
        char *line = strndup(start, len);
        if (line != NULL) {
            secret = secret || lcmc_edit_is_secret(line);
            if (strspn(line, " \t") != len)
                add_history(line); /* the session keeps it: up-arrow to fix a typo */
            free(line);
        }
        start += len + (start[len] == '\n');
    }
    /* A chunk is judged whole: the password on the second line of a table makes the first
     * line as private as the second. */
    if (secret || history_path == NULL || strspn(chunk, " \t\n") == strlen(chunk))
        return;
    if (make_parent_dirs(history_path) != 0) {
        history_warning("cannot create the directory of");
        return;
    }
    int fd = open(history_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        history_warning("cannot open");
        return;
    }
    size_t len = strlen(chunk);
    if (write(fd, chunk, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
        history_warning("cannot write");
    close(fd);
}

/* ---- completion --------------------------------------------------------------------------- */

static char **candidates;
static size_t candidate_count;
static size_t candidate_next;

static void free_candidates(void)
{
    for (size_t i = 0; i < candidate_count; i++)
        free(candidates[i]);
    free(candidates);
    candidates = NULL;
    candidate_count = 0;
}

static int is_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    while (isalnum((unsigned char)*s) || *s == '_')
        s++;
    return *s == '\0';
}

/* Adds to the sequence at `out` every key of the table at `t` that is a name starting with
 * `partial` (only functions when `methods`), as prefix .. key. */
static void add_keys(lua_State *L, int t, int out, const char *prefix, const char *partial,
                     int methods)
{
    size_t plen = strlen(partial);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (key != NULL && is_name(key) && strncmp(key, partial, plen) == 0 &&
            (!methods || lua_type(L, -1) == LUA_TFUNCTION)) {
            lua_pushfstring(L, "%s%s", prefix, key);
            lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
        }
        lua_pop(L, 1);
    }
}

/* Pushes the table where a value's methods and fields are found besides its own keys: its
 * metatable's __index when that is a table (client methods), else nil. Runs no metamethod. */
static void push_index_table(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) {
        lua_pushnil(L);
        return;
    }
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* Looks up a field the way completion may: raw, then in the __index table. Pushes it. */
static void push_field(lua_State *L, int idx, const char *name)
{
    idx = lua_absindex(L, idx);
    if (lua_istable(L, idx)) {
        lua_pushstring(L, name);
        if (lua_rawget(L, idx) != LUA_TNIL)
            return;
        lua_pop(L, 1);
    }
    push_index_table(L, idx);
    if (lua_istable(L, -1)) {
        lua_pushstring(L, name);
        lua_rawget(L, -2);
        lua_remove(L, -2);
    }
}

/* Pushes the sequence of candidates for `text` (a light userdata) and returns it; the second
 * argument says whether the text starts the line (where `:` commands are). */
static int collect_candidates(lua_State *L)
{
    static const char *const keywords[] = {
        "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
        "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
        "repeat",   "return", "then", "true", "until",  "while", NULL,
    };
    static const char *const commands[] = {":help", ":trace", ":time", ":headers", ":journal",
                                           ":save", ":load",  ":quit", NULL};
    const char *text = lua_touserdata(L, 1);
    int at_line_start = (int)lua_toboolean(L, 2);
    lua_settop(L, 0);
    lua_newtable(L);
    int out = 1;

    if (at_line_start && text[0] == ':') {
        for (const char *const *c = commands; *c != NULL; c++)
            if (strncmp(*c, text, strlen(text)) == 0) {
                lua_pushstring(L, *c);
                lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
            }
        return 1;
    }
    const char *sep = strpbrk(text, ".:") != NULL ? text + strlen(text) : NULL;
    while (sep != NULL && sep > text && sep[-1] != '.' && sep[-1] != ':')
        sep--;
    if (sep == NULL) {
        lua_pushglobaltable(L);
        add_keys(L, lua_gettop(L), out, "", text, 0);
        for (const char *const *k = keywords; *k != NULL; k++)
            if (strncmp(*k, text, strlen(text)) == 0) {
                lua_pushstring(L, *k);
                lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
            }
        lua_settop(L, out);
        return 1;
    }
    /* sep points just past the last '.' or ':'; the path before it names the value. */
    int methods = sep[-1] == ':';
    lua_pushlstring(L, text, (size_t)(sep - text));
    const char *prefix = lua_tostring(L, -1);
    size_t path_len = (size_t)(sep - text) - 1;
    if (memchr(text, ':', path_len) != NULL) {
        lua_settop(L, out); /* a method's result is not known without calling it */
        return 1;
    }
    lua_pushglobaltable(L);
    const char *segment = text;
    while (segment < text + path_len) {
        size_t len = strcspn(segment, ".");
        if (segment + len > text + path_len)
            len = (size_t)(text + path_len - segment);
        lua_pushlstring(L, segment, len);
        push_field(L, -2, lua_tostring(L, -1));
        lua_remove(L, -2);
        lua_remove(L, -2);
        if (!lua_istable(L, -1) && !lua_isuserdata(L, -1)) {
            lua_settop(L, out);
            return 1;
        }
        segment += len + 1;
    }
    int value = lua_gettop(L);
    if (lua_istable(L, value))
        add_keys(L, value, out, prefix, sep, methods);
    push_index_table(L, value);
    if (lua_istable(L, -1))
        add_keys(L, lua_gettop(L), out, prefix, sep, methods);
    lua_settop(L, out);
    return 1;
}

static char *next_candidate(const char *text, int state)
{
    (void)text;
    if (state == 0)
        candidate_next = 0;
    return candidate_next < candidate_count ? strdup(candidates[candidate_next++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    free_candidates();
    lua_State *L = edit_repl->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, collect_candidates);
    lua_pushlightuserdata(L, (void *)text);
    lua_pushboolean(L, start == 0);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        size_t n = (size_t)lua_rawlen(L, -1);
        candidates = n > 0 ? calloc(n, sizeof *candidates) : NULL;
        for (size_t i = 0; candidates != NULL && i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            candidates[i] = strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
            if (candidates[i] == NULL)
                break;
            candidate_count = i + 1;
        }
    }
    lua_settop(L, top);
    if (candidate_count == 0)
        return NULL;
    return rl_completion_matches(text, next_candidate);
}

/* ---- reading ------------------------------------------------------------------------------ */

static void on_prompt_interrupt(int sig)
{
    prompt_interrupted = sig;
}

void lcmc_edit_open(lcmc_repl *repl)
{
    /* Everything a Lua expression can hold, so `em:api_v` and `lcmcoord.cl` are one word. */
    static char word_breaks[] = " \t\n\"'`@$><=;|&{(,+-*/%^~#[]";
    edit_repl = repl;
    if (!repl->interactive)
        return;
    /* libedit's own handlers would re-raise SIGINT at the whole process group; the prompt
     * installs a handler of its own instead (lcmc_edit_read). */
    rl_catch_signals = 0;
    rl_readline_name = "lcmcoord";
    rl_attempted_completion_function = complete;
    rl_completer_word_break_characters = word_breaks;
    rl_basic_word_break_characters = word_breaks;
    rl_completion_append_character = '\0';
    using_history();
    stifle_history(HISTORY_KEEP);
    history_path = make_history_path();
    if (history_path != NULL)
        load_history();
}

void lcmc_edit_close(void)
{
    free_candidates();
    free(history_path);
    history_path = NULL;
    if (edit_repl != NULL && edit_repl->interactive)
        clear_history();
    edit_repl = NULL;
}

char *lcmc_edit_read(lcmc_repl *repl, const char *prompt, int *interrupted)
{
    *interrupted = 0;
    if (!repl->interactive) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            free(line);
            return NULL;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        return line;
    }
    /* No SA_RESTART: the read in libedit fails with EINTR, readline returns NULL (having put
     * the terminal back the way it was), and the flag tells that apart from Ctrl-D. SIGTERM
     * too, so that the terminal is not left in libedit's mode when the session is ended. */
    struct sigaction sa;
    struct sigaction previous_int;
    struct sigaction previous_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prompt_interrupt;
    sigemptyset(&sa.sa_mask);
    prompt_interrupted = 0;
    sigaction(SIGINT, &sa, &previous_int);
    sigaction(SIGTERM, &sa, &previous_term);
    char *line = readline(prompt);
    if (line != NULL) {
        /* The handler stays until evaluation arms its own: a Ctrl-C typed just after Enter
         * belongs to the line about to run (lcmc_edit_take_interrupt hands it over). */
        return line;
    }
    sigaction(SIGINT, &previous_int, NULL);
    sigaction(SIGTERM, &previous_term, NULL);
    if (prompt_interrupted != 0)
        *interrupted = prompt_interrupted;
    return line;
}

int lcmc_edit_take_interrupt(void)
{
    int caught = prompt_interrupted;
    prompt_interrupted = 0;
    return caught;
}
