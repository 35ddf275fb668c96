/*
 * lcmcoord-serve, the program `lcmcoord serve` runs (bindings/host/em_exec.c): options (from
 * the command line, over a configuration file of `option = value` lines), the process's life
 * and its signals. The signals are blocked before any thread exists and taken by sigwait()
 * here: SIGTERM/SIGINT stop gracefully (serve_shutdown), SIGHUP reloads the hooks. Every bad
 * option is one line on stderr and exit 2, before anything is opened.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"
#include "serve_auth.h"

static const char usage_line[] =
    "usage: lcmcoord serve --hooks FILE.lua [--listen HOST:PORT] [--store URL] [options]\n";

static const char help_text[] =
    "Serves the VNF LCM Coordination API (ETSI NFV-SOL 002) as an EM: each coordination is\n"
    "decided by decide(req, ctx) of the hooks file, run on the server's engine (docs/serve.md).\n"
    "\n"
    "  --hooks FILE          the Lua hooks file (required)\n"
    "  --listen HOST:PORT    address to serve on (default 127.0.0.1:6790; port 0: any free one)\n"
    "  --store URL           sqlite:PATH (default sqlite:lcmcoord-serve.db) or postgresql://...\n"
    "  --instance-id NAME    this instance in the store's leases (default: HOST:PID)\n"
    "  --sync-budget S       answer 201 when decided within S seconds, else 202 (default 1)\n"
    "  --max-decisions N     decisions at once; beyond: 503 + Retry-After (default 10000)\n"
    "  --exclusive MODE      one coordination at a time per: vnfc (default), instance, none\n"
    "  --cancel-grace S      after a cancel, decide may run S more seconds (default 10)\n"
    "  --shutdown-grace S    on SIGTERM, decisions may run S more seconds (default 10)\n"
    "  --lease-ttl S         a dead instance's coordinations end after S seconds (default 10)\n"
    "  --retention S         finished coordinations are purged after S seconds (default 7 days)\n"
    "  --retry-after S       Retry-After of 202 and of the server's own 503s (default 1)\n"
    "  --tls-cert FILE --tls-key FILE   serve HTTPS\n"
    "  --client-ca FILE      require client certificates signed by this CA (mutual TLS)\n"
    "  --base-url URL        the public URL for Location and uriPrefix\n"
    "  --threads N --max-connections N --max-per-client N --idle-timeout S --header-timeout S\n"
    "  --body-limit BYTES    the HTTP layer's limits (as lcmcoord em)\n"
    "  --users-file FILE     HTTP Basic against FILE's crypt(3) hashes\n"
    "  --jwks-file FILE      Bearer JWTs verified against a JWKS file\n"
    "  --jwt-issuer ISS --jwt-audience AUD --jwt-leeway S   what a token must say\n"
    "  --introspect-url URL  Bearer tokens checked by RFC 7662 introspection\n"
    "  --introspect-credentials-file FILE --introspect-cacert FILE\n"
    "  --introspect-timeout S --introspect-cache-ttl S\n"
    "  --require-cert-binding   tokens must be bound to the client certificate (RFC 8705)\n"
    "  --hash-password USER  print a users-file line for USER (password from the terminal)\n"
    "  --log-format text|json  log lines as text (default) or one JSON object each\n"
    "  --quiet               no log lines\n"
    "  --config FILE         read options from FILE: `option = value` lines, # comments\n";

static int bad(char *err, size_t len, const char *fmt, const char *a, const char *b)
{
    snprintf(err, len, fmt, a, b);
    return 2;
}

static int parse_seconds(const char *name, const char *v, double min, double *out, char *err,
                         size_t len)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(d) || d < min || d > 86400.0 * 365)
        return bad(err, len, "%s needs a number of seconds, not '%.40s'", name, v);
    *out = d;
    return 0;
}

static int parse_count(const char *name, const char *v, unsigned long max, unsigned *out, char *err,
                       size_t len)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || errno || n < 1 || n > max || *v == '-')
        return bad(err, len, "%s needs a whole number from 1, not '%.40s'", name, v);
    *out = (unsigned)n;
    return 0;
}

/* The configuration file as argv-like words ("--name", "value"), kept for the process's life;
 * NULL with err set. */
