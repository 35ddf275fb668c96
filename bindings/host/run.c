/* Placeholder until `lcmcoord run` lands. */
#include <stdio.h>

#include "subcommands.h"

int lcmc_run_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("lcmcoord run: not implemented yet\n", stderr);
    return 2;
}
