/*
 * Entry point of the `lcmcoord` program: global flags (--help, --version) and the choice
 * of subcommand. Everything else lives in the subcommand's own file; `em` is another
 * program, lcmcoord-em, that em_exec.c runs in this one's place.
 */
#include <stdio.h>
#include <string.h>

#include "subcommands.h"

#ifndef LCMCOORD_VERSION
#define LCMCOORD_VERSION "unknown"
#endif

static const char usage_line[] =
    "usage: lcmcoord [--help] [--version] <run|coordinate|repl|em> [args...]\n";

static void print_help(void)
{
    fputs(usage_line, stdout);
    fputs("\n"
          "A runtime for ETSI NFV-SOL 002 VNF LCM coordination scripts.\n"
          "\n"
          "Subcommands:\n"
          "  run SCRIPT.lua    run a CoordinateVNF script; its parameters are JSON on stdin\n"
          "  coordinate        run one coordination against an EM, print the LcmCoord\n"
          "  repl              an interactive Lua prompt for trying and debugging an EM\n"
          "  em                serve a simulated element manager (EM) over HTTP\n"
          "                    (--log-format json: one JSON object per request)\n"
          "\n"
          "Run `lcmcoord SUBCOMMAND --help` for the options of each. See lcmcoord(1).\n",
          stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_line, stderr);
        return 2;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        print_help();
        return 0;
    }
    if (strcmp(command, "--version") == 0) {
        printf("lcmcoord %s\n", LCMCOORD_VERSION);
        return 0;
    }
    if (strcmp(command, "run") == 0)
        return lcmc_run_main(argc - 1, argv + 1);
    if (strcmp(command, "em") == 0)
        return lcmc_em_exec(argc - 1, argv + 1);
    if (strcmp(command, "repl") == 0)
        return lcmc_repl_main(argc - 1, argv + 1);
    if (strcmp(command, "coordinate") == 0)
        return lcmc_coordinate_main(argc - 1, argv + 1);

    fprintf(stderr, "lcmcoord: unknown %s '%s'\n", command[0] == '-' ? "option" : "subcommand",
            command);
    fputs(usage_line, stderr);
    return 2;
}
