/*
 * The configuration of the client subcommands (config.h): one table of settings, each with
 * its name in the file, its environment variable and its flag, so that reading, overriding,
 * validating and printing them cannot drift apart. A value is checked where it is read, and a
 * bad one names its place (`file:line`, the variable, or the flag): a VNFM host whose file
 * has a typo must learn it from the first run, not from a coordination that behaves oddly.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "host.h"
#include "options.h"
#include "run_io.h"

/* A configuration file is a few hundred bytes; this only stops a wrong path (a device, a
 * log file) from being read whole. */
#define CONFIG_CAP ((size_t)1024 * 1024)

typedef enum setting_kind { KIND_PATH, KIND_SECRET, KIND_SECONDS, KIND_FORMAT } setting_kind;

typedef struct setting {
    const char *name; /* section.key */
    const char *env;
    const char *flag; /* NULL: none */
    setting_kind kind;
    const char *builtin; /* what applies when nothing sets it, for --print-config */
} setting;

static const setting settings[LCMC_CONF_COUNT] = {
    [LCMC_CONF_CACERT] = {"tls.cacert", "LCMCOORD_CACERT", "--cacert", KIND_PATH,
                          "(not set: the system's CA store)"},
    [LCMC_CONF_CAPATH] = {"tls.capath", "LCMCOORD_CAPATH", "--capath", KIND_PATH, "(not set)"},
    [LCMC_CONF_CERT] = {"tls.cert", "LCMCOORD_CERT", "--cert", KIND_PATH, "(not set)"},
    [LCMC_CONF_KEY] = {"tls.key", "LCMCOORD_KEY", "--key", KIND_PATH, "(not set)"},
    [LCMC_CONF_KEY_PASSWORD] = {"tls.key_password", "LCMCOORD_KEY_PASSWORD", NULL, KIND_SECRET,
                                "(not set)"},
    [LCMC_CONF_TIMEOUT] = {"client.timeout", "LCMCOORD_TIMEOUT", "--timeout", KIND_SECONDS, "3600"},
    [LCMC_CONF_WAIT_FLOOR] = {"client.wait_floor", "LCMCOORD_WAIT_FLOOR", NULL, KIND_SECONDS, "1"},
    [LCMC_CONF_DEFAULT_INTERVAL] = {"client.default_interval", "LCMCOORD_DEFAULT_INTERVAL", NULL,
                                    KIND_SECONDS, "5"},
    [LCMC_CONF_LOG_FORMAT] = {"log.format", "LCMCOORD_LOG_FORMAT", "--log-format", KIND_FORMAT,
                              "text"},
};

static const char *const sections[] = {"tls", "client", "log", NULL};

/* ---- options --------------------------------------------------------------------------- */

int lcmc_host_config_option(lcmc_host_config *config, int argc, char **argv, int *i,
                            int with_timeout)
{
    const char *value = NULL;
    if (strcmp(argv[*i], "--print-config") == 0) {
        config->print = 1;
        return 1;
    }
    if (lcmc_host_value_option(argc, argv, i, "--config", &value)) {
        config->config_flag = value;
        return value != NULL && value[0] != '\0' ? 1 : -1;
    }
    for (int k = 0; k < LCMC_CONF_COUNT; k++) {
        const char *flag = settings[k].flag;
        if (flag == NULL || (k == LCMC_CONF_TIMEOUT && !with_timeout))
            continue;
        if (lcmc_host_value_option(argc, argv, i, flag, &value)) {
            config->flags[k] = value;
            return value != NULL && value[0] != '\0' ? 1 : -1;
        }
    }
    return 0;
}

/* ---- values ---------------------------------------------------------------------------- */

/* NULL when `value` suits the setting, else why not (a static string). */
static const char *check_value(setting_kind kind, const char *value)
{
    if (kind == KIND_SECONDS) {
        char *end = NULL;
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end != '\0' || errno != 0 || !isfinite(v) || !(v > 0))
            return "needs a positive number of seconds";
    } else if (kind == KIND_FORMAT) {
        if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0)
            return "needs text or json";
    }
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* A relative file name in the file is taken from the file's directory, so a configuration
 * and its certificates can move together. */
static char *file_relative(const char *config_path, const char *value)
{
    const char *slash = strrchr(config_path, '/');
    if (value[0] == '/' || slash == NULL)
        return strdup(value);
    size_t dir = (size_t)(slash - config_path) + 1;
    size_t n = strlen(value);
    char *out = malloc(dir + n + 1);
    if (out != NULL) {
        memcpy(out, config_path, dir);
        memcpy(out + dir, value, n + 1);
    }
    return out;
}

static int find_setting(const char *name)
{
    for (int k = 0; k < LCMC_CONF_COUNT; k++)
        if (strcmp(settings[k].name, name) == 0)
            return k;
    return -1;
}

