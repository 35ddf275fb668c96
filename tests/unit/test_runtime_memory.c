/*
 * How liblcmcoord treats memory, observed at the allocator. The runtime's sources are built
 * into this program with malloc's free, realloc and calloc wrapped (-Wl,--wrap), so that
 * every block the runtime itself gives back can be looked at, and one chosen allocation
 * can fail. Real coordinations run against `lcmcoord em` (LCMCOORD_BIN) on 127.0.0.1:
 *  - no block the runtime frees still holds the Basic password, the OAuth 2.0 client secret
 *    or an access token (libcurl's and jansson's own blocks are not seen here: libcurl's are
 *    out of reach, jansson's are wiped by the free function the runtime gives it);
 *  - a request whose header collector cannot get its memory still completes.
 */
#define _GNU_SOURCE /* memmem */
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* Under valgrind a block's bytes never written are "undefined": the scan reads them on
 * purpose (a freed block is looked at whole), so it tells memcheck they are fine to read. */
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(address, size) ((void)(address), (void)(size))
#endif

#include "internal.h"
#include <lcmcoord/lcmcoord.h>

extern char **environ;

#define PASSWORD "Pa55-in-memory-9f3c1"
#define SECRET   "S3cret-in-memory-7d21a"

/* ---- the allocator seam ------------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *block, size_t size);
void __real_free(void *block);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *block, size_t size);
void __wrap_free(void *block);

static const char *watched[5]; /* NULL-ended: strings no freed block may hold */
static size_t unwiped;         /* blocks freed (or moved by realloc) still holding one */
static size_t header_table_callocs;
static size_t fail_header_table_calloc_at; /* 0: never */
static size_t allocations;                 /* malloc, calloc and realloc calls counted */
static size_t fail_allocation_at;          /* 0: never */

/* Whether this allocation is the one chosen to fail. */
static int chosen_to_fail(void)
{
    allocations++;
    return fail_allocation_at != 0 && allocations == fail_allocation_at;
}

void *__wrap_malloc(size_t size)
{
    return chosen_to_fail() ? NULL : __real_malloc(size);
}

static void look_at(const void *block)
{
    if (block == NULL || watched[0] == NULL)
        return;
    size_t size = malloc_usable_size((void *)block);
    VALGRIND_MAKE_MEM_DEFINED(block, size);
    for (const char **w = watched; *w; w++)
        if (memmem(block, size, *w, strlen(*w)) != NULL) {
            unwiped++;
            return;
        }
}

void __wrap_free(void *block)
{
    look_at(block);
    __real_free(block);
}

void *__wrap_realloc(void *block, size_t size)
{
    look_at(block); /* realloc may move it and free the old block as it is */
    return chosen_to_fail() ? NULL : __real_realloc(block, size);
}

/* The header collector's first tables are the runtime's only calloc(16, sizeof(char *))
 * (transfer.c; a call's header list is calloc(n + 2), a handful here). */
void *__wrap_calloc(size_t count, size_t size)
{
    if (count == 16 && size == sizeof(char *)) {
        header_table_callocs++;
        if (header_table_callocs == fail_header_table_calloc_at)
            return NULL;
    }
    return chosen_to_fail() ? NULL : __real_calloc(count, size);
}

/* ---- an EM to talk to ---------------------------------------------------------------- */

typedef struct em {
    pid_t pid;
    char url[128];
} em;

static pid_t em_running; /* stopped by the teardown when a test fails half-way */

