# Tests of liblcmcoord: cmocka suites for its pure logic, and the C example of docs/
# compiled against the public header alone and run end to end against `lcmcoord em`.
lcmc_add_cmocka_test(test_runtime_pure
  SOURCES unit/test_runtime_pure.c
  LIBS lcmcoord_runtime_static lcmc::jansson lcmc::curl)
target_include_directories(test_runtime_pure PRIVATE "${PROJECT_SOURCE_DIR}/runtime/src")

# The state machines (coordination flow, waits, deadline, cancel, tokens, 401 retry, the
# transfer queue) on a scripted transport and a fake clock at the engine's seam
# (unit/flow_fake.c): no process, no socket, no real time; each suite runs in milliseconds.
# They link the runtime's sources built once more with its invariants checked
# (LCMC_DEBUGASSERT), whatever the build type.
get_target_property(lcmc_flow_sources lcmcoord_runtime SOURCES)
list(TRANSFORM lcmc_flow_sources PREPEND "${PROJECT_SOURCE_DIR}/runtime/")
add_library(lcmc_flow_runtime STATIC ${lcmc_flow_sources} unit/flow_fake.c)
target_include_directories(lcmc_flow_runtime PUBLIC "${PROJECT_SOURCE_DIR}/runtime/src"
                           "${PROJECT_SOURCE_DIR}/runtime/include")
target_compile_definitions(lcmc_flow_runtime PUBLIC LCMC_DEBUGASSERTS)
target_link_libraries(lcmc_flow_runtime PUBLIC lcmc::cmocka lcmc::curl lcmc::jansson lcmc::yajl lcmc::openssl
                      lcmc::ssh2 m Threads::Threads)
foreach(lcmc_flow coordination deadline cancel auth queue invariants async)
  lcmc_add_cmocka_test(test_flow_${lcmc_flow}
    SOURCES unit/test_flow_${lcmc_flow}.c
    LIBS lcmc_flow_runtime)
endforeach()
lcmc_add_cmocka_test(test_log_events SOURCES unit/test_log_events.c LIBS lcmc_flow_runtime)
lcmc_add_cmocka_test(test_json_values SOURCES unit/test_json_values.c LIBS lcmc_flow_runtime)
# The yajl fast path against jansson, text by text (runtime/src/json_text.c).
lcmc_add_cmocka_test(test_json_text SOURCES unit/test_json_text.c LIBS lcmc_flow_runtime)

add_executable(lcmcoord_example_coordinate "${PROJECT_SOURCE_DIR}/docs/examples/coordinate.c")
target_link_libraries(lcmcoord_example_coordinate PRIVATE lcmcoord_runtime)

lcmc_add_e2e_test(e2e_runtime test_runtime.py)
set_property(TEST e2e_runtime APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_EXAMPLE=$<TARGET_FILE:lcmcoord_example_coordinate>")

# The libcurl minimum is derived from the sources: one older than it fails configure with a
# message naming the option that needs the newer one; the libcurl found here passes.
add_test(NAME curl_minimum_refuses_older
         COMMAND ${CMAKE_COMMAND} -DLCMC_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DLCMC_CURL_FOUND_VERSION=7.84.0
                 -P ${PROJECT_SOURCE_DIR}/vendor/cmake/LcmcoordCurlMinimum.cmake)
set_tests_properties(curl_minimum_refuses_older PROPERTIES PASS_REGULAR_EXPRESSION
  "libcurl 7.84.0 is too old: lcmcoord needs libcurl 7.85.0 or newer[ \n]+\\(it uses[ \n]+CURLOPT_PROTOCOLS_STR")
add_test(NAME curl_minimum_accepts_found
         COMMAND ${CMAKE_COMMAND} -DLCMC_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DLCMC_CURL_FOUND_VERSION=${LCMC_CURL_VERSION}
                 -P ${PROJECT_SOURCE_DIR}/vendor/cmake/LcmcoordCurlMinimum.cmake)

# The runtime's sources built into the test with free/realloc/calloc wrapped: secrets wiped
# from every block the runtime frees, allocation failures survived (unit/test_runtime_memory.c).
get_target_property(lcmc_runtime_sources lcmcoord_runtime SOURCES)
list(TRANSFORM lcmc_runtime_sources PREPEND "${PROJECT_SOURCE_DIR}/runtime/")
lcmc_add_cmocka_test(test_runtime_memory
  SOURCES unit/test_runtime_memory.c ${lcmc_runtime_sources}
  LIBS lcmc::curl lcmc::jansson lcmc::yajl lcmc::openssl lcmc::ssh2 m Threads::Threads)
target_include_directories(test_runtime_memory PRIVATE "${PROJECT_SOURCE_DIR}/runtime/src"
                           "${PROJECT_SOURCE_DIR}/runtime/include")
target_link_options(test_runtime_memory PRIVATE "LINKER:--wrap=malloc,--wrap=free,--wrap=realloc,--wrap=calloc")
set_property(TEST test_runtime_memory APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_BIN=$<TARGET_FILE:lcmcoord_cli>")

# The asynchronous API (post, serve/stop, timers, requests without waiting) on the real
# transport against a peer on 127.0.0.1 (unit/test_engine_async.c).
lcmc_add_cmocka_test(test_engine_async
  SOURCES unit/test_engine_async.c unit/loopback_peer.c
  LIBS lcmcoord_runtime_static Threads::Threads)

# Lua tasks: functions run as coroutines on the engine, whose waiting functions yield
# (bindings/lua task.c), against the same loopback peer (unit/test_lua_tasks.c).
lcmc_add_cmocka_test(test_lua_tasks
  SOURCES unit/test_lua_tasks.c unit/loopback_peer.c
  LIBS lcmcoord_luastatic lcmcoord_runtime lcmc::lua Threads::Threads)
target_include_directories(test_lua_tasks PRIVATE "${PROJECT_SOURCE_DIR}/runtime/include")
