/* Adversarial review of the serve store (bindings/serve/serve_store.h): the cases its own suite
 * (test_serve_store.c) did not try, each one a promise of serve_store.h broken before its fix.
 *   - A PostgreSQL password never shows: not when the URL is in libpq's key=value form (taken
 *     for an unknown URL and echoed whole), nor when the query parameter's name is
 *     percent-encoded (libpq decodes it: "%70assword" is "password"), nor for the client
 *     key's passphrase (sslpassword); and redacting many empty passwords stays inside its
 *     buffer (it overflowed by a byte per "***" past the second).
 */
#include "serve_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- passwords in store URLs ------------------------------------------------------------ */

static void assert_hidden(const char *url, const char *secret)
{
    char err[1024] = "";
    struct serve_store *st = serve_store_open(url, "review", err, sizeof err);
    if (st) {
        const char *shown = serve_store_display_name(st);
        if (strstr(shown, secret))
            fail_msg("%s shown in the store's display name: %s", secret, shown);
        serve_store_close(st);
        return;
    }
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    if (strstr(err, secret))
        fail_msg("%s shown in the error: %s", secret, err);
}

static void test_password_never_shown(void **state)
{
    (void)state;
    /* libpq's key=value form is not a store URL: refused, without echoing its password. */
    assert_hidden("host=/nonexistent-dir port=1 password=hunter2Secret", "hunter2Secret");
    assert_hidden("postgresql:host=db password=hunter2Secret", "hunter2Secret");
    /* libpq percent-decodes parameter names: %70assword is password. */
    assert_hidden("postgresql://u@/db?host=/nonexistent-dir&port=1&%70assword=hunter2Secret",
                  "hunter2Secret");
    assert_hidden("postgresql://u@/db?host=/nonexistent-dir&port=1&pass%77ord=hunter2Secret",
                  "hunter2Secret");
    /* The passphrase of the client's TLS key is a secret too. */
    assert_hidden("postgresql://u@/db?host=/nonexistent-dir&port=1&sslpassword=keyPassphrase",
                  "keyPassphrase");
    /* Still shown: what is not secret (the error must stay useful). */
    /* Many short secrets: each "***" is longer than the value it replaces (the redacted copy
       overflowed its buffer with three empty ones: ASan saw it). */
    assert_hidden("postgresql://u:@/db?password=&password=&password=&host=/nonexistent-dir&"
                  "port=1",
                  "nothing secret here");
    assert_hidden("postgresql://u:@/db?password=&sslpassword=&%70assword=&password=x&"
                  "sslpassword=y&host=/nonexistent-dir&port=1",
                  "password=x");
    char err[1024] = "";
    assert_null(serve_store_open("mysql://root:hunter2Secret@db/x", "review", err, sizeof err));
    assert_non_null(strstr(err, "mysql:"));
    assert_null(strstr(err, "hunter2Secret"));
    assert_null(serve_store_open("postgresql://u@/db?host=/nonexistent-dir&port=1&"
                                 "%70assword=hunter2Secret",
                                 "review", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir"));
}

int main(void)
{
    const struct CMUnitTest url_tests[] = {
        cmocka_unit_test(test_password_never_shown),
    };
    int failed = cmocka_run_group_tests_name("serve store review: URLs", url_tests, NULL, NULL);
    return failed ? 1 : 0;
}
