/*
 * How `lcmcoord repl` shows values, tuned for reading an API rather than for round-tripping
 * Lua: a response is a status line with its time, then its body as indented JSON; tables are
 * indented JSON with sorted keys, so that two answers can be compared by eye and a session
 * log diffs cleanly; errors go to stderr with their kind. Also the `:trace` printer. Nothing
 * here changes a value it shows (no metamethod is called except __tostring, as `print` does).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "lcmcoord_lua.h"
#include "progress.h"
#include "repl.h"
#include "safe_text.h"

#define C_RESET   "\033[0m"
#define C_KEY     "\033[36m"
#define C_STRING  "\033[32m"
#define C_NUMBER  "\033[33m"
#define C_LITERAL "\033[35m"
#define C_DIM     "\033[2m"
#define C_GOOD    "\033[1;32m"
#define C_BAD     "\033[1;31m"
#define C_NOTE    "\033[1;33m"

/* Deeper than any real document; keeps a pathological table from exhausting the C stack. */
#define MAX_DEPTH 200

static void paint(FILE *out, const lcmc_show_style *style, const char *code)
{
    if (style->colour)
        fputs(code, out);
}

const char *lcmc_show_reason(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {409, "Conflict"},
        {410, "Gone"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "";
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* A JSON string: what a terminal would act on (safe_text.h) goes out as a \u escape, so
 * the document still reads back to the same value; bytes that are not UTF-8 cannot be in a
 * JSON string and show as U+FFFD. */
static void write_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        uint32_t code = 0;
        size_t n = lcmc_utf8_sequence(s + i, len - i, &code);
        if (n == 0) {
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        if (code == '"')
            fputs("\\\"", out);
        else if (code == '\\')
            fputs("\\\\", out);
        else if (code == '\n')
            fputs("\\n", out);
        else if (code == '\r')
            fputs("\\r", out);
        else if (code == '\t')
            fputs("\\t", out);
        else if (lcmc_safe_code_is_unsafe(code))
            fprintf(out, "\\u%04x", (unsigned)code);
        else
            fwrite(s + i, 1, n, out);
        i += n;
    }
    fputc('"', out);
}

/* The length of the scheme of an Authorization value ("Basic <token>", "Bearer <token>"),
 * or 0: what auth:header() returns is a credential, and the REPL never shows one, not even
 * when asked to print it (the trace redacts the same values on the wire). */
static size_t credential_scheme(const char *s, size_t len)
{
    static const char *const schemes[] = {"Basic ", "Bearer ", NULL};
    for (const char *const *scheme = schemes; *scheme; scheme++) {
        size_t n = strlen(*scheme);
        if (len <= n || strncasecmp(s, *scheme, n) != 0)
            continue;
        for (size_t i = n; i < len; i++)
            if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
                return 0;
        return n - 1;
    }
    return 0;
}

/* Numbers as the EM wrote them: JSON integers decode to Lua integers and are shown as such
 * (201, 1732700000123456); reals in the fewest digits that read back as the same double,
 * with ".0" when they hold a whole number, as JSON writes a real (0.1, 3.0, 1e+300). */
static void write_number(lua_State *L, int idx, FILE *out)
{
    if (lua_isinteger(L, idx)) {
        fprintf(out, LUA_INTEGER_FMT, lua_tointeger(L, idx));
        return;
    }
    double d = lua_tonumber(L, idx);
    char text[40];
    if (!isfinite(d)) {
        snprintf(text, sizeof text, "%g", d); /* not JSON: shown as Lua would */
    } else {
        for (int digits = 1; digits <= 17; digits++) {
            snprintf(text, sizeof text, "%.*g", digits, d);
            if (strtod(text, NULL) == d)
                break;
        }
        if (strpbrk(text, ".en") == NULL)
            strcat(text, ".0");
    }
    fputs(text, out);
}

static void indent_to(FILE *out, int indent)
{
    for (int i = 0; i < indent; i++)
        fputc(' ', out);
}

typedef struct key_entry {
    const char *name; /* anchored in the `keys` table on the stack */
    size_t length;
    size_t slot; /* where the original key is in `keys` */
} key_entry;

static int compare_keys(const void *a, const void *b)
{
    const key_entry *x = a;
    const key_entry *y = b;
    size_t n = x->length < y->length ? x->length : y->length;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    return x->length < y->length ? -1 : x->length > y->length;
}

/* Pushes the name a key is shown under: JSON object names are strings. */
static void push_key_name(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        lua_pushvalue(L, idx);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            lua_pushfstring(L, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
        else
            lua_pushfstring(L, "%f", lua_tonumber(L, idx));
        break;
    default:
        luaL_tolstring(L, idx, NULL);
        break;
    }
}

static void write_value(lua_State *L, int idx, FILE *out, const lcmc_show_style *style, int indent,
                        int seen);

static void write_object(lua_State *L, int t, FILE *out, const lcmc_show_style *style, int indent,
                         int seen, size_t count)
{
    /* Two slots per key: the key itself and the name it is shown under (kept alive here). */
    lua_createtable(L, count < 65536 ? (int)count * 2 : 0, 0);
    int keys = lua_gettop(L);
    key_entry *entries = lua_newuserdatauv(L, count * sizeof *entries, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (i < count && lua_next(L, t) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, (lua_Integer)(2 * i + 1));
        push_key_name(L, -1);
        entries[i].name = lua_tolstring(L, -1, &entries[i].length);
        entries[i].slot = 2 * i + 1;
        lua_rawseti(L, keys, (lua_Integer)(2 * i + 2));
        i++;
    }
    if (i == count)
        lua_pop(L, 1); /* the key lua_next left when the loop stopped on the count */
    count = i;
    qsort(entries, count, sizeof *entries, compare_keys);

    fputc('{', out);
    for (i = 0; i < count; i++) {
        fputs(i == 0 ? "\n" : ",\n", out);
        indent_to(out, indent + 2);
        paint(out, style, C_KEY);
        write_string(out, entries[i].name, entries[i].length);
        paint(out, style, C_RESET);
        fputs(": ", out);
        lua_rawgeti(L, keys, (lua_Integer)entries[i].slot);
        lua_rawget(L, t);
        write_value(L, lua_gettop(L), out, style, indent + 2, seen);
        lua_pop(L, 1);
    }
    fputc('\n', out);
    indent_to(out, indent);
    fputc('}', out);
    lua_pop(L, 2);
}

static void write_table(lua_State *L, int t, FILE *out, const lcmc_show_style *style, int indent,
                        int seen)
{
    lua_pushvalue(L, t);
    if (lua_rawget(L, seen) != LUA_TNIL || indent / 2 > MAX_DEPTH) {
        lua_pop(L, 1);
        paint(out, style, C_DIM);
        fputs(indent / 2 > MAX_DEPTH ? "<too deep>" : "<cycle>", out);
        paint(out, style, C_RESET);
        return;
    }
    lua_pop(L, 1);
    luaL_checkstack(L, 16, "table too deep to show");

    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        count++;
    }
    if (count == 0) {
        fputs(lcmc_lua_json_is_array(L, t) ? "[]" : "{}", out);
        return;
    }
    /* Only within this branch: a table shared by two fields is shown twice, not as a cycle. */
    lua_pushvalue(L, t);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    if (lua_rawlen(L, t) == count) {
        fputc('[', out);
        for (size_t i = 1; i <= count; i++) {
            fputs(i == 1 ? "\n" : ",\n", out);
            indent_to(out, indent + 2);
            lua_rawgeti(L, t, (lua_Integer)i);
            write_value(L, lua_gettop(L), out, style, indent + 2, seen);
            lua_pop(L, 1);
        }
        fputc('\n', out);
        indent_to(out, indent);
        fputc(']', out);
    } else {
        write_object(L, t, out, style, indent, seen, count);
    }
    lua_pushvalue(L, t);
    lua_pushnil(L);
    lua_rawset(L, seen);
}

