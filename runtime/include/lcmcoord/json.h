/*
 * Structured entry points of liblcmcoord, for callers that hold JSON as jansson values rather
 * than text (the Lua binding, C programs that build requests with jansson). Optional: the
 * text API of lcmcoord.h stays complete; include this header (and link jansson) only to skip
 * the text in between. Every JSON text the runtime reads, whichever way it came, follows the
 * rules below, so a value accepted here is one the runtime would have accepted as text and
 * the other way round:
 *  - duplicate object keys, NUL (\u0000, in strings and keys), invalid UTF-8, NaN and the
 *    infinities are refused;
 *  - integers are 64-bit (json_int_t) and stay integers; an integer beyond that range is
 *    refused, never rounded into a real; reals are IEEE doubles, written with 17 significant
 *    digits, so that they read back as the same double;
 *  - containers nest at most LCMC_JSON_MAX_DEPTH deep (jansson's parser limit).
 * Values handed in are borrowed (never modified, never kept after the call returns); values
 * handed out are borrowed from the object they were read from, valid until it is freed,
 * unless the comment says the caller owns them (json_decref).
 */
#ifndef LCMCOORD_JSON_H
#define LCMCOORD_JSON_H

#include <jansson.h>

#include "lcmcoord/lcmcoord.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The deepest nesting of arrays and objects accepted (a top-level [] is depth 1). */
#define LCMC_JSON_MAX_DEPTH JSON_PARSER_MAX_DEPTH

/* Parses text under the runtime's rules; any JSON value (not only objects) is accepted. On
 * failure returns NULL and writes a one-line reason with the line and column to `why` (e.g.
 * "duplicate object key at line 1, column 12"): never a piece of the text, which may hold
 * secrets. The caller owns the value. */
LCMC_API json_t *lcmc_json_parse(const char *text, size_t length, char *why, size_t why_size);
/* The text of a value as the runtime sends it (compact, keys in insertion order, reals with
 * 17 significant digits: 0.1 is written 0.10000000000000001, the same double). NULL when out
 * of memory. Free with lcmc_free; *length (may be NULL) receives its length. */
LCMC_API char *lcmc_json_dump(const json_t *value, size_t *length);

/* lcmc_coordination_start with the LcmCoordRequest as a value: validated as the text would
 * be, then written once as the body (the same bytes on every resend). */
LCMC_API lcmc_status lcmc_coordination_start_value(lcmc_coordination **out, lcmc_client *client,
                                                   const json_t *request, double timeout);
/* lcmc_client_coordinate with the LcmCoordRequest as a value. */
LCMC_API lcmc_status lcmc_client_coordinate_value(lcmc_client *client, const json_t *request,
                                                  double timeout, lcmc_coordination **out);
/* The LcmCoord as parsed when it arrived (an object), or NULL when none was accepted. */
LCMC_API const json_t *lcmc_coordination_lcmcoord_value(const lcmc_coordination *coord);
/* The ProblemDetails of the answer that failed (an object), or NULL. */
LCMC_API const json_t *lcmc_error_problem_value(const lcmc_error *err);

/* lcmc_client_request with a body given as a value (NULL: no body); sent as
 * application/json. */
LCMC_API lcmc_status lcmc_client_request_value(lcmc_client *client, const char *method,
                                               const char *target, const json_t *body,
                                               double timeout, lcmc_response **out);
/* The answer's body parsed under the rules above, the first time it is asked for, or NULL
 * when there is no body or it is not JSON (whatever the Content-Type says). */
LCMC_API const json_t *lcmc_response_body_value(const lcmc_response *response);

/* The records of lcmc_client_record_json and lcmc_engine_record_json as values; the caller
 * owns *out. */
LCMC_API lcmc_status lcmc_client_record_value(const lcmc_client *client, json_t **out);
LCMC_API lcmc_status lcmc_engine_record_value(const lcmc_engine *engine, json_t **out);

#ifdef __cplusplus
}
#endif

#endif
