"""`lcmcoord check`: the preflight of a script and its VNFC parameters, end to end against
`lcmcoord em` on loopback (plain HTTP, HTTPS with a test PKI, Basic and OAuth 2.0). Each
test checks the one line of the check that should fail (and that the others still pass),
the exit status, and, through the EM's journal, that nothing was ever POSTed to
/coordinations: the preflight creates nothing at the EM.
"""

import json
import os
import socket
import tempfile
import unittest

from certs import WithPki
from harness import EM, TlsEM, SOURCE_DIR, TestCase, run_lcmcoord

SCRIPT = os.path.join(SOURCE_DIR, "scripts", "coordinate_vnf.lua")
EXAMPLE = os.path.join(SOURCE_DIR, "scripts", "examples", "vnfc_param.json")
SECRET_PASSWORD = "s3cret-pass-xyz"


def example_params(endpoint, **changes):
    with open(EXAMPLE, encoding="utf-8") as f:
        params = json.load(f)
    params["endpoint"] = endpoint
    params["authentication"] = None
    params.update(changes)
    return params


def basic(user, password):
    return {"authType": ["BASIC"], "paramsBasic": {"userName": user, "password": password}}


def oauth2(token_url, client_id, secret):
    return {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
            "paramsOauth2ClientCredentials": {"clientId": client_id, "clientPassword": secret,
                                              "tokenEndpoint": token_url}}


def lines_of(stdout):
    """{check name: (status word, rest of the line)} of check's output."""
    result = {}
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        result[name] = (word, detail)
    return result


def posts(journal):
    return [e for e in journal
            if e.get("method") == "POST" and "/coordinations" in e.get("path", "")]


