"""End-to-end tests of `lcmcoord em`, the simulator's own features: the request journal,
HTTP Basic authentication, Lua scenarios (every shipped one), delayed answers, keep-alive,
logging, the command line and the process lifecycle (listening line, signals, exit codes).
The client is the `curl` CLI.
"""

import base64
import datetime
import email.utils
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from harness import (API_HEADERS, EM, LCMCOORD_BIN, SOURCE_DIR, TIME_FACTOR, TestCase, curl,
                     run_lcmcoord, sample_request, wait_for)

COORDS = "/lcmcoord/v1/coordinations"
SCENARIOS = os.path.join(SOURCE_DIR, "scripts", "em")


def post(em, body=None, headers=None, url=None):
    body = json.dumps(sample_request() if body is None else body)
    return curl("POST", url or em.url + COORDS, body=body,
                headers=API_HEADERS if headers is None else headers)


def get(em, url, headers=None):
    if url.startswith("/"):
        url = em.url + url
    return curl("GET", url, headers=API_HEADERS if headers is None else headers)


def scenario(name):
    return os.path.join(SCENARIOS, name)


class TempScenario:
    """A scenario file written for one test."""

    def __init__(self, text):
        self.file = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        self.file.write(text)
        self.file.close()
        self.path = self.file.name

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        os.unlink(self.path)


