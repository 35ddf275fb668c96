/*
 * The command line of `lcmcoord em` and the small value syntaxes it accepts (HOST:PORT,
 * Retry-After specs, result names), plus HTTP-date formatting. Everything here is pure so
 * the unit tests can feed it bad input; the caller turns an error into exit status 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em.h"

const char em_usage_line[] =
    "usage: lcmcoord em [--listen HOST:PORT] [--mode sync|async] [--polls K] [--rejects N]\n"
    "                   [--result CONTINUE|ABORT|CANCELLED] [--retry-after SPEC]\n"
    "                   [--location absolute|relative|none] [--delay MS] [--basic USER:PASS]\n"
    "                   [--oauth2 ID[:SECRET]] [--token-ttl S|none]\n"
    "                   [--tls-cert FILE --tls-key FILE [--client-ca FILE]]\n"
    "                   [--body-limit BYTES] [--journal-max N] [--threads N]\n"
    "                   [--scenario FILE.lua] [--chaos NAME|list] [--base-url URL]\n"
    "                   [--max-connections N] [--max-per-client N] [--idle-timeout S]\n"
    "                   [--header-timeout S] [--min-body-rate BYTES] [--quiet]\n"
    "                   [--log-format text|json] [--help]\n";

const char em_help_text[] =
    "\n"
    "Serve a simulated element manager (EM): the producer side of the ETSI NFV-SOL 002\n"
    "VNF LCM Coordination API (lcmcoord v1), for testing clients.\n"
    "\n"
    "Options:\n"
    "  --listen HOST:PORT    address to listen on (default 127.0.0.1:6789; port 0 = any)\n"
    "  --mode sync|async     answer POST /coordinations with 201 + LcmCoord (sync, default)\n"
    "                        or 202 + Location, then GET answers (async)\n"
    "  --polls K             async: GET answers 202 K times before 200 (default 1)\n"
    "  --rejects N           answer the first N valid POSTs with 503 (default 0)\n"
    "  --result R            CONTINUE (default), ABORT or CANCELLED\n"
    "  --retry-after SPEC    on 503 and 202: N (seconds), date:N (HTTP-date N seconds\n"
    "                        from now, may be negative), raw:TEXT (verbatim) or none\n"
    "                        (default 1)\n"
    "  --location L          Location of 202 answers: absolute (default), relative, none\n"
    "  --delay MS            answer every API request MS milliseconds late (default 0)\n"
    "  --basic USER:PASS     require HTTP Basic authentication on API requests\n"
    "  --oauth2 ID[:SECRET]  serve POST /token (client_credentials) for this client and\n"
    "                        require a Bearer token it issued on API requests; no SECRET\n"
    "                        needs --client-ca (the certificate authenticates the client)\n"
    "  --token-ttl S|none    lifetime of issued tokens in seconds (default 3600)\n"
    "  --tls-cert FILE       serve HTTPS (TLS 1.2+) with this PEM certificate (chain)...\n"
    "  --tls-key FILE        ... and this PEM private key\n"
    "  --client-ca FILE      require a client certificate issued by this PEM CA\n"
    "  --body-limit BYTES    largest request body accepted, else 413 (default 262144)\n"
    "  --journal-max N       requests kept in /_em/journal, oldest dropped (default 10000)\n"
    "  --threads N           HTTP worker threads (default 2)\n"
    "  --scenario FILE.lua   let a Lua function decide answers (see docs/em.md)\n"
    "  --chaos NAME          misbehave on purpose, as NAME says (--chaos list: all names;\n"
    "                        see docs/reliability.md)\n"
    "  --base-url URL        http(s)://HOST[:PORT] put in absolute URLs (Location, links);\n"
    "                        default: the listen address, never the Host header\n"
    "  --max-connections N   open connections in all (default 1000)\n"
    "  --max-per-client N    open connections from one client address (default 128)\n"
    "  --idle-timeout S      close a connection silent for S seconds (default 15)\n"
    "  --header-timeout S    close a connection whose request head (TLS handshake\n"
    "                        included) is not complete S seconds after it could start\n"
    "                        (default 10)\n"
    "  --min-body-rate B     close a request whose body arrives slower than B bytes/s on\n"
    "                        average after the first --header-timeout seconds (default\n"
    "                        1024; 0: no floor)\n"
    "  --quiet               log nothing on stderr: neither requests nor HTTP-layer\n"
    "                        messages (otherwise rate-limited)\n"
    "  --log-format text|json  one line per request as text (default) or as a JSON\n"
    "                        object (time, method, path, status, ms)\n"
    "  --help                show this help\n"
    "\n"
    "Prints `listening on http(s)://HOST:PORT` once ready; SIGINT or SIGTERM stop it.\n";

void em_options_init(struct em_options *opt)
{
    memset(opt, 0, sizeof *opt);
    strcpy(opt->host, "127.0.0.1");
    opt->port = EM_DEFAULT_PORT;
    opt->threads = 2;
    opt->mode = EM_MODE_SYNC;
    opt->polls = 1;
    opt->result = EM_RESULT_CONTINUE;
    opt->retry.kind = EM_RETRY_SECONDS;
    opt->retry.seconds = 1;
    opt->location = EM_LOCATION_ABSOLUTE;
    opt->body_limit = EM_DEFAULT_BODY_LIMIT;
    opt->journal_max = EM_DEFAULT_JOURNAL_MAX;
    opt->token_ttl = EM_DEFAULT_TOKEN_TTL;
    opt->max_connections = EM_DEFAULT_MAX_CONNECTIONS;
    opt->max_per_client = EM_DEFAULT_MAX_PER_CLIENT;
    opt->idle_timeout_s = EM_DEFAULT_IDLE_TIMEOUT;
    opt->header_timeout_s = EM_DEFAULT_HEADER_TIMEOUT;
    opt->min_body_rate = EM_DEFAULT_MIN_BODY_RATE;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Digits only (an optional leading '-' when allow_negative), no whitespace, in range. */
