/*
 * The API's data types as the client checks them: an LcmCoordRequest before it is sent
 * (so an operator's typo, or Tacker's placeholder action left in place, is named before the
 * EM sees it) and an LcmCoord when it arrives
 * (so a script never acts on a result it cannot trust). Checks name the offending field.
 * Also the one set of JSON rules (lcmcoord/json.h) every text the runtime reads and writes
 * follows, so that the Lua binding and C callers cannot disagree with the runtime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "json_text.h"
#include "lcmcoord/json.h"

/* What Tacker puts in coordinationActionName for the script to replace. */
#define LCMC_PLACEHOLDER_ACTION "should_be_set_by_script"

static const char *const operation_types[] = {
    "INSTANTIATE",
    "SCALE",
    "SCALE_TO_LEVEL",
    "CHANGE_FLAVOUR",
    "TERMINATE",
    "HEAL",
    "OPERATE",
    "CHANGE_EXT_CONN",
    "MODIFY_INFO",
    "CREATE_SNAPSHOT",
    "REVERT_TO_SNAPSHOT",
    "CHANGE_VNFPKG",
    NULL,
};

static int fail(char *why, size_t why_size, const char *fmt, const char *field)
{
    if (why && why_size)
        snprintf(why, why_size, fmt, field);
    return -1;
}

/* ---- the JSON rules ------------------------------------------------------------------- */

/* Refused duplicates (a second "authType" or "coordinationResult" would otherwise decide
 * which one counts, silently); any top-level value; no JSON_ALLOW_NUL; jansson refuses
 * invalid UTF-8, integers beyond json_int_t, NaN and nesting past its limit on its own. */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)
/* Compact, any top-level value, reals at jansson's default (17 significant digits, exact). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* What went wrong, in words that quote nothing of the text (jansson's own message does). */
static const char *parse_reason(const json_error_t *err)
{
    switch (json_error_code(err)) {
    case json_error_out_of_memory:
        return "out of memory";
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_premature_end_of_input:
        return "the text ends before the value does";
    case json_error_end_of_input_expected:
        return "more text after the value";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "a NUL character (\\u0000), which is not accepted";
    case json_error_duplicate_key:
        return "an object has the same key twice";
    case json_error_numeric_overflow:
        return "a number out of range (integers are 64-bit, reals IEEE doubles)";
    default:
        return "invalid JSON";
    }
}

/* Where the error is, as a person counts: lines and columns (characters) from 1. jansson
 * counts a line break as the start of the next line, at column 0: an error found at a line
 * break is then put at that break, the end of the line it ends, and the end of the text
 * after a last line break at column 1 of the empty line that follows. */
void lcmc__json_error_place(const char *text, size_t length, const json_error_t *err, int *line,
                            int *column)
{
    *line = err->line;
    *column = err->column;
    if (err->column > 0 || err->line < 2 || text == NULL) {
        /* Before the first character (an empty text, a bad first byte) is column 1 too. */
        if (*line < 1)
            *line = 1;
        if (*column < 1)
            *column = 1;
        return;
    }
    if (json_error_code(err) == json_error_premature_end_of_input) {
        *column = 1;
        return;
    }
    /* The line before: from after the (line - 2)th break to the (line - 1)th. */
    size_t start = 0, i = 0;
    int breaks = 0;
    for (; i < length && breaks < err->line - 1; i++)
        if (text[i] == '\n' && ++breaks < err->line - 1)
            start = i + 1;
    int characters = 0;
    for (size_t k = start; k < length && text[k] != '\n'; k++)
        if (((unsigned char)text[k] & 0xC0) != 0x80)
            characters++;
    *line = err->line - 1;
    *column = characters + 1;
}

