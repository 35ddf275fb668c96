"""The end-to-end suites that scripts/valgrind.sh runs with the client under valgrind:
every protocol flow, authentication type and primitive, so that each C path a real
coordination takes is checked for memory errors and leaks. Run as ordinary tests too."""

from test_auth import *  # noqa: F401,F403
from test_primitives import *  # noqa: F401,F403
from test_run_cli import *  # noqa: F401,F403
from test_run_coordination import *  # noqa: F401,F403

if __name__ == "__main__":
    unittest.main()  # noqa: F405