static int parse_integer(const char *s, bool allow_negative, long long min, long long max,
                         long long *out)
{
    const char *p = s;
    if (allow_negative && *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int em_retry_parse(const char *spec, struct em_retry *out, char *err, size_t errlen)
{
    long long v = 0; /* set by parse_count before any use; the compiler cannot see it at -O3 */
    memset(out, 0, sizeof *out);
    if (strcmp(spec, "none") == 0) {
        out->kind = EM_RETRY_NONE;
        return 0;
    }
    if (strncmp(spec, "raw:", 4) == 0) {
        /* A header value cannot carry a line break; MHD would refuse it anyway. */
        if (strpbrk(spec + 4, "\r\n"))
            return fail(err, errlen, "invalid --retry-after '%s': raw text has a line break", spec);
        out->kind = EM_RETRY_RAW;
        out->raw = spec + 4;
        return 0;
    }
    if (strncmp(spec, "date:", 5) == 0) {
        if (parse_integer(spec + 5, true, -100000000LL, 100000000LL, &v) < 0)
            return fail(err, errlen,
                        "invalid --retry-after '%s': date:N needs an integer N of seconds "
                        "from now",
                        spec);
        out->kind = EM_RETRY_DATE;
        out->seconds = v;
        return 0;
    }
    if (parse_integer(spec, false, 0, 2147483647LL, &v) < 0)
        return fail(err, errlen, "invalid --retry-after '%s': expected N, date:N, raw:TEXT or none",
                    spec);
    out->kind = EM_RETRY_SECONDS;
    out->seconds = v;
    return 0;
}

bool em_retry_value(const struct em_retry *spec, time_t now, char *buf, size_t len)
{
    switch (spec->kind) {
    case EM_RETRY_SECONDS:
        snprintf(buf, len, "%lld", spec->seconds);
        return true;
    case EM_RETRY_DATE:
        if (len < EM_HTTP_DATE_LEN)
            return false;
        em_http_date(now + (time_t)spec->seconds, buf);
        return true;
    case EM_RETRY_RAW:
        snprintf(buf, len, "%s", spec->raw);
        return true;
    case EM_RETRY_NONE:
        break;
    }
    return false;
}

void em_http_date(time_t t, char buf[EM_HTTP_DATE_LEN])
{
    /* IMF-fixdate spells English names whatever the locale, so strftime's %a/%b won't do. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, EM_HTTP_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

int em_check_base_url(const char *url)
{
    const char *rest = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    size_t n = strlen(url);
    if (!rest || !*rest || *rest == '/' || n >= EM_BASE_URL_MAX - 1 || url[n - 1] == '/')
        return -1;
    for (const char *p = rest; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#' || *p == '"' || *p == '\\')
            return -1;
    return 0;
}

int em_split_listen(const char *spec, char *host, size_t hostlen, unsigned *port)
{
    const char *colon;
    const char *h = spec;
    size_t hlen;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return -1;
        h = spec + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - spec);
        /* An unbracketed IPv6 address is ambiguous: insist on [addr]:port. */
        if (memchr(spec, ':', hlen))
            return -1;
    }
    long long p;
    if (hlen == 0 || hlen >= hostlen || parse_integer(colon + 1, false, 0, 65535, &p) < 0)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)p;
    return 0;
}

static const char *const result_names[] = {"CONTINUE", "ABORT", "CANCELLED"};

int em_result_parse(const char *name, enum em_result *out)
{
    for (size_t i = 0; i < sizeof result_names / sizeof result_names[0]; i++) {
        if (strcmp(name, result_names[i]) == 0) {
            *out = (enum em_result)i;
            return 0;
        }
    }
    return -1;
}

