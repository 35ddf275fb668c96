"""A JSON error before the first character (an empty stdin, a first byte that is not UTF-8)
is at line 1, column 1, as every other place is counted from 1 (review of issue 14: `check`
and `params` said 'column 0' for them, which the troubleshooting guide promises never to).
"""

import os
import subprocess

from harness import LCMCOORD_BIN, SOURCE_DIR, TIME_FACTOR, WRAPPER, TestCase

SCRIPT = os.path.join(SOURCE_DIR, "scripts", "coordinate_vnf.lua")


class FirstColumnTest(TestCase):
    def test_error_at_the_first_character_is_column_1(self):
        for text in (b"", b"\xff", b"\xff{}"):
            for args in (("params",), ("check", "--offline", SCRIPT), ("run", SCRIPT)):
                with self.subTest(text=text, args=args):
                    done = subprocess.run([*WRAPPER, LCMCOORD_BIN, *args], input=text,
                                          capture_output=True, timeout=60 * TIME_FACTOR)
                    output = (done.stdout + done.stderr).decode("utf-8", "replace")
                    self.assertNotEqual(done.returncode, 0, output)
                    self.assertNotIn("column 0", output)
                    if text and args[0] != "run":
                        self.assertIn("at line 1, column 1", output)


if __name__ == "__main__":
    import unittest
    unittest.main()
