# Tests of `lcmcoord serve` (issue 15). Each part keeps its own clearly marked block.

# ---- the store: cmocka against a SQLite file and a real PostgreSQL cluster ----------------
# The cluster is a ctest fixture (tests/e2e/pg_cluster.py: initdb in a temporary directory,
# unix socket there, stopped and removed by the cleanup test); missing PostgreSQL binaries
# fail the setup with a message, which fails the tests that need it: nothing is skipped.
set(LCMC_PG_STATE "${CMAKE_CURRENT_BINARY_DIR}/pg-cluster.state")
add_test(NAME serve_pg_cluster_start
         COMMAND ${LCMC_PYTHON} "${CMAKE_CURRENT_SOURCE_DIR}/e2e/pg_cluster.py" start
                 "${LCMC_PG_STATE}")
add_test(NAME serve_pg_cluster_stop
         COMMAND ${LCMC_PYTHON} "${CMAKE_CURRENT_SOURCE_DIR}/e2e/pg_cluster.py" stop
                 "${LCMC_PG_STATE}")
set_tests_properties(serve_pg_cluster_start PROPERTIES FIXTURES_SETUP serve_pg TIMEOUT 180
                     LABELS unit)
set_tests_properties(serve_pg_cluster_stop PROPERTIES FIXTURES_CLEANUP serve_pg TIMEOUT 180
                     LABELS unit)

lcmc_add_cmocka_test(test_serve_store SOURCES unit/test_serve_store.c
                     LIBS lcmcoord_serve_store Threads::Threads)
target_compile_definitions(test_serve_store PRIVATE
                           SOURCE_DIR_DEFAULT="${PROJECT_SOURCE_DIR}")
set_tests_properties(test_serve_store PROPERTIES FIXTURES_REQUIRED serve_pg TIMEOUT 600
                     RESOURCE_LOCK serve_pg_cluster)
set_property(TEST test_serve_store APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_TEST_PG_STATE=${LCMC_PG_STATE}")
lcmc_add_e2e_test(test_pg_cluster_e2e test_pg_cluster.py)
# ---- review1: adversarial review of the store (passwords in URLs, reconnect with a pool) --
lcmc_add_cmocka_test(test_serve_store_review SOURCES unit/test_serve_store_review.c
                     LIBS lcmcoord_serve_store Threads::Threads)
target_compile_definitions(test_serve_store_review PRIVATE
                           SOURCE_DIR_DEFAULT="${PROJECT_SOURCE_DIR}")
set_tests_properties(test_serve_store_review PROPERTIES FIXTURES_REQUIRED serve_pg TIMEOUT 300
                     RESOURCE_LOCK serve_pg_cluster)
set_property(TEST test_serve_store_review APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_TEST_PG_STATE=${LCMC_PG_STATE}")
# ---- end of review1 ----------------------------------------------------------------------
# ---- end of the store --------------------------------------------------------------------

# ---- the serve core: end-to-end suites driving the real program -------------------------
# With the curl CLI and with `lcmcoord coordinate`, each test its own server and store
# (SQLite in a temporary directory, or its own PostgreSQL cluster from pg_cluster.py).
lcmc_add_e2e_test(e2e_serve test_serve.py)
lcmc_add_e2e_test(e2e_serve_keys test_serve_keys.py)
lcmc_add_e2e_test(e2e_serve_security test_serve_security.py)
lcmc_add_e2e_test(e2e_serve_pg test_serve_pg.py)
lcmc_add_e2e_test(e2e_serve_examples test_serve_examples.py)
# Hooks and clients that misbehave (the adversarial review's reproducers).
lcmc_add_e2e_test(e2e_serve_review test_serve_review.py)
lcmc_add_e2e_test(e2e_serve_io test_serve_io.py)
# ---- end of the serve core ---------------------------------------------------------------
