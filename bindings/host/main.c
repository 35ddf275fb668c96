/*
 * Entry point of the `lcmcoord` program: global flags (--help, --version), `lcmcoord help
 * [SUBCOMMAND]` and the choice of subcommand. Everything else lives in the subcommand's own
 * file; `em` is another program, lcmcoord-em, that em_exec.c runs in this one's place.
 * A misspelt subcommand or flag is one line that suggests the nearest real one.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <lua.h>

#include "options.h"
#include "subcommands.h"

#ifndef LCMCOORD_VERSION
#define LCMCOORD_VERSION "unknown"
#endif

static const char usage_line[] = "usage: lcmcoord [--help] [--version] SUBCOMMAND [args...]\n";

/* The subcommands, in the order the help lists them: a new one is one line here (its
 * `main` declared in subcommands.h), and `help`, did-you-mean and dispatch follow. */
typedef struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary; /* the help's lines after the name, already indented */
} subcommand;

static const subcommand subcommands[] = {
    {"run", lcmc_run_main, "run a CoordinateVNF script; its parameters are JSON on stdin\n"},
    {"coordinate", lcmc_coordinate_main,
     "run one coordination against an EM, print the LcmCoord\n"},
    {"repl", lcmc_repl_main, "an interactive Lua prompt for trying and debugging an EM\n"},
    {"check", lcmc_check_main, "preflight a script and its VNFC parameters (nothing is created)\n"},
    {"params", lcmc_params_main, "make the VNFC parameters a VNFM passes, from additionalParams\n"},
    {"em", lcmc_em_exec,
     "serve a simulated element manager (EM) over HTTP\n"
     "                    (--log-format json: one JSON object per request)\n"},
    {"serve", lcmc_serve_exec,
     "serve the LCM Coordination API as an EM, deciding with Lua hooks (docs/serve.md)\n"},
};
#define SUBCOMMAND_COUNT (sizeof subcommands / sizeof subcommands[0])

static void print_help(void)
{
    fputs(usage_line, stdout);
    fputs("\n"
          "A runtime for ETSI NFV-SOL 002 VNF LCM coordination scripts.\n"
          "\n"
          "Subcommands:\n",
          stdout);
    for (size_t k = 0; k < SUBCOMMAND_COUNT; k++)
        printf("  %-16s  %s", subcommands[k].name, subcommands[k].summary);
    printf("  %-16s  %s\n", "help", "this help");
    printf("  %-16s  %s\n", "help SUBCOMMAND", "the options of SUBCOMMAND");
    fputs("\n"
          "Run `lcmcoord help SUBCOMMAND` (or `lcmcoord SUBCOMMAND --help`) for the options\n"
          "of each. See lcmcoord(1).\n",
          stdout);
}

/* The versions of what does the work: a bug report needs them, and TLS problems often
 * depend on the TLS library libcurl was built with. */
static void print_version(void)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    printf("lcmcoord %s\n", LCMCOORD_VERSION);
    printf("libcurl %s, TLS %s, %s\n", curl->version,
           curl->ssl_version != NULL ? curl->ssl_version : "(none)", LUA_RELEASE);
}

static const subcommand *find_subcommand(const char *name)
{
    for (size_t k = 0; k < SUBCOMMAND_COUNT; k++)
        if (strcmp(subcommands[k].name, name) == 0)
            return &subcommands[k];
    return NULL;
}

/* One line for a word that is no subcommand (or no global flag), with the nearest one. */
static int unknown_word(const char *what, const char *word)
{
    const char *names[SUBCOMMAND_COUNT + 4];
    size_t count = 0;
    if (word[0] == '-') {
        names[count++] = "--help";
        names[count++] = "--version";
    } else {
        for (size_t k = 0; k < SUBCOMMAND_COUNT; k++)
            names[count++] = subcommands[k].name;
        names[count++] = "help";
    }
    const char *nearest = lcmc_host_nearest(word, names, count);
    fprintf(stderr, "lcmcoord: unknown %s '%s'", what, word);
    if (nearest != NULL)
        fprintf(stderr, "; did you mean '%s'?", nearest);
    fputs(" (see lcmcoord --help)\n", stderr);
    return 2;
}

/* `lcmcoord help [SUBCOMMAND]`. */
static int help_main(int argc, char **argv)
{
    if (argc < 2) {
        print_help();
        return 0;
    }
    if (argc > 2) {
        fprintf(stderr, "lcmcoord help: unexpected argument '%s' (see lcmcoord --help)\n", argv[2]);
        return 2;
    }
    const subcommand *wanted = find_subcommand(argv[1]);
    if (wanted == NULL)
        return unknown_word("subcommand", argv[1]);
    char *help_argv[] = {(char *)wanted->name, (char *)"--help", NULL};
    return wanted->main(2, help_argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("lcmcoord: no subcommand given (see lcmcoord --help)\n", stderr);
        return 2;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        print_help();
        return 0;
    }
    if (strcmp(command, "--version") == 0) {
        print_version();
        return 0;
    }
    if (strcmp(command, "help") == 0)
        return help_main(argc - 1, argv + 1);
    const subcommand *chosen = find_subcommand(command);
    if (chosen != NULL)
        return chosen->main(argc - 1, argv + 1);
    return unknown_word(command[0] == '-' ? "option" : "subcommand", command);
}