static char **read_config(const char *file, int *count, char *err, size_t len)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, len, "--config %.200s: %s", file, strerror(errno));
        return NULL;
    }
    char **words = NULL;
    int n = 0;
    char line[4096];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        p[strcspn(p, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || strcmp(p, "[serve]") == 0)
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, len, "%.200s:%u: expected `option = value`", file, lineno);
            fclose(f);
            return NULL;
        }
        char *name_end = eq;
        while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        *name_end = '\0';
        char *value = eq + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        char *vend = value + strlen(value);
        while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
            *--vend = '\0';
        if (strcmp(p, "config") == 0) {
            snprintf(err, len, "%.200s:%u: config cannot name another file", file, lineno);
            fclose(f);
            return NULL;
        }
        words = em_xrealloc(words, (size_t)(n + 2) * sizeof *words);
        words[n++] = em_xasprintf("--%s", p);
        words[n++] = em_xstrdup(value);
    }
    fclose(f);
    *count = n;
    return words;
}

static bool flag_option(const char *name)
{
    return strcmp(name, "--quiet") == 0 || strcmp(name, "--require-cert-binding") == 0;
}

static bool truth(const char *v)
{
    return v == NULL || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0;
}

static int apply(struct serve_options *o, const char *name, const char *v, char *err, size_t len)
{
    struct em_options *h = &o->http;
    unsigned u;
    if (strcmp(name, "--quiet") == 0) {
        h->quiet = truth(v);
        return 0;
    }
    if (strcmp(name, "--require-cert-binding") == 0) {
        o->require_cert_binding = truth(v);
        return 0;
    }
    if (!v)
        return bad(err, len, "%s needs a value%s", name, "");
    if (strcmp(name, "--hooks") == 0)
        o->hooks = v;
    else if (strcmp(name, "--listen") == 0) {
        if (em_split_listen(v, h->host, sizeof h->host, &h->port) < 0)
            return bad(err, len, "--listen needs HOST:PORT, not '%.80s'%s", v, "");
    } else if (strcmp(name, "--store") == 0) {
        if (strncmp(v, "sqlite:", 7) != 0 && strncmp(v, "postgresql://", 13) != 0 &&
            strncmp(v, "postgres://", 11) != 0)
            return bad(err, len, "--store needs sqlite:PATH or postgresql://...%s%s", "", "");
        o->store = v;
    } else if (strcmp(name, "--instance-id") == 0)
        o->instance_id = v;
    else if (strcmp(name, "--users-file") == 0)
        o->users_file = v;
    else if (strcmp(name, "--jwks-file") == 0)
        o->jwks_file = v;
    else if (strcmp(name, "--jwt-issuer") == 0)
        o->jwt_issuer = v;
    else if (strcmp(name, "--jwt-audience") == 0)
        o->jwt_audience = v;
    else if (strcmp(name, "--introspect-url") == 0)
        o->introspect_url = v;
    else if (strcmp(name, "--introspect-credentials-file") == 0)
        o->introspect_credentials_file = v;
    else if (strcmp(name, "--introspect-cacert") == 0)
        o->introspect_cacert = v;
    else if (strcmp(name, "--hash-password") == 0)
        o->hash_password_user = v;
    else if (strcmp(name, "--jwt-leeway") == 0) {
        o->jwt_leeway_set = true;
        return parse_seconds(name, v, 0, &o->jwt_leeway, err, len);
    } else if (strcmp(name, "--introspect-timeout") == 0)
        return parse_seconds(name, v, 0.1, &o->introspect_timeout, err, len);
    else if (strcmp(name, "--introspect-cache-ttl") == 0)
        return parse_seconds(name, v, 0, &o->introspect_cache_ttl, err, len);
    else if (strcmp(name, "--sync-budget") == 0)
        return parse_seconds(name, v, 0, &o->sync_budget, err, len);
    else if (strcmp(name, "--cancel-grace") == 0)
        return parse_seconds(name, v, 0, &o->cancel_grace, err, len);
    else if (strcmp(name, "--shutdown-grace") == 0)
        return parse_seconds(name, v, 0, &o->shutdown_grace, err, len);
    else if (strcmp(name, "--lease-ttl") == 0)
        return parse_seconds(name, v, 2, &o->lease_ttl, err, len);
    else if (strcmp(name, "--retention") == 0)
        return parse_seconds(name, v, 0, &o->retention, err, len);
    else if (strcmp(name, "--retry-after") == 0)
        return parse_count(name, v, 86400, &o->retry_after, err, len);
    else if (strcmp(name, "--max-decisions") == 0)
        return parse_count(name, v, 10000000, &o->max_decisions, err, len);
    else if (strcmp(name, "--exclusive") == 0) {
        if (strcmp(v, "vnfc") == 0)
            o->exclusive = SERVE_EXCLUSIVE_VNFC;
        else if (strcmp(v, "instance") == 0)
            o->exclusive = SERVE_EXCLUSIVE_INSTANCE;
        else if (strcmp(v, "none") == 0)
            o->exclusive = SERVE_EXCLUSIVE_NONE;
        else
            return bad(err, len, "--exclusive needs vnfc, instance or none, not '%.40s'%s", v, "");
    } else if (strcmp(name, "--log-format") == 0) {
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
            return bad(err, len, "--log-format needs text or json, not '%.40s'%s", v, "");
        o->log_json = strcmp(v, "json") == 0;
    } else if (strcmp(name, "--tls-cert") == 0)
        h->tls_cert = v;
    else if (strcmp(name, "--tls-key") == 0)
        h->tls_key = v;
    else if (strcmp(name, "--client-ca") == 0)
        h->client_ca = v;
    else if (strcmp(name, "--base-url") == 0) {
        if (em_check_base_url(v) != 0)
            return bad(err, len, "--base-url needs http(s)://HOST[:PORT][/PATH], not '%.80s'%s", v,
                       "");
        h->base_url = v;
    } else if (strcmp(name, "--threads") == 0) {
        if (parse_count(name, v, 256, &u, err, len))
            return 2;
        h->threads = u;
    } else if (strcmp(name, "--max-connections") == 0) {
        if (parse_count(name, v, 1000000, &u, err, len))
            return 2;
        h->max_connections = u;
    } else if (strcmp(name, "--max-per-client") == 0) {
        if (parse_count(name, v, 1000000, &u, err, len))
            return 2;
        h->max_per_client = u;
    } else if (strcmp(name, "--idle-timeout") == 0) {
        if (parse_count(name, v, 86400, &u, err, len))
            return 2;
        h->idle_timeout_s = u;
    } else if (strcmp(name, "--header-timeout") == 0) {
        if (parse_count(name, v, 86400, &u, err, len))
            return 2;
        h->header_timeout_s = u;
    } else if (strcmp(name, "--body-limit") == 0) {
        if (parse_count(name, v, 64u * 1024u * 1024u, &u, err, len))
            return 2;
        h->body_limit = u;
    } else
        return bad(err, len, "unknown option '%.60s'%s", name, "");
    return 0;
}

