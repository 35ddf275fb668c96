/*
 * Unit tests of the options that bound what one client may hold in `lcmcoord em`
 * (connection caps, idle/head/body deadlines) and of --base-url, the only source of the
 * absolute URLs besides the listen address: defaults as documented in docs/em.md, both
 * spellings, and every bad value refused with a message naming the option.
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
    assert_int_equal(opt.max_connections, 1000);
    assert_int_equal(opt.max_per_client, 128);
    assert_int_equal(opt.idle_timeout_s, 15);
    assert_int_equal(opt.header_timeout_s, 10);
    assert_int_equal(opt.min_body_rate, 1024);
    assert_null(opt.base_url);
}

static void test_values_are_applied_in_both_spellings(void **state)
{
    (void)state;
    struct em_options opt;
    char err[256];
    assert_int_equal(parse(&opt, err, sizeof err, "--max-connections", "50", "--max-per-client=5",
                           "--idle-timeout", "3", "--header-timeout=2", "--min-body-rate", "0",
                           "--base-url=https://em.example:8443/api", NULL),
                     EM_PARSE_OK);
    assert_int_equal(opt.max_connections, 50);
    assert_int_equal(opt.max_per_client, 5);
    assert_int_equal(opt.idle_timeout_s, 3);
    assert_int_equal(opt.header_timeout_s, 2);
    assert_int_equal(opt.min_body_rate, 0);
    assert_string_equal(opt.base_url, "https://em.example:8443/api");
}

static void test_bad_values_are_refused_naming_the_option(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"--max-connections", "0"},   {"--max-connections", "100001"}, {"--max-per-client", "-1"},
        {"--max-per-client", "x"},    {"--idle-timeout", "0"},         {"--idle-timeout", "3601"},
        {"--header-timeout", ""},     {"--min-body-rate", "1e3"},      {"--base-url", "ftp://x"},
        {"--base-url", "http://"},    {"--base-url", "http://x/"},     {"--base-url", "http://x?y"},
        {"--base-url", "http://x#y"}, {"--base-url", "http://x y"},    {"--base-url", "http:///x"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct em_options opt;
        char err[256];
        assert_int_equal(parse(&opt, err, sizeof err, bad[i][0], bad[i][1], NULL), EM_PARSE_ERROR);
        assert_non_null(strstr(err, bad[i][0]));
        assert_null(strchr(err, '\n'));
    }
}

static void test_base_url_syntax(void **state)
{
    (void)state;
    assert_int_equal(em_check_base_url("http://127.0.0.1:6789"), 0);
    assert_int_equal(em_check_base_url("https://[::1]:8443/a/b"), 0);
    assert_int_equal(em_check_base_url("https://em"), 0);
    assert_int_equal(em_check_base_url("HTTP://em"), -1);
    assert_int_equal(em_check_base_url("http://em/\x01"), -1);
    assert_int_equal(em_check_base_url("http://em\"x"), -1);
    char long_url[EM_BASE_URL_MAX + 10];
    memset(long_url, 'a', sizeof long_url - 1);
    memcpy(long_url, "http://", 7);
    long_url[sizeof long_url - 1] = '\0';
    assert_int_equal(em_check_base_url(long_url), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_the_documentation),
        cmocka_unit_test(test_values_are_applied_in_both_spellings),
        cmocka_unit_test(test_bad_values_are_refused_naming_the_option),
        cmocka_unit_test(test_base_url_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
