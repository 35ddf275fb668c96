"""End to end: the primitives scripts build on (lcmcoord.http.request, lcmcoord.auth,
lcmcoord.retry, sleep, now, log), run by `lcmcoord run` against `lcmcoord em` and against a
server that shares none of our code (Python's http.server). Each test is a short Lua script
whose printed lines and exit status are checked, with the EM's journal as the witness of
what went over the wire.
"""

import base64
import json
import os
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
from harness import EM, TestCase

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(harness.SOURCE_DIR, "scripts", "em", "probes.lua")


def lua(text, param, *flags, timeout=60):
    """Runs a Lua script text with `lcmcoord run`, the param dict as its argument."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write('local lcmcoord = require "lcmcoord"\nlocal p = ...\n' + text)
        return harness.run_lcmcoord("run", "--any-params", *flags, path, stdin=json.dumps(param),
                                    timeout=timeout)


def requests_to(journal, path):
    return [e for e in journal if e["path"] == path]


class HttpRequestTest(TestCase):
    def test_get_and_post_json_against_the_em(self):
        with EM() as em:
            done = lua("""
local r = assert(lcmcoord.http.request{url = p.url .. "/lcmcoord/v1/api_versions"})
print(r.status, r.json.apiVersions[1].version, r.headers["content-type"])
local req = lcmcoord.request{action = "prv.test.http"}
local c = assert(lcmcoord.http.request{method = "POST", url = p.url .. "/lcmcoord/v1/coordinations",
  headers = {Version = "1.0.0"}, json = req})
print(c.status, c.json.coordinationResult, c.headers.location ~= nil)
""", {"url": em.url})
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.splitlines(),
                         ["200\t1.0.0\tapplication/json", "201\tCONTINUE\ttrue"])
        post = requests_to(journal, "/lcmcoord/v1/coordinations")[0]
        self.assertEqual(post["headers"]["content-type"], "application/json")
        self.assertEqual(post["headers"]["accept"], "application/json")

    def test_failure_without_an_answer_is_nil_and_an_error(self):
        done = lua("""
local r, err = lcmcoord.http.request{url = "http://127.0.0.1:1/x", timeout = 5}
print(r, err.kind, lcmcoord.is_error(err))
""", {})
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "nil\ttransport\ttrue")

    def test_a_non_2xx_status_is_an_answer_not_an_error(self):
        with EM("--scenario", PROBE) as em:
            done = lua("""
local r = assert(lcmcoord.http.request{url = p.url .. "/probe/bad"})
print(r.status, r.json.detail)
""", {"url": em.url})
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "400\tno such thing")

    def test_body_cap_and_bad_arguments(self):
        with EM() as em:
            done = lua("""
local r, err = lcmcoord.http.request{url = p.url .. "/lcmcoord/v1/api_versions", max_body = 10}
print(err.kind, err.message:find("limit") ~= nil)
print(pcall(lcmcoord.http.request, {url = p.url, bogus = 1}))
print(pcall(lcmcoord.http.request, {url = p.url, body = "x", json = {}}))
""", {"url": em.url})
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        self.assertEqual(lines[0], "protocol\ttrue")
        self.assertIn("unknown field 'bogus'", lines[1])
        self.assertIn("body and json", lines[2])


class AuthObjectTest(TestCase):
    def test_basic_auth_object_for_requests_and_clients(self):
        with EM("--basic", "ops:B4sic-Pw") as em:
            done = lua("""
local auth = lcmcoord.auth.new{authType = {"BASIC"}, paramsBasic = {userName = "ops", password = "B4sic-Pw"}}
print(tostring(auth), auth:type())
local r = assert(lcmcoord.http.request{url = p.url .. "/lcmcoord/v1/api_versions", auth = auth})
local c <close> = lcmcoord.client{endpoint = p.url, authentication = auth}
print(r.status, c:api_versions().status)
-- A request of our own making, with the header the object gives.
local r2 = assert(lcmcoord.http.request{url = p.url .. "/lcmcoord/v1/api_versions",
  headers = {Authorization = auth:header()}})
print(r2.status)
""", {"url": em.url}, "-vv")
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.splitlines(),
                         ["lcmcoord.auth (BASIC)\tBASIC", "200\t200", "200"])
        self.assertTrue(all(e["auth"]["ok"] for e in journal))
        self.assertNotIn("B4sic-Pw", done.stdout + done.stderr)
        self.assertNotIn(base64.b64encode(b"ops:B4sic-Pw").decode(), done.stdout + done.stderr)

    def test_oauth2_auth_object_shares_one_token(self):
        with EM("--oauth2", "vnfm:0auth-S3cret") as em:
            done = lua("""
local auth = lcmcoord.auth.new{authType = {"OAUTH2_CLIENT_CREDENTIALS"},
  paramsOauth2ClientCredentials = {clientId = "vnfm", clientPassword = "0auth-S3cret",
                                   tokenEndpoint = p.url .. "/token"}}
for i = 1, 3 do
  assert(lcmcoord.http.request{url = p.url .. "/lcmcoord/v1/api_versions", auth = auth})
