"""`lcmcoord check` with stdin at a terminal says it waits for the VNFC parameters, as `run`
does (review of issue 14: an operator who forgot `< vnfc_param.json` saw nothing at all).
Through a real pseudo-terminal (pty_session.py).
"""

import json
import os
import re
import tempfile

import harness
from pty_session import PtySession

SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua")
EXAMPLE = os.path.join(harness.SOURCE_DIR, "scripts", "examples", "vnfc_param.json")
HINT = "lcmcoord check: waiting for the VNFC parameters (a JSON object) on stdin"


class CheckAtATerminalTest(harness.TestCase):
    def test_says_it_waits_for_the_parameters(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, TERM="xterm", XDG_DATA_HOME=tmp)
            s = PtySession([harness.LCMCOORD_BIN, "check", "--offline", SCRIPT], env=env)
            self.addCleanup(s.close)
            s.expect(re.escape(HINT) + r".*\n", timeout=10)
            with open(EXAMPLE, encoding="utf-8") as f:
                s.send(json.dumps(json.load(f)) + "\n")
            s.send("\x04")
            self.assertEqual(s.wait(timeout=30), 0, s.screen())
            self.assertRegex(s.screen(), r"ok    script sets the action: ")

    def test_says_nothing_of_it_with_stdin_from_a_pipe(self):
        with open(EXAMPLE, encoding="utf-8") as f:
            done = harness.run_lcmcoord("check", "--offline", SCRIPT, stdin=f.read())
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("waiting for the VNFC parameters", done.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
