"""End to end: the C example of docs/examples/coordinate.c, built on liblcmcoord alone,
against `lcmcoord em`. Proves the runtime is usable from C without Lua."""

import json
import os
import subprocess
import time

import harness
from harness import EM, TestCase, sample_request

EXAMPLE = os.environ.get("LCMCOORD_EXAMPLE", "lcmcoord_example_coordinate")


def run_example(url, request, verbose=False):
    env = dict(os.environ)
    if verbose:
        env["LCMC_VERBOSE"] = "1"
    return subprocess.run([EXAMPLE, url], input=json.dumps(request), capture_output=True,
                          text=True, timeout=60 * harness.TIME_FACTOR, env=env)


class CExampleTest(TestCase):
    def test_sync_continue_prints_the_lcmcoord_and_exits_0(self):
        with EM() as em:
            done = run_example(em.url, sample_request())
            self.assertEqual(done.returncode, 0, done.stderr)
            lcmcoord = json.loads(done.stdout)
            self.assertEqual(lcmcoord["coordinationResult"], "CONTINUE")
            self.assertEqual(lcmcoord["vnfLcmOpOccId"], sample_request()["vnfLcmOpOccId"])

    def test_async_abort_after_polls_exits_1(self):
        with EM("--mode", "async", "--polls", "2", "--retry-after", "1",
                "--result", "ABORT") as em:
            started = time.monotonic()
            done = run_example(em.url, sample_request(), verbose=True)
            elapsed = time.monotonic() - started
            self.assertEqual(done.returncode, 1, done.stderr)
            self.assertEqual(json.loads(done.stdout)["coordinationResult"], "ABORT")
            self.assertIn("still in progress (202)", done.stderr)
            # Three waits of one second: after the 202 to the POST and after two 202 polls.
            self.assertGreaterEqual(elapsed, 3.0)
            gets = [e for e in em.journal() if e["method"] == "GET"]
            self.assertEqual(len(gets), 3)

    def test_ems_problem_details_reach_the_message(self):
        with EM("--mode", "sync") as em:
            bad = sample_request(lcmOperationType="UPGRADE")
            # The runtime refuses it before sending: the EM never sees it.
            done = run_example(em.url, bad)
            self.assertEqual(done.returncode, 1)
            self.assertIn("lcmOperationType", self.assertOneLine(done.stderr))
            self.assertEqual(em.journal(), [])

    def test_bad_endpoint_is_a_usage_error(self):
        done = run_example("em.example:6789", sample_request())
        self.assertEqual(done.returncode, 2)
        self.assertIn("endpoint", self.assertOneLine(done.stderr))
