/*
 * The option parser of the client subcommands (options.h): one loop over the command line
 * that knows the options they share and takes a table for each one's own, so that the same
 * option cannot drift apart between `run`, `coordinate` and `repl` in spelling, checks or
 * messages. Each mistake is one line naming the argument as given, with the usage line.
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

int lcmc_host_usage_error(const char *subcommand, const char *usage_line, const char *fmt,
                          const char *arg)
{
    fprintf(stderr, "lcmcoord %s: ", subcommand);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (%s)\n", usage_line);
    return LCMC_EXIT_USAGE;
}

static int usage_error(const lcmc_option_parser *parser, const char *fmt, const char *arg)
{
    return lcmc_host_usage_error(parser->subcommand, parser->usage_line, fmt, arg);
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
            return usage_error(parser, "unknown option '%s'", arg);
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