end
local c <close> = lcmcoord.client{endpoint = p.url, authentication = auth}
print(c:api_versions().status, auth:header():match("^Bearer ") ~= nil)
""", {"url": em.url})
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "200\ttrue")
        self.assertEqual(len(requests_to(journal, "/token")), 1)
        self.assertTrue(all(e["auth"]["ok"] for e in requests_to(
            journal, "/lcmcoord/v1/api_versions")))

    def test_bad_authentication_raises_naming_the_field(self):
        done = lua("""
local ok, err = pcall(lcmcoord.auth.new, {authType = {"BASIC"}, paramsBasic = {password = "x"}})
print(ok, err.kind, err.message)
""", {})
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(),
                         "false\tusage\tauthentication.paramsBasic.userName is missing")


class IndependentServerTest(TestCase):
    def test_python_http_server_sees_our_credentials_and_json(self):
        seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                seen.append((self.headers["Authorization"], self.headers["Content-Type"],
                             json.loads(body)))
                data = b'{"drained": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/drain"
            done = lua("""
local r = assert(lcmcoord.http.request{method = "POST", url = p.url, json = {vnfc = "VDU1"},
  auth = {authType = {"BASIC"}, paramsBasic = {userName = "ops", password = "Py-Pw"}}})
print(r.status, r.json.drained)
""", {"url": url})
        finally:
            server.shutdown()
            server.server_close()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "200\ttrue")
        self.assertEqual(seen, [("Basic " + base64.b64encode(b"ops:Py-Pw").decode(),
                                 "application/json", {"vnfc": "VDU1"})])


class RetryPolicyTest(TestCase):
    def test_503_twice_then_200_waits_as_asked(self):
        with EM("--scenario", PROBE) as em:
            started = time.monotonic()
            done = lua("""
local policy = lcmcoord.retry.policy{attempts = 5, base = 0.1, floor = 0.1}
local r = assert(lcmcoord.http.request{url = p.url .. "/probe/busy-twice", retry = policy})
print(r.status, math.tointeger(r.json.attempts))
""", {"url": em.url})
            elapsed = time.monotonic() - started
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "200\t3")
        self.assertEqual(len(requests_to(journal, "/probe/busy-twice")), 3)
        self.assertGreaterEqual(elapsed, 2.0)  # two Retry-After: 1 honoured

    def test_429_with_an_http_date_is_honoured_by_policy_run(self):
        with EM("--scenario", PROBE) as em:
            started = time.monotonic()
            done = lua("""
local policy = lcmcoord.retry.policy{attempts = 3, retry_on = {429}}
local seen = 0
local r = policy:run(function(attempt)
  seen = attempt
  return lcmcoord.http.request{url = p.url .. "/probe/rate-date"}
end)
print(r.status, seen, math.tointeger(r.json.attempts))
""", {"url": em.url})
            elapsed = time.monotonic() - started
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "200\t2\t2")
        self.assertGreaterEqual(elapsed, 1.0)  # the date was ~2 s ahead (whole seconds)

    def test_transport_failures_are_retried_then_reported(self):
        started = time.monotonic()
        done = lua("""
local policy = lcmcoord.retry.policy{attempts = 3, base = 0.2, multiplier = 2, jitter = 0,
                                     floor = 0.1, retry_on = {"transport"}}
local tries = 0
local r, err = policy:run(function(a)
  tries = a
  return lcmcoord.http.request{url = "http://127.0.0.1:1/", timeout = 2}
end)
print(r, err.kind, tries)
""", {})
        elapsed = time.monotonic() - started
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "nil\ttransport\t3")
        self.assertGreaterEqual(elapsed, 0.6)  # 0.2 s then 0.4 s

    def test_the_deadline_ends_the_retries(self):
        with EM("--scenario", PROBE) as em:
            started = time.monotonic()
            done = lua("""
local r = assert(lcmcoord.http.request{url = p.url .. "/probe/busy",
  retry = {attempts = 0, deadline = 2.5, floor = 1, retry_on = {503}}})
print(r.status)
""", {"url": em.url})
            elapsed = time.monotonic() - started
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "503")
        self.assertLess(elapsed, 6.0 * harness.TIME_FACTOR)
        self.assertIn(len(requests_to(journal, "/probe/busy")), (3, 4))

    def test_no_retry_on_400(self):
        with EM("--scenario", PROBE) as em:
            done = lua("""
local r = assert(lcmcoord.http.request{url = p.url .. "/probe/bad", retry = {attempts = 5}})
print(r.status)
""", {"url": em.url})
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "400")
        self.assertEqual(len(requests_to(journal, "/probe/bad")), 1)


class ScriptUtilitiesTest(TestCase):
    def test_sleep_now_and_log_follow_verbosity(self):
        script = """
local t0 = lcmcoord.now()
assert(lcmcoord.sleep(0.3))
print(lcmcoord.now() - t0 >= 0.3)
lcmcoord.log.info("draining %s", "VDU1")
lcmcoord.log.warn("health check %d failed", 2)
"""
        quiet = lua(script, {})
        loud = lua(script, {}, "-v")
        self.assertEqual(quiet.stdout.strip(), "true")
        self.assertEqual(quiet.stderr, "lcmcoord: warning: health check 2 failed\n")
        self.assertIn("lcmcoord: draining VDU1\n", loud.stderr)


if __name__ == "__main__":
    unittest.main()
