/*
 * Unit tests of the EM simulator's command line: option parsing (defaults, both spellings,
 * every error path), Retry-After specs and the HTTP-dates they produce, HOST:PORT and
 * result names. These are the inputs an operator types, so bad ones must be refused with
 * a message rather than half-applied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "em.h"

static enum em_parse_status parse(struct em_options *opt, char *err, size_t errlen, ...)
{
    char *argv[32] = {"em"};
    int argc = 1;
    va_list ap;
    va_start(ap, errlen);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    em_options_init(opt);
    err[0] = '\0';
    return em_options_parse(opt, argc, argv, err, errlen);
}

static void test_defaults_match_the_documentation(void **state)
{
    (void)state;
    struct em_options opt;
    char err[256];
    assert_int_equal(parse(&opt, err, sizeof err, NULL), EM_PARSE_OK);
    assert_string_equal(opt.host, "127.0.0.1");
    assert_int_equal(opt.port, 6789);
    assert_int_equal(opt.threads, 2);
    assert_int_equal(opt.mode, EM_MODE_SYNC);
    assert_int_equal(opt.polls, 1);
    assert_int_equal(opt.rejects, 0);
    assert_int_equal(opt.result, EM_RESULT_CONTINUE);
    assert_int_equal(opt.retry.kind, EM_RETRY_SECONDS);
    assert_int_equal(opt.retry.seconds, 1);
    assert_int_equal(opt.location, EM_LOCATION_ABSOLUTE);
    assert_int_equal(opt.delay_ms, 0);
    assert_null(opt.basic);
    assert_int_equal(opt.body_limit, 262144);
    assert_int_equal(opt.journal_max, 10000);
    assert_null(opt.scenario);
    assert_false(opt.quiet);
}

static void test_every_option_is_applied_in_both_spellings(void **state)
{
    (void)state;
    struct em_options opt;
    char err[256];
    assert_int_equal(parse(&opt, err, sizeof err, "--listen", "[::1]:0", "--mode=async", "--polls",
                           "3", "--rejects=2", "--result", "ABORT", "--retry-after", "date:-5",
                           "--location=relative", "--delay", "250", "--basic", "u:p:w",
                           "--body-limit", "10", "--journal-max", "7", "--threads", "4",
                           "--scenario", "s.lua", "--quiet", NULL),
                     EM_PARSE_OK);
    assert_string_equal(opt.host, "::1");
    assert_int_equal(opt.port, 0);
    assert_int_equal(opt.mode, EM_MODE_ASYNC);
    assert_int_equal(opt.polls, 3);
    assert_int_equal(opt.rejects, 2);
    assert_int_equal(opt.result, EM_RESULT_ABORT);
    assert_int_equal(opt.retry.kind, EM_RETRY_DATE);
    assert_int_equal(opt.retry.seconds, -5);
    assert_int_equal(opt.location, EM_LOCATION_RELATIVE);
    assert_int_equal(opt.delay_ms, 250);
    assert_string_equal(opt.basic, "u:p:w");
    assert_int_equal(opt.body_limit, 10);
    assert_int_equal(opt.journal_max, 7);
    assert_int_equal(opt.threads, 4);
    assert_string_equal(opt.scenario, "s.lua");
    assert_true(opt.quiet);
}

static void test_help_wins(void **state)
{
    (void)state;
    struct em_options opt;
    char err[256];
    assert_int_equal(parse(&opt, err, sizeof err, "--mode", "async", "--help", NULL),
                     EM_PARSE_HELP);
    assert_int_equal(parse(&opt, err, sizeof err, "-h", NULL), EM_PARSE_HELP);
}

static void expect_error(const char *a, const char *b, const char *needle)
{
    struct em_options opt;
    char err[256];
    enum em_parse_status st =
        b ? parse(&opt, err, sizeof err, a, b, NULL) : parse(&opt, err, sizeof err, a, NULL);
    assert_int_equal(st, EM_PARSE_ERROR);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_bad_options_are_refused_with_a_message(void **state)
{
    (void)state;
    expect_error("--frobnicate", NULL, "unknown option '--frobnicate'");
    expect_error("stray", NULL, "unknown argument 'stray'");
    expect_error("--mode", NULL, "needs a value");
    expect_error("--mode", "sideways", "--mode 'sideways'");
    expect_error("--polls", "-1", "--polls");
    expect_error("--polls", "1x", "--polls");
    expect_error("--rejects", "", "--rejects");
    expect_error("--result", "continue", "--result");
    expect_error("--retry-after", "soon", "--retry-after 'soon'");
    expect_error("--location", "here", "--location");
    expect_error("--delay", "99999999999", "--delay");
    expect_error("--basic", ":pass", "--basic");
    expect_error("--basic", "nocolon", "--basic");
    expect_error("--body-limit", "1e6", "--body-limit");
    expect_error("--journal-max", "0", "--journal-max");
    expect_error("--threads", "0", "--threads");
    expect_error("--threads", "1000", "--threads");
    expect_error("--listen", "localhost", "--listen");
    expect_error("--listen", "host:70000", "--listen");
    expect_error("--listen", "::1:80", "--listen");
    expect_error("--listen", ":80", "--listen");
    expect_error("--scenario", "", "--scenario");
}

static void test_retry_after_specs(void **state)
{
    (void)state;
    struct em_retry r;
    char err[256], buf[64];
    assert_int_equal(em_retry_parse("0", &r, err, sizeof err), 0);
    assert_true(em_retry_value(&r, 1000, buf, sizeof buf));
    assert_string_equal(buf, "0");
    assert_int_equal(em_retry_parse("120", &r, err, sizeof err), 0);
    assert_true(em_retry_value(&r, 1000, buf, sizeof buf));
    assert_string_equal(buf, "120");
    assert_int_equal(em_retry_parse("none", &r, err, sizeof err), 0);
    assert_false(em_retry_value(&r, 1000, buf, sizeof buf));
    assert_int_equal(em_retry_parse("raw:not a date", &r, err, sizeof err), 0);
    assert_true(em_retry_value(&r, 1000, buf, sizeof buf));
    assert_string_equal(buf, "not a date");
    assert_int_equal(em_retry_parse("raw:", &r, err, sizeof err), 0);
    assert_true(em_retry_value(&r, 1000, buf, sizeof buf));
    assert_string_equal(buf, "");
    /* 784111777 is the RFC 9110 example date. */
    assert_int_equal(em_retry_parse("date:10", &r, err, sizeof err), 0);
    assert_true(em_retry_value(&r, 784111767, buf, sizeof buf));
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(em_retry_parse("date:-7", &r, err, sizeof err), 0);
    assert_true(em_retry_value(&r, 784111784, buf, sizeof buf));
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");

    const char *bad[] = {"",       "-1",      "1.5",        " 1",   "1 ",         "date:",
                         "date:x", "date:1s", "raw:a\r\nb", "Soon", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (em_retry_parse(bad[i], &r, err, sizeof err) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(strstr(err, "--retry-after"));
    }
}

