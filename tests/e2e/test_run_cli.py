"""End-to-end: the `lcmcoord run` host itself: options, stdin decoding, loading the script,
how script errors become exit statuses and one line of stderr, the --record file, and
signals. The coordination protocol is covered by test_run_coordination.py.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from test_run_coordination import SCRIPT, posts, run_script, vnfc_param


class TempDirTestCase(harness.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path


class Stdin(harness.TestCase):
    def check_bad_stdin(self, stdin, expected):
        done = run_script(stdin)
        self.assertEqual(done.returncode, 2, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertTrue(line.startswith(expected), line)

    def test_not_json_exits_2(self):
        self.check_bad_stdin("endpoint=http://127.0.0.1", "lcmcoord run: stdin is not valid JSON: ")

    def test_json_array_exits_2(self):
        self.check_bad_stdin("[1, 2]", "lcmcoord run: stdin is not a JSON object")

    def test_json_string_exits_2(self):
        self.check_bad_stdin('"x"', "lcmcoord run: stdin is not a JSON object")

    def test_empty_stdin_exits_2(self):
        self.check_bad_stdin("", "lcmcoord run: stdin is empty")

    def test_missing_or_mistyped_fields_exit_2_naming_the_field(self):
        full = {"endpoint": "http://127.0.0.1:1", "authentication": None,
                "LcmCoordRequest": {}}
        # An absent `authentication` is null: no credentials (test_operator_output.py).
        for field in ("endpoint", "LcmCoordRequest"):
            partial = {k: v for k, v in full.items() if k != field}
            self.check_bad_stdin(json.dumps(partial),
                                 f"lcmcoord run: the VNFC parameters have no '{field}'")
        self.check_bad_stdin(json.dumps(dict(full, endpoint=5)),
                             "lcmcoord run: the VNFC parameters' 'endpoint' must be a string")
        self.check_bad_stdin(json.dumps(dict(full, authentication="x")),
                             "lcmcoord run: the VNFC parameters' 'authentication' must be an "
                             "object")
        self.check_bad_stdin(json.dumps(dict(full, LcmCoordRequest="x")),
                             "lcmcoord run: the VNFC parameters' 'LcmCoordRequest' must be an "
                             "object")


class Scripts(TempDirTestCase):
    def test_missing_script_exits_2_naming_it(self):
        missing = os.path.join(self.tmp, "nowhere.lua")
        done = harness.run_lcmcoord("run", missing, stdin="{}")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("nowhere.lua", self.assertOneLine(done.stderr))

    def test_syntax_error_exits_2_with_file_and_line(self):
        path = self.write("broken.lua", "local p = ...\nlocal x = = 1\n")
        done = harness.run_lcmcoord("run", "--any-params", path, stdin="{}")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertRegex(self.assertOneLine(done.stderr), r"broken\.lua:2: ")

    def test_bytecode_is_refused(self):
        if shutil.which("luac5.4") is None:
            self.skipTest("luac5.4 not installed")
        path = os.path.join(self.tmp, "compiled.luac")
        subprocess.run(["luac5.4", "-o", path, "-"], input=b"return 1", check=True)
        done = harness.run_lcmcoord("run", "--any-params", path, stdin="{}")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("binary", self.assertOneLine(done.stderr))

    def test_runtime_error_in_the_script_exits_1_with_its_line(self):
        param = vnfc_param("http://127.0.0.1:1")
        del param["LcmCoordRequest"]
        # Past the host's own check, the sample script's check raises a Lua error.
        done = run_script(param, "--any-params")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertRegex(self.assertOneLine(done.stderr),
                         r"^lcmcoord: .*coordinate_vnf\.lua:\d+: .*LcmCoordRequest")

    def test_script_gets_the_parameters_as_its_first_argument(self):
        path = self.write("echo.lua", "local p = ...\n"
                          "assert(p.nested.list[2] == 'b', 'bad list')\n"
                          "assert(p.flag == true)\n"
                          "io.stdout:write(p.name)\n")
        done = harness.run_lcmcoord("run", "--any-params", path,
                                    stdin=json.dumps({"name": "vdu", "flag": True,
                                                      "nested": {"list": ["a", "b"]}}))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "vdu")

    def test_multi_line_error_message_is_reported_on_one_line(self):
        path = self.write("multi.lua", "error('first\\nsecond', 0)\n")
        done = harness.run_lcmcoord("run", "--any-params", path, stdin="{}")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(self.assertOneLine(done.stderr), "lcmcoord: first second")

    def test_raised_lcmcoord_error_maps_its_kind_to_the_exit_status(self):
        # An invalid request is refused before anything is sent: kind invalid_request, 2.
        path = self.write("invalid.lua", "local lcmcoord = require 'lcmcoord'\n"
                          "lcmcoord.create_coordination('http://127.0.0.1:1', nil, {})\n")
        done = harness.run_lcmcoord("run", "--any-params", path, stdin="{}")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertRegex(self.assertOneLine(done.stderr), r"^lcmcoord: .*vnfInstanceId")

    def test_unreachable_em_exits_4(self):
        # Refused connections are retried every 5 s; with 3 s left none fits.
        done = run_script(vnfc_param("http://127.0.0.1:1", timeout=3))
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("cannot reach the EM", self.assertOneLine(done.stderr))

    def test_host_does_not_need_package_cpath(self):
        # The host carries lcmcoord (and its JSON) itself; no other C module is preloaded.
        path = self.write("json.lua", "local json = require 'lcmcoord'.json\n"
                          "assert(json.encode(json.array{1}) == '[1]')\n"
                          "assert(math.type(json.decode('[2]')[1]) == 'integer')\n"
                          "assert(not pcall(require, 'cjson'))\n")
        done = harness.run_lcmcoord("run", "--any-params", path, stdin="{}",
                                    env={"LUA_CPATH": "/nonexistent/?.so"})
        self.assertEqual(done.returncode, 0, done.stderr)


class Options(harness.TestCase):
    def test_unknown_flag_exits_2_with_one_usage_line(self):
        done = harness.run_lcmcoord("run", "--bogus", SCRIPT, stdin="{}")
        self.assertEqual(done.returncode, 2)
        line = self.assertOneLine(done.stderr)
        self.assertIn("--bogus", line)
        self.assertTrue(line.endswith("(see lcmcoord run --help)"), line)

    def test_missing_script_argument_exits_2(self):
        done = harness.run_lcmcoord("run", stdin="{}")
        self.assertEqual(done.returncode, 2)
        self.assertTrue(self.assertOneLine(done.stderr).endswith("(see lcmcoord run --help)"))

    def test_option_without_value_exits_2(self):
        done = harness.run_lcmcoord("run", SCRIPT, "--record", stdin="{}")
        self.assertEqual(done.returncode, 2)
        self.assertOneLine(done.stderr)

    def test_run_help_exits_0(self):
        done = harness.run_lcmcoord("run", "--help")
        self.assertEqual(done.returncode, 0)
        self.assertIn("usage: lcmcoord run", done.stdout)
        self.assertIn("Exit status", done.stdout)

    def test_program_help_and_version_exit_0(self):
        done = harness.run_lcmcoord("--help")
        self.assertEqual(done.returncode, 0)
        self.assertIn("run", done.stdout)
        done = harness.run_lcmcoord("--version")
        self.assertEqual(done.returncode, 0)
        self.assertRegex(done.stdout, r"^lcmcoord \d+\.\d+\.\d+")


class Record(TempDirTestCase):
    def test_record_lists_the_coordination_and_each_rejection(self):
        record = os.path.join(self.tmp, "record.json")
        with harness.EM("--rejects", "2", "--retry-after", "1") as em:
            done = run_script(vnfc_param(em.url), "--record", record)
            self.assertEqual(done.returncode, 0, done.stderr)
            created = [e for e in posts(em.journal()) if e["status"] == 201]
        with open(record, encoding="utf-8") as f:
            data = json.load(f)
        (coord,) = data["lcmCoordinations"]
        self.assertTrue(coord["id"])
        self.assertEqual(coord["coordinationResult"], "CONTINUE")
        self.assertEqual(coord["coordinationActionName"],
                         "prv.tacker_organization.coordination_test")
        self.assertTrue(coord["startTime"] <= coord["endTime"], coord)
        self.assertEqual(len(created), 1)
        rejected = data["rejectedLcmCoordinations"]
        self.assertEqual(len(rejected), 2)
        for entry in rejected:
            self.assertEqual(entry["coordinationActionName"],
                             "prv.tacker_organization.coordination_test")
            self.assertTrue(entry["rejectionTime"] <= entry["delay"], entry)
        self.assertEqual([n for n in os.listdir(self.tmp)], ["record.json"])

    def test_record_is_written_when_the_coordination_fails(self):
        record = os.path.join(self.tmp, "record.json")
        with harness.EM("--result", "ABORT") as em:
            done = run_script(vnfc_param(em.url), "--record=" + record)
        self.assertEqual(done.returncode, 1, done.stderr)
        with open(record, encoding="utf-8") as f:
            (coord,) = json.load(f)["lcmCoordinations"]
        self.assertEqual(coord["coordinationResult"], "ABORT")

    def test_unwritable_record_path_exits_2_before_anything_is_sent(self):
        record = os.path.join(self.tmp, "missing-dir", "record.json")
        with harness.EM() as em:
            done = run_script(vnfc_param(em.url), "--record", record)
            journal = em.journal()
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("missing-dir", self.assertOneLine(done.stderr))
        self.assertEqual(journal, [])


class Signals(harness.TestCase):
    def check_signal(self, sig, expected_status, name):
        with harness.EM("--rejects", "1000000", "--retry-after", "30") as em:
            proc = subprocess.Popen([harness.LCMCOORD_BIN, "run", "-v", SCRIPT],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            watch = harness.LineWatch(proc.stderr)
            try:
                proc.stdin.write(json.dumps(vnfc_param(em.url, timeout=600)))
                proc.stdin.close()
                # The client has the 503 and waits out its Retry-After: its own log line
                # says so (the EM's journal has the POST before the client has the answer).
                watch.wait_line(r"^lcmcoord: 503 ")
                sent_at = time.monotonic()
                proc.send_signal(sig)
                proc.wait(timeout=10 * harness.TIME_FACTOR)
                elapsed = time.monotonic() - sent_at
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            stderr = watch.text()
            proc.stderr.close()
        self.assertEqual(proc.returncode, expected_status, stderr)
        self.assertLess(elapsed, 5 * harness.TIME_FACTOR)
        self.assertEqual(stderr.strip().splitlines()[-1], f"lcmcoord: interrupted by {name}")

    def test_sigterm_during_a_long_wait_exits_143(self):
        self.check_signal(signal.SIGTERM, 143, "SIGTERM")

    def test_sigint_during_a_long_wait_exits_130(self):
        self.check_signal(signal.SIGINT, 130, "SIGINT")

    def test_sigterm_stops_a_script_busy_in_lua(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "spin.lua")
            with open(path, "w", encoding="utf-8") as f:
                f.write("io.stdout:write('spinning\\n'); io.stdout:flush()\nwhile true do end\n")
            proc = subprocess.Popen([harness.LCMCOORD_BIN, "run", "--any-params", path], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                proc.stdin.write("{}")
                proc.stdin.close()
                self.assertEqual(proc.stdout.readline(), "spinning\n")
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10 * harness.TIME_FACTOR)
                stderr = proc.stderr.read()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                proc.stderr.close()
        self.assertEqual(proc.returncode, 143, stderr)
        self.assertEqual(self.assertOneLine(stderr), "lcmcoord: interrupted by SIGTERM")


if __name__ == "__main__":
    unittest.main()