class JournalTest(TestCase):
    def test_journal_records_requests_with_headers_body_and_status(self):
        body = json.dumps(sample_request())
        with EM() as em:
            curl("POST", em.url + COORDS, body=body,
                 headers=dict(API_HEADERS, **{"X-Trace": "t-1"}))
            curl("GET", em.url + "/nowhere")
            journal = em.wait_journal(2)
            self.assertEqual(len(journal), 2, "journal reads must not be journaled")
            first, second = journal
            self.assertEqual(first["seq"], 1)
            self.assertEqual(second["seq"], 2)
            self.assertEqual(first["method"], "POST")
            self.assertEqual(first["path"], COORDS)
            self.assertEqual(first["body"], body)
            self.assertEqual(first["status"], 201)
            self.assertEqual(first["headers"]["version"], "1.0.0")
            self.assertEqual(first["headers"]["content-type"], "application/json")
            # An allow-list: a header not known to be harmless keeps its name only.
            self.assertEqual(first["headers"]["x-trace"], "<redacted>")
            self.assertNotIn("auth", first)
            self.assertRegex(first["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            when = datetime.datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
            age = datetime.datetime.now(datetime.timezone.utc) - when
            self.assertLess(abs(age.total_seconds()), 30)
            self.assertEqual((second["method"], second["path"], second["status"]),
                             ("GET", "/nowhere", 404))

    def test_journal_keeps_invalid_utf8_bodies_as_replacement_characters(self):
        with EM() as em:
            curl("POST", em.url + COORDS, body=b'{"vnfInstanceId": "\xff"}',
                 headers=API_HEADERS)
            entry = em.wait_journal(1)[0]
            self.assertEqual(entry["status"], 400)
            self.assertEqual(entry["body"], '{"vnfInstanceId": "\ufffd"}')

    def test_delete_clears_the_journal(self):
        with EM() as em:
            post(em)
            em.wait_journal(1)
            resp = curl("DELETE", em.url + "/_em/journal")
            self.assertEqual(resp.status, 204)
            self.assertEqual(em.journal(), [])
            post(em)
            self.assertEqual(em.wait_journal(1)[0]["seq"], 2)

    def test_journal_is_capped(self):
        with EM("--journal-max", "3") as em:
            for _ in range(5):
                curl("GET", em.url + "/lcmcoord/api_versions")
            journal = em.wait_journal(3)
            self.assertEqual([e["seq"] for e in journal], [3, 4, 5])


class BasicAuthTest(TestCase):
    PASSWORD = "s3cret-Pa55"

    def test_basic_auth_required_wrong_and_ok(self):
        with EM("--basic", "alice:" + self.PASSWORD) as em:
            missing = post(em)
            self.assertEqual(missing.status, 401)
            self.assertEqual(missing.headers["www-authenticate"], 'Basic realm="lcmcoord"')
            self.assertEqual(missing.json()["status"], 401)
            self.assertEqual(post(em, headers=dict(API_HEADERS),
                                  url=em.url.replace("//", "//alice:wrong@") + COORDS).status,
                             401)
            bearer = post(em, headers=dict(API_HEADERS, Authorization="Bearer tok-123"))
            self.assertEqual(bearer.status, 401)
            ok = curl("POST", em.url + COORDS, body=json.dumps(sample_request()),
                      headers=API_HEADERS, extra=["-u", "alice:" + self.PASSWORD])
            self.assertEqual(ok.status, 201, ok)
            ok_get = curl("GET", em.url + "/lcmcoord/api_versions",
                          extra=["-u", "alice:" + self.PASSWORD])
            self.assertEqual(ok_get.status, 200)

            journal = em.wait_journal(5)
            self.assertNotIn("auth", journal[0])
            self.assertEqual(journal[1]["auth"], {"scheme": "Basic", "user": "alice",
                                                  "ok": False})
            self.assertEqual(journal[2]["auth"], {"scheme": "Bearer", "user": None,
                                                  "ok": False})
            self.assertEqual(journal[2]["headers"]["authorization"], "Bearer <redacted>")
            self.assertEqual(journal[3]["auth"], {"scheme": "Basic", "user": "alice",
                                                  "ok": True})
            self.assertEqual(journal[3]["headers"]["authorization"], "Basic <redacted>")
            self.assertEqual(journal[3]["status"], 201)

            encoded = base64.b64encode(f"alice:{self.PASSWORD}".encode()).decode()
            raw = json.dumps(journal)
            for secret in (self.PASSWORD, encoded, "tok-123"):
                self.assertNotIn(secret, raw)
            em.stop()
            for secret in (self.PASSWORD, encoded, "tok-123"):
                self.assertNotIn(secret, em.stderr_text())


class ScenarioTest(TestCase):
    def test_abort_third_vnfc(self):
        with EM("--scenario", scenario("abort_third_vnfc.lua")) as em:
            answers = [post(em) for _ in range(4)]
            self.assertEqual([a.status for a in answers], [201] * 4)
            results = [a.json()["coordinationResult"] for a in answers]
            self.assertEqual(results, ["CONTINUE", "CONTINUE", "ABORT", "CONTINUE"])
            self.assertIn("error", answers[2].json())
            third = get(em, answers[2].headers["location"])
            self.assertEqual(third.status, 200)
            self.assertEqual(third.json()["coordinationResult"], "ABORT")
            # Fall-through: what the scenario leaves alone gets the default answer.
            self.assertEqual(curl("GET", em.url + "/lcmcoord/api_versions").status, 200)
            self.assertEqual(post(em, sample_request(lcmOperationType="X")).status, 201,
                             "the scenario decides valid-looking JSON too")

    def test_busy_twice_then_async(self):
        with EM("--scenario", scenario("busy_twice_then_async.lua")) as em:
            for n in (1, 2):
                busy = post(em)
                self.assertEqual(busy.status, 503)
                self.assertEqual(busy.headers["retry-after"], "1")
                self.assertTrue(busy.headers["content-type"].startswith(
                    "application/problem+json"))
                self.assertIn(f"{n} of 2", busy.json()["detail"])
            accepted = post(em)
            self.assertEqual(accepted.status, 202, accepted)
            location = accepted.headers["location"]
            self.assertTrue(location.startswith(em.url + COORDS + "/"))
            self.assertEqual([get(em, location).status for _ in range(3)], [202, 202, 200])
            self.assertEqual(get(em, location).json()["coordinationResult"], "CONTINUE")

    def test_http_date_retry(self):
        with EM("--scenario", scenario("http_date_retry.lua")) as em:
            busy = post(em)
            self.assertEqual(busy.status, 503)
            when = email.utils.parsedate_to_datetime(busy.headers["retry-after"])
            delta = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            self.assertTrue(0 <= delta <= 3, delta)
            self.assertEqual(post(em).status, 201)

    def test_relative_location(self):
        with EM("--scenario", scenario("relative_location.lua")) as em:
            accepted = post(em)
            self.assertEqual(accepted.status, 202)
            location = accepted.headers["location"]
            self.assertRegex(location, "^" + COORDS + "/[0-9a-f-]{36}$")
            self.assertEqual(get(em, location).status, 202)
            self.assertEqual(get(em, location).status, 200)

    def test_garbage_retry_after(self):
        with EM("--scenario", scenario("garbage_retry_after.lua")) as em:
            busy = post(em)
            self.assertEqual(busy.status, 503)
            self.assertEqual(busy.headers["retry-after"], "soon-ish, maybe")

    def test_request_table_seen_by_the_scenario(self):
        text = r"""
            return function(req)
              if req.path ~= "/echo" then return end
              return 200, {["X-Count"] = req.count}, {
                method = req.method, path = req.path, count = req.count, posts = req.posts,
                version = req.headers.version, authorization = req.headers.authorization,
                body = req.body, id = req.json and req.json.vnfInstanceId,
                base_url = em.base_url, null_is_sentinel = req.json.nothing == em.null,
              }
            end
        """
        with TempScenario(text) as path, EM("--scenario", path) as em:
            post(em)
            body = json.dumps({"vnfInstanceId": "v-1", "nothing": None})
            resp = curl("PUT", em.url + "/echo", body=body,
                        headers=dict(API_HEADERS, Authorization="Basic YWxpY2U6c2VjcmV0"))
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.headers["content-type"], "application/json")
            self.assertEqual(resp.headers["x-count"], "2")
            self.assertEqual(resp.headers["version"], "1.0.0")
            self.assertEqual(resp.json(), {
                "method": "PUT", "path": "/echo", "count": 2, "posts": 1,
                "version": "1.0.0", "authorization": "Basic <redacted>", "body": body,
                "id": "v-1", "base_url": em.url, "null_is_sentinel": True})

    def test_runtime_error_is_500_and_server_keeps_running(self):
        text = """
            return function(req)
              if req.path == "/boom" then error("kaboom in scenario") end
            end
        """
        with TempScenario(text) as path, EM("--scenario", path) as em:
            resp = curl("GET", em.url + "/boom")
            self.assertEqual(resp.status, 500)
            self.assertTrue(resp.headers["content-type"].startswith("application/problem+json"))
            self.assertIn("kaboom in scenario", resp.json()["detail"])
            self.assertEqual(post(em).status, 201)
            wait_for(lambda: "kaboom in scenario" in em.stderr_text(), what="error logged")

    def test_invalid_return_values_are_500(self):
        text = """
            return function(req)
              if req.path == "/status" then return "two hundred" end
              if req.path == "/header" then return 200, {["X-Bad"] = "a\\r\\nb"}, "" end
              if req.path == "/body" then return 200, {}, {1, x = 2} end
              if req.path == "/loop" then while true do end end
            end
        """
        with TempScenario(text) as path, EM("--scenario", path) as em:
            for p in ("/status", "/header", "/body"):
                with self.subTest(path=p):
                    self.assertEqual(curl("GET", em.url + p).status, 500)
            started = time.monotonic()
            looped = curl("GET", em.url + "/loop")
            self.assertEqual(looped.status, 500)
            self.assertIn("longer than", looped.json()["detail"])
            self.assertLess(time.monotonic() - started, 6 * TIME_FACTOR)
            self.assertEqual(post(em).status, 201)

    def test_load_errors_exit_2_with_file_and_line(self):
        with TempScenario("return function(req)\n  if then\nend\n") as path:
            done = run_lcmcoord("em", "--listen", "127.0.0.1:0", "--scenario", path,
                                timeout=20)
            self.assertEqual(done.returncode, 2)
            self.assertIn(f"{path}:2:", self.assertOneLine(done.stderr))
            self.assertEqual(done.stdout, "")
        with TempScenario("return 42\n") as path:
            done = run_lcmcoord("em", "--listen", "127.0.0.1:0", "--scenario", path)
            self.assertEqual(done.returncode, 2)
            self.assertIn("must return a function", done.stderr)
        done = run_lcmcoord("em", "--listen", "127.0.0.1:0", "--scenario", "/nonexistent.lua")
        self.assertEqual(done.returncode, 2)
        self.assertIn("/nonexistent.lua", done.stderr)


class DelayTest(TestCase):
    def test_delay_answers_late_without_blocking_other_connections(self):
        # The delay stretches with the slow-machine factor, so that "before the delayed
        # answer" stays a real window.
        delay = 1.5 * TIME_FACTOR
        with EM("--delay", str(int(delay * 1000)), "--threads", "1") as em:
            started = time.monotonic()
            slow = subprocess.Popen(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                 em.url + "/lcmcoord/api_versions"],
                stdout=subprocess.PIPE, text=True)
            try:
                em.wait_journal(1)
                # Answered while the delayed request is still pending, on the same worker.
                self.assertIsNone(slow.poll())
                self.assertLess(time.monotonic() - started, delay - 0.1)
                out, _ = slow.communicate(timeout=20)
            finally:
                if slow.poll() is None:
                    slow.kill()
                    slow.wait()
            self.assertEqual(out, "200")
            self.assertGreaterEqual(time.monotonic() - started, delay - 0.05)
            line = wait_for(lambda: re.search(r"GET /lcmcoord/api_versions 200 (\d+\.\d) ms",
                                              em.stderr_text()), what="log line")
            self.assertGreaterEqual(float(line.group(1)), (delay - 0.1) * 1000)

    def test_sigterm_during_a_delayed_request_exits_0_promptly(self):
        em = EM("--delay", "600000")
        with em:
            slow = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "--max-time", "60",
                                     em.url + "/lcmcoord/api_versions"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                em.wait_journal(1)
                started = time.monotonic()
                self.assertEqual(em.stop(timeout=5), 0)
                self.assertLess(time.monotonic() - started, 3 * TIME_FACTOR)
                slow.wait(timeout=10 * TIME_FACTOR)
            finally:
                if slow.poll() is None:
                    slow.kill()
                    slow.wait()


