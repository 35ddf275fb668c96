# Tests of `lcmcoord em --chaos`, the catalogue of hostile-EM misbehaviours: a cmocka suite
# over the catalogue, the built-in scenarios and the raw-socket server, and the end-to-end
# suite that runs the CoordinateVNF script against every misbehaviour (docs/reliability.md).
lcmc_add_cmocka_test(test_em_chaos SOURCES unit/test_em_chaos.c LIBS lcmcoord_em)
lcmc_add_e2e_test(e2e_chaos test_chaos.py)
