"""End-to-end: `lcmcoord run scripts/coordinate_vnf.lua` against `lcmcoord em`, the way a
VNFM runs a CoordinateVNF script (VNFC parameters as JSON on stdin, exit status and one
line of stderr as the outcome). Each test drives one protocol behaviour and checks what the
EM saw in its journal, not only the exit status.
"""

import base64
import copy
import json
import os
import re
import time
import unittest
from datetime import datetime

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "vnfc_param.json")
SCENARIOS = os.path.join(HERE, "scenarios")
SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua")
COORDINATIONS = "/lcmcoord/v1/coordinations"


def vnfc_param(endpoint, **overrides):
    """The fixture's VNFC parameters aimed at `endpoint`, as a dict."""
    with open(FIXTURE, encoding="utf-8") as f:
        param = json.load(f)
    param["endpoint"] = endpoint
    param.update(overrides)
    return param


def run_script(param, *flags, timeout=60, env=None):
    stdin = param if isinstance(param, str) else json.dumps(param)
    return harness.run_lcmcoord("run", *flags, SCRIPT, stdin=stdin, timeout=timeout, env=env)


def journal_time(entry):
    return datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def posts(journal):
    return [e for e in journal if e["method"] == "POST" and e["path"] == COORDINATIONS]


def gaps(entries):
    times = [journal_time(e) for e in entries]
    return [b - a for a, b in zip(times, times[1:])]


