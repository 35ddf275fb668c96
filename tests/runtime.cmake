# Tests of liblcmcoord: cmocka suites for its pure logic, and the C example of docs/
# compiled against the public header alone and run end to end against `lcmcoord em`.
lcmc_add_cmocka_test(test_runtime_logic
  SOURCES unit/test_runtime_logic.c
  LIBS lcmcoord_runtime lcmc::jansson lcmc::curl)
target_include_directories(test_runtime_logic PRIVATE "${PROJECT_SOURCE_DIR}/runtime/src")

add_executable(lcmcoord_example_coordinate "${PROJECT_SOURCE_DIR}/docs/examples/coordinate.c")
target_link_libraries(lcmcoord_example_coordinate PRIVATE lcmcoord_runtime)

lcmc_add_e2e_test(e2e_runtime test_runtime.py)
set_property(TEST e2e_runtime APPEND PROPERTY ENVIRONMENT
             "LCMCOORD_EXAMPLE=$<TARGET_FILE:lcmcoord_example_coordinate>")
