/*
 * lcmcoord-em, the EM simulator's program. Operators and tests run it as `lcmcoord em ...`,
 * which execs this program with the same arguments (bindings/host/em_exec.c): the simulator
 * links libmicrohttpd and GnuTLS, and the client a VNFM runs must not. This file only takes
 * --log-format, which changes nothing but the request log line, and leaves every other option
 * to the simulator's own parser (em_options.c).
 */
#include <stdio.h>
#include <string.h>

#include "em.h"

/* `--log-format VALUE` or `--log-format=VALUE` at argv[*i]: 1 with the value (NULL when
 * missing) in *value and *i past it, else 0. */
static int log_format_option(int argc, char **argv, int *i, const char **value)
{
    static const char name[] = "--log-format";
    const char *arg = argv[*i];
    if (strncmp(arg, name, sizeof name - 1) != 0)
        return 0;
    if (arg[sizeof name - 1] == '=') {
        *value = arg + sizeof name;
        return 1;
    }
    if (arg[sizeof name - 1] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

int main(int argc, char **argv)
{
    int kept = 0;
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (i > 0 && log_format_option(argc, argv, &i, &value)) {
            if (value == NULL || (strcmp(value, "json") != 0 && strcmp(value, "text") != 0)) {
                fprintf(stderr, "lcmcoord em: --log-format needs text or json\n");
                return 2;
            }
            lcmc_em_set_log_json(strcmp(value, "json") == 0);
            continue;
        }
        argv[kept++] = argv[i];
    }
    argv[kept] = NULL;
    return lcmc_em_main(kept, argv);
}
