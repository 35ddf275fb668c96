# Tests of the em; filled in by its suite.
