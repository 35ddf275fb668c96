/*
 * The option parser of the client subcommands (options.h): one loop over the command line
 * that knows the options they share and takes a table for each one's own, so that the same
 * option cannot drift apart between `run`, `coordinate` and `repl` in spelling, checks or
 * messages. Each mistake is one line naming the argument as given, the nearest real option
 * when it looks misspelt, and where the whole usage is: `(see lcmcoord run --help)`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "options.h"

int lcmc_host_value_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

/* Edit distance with adjacent transpositions (optimal string alignment), for the short
 * words of a command line: "--recrod" is one step from "--record". */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { LONGEST = 64 };
    if (la >= LONGEST || lb >= LONGEST)
        return (size_t)-1;
    size_t d[LONGEST][LONGEST];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *lcmc_host_nearest(const char *word, const char *const *names, size_t count)
{
    size_t length = strcspn(word, "="); /* "--recrod=x": the option's name only */
    const char *nearest = NULL;
    size_t nearest_distance = 3; /* two edits at most: further is a different word */
    for (size_t k = 0; k < count; k++) {
        size_t name_length = strlen(names[k]);
        size_t distance = edit_distance(word, length, names[k], name_length);
        size_t longer = length > name_length ? length : name_length;
        /* A change in every third letter or more leaves nothing of the word recognisable. */
        if (distance < nearest_distance && distance * 3 <= longer) {
            nearest = names[k];
            nearest_distance = distance;
        }
    }
    return nearest;
}

int lcmc_host_usage_error(const char *subcommand, const char *usage_line, const char *fmt,
                          const char *arg)
{
    (void)usage_line; /* the whole synopsis is too long for the one line: --help has it */
    fprintf(stderr, "lcmcoord %s: ", subcommand);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see lcmcoord %s --help)\n", subcommand);
    return LCMC_EXIT_USAGE;
}

static int usage_error(const lcmc_option_parser *parser, const char *fmt, const char *arg)
{
    return lcmc_host_usage_error(parser->subcommand, parser->usage_line, fmt, arg);
}

/* The options a parser takes, for suggesting one; -v and -h are too short to misspell. */
static const char *const shared_option_names[] = {
    "--help", "--verbose",    "--config",  "--print-config", "--cacert", "--capath",  "--cert",
    "--key",  "--log-format", "--timeout", "--endpoint",     "--auth",   "--version",
};

/* `unknown option '--recrod'; did you mean '--record'?` or without the question. */
static int unknown_option(const lcmc_option_parser *parser, const char *arg)
{
    const char *names[64];
    size_t count = 0;
    for (size_t k = 0; k < sizeof shared_option_names / sizeof shared_option_names[0]; k++) {
        const char *name = shared_option_names[k];
        int is_config = strcmp(name, "--config") == 0 || strcmp(name, "--print-config") == 0 ||
                        strcmp(name, "--cacert") == 0 || strcmp(name, "--capath") == 0 ||
                        strcmp(name, "--cert") == 0 || strcmp(name, "--key") == 0 ||
                        strcmp(name, "--log-format") == 0;
        if (strcmp(name, "--verbose") == 0 && parser->verbosity == NULL)
            continue;
        if (is_config && parser->config == NULL)
            continue;
        if (strcmp(name, "--timeout") == 0 && !parser->config_timeout)
            continue;
        if ((strcmp(name, "--endpoint") == 0 || strcmp(name, "--auth") == 0 ||
             strcmp(name, "--version") == 0) &&
            parser->client == NULL)
            continue;
        names[count++] = name;
    }
    for (const lcmc_option *option = parser->own;
         option != NULL && option->name != NULL && count < sizeof names / sizeof names[0]; option++)
        names[count++] = option->name;
    const char *nearest = lcmc_host_nearest(arg, names, count);
    if (nearest == NULL)
        return usage_error(parser, "unknown option '%s'", arg);
    fprintf(stderr,
            "lcmcoord %s: unknown option '%s'; did you mean '%s'? (see lcmcoord %s --help)\n",
            parser->subcommand, arg, nearest, parser->subcommand);
    return LCMC_EXIT_USAGE;
}

/* -v, -vv, ...: a dash and only v's. */
static int is_verbose_letters(const char *arg)
{
    return arg[0] == '-' && arg[1] == 'v' && strspn(arg + 1, "v") == strlen(arg + 1);
}

