/*
 * Unit tests of the SSH client's logic that needs no server: reading pinned host key
 * fingerprints in the forms operators paste, writing them as ssh-keygen does, capping
 * command output, and the failures lcmc_ssh_connect reports before (or instead of) talking
 * SSH: bad options, an interrupted engine, a port where nothing listens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#include "lcmcoord/ssh.h"
#include "ssh.h"

/* The fingerprint ssh-keygen -l printed for a test key, and its 32 bytes. */
static const char FINGERPRINT[] = "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeU";

static void test_parse_accepts_ssh_keygen_form_and_raw_base64(void **state)
{
    (void)state;
    unsigned char a[32], b[32], c[32], d[32];
    assert_int_equal(lcmc__ssh_parse_sha256(FINGERPRINT, a), 0);
    assert_int_equal(lcmc__ssh_parse_sha256(FINGERPRINT + 7, b), 0);
    assert_int_equal(lcmc__ssh_parse_sha256("NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeU=", c), 0);
    assert_int_equal(
        lcmc__ssh_parse_sha256("  sha256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeU\n", d), 0);
    assert_memory_equal(a, b, 32);
    assert_memory_equal(a, c, 32);
    assert_memory_equal(a, d, 32);
    assert_int_equal(a[0], 0x34); /* "NGN/" decodes to 34 63 7f */
    assert_int_equal(a[1], 0x63);
    assert_int_equal(a[2], 0x7f);
}

static void test_parse_refuses_what_is_not_32_bytes_of_base64(void **state)
{
    (void)state;
    unsigned char digest[32];
    const char *bad[] = {
        NULL,
        "",
        "SHA256:",
        "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4Fe",   /* 42 characters */
        "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeUU", /* 44 without "=" */
        "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeU==",
        "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4Fe!",
        "SHA256:NGN_to15B-0XdDtbYkbfDa4zj_oWFRlCBAdqSCP4FeU", /* base64url */
        "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRl CBAdqSCP4FeU",
        "MD5:34:63:7f:ad:cd:79:07:ed:17:74:3b:62:46:db:0d:ae",
        /* The last character's two spare bits set: not what any tool prints. */
        "SHA256:NGN/to15B+0XdDtbYkbfDa4zj/oWFRlCBAdqSCP4FeV",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (lcmc__ssh_parse_sha256(bad[i], digest) == 0)
            fail_msg("accepted %s", bad[i] ? bad[i] : "NULL");
    }
}

static void test_format_is_what_ssh_keygen_prints(void **state)
{
    (void)state;
    unsigned char digest[32];
    char text[LCMC_SSH_FINGERPRINT_SIZE];
    assert_int_equal(lcmc__ssh_parse_sha256(FINGERPRINT, digest), 0);
    lcmc__ssh_format_sha256(digest, text);
    assert_string_equal(text, FINGERPRINT);

    unsigned char zero[32] = {0};
    lcmc__ssh_format_sha256(zero, text);
    assert_string_equal(text, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
}

static void test_digests_compare_by_content(void **state)
{
    (void)state;
    unsigned char a[32], b[32];
    assert_int_equal(lcmc__ssh_parse_sha256(FINGERPRINT, a), 0);
    memcpy(b, a, 32);
    assert_true(lcmc__ssh_digest_equal(a, b));
    b[31] ^= 1;
    assert_false(lcmc__ssh_digest_equal(a, b));
}

static void test_capture_keeps_up_to_the_cap_and_marks_the_cut(void **state)
{
    (void)state;
    lcmc_buffer buf = {0};
    buf.cap = 10;
    int truncated = 0;
    assert_int_equal(lcmc__ssh_capture(&buf, &truncated, "hello", 5), 0);
    assert_int_equal(truncated, 0);
    assert_int_equal(lcmc__ssh_capture(&buf, &truncated, " world!", 7), 0);
    assert_int_equal(truncated, 1);
    assert_int_equal(buf.length, 10);
    assert_string_equal(buf.data, "hello worl");
    /* Once full, more output is dropped without error: the command must be drained. */
    assert_int_equal(lcmc__ssh_capture(&buf, &truncated, "more", 4), 0);
    assert_int_equal(buf.length, 10);
    lcmc__buffer_free(&buf);
}

static void test_capture_exactly_at_the_cap_is_not_a_cut(void **state)
{
    (void)state;
    lcmc_buffer buf = {0};
    buf.cap = 4;
    int truncated = 0;
    assert_int_equal(lcmc__ssh_capture(&buf, &truncated, "abcd", 4), 0);
    assert_int_equal(truncated, 0);
    assert_int_equal(lcmc__ssh_capture(&buf, &truncated, "", 0), 0);
    assert_int_equal(truncated, 0);
    lcmc__buffer_free(&buf);
}

/* ---- lcmc_ssh_connect without a server ------------------------------------------------ */

static lcmc_status connect_with(lcmc_engine *engine, const lcmc_ssh_options *o)
{
    lcmc_ssh_session *session = (lcmc_ssh_session *)(uintptr_t)1;
    lcmc_status status = lcmc_ssh_connect(engine, o, &session);
    assert_null(session);
    return status;
}

static void test_connect_refuses_bad_options_with_a_message(void **state)
{
    (void)state;
    lcmc_engine *engine = NULL;
    assert_int_equal(lcmc_engine_new(&engine), LCMC_OK);
    struct {
        lcmc_ssh_options o;
        const char *expected;
    } cases[] = {
        {{LCMC_SSH_OPTIONS_VERSION, NULL, 0, "u", "p", NULL, NULL, NULL, NULL, 0, 0, 0}, "host"},
        {{LCMC_SSH_OPTIONS_VERSION, "h/x", 0, "u", "p", NULL, NULL, NULL, NULL, 0, 0, 0}, "host"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 70000, "u", "p", NULL, NULL, NULL, NULL, 0, 0, 0}, "port"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 0, "", "p", NULL, NULL, NULL, NULL, 0, 0, 0}, "user"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 0, "u", NULL, NULL, NULL, NULL, NULL, 0, 0, 0},
         "password or a key file"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 0, "u", "p", NULL, NULL, "/k", FINGERPRINT, 0, 0, 0},
         "exclude"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 0, "u", "p", NULL, NULL, NULL, "SHA256:nope", 0, 0, 0},
         "host_key_sha256"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 0, "u", "p", NULL, NULL, NULL, NULL, 0, -1, 0}, "timeout"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 0, "u", NULL, "/nonexistent/key", NULL, NULL, NULL, 0, 0,
          0},
         "/nonexistent/key"},
        {{LCMC_SSH_OPTIONS_VERSION, "h", 0, "u", "p", NULL, NULL, "/nonexistent/known_hosts", NULL,
          0, 0, 0},
         "/nonexistent/known_hosts"},
        {{99, "h", 0, "u", "p", NULL, NULL, NULL, NULL, 0, 0, 0}, "version"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(connect_with(engine, &cases[i].o), LCMC_EUSAGE);
        const lcmc_error *err = lcmc_engine_last_error(engine);
        assert_int_equal(lcmc_error_status(err), LCMC_EUSAGE);
        if (strstr(lcmc_error_message(err), cases[i].expected) == NULL)
            fail_msg("case %zu: %s", i, lcmc_error_message(err));
    }
    lcmc_ssh_session *session = NULL;
    assert_int_equal(lcmc_ssh_connect(engine, NULL, &session), LCMC_EUSAGE);
    assert_int_equal(lcmc_ssh_connect(NULL, NULL, &session), LCMC_EUSAGE);
    assert_int_equal(lcmc_ssh_connect(engine, NULL, NULL), LCMC_EUSAGE);
    lcmc_engine_free(engine);
}

