# Tests of `lcmcoord em`, the EM simulator: cmocka suites over its pure logic (options,
# validation, the coordination state machine, the journal, scenarios, authentication) and
# end-to-end suites driving the real program with the curl CLI, over HTTP and HTTPS with
# certificates made at test time (e2e/certs.py).
lcmc_add_cmocka_test(test_em_options SOURCES unit/test_em_options.c LIBS lcmcoord_em)
lcmc_add_cmocka_test(test_em_api SOURCES unit/test_em_api.c LIBS lcmcoord_em)
lcmc_add_cmocka_test(test_em_coord SOURCES unit/test_em_coord.c LIBS lcmcoord_em)
lcmc_add_cmocka_test(test_em_journal SOURCES unit/test_em_journal.c LIBS lcmcoord_em)
lcmc_add_cmocka_test(test_em_scenario SOURCES unit/test_em_scenario.c LIBS lcmcoord_em)
lcmc_add_cmocka_test(test_em_auth SOURCES unit/test_em_auth.c LIBS lcmcoord_em)
lcmc_add_cmocka_test(test_em_http_limits SOURCES unit/test_em_http_limits.c LIBS lcmcoord_em)

lcmc_add_e2e_test(test_em_api_e2e test_em_api.py)
lcmc_add_e2e_test(test_em_features_e2e test_em_features.py)
lcmc_add_e2e_test(test_em_auth_e2e test_em_auth.py)
lcmc_add_e2e_test(test_em_tls_e2e test_em_tls.py)
lcmc_add_e2e_test(test_em_hostile_http_e2e test_em_hostile_http.py)
lcmc_add_e2e_test(test_em_hostile_data_e2e test_em_hostile_data.py)
lcmc_add_e2e_test(test_em_scenario_limits_e2e test_em_scenario_limits.py)