static void write_value(lua_State *L, int idx, FILE *out, const lcmc_show_style *style, int indent,
                        int seen)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        paint(out, style, C_LITERAL);
        fputs("null", out);
        paint(out, style, C_RESET);
        break;
    case LUA_TBOOLEAN:
        paint(out, style, C_LITERAL);
        fputs(lua_toboolean(L, idx) ? "true" : "false", out);
        paint(out, style, C_RESET);
        break;
    case LUA_TNUMBER:
        paint(out, style, C_NUMBER);
        write_number(L, idx, out);
        paint(out, style, C_RESET);
        break;
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, idx, &len);
        size_t scheme = credential_scheme(s, len);
        char redacted[32];
        if (scheme > 0) {
            snprintf(redacted, sizeof redacted, "%.*s <redacted>", (int)scheme, s);
            s = redacted;
            len = strlen(redacted);
        }
        paint(out, style, C_STRING);
        write_string(out, s, len);
        paint(out, style, C_RESET);
        break;
    }
    case LUA_TTABLE:
        write_table(L, idx, out, style, indent, seen);
        break;
    default:
        if (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL) {
            paint(out, style, C_LITERAL); /* lcmcoord.null */
            fputs("null", out);
            paint(out, style, C_RESET);
            break;
        }
        paint(out, style, C_DIM);
        fprintf(out, "<%s>", luaL_tolstring(L, idx, NULL));
        paint(out, style, C_RESET);
        lua_pop(L, 1);
        break;
    }
}

