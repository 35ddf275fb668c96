"""End-to-end: `lcmcoord coordinate`, one coordination from the shell against
`lcmcoord em`: the LcmCoord on stdout, CONTINUE the only success, ABORT/CANCELLED and errors
as one stderr line with `lcmcoord run`'s exit statuses, the request built from flags or
read from a file or stdin, authentication from a file, signals, and bad arguments.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import harness

PASSWORD = "Crd-S3cret-7731"


def coordinate(*args, stdin=None, timeout=60):
    return harness.run_lcmcoord("coordinate", *args, stdin=stdin, timeout=timeout)


def posted(em):
    return [json.loads(e["body"]) for e in em.journal()
            if e["method"] == "POST" and e["path"] == "/lcmcoord/v1/coordinations"]


class Results(harness.TestCase):
    def test_continue_prints_the_lcmcoord_and_exits_0(self):
        with harness.EM() as em:
            done = coordinate("--endpoint", em.url, "--action", "prv.example.drain")
            (sent,) = posted(em)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, "")
        coord = json.loads(done.stdout)
        self.assertEqual(coord["coordinationResult"], "CONTINUE")
        self.assertEqual(coord["coordinationActionName"], "prv.example.drain")
        self.assertEqual(coord["vnfInstanceId"], sent["vnfInstanceId"])
        self.assertEqual(sent["lcmOperationType"], "CHANGE_VNFPKG")

    def test_abort_exits_1_with_one_line_and_still_prints_the_lcmcoord(self):
        with harness.EM("--result", "ABORT") as em:
            done = coordinate("--endpoint", em.url, "--action", "x")
        self.assertEqual(done.returncode, 1)
        coord = json.loads(done.stdout)
        self.assertEqual(coord["coordinationResult"], "ABORT")
        line = self.assertOneLine(done.stderr)
        self.assertEqual(line, f"lcmcoord: coordination {coord['id']} ended with ABORT: "
                               "VNFC not ready")

    def test_cancelled_exits_1(self):
        with harness.EM("--result", "CANCELLED") as em:
            done = coordinate("--endpoint", em.url, "--action", "x")
        self.assertEqual(done.returncode, 1)
        self.assertIn("ended with CANCELLED", self.assertOneLine(done.stderr))

    def test_async_mode_polls_to_the_result(self):
        with harness.EM("--mode", "async", "--polls", "2", "--retry-after", "0") as em:
            done = coordinate("--endpoint", em.url, "--action", "x")
            methods = [e["method"] for e in em.journal()]
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["coordinationResult"], "CONTINUE")
        self.assertEqual(methods, ["POST", "GET", "GET", "GET"])

    def test_503_then_accepted(self):
        with harness.EM("--rejects", "1", "--retry-after", "1") as em:
            done = coordinate("--endpoint", em.url, "--action", "x")
            statuses = [e["status"] for e in em.journal()]
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(statuses, [503, 201])

    def test_error_answer_exits_1(self):
        with tempfile.TemporaryDirectory() as tmp:
            scenario = os.path.join(tmp, "conflict.lua")
            with open(scenario, "w", encoding="utf-8") as f:
                f.write("return function(req)\n"
                        "  return 409, nil, em.problem(409, 'VNFC still draining')\n"
                        "end\n")
            with harness.EM("--scenario", scenario) as em:
                done = coordinate("--endpoint", em.url, "--action", "x")
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stdout, "")
        self.assertIn("VNFC still draining", self.assertOneLine(done.stderr))

    def test_unreachable_em_exits_4(self):
        done = coordinate("--endpoint", "http://127.0.0.1:1", "--action", "x", "--timeout", "2")
        self.assertEqual(done.returncode, 4)
        self.assertIn("cannot reach the EM", self.assertOneLine(done.stderr))

    def test_deadline_exits_3(self):
        with harness.EM("--delay", "60000") as em:
            done = coordinate("--endpoint", em.url, "--action", "x", "--timeout", "1")
        self.assertEqual(done.returncode, 3)
        self.assertIn("deadline", self.assertOneLine(done.stderr))


class Requests(harness.TestCase):
    def test_flags_fill_the_request(self):
        with harness.EM() as em:
            done = coordinate("--endpoint", em.url, "--action", "a", "--instance", "vi-1",
                              "--op-occ", "op-1", "--operation", "HEAL",
                              "--input", '{"vnfcInstanceId": ["VDU1-0"], "n": 2}')
            (sent,) = posted(em)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(sent["vnfInstanceId"], "vi-1")
        self.assertEqual(sent["vnfLcmOpOccId"], "op-1")
        self.assertEqual(sent["lcmOperationType"], "HEAL")
        self.assertEqual(sent["inputParams"], {"vnfcInstanceId": ["VDU1-0"], "n": 2})
        self.assertTrue(sent["_links"]["vnfInstance"]["href"].endswith("/vi-1"))
        self.assertEqual(json.loads(done.stdout)["outputParams"], sent["inputParams"])

    def test_request_from_stdin_is_sent_as_it_is(self):
        request = harness.sample_request(inputParams={"empty": [], "x": 1.5})
        text = json.dumps(request)
        with harness.EM() as em:
            done = coordinate("--endpoint", em.url, "--request", "-", stdin=text)
            bodies = [e["body"] for e in em.journal()]
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(bodies, [text])
        self.assertEqual(json.loads(done.stdout)["vnfInstanceId"], request["vnfInstanceId"])

    def test_request_from_a_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "req.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(harness.sample_request(), f)
            with harness.EM() as em:
                done = coordinate("--endpoint", em.url, "--request", path)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["coordinationResult"], "CONTINUE")

    def test_invalid_request_exits_2_before_sending(self):
        with harness.EM() as em:
            done = coordinate("--endpoint", em.url, "--request", "-", stdin='{"a": 1}')
            journal = em.journal()
        self.assertEqual(done.returncode, 2)
        self.assertEqual(journal, [])
        self.assertIn("vnfInstanceId", self.assertOneLine(done.stderr))

    def test_auth_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            auth = os.path.join(tmp, "auth.json")
            with open(auth, "w", encoding="utf-8") as f:
                json.dump({"authType": ["BASIC"],
                           "paramsBasic": {"userName": "op", "password": PASSWORD}}, f)
            with harness.EM("--basic", f"op:{PASSWORD}") as em:
                ok = coordinate("--endpoint", em.url, "--action", "x", "--auth", auth)
                refused = coordinate("--endpoint", em.url, "--action", "x", "-v")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(refused.returncode, 4)
        for done in (ok, refused):
            self.assertNotIn(PASSWORD, done.stdout + done.stderr)


class Arguments(harness.TestCase):
    def test_bad_arguments_exit_2_with_one_usage_line(self):
        cases = [
            [],
            ["--action", "x"],
            ["--endpoint", "http://127.0.0.1:1"],
            ["--endpoint", "http://127.0.0.1:1", "--action", "x", "--bogus"],
            ["--endpoint", "http://127.0.0.1:1", "--action"],
            ["--endpoint", "http://127.0.0.1:1", "--action", "x", "--input", "[1, 2]"],
            ["--endpoint", "http://127.0.0.1:1", "--action", "x", "--input", "{"],
            ["--endpoint", "http://127.0.0.1:1", "--action", "x", "--timeout", "soon"],
            ["--endpoint", "http://127.0.0.1:1", "--request", "-", "--action", "x"],
            ["--endpoint", "http://127.0.0.1:1", "--action", "x", "stray"],
        ]
        for args in cases:
            with self.subTest(args=args):
                done = coordinate(*args, stdin="")
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertEqual(done.stdout, "")
                line = self.assertOneLine(done.stderr)
                self.assertTrue(line.startswith("lcmcoord coordinate: "), line)
                self.assertTrue(line.endswith("(see lcmcoord coordinate --help)"), line)

    def test_bad_values_exit_2_with_one_line(self):
        cases = [
            (["--operation", "FOO"], "'FOO' is not a LcmOperationForCoordType"),
            (["--endpoint", "ftp://example"], "http:// or https://"),
            (["--auth", "/nonexistent/auth.json"], "/nonexistent/auth.json"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                done = coordinate("--endpoint", "http://127.0.0.1:1", "--action", "x", *args)
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertIn(message, self.assertOneLine(done.stderr))

    def test_help_exits_0(self):
        done = coordinate("--help")
        self.assertEqual(done.returncode, 0)
        self.assertIn("usage: lcmcoord coordinate", done.stdout)
        self.assertIn("Exit status", done.stdout)


class Signals(harness.TestCase):
    def check_signal(self, sig, status, name):
        with harness.EM("--mode", "async", "--polls", "1000", "--retry-after", "30") as em:
            proc = subprocess.Popen([harness.LCMCOORD_BIN, "coordinate", "-v", "--endpoint",
                                     em.url, "--action", "x"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            stderr = harness.LineWatch(proc.stderr)
            try:
                # The client's own word that it has the 202 (the EM journals the POST
                # before it answers, so the journal cannot say so).
                stderr.wait_line(r"EM accepted the coordination \(202\)")
                sent = time.monotonic()
                proc.send_signal(sig)
                proc.wait(timeout=10 * harness.TIME_FACTOR)
                out = proc.stdout.read()
                elapsed = time.monotonic() - sent
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            err = stderr.text()
            proc.stderr.close()
            journal = em.wait_journal(2)
        self.assertEqual(proc.returncode, status, err)
        self.assertLess(elapsed, 5 * harness.TIME_FACTOR)
        self.assertEqual(out, "")
        self.assertEqual(err.strip().splitlines()[-1],
                         f"lcmcoord: interrupted by {name}; the EM was asked to cancel")
        # The EM is asked to cancel what it had accepted.
        self.assertTrue(journal[-1]["path"].endswith("/cancel"), journal)

    def test_sigint_exits_130(self):
        self.check_signal(signal.SIGINT, 130, "SIGINT")

    def test_sigterm_exits_143(self):
        self.check_signal(signal.SIGTERM, 143, "SIGTERM")


if __name__ == "__main__":
    unittest.main()
