/*
 * `lcmcoord em`: the lifecycle of the EM simulator process. Parses the command line, loads
 * the scenario and the TLS files, starts the HTTP(S) server, prints the one `listening on` line
 * clients and tests wait for, and then sleeps in sigwait() until SIGINT or SIGTERM. The signals are
 * blocked before any thread exists, so no handler ever runs on a worker thread and
 * shutdown is an ordinary, leak-free path that returns 0. That path is bounded: a watchdog
 * ends the process EM_SHUTDOWN_DEADLINE_S seconds after the signal whatever is still being
 * released (a worker busy in a scenario, a large store), since nothing the simulator holds
 * outlives it. `--chaos` picks a misbehaviour: a raw-socket one replaces the HTTP server
 * altogether, the others run on it.
 */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "em.h"

/* --quiet, copied for the watchdog: it may wake while the process is already past main(). */
static bool watchdog_quiet;

/* Started once a stop signal arrives: the clean path gets EM_SHUTDOWN_DEADLINE_S seconds. */
static void *shutdown_watchdog(void *arg)
{
    (void)arg;
    struct timespec left = {EM_SHUTDOWN_DEADLINE_S, 0};
    while (nanosleep(&left, &left) != 0)
        ;
    /* Not through stdio: a worker blocked writing to a stderr nobody reads holds its lock.
     * Written only if the pipe or terminal can take it now, so nothing here can block. */
    char line[96];
    int len =
        snprintf(line, sizeof line, "lcmcoord em: shutdown took longer than %d s; exiting now\n",
                 EM_SHUTDOWN_DEADLINE_S);
    struct pollfd err = {.fd = STDERR_FILENO, .events = POLLOUT};
    if (!watchdog_quiet && len > 0 && poll(&err, 1, 0) == 1 && (err.revents & POLLOUT))
        (void)!write(STDERR_FILENO, line, (size_t)len);
    _exit(0);
    return NULL;
}

static void start_shutdown_watchdog(bool quiet)
{
    pthread_t watchdog;
    watchdog_quiet = quiet;
    if (pthread_create(&watchdog, NULL, shutdown_watchdog, NULL) == 0)
        pthread_detach(watchdog);
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "lcmcoord em: %s (see lcmcoord em --help)\n", msg);
    return 2;
}

/* --chaos with a raw-socket misbehaviour: no libmicrohttpd, no protocol state at all. */
static int serve_raw(const struct em_chaos *chaos, const struct em_options *opt,
                     const sigset_t *stop_signals)
{
    char err[512], url[EM_BASE_URL_MAX];
    struct em_chaos_server *srv =
        em_chaos_server_start(chaos, opt, url, sizeof url, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "lcmcoord em: %s\n", err);
        return 1;
    }
    printf("listening on %s\n", url);
    fflush(stdout);
    int sig = 0;
    while (sigwait(stop_signals, &sig) != 0)
        ;
    start_shutdown_watchdog(opt->quiet);
    em_chaos_server_stop(srv);
    return 0;
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

    const struct em_chaos *chaos = NULL;
    if (opt.chaos) {
        if (strcmp(opt.chaos, "list") == 0) {
            em_chaos_list(stdout);
            return 0;
        }
        if (!(chaos = em_chaos_find(opt.chaos))) {
            snprintf(err, sizeof err, "unknown --chaos '%.60s' (--chaos list shows them all)",
                     opt.chaos);
            return usage_error(err);
        }
        if (chaos->kind != EM_CHAOS_CERT && opt.tls_cert)
            return usage_error("--tls-cert goes only with the --chaos tls-*-cert names");
        if (chaos->kind == EM_CHAOS_CERT && !opt.tls_cert)
            return usage_error("this --chaos needs the bad certificate as --tls-cert/--tls-key");
        if (opt.scenario && chaos->kind != EM_CHAOS_CERT)
            return usage_error("--scenario and --chaos cannot be combined");
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
    if (chaos && chaos->kind == EM_CHAOS_CERT &&
        em_chaos_check_cert(chaos, tls.cert, err, sizeof err) < 0) {
        em_tls_files_free(&tls);
        return usage_error(err);
    }
    if (chaos && chaos->kind == EM_CHAOS_RAW)
        return serve_raw(chaos, &opt, &stop_signals);

    static struct em em;
    em_init(&em, &opt);
    if (chaos && chaos->kind == EM_CHAOS_SCENARIO) {
        char chunk[160];
        snprintf(chunk, sizeof chunk, "@scripts/em/chaos/%s.lua", chaos->name);
        em.scenario =
            em_scenario_load_buffer(chunk, chaos->source, chaos->source_len, &em, err, sizeof err);
        if (!em.scenario) { /* a broken built-in scenario: a bug, reported as such */
            fprintf(stderr, "lcmcoord em: %s\n", err);
            em_cleanup(&em);
            em_tls_files_free(&tls);
            return 2;
        }
    } else if (opt.scenario) {
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
    /* The address actually listened on (--base-url only goes into the answers). */
    bool v6 = strchr(opt.host, ':') != NULL;
    printf("listening on %s://%s%s%s:%u\n", opt.tls_cert ? "https" : "http", v6 ? "[" : "",
           opt.host, v6 ? "]" : "", em_server_port(srv));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    start_shutdown_watchdog(opt.quiet);
    em_server_stop(srv);
    em_cleanup(&em);
    em_tls_files_free(&tls);
    return 0;
}
