# client:coordinate_all end to end: results in input order, mixed outcomes in one batch,
# per-coordination deadlines, one OAuth2 token for a whole batch, bad input refused before
# anything is sent (tests/e2e/test_batch.py, scenarios tests/e2e/scenarios/batch_*.lua).
lcmc_add_e2e_test(e2e_batch test_batch.py)