json_t *lcmc_json_parse(const char *text, size_t length, char *why, size_t why_size)
{
    if (text == NULL) {
        if (why && why_size)
            snprintf(why, why_size, "no text");
        return NULL;
    }
    /* Texts parsed here hold secrets too (the VNFC parameters, authentication tables). */
    lcmc__json_wipe_on_free();
    /* Most texts are read by yajl into the value jansson would make; jansson reads (and
     * words the error of) the rest. */
    json_t *fast = lcmc__json_text_parse(text, length, LCMC_JSON_TEXT_ANY | LCMC_JSON_TEXT_SECRET);
    if (fast != NULL)
        return fast;
    /* jansson leaves err unset when an allocation fails on some paths: zeroed, that reads
     * as a message-less error, reported as out of memory. */
    json_error_t err;
    memset(&err, 0, sizeof err);
    json_t *value = json_loadb(text, length, LOAD_FLAGS, &err);
    if (value == NULL && why && why_size) {
        int line, column;
        lcmc__json_error_place(text, length, &err, &line, &column);
        if (err.text[0] == '\0')
            snprintf(why, why_size, "out of memory");
        else if (json_error_code(&err) == json_error_stack_overflow)
            snprintf(why, why_size,
                     "arrays and objects nested deeper than %d at line %d, column %d",
                     LCMC_JSON_MAX_DEPTH, line, column);
        else
            snprintf(why, why_size, "%s at line %d, column %d", parse_reason(&err), line, column);
    }
    return value;
}

char *lcmc_json_dump(const json_t *value, size_t *length)
{
    if (value == NULL) {
        if (length)
            *length = 0;
        return NULL;
    }
    /* yajl writes json_dumps's bytes at a third of its cost; json_dumps decides the rest. */
    size_t n = 0;
    char *text = lcmc__json_text_dump(value, &n, LCMC_JSON_TEXT_SECRET);
    if (text == NULL) {
        text = json_dumps(value, DUMP_FLAGS);
        n = text ? strlen(text) : 0;
    }
    if (length)
        *length = n;
    return text;
}

/* ---- the API's types -------------------------------------------------------------------- */

int lcmc_operation_type_is_valid(const char *value)
{
    if (value == NULL)
        return 0;
    for (const char *const *t = operation_types; *t; t++)
        if (strcmp(*t, value) == 0)
            return 1;
    return 0;
}

static int check_string(const json_t *object, const char *field, const char *name, char *why,
                        size_t why_size)
{
    json_t *value = json_object_get(object, field);
    if (value == NULL || json_is_null(value))
        return fail(why, why_size, "%s is missing", name);
    if (!json_is_string(value))
        return fail(why, why_size, "%s must be a string", name);
    if (json_string_length(value) == 0)
        return fail(why, why_size, "%s must not be empty", name);
    return 0;
}

static int check_link(const json_t *links, const char *field, char *why, size_t why_size)
{
    char name[64];
    snprintf(name, sizeof name, "_links.%s", field);
    json_t *link = json_object_get(links, field);
    if (link == NULL)
        return fail(why, why_size, "%s is missing", name);
    if (!json_is_object(link))
        return fail(why, why_size, "%s must be an object with href", name);
    snprintf(name, sizeof name, "_links.%s.href", field);
    return check_string(link, "href", name, why, why_size);
}

int lcmc__validate_request(const json_t *request, char *why, size_t why_size)
{
    if (!json_is_object(request))
        return fail(why, why_size, "%s", "the LcmCoordRequest must be a JSON object");
    if (check_string(request, "vnfInstanceId", "vnfInstanceId", why, why_size) ||
        check_string(request, "vnfLcmOpOccId", "vnfLcmOpOccId", why, why_size) ||
        check_string(request, "lcmOperationType", "lcmOperationType", why, why_size) ||
        check_string(request, "coordinationActionName", "coordinationActionName", why, why_size))
        return -1;
    /* Tacker sends this placeholder for the script to replace; a script that misspells the
     * field would otherwise send it to the EM as if it were an action. */
    const char *action = json_string_value(json_object_get(request, "coordinationActionName"));
    if (strcmp(action, LCMC_PLACEHOLDER_ACTION) == 0)
        return fail(why, why_size,
                    "coordinationActionName is still Tacker's placeholder '%s': the script must "
                    "set it to one of the coordination actions the VNFD declares",
                    LCMC_PLACEHOLDER_ACTION);
    const char *type = json_string_value(json_object_get(request, "lcmOperationType"));
    if (!lcmc_operation_type_is_valid(type)) {
        if (why && why_size)
            snprintf(why, why_size,
                     "lcmOperationType: '%.40s' is not one of INSTANTIATE, SCALE, "
                     "SCALE_TO_LEVEL, CHANGE_FLAVOUR, TERMINATE, HEAL, OPERATE, "
                     "CHANGE_EXT_CONN, MODIFY_INFO, CREATE_SNAPSHOT, REVERT_TO_SNAPSHOT, "
                     "CHANGE_VNFPKG",
                     type);
        return -1;
    }
    json_t *input = json_object_get(request, "inputParams");
    if (input && !json_is_object(input) && !json_is_null(input))
        return fail(why, why_size, "%s must be an object", "inputParams");
    json_t *links = json_object_get(request, "_links");
    if (links == NULL)
        return fail(why, why_size, "%s is missing", "_links");
    if (!json_is_object(links))
        return fail(why, why_size, "%s must be an object", "_links");
    if (check_link(links, "vnfLcmOpOcc", why, why_size) ||
        check_link(links, "vnfInstance", why, why_size))
        return -1;
    return 0;
}