class ConnectionTest(TestCase):
    def test_keep_alive_reuses_the_connection(self):
        with EM() as em:
            url = em.url + "/lcmcoord/api_versions"
            done = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-w",
                 "%{http_code} %{num_connects}\n", url, url],
                capture_output=True, text=True, timeout=20)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(done.stdout.split("\n")[:2], ["200 1", "200 0"])

    def test_log_line_per_request_and_quiet(self):
        with EM() as em:
            post(em)
            wait_for(lambda: re.search(
                r"^POST /lcmcoord/v1/coordinations 201 \d+\.\d ms$", em.stderr_text(), re.M),
                what="log line")
            self.assertNotIn("vnfInstanceId", em.stderr_text())
        with EM("--quiet") as em:
            post(em)
            em.wait_journal(1)
            em.stop()
            self.assertNotIn("/lcmcoord/v1/coordinations", em.stderr_text())


class CommandLineTest(TestCase):
    def test_help_exits_0_with_usage_on_stdout(self):
        done = run_lcmcoord("em", "--help")
        self.assertEqual(done.returncode, 0)
        self.assertTrue(done.stdout.startswith("usage: lcmcoord em"))
        for option in ("--listen", "--mode", "--polls", "--rejects", "--result",
                       "--retry-after", "--location", "--delay", "--basic", "--body-limit",
                       "--threads", "--scenario", "--quiet"):
            self.assertIn(option, done.stdout)
        self.assertEqual(done.stderr, "")

    def test_bad_arguments_exit_2_with_one_line(self):
        cases = [("--frobnicate",), ("--mode", "sideways"), ("--retry-after", "soon"),
                 ("--threads", "0"), ("--polls", "-1"), ("--listen", "nowhere"),
                 ("--basic", "nocolon"), ("--result", "MAYBE"), ("--delay",),
                 ("extra-arg",)]
        for args in cases:
            with self.subTest(args=args):
                done = run_lcmcoord("em", *args, timeout=20)
                self.assertEqual(done.returncode, 2)
                self.assertOneLine(done.stderr)
                self.assertEqual(done.stdout, "")

    def test_port_0_prints_the_real_port(self):
        with EM() as em:
            port = int(em.url.rsplit(":", 1)[1])
            self.assertNotEqual(port, 0)
            self.assertEqual(em.url, f"http://127.0.0.1:{port}")
            self.assertEqual(curl("GET", em.url + "/lcmcoord/api_versions").status, 200)

    def test_listening_line_is_the_only_stdout(self):
        proc = subprocess.Popen([LCMCOORD_BIN, "em", "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = proc.stdout.readline()
            self.assertRegex(line, r"^listening on http://127\.0\.0\.1:\d+\n$")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10 * TIME_FACTOR), 0)
            self.assertEqual(proc.stdout.read(), "")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def test_sigint_and_sigterm_exit_0(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig):
                em = EM()
                with em:
                    post(em)
                    self.assertEqual(em.stop(sig=sig), 0)

    def test_port_in_use_fails(self):
        with EM() as em:
            hostport = em.url.split("//", 1)[1]
            done = run_lcmcoord("em", "--listen", hostport, timeout=20)
            self.assertNotEqual(done.returncode, 0)
            self.assertIn("cannot listen", done.stderr)


if __name__ == "__main__":
    unittest.main()
