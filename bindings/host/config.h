/*
 * The settings `lcmcoord run`, `coordinate` and `repl` share, and where each comes from: a
 * configuration file (/etc/lcmcoord/lcmcoord.conf, LCMCOORD_CONFIG or --config), the
 * environment and the command line, in that order of strength, over built-in defaults. A VNFM
 * host sets TLS files and timing defaults once in the file instead of in every script or
 * every command line; `--print-config` shows the result with its origins, secrets redacted.
 * The file format is a few lines of `key = value` with `#` comments and `[section]`s: small
 * enough that a parser of our own is shorter than adapting a library to it (the reasoning is
 * in docs/operator-guide.md; the format in lcmcoord(1) and scripts/lcmcoord.conf.example).
 */
#ifndef LCMCOORD_HOST_CONFIG_H
#define LCMCOORD_HOST_CONFIG_H

#include <stdio.h>

#include "lcmcoord/lcmcoord.h"

/* The file read when neither --config nor LCMCOORD_CONFIG names one. Missing is fine. */
#ifndef LCMCOORD_DEFAULT_CONFIG
#define LCMCOORD_DEFAULT_CONFIG "/etc/lcmcoord/lcmcoord.conf"
#endif

typedef enum lcmc_config_key {
    LCMC_CONF_CACERT = 0,
    LCMC_CONF_CAPATH,
    LCMC_CONF_CERT,
    LCMC_CONF_KEY,
    LCMC_CONF_KEY_PASSWORD, /* never from a flag: `ps` would show it */
    LCMC_CONF_TIMEOUT,
    LCMC_CONF_WAIT_FLOOR,
    LCMC_CONF_DEFAULT_INTERVAL,
    LCMC_CONF_LOG_FORMAT,
    LCMC_CONF_COUNT
} lcmc_config_key;

typedef enum lcmc_config_origin {
    LCMC_FROM_DEFAULT = 0,
    LCMC_FROM_FILE,
    LCMC_FROM_ENV,
    LCMC_FROM_FLAG,
} lcmc_config_origin;

typedef struct lcmc_config_value {
    const char *value; /* NULL: not set (the built-in default applies) */
    lcmc_config_origin origin;
    unsigned line; /* in the file, when it came from there */
} lcmc_config_value;

typedef struct lcmc_host_config {
    /* Filled by the option parser (lcmc_host_config_option). */
    const char *flags[LCMC_CONF_COUNT];
    const char *config_flag; /* --config FILE */
    int print;               /* --print-config */
    const char *usage_line;  /* added to the report of a bad flag value, when set */
    /* Filled by lcmc_host_config_resolve. */
    char *path; /* the file read, or NULL when none was */
    const char *path_why;
    lcmc_config_value values[LCMC_CONF_COUNT];
    char *owned[LCMC_CONF_COUNT]; /* the file's strings */
} lcmc_host_config;

/* Matches one of the configuration options at argv[*i] (--config, --print-config,
 * --log-format, --cacert, --capath, --cert, --key; --timeout when `with_timeout`), advancing
 * *i past its value. Returns 1 on a match, 0 when argv[*i] is none of them, -1 when the option
 * lacks its value. */
int lcmc_host_config_option(lcmc_host_config *config, int argc, char **argv, int *i,
                            int with_timeout);

/* Reads the file, the environment and the flags. On an error prints "prog: ..." (or
 * "file:line: message" for the file) on stderr and returns 2 (LCMC_EXIT_USAGE); 0 otherwise. */
int lcmc_host_config_resolve(lcmc_host_config *config, const char *prog);

/* Parses configuration text as if read from `path` (relative file names in it are taken
 * from path's directory) into config->values. Returns 0, or -1 with "path:line: message"
 * in `error`. For lcmc_host_config_resolve and the unit tests. */
int lcmc_host_config_parse(lcmc_host_config *config, const char *path, const char *text,
                           char *error, size_t error_size);

/* Writes the effective settings, one `name = value  # origin` line each; the key
 * passphrase shows as <set>. */
void lcmc_host_config_print(const lcmc_host_config *config, const char *prog, FILE *out);

/* The TLS settings (borrowed strings, valid until lcmc_host_config_free). */
void lcmc_host_config_tls(const lcmc_host_config *config, lcmc_tls_options *tls);
/* A number setting (timeout, wait_floor, default_interval), or 0 when not set. */
double lcmc_host_config_number(const lcmc_host_config *config, lcmc_config_key key);
/* 1 when the log format is json. */
int lcmc_host_config_json_logs(const lcmc_host_config *config);

void lcmc_host_config_free(lcmc_host_config *config);

#endif
