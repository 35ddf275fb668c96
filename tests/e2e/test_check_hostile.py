"""`lcmcoord check` and `lcmcoord params` against what an operator gets wrong and what a
hostile peer or package sends (review of issue 14): a password in the endpoint is never
printed, text from a token endpoint, the parameters or the script reaches the terminal with
its controls escaped and on one line, and a script cannot get a coordination created at
the EM during the preflight by any path (an __index answering the method twice, the real
module required again or loaded from its library). Real `lcmcoord em` and a real Python
token endpoint on 127.0.0.1; the EM's journal is the witness of what was sent.
"""

import http.server
import json
import os
import tempfile
import threading
import unittest

from harness import EM, SOURCE_DIR, TestCase, run_lcmcoord

EXAMPLE = os.path.join(SOURCE_DIR, "scripts", "examples", "vnfc_param.json")
SECRET = "s3cret-in-the-url-77"
# What a terminal acts on: ESC (C0) and CSI (C1, U+009B).
CONTROLS = ("\x1b", "\x9b", "\x07")


def params(endpoint, **changes):
    with open(EXAMPLE, encoding="utf-8") as f:
        value = json.load(f)
    value["endpoint"] = endpoint
    value["authentication"] = None
    value.update(changes)
    return value


def coordination_posts(journal):
    return [e for e in journal
            if e.get("method") == "POST" and "/coordinations" in e.get("path", "")]


