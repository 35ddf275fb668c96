/*
 * Unit tests of the coordination state machine (K polls, cancel giving one more 202 then
 * CANCELLED, 409 once finished) and of the store around it: id shape, 404 for ids that
 * are unknown or forgotten when the ring wraps, and the CANCELLED body a GET returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "em.h"

static void test_poll_answers_202_k_times_then_200(void **state)
{
    (void)state;
    struct em_coord c = {.phase = EM_COORD_RUNNING, .polls_left = 3};
    for (int i = 0; i < 3; i++)
        assert_int_equal(em_coord_poll(&c), 202);
    assert_int_equal(em_coord_poll(&c), 200);
    assert_int_equal(c.phase, EM_COORD_DONE);
    assert_false(c.cancelled);
    assert_int_equal(em_coord_poll(&c), 200);
}

static void test_zero_polls_is_done_at_first_get(void **state)
{
    (void)state;
    struct em_coord c = {.phase = EM_COORD_RUNNING, .polls_left = 0};
    assert_int_equal(em_coord_poll(&c), 200);
}

static void test_cancel_gives_one_more_202_then_cancelled(void **state)
{
    (void)state;
    struct em_coord c = {.phase = EM_COORD_RUNNING, .polls_left = 10};
    assert_int_equal(em_coord_poll(&c), 202);
    assert_int_equal(em_coord_cancel(&c), 202);
    assert_int_equal(em_coord_cancel(&c), 202); /* still cancelling: idempotent */
    assert_int_equal(em_coord_poll(&c), 202);
    assert_int_equal(em_coord_poll(&c), 200);
    assert_true(c.cancelled);
    assert_int_equal(em_coord_cancel(&c), 409);
}

static void test_cancel_of_finished_is_409(void **state)
{
    (void)state;
    struct em_coord c = {.phase = EM_COORD_DONE};
    assert_int_equal(em_coord_cancel(&c), 409);
    assert_false(c.cancelled);
}

static json_t *doc_for(const char *id, enum em_result result)
{
    json_t *req = json_pack("{s:s, s:s}", "vnfInstanceId", "v", "vnfLcmOpOccId", "o");
    json_t *doc = em_lcmcoord_build(req, id, "http://x/self", result);
    json_decref(req);
    return doc;
}

static void test_store_get_cancel_and_unknown_ids(void **state)
{
    (void)state;
    struct em_store *s = em_store_new(8, 1u << 20);
    char id[EM_ID_LEN + 1], id2[EM_ID_LEN + 1];
    em_store_new_id(s, id);
    em_store_new_id(s, id2);
    assert_int_equal(strlen(id), EM_ID_LEN);
    assert_string_not_equal(id, id2);
    assert_int_equal(id[14], '4'); /* looks like a version-4 UUID */

    char *body = NULL;
    assert_int_equal(em_store_put(s, id, doc_for(id, EM_RESULT_ABORT), 2, false, &body), 0);
    assert_non_null(strstr(body, "\"ABORT\""));
    free(body);
    char *got = (char *)1;
    assert_int_equal(em_store_get(s, id, &got), 202);
    assert_null(got);
    assert_int_equal(em_store_cancel(s, id), 202);
    assert_int_equal(em_store_get(s, id, &got), 202);
    assert_int_equal(em_store_get(s, id, &got), 200);
    json_t *c = json_loads(got, 0, NULL);
    free(got);
    assert_string_equal(json_string_value(json_object_get(c, "coordinationResult")), "CANCELLED");
    assert_null(json_object_get(c, "error"));
    json_decref(c);
    assert_int_equal(em_store_cancel(s, id), 409);

    /* id2 was never stored; the others are not ours at all. */
    assert_int_equal(em_store_get(s, id2, &got), 404);
    assert_int_equal(em_store_cancel(s, id2), 404);
    assert_int_equal(em_store_get(s, "nope", &got), 404);
    assert_int_equal(em_store_get(s, "00000000-0000-4000-8000-00000000000g", &got), 404);
    em_store_free(s);
}