static void test_http_date_is_imf_fixdate(void **state)
{
    (void)state;
    char buf[EM_HTTP_DATE_LEN];
    em_http_date(0, buf);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    em_http_date(951782400, buf); /* leap day */
    assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
}

static void test_split_listen(void **state)
{
    (void)state;
    char host[64];
    unsigned port;
    assert_int_equal(em_split_listen("0.0.0.0:8080", host, sizeof host, &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 8080);
    assert_int_equal(em_split_listen("[fe80::1]:65535", host, sizeof host, &port), 0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 65535);
    assert_int_equal(em_split_listen("localhost:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(em_split_listen("[::1]80", host, sizeof host, &port), -1);
    assert_int_equal(em_split_listen("[::1", host, sizeof host, &port), -1);
    assert_int_equal(em_split_listen("h:", host, sizeof host, &port), -1);
    assert_int_equal(em_split_listen("h:-1", host, sizeof host, &port), -1);
    assert_int_equal(em_split_listen("averyveryveryveryveryveryveryveryveryveryveryveryveryvery"
                                     "veryverylonghost:1",
                                     host, sizeof host, &port),
                     -1);
}

static void test_auth_and_tls_options(void **state)
{
    (void)state;
    struct em_options opt;
    char err[256];
    assert_int_equal(parse(&opt, err, sizeof err, NULL), EM_PARSE_OK);
    assert_null(opt.oauth2);
    assert_int_equal(opt.token_ttl, 3600);
    assert_null(opt.tls_cert);
    assert_int_equal(parse(&opt, err, sizeof err, "--oauth2", "id:se:cret", "--token-ttl=none",
                           "--tls-cert", "c.pem", "--tls-key=k.pem", "--client-ca", "ca.pem", NULL),
                     EM_PARSE_OK);
    assert_string_equal(opt.oauth2, "id:se:cret");
    assert_int_equal(opt.token_ttl, EM_TOKEN_TTL_NONE);
    assert_string_equal(opt.tls_cert, "c.pem");
    assert_string_equal(opt.tls_key, "k.pem");
    assert_string_equal(opt.client_ca, "ca.pem");
    assert_int_equal(parse(&opt, err, sizeof err, "--oauth2", "id", "--tls-cert", "c", "--tls-key",
                           "k", "--client-ca", "ca", "--token-ttl", "1", NULL),
                     EM_PARSE_OK);
    assert_int_equal(opt.token_ttl, 1);

    static const char *const bad[][4] = {
        {"--oauth2", "id", NULL, NULL}, /* no secret needs --client-ca */
        {"--oauth2", ":secret", NULL, NULL},     {"--oauth2", "id:", NULL, NULL},
        {"--token-ttl", "0", NULL, NULL},        {"--token-ttl", "soon", NULL, NULL},
        {"--tls-cert", "c.pem", NULL, NULL},     {"--tls-key", "k.pem", NULL, NULL},
        {"--client-ca", "ca.pem", NULL, NULL},   {"--tls-cert", "", NULL, NULL},
        {"--client-ca", "ca", "--oauth2", "id"}, /* no TLS */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            parse(&opt, err, sizeof err, bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL),
            EM_PARSE_ERROR);
        assert_true(strlen(err) > 0);
    }
}

static void test_result_names_round_trip(void **state)
{
    (void)state;
    enum em_result r;
    const char *names[] = {"CONTINUE", "ABORT", "CANCELLED"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(em_result_parse(names[i], &r), 0);
        assert_string_equal(em_result_name(r), names[i]);
    }
    assert_int_equal(em_result_parse("Abort", &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_the_documentation),
        cmocka_unit_test(test_every_option_is_applied_in_both_spellings),
        cmocka_unit_test(test_help_wins),
        cmocka_unit_test(test_bad_options_are_refused_with_a_message),
        cmocka_unit_test(test_retry_after_specs),
        cmocka_unit_test(test_http_date_is_imf_fixdate),
        cmocka_unit_test(test_split_listen),
        cmocka_unit_test(test_auth_and_tls_options),
        cmocka_unit_test(test_result_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
