# Tests of `lcmcoord repl` and `lcmcoord coordinate` (docs/repl.md): the REPL driven through
# a real pseudo-terminal against `lcmcoord em`, sessions replayed from stdin, and one-shot
# coordinations from the shell. Python's standard library only (pty_session.py).
lcmc_add_e2e_test(e2e_repl_pty test_repl_pty.py)
lcmc_add_e2e_test(e2e_terminal test_terminal.py)
lcmc_add_e2e_test(e2e_repl_replay test_repl_replay.py)
lcmc_add_e2e_test(e2e_coordinate test_coordinate.py)
