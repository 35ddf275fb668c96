# Tests of `lcmcoord serve`'s authentication (bindings/serve/serve_auth.h): a cmocka suite
# with hashes, keys, tokens and certificates made at test time, and a real RFC 7662 peer
# (unit/serve_auth_introspect_peer.py) on 127.0.0.1. It links lcmcoord_em for em_x5t_s256,
# the thumbprint the HTTP layer hands to serve_auth_check.
lcmc_add_cmocka_test(test_serve_auth SOURCES unit/test_serve_auth.c
                     LIBS lcmcoord_serve_auth lcmcoord_em lcmc::jwt lcmc::crypt)
set_tests_properties(test_serve_auth PROPERTIES TIMEOUT 300)
# Where the peer script is when LCMCOORD_SOURCE_DIR is not set (scripts/valgrind.sh runs the
# suites bare).
target_compile_definitions(test_serve_auth PRIVATE LCMC_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# review1: adversarial review of serve auth (opaque dotted tokens, DPoP-bound tokens, claim
# tricks, cached tokens past exp); reuses the suite's introspection peer.
lcmc_add_cmocka_test(test_serve_auth_review SOURCES unit/test_serve_auth_review.c
                     LIBS lcmcoord_serve_auth lcmc::jwt lcmc::crypt)
set_tests_properties(test_serve_auth_review PROPERTIES TIMEOUT 120)
target_compile_definitions(test_serve_auth_review PRIVATE LCMC_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