class HostileTokenEndpoint(http.server.BaseHTTPRequestHandler):
    """Refuses every client with an error_description full of terminal controls."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": "invalid_client\x1b[2J",
                           "error_description": "bad\nsecond line \x1b]0;pwned\x07 \x9b31m"})
        data = body.encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class CheckHostileTestCase(TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def script(self, text):
        path = os.path.join(self.tmp.name, "script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def check(self, value, script, *args):
        return run_lcmcoord("check", *args, script, stdin=json.dumps(value), timeout=60)

    def assertOneLinePerCheck(self, done):
        for line in done.stdout.splitlines():
            self.assertRegex(line, r"^(ok|FAIL|skip)  ", done.stdout)
        for control in CONTROLS:
            self.assertNotIn(control, done.stdout + done.stderr)


SETS_ACTION = ('local lcmcoord = require "lcmcoord"\n'
               "local p = ...\n"
               "p.LcmCoordRequest.coordinationActionName = 'prv.example.ok'\n"
               "lcmcoord.create_coordination(p.endpoint, p.authentication, p.LcmCoordRequest)\n")


class EndpointSecretTest(CheckHostileTestCase):
    def test_password_in_the_endpoint_is_never_printed_and_fails(self):
        with EM() as em:
            port = em.url.rsplit(":", 1)[1]
            done = self.check(params(f"http://tacker:{SECRET}@127.0.0.1:{port}"),
                              self.script(SETS_ACTION))
        self.assertNotIn(SECRET, done.stdout + done.stderr)
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertRegex(done.stdout, r"(?m)^FAIL  endpoint: .*user:password@")

    def test_password_with_a_wrong_scheme_is_not_printed_either(self):
        done = self.check(params(f"ftp://tacker:{SECRET}@127.0.0.1:9"), self.script(SETS_ACTION),
                          "--offline")
        self.assertNotIn(SECRET, done.stdout + done.stderr)
        self.assertEqual(done.returncode, 1, done.stdout)

    def test_offline_refuses_what_run_refuses(self):
        # `lcmcoord run` refuses a query string and a fragment in the endpoint: --offline
        # must not say everything passed.
        for endpoint in ("http://127.0.0.1:9/?a=b", "http://127.0.0.1:9/#top"):
            done = self.check(params(endpoint), self.script(SETS_ACTION), "--offline")
            self.assertEqual(done.returncode, 1, endpoint + "\n" + done.stdout)
            self.assertRegex(done.stdout, r"(?m)^FAIL  endpoint: ")


class ControlCharactersTest(CheckHostileTestCase):
    def test_token_endpoint_error_is_escaped(self):
        server = http.server.HTTPServer(("127.0.0.1", 0), HostileTokenEndpoint)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        auth = {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                "paramsOauth2ClientCredentials": {"clientId": "c", "clientPassword": "pw",
                                                  "tokenEndpoint": url + "/token"}}
        done = self.check(params(url, authentication=auth), self.script(SETS_ACTION))
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertRegex(done.stdout, r"(?m)^FAIL  token: .*pwned")
        self.assertOneLinePerCheck(done)

    def test_script_error_and_action_are_escaped(self):
        done = self.check(params("http://127.0.0.1:9"),
                          self.script('error("boom \\27]0;title\\7 \\27[31mred")'), "--offline")
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertIn("boom", done.stdout)
        self.assertOneLinePerCheck(done)
        done = self.check(params("http://127.0.0.1:9"), self.script(
            'local lcmcoord = require "lcmcoord"\n'
            "local p = ...\n"
            "p.LcmCoordRequest.coordinationActionName = 'prv.x.\\27[2J\\194\\155cleared'\n"
            "lcmcoord.create_coordination(p.endpoint, p.authentication, p.LcmCoordRequest)\n"),
            "--offline")
        self.assertIn("cleared", done.stdout)
        self.assertOneLinePerCheck(done)

    def test_endpoint_from_the_parameters_is_escaped(self):
        done = self.check(params("http://127.0.0.1:9/\x1b[2J\x9b"), self.script(SETS_ACTION),
                          "--offline")
        self.assertOneLinePerCheck(done)


class NothingCreatedTest(CheckHostileTestCase):
    def assertNothingCreated(self, body):
        script = self.script('local lcmcoord = require "lcmcoord"\n'
                             "local p = ...\n"
                             "p.LcmCoordRequest.coordinationActionName = 'prv.example.ok'\n"
                             + body +
                             "lcmcoord.create_coordination(p.endpoint, p.authentication,"
                             " p.LcmCoordRequest)\n")
        with EM() as em:
            done = self.check(params(em.url), script)
            journal = em.journal()
        self.assertEqual(coordination_posts(journal), [], done.stdout + done.stderr)
        return done

    def test_method_read_twice_through_index(self):
        self.assertNothingCreated(
            "local n = 0\n"
            "local options = setmetatable({url = p.endpoint .. '/lcmcoord/v1/coordinations',\n"
            "  body = lcmcoord.json.encode(p.LcmCoordRequest),\n"
            "  headers = {['Content-Type'] = 'application/json', Version = '1.0.0'}},\n"
            "  {__index = function(t, k)\n"
            "    if k == 'method' then n = n + 1; return n == 1 and 'GET' or 'POST' end\n"
            "  end})\n"
            "lcmcoord.http.request(options)\n")

    def test_module_required_again(self):
        # Under ctest LUA_CPATH finds the module's library: a second require would load the
        # real one.
        self.assertNothingCreated(
            "package.loaded.lcmcoord = nil\n"
            "local ok, again = pcall(require, 'lcmcoord')\n"
            "if ok then again.create_coordination(p.endpoint, p.authentication,\n"
            "  p.LcmCoordRequest) end\n")

    @unittest.skipUnless(os.environ.get("LUA_CPATH"), "needs the module's library (ctest)")
    def test_module_loaded_from_its_library(self):
        self.assertNothingCreated(
            "local path = package.searchpath('lcmcoord', package.cpath)\n"
            "local open = path and package.loadlib(path, 'luaopen_lcmcoord')\n"
            "if open then\n"
            "  local real = open()\n"
            "  local req = {}\n"
            "  for k, v in pairs(p.LcmCoordRequest) do req[k] = v end\n"
            "  req.coordinationActionName = 'prv.example.real'\n"
            "  pcall(real.create_coordination, p.endpoint, p.authentication, req, 5)\n"
            "end\n")


class ScriptOutputTest(CheckHostileTestCase):
    def test_what_the_script_prints_goes_to_stderr(self):
        # stdout is the report, one line per check, for a reader or a tool that parses it.
        done = self.check(params("http://127.0.0.1:9"), self.script(
            "print('from print', 42)\n"
            "io.write('from io.write\\n')\n"
            "io.stdout:write('from io.stdout\\n')\n" + SETS_ACTION.replace(
                'local lcmcoord = require "lcmcoord"\n', "")
            .replace("local p = ...\n", "local p = ...\nlocal lcmcoord = require 'lcmcoord'\n")),
            "--offline")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertOneLinePerCheck(done)
        for text in ("from print\t42", "from io.write", "from io.stdout"):
            self.assertIn(text, done.stderr)


class StepByStepScriptTest(CheckHostileTestCase):
    def test_post_then_get_then_cancel_as_lua_api_md_shows(self):
        # The documented step-by-step flow: post, read the id from the answer, get it.
        script = self.script(
            'local lcmcoord = require "lcmcoord"\n'
            "local p = ...\n"
            "local c <close> = lcmcoord.client{endpoint = p.endpoint}\n"
            "local req = p.LcmCoordRequest\n"
            "req.coordinationActionName = 'prv.example.steps'\n"
            "local created = assert(c:post(req))\n"
            "assert(created.status == 201 and created.headers.location, 'no Location')\n"
            "local r = assert(c:get(created.json.id))\n"
            "assert(r.status == 200 and r.json.coordinationResult == 'CONTINUE')\n"
            "local id = created.headers.location:match('([^/]+)$')\n"
            "assert(c:get(created.headers.location).status == 200)\n"
            "assert(c:cancel(id).status == 202)\n")
        with EM() as em:
            done = self.check(params(em.url), script)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertRegex(done.stdout, r"(?m)^ok    script sets the action: prv\.example\.steps$")
        self.assertEqual([e for e in journal if "/coordinations" in e.get("path", "")], [])


class UnreadableStdinTest(CheckHostileTestCase):
    def test_stdin_too_large_says_why(self):
        # 16 MiB is the cap, as for `lcmcoord run`, which says "File too large".
        done = run_lcmcoord("check", "--offline", self.script(SETS_ACTION),
                            stdin=" " * (17 * 1024 * 1024), timeout=60)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertEqual(done.stderr, "lcmcoord check: cannot read stdin: File too large\n")


class ParamsHostilePackageTest(TestCase):
    def run_params(self, additional, *args):
        return run_lcmcoord("params", *args, stdin=json.dumps({"additionalParams": additional}),
                            timeout=30)

    def test_vdu_ids_are_quoted_on_one_line_with_controls_escaped(self):
        done = self.run_params({"vdu_params": [{"vdu_id": "A\n\x1b[31mRED"}, {"vdu_id": "B"}]})
        self.assertEqual(done.returncode, 2)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertIn("RED", done.stderr)
        for control in CONTROLS:
            self.assertNotIn(control, done.stderr)
        done = self.run_params({"vdu_params": [{"vdu_id": "A\r\nX\x9b2J"}]})
        self.assertEqual(done.returncode, 2)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        for control in CONTROLS:
            self.assertNotIn(control, done.stderr)


if __name__ == "__main__":
    unittest.main()