/* Where the value of a client option goes, or NULL when argv[*i] is none of them. */
static const char **client_option(lcmc_host_client_options *client, int argc, char **argv, int *i,
                                  const char **value)
{
    if (lcmc_host_value_option(argc, argv, i, "--endpoint", value))
        return &client->endpoint;
    if (lcmc_host_value_option(argc, argv, i, "--auth", value))
        return &client->auth_path;
    if (lcmc_host_value_option(argc, argv, i, "--version", value))
        return &client->version;
    return NULL;
}

/* Matches one of the subcommand's own options at argv[*i]. Returns 1 when it matched and
 * was fine, 0 when argv[*i] is none of them, else the exit status of the reported mistake. */
static int own_option(const lcmc_option_parser *parser, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    for (const lcmc_option *option = parser->own; option != NULL && option->name != NULL;
         option++) {
        if (option->kind == LCMC_OPTION_FLAG) {
            if (strcmp(arg, option->name) != 0)
                continue;
            *(int *)option->target = 1;
            return 1;
        }
        const char *value = NULL;
        if (!lcmc_host_value_option(argc, argv, i, option->name, &value))
            continue;
        if (option->kind == LCMC_OPTION_NUMBER) {
            char *end = NULL;
            double number = value != NULL ? strtod(value, &end) : 0;
            if (value == NULL || end == value || *end != '\0' || !(number > 0) ||
                number > option->max)
                return usage_error(parser, "option '%s' needs a positive number", arg);
            *(double *)option->target = number;
            return 1;
        }
        if (value == NULL || value[0] == '\0')
            return usage_error(parser, "option '%s' needs a value", arg);
        *(const char **)option->target = value;
        return 1;
    }
    return 0;
}

int lcmc_host_parse_options(const lcmc_option_parser *parser, int argc, char **argv, int *operand)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        if (parser->takes_operands) {
            if (strcmp(arg, "--") == 0) {
                i++;
                break;
            }
            if (arg[0] != '-' || arg[1] == '\0')
                break;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            parser->print_help();
            return 0;
        }
        if (parser->verbosity != NULL && strcmp(arg, "--verbose") == 0) {
            (*parser->verbosity)++;
            continue;
        }
        if (parser->verbosity != NULL && is_verbose_letters(arg)) {
            *parser->verbosity += (int)strlen(arg + 1);
            continue;
        }
        int matched = own_option(parser, argc, argv, &i);
        if (matched == 1)
            continue;
        if (matched != 0)
            return matched;
        matched = lcmc_host_config_option(parser->config, argc, argv, &i, parser->config_timeout);
        if (matched < 0)
            return usage_error(parser, "option '%s' needs a value", arg);
        if (matched > 0)
            continue;
        const char **slot =
            parser->client != NULL ? client_option(parser->client, argc, argv, &i, &value) : NULL;
        if (slot == NULL && arg[0] == '-')
            return unknown_option(parser, arg);
        if (slot == NULL)
            return usage_error(parser, "unexpected argument '%s'", arg);
        if (value == NULL || value[0] == '\0')
            return usage_error(parser, "option '%s' needs a value", arg);
        *slot = value;
    }
    if (operand != NULL)
        *operand = i;
    return -1;
}

int lcmc_host_settle_config(lcmc_host_config *config, const char *subcommand,
                            const char *usage_line)
{
    char prog[64];
    snprintf(prog, sizeof prog, "lcmcoord %s", subcommand);
    config->usage_line = usage_line;
    int rc = lcmc_host_config_resolve(config, prog);
    if (rc != 0)
        return rc;
    if (config->print) {
        lcmc_host_config_print(config, prog, stdout);
        return 0;
    }
    return -1;
}

int lcmc_host_parse_script_options(const lcmc_option_parser *parser, int argc, char **argv,
                                   const char **script)
{
    *script = NULL;
    int i = 0;
    int rc = lcmc_host_parse_options(parser, argc, argv, &i);
    if (rc >= 0)
        return rc;
    if (i >= argc && parser->config != NULL && parser->config->print)
        return -1;
    if (i >= argc)
        return lcmc_host_usage_error(parser->subcommand, parser->usage_line, "%s",
                                     "no script given");
    if (i + 1 < argc)
        return lcmc_host_usage_error(parser->subcommand, parser->usage_line,
                                     "unexpected argument '%s'", argv[i + 1]);
    *script = argv[i];
    return -1;
}
