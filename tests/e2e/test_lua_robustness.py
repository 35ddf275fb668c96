"""End to end: the limits of `lcmcoord run` hold inside coroutines. Lua hooks belong to a
thread, so a script that spins inside a coroutine escapes a hook set on the main thread
alone: SIGINT/SIGTERM and --script-timeout must stop it all the same, within a bounded time
(scaled by harness.TIME_FACTOR), with the documented exit statuses."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import TestCase

PARAMS = {"endpoint": "http://127.0.0.1:1", "authentication": None, "LcmCoordRequest": {}}

# Each script says "spinning" once it is inside the coroutine, so that the signal is sent
# while the coroutine runs, not before.
SPINNERS = {
    "wrap": "coroutine.wrap(function() print('spinning') io.stdout:flush() "
            "while true do end end)()",
    "resume": "local co = coroutine.create(function() print('spinning') io.stdout:flush() "
              "while true do end end)\nprint(coroutine.resume(co))",
    # A coroutine made inside a coroutine, its error swallowed by pcall in a loop.
    "nested": "coroutine.wrap(function() coroutine.wrap(function() "
              "print('spinning') io.stdout:flush() "
              "while true do pcall(function() while true do end end) end end)() end)()",
}


def write_script(tmp, text):
    path = os.path.join(tmp, "spin.lua")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class CoroutineSignalTest(TestCase):
    def interrupt(self, text, sig):
        """Starts the script, waits until it spins, sends sig; returns (status, stderr,
        seconds from the signal to the exit)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = write_script(tmp, text)
            proc = subprocess.Popen([*harness.WRAPPER, harness.LCMCOORD_BIN, "run",
                                     "--script-timeout", "600", path],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            try:
                proc.stdin.write(json.dumps(PARAMS))
                proc.stdin.close()
                self.assertEqual(proc.stdout.readline(), "spinning\n")
                sent = time.monotonic()
                proc.send_signal(sig)
                try:
                    proc.wait(timeout=5 * harness.TIME_FACTOR)
                except subprocess.TimeoutExpired:
                    self.fail("the script kept spinning after the signal")
                elapsed = time.monotonic() - sent
                stderr = proc.stderr.read()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                proc.stderr.close()
        return proc.returncode, stderr, elapsed

    def test_sigint_stops_a_script_spinning_in_a_coroutine(self):
        for name, text in SPINNERS.items():
            with self.subTest(name):
                status, stderr, elapsed = self.interrupt(text, signal.SIGINT)
                self.assertEqual(status, 130, stderr)
                self.assertEqual(self.assertOneLine(stderr), "lcmcoord: interrupted by SIGINT")
                self.assertLess(elapsed, 2.0 * harness.TIME_FACTOR)

    def test_sigterm_stops_a_script_spinning_in_a_coroutine(self):
        status, stderr, _ = self.interrupt(SPINNERS["wrap"], signal.SIGTERM)
        self.assertEqual(status, 143, stderr)
        self.assertEqual(self.assertOneLine(stderr), "lcmcoord: interrupted by SIGTERM")


class CoroutineDeadlineTest(TestCase):
    def test_the_deadline_stops_a_script_spinning_in_a_coroutine(self):
        for name, text in SPINNERS.items():
            with self.subTest(name), tempfile.TemporaryDirectory() as tmp:
                path = write_script(tmp, text)
                started = time.monotonic()
                done = harness.run_lcmcoord("run", "--script-timeout", "1", path,
                                            stdin=json.dumps(PARAMS), timeout=30)
                elapsed = time.monotonic() - started
                self.assertEqual(done.returncode, 3, done.stderr)
                self.assertEqual(self.assertOneLine(done.stderr),
                                 "lcmcoord: the script ran past its deadline of 1 s")
                self.assertLess(elapsed, 1.0 + 2.0 * harness.TIME_FACTOR)


if __name__ == "__main__":
    unittest.main()