void lcmc_show_json(lua_State *L, int idx, FILE *out, const lcmc_show_style *style)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    write_value(L, idx, out, style, 0, lua_gettop(L));
    lua_pop(L, 1);
}

/* ---- responses and errors -------------------------------------------------------------- */

static int field_type(lua_State *L, int idx, const char *name)
{
    lua_pushstring(L, name);
    int type = lua_rawget(L, idx);
    lua_pop(L, 1);
    return type;
}

int lcmc_show_is_response(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    return lua_type(L, idx) == LUA_TTABLE && field_type(L, idx, "status") == LUA_TNUMBER &&
           field_type(L, idx, "headers") == LUA_TTABLE &&
           field_type(L, idx, "body") == LUA_TSTRING &&
           field_type(L, idx, "elapsed") == LUA_TNUMBER;
}

/* Writes the headers of a response table in name order, "name: value" per line; with
 * `only_protocol`, just the two that drive the protocol (Location, Retry-After). */
static void write_headers(lua_State *L, int headers, FILE *out, const lcmc_show_style *style,
                          int only_protocol)
{
    static const char *const protocol[] = {"location", "retry-after", NULL};
    lua_newtable(L);
    int names = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, headers) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, names, ++n);
        }
    }
    lua_getglobal(L, "table");
    if (lua_istable(L, -1) && lua_getfield(L, -1, "sort") == LUA_TFUNCTION) {
        lua_pushvalue(L, names);
        lua_call(L, 1, 0);
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, names, i);
        const char *name = lua_tostring(L, -1);
        int wanted = !only_protocol;
        for (const char *const *p = protocol; !wanted && *p != NULL; p++)
            wanted = strcmp(name, *p) == 0;
        if (wanted) {
            lua_pushvalue(L, -1);
            lua_rawget(L, headers);
            size_t value_length = 0;
            const char *value = lua_tolstring(L, -1, &value_length);
            paint(out, style, C_KEY);
            lcmc_safe_write(out, name, strlen(name), LCMC_SAFE_ESCAPE_LINES);
            paint(out, style, C_RESET);
            fputs(": ", out);
            lcmc_safe_write(out, value != NULL ? value : "", value_length, LCMC_SAFE_ESCAPE_LINES);
            fputc('\n', out);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void show_response(lcmc_repl *repl, int idx)
{
    lua_State *L = repl->L;
    lcmc_show_style style = {repl->colour};
    FILE *out = stdout;
    lua_getfield(L, idx, "status");
    int status = (int)lua_tointeger(L, -1);
    lua_getfield(L, idx, "elapsed");
    double ms = lua_tonumber(L, -1) * 1000.0;
    lua_pop(L, 2);
    const char *reason = lcmc_show_reason(status);
    paint(out, &style, status >= 200 && status < 300 ? C_GOOD : status >= 400 ? C_BAD : C_NOTE);
    fprintf(out, "%d%s%s", status, reason[0] != '\0' ? " " : "", reason);
    paint(out, &style, C_RESET);
    paint(out, &style, C_DIM);
    fprintf(out, ms < 10 ? " (%.1f ms)\n" : " (%.0f ms)\n", ms);
    paint(out, &style, C_RESET);

    lua_getfield(L, idx, "headers");
    write_headers(L, lua_gettop(L), out, &style, !repl->show_headers);
    lua_pop(L, 1);

    if (lua_getfield(L, idx, "json") != LUA_TNIL) {
        lcmc_show_json(L, -1, out, &style);
        fputc('\n', out);
    } else {
        size_t len = 0;
        lua_getfield(L, idx, "body");
        const char *body = lua_tolstring(L, -1, &len);
        if (body != NULL && len > 0) {
            lcmc_safe_write(out, body, len, LCMC_SAFE_KEEP_LINES);
            if (body[len - 1] != '\n')
                fputc('\n', out);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void lcmc_show_error(lcmc_repl *repl, int idx)
{
    lua_State *L = repl->L;
    lcmc_show_style style = {repl->colour_err};
    idx = lua_absindex(L, idx);
    fflush(stdout);
    if (lcmc_lua_error_status(L, idx, NULL)) {
        lua_getfield(L, idx, "kind");
        lua_getfield(L, idx, "message");
        paint(stderr, &style, C_BAD);
        fprintf(stderr, "error (%s)", lua_tostring(L, -2) != NULL ? lua_tostring(L, -2) : "?");
        paint(stderr, &style, C_RESET);
        size_t length = 0;
        const char *message = lua_tolstring(L, -1, &length);
        fputs(": ", stderr);
        lcmc_safe_write(stderr, message != NULL ? message : "", length, LCMC_SAFE_ESCAPE_LINES);
        fputc('\n', stderr);
        lua_pop(L, 2);
        if (lua_getfield(L, idx, "problem") == LUA_TTABLE) {
            lcmc_show_json(L, -1, stderr, &style);
            fputc('\n', stderr);
        }
        lua_pop(L, 1);
    } else {
        size_t length = 0;
        const char *msg = lua_tolstring(L, idx, &length);
        if (msg == NULL)
            msg = luaL_tolstring(L, idx, &length);
        else
            lua_pushvalue(L, idx);
        paint(stderr, &style, C_BAD);
        fputs("error", stderr);
        paint(stderr, &style, C_RESET);
        fputs(": ", stderr);
        /* A traceback's lines are kept; anything else in it is made safe. */
        lcmc_safe_write(stderr, msg, length, LCMC_SAFE_KEEP_LINES);
        fputc('\n', stderr);
        lua_pop(L, 1);
    }
    fflush(stderr);
}

static void remember(lua_State *L, int idx)
{
    lua_pushvalue(L, idx);
    lua_setfield(L, LUA_REGISTRYINDEX, LCMC_REPL_LAST_KEY);
}

void lcmc_show_results(lcmc_repl *repl, int n)
{
    lua_State *L = repl->L;
    lcmc_show_style style = {repl->colour};
    int base = lua_gettop(L) - n + 1;
    int open_line = 0; /* scalars share a line, tab-separated, as the stock REPL shows them */
    for (int i = 0; i < n; i++) {
        int idx = base + i;
        int type = lua_type(L, idx);
        /* `nil, err` from a failed call reads best as the error alone. */
        if ((type == LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, idx))) && i + 1 < n &&
            lcmc_lua_error_status(L, idx + 1, NULL))
            continue;
        int scalar = type != LUA_TTABLE;
        if (open_line)
            fputc(scalar ? '\t' : '\n', stdout);
        open_line = 0;
        if (lcmc_lua_error_status(L, idx, NULL)) {
            remember(L, idx);
            lcmc_show_error(repl, idx);
        } else if (lcmc_show_is_response(L, idx)) {
            remember(L, idx);
            show_response(repl, idx);
        } else if (type == LUA_TTABLE) {
            remember(L, idx);
            lcmc_show_json(L, idx, stdout, &style);
            fputc('\n', stdout);
        } else {
            if (type == LUA_TSTRING)
                remember(L, idx);
            size_t len = 0;
            const char *text = luaL_tolstring(L, idx, &len);
            size_t scheme = type == LUA_TSTRING ? credential_scheme(text, len) : 0;
            if (scheme > 0)
                fprintf(stdout, "%.*s <redacted>", (int)scheme, text);
            else
                lcmc_safe_write(stdout, text, len, LCMC_SAFE_KEEP_LINES);
            lua_pop(L, 1);
            open_line = 1;
        }
    }
    if (open_line)
        fputc('\n', stdout);
    fflush(stdout);
}

/* ---- trace ------------------------------------------------------------------------------ */

/* Of libcurl's own notes, those that tell an operator something about the exchange: which
 * address it reached, the proxy tunnel and its authentication (the user already redacted),
 * and what TLS it agreed on. The rest ("Found bundle for host", "Can not multiplex", "left
 * intact") is libcurl talking to itself. */
static int is_trace_note_kept(const char *line, size_t length)
{
    static const char *const kept[] = {"Connected to ", "Establish HTTP proxy tunnel to ",
                                       "Proxy auth using ", "SSL connection using ", NULL};
    for (const char *const *k = kept; *k != NULL; k++) {
        size_t n = strlen(*k);
        if (length >= n && memcmp(line, *k, n) == 0)
            return 1;
    }
    return 0;
}

/* One `*` line of the trace on stderr (made safe: it may hold an EM's words). */
static void trace_note(const lcmc_repl *repl, const char *text)
{
    lcmc_progress_clear();
    if (repl->colour_err)
        fputs(C_DIM, stderr);
    fputs("* ", stderr);
    lcmc_safe_write(stderr, text, strlen(text), LCMC_SAFE_ESCAPE_LINES);
    if (repl->colour_err)
        fputs(C_RESET, stderr);
    fputc('\n', stderr);
    fflush(stderr);
}

static void trace_seconds(double seconds, char *text, size_t size)
{
    if (seconds < 10)
        snprintf(text, size, "%.1f s", seconds < 0 ? 0.0 : seconds);
    else
        snprintf(text, size, "%.0f s", seconds);
}

void lcmc_show_trace_event(void *userdata, const lcmc_event *event)
{
    const lcmc_repl *repl = userdata;
    char text[512], wait[32], left[48] = "", status[32] = "", attempt[32] = "";
    if (event->type == LCMC_EVENT_RESPONSE) {
        const char *reason = lcmc_show_reason(event->status);
        snprintf(text, sizeof text, "%d%s%s in %.0f ms", event->status, reason[0] ? " " : "",
                 reason, event->elapsed * 1000.0);
        trace_note(repl, text);
        return;
    }
    if (event->type != LCMC_EVENT_WAIT && event->type != LCMC_EVENT_RETRY)
        return;
    /* A wait and why: the runtime's own word for the reason, the status or the attempt that
     * led to it, what comes after it and the time left before the deadline. */
    trace_seconds(event->wait, wait, sizeof wait);
    if (event->time_left >= 0) {
        char seconds[32];
        trace_seconds(event->time_left, seconds, sizeof seconds);
        snprintf(left, sizeof left, ", %s left", seconds);
    }
    if (event->status > 0)
        snprintf(status, sizeof status, ", %d", event->status);
    else if (event->attempt > 0)
        snprintf(attempt, sizeof attempt, ", attempt %d", event->attempt);
    const char *reason = event->reason != NULL ? event->reason : "?";
    if (event->reason != NULL && strcmp(event->reason, "post_answer") == 0)
        snprintf(text, sizeof text, "wait %s (%s) for the answer to the POST", wait, reason);
    else
        snprintf(text, sizeof text, "wait %s (%s%s%s%s), then %s%s%s", wait,
                 event->type == LCMC_EVENT_RETRY ? "retry: " : "", reason, status, attempt,
                 event->method != NULL ? event->method : "the next request",
                 event->type == LCMC_EVENT_RETRY ? " again" : "", left);
    trace_note(repl, text);
}

void lcmc_show_trace(void *userdata, lcmc_trace_kind kind, const char *data, size_t length)
{
    const lcmc_repl *repl = userdata;
    if (kind == LCMC_TRACE_INFO && !is_trace_note_kept(data, length))
        return;
    lcmc_progress_clear();
    const char *mark = kind == LCMC_TRACE_INFO ? "*"
                       : kind == LCMC_TRACE_REQUEST_HEADERS || kind == LCMC_TRACE_REQUEST_BODY
                           ? ">"
                           : "<";
    const char *colour = kind == LCMC_TRACE_INFO ? C_DIM
                         : kind == LCMC_TRACE_REQUEST_HEADERS || kind == LCMC_TRACE_REQUEST_BODY
                             ? C_KEY
                             : C_STRING;
    size_t start = 0;
    while (start < length) {
        size_t end = start;
        while (end < length && data[end] != '\n')
            end++;
        size_t stop = end;
        while (stop > start && data[stop - 1] == '\r')
            stop--;
        if (stop > start) {
            if (repl->colour_err)
                fputs(colour, stderr);
            fprintf(stderr, "%s ", mark);
            lcmc_safe_write(stderr, data + start, stop - start, LCMC_SAFE_ESCAPE_LINES);
            if (repl->colour_err)
                fputs(C_RESET, stderr);
            fputc('\n', stderr);
        }
        start = end + 1;
    }
    fflush(stderr);
}