static int known_section(const char *name)
{
    for (const char *const *s = sections; *s != NULL; s++)
        if (strcmp(*s, name) == 0)
            return 1;
    return 0;
}

/* One `key = value` line of section `section` ("" before any header). Returns 0, or -1 with
 * the message (without the place) in `error`. */
static int parse_assignment(lcmc_host_config *config, const char *path, const char *section,
                            char *line, unsigned number, char *error, size_t error_size)
{
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        snprintf(error, error_size, "expected 'key = value' or '[section]'");
        return -1;
    }
    *eq = '\0';
    char *key = trim(line);
    char *value = trim(eq + 1);
    char name[96];
    if (strchr(key, '.') != NULL || section[0] == '\0')
        snprintf(name, sizeof name, "%s", key);
    else
        snprintf(name, sizeof name, "%s.%s", section, key);
    int k = find_setting(name);
    if (k < 0) {
        if (section[0] == '\0' && strchr(key, '.') == NULL)
            snprintf(error, error_size,
                     "'%.60s' is outside a section: put it under [tls], [client] or [log], or "
                     "write section.key",
                     key);
        else
            snprintf(error, error_size, "unknown setting '%.80s'", name);
        return -1;
    }
    if (value[0] == '\0') {
        snprintf(error, error_size, "%s has no value", name);
        return -1;
    }
    if (config->values[k].origin == LCMC_FROM_FILE) {
        snprintf(error, error_size, "%s is already set on line %u", name, config->values[k].line);
        return -1;
    }
    const char *why = check_value(settings[k].kind, value);
    if (why != NULL) {
        snprintf(error, error_size, "%s %s, not '%.60s'", name, why, value);
        return -1;
    }
    char *copy = settings[k].kind == KIND_PATH ? file_relative(path, value) : strdup(value);
    if (copy == NULL) {
        snprintf(error, error_size, "not enough memory");
        return -1;
    }
    free(config->owned[k]);
    config->owned[k] = copy;
    config->values[k].value = copy;
    config->values[k].origin = LCMC_FROM_FILE;
    config->values[k].line = number;
    return 0;
}

int lcmc_host_config_parse(lcmc_host_config *config, const char *path, const char *text,
                           char *error, size_t error_size)
{
    char section[32] = "";
    unsigned number = 0;
    const char *p = text;
    while (*p != '\0') {
        number++;
        size_t n = strcspn(p, "\n");
        char *line = strndup(p, n);
        if (line == NULL) {
            snprintf(error, error_size, "%s: not enough memory", path);
            return -1;
        }
        p += n + (p[n] == '\n');
        /* `#` starts a comment at the start of a line or after a blank, so that a file name
         * may still hold one. */
        for (char *c = line; *c != '\0'; c++)
            if (*c == '#' && (c == line || c[-1] == ' ' || c[-1] == '\t')) {
                *c = '\0';
                break;
            }
        char *body = trim(line);
        char message[256];
        int failed = 0;
        if (body[0] == '\0') {
            /* blank or comment */
        } else if (body[0] == '[') {
            size_t len = strlen(body);
            if (body[len - 1] != ']') {
                snprintf(message, sizeof message, "a section header ends with ']'");
                failed = 1;
            } else {
                body[len - 1] = '\0';
                char *name = trim(body + 1);
                if (!known_section(name)) {
                    snprintf(message, sizeof message,
                             "unknown section [%.40s] (known: [tls], [client], [log])", name);
                    failed = 1;
                } else {
                    snprintf(section, sizeof section, "%s", name);
                }
            }
        } else {
            failed =
                parse_assignment(config, path, section, body, number, message, sizeof message) != 0;
        }
        free(line);
        if (failed) {
            snprintf(error, error_size, "%s:%u: %s", path, number, message);
            return -1;
        }
    }
    return 0;
}

/* ---- resolution ------------------------------------------------------------------------ */

static const char *nonempty_env(const char *name)
{
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

/* Reads the file named by --config, LCMCOORD_CONFIG or the default. 0, or reports. */
static int read_file(lcmc_host_config *config, const char *prog)
{
    const char *path = config->config_flag;
    config->path_why = "--config";
    if (path == NULL && (path = nonempty_env("LCMCOORD_CONFIG")) != NULL)
        config->path_why = "LCMCOORD_CONFIG";
    int optional = path == NULL;
    if (optional) {
        path = LCMCOORD_DEFAULT_CONFIG;
        config->path_why = "default";
    }
    FILE *in = fopen(path, "rb");
    if (in == NULL && optional && errno == ENOENT) {
        config->path_why = "default, not present";
        return 0;
    }
    size_t length = 0;
    char *text = in != NULL ? lcmc_read_all(in, CONFIG_CAP, &length) : NULL;
    int saved_errno = errno;
    if (in != NULL)
        fclose(in);
    if (text == NULL) {
        fprintf(stderr, "%s: cannot read the configuration file %s: %s\n", prog, path,
                strerror(saved_errno));
        return -1;
    }
    if (memchr(text, '\0', length) != NULL) {
        fprintf(stderr, "%s: %s: not a text file\n", prog, path);
        free(text);
        return -1;
    }
    config->path = strdup(path);
    char error[512];
    int rc = config->path != NULL ? lcmc_host_config_parse(config, path, text, error, sizeof error)
                                  : (snprintf(error, sizeof error, "not enough memory"), -1);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "%s\n", error);
        return -1;
    }
    return 0;
}