/* Parses a list of words (the file's, then the command line's). */
static int parse_words(struct serve_options *o, int n, char **words, bool from_file, char *err,
                       size_t len)
{
    for (int i = 0; i < n; i++) {
        char *w = words[i];
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0)
            return 1;
        if (strncmp(w, "--", 2) != 0)
            return bad(err, len, "unexpected argument '%.60s'%s", w, "");
        char name[64];
        const char *value = NULL;
        const char *eq = strchr(w, '=');
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - w) : 63, w);
        if (eq)
            value = eq + 1;
        else if (from_file || !flag_option(name))
            value = i + 1 < n ? words[++i] : NULL;
        if (strcmp(name, "--config") == 0)
            continue; /* read before */
        int rc = apply(o, name, value, err, len);
        if (rc)
            return rc;
    }
    return 0;
}

int serve_options_parse(struct serve_options *o, int argc, char **argv, char *err, size_t len)
{
    memset(o, 0, sizeof *o);
    if (len)
        err[0] = '\0';
    em_options_init(&o->http);
    snprintf(o->http.host, sizeof o->http.host, "127.0.0.1");
    o->http.port = 6790;
    o->store = "sqlite:lcmcoord-serve.db";
    o->sync_budget = SERVE_DEFAULT_SYNC_BUDGET;
    o->max_decisions = SERVE_DEFAULT_MAX_DECISION;
    o->exclusive = SERVE_EXCLUSIVE_VNFC;
    o->cancel_grace = SERVE_DEFAULT_CANCEL_GRACE;
    o->shutdown_grace = SERVE_DEFAULT_SHUTDOWN;
    o->lease_ttl = SERVE_DEFAULT_LEASE_TTL;
    o->retention = SERVE_DEFAULT_RETENTION;
    o->retry_after = SERVE_DEFAULT_RETRY_AFTER;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            o->config = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            o->config = argv[i] + 9;
        else if (strcmp(argv[i], "--config") == 0)
            return bad(err, len, "--config needs a file%s%s", "", "");
    }
    if (o->config) {
        int n = 0;
        char **words = read_config(o->config, &n, err, len);
        if (!words && *err)
            return 2;
        o->config_words = words; /* the options point into them: freed at exit */
        o->config_count = n;
        int rc = parse_words(o, n, words, true, err, len);
        if (rc == 2) {
            char inner[400];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, len, "%.200s: %s", o->config, inner);
        }
        if (rc)
            return rc; /* the words are kept: the options point into them */
    }
    int rc = parse_words(o, argc - 1, argv + 1, false, err, len);
    if (rc)
        return rc;
    if (o->hash_password_user)
        return 0;
    if (!o->hooks)
        return bad(err, len, "--hooks FILE is required%s%s", "", "");
    if (access(o->hooks, R_OK) != 0)
        return bad(err, len, "--hooks %.200s: %s", o->hooks, strerror(errno));
    if (!o->http.tls_cert != !o->http.tls_key)
        return bad(err, len, "--tls-cert and --tls-key go together%s%s", "", "");
    if (o->http.client_ca && !o->http.tls_cert)
        return bad(err, len, "--client-ca needs --tls-cert and --tls-key%s%s", "", "");
    if (!o->instance_id) {
        /* The host name and the process: each instance starts by ending the RUNNING rows of
         * its own id (a previous process's), so two instances on one host must never share
         * one. A crashed process's rows are ended by the lease instead. */
        static char id[HOST_NAME_MAX + 32];
        char host[HOST_NAME_MAX + 1];
        if (gethostname(host, sizeof host) != 0)
            snprintf(host, sizeof host, "lcmcoord-serve");
        host[HOST_NAME_MAX] = '\0';
        snprintf(id, sizeof id, "%s:%ld", host, (long)getpid());
        o->instance_id = id;
    }
    return 0;
}