const char *em_result_name(enum em_result r)
{
    return result_names[r];
}

static int parse_count(const char *flag, const char *value, long long max, long long *out,
                       char *err, size_t errlen)
{
    if (parse_integer(value, false, 0, max, out) < 0)
        return fail(err, errlen, "invalid %s '%s': expected an integer from 0 to %lld", flag, value,
                    max);
    return 0;
}

static int apply_option(struct em_options *opt, const char *flag, const char *value, char *err,
                        size_t errlen)
{
    long long v = 0; /* set by parse_count before any use; the compiler cannot see it at -O3 */
    if (strcmp(flag, "--listen") == 0) {
        if (em_split_listen(value, opt->host, sizeof opt->host, &opt->port) < 0)
            return fail(err, errlen,
                        "invalid --listen '%s': expected HOST:PORT or [IPV6]:PORT, port 0-65535",
                        value);
    } else if (strcmp(flag, "--mode") == 0) {
        if (strcmp(value, "sync") == 0)
            opt->mode = EM_MODE_SYNC;
        else if (strcmp(value, "async") == 0)
            opt->mode = EM_MODE_ASYNC;
        else
            return fail(err, errlen, "invalid --mode '%s': expected sync or async", value);
    } else if (strcmp(flag, "--polls") == 0) {
        if (parse_count(flag, value, 1000000, &v, err, errlen) < 0)
            return -1;
        opt->polls = (unsigned)v;
    } else if (strcmp(flag, "--rejects") == 0) {
        if (parse_count(flag, value, 1000000000, &v, err, errlen) < 0)
            return -1;
        opt->rejects = (unsigned long)v;
    } else if (strcmp(flag, "--result") == 0) {
        if (em_result_parse(value, &opt->result) < 0)
            return fail(err, errlen, "invalid --result '%s': expected CONTINUE, ABORT or CANCELLED",
                        value);
    } else if (strcmp(flag, "--retry-after") == 0) {
        return em_retry_parse(value, &opt->retry, err, errlen);
    } else if (strcmp(flag, "--location") == 0) {
        if (strcmp(value, "absolute") == 0)
            opt->location = EM_LOCATION_ABSOLUTE;
        else if (strcmp(value, "relative") == 0)
            opt->location = EM_LOCATION_RELATIVE;
        else if (strcmp(value, "none") == 0)
            opt->location = EM_LOCATION_NONE;
        else
            return fail(err, errlen, "invalid --location '%s': expected absolute, relative or none",
                        value);
    } else if (strcmp(flag, "--delay") == 0) {
        if (parse_count(flag, value, 86400000, &v, err, errlen) < 0)
            return -1;
        opt->delay_ms = (unsigned long)v;
    } else if (strcmp(flag, "--basic") == 0) {
        const char *colon = strchr(value, ':');
        if (!colon || colon == value)
            return fail(err, errlen, "invalid --basic: expected USER:PASS with a non-empty USER");
        opt->basic = value;
    } else if (strcmp(flag, "--oauth2") == 0) {
        const char *colon = strchr(value, ':');
        if (!*value || colon == value || (colon && !colon[1]))
            return fail(err, errlen,
                        "invalid --oauth2: expected ID:SECRET (or ID with --client-ca), "
                        "both non-empty");
        opt->oauth2 = value;
    } else if (strcmp(flag, "--token-ttl") == 0) {
        if (strcmp(value, "none") == 0)
            opt->token_ttl = EM_TOKEN_TTL_NONE;
        else if (parse_integer(value, false, 1, 100000000, &v) < 0)
            return fail(err, errlen, "invalid --token-ttl '%s': expected 1 to 100000000 or none",
                        value);
        else
            opt->token_ttl = v;
    } else if (strcmp(flag, "--tls-cert") == 0 || strcmp(flag, "--tls-key") == 0 ||
               strcmp(flag, "--client-ca") == 0) {
        if (!*value)
            return fail(err, errlen, "invalid %s: empty file name", flag);
        if (strcmp(flag, "--client-ca") == 0)
            opt->client_ca = value;
        else if (strcmp(flag, "--tls-cert") == 0)
            opt->tls_cert = value;
        else
            opt->tls_key = value;
    } else if (strcmp(flag, "--body-limit") == 0) {
        if (parse_count(flag, value, 1024LL * 1024 * 1024, &v, err, errlen) < 0)
            return -1;
        opt->body_limit = (size_t)v;
    } else if (strcmp(flag, "--journal-max") == 0) {
        if (parse_count(flag, value, 10000000, &v, err, errlen) < 0)
            return -1;
        if (v == 0)
            return fail(err, errlen, "invalid --journal-max '0': must be at least 1");
        opt->journal_max = (size_t)v;
    } else if (strcmp(flag, "--threads") == 0) {
        if (parse_integer(value, false, 1, 256, &v) < 0)
            return fail(err, errlen, "invalid --threads '%s': expected 1 to 256", value);
        opt->threads = (unsigned)v;
    } else if (strcmp(flag, "--chaos") == 0) {
        /* The name is checked against the catalogue by the caller (em_chaos.c). */
        if (!*value)
            return fail(err, errlen, "invalid --chaos: empty name (see --chaos list)");
        opt->chaos = value;
    } else if (strcmp(flag, "--max-connections") == 0 || strcmp(flag, "--max-per-client") == 0) {
        if (parse_integer(value, false, 1, 100000, &v) < 0)
            return fail(err, errlen, "invalid %s '%s': expected 1 to 100000", flag, value);
        if (strcmp(flag, "--max-connections") == 0)
            opt->max_connections = (unsigned)v;
        else
            opt->max_per_client = (unsigned)v;
    } else if (strcmp(flag, "--idle-timeout") == 0 || strcmp(flag, "--header-timeout") == 0) {
        if (parse_integer(value, false, 1, 3600, &v) < 0)
            return fail(err, errlen, "invalid %s '%s': expected 1 to 3600 seconds", flag, value);
        if (strcmp(flag, "--idle-timeout") == 0)
            opt->idle_timeout_s = (unsigned)v;
        else
            opt->header_timeout_s = (unsigned)v;
    } else if (strcmp(flag, "--min-body-rate") == 0) {
        if (parse_count(flag, value, 1000000000, &v, err, errlen) < 0)
            return -1;
        opt->min_body_rate = (unsigned)v;
    } else if (strcmp(flag, "--base-url") == 0) {
        if (em_check_base_url(value) < 0)
            return fail(err, errlen,
                        "invalid --base-url '%.80s': expected http(s)://HOST[:PORT][/PATH] "
                        "without a query, a fragment, a trailing '/' or spaces",
                        value);
        opt->base_url = value;
    } else if (strcmp(flag, "--scenario") == 0) {
        if (!*value)
            return fail(err, errlen, "invalid --scenario: empty file name");
        opt->scenario = value;
    } else {
        return fail(err, errlen, "unknown option '%s'", flag);
    }
    return 0;
}

