"""End to end: the limits `lcmcoord run` puts on an operator's script. A script that loops
forever in Lua, or waits forever in a runtime call, is stopped at its deadline (exit 3, and
a coordination the EM holds is cancelled); one that allocates without bound is stopped at
its memory limit (exit 1); --sandbox leaves it no io, os, files or bytecode, and the sample
script still runs there."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import EM, TestCase
from test_run_coordination import SCRIPT, vnfc_param

PARAMS = {"endpoint": "http://127.0.0.1:1", "authentication": None, "LcmCoordRequest": {}}


def cpu_ticks(pid):
    """User and system CPU time a process has used, in clock ticks (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def run_text(text, *flags, param=None):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        started = time.monotonic()
        done = harness.run_lcmcoord("run", *flags, path, stdin=json.dumps(param or PARAMS))
        return done, time.monotonic() - started


class DeadlineTest(TestCase):
    def test_a_busy_loop_is_stopped_at_the_deadline(self):
        done, elapsed = run_text("while true do end", "--script-timeout", "1")
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertEqual(self.assertOneLine(done.stderr),
                         "lcmcoord: the script ran past its deadline of 1 s")
        self.assertLess(elapsed, 1.0 + 2.0 * harness.TIME_FACTOR)

    def test_a_wait_in_the_runtime_is_stopped_at_the_deadline(self):
        done, elapsed = run_text('require("lcmcoord").sleep(3600)', "--script-timeout", "1.5")
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertIn("deadline of 1.5 s", self.assertOneLine(done.stderr))
        self.assertLess(elapsed, 1.5 + 2.0 * harness.TIME_FACTOR)

    def test_a_coordination_in_flight_is_cancelled_at_the_script_deadline(self):
        with EM("--mode", "async", "--polls", "1000", "--retry-after", "1") as em:
            param = vnfc_param(em.url, timeout=600)
            started = time.monotonic()
            done = harness.run_lcmcoord("run", "--script-timeout", "2.5", SCRIPT,
                                        stdin=json.dumps(param))
            elapsed = time.monotonic() - started
            journal = em.journal()
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertIn("ran past its deadline", self.assertOneLine(done.stderr))
        self.assertLess(elapsed, 2.5 + 6.0 * harness.TIME_FACTOR)
        self.assertEqual(len([e for e in journal if e["path"].endswith("/cancel")]), 1)


class MemoryTest(TestCase):
    def test_unbounded_allocation_is_stopped_at_the_limit(self):
        done, _ = run_text('local t = {} while true do t[#t + 1] = string.rep("x", 1000) .. #t end',
                           "--memory-limit", "32")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(self.assertOneLine(done.stderr),
                         "lcmcoord: the script went over its memory limit of 32 MiB")

    def test_bad_limit_values_are_usage_errors(self):
        for flags in (("--memory-limit", "0"), ("--script-timeout", "soon"),
                      ("--memory-limit",)):
            done, _ = run_text("", *flags)
            self.assertEqual(done.returncode, 2, (flags, done.stderr))


class SandboxTest(TestCase):
    def test_only_the_safe_libraries_are_there(self):
        done, _ = run_text("""
print(rawget(_G, "io"), rawget(_G, "os"), rawget(_G, "dofile"), rawget(_G, "loadfile"),
      rawget(_G, "package"), rawget(_G, "debug"))
print(load(string.dump(function() end)))
print(load("return 1 + 1")())
print(pcall(require, "socket"))
print(require("lcmcoord").version ~= nil, require("lcmcoord").json ~= nil, math.pi > 3, utf8 ~= nil)
print(pcall(require, "cjson"))
""", "--sandbox")
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        self.assertEqual(lines[0], "nil\tnil\tnil\tnil\tnil\tnil")
        self.assertEqual(lines[1], "nil\tattempt to load a binary chunk (mode is 't')")
        self.assertEqual(lines[2], "2")
        self.assertIn("not available under --sandbox", lines[3])
        self.assertEqual(lines[4], "true\ttrue\ttrue\ttrue")
        self.assertIn("only lcmcoord is", lines[5])

    def test_the_sample_script_runs_in_the_sandbox(self):
        with EM() as em:
            done = harness.run_lcmcoord("run", "--sandbox", SCRIPT,
                                        stdin=json.dumps(vnfc_param(em.url)))
        self.assertEqual(done.returncode, 0, done.stderr)



class StuckInCTest(TestCase):
    # A hook never runs inside a C function: a backtracking find over a long text would keep
    # the script past its deadline and past SIGTERM for good without the watchdog.
    STUCK_IN_C = 'local s = string.rep("a", 20000)\ns:find(".-.-.-.-b")\n'

    def test_a_script_stuck_in_a_c_function_ends_10_s_after_its_deadline(self):
        done, elapsed = run_text(self.STUCK_IN_C, "--script-timeout", "1")
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertEqual(self.assertOneLine(done.stderr),
                         "lcmcoord: the script ran past its deadline and did not stop within "
                         "10 s (busy in a C function); exiting")
        self.assertGreaterEqual(elapsed, 10.5)
        self.assertLess(elapsed, 11.0 + 3.0 * harness.TIME_FACTOR)

    def test_a_script_stuck_in_a_c_function_ends_10_s_after_sigterm(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "script.lua")
            with open(path, "w", encoding="utf-8") as f:
                f.write('io.stderr:write("in find\\n")\n' + self.STUCK_IN_C)
            proc = subprocess.Popen([harness.LCMCOORD_BIN, "run", path], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            proc.stdin.write(json.dumps(PARAMS))
            proc.stdin.close()
            # The script says when it goes into the find, and the find then burns CPU: the
            # signal must find it there, so it waits for 0.2 s of CPU spent after the line.
            self.assertEqual(proc.stderr.readline(), "in find\n")
            ticks = cpu_ticks(proc.pid)
            harness.wait_for(lambda: cpu_ticks(proc.pid) >= ticks + 20, what="the find")
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            stderr = proc.stderr.read()
            status = proc.wait(timeout=30 * harness.TIME_FACTOR)
            elapsed = time.monotonic() - sent
        self.assertEqual(status, 143, stderr)
        self.assertEqual(self.assertOneLine(stderr),
                         "lcmcoord: interrupted by SIGTERM; the script did not stop within 10 s "
                         "(busy in a C function); exiting")
        self.assertGreaterEqual(elapsed, 9.5)
        self.assertLess(elapsed, 10.0 + 3.0 * harness.TIME_FACTOR)

if __name__ == "__main__":
    unittest.main()