class CheckTestCase(TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def script(self, text):
        path = os.path.join(self.tmp.name, "script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def check(self, params, *args, script=SCRIPT):
        stdin = params if isinstance(params, str) else json.dumps(params)
        done = run_lcmcoord("check", *args, script, stdin=stdin, timeout=60)
        self.assertNotIn(SECRET_PASSWORD, done.stdout + done.stderr)
        return done, lines_of(done.stdout)

    def assertOnlyFailure(self, checks, name):
        failed = [n for n, (word, _) in checks.items() if word == "FAIL"]
        self.assertEqual(failed, [name], checks)
        self.assertIn("; fix: ", checks[name][1])


class GoodParametersTest(CheckTestCase):
    def test_every_check_passes_and_nothing_is_created(self):
        with EM("--basic", f"tacker:{SECRET_PASSWORD}") as em:
            done, checks = self.check(example_params(
                em.url, authentication=basic("tacker", SECRET_PASSWORD)))
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        for name in ("parameters", "endpoint", "authentication", "timeout", "LcmCoordRequest",
                     "script loads", "script sets the action", "endpoint resolves",
                     "EM answers api_versions", "Version 1.0.0 supported"):
            self.assertEqual(checks[name][0], "ok", done.stdout)
        self.assertEqual(checks["script sets the action"][1],
                         "prv.tacker_organization.coordination_test")
        self.assertEqual(checks["authentication"][1], "BASIC")
        self.assertEqual(posts(journal), [])
        self.assertTrue(any(e.get("path") == "/lcmcoord/v1/api_versions" for e in journal))
        # One line per check: every line is a check's.
        for line in done.stdout.splitlines():
            self.assertRegex(line, r"^(ok|FAIL|skip)  ")

    def test_offline_skips_the_em(self):
        done, checks = self.check(example_params("http://127.0.0.1:9"), "--offline")
        self.assertEqual(done.returncode, 0, done.stdout)
        self.assertEqual(checks["EM answers api_versions"][0], "skip")


class BadParametersTest(CheckTestCase):
    """Each bad parameter fails its own line, exit 1, and nothing reaches /coordinations."""

    def expect_failure(self, params, name, *, text, script=SCRIPT):
        with EM() as em:
            if isinstance(params, dict):
                params = dict(params)
                if params.get("endpoint") is None:
                    params["endpoint"] = em.url
            done, checks = self.check(params, script=script)
            journal = em.journal()
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertEqual(checks[name][0], "FAIL", done.stdout)
        self.assertIn(text, checks[name][1])
        self.assertEqual(posts(journal), [])
        return checks

    def test_not_json(self):
        checks = self.expect_failure('{"endpoint": ', "parameters", text="fix: ")
        self.assertEqual(checks["endpoint"][0], "skip")
        self.assertEqual(checks["script loads"][0], "ok")
        self.assertEqual(checks["script sets the action"],
                         ("skip", "no VNFC parameters to run it with"))

    def test_endpoint_without_scheme(self):
        params = example_params(None)
        params["endpoint"] = "127.0.0.1:6789"
        checks = self.expect_failure(params, "endpoint", text="'127.0.0.1:6789' is missing its scheme")
        self.assertEqual(checks["EM answers api_versions"][0], "skip")

    def test_endpoint_not_a_string(self):
        params = example_params(None)
        params["endpoint"] = 6789
        self.expect_failure(params, "endpoint", text="'endpoint' must be a string")

    def test_timeout_not_positive(self):
        for value in (0, -5, "30s"):
            with self.subTest(timeout=value):
                self.expect_failure(example_params(None, timeout=value),
                                    "timeout", text="positive number")

    def test_authentication_incomplete(self):
        auth = {"authType": ["BASIC"], "paramsBasic": {"userName": "tacker"}}
        checks = self.expect_failure(example_params(None, authentication=auth),
                                     "authentication", text="fix: complete 'authentication'")
        self.assertEqual(checks["EM answers api_versions"][0], "skip")

    def test_authentication_not_an_object(self):
        self.expect_failure(example_params(None, authentication="tacker:tacker"),
                            "authentication", text="'authentication' must be an object")

    def test_request_invalid(self):
        params = example_params(None)
        params["LcmCoordRequest"]["lcmOperationType"] = "UPGRADE"
        params["endpoint"] = None
        self.expect_failure(params, "LcmCoordRequest", text="'UPGRADE' is not one of")

    def test_request_missing(self):
        params = example_params(None)
        del params["LcmCoordRequest"]
        params["endpoint"] = None
        self.expect_failure(params, "LcmCoordRequest",
                            text="the VNFC parameters have no LcmCoordRequest object")

    def test_script_leaves_the_placeholder(self):
        script = self.script(
            'local lcmcoord = require "lcmcoord"\n'
            "local p = ...\n"
            "lcmcoord.create_coordination(p.endpoint, p.authentication, p.LcmCoordRequest, p.timeout)\n")
        self.expect_failure(example_params(None), "script sets the action",
                            text="still the VNFM's placeholder", script=script)

    def test_script_that_does_not_load(self):
        script = self.script("local x = = 1\n")
        checks = self.expect_failure(example_params(None), "script loads",
                                     text="fix: ", script=script)
        self.assertEqual(checks["script sets the action"][0], "skip")

    def test_script_that_sends_nothing(self):
        script = self.script("local p = ...\n")
        self.expect_failure(example_params(None), "script sets the action",
                            text="sent no coordination request", script=script)

    def test_script_that_never_ends_is_stopped(self):
        script = self.script("while true do end\n")
        done, checks = self.check(example_params("http://127.0.0.1:9"), "--offline",
                                  "--script-timeout", "1", script=script)
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertOnlyFailure(checks, "script sets the action")
        self.assertIn("the script ran past 1 s", checks["script sets the action"][1])

    def test_os_exit_status_decides(self):
        body = ('local lcmcoord = require "lcmcoord"\n'
                "local p = ...\n"
                "p.LcmCoordRequest.coordinationActionName = 'prv.example.x'\n"
                "lcmcoord.create_coordination(p.endpoint, nil, p.LcmCoordRequest)\n")
        ok, _ = self.check(example_params("http://127.0.0.1:9"), "--offline",
                           script=self.script(body + "os.exit(0)\n"))
        self.assertEqual(ok.returncode, 0, ok.stdout)
        bad, checks = self.check(example_params("http://127.0.0.1:9"), "--offline",
                                 script=self.script(body + "os.exit(3)\n"))
        self.assertEqual(bad.returncode, 1, bad.stdout)
        self.assertIn("os.exit(3)", checks["script sets the action"][1])

    def test_ssh_and_http_posts_are_not_made(self):
        script = self.script(
            'local lcmcoord = require "lcmcoord"\n'
            "local p = ...\n"
            "local s = lcmcoord.ssh.connect{host = p.ssh_ip, user = p.username,\n"
            "                               password = p.password, timeout = 5}\n"
            "assert(s:exec('drain.sh').status == 0)\n"
            "local r = lcmcoord.http.request{method = 'post', body = '{}',\n"
            "  url = p.endpoint .. '/lcmcoord/v1/coordinations'}\n"
            "assert(r.status == 200)\n"
            "p.LcmCoordRequest.coordinationActionName = 'prv.example.drained'\n"
            "lcmcoord.create_coordination(p.endpoint, p.authentication, p.LcmCoordRequest)\n")
        with EM() as em:
            done, checks = self.check(example_params(em.url), script=script)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(checks["script sets the action"], ("ok", "prv.example.drained"))
        self.assertEqual(posts(journal), [])

    def test_commands_on_this_host_are_not_run(self):
        ran = os.path.join(self.tmp.name, "ran")
        script = self.script(
            'local lcmcoord = require "lcmcoord"\n'
            "local p = ...\n"
            f"local ok, how, code = os.execute('touch {ran}-execute')\n"
            "assert(ok == true and how == 'exit' and code == 0)\n"
            "assert(os.execute() == true)\n"
            f"local pipe = io.popen('touch {ran}-popen; echo out')\n"
            "assert(pipe:read('a') == nil)\n"
            "assert(pipe:close() == true)\n"
            f"for line in io.popen('touch {ran}-lines'):lines() do error(line) end\n"
            f"io.popen('cat > {ran}-write', 'w'):write('x'):close()\n"
            "p.LcmCoordRequest.coordinationActionName = 'prv.example.ran'\n"
            "lcmcoord.create_coordination(p.endpoint, p.authentication, p.LcmCoordRequest)\n")
        done, checks = self.check(example_params("http://127.0.0.1:9"), "--offline",
                                  script=script)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(checks["script sets the action"], ("ok", "prv.example.ran"))
        self.assertEqual(sorted(n for n in os.listdir(self.tmp.name) if n.startswith("ran")),
                         [])

    def test_script_with_a_client_is_recorded_not_sent(self):
        script = self.script(
            'local lcmcoord = require "lcmcoord"\n'
            "local p = ...\n"
            "local c = lcmcoord.client{endpoint = p.endpoint}\n"
            "local req = p.LcmCoordRequest\n"
            "req.coordinationActionName = 'prv.example.drain'\n"
            "assert(c:coordinate(req).coordinationResult == 'CONTINUE')\n")
        with EM() as em:
            done, checks = self.check(example_params(em.url), script=script)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(checks["script sets the action"], ("ok", "prv.example.drain"))
        self.assertEqual(posts(journal), [])


class EmTest(WithPki, CheckTestCase):
    def test_em_down(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        done, checks = self.check(example_params(f"http://127.0.0.1:{port}"))
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertOnlyFailure(checks, "EM answers api_versions")
        self.assertIn("start the EM", checks["EM answers api_versions"][1])
        self.assertEqual(checks["endpoint resolves"][0], "ok")

    def test_host_that_does_not_resolve(self):
        done, checks = self.check(example_params("http://no-such-host.invalid:6789"))
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertOnlyFailure(checks, "endpoint resolves")

    def test_wrong_basic_password(self):
        with EM("--basic", "tacker:right-password") as em:
            done, checks = self.check(example_params(
                em.url, authentication=basic("tacker", SECRET_PASSWORD)))
            journal = em.journal()
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertOnlyFailure(checks, "EM answers api_versions")
        self.assertIn("401", checks["EM answers api_versions"][1])
        self.assertIn("correct the credentials", checks["EM answers api_versions"][1])
        self.assertEqual(posts(journal), [])

    def test_oauth2_token_fetched(self):
        with EM("--oauth2", f"vnfm:{SECRET_PASSWORD}") as em:
            done, checks = self.check(example_params(
                em.url, authentication=oauth2(em.url + "/token", "vnfm", SECRET_PASSWORD)))
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(checks["token"][0], "ok")
        self.assertEqual(posts(journal), [])

    def test_oauth2_wrong_secret(self):
        with EM("--oauth2", "vnfm:right-secret") as em:
            done, checks = self.check(example_params(
                em.url, authentication=oauth2(em.url + "/token", "vnfm", SECRET_PASSWORD)))
            journal = em.journal()
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertOnlyFailure(checks, "token")
        self.assertEqual(checks["EM answers api_versions"][0], "skip")
        self.assertEqual(posts(journal), [])

    def test_untrusted_certificate(self):
        with TlsEM(self.pki) as em:
            done, checks = self.check(example_params(em.url))
            journal = em.journal()
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertOnlyFailure(checks, "EM answers api_versions")
        self.assertIn("--cacert", checks["EM answers api_versions"][1])
        self.assertEqual(posts(journal), [])

    def test_trusted_with_cacert(self):
        with TlsEM(self.pki) as em:
            done, checks = self.check(example_params(em.url), "--cacert", self.pki.ca_cert)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(checks["EM answers api_versions"][0], "ok")


class UsageTest(CheckTestCase):
    def test_no_script_is_a_one_line_usage_error(self):
        done = run_lcmcoord("check", stdin="{}")
        self.assertEqual(done.returncode, 2)
        self.assertOneLine(done.stderr)
        self.assertIn("no script given", done.stderr)

    def test_help(self):
        done = run_lcmcoord("check", "--help")
        self.assertEqual(done.returncode, 0)
        self.assertIn("usage: lcmcoord check", done.stdout)
        self.assertIn("--offline", done.stdout)


if __name__ == "__main__":
    unittest.main()
