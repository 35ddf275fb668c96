/* Placeholder until `lcmcoord em` lands. */
#include <stdio.h>

#include "subcommands.h"

int lcmc_em_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("lcmcoord em: not implemented yet\n", stderr);
    return 2;
}
