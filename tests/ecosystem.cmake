# Tests of how lcmcoord fits its surroundings: the Tacker drop-in script fed a pickle made
# like Tacker's, the configuration file and JSON logs, the installed tree (relocation,
# pkg-config, find_package, the rockspec's sources, completion, man page, annotations), the
# boundaries of the built files (liblcmcoord's exports against its headers, no server library
# in the client, `lcmcoord em` running lcmcoord-em) and the runnable examples of docs/*.md,
# each run against `lcmcoord em`.
lcmc_add_e2e_test(e2e_tacker test_tacker.py)
lcmc_add_e2e_test(e2e_config test_config.py)
lcmc_add_e2e_test(e2e_install test_install.py)
lcmc_add_e2e_test(e2e_program_boundaries test_program_boundaries.py)
set_property(TEST e2e_program_boundaries APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_LIBRARY=$<TARGET_FILE:lcmcoord_runtime>"
             "LCMCOORD_LUA_MODULE=$<TARGET_FILE:lcmcoord_lua>"
             "LCMCOORD_EM_PROGRAM=$<TARGET_FILE:lcmcoord_em_program>")
# What `lcmcoord run` maps (no line editor) and what liblcmcoord exports (no yajl).
lcmc_add_e2e_test(e2e_client_footprint test_client_footprint.py)
set_property(TEST e2e_client_footprint APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_LIBRARY=$<TARGET_FILE:lcmcoord_runtime>")
lcmc_add_e2e_test(e2e_docs test_docs.py)
lcmc_add_e2e_test(e2e_messages test_messages.py)
set_property(TEST e2e_install APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_BUILD_DIR=${PROJECT_BINARY_DIR}" "CC=${CMAKE_C_COMPILER}")
# The installed module and library are built like the rest: a sanitized one needs the
# sanitizer runtime preloaded into the stock lua5.4 and into the consumer programs.
if(LCMCOORD_SANITIZE MATCHES "address")
  set_property(TEST e2e_install e2e_docs APPEND PROPERTY ENVIRONMENT
               "LCMC_STOCK_LUA_PRELOAD=${LCMC_ASAN_RUNTIME}")
endif()
