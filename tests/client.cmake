# Tests of the client; filled in by its suite.
