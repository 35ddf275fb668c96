/*
 * `lcmcoord em`: the lifecycle of the EM simulator process. Parses the command line, loads
 * the scenario and the TLS files, starts the HTTP(S) server, prints the one `listening on` line
 * clients and tests wait for, and then sleeps in sigwait() until SIGINT or SIGTERM. The signals are
 * blocked before any thread exists, so no handler ever runs on a worker thread and
 * shutdown is an ordinary, leak-free path that returns 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "em.h"
#include "subcommands.h"

static int usage_error(const char *msg)
{
    fprintf(stderr, "lcmcoord em: %s (see lcmcoord em --help)\n", msg);
    return 2;
}

int lcmc_em_main(int argc, char **argv)
{
    struct em_options opt;
    char err[512];
    em_options_init(&opt);
    switch (em_options_parse(&opt, argc, argv, err, sizeof err)) {
    case EM_PARSE_HELP:
        fputs(em_usage_line, stdout);
        fputs(em_help_text, stdout);
        return 0;
    case EM_PARSE_ERROR:
        return usage_error(err);
    case EM_PARSE_OK:
        break;
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    /* A client hanging up mid-answer must not kill the simulator. */
    signal(SIGPIPE, SIG_IGN);

    /* Certificates first: a file that cannot be used is a bad option value (exit 2). */
    struct em_tls_files tls;
    memset(&tls, 0, sizeof tls);
    if (opt.tls_cert && em_tls_load(&opt, &tls, err, sizeof err) < 0)
        return usage_error(err);

    static struct em em;
    em_init(&em, &opt);
    if (opt.scenario) {
        em.scenario = em_scenario_load(opt.scenario, &em, err, sizeof err);
        if (!em.scenario) {
            fprintf(stderr, "lcmcoord em: %s\n", err);
            em_cleanup(&em);
            em_tls_files_free(&tls);
            return 2;
        }
    }
    struct em_server *srv = em_server_start(&em, opt.tls_cert ? &tls : NULL, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "lcmcoord em: %s\n", err);
        em_cleanup(&em);
        em_tls_files_free(&tls);
        return 1;
    }
    printf("listening on %s\n", em.base_url);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    em_server_stop(srv);
    em_cleanup(&em);
    em_tls_files_free(&tls);
    return 0;
}