static void em_start(em *m, const char *const *flags)
{
    /* LCMCOORD_BIN, else the lcmcoord built next to this program (build/bin). */
    const char *bin = getenv("LCMCOORD_BIN");
    char beside[4096];
    if (bin == NULL) {
        ssize_t n = readlink("/proc/self/exe", beside, sizeof beside - 16);
        assert_true(n > 0);
        beside[n] = '\0';
        char *slash = strrchr(beside, '/');
        assert_non_null(slash);
        strcpy(slash + 1, "lcmcoord");
        bin = beside;
    }
    int out[2];
    assert_int_equal(pipe(out), 0);
    const char *argv[16] = {bin, "em", "--listen", "127.0.0.1:0"};
    size_t n = 4;
    for (const char *const *f = flags; *f && n < 15; f++)
        argv[n++] = *f;
    argv[n] = NULL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    assert_int_equal(posix_spawn(&m->pid, bin, &actions, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    em_running = m->pid;
    /* "listening on URL": the EM says so once it accepts connections. */
    char line[256];
    size_t length = 0;
    char c;
    while (length + 1 < sizeof line && read(out[0], &c, 1) == 1 && c != '\n')
        line[length++] = c;
    line[length] = '\0';
    close(out[0]);
    assert_int_equal(sscanf(line, "listening on %127s", m->url), 1);
}

static void em_stop(em *m)
{
    kill(m->pid, SIGTERM);
    int status;
    waitpid(m->pid, &status, 0);
    em_running = 0;
}

static int stop_em_left_running(void **state)
{
    (void)state;
    if (em_running) {
        kill(em_running, SIGTERM);
        waitpid(em_running, NULL, 0);
        em_running = 0;
    }
    watched[0] = NULL;
    fail_header_table_calloc_at = fail_allocation_at = 0;
    return 0;
}

static const char REQUEST[] =
    "{\"vnfInstanceId\":\"4d2c7f10-8e55-4a3b-b6e1-2f9c0d7a5e31\","
    "\"vnfLcmOpOccId\":\"e8b1c3a2-5f4d-4c6e-9a7b-1d0e2f3a4b5c\",\"lcmOperationType\":\"CHANGE_"
    "VNFPKG\","
    "\"coordinationActionName\":\"prv.test.memory\","
    "\"_links\":{\"vnfLcmOpOcc\":{\"href\":\"http://vnfm.test:9890/vnflcm/v2/vnf_lcm_op_occs/"
    "e8b1\"},"
    "\"vnfInstance\":{\"href\":\"http://vnfm.test:9890/vnflcm/v2/vnf_instances/4d2c\"}}}";

/* One coordination with these credentials, everything freed after. Returns its result. */
static lcmc_result coordinate(const char *endpoint, const char *authentication)
{
    lcmc_engine *engine = NULL;
    lcmc_client *client = NULL;
    lcmc_coordination *coord = NULL;
    lcmc_result result = (lcmc_result)-1;
    if (lcmc_engine_new(&engine) != LCMC_OK)
        return result; /* only when an allocation was made to fail */
    lcmc_client_options options = LCMC_CLIENT_OPTIONS_INIT;
    options.endpoint = endpoint;
    options.authentication_json = authentication;
    options.timeout = 30;
    if (lcmc_client_new(&client, engine, &options) == LCMC_OK &&
        lcmc_client_coordinate(client, REQUEST, 0, &coord) == LCMC_OK)
        result = lcmc_coordination_result(coord);
    lcmc_coordination_free(coord);
    lcmc_client_free(client);
    lcmc_engine_free(engine);
    return result;
}

/* ---- the tests ------------------------------------------------------------------------- */

static void basic_password_is_wiped_from_every_block_freed(void **state)
{
    (void)state;
    em m;
    const char *flags[] = {"--basic", "tacker:" PASSWORD, NULL};
    em_start(&m, flags);
    watched[0] = PASSWORD;
    watched[1] = NULL;
    unwiped = 0;
    lcmc_result result =
        coordinate(m.url, "{\"authType\":[\"BASIC\"],\"paramsBasic\":"
                          "{\"userName\":\"tacker\",\"password\":\"" PASSWORD "\"}}");
    watched[0] = NULL;
    em_stop(&m);
    assert_int_equal(result, LCMC_RESULT_CONTINUE);
    assert_int_equal(unwiped, 0);
}

static void oauth2_secret_and_token_are_wiped_from_every_block_freed(void **state)
{
    (void)state;
    em m;
    const char *flags[] = {"--oauth2", "vnfm:" SECRET, NULL};
    em_start(&m, flags);
    char *authentication = lcmc__asprintf(
        "{\"authType\":[\"OAUTH2_CLIENT_CREDENTIALS\"],\"paramsOauth2ClientCredentials\":"
        "{\"clientId\":\"vnfm\",\"clientPassword\":\"" SECRET "\",\"tokenEndpoint\":\"%s/token\"}}",
        m.url);
    assert_non_null(authentication);
    /* The token itself is the EM's random choice; what holds it in the runtime's blocks is
     * watched instead: the token endpoint's answer ("access_token") and the Authorization
     * line the runtime makes ("Bearer "). */
    watched[0] = SECRET;
    watched[1] = "access_token";
    watched[2] = "Bearer ";
    watched[3] = NULL;
    unwiped = 0;
    lcmc_result result = coordinate(m.url, authentication);
    watched[0] = NULL;
    free(authentication);
    em_stop(&m);
    assert_int_equal(result, LCMC_RESULT_CONTINUE);
    assert_int_equal(unwiped, 0);
}

static void header_collector_survives_a_failed_allocation(void **state)
{
    (void)state;
    em m;
    const char *flags[] = {NULL};
    em_start(&m, flags);
    /* The second table (the values') cannot be had: the first one must not be used alone. */
    header_table_callocs = 0;
    fail_header_table_calloc_at = 2;
    lcmc_result result = coordinate(m.url, NULL);
    fail_header_table_calloc_at = 0;
    em_stop(&m);
    assert_true(header_table_callocs >= 3); /* tried again on the next header */
    assert_int_equal(result, LCMC_RESULT_CONTINUE);
}

/* Each allocation of one OAuth 2.0 coordination fails in turn (a run per allocation): the
 * runtime must report or survive every one, never crash. */
static void every_failed_allocation_is_survived(void **state)
{
    (void)state;
    em m;
    const char *flags[] = {"--oauth2", "vnfm:" SECRET, NULL};
    em_start(&m, flags);
    char *authentication = lcmc__asprintf(
        "{\"authType\":[\"OAUTH2_CLIENT_CREDENTIALS\"],\"paramsOauth2ClientCredentials\":"
        "{\"clientId\":\"vnfm\",\"clientPassword\":\"" SECRET "\",\"tokenEndpoint\":\"%s/token\"}}",
        m.url);
    assert_non_null(authentication);
    allocations = 0;
    assert_int_equal(coordinate(m.url, authentication), LCMC_RESULT_CONTINUE);
    size_t total = allocations;
    for (size_t k = 1; k <= total; k++) {
        allocations = 0;
        fail_allocation_at = k;
        coordinate(m.url, authentication);
        fail_allocation_at = 0;
    }
    free(authentication);
    em_stop(&m);
    print_message("%zu allocations in one coordination, each made to fail in turn\n", total);
    assert_true(total > 50); /* the sweep covered a real coordination */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(basic_password_is_wiped_from_every_block_freed,
                                  stop_em_left_running),
        cmocka_unit_test_teardown(oauth2_secret_and_token_are_wiped_from_every_block_freed,
                                  stop_em_left_running),
        cmocka_unit_test_teardown(header_collector_survives_a_failed_allocation,
                                  stop_em_left_running),
        cmocka_unit_test_teardown(every_failed_allocation_is_survived, stop_em_left_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
