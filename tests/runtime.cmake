# Tests of the runtime; filled in by its suite.