static void test_ring_forgets_the_oldest(void **state)
{
    (void)state;
    struct em_store *s = em_store_new(4, 1u << 20);
    char first[EM_ID_LEN + 1], id[EM_ID_LEN + 1];
    em_store_new_id(s, first);
    assert_int_equal(em_store_put(s, first, doc_for(first, EM_RESULT_CONTINUE), 0, true, NULL), 0);
    for (int i = 0; i < 4; i++) {
        em_store_new_id(s, id);
        assert_int_equal(em_store_put(s, id, doc_for(id, EM_RESULT_CONTINUE), 0, true, NULL), 0);
    }
    char *got;
    assert_int_equal(em_store_get(s, first, &got), 404);
    assert_int_equal(em_store_get(s, id, &got), 200);
    free(got);
    em_store_free(s);
}

/* A document of about `bytes` bytes (its inputParams carry the bulk). */
static json_t *big_doc(const char *id, size_t bytes)
{
    char *fill = malloc(bytes + 1);
    memset(fill, 'x', bytes);
    fill[bytes] = '\0';
    json_t *req = json_pack("{s:s, s:s, s:{s:s}}", "vnfInstanceId", "v", "vnfLcmOpOccId", "o",
                            "inputParams", "blob", fill);
    free(fill);
    json_t *doc = em_lcmcoord_build(req, id, "http://x/self", EM_RESULT_CONTINUE);
    json_decref(req);
    return doc;
}

/* The store is bounded in bytes, not only in count: finished coordinations make room,
 * oldest first; when only running ones are left, a new one is refused. */
static void test_byte_budget_evicts_finished_then_refuses(void **state)
{
    (void)state;
    struct em_store *s = em_store_new(1024, 100 * 1024);
    char running[EM_ID_LEN + 1], done1[EM_ID_LEN + 1], id[EM_ID_LEN + 1];
    em_store_new_id(s, running);
    assert_int_equal(em_store_put(s, running, big_doc(running, 30 * 1024), 5, false, NULL), 0);
    em_store_new_id(s, done1);
    assert_int_equal(em_store_put(s, done1, big_doc(done1, 30 * 1024), 0, true, NULL), 0);
    for (int i = 0; i < 10; i++) {
        em_store_new_id(s, id);
        assert_int_equal(em_store_put(s, id, big_doc(id, 30 * 1024), 0, true, NULL), 0);
        assert_true(em_store_bytes(s) <= 100 * 1024);
    }
    char *got = NULL;
    assert_int_equal(em_store_get(s, done1, &got), 404);   /* the oldest finished went */
    assert_int_equal(em_store_get(s, running, &got), 202); /* the running one stays */
    assert_int_equal(em_store_get(s, id, &got), 200);
    free(got);
    /* Fill the rest with running ones: then a new one cannot be kept. */
    int refused = 0;
    for (int i = 0; i < 5; i++) {
        em_store_new_id(s, id);
        refused += em_store_put(s, id, big_doc(id, 30 * 1024), 5, false, NULL) < 0;
    }
    assert_true(refused >= 2);
    assert_true(em_store_bytes(s) <= 100 * 1024);
    /* A document larger than the whole budget is refused outright. */
    em_store_new_id(s, id);
    assert_int_equal(em_store_put(s, id, big_doc(id, 200 * 1024), 0, true, NULL), -1);
    em_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_answers_202_k_times_then_200),
        cmocka_unit_test(test_zero_polls_is_done_at_first_get),
        cmocka_unit_test(test_cancel_gives_one_more_202_then_cancelled),
        cmocka_unit_test(test_cancel_of_finished_is_409),
        cmocka_unit_test(test_store_get_cancel_and_unknown_ids),
        cmocka_unit_test(test_ring_forgets_the_oldest),
        cmocka_unit_test(test_byte_budget_evicts_finished_then_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
