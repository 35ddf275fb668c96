# Tests of the client side as scripts see it: the `lcmcoord` Lua module under a stock
# lua5.4 (busted specs in tests/lua), and `lcmcoord run` with the shipped CoordinateVNF
# script against `lcmcoord em` (Python end-to-end suites in tests/e2e).
lcmc_add_busted_test(lua_module_spec module_spec.lua)
lcmc_add_busted_test(lua_exchange_spec exchange_spec.lua)
lcmc_add_e2e_test(e2e_run_coordination test_run_coordination.py)
lcmc_add_e2e_test(e2e_run_cli test_run_cli.py)
lcmc_add_e2e_test(e2e_check test_check.py)
lcmc_add_e2e_test(e2e_params test_params.py)
lcmc_add_e2e_test(e2e_check_hostile test_check_hostile.py)
lcmc_add_e2e_test(e2e_trace_secrets test_trace_secrets.py)
lcmc_add_e2e_test(e2e_json_first_column test_json_first_column.py)
lcmc_add_e2e_test(e2e_check_terminal test_check_terminal.py)
lcmc_add_e2e_test(e2e_operator_output test_operator_output.py)
lcmc_add_e2e_test(e2e_lua_stock test_lua_stock.py)
lcmc_add_e2e_test(e2e_auth test_auth.py)
lcmc_add_e2e_test(e2e_credentials_isolation test_credentials_isolation.py)

# A stock lua5.4 loading a sanitized module needs the sanitizer runtime preloaded; the
# Python suite passes it to the interpreter only, not to itself.
if(LCMCOORD_SANITIZE MATCHES "address")
  set_property(TEST e2e_lua_stock APPEND PROPERTY ENVIRONMENT
               "LCMC_STOCK_LUA_PRELOAD=${LCMC_ASAN_RUNTIME}")
endif()
lcmc_add_e2e_test(e2e_primitives test_primitives.py)
lcmc_add_busted_test(lua_primitives_spec primitives_spec.lua)
lcmc_add_busted_test(lua_limits_spec limits_spec.lua)
lcmc_add_e2e_test(e2e_lua_robustness test_lua_robustness.py)
lcmc_add_e2e_test(e2e_script_limits test_script_limits.py)
lcmc_add_e2e_test(e2e_post_once test_post_once.py)
lcmc_add_e2e_test(e2e_review12 test_review12.py)
lcmc_add_e2e_test(e2e_log_events test_log_events.py)
lcmc_add_e2e_test(e2e_value_model test_value_model.py)
lcmc_add_busted_test(lua_json_spec json_spec.lua)
set_property(TEST e2e_post_once APPEND PROPERTY ENVIRONMENT
             "LCMC_RUNTIME_LIBRARY=$<TARGET_FILE:lcmcoord_runtime>")
if(LCMCOORD_SANITIZE MATCHES "address")
  set_property(TEST e2e_post_once APPEND PROPERTY ENVIRONMENT
               "LCMC_RUNTIME_PRELOAD=${LCMC_ASAN_RUNTIME}")
endif()