class SyncResults(harness.TestCase):
    def test_continue_exits_0_with_only_the_plain_http_warning(self):
        with harness.EM() as em:
            done = run_script(vnfc_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            # Basic credentials over http:// are worth one warning, and nothing else is said.
            self.assertEqual(done.stderr,
                             f"lcmcoord: warning: credentials are sent to {em.url} over plain "
                             "http://, readable by anyone on the path\n")
            self.assertEqual(len(posts(em.journal())), 1)

    def test_abort_exits_1_with_the_em_detail_on_one_line(self):
        with harness.EM("--result", "ABORT") as em:
            done = run_script(vnfc_param(em.url))
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertEqual(line, "lcmcoord: coordination ABORT: VNFC not ready")

    def test_cancelled_exits_1_naming_the_result(self):
        with harness.EM("--result", "CANCELLED") as em:
            done = run_script(vnfc_param(em.url))
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("coordination CANCELLED", line)


class RequestOnTheWire(harness.TestCase):
    def test_em_sees_headers_action_name_and_input_params(self):
        with harness.EM() as em:
            param = vnfc_param(em.url)
            done = run_script(param)
            self.assertEqual(done.returncode, 0, done.stderr)
            (post,) = posts(em.journal())
        headers = post["headers"]
        self.assertEqual(headers.get("version"), "1.0.0")
        self.assertEqual(headers.get("accept"), "application/json")
        self.assertTrue(headers.get("content-type", "").startswith("application/json"),
                        headers)
        body = json.loads(post["body"])
        expected = copy.deepcopy(param["LcmCoordRequest"])
        expected["coordinationActionName"] = "prv.tacker_organization.coordination_test"
        expected["inputParams"] = param["inputParams"]
        self.assertEqual(body, expected)

    def test_without_input_params_none_are_sent(self):
        with harness.EM() as em:
            param = vnfc_param(em.url)
            del param["inputParams"]
            done = run_script(param)
            self.assertEqual(done.returncode, 0, done.stderr)
            (post,) = posts(em.journal())
        self.assertNotIn("inputParams", json.loads(post["body"]))


class Retries(harness.TestCase):
    def test_503_with_retry_after_seconds_reposts_the_same_body_after_the_wait(self):
        with harness.EM("--rejects", "2", "--retry-after", "1") as em:
            done = run_script(vnfc_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            sent = posts(em.journal())
        self.assertEqual([e["status"] for e in sent], [503, 503, 201])
        self.assertEqual(len({e["body"] for e in sent}), 1, "the bodies differ")
        for gap in gaps(sent):
            self.assertGreaterEqual(gap, 0.99)

    def test_503_with_retry_after_http_date_waits_until_that_date(self):
        with harness.EM("--rejects", "2", "--retry-after", "date:2") as em:
            done = run_script(vnfc_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            sent = posts(em.journal())
        self.assertEqual(len(sent), 3)
        self.assertEqual(len({e["body"] for e in sent}), 1)
        for gap in gaps(sent):
            # The date is 2 s ahead at a one-second resolution: more than the floor, less
            # than the 5 s used when no Retry-After is understood.
            self.assertGreaterEqual(gap, 0.99)
            self.assertLess(gap, 4.5 * harness.TIME_FACTOR)

    def test_retry_after_zero_does_not_hot_loop(self):
        with harness.EM("--rejects", "3", "--retry-after", "0") as em:
            done = run_script(vnfc_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            sent = posts(em.journal())
        self.assertEqual(len(sent), 4)
        for gap in gaps(sent):
            self.assertGreaterEqual(gap, 0.99)


class AsyncMode(harness.TestCase):
    def check_polls(self, location):
        polls = 2
        with harness.EM("--mode", "async", "--polls", str(polls), "--retry-after", "1",
                        "--location", location) as em:
            done = run_script(vnfc_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            journal = em.journal()
        (post,) = posts(journal)
        self.assertEqual(post["status"], 202)
        gets = [e for e in journal if e["method"] == "GET"]
        self.assertEqual(len(gets), polls + 1)
        self.assertEqual(len({e["path"] for e in gets}), 1)
        self.assertRegex(gets[0]["path"], "^" + COORDINATIONS + "/[^/]+$")
        self.assertEqual([e["status"] for e in gets], [202] * polls + [200])

    def test_absolute_location_is_polled_until_200(self):
        self.check_polls("absolute")

    def test_relative_location_is_polled_until_200(self):
        self.check_polls("relative")

    def test_202_without_location_is_a_protocol_error(self):
        with harness.EM("--mode", "async", "--location", "none") as em:
            done = run_script(vnfc_param(em.url))
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("Location", line)


class EmErrors(harness.TestCase):
    def run_scenario(self, name):
        with harness.EM("--scenario", os.path.join(SCENARIOS, name)) as em:
            return run_script(vnfc_param(em.url))

    def test_409_problem_details_give_status_and_detail(self):
        done = self.run_scenario("conflict_409.lua")
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("409", line)
        self.assertIn("VNFC VDU2-0a1b2c3d is still draining", line)

    def test_html_error_body_gives_the_status(self):
        done = self.run_scenario("html_error.lua")
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("502", line)
        self.assertNotIn("<html>", line)

    def test_malformed_201_body_is_a_protocol_error(self):
        done = self.run_scenario("malformed_201.lua")
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("201", line)

    def test_201_without_coordination_result_is_a_protocol_error(self):
        done = self.run_scenario("no_result_201.lua")
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("coordinationResult", line)


class Deadlines(harness.TestCase):
    def check_deadline(self, earliest, *em_args, grace=0.0):
        with harness.EM(*em_args) as em:
            start = time.monotonic()
            done = run_script(vnfc_param(em.url, timeout=2))
            elapsed = time.monotonic() - start
        self.assertEqual(done.returncode, 3, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("deadline", line)
        self.assertGreaterEqual(elapsed, earliest)
        # The deadline (2 s), any grace, plus room that grows with the slow-machine factor
        # (valgrind: scripts/valgrind.sh sets 10, and the process alone takes seconds to
        # start).
        self.assertLess(elapsed, 2.0 + grace + 2.5 * harness.TIME_FACTOR)
        return line

    def test_stalled_em_ends_at_the_deadline(self):
        # The EM holds the whole POST: it gets the bounded 5 s grace to answer, so that what
        # it started could be cancelled, and the line says what may be left.
        line = self.check_deadline(1.9 + 5.0, "--delay", "600000", grace=5.0)
        self.assertIn("the EM may hold a coordination that could not be cancelled", line)

    def test_endless_503_ends_at_the_deadline(self):
        # The runtime gives up as soon as the next wait cannot end before the deadline:
        # after the second 503 (t = 1 s) there is less than the 1 s asked for.
        self.check_deadline(0.95, "--rejects", "1000000", "--retry-after", "1")


class BasicAuth(harness.TestCase):
    def test_right_credentials_are_accepted(self):
        with harness.EM("--basic", "tacker:tacker") as em:
            done = run_script(vnfc_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            (post,) = posts(em.journal())
        self.assertEqual(post["auth"]["scheme"].lower(), "basic")
        self.assertEqual(post["auth"]["user"], "tacker")
        self.assertTrue(post["auth"]["ok"])

    def test_wrong_password_exits_4_and_never_shows_it(self):
        secret = "Wr0ng-pa55word-9d3f"
        param_auth = {"authType": ["BASIC"],
                      "paramsBasic": {"userName": "tacker", "password": secret}}
        with harness.EM("--basic", "tacker:tacker") as em:
            done = run_script(vnfc_param(em.url, authentication=param_auth), "-vv")
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertTrue(done.stderr.strip().splitlines()[-1].startswith("lcmcoord: "))
        token = base64.b64encode(f"tacker:{secret}".encode()).decode()
        for leaked in (secret, token):
            self.assertNotIn(leaked, done.stderr)
            self.assertNotIn(leaked, done.stdout)


class Verbose(harness.TestCase):
    def test_v_logs_the_503_wait(self):
        with harness.EM("--rejects", "1", "--retry-after", "1") as em:
            done = run_script(vnfc_param(em.url), "-v")
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stderr.splitlines()
        self.assertTrue(all(line.startswith("lcmcoord: ") for line in lines), lines)
        self.assertTrue(any("503" in line and re.search(r"retry|wait", line, re.I) for line in lines),
                        lines)



class CancelOnTheWayOut(harness.TestCase):
    """When a coordination the EM holds ends early, the EM is asked to cancel it."""

    def cancels(self, journal):
        return [e for e in journal if e["method"] == "POST" and e["path"].endswith("/cancel")]

    def test_deadline_while_polling_cancels_the_coordination(self):
        with harness.EM("--mode", "async", "--polls", "1000", "--retry-after", "1") as em:
            started = time.monotonic()
            done = run_script(vnfc_param(em.url, timeout=3))
            elapsed = time.monotonic() - started
            journal = em.journal()
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertIn("deadline exceeded", self.assertOneLine(done.stderr))
        self.assertLess(elapsed, 8.0 * harness.TIME_FACTOR)
        cancels = self.cancels(journal)
        self.assertEqual(len(cancels), 1, journal)
        polled = [e for e in journal if e["method"] == "GET"][0]["path"]
        self.assertEqual(cancels[0]["path"], polled + "/cancel")

    def test_sigterm_while_polling_cancels_the_coordination(self):
        import signal
        import subprocess
        with harness.EM("--mode", "async", "--polls", "1000", "--retry-after", "30") as em:
            proc = subprocess.Popen([harness.LCMCOORD_BIN, "run", "-v", SCRIPT],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            watch = harness.LineWatch(proc.stderr)
            try:
                proc.stdin.write(json.dumps(vnfc_param(em.url, timeout=120)))
                proc.stdin.close()
                # The client has the 202 and now waits 30 s before its first poll: its own
                # log says so (the EM journals the POST before it answers).
                watch.wait_line(r"EM accepted the coordination \(202\)")
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10 * harness.TIME_FACTOR)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            stderr = watch.text()
            proc.stderr.close()
            journal = em.journal()
        self.assertEqual(proc.returncode, 143, stderr)
        self.assertEqual(len(self.cancels(journal)), 1, journal)

if __name__ == "__main__":
    unittest.main()
