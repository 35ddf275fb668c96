# Fuzz targets for every parser of outside input (tests/fuzz/fuzz_*.c). With
# -DLCMCOORD_FUZZ=ON (clang, see scripts/fuzz.sh) each becomes a libFuzzer binary
# fuzz_<name>; otherwise each is linked with a replay driver and ctest runs it over its
# corpus (tests/fuzz/corpus/<name>/: seeds, and every crash ever found, as regressions).
option(LCMCOORD_FUZZ "Build libFuzzer targets (needs clang)" OFF)

set(LCMC_FUZZ_TARGETS location lcmcoord token request em_form retry_after vnfc_param serve_auth
    serve_request)
foreach(target ${LCMC_FUZZ_TARGETS})
  set(sources "${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${target}.c")
  if(target STREQUAL "vnfc_param")
    list(APPEND sources "${PROJECT_SOURCE_DIR}/bindings/host/params.c")
  endif()
  if(LCMCOORD_FUZZ)
    set(name fuzz_${target})
    add_executable(${name} ${sources})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    set(name replay_${target})
    add_executable(${name} ${sources} "${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay.c")
    add_test(NAME fuzz_corpus_${target}
             COMMAND ${name} "${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${target}")
    set_tests_properties(fuzz_corpus_${target} PROPERTIES ENVIRONMENT "${LCMC_TEST_ENV}"
                         LABELS unit)
  endif()
  target_include_directories(${name} PRIVATE "${PROJECT_SOURCE_DIR}/runtime/src"
                             "${PROJECT_SOURCE_DIR}/bindings/em" "${PROJECT_SOURCE_DIR}/bindings"
                             "${PROJECT_SOURCE_DIR}/bindings/lua"
                             "${CMAKE_CURRENT_SOURCE_DIR}/fuzz")
  # The runtime's internal parsers come from the static runtime (liblcmcoord.so exports
  # none of them); vnfc_param goes through the Lua module, on the shared one as the program.
  if(target STREQUAL "serve_request") # serve core: its checks beyond the EM's validation
    target_link_libraries(${name} PRIVATE lcmcoord_serve)
  elseif(target STREQUAL "serve_auth") # serve auth: the Authorization header of `lcmcoord serve`
    target_link_libraries(${name} PRIVATE lcmcoord_serve_auth lcmc::crypt)
  elseif(target STREQUAL "vnfc_param")
    target_link_libraries(${name} PRIVATE lcmcoord_luastatic lcmcoord_runtime lcmc::lua
                          lcmc::jansson m)
  else()
    target_link_libraries(${name} PRIVATE lcmcoord_em lcmcoord_runtime_static lcmc::jansson
                          lcmc::curl m)
  endif()
endforeach()