/* A loopback port where nothing listens: bound, never listened on, closed after. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t length = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &length), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static void test_connect_to_a_closed_port_is_a_transport_error(void **state)
{
    (void)state;
    lcmc_engine *engine = NULL;
    assert_int_equal(lcmc_engine_new(&engine), LCMC_OK);
    lcmc_ssh_options o = LCMC_SSH_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = closed_port();
    o.user = "root";
    o.password = "canary-secret";
    o.accept_unknown_host_key = 1;
    o.known_hosts = "/dev/null";
    o.timeout = 5;
    assert_int_equal(connect_with(engine, &o), LCMC_ETRANSPORT);
    const char *message = lcmc_error_message(lcmc_engine_last_error(engine));
    assert_non_null(strstr(message, "127.0.0.1"));
    assert_null(strstr(message, "canary-secret"));
    lcmc_engine_free(engine);
}

static void test_connect_on_an_interrupted_engine_is_cancelled(void **state)
{
    (void)state;
    lcmc_engine *engine = NULL;
    assert_int_equal(lcmc_engine_new(&engine), LCMC_OK);
    lcmc_engine_interrupt(engine);
    lcmc_ssh_options o = LCMC_SSH_OPTIONS_INIT;
    o.host = "127.0.0.1";
    o.port = closed_port();
    o.user = "root";
    o.password = "p";
    o.known_hosts = "/dev/null";
    assert_int_equal(connect_with(engine, &o), LCMC_ECANCELLED);
    lcmc_engine_free(engine);
}

static void test_exec_and_getters_tolerate_null(void **state)
{
    (void)state;
    lcmc_ssh_result *r = (lcmc_ssh_result *)(uintptr_t)1;
    assert_int_equal(lcmc_ssh_exec(NULL, "true", 0, &r), LCMC_EUSAGE);
    assert_null(r);
    assert_int_equal(lcmc_ssh_exec(NULL, "true", 0, NULL), LCMC_EUSAGE);
    size_t length = 99;
    assert_string_equal(lcmc_ssh_result_stdout(NULL, &length), "");
    assert_int_equal(length, 0);
    assert_int_equal(lcmc_ssh_result_exit_status(NULL), -1);
    assert_null(lcmc_ssh_result_error(NULL));
    lcmc_ssh_result_free(NULL);
    lcmc_ssh_session_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_ssh_keygen_form_and_raw_base64),
        cmocka_unit_test(test_parse_refuses_what_is_not_32_bytes_of_base64),
        cmocka_unit_test(test_format_is_what_ssh_keygen_prints),
        cmocka_unit_test(test_digests_compare_by_content),
        cmocka_unit_test(test_capture_keeps_up_to_the_cap_and_marks_the_cut),
        cmocka_unit_test(test_capture_exactly_at_the_cap_is_not_a_cut),
        cmocka_unit_test(test_connect_refuses_bad_options_with_a_message),
        cmocka_unit_test(test_connect_to_a_closed_port_is_a_transport_error),
        cmocka_unit_test(test_connect_on_an_interrupted_engine_is_cancelled),
        cmocka_unit_test(test_exec_and_getters_tolerate_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