static bool takes_value(const char *flag)
{
    static const char *const flags[] = {
        "--listen",          "--mode",           "--polls",        "--rejects",
        "--result",          "--retry-after",    "--location",     "--delay",
        "--basic",           "--body-limit",     "--journal-max",  "--threads",
        "--scenario",        "--oauth2",         "--token-ttl",    "--tls-cert",
        "--tls-key",         "--client-ca",      "--chaos",        "--base-url",
        "--max-connections", "--max-per-client", "--idle-timeout", "--header-timeout",
        "--min-body-rate"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strcmp(flag, flags[i]) == 0)
            return true;
    return false;
}

enum em_parse_status em_options_parse(struct em_options *opt, int argc, char **argv, char *err,
                                      size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return EM_PARSE_HELP;
        if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            opt->quiet = true;
            continue;
        }
        /* --flag=value and --flag value are both accepted. */
        char flag[32];
        const char *value = NULL;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        if (eq && (size_t)(eq - arg) < sizeof flag) {
            memcpy(flag, arg, (size_t)(eq - arg));
            flag[eq - arg] = '\0';
            value = eq + 1;
        } else if (strlen(arg) < sizeof flag) {
            strcpy(flag, arg);
        } else {
            fail(err, errlen, "unknown %s '%.40s'", arg[0] == '-' ? "option" : "argument", arg);
            return EM_PARSE_ERROR;
        }
        if (!takes_value(flag)) {
            fail(err, errlen, "unknown %s '%s'", arg[0] == '-' ? "option" : "argument", flag);
            return EM_PARSE_ERROR;
        }
        if (!value) {
            if (i + 1 >= argc) {
                fail(err, errlen, "option '%s' needs a value", flag);
                return EM_PARSE_ERROR;
            }
            value = argv[++i];
        }
        if (apply_option(opt, flag, value, err, errlen) < 0)
            return EM_PARSE_ERROR;
    }
    /* Options that only make sense together, checked once all are known. */
    if (!opt->tls_cert != !opt->tls_key) {
        fail(err, errlen, "--tls-cert and --tls-key go together");
        return EM_PARSE_ERROR;
    }
    if (opt->client_ca && !opt->tls_cert) {
        fail(err, errlen, "--client-ca needs --tls-cert and --tls-key (HTTPS)");
        return EM_PARSE_ERROR;
    }
    if (opt->oauth2 && !strchr(opt->oauth2, ':') && !opt->client_ca) {
        fail(err, errlen, "--oauth2 without a SECRET needs --client-ca (certificate clients)");
        return EM_PARSE_ERROR;
    }
    return EM_PARSE_OK;
}