void serve_options_free(struct serve_options *o)
{
    for (int i = 0; i < o->config_count; i++)
        free(o->config_words[i]);
    free(o->config_words);
    o->config_words = NULL;
    o->config_count = 0;
}

static struct serve s;

static int run(int argc, char **argv)
{
    char err[600] = "";
    switch (serve_options_parse(&s.opt, argc, argv, err, sizeof err)) {
    case 1:
        fputs(usage_line, stdout);
        fputs(help_text, stdout);
        return 0;
    case 2:
        fprintf(stderr, SERVE_PROGRAM ": %s (see lcmcoord serve --help)\n", err);
        return 2;
    default:
        break;
    }
    if (s.opt.hash_password_user) {
        char line[512];
        if (serve_auth_hash_password(STDIN_FILENO, stderr, s.opt.hash_password_user, line,
                                     sizeof line, err, sizeof err) < 0) {
            fprintf(stderr, SERVE_PROGRAM ": %s\n", err);
            return 1;
        }
        printf("%s\n", line);
        return 0;
    }
    if (s.opt.users_file || s.opt.jwks_file || s.opt.introspect_url) {
        struct serve_auth_config cfg = {
            .users_file = s.opt.users_file,
            .jwks_file = s.opt.jwks_file,
            .jwt_issuer = s.opt.jwt_issuer,
            .jwt_audience = s.opt.jwt_audience,
            .jwt_leeway =
                s.opt.jwt_leeway_set ? (s.opt.jwt_leeway > 0 ? (int)s.opt.jwt_leeway : -1) : 0,
            .introspect_url = s.opt.introspect_url,
            .introspect_auth_file = s.opt.introspect_credentials_file,
            .introspect_cacert = s.opt.introspect_cacert,
            .introspect_timeout = s.opt.introspect_timeout,
            .introspect_cache_ttl = s.opt.introspect_cache_ttl,
            .require_cert_binding = s.opt.require_cert_binding,
        };
        s.auth = serve_auth_load(&cfg, err, sizeof err);
        if (!s.auth) {
            fprintf(stderr, SERVE_PROGRAM ": %s\n", err);
            return 2;
        }
    } else if (s.opt.jwt_issuer || s.opt.jwt_audience || s.opt.require_cert_binding) {
        fprintf(stderr,
                SERVE_PROGRAM ": --jwt-issuer, --jwt-audience and --require-cert-binding "
                              "need --jwks-file or --introspect-url (see lcmcoord serve --help)\n");
        return 2;
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    lcmc_em_set_log_json(s.opt.log_json);

    struct em_tls_files tls;
    memset(&tls, 0, sizeof tls);
    if (s.opt.http.tls_cert && em_tls_load(&s.opt.http, &tls, err, sizeof err) < 0) {
        fprintf(stderr, SERVE_PROGRAM ": %s\n", err);
        return 2;
    }
    if (serve_start(&s, s.opt.http.tls_cert ? &tls : NULL, err, sizeof err) < 0) {
        fprintf(stderr, SERVE_PROGRAM ": %s\n", err);
        return 1;
    }
    bool v6 = strchr(s.opt.http.host, ':') != NULL;
    printf("listening on %s://%s%s%s:%u\n", s.opt.http.tls_cert ? "https" : "http", v6 ? "[" : "",
           s.opt.http.host, v6 ? "]" : "", em_http_port(s.http));
    fflush(stdout);
    for (;;) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            serve_reload(&s);
            continue;
        }
        break;
    }
    serve_shutdown(&s);
    serve_auth_free(s.auth);
    em_tls_files_free(&tls);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = run(argc, argv);
    serve_options_free(&s.opt);
    return rc;
}
