# Tests of `lcmcoord serve` (docs/serve.md): the end-to-end suites drive the real program
# with the curl CLI and with `lcmcoord coordinate`, each test its own server and store.
lcmc_add_e2e_test(e2e_serve test_serve.py)
