/*
 * The command-line parser `lcmcoord run`, `coordinate` and `repl` share (options.c), so that
 * an option common to them (the configuration and TLS options, -v, --timeout, --endpoint,
 * --auth, --version) is spelt, checked and reported the same way in each: `--name VALUE` and
 * `--name=VALUE`, one usage line on a mistake, exit status 2. A subcommand describes what it
 * takes (a parser: which shared groups, plus a table of its own options) and keeps only the
 * checks that involve several options together.
 */
#ifndef LCMCOORD_HOST_OPTIONS_H
#define LCMCOORD_HOST_OPTIONS_H

#include <stddef.h>

#include "config.h"

struct lcmc_host_client_options; /* host.h */

/* Matches `--name VALUE` and `--name=VALUE` at argv[*i]; advances *i past what it used.
 * Returns 1 on a match (the value in *value, NULL when missing), 0 otherwise. */
int lcmc_host_value_option(int argc, char **argv, int *i, const char *name, const char **value);

/* Reports a usage mistake of `lcmcoord SUBCOMMAND` as one line ("lcmcoord run: unknown
 * option '--x' (see lcmcoord run --help)") and returns the usage exit status. fmt takes one
 * %s. usage_line is no longer printed (the synopsis is too long for one line). */
int lcmc_host_usage_error(const char *subcommand, const char *usage_line, const char *fmt,
                          const char *arg);

/* The one of `names` that `word` (up to a '=') most likely misspells: at most two edits
 * (a transposition counting one) and fewer than a third of its letters; NULL when none. */
const char *lcmc_host_nearest(const char *word, const char *const *names, size_t count);

typedef enum lcmc_option_kind {
    LCMC_OPTION_VALUE,  /* --name VALUE: a non-empty string, into a const char * */
    LCMC_OPTION_FLAG,   /* --name: sets an int to 1 */
    LCMC_OPTION_NUMBER, /* --name N: a number in (0, max], into a double */
} lcmc_option_kind;

/* One option of a subcommand's own. */
typedef struct lcmc_option {
    const char *name; /* "--record"; NULL ends a table */
    lcmc_option_kind kind;
    void *target; /* const char ** (VALUE), int * (FLAG) or double * (NUMBER) */
    double max;   /* NUMBER: the largest value taken */
} lcmc_option;

/* What a subcommand takes. The groups set to NULL are not taken (their options are then
 * unknown options to it). */
typedef struct lcmc_option_parser {
    const char *subcommand; /* "run": the messages start "lcmcoord run: " */
    const char *usage_line;
    void (*print_help)(void); /* -h, --help */
    /* 1: the options end at the first argument that is not one (or "-") or after "--",
     * the rest being the subcommand's operands (run's SCRIPT); 0: no operands at all. */
    int takes_operands;
    int *verbosity;           /* -v, -vv..., --verbose (each adds one) */
    lcmc_host_config *config; /* --config, --print-config, --log-format and the TLS files */
    int config_timeout;       /* ... and --timeout */
    struct lcmc_host_client_options *client; /* --endpoint, --auth, --version */
    const lcmc_option *own;                  /* the subcommand's own options, or NULL */
} lcmc_option_parser;

/* Parses argv[1..]. Returns -1 when the options are fine, with *operand (when not NULL)
 * the index of the first operand (argc when none); otherwise the exit status to return at
 * once: 0 after printing the help, LCMC_EXIT_USAGE after reporting a mistake on one line. */
int lcmc_host_parse_options(const lcmc_option_parser *parser, int argc, char **argv, int *operand);

/* lcmc_host_parse_options for a subcommand whose one operand is the script (run, check):
 * -1 with *script set when the options are fine (NULL under --print-config with no script
 * given), else the exit status to return, a missing or extra operand reported as a usage
 * error. */
int lcmc_host_parse_script_options(const lcmc_option_parser *parser, int argc, char **argv,
                                   const char **script);

/* Once the options are parsed: reads the configuration (file, environment, the flags), its
 * errors reported as `lcmcoord SUBCOMMAND: ...`, and serves --print-config. Returns -1 to go on,
 * else the exit status to return (0 after the settings were printed, 2 on a bad setting, reported).
 * The caller frees the configuration (lcmc_host_config_free) either way. */
int lcmc_host_settle_config(lcmc_host_config *config, const char *subcommand,
                            const char *usage_line);

#endif