int lcmc_host_config_resolve(lcmc_host_config *config, const char *prog)
{
    if (read_file(config, prog) != 0)
        return LCMC_EXIT_USAGE;
    for (int k = 0; k < LCMC_CONF_COUNT; k++) {
        const setting *s = &settings[k];
        const char *value = nonempty_env(s->env);
        lcmc_config_origin origin = LCMC_FROM_ENV;
        const char *place = s->env;
        if (config->flags[k] != NULL) {
            value = config->flags[k];
            origin = LCMC_FROM_FLAG;
            place = s->flag;
        }
        if (value == NULL)
            continue;
        const char *why = check_value(s->kind, value);
        if (why != NULL) {
            fprintf(stderr, "%s: %s %s, not '%s'", prog, place, why, value);
            if (origin == LCMC_FROM_FLAG && config->usage_line != NULL)
                fprintf(stderr, " (see %s --help)", prog);
            fputc('\n', stderr);
            return LCMC_EXIT_USAGE;
        }
        config->values[k].value = value;
        config->values[k].origin = origin;
    }
    return 0;
}

/* ---- use ------------------------------------------------------------------------------- */

void lcmc_host_config_print(const lcmc_host_config *config, const char *prog, FILE *out)
{
    fprintf(out, "# %s: effective configuration (flags > environment > file > defaults)\n", prog);
    if (config->path != NULL)
        fprintf(out, "# configuration file: %s (%s)\n", config->path, config->path_why);
    else
        fprintf(out, "# configuration file: none (%s %s)\n", LCMCOORD_DEFAULT_CONFIG,
                config->path_why != NULL ? config->path_why : "not read");
    for (int k = 0; k < LCMC_CONF_COUNT; k++) {
        const setting *s = &settings[k];
        const lcmc_config_value *v = &config->values[k];
        if (v->value == NULL) {
            fprintf(out, "%s = %s  # default\n", s->name, s->builtin);
            continue;
        }
        const char *shown = s->kind == KIND_SECRET ? "<set>" : v->value;
        switch (v->origin) {
        case LCMC_FROM_FILE:
            fprintf(out, "%s = %s  # file %s:%u\n", s->name, shown, config->path, v->line);
            break;
        case LCMC_FROM_ENV:
            fprintf(out, "%s = %s  # environment %s\n", s->name, shown, s->env);
            break;
        case LCMC_FROM_FLAG:
            fprintf(out, "%s = %s  # flag %s\n", s->name, shown, s->flag);
            break;
        case LCMC_FROM_DEFAULT:
            fprintf(out, "%s = %s  # default\n", s->name, shown);
            break;
        }
    }
}

void lcmc_host_config_tls(const lcmc_host_config *config, lcmc_tls_options *tls)
{
    memset(tls, 0, sizeof *tls);
    tls->cacert = config->values[LCMC_CONF_CACERT].value;
    tls->capath = config->values[LCMC_CONF_CAPATH].value;
    tls->cert = config->values[LCMC_CONF_CERT].value;
    tls->key = config->values[LCMC_CONF_KEY].value;
    tls->key_password = config->values[LCMC_CONF_KEY_PASSWORD].value;
}

double lcmc_host_config_number(const lcmc_host_config *config, lcmc_config_key key)
{
    const char *value = config->values[key].value;
    return value != NULL ? strtod(value, NULL) : 0;
}

int lcmc_host_config_json_logs(const lcmc_host_config *config)
{
    const char *value = config->values[LCMC_CONF_LOG_FORMAT].value;
    return value != NULL && strcmp(value, "json") == 0;
}

/* Overwrites a passphrase before its memory goes back to the allocator; volatile so that the
 * stores are not dropped as dead. */
static void wipe(char *s)
{
    for (volatile char *p = s; *p != '\0'; p++)
        *p = 0;
}

void lcmc_host_config_free(lcmc_host_config *config)
{
    for (int k = 0; k < LCMC_CONF_COUNT; k++) {
        if (config->owned[k] != NULL && settings[k].kind == KIND_SECRET)
            wipe(config->owned[k]);
        free(config->owned[k]);
        config->owned[k] = NULL;
    }
    free(config->path);
    config->path = NULL;
}