const char *lcmc__request_unknown_field(const json_t *request)
{
    static const char *const known[] = {
        "vnfInstanceId",
        "vnfLcmOpOccId",
        "lcmOperationType",
        "coordinationActionName",
        "inputParams",
        "_links",
        NULL,
    };
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)request, key, value)
    {
        const char *const *k = known;
        while (*k != NULL && strcmp(*k, key) != 0)
            k++;
        if (*k == NULL)
            return key;
    }
    return NULL;
}

int lcmc__validate_lcmcoord(const json_t *lcmcoord, lcmc_result *result, char *why, size_t why_size)
{
    *result = LCMC_RESULT_NONE;
    if (!json_is_object(lcmcoord))
        return fail(why, why_size, "%s", "the LcmCoord is not a JSON object");
    json_t *id = json_object_get(lcmcoord, "id");
    if (id == NULL)
        return fail(why, why_size, "%s", "the LcmCoord has no id");
    if (!json_is_string(id) || json_string_length(id) == 0)
        return fail(why, why_size, "%s", "the LcmCoord's id is not a non-empty string");
    json_t *value = json_object_get(lcmcoord, "coordinationResult");
    if (value == NULL)
        return fail(why, why_size, "%s", "the LcmCoord has no coordinationResult");
    if (!json_is_string(value))
        return fail(why, why_size, "%s", "the LcmCoord's coordinationResult is not a string");
    lcmc_result parsed = lcmc__result_from_name(json_string_value(value));
    if (parsed == LCMC_RESULT_NONE) {
        char *shown = lcmc__one_line(json_string_value(value), json_string_length(value), 40);
        if (why && why_size)
            snprintf(why, why_size,
                     "the LcmCoord's coordinationResult '%s' is not CONTINUE, ABORT or "
                     "CANCELLED",
                     shown ? shown : "?");
        free(shown);
        return -1;
    }
    /* warnings is 0..N strings in the text but a single string in the generated OpenAPI
     * code: both shapes are accepted, anything else is not. */
    json_t *warnings = json_object_get(lcmcoord, "warnings");
    if (warnings && !json_is_null(warnings) && !json_is_string(warnings)) {
        if (!json_is_array(warnings))
            return fail(why, why_size, "%s", "the LcmCoord's warnings is not a string or list");
        size_t i;
        json_t *w;
        json_array_foreach(warnings, i, w)
        {
            if (!json_is_string(w))
                return fail(why, why_size, "%s", "the LcmCoord's warnings list holds a non-string");
        }
    }
    json_t *output = json_object_get(lcmcoord, "outputParams");
    if (output && !json_is_null(output) && !json_is_object(output))
        return fail(why, why_size, "%s", "the LcmCoord's outputParams is not an object");
    json_t *error = json_object_get(lcmcoord, "error");
    if (error && !json_is_null(error) && !json_is_object(error))
        return fail(why, why_size, "%s", "the LcmCoord's error is not a ProblemDetails object");
    *result = parsed;
    return 0;
}
