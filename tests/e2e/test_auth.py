"""End to end: the client's authentication and TLS. `lcmcoord run` against `lcmcoord em`
as a strict server (Basic, OAuth 2.0 client credentials, client certificates, HTTPS), with
a PKI made at test time by certs.py, and against TLS peers that share none of our code
(`openssl s_server`, Python's ssl). What the EM saw is read from its journal.
"""

import base64
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certs
import harness
from harness import EM, TestCase, TlsEM, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua")
FIXTURE = os.path.join(HERE, "fixtures", "vnfc_param.json")
COORDS = "/lcmcoord/v1/coordinations"
CLIENT_ID = "vnfm"
SECRET = "S3cr3t-Pa55"

# A script that runs several coordinations in one process: the token cache is per process.
SEVERAL = """
local lcmcoord = require "lcmcoord"
local p = ...
for i = 1, p.count do
  local req = p.LcmCoordRequest
  req.coordinationActionName = "prv.test.coordination_" .. i
  local r = lcmcoord.create_coordination(p.endpoint, p.authentication, req, p.timeout)
  assert(r.coordinationResult == "CONTINUE", r.coordinationResult)
end
"""


def param(endpoint, authentication, **more):
    with open(FIXTURE, encoding="utf-8") as f:
        p = json.load(f)
    p["endpoint"] = endpoint
    p["authentication"] = authentication
    p["timeout"] = 30
    p.update(more)
    return p


def oauth2(token_endpoint, secret=SECRET, client_id=CLIENT_ID):
    return {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
            "paramsOauth2ClientCredentials": {"clientId": client_id, "clientPassword": secret,
                                              "tokenEndpoint": token_endpoint}}


def client_cert_auth(token_endpoint, thumbprint):
    return {"authType": ["OAUTH2_CLIENT_CERT"],
            "paramsOauth2ClientCert": {"clientId": CLIENT_ID, "tokenEndpoint": token_endpoint,
                                       "certificateRef": {"type": "x5t#S256",
                                                          "value": thumbprint}}}


def run(p, *flags, script=SCRIPT, env=None, timeout=60):
    return harness.run_lcmcoord("run", *flags, script, stdin=json.dumps(p), env=env,
                                timeout=timeout)


def token_requests(journal):
    return [e for e in journal if e["path"] == "/token"]


def api_posts(journal):
    return [e for e in journal if e["method"] == "POST" and e["path"] == COORDS]


class ScriptFile:
    """A Lua script written to a temporary file for the length of a `with`."""

    def __init__(self, text):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "script.lua")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        self.dir.cleanup()


class OAuth2ClientCredentialsTest(TestCase):
    def test_token_request_then_bearer(self):
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}") as em:
            done = run(param(em.url, oauth2(em.url + "/token")))
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        tokens = token_requests(journal)
        self.assertEqual(len(tokens), 1)
        self.assertEqual(tokens[0]["auth"], {"scheme": "Basic", "user": CLIENT_ID, "ok": True})
        self.assertIn("grant_type=client_credentials", tokens[0]["body"])
        post = api_posts(journal)[0]
        self.assertEqual(post["status"], 201)
        self.assertEqual(post["auth"]["scheme"], "Bearer")
        self.assertTrue(post["auth"]["ok"])

    def test_one_token_across_coordinations_and_503_retries(self):
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}", "--rejects", "2", "--retry-after", "1") as em, \
                ScriptFile(SEVERAL) as script:
            done = run(param(em.url, oauth2(em.url + "/token"), count=3), script=script)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(token_requests(journal)), 1)
        self.assertEqual([e["status"] for e in api_posts(journal)], [503, 503, 201, 201, 201])
        self.assertTrue(all(e["auth"]["ok"] for e in api_posts(journal)))

    def test_token_is_renewed_before_it_expires(self):
        # A 2 s token is renewed after half its life: the POST resent after the 1 s wait
        # carries a new token, and the EM never sees an expired one.
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}", "--token-ttl", "2", "--rejects", "2",
                "--retry-after", "1") as em:
            done = run(param(em.url, oauth2(em.url + "/token")))
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertGreaterEqual(len(token_requests(journal)), 2)
        self.assertTrue(all(e["auth"]["ok"] for e in api_posts(journal)), journal)

    def test_401_gets_one_new_token_and_one_retry(self):
        scenario = os.path.join(harness.SOURCE_DIR, "scripts", "em", "expire_token_once.lua")
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}", "--scenario", scenario) as em:
            done = run(param(em.url, oauth2(em.url + "/token")), "-v")
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(token_requests(journal)), 2)
        self.assertEqual([e["status"] for e in api_posts(journal)], [401, 201])
        self.assertIn("refused the access token (401)", done.stderr)

    def test_a_second_401_is_an_auth_error(self):
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}", "--scenario",
                os.path.join(HERE, "scenarios", "always_401.lua")) as em:
            done = run(param(em.url, oauth2(em.url + "/token")))
            journal = em.journal()
        self.assertEqual(done.returncode, 4, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("EM answered 401 Unauthorized", line)
        self.assertEqual(len(token_requests(journal)), 2)
        self.assertEqual(len(api_posts(journal)), 2)

    def test_wrong_secret_keeps_the_oauth_error_and_hides_the_secret(self):
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}") as em:
            done = run(param(em.url, oauth2(em.url + "/token", secret="Wr0ng-Secret-x")), "-vv")
            journal = em.journal()
        self.assertEqual(done.returncode, 4, done.stderr)
        # -vv adds progress lines and a traceback; the outcome is still the last line.
        self.assertIn("token endpoint answered 401 Unauthorized: invalid_client",
                      done.stderr.splitlines()[-1])
        self.assertNotIn("Wr0ng-Secret-x", done.stderr)
        self.assertEqual(api_posts(journal), [])

    def test_token_endpoint_down_is_a_clear_error(self):
        with EM() as em:
            done = run(param(em.url, oauth2("http://127.0.0.1:1/token")))
            journal = em.journal()
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("cannot reach the token endpoint", self.assertOneLine(done.stderr))
        self.assertEqual(journal, [])

    def test_special_characters_in_the_secret_are_form_encoded(self):
        secret = "p@ss:w%rd +\u00e9&="
        with EM("--oauth2", f"{CLIENT_ID}:{secret}") as em:
            done = run(param(em.url, oauth2(em.url + "/token", secret=secret)))
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_secret_in_the_form_body_when_asked(self):
        text = """
local lcmcoord = require "lcmcoord"
local p = ...
local c <close> = lcmcoord.client{endpoint = p.endpoint, authentication = p.authentication,
                                  oauth2_client_auth = "body"}
local req = p.LcmCoordRequest
req.coordinationActionName = "prv.test.body"
assert(c:coordinate(req))
"""
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}") as em, ScriptFile(text) as script:
            done = run(param(em.url, oauth2(em.url + "/token")), script=script)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        token = token_requests(journal)[0]
        self.assertEqual(token["auth"]["scheme"], "client_secret_post")
        self.assertIn("client_secret=<redacted>", token["body"])


class PkiTestCase(certs.WithPki, TestCase):
    def tls_flags(self, cert=None, key=None):
        return ["--cacert", self.pki.ca_cert, "--cert", cert or self.pki.client_cert,
                "--key", key or self.pki.client_key]


class ClientCertificateTest(PkiTestCase):
    def test_oauth2_client_cert_over_mutual_tls(self):
        expected = certs.thumbprint(self.pki.client_cert)
        with TlsEM(self.pki, "--client-ca", self.pki.ca_cert, "--oauth2", CLIENT_ID) as em:
            done = run(param(em.url, client_cert_auth(em.url + "/token", expected)),
                       *self.tls_flags())
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        token = token_requests(journal)[0]
        self.assertEqual(token["auth"]["scheme"], "tls_client_auth")
        self.assertEqual(token["body"], f"grant_type=client_credentials&client_id={CLIENT_ID}")
        post = api_posts(journal)[0]
        self.assertEqual(post["status"], 201)
        self.assertEqual(post["tls"]["clientCertThumbprint"], expected)
        self.assertTrue(post["tls"]["clientCertVerified"])

    def test_wrong_certificate_ref_fails_before_anything_is_sent(self):
        with TlsEM(self.pki, "--client-ca", self.pki.ca_cert, "--oauth2", CLIENT_ID) as em:
            done = run(param(em.url, client_cert_auth(em.url + "/token", "AAAA")),
                       *self.tls_flags())
            journal = em.journal()
        self.assertEqual(done.returncode, 4, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("certificateRef does not match", line)
        self.assertIn(certs.thumbprint(self.pki.client_cert), line)
        self.assertEqual(journal, [])

    def test_key_of_another_certificate_is_refused(self):
        with TlsEM(self.pki) as em:
            done = run(param(em.url, None), *self.tls_flags(key=self.pki.other_client_key))
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("does not belong to the certificate", self.assertOneLine(done.stderr))

    def test_encrypted_key_with_its_passphrase_from_the_environment(self):
        with tempfile.TemporaryDirectory() as tmp:
            key = os.path.join(tmp, "client.enc.key")
            subprocess.run(["openssl", "pkey", "-in", self.pki.client_key, "-aes256", "-out", key,
                            "-passout", "pass:K3y-Passphrase"], check=True, capture_output=True)
            expected = certs.thumbprint(self.pki.client_cert)
            with TlsEM(self.pki, "--client-ca", self.pki.ca_cert, "--oauth2", CLIENT_ID) as em:
                params = param(em.url, client_cert_auth(em.url + "/token", expected))
                flags = self.tls_flags(key=key)
                right = run(params, "-vv", *flags, env={"LCMCOORD_KEY_PASSWORD": "K3y-Passphrase"})
                wrong = run(params, *flags, env={"LCMCOORD_KEY_PASSWORD": "not-it"})
                none = run(params, *flags)
        self.assertEqual(right.returncode, 0, right.stderr)
        self.assertNotIn("K3y-Passphrase", right.stdout + right.stderr)
        for done in (wrong, none):
            self.assertEqual(done.returncode, 4, done.stderr)
            line = self.assertOneLine(done.stderr)
            self.assertIn("cannot be read", line)
            self.assertNotIn("K3y-Passphrase", line)

    def test_unreadable_certificate_file_is_named(self):
        with TlsEM(self.pki) as em:
            done = run(param(em.url, None), "--cacert", self.pki.ca_cert, "--cert",
                       "/nonexistent/client.pem", "--key", self.pki.client_key)
        self.assertIn(done.returncode, (2, 4), done.stderr)
        self.assertIn("/nonexistent/client.pem", self.assertOneLine(done.stderr))

    def test_client_cert_auth_without_local_certificate_is_explained(self):
        with TlsEM(self.pki) as em:
            done = run(param(em.url, client_cert_auth(em.url + "/token", "x")),
                       "--cacert", self.pki.ca_cert)
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("needs a client certificate and key", self.assertOneLine(done.stderr))


class ServerVerificationTest(PkiTestCase):
    def test_unverifiable_server_fails_by_default_and_works_with_the_ca(self):
        with TlsEM(self.pki) as em:
            refused = run(param(em.url, None))
            flag = run(param(em.url, None), "--cacert", self.pki.ca_cert)
            from_env = run(param(em.url, None), env={"LCMCOORD_CACERT": self.pki.ca_cert})
            journal = em.journal()
        self.assertEqual(refused.returncode, 4, refused.stderr)
        self.assertIn("TLS failure", self.assertOneLine(refused.stderr))
        self.assertEqual(flag.returncode, 0, flag.stderr)
        self.assertEqual(from_env.returncode, 0, from_env.stderr)
        self.assertEqual(len(api_posts(journal)), 2)

    def test_wrong_host_certificate_fails(self):
        with TlsEM(self.pki, cert=self.pki.wrong_host_cert, key=self.pki.wrong_host_key) as em:
            done = run(param(em.url, None), "--cacert", self.pki.ca_cert)
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("TLS failure", self.assertOneLine(done.stderr))

    def test_turning_verification_off_takes_an_option_and_warns(self):
        text = """
local lcmcoord = require "lcmcoord"
local p = ...
local c <close> = lcmcoord.client{endpoint = p.endpoint, tls = {verify = false}}
local req = p.LcmCoordRequest
req.coordinationActionName = "prv.test.insecure"
assert(c:coordinate(req))
"""
        with TlsEM(self.pki) as em, ScriptFile(text) as script:
            done = run(param(em.url, None), script=script)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("lcmcoord: warning: TLS verification is off", done.stderr)


class OriginTest(TestCase):
    BASIC = {"authType": ["BASIC"], "paramsBasic": {"userName": "tacker", "password": "Or1g1n-Pw"}}

    def test_location_on_another_origin_is_refused_with_credentials(self):
        with EM("--basic", "tacker:Or1g1n-Pw", "--scenario",
                os.path.join(HERE, "scenarios", "cross_origin_location.lua")) as em:
            done = run(param(em.url, self.BASIC))
            journal = em.journal()
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("Location on another origin", self.assertOneLine(done.stderr))
        self.assertEqual([e["method"] for e in journal], ["POST"])

    def test_allowed_cross_origin_location_is_followed_without_credentials(self):
        text = """
local lcmcoord = require "lcmcoord"
local p = ...
local c <close> = lcmcoord.client{endpoint = p.endpoint, authentication = p.authentication,
                                  allow_cross_origin = true, timeout = 10}
local req = p.LcmCoordRequest
req.coordinationActionName = "prv.test.cross"
local coord, err = c:coordinate(req)
assert(not coord and err.status == 401, tostring(err))
"""
        with EM("--basic", "tacker:Or1g1n-Pw", "--scenario",
                os.path.join(HERE, "scenarios", "cross_origin_location.lua")) as em, \
                ScriptFile(text) as script:
            done = run(param(em.url, self.BASIC), script=script)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        gets = [e for e in journal if e["method"] == "GET"]
        self.assertEqual(len(gets), 1)
        self.assertNotIn("authorization", gets[0]["headers"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class IndependentPeerTest(PkiTestCase):
    """Peers that do not share our code: openssl s_server and Python's ssl module."""

    GET_ROOT = """
local lcmcoord = require "lcmcoord"
local p = ...
local c <close> = lcmcoord.client{endpoint = p.endpoint, timeout = 10}
local r, err = c:get(p.endpoint .. "/")
if not r then error(err) end
io.write(r.status, " ", #r.body, "\\n")
"""

    def start_s_server(self):
        port = free_port()
        proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
             self.pki.server_cert, "-key", self.pki.server_key, "-CAfile", self.pki.ca_cert,
             "-Verify", "1", "-www", "-naccept", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait(), proc.stdout.close()))
        wait_for(lambda: "ACCEPT" in proc.stdout.readline(), timeout=10, what="s_server")
        return f"https://127.0.0.1:{port}"

    def test_openssl_s_server_with_client_certificate(self):
        url = self.start_s_server()
        with ScriptFile(self.GET_ROOT) as script:
            done = run(param(url, None), *self.tls_flags(), script=script)
        self.assertEqual(done.returncode, 0, done.stderr)
        status, length = done.stdout.split()
        self.assertEqual(status, "200")
        self.assertGreater(int(length), 0)

    def test_openssl_s_server_refuses_a_client_without_certificate(self):
        url = self.start_s_server()
        with ScriptFile(self.GET_ROOT) as script:
            done = run(param(url, None), "--cacert", self.pki.ca_cert, script=script)
        self.assertEqual(done.returncode, 4, done.stderr)

    def test_python_ssl_em_with_mutual_tls(self):
        seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append(self.connection.getpeercert()["subject"])
                answer = dict(body, id="py-1", coordinationResult="CONTINUE",
                              _links={"self": {"href": "https://127.0.0.1/x"}})
                data = json.dumps(answer).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        context.load_verify_locations(self.pki.ca_cert)
        context.verify_mode = ssl.CERT_REQUIRED
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"https://127.0.0.1:{server.server_address[1]}"
            done = run(param(url, None), *self.tls_flags())
        finally:
            server.shutdown()
            server.server_close()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(seen), 1)
        self.assertIn((("commonName", certs.CLIENT_CN),), seen[0])


class SecretsCanaryTest(PkiTestCase):
    """Every auth path at the highest verbosity, with distinctive secrets: none of them,
    nor their base64 forms, may reach stdout, stderr or the record."""

    BASIC_PW = "Canary-Basic-7f3a"
    SECRET = "Canary-Secret-91bd"
    TOKEN = "Canary-Token-5e2c"

    def forbidden(self):
        words = [self.BASIC_PW, self.SECRET, self.TOKEN]
        pairs = [f"tacker:{self.BASIC_PW}", f"{CLIENT_ID}:{self.SECRET}"]
        return words + [base64.b64encode(p.encode()).decode() for p in pairs] + \
            [base64.b64encode(w.encode()).decode().rstrip("=") for w in words]

    def check(self, done, record_path=None):
        seen = done.stdout + done.stderr
        if record_path and os.path.exists(record_path):
            with open(record_path, encoding="utf-8") as f:
                seen += f.read()
        for word in self.forbidden():
            self.assertNotIn(word, seen)

    def run_canary(self, em_args, authentication, *flags, endpoint=None):
        with tempfile.TemporaryDirectory() as tmp, EM(*em_args) as em:
            record = os.path.join(tmp, "record.json")
            done = run(param(endpoint or em.url, authentication(em)), "-vv", "--record",
                       record, *flags)
            self.check(done, record)
            for word in self.forbidden():
                self.assertNotIn(word, em.stderr_text())
            return done

    def test_basic_ok_and_refused(self):
        basic = {"authType": ["BASIC"],
                 "paramsBasic": {"userName": "tacker", "password": self.BASIC_PW}}
        ok = self.run_canary(["--basic", f"tacker:{self.BASIC_PW}"], lambda em: basic)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        refused = self.run_canary(["--basic", "tacker:other"], lambda em: basic)
        self.assertEqual(refused.returncode, 4, refused.stderr)

    def test_oauth2_with_a_known_token(self):
        # The scenario plays the token endpoint so that the token is known to the test.
        done = self.run_canary(
            ["--scenario", os.path.join(HERE, "scenarios", "canary_token.lua")],
            lambda em: oauth2(em.url + "/token", secret=self.SECRET))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("got an access token", done.stderr)

    def test_refused_token_request_and_tls_failure(self):
        refused = self.run_canary(["--oauth2", f"{CLIENT_ID}:other"],
                                  lambda em: oauth2(em.url + "/token", secret=self.SECRET))
        self.assertEqual(refused.returncode, 4, refused.stderr)
        with TlsEM(self.pki) as tls_em:
            basic = {"authType": ["BASIC"],
                     "paramsBasic": {"userName": "tacker", "password": self.BASIC_PW}}
            tls_failure = run(param(tls_em.url, basic), "-vv")
        self.assertEqual(tls_failure.returncode, 4, tls_failure.stderr)
        self.check(tls_failure)

    def write_auth(self, tmp, authentication):
        path = os.path.join(tmp, "auth.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(authentication, f)
        return path

    def test_coordinate_at_full_verbosity(self):
        with tempfile.TemporaryDirectory() as tmp, EM(
                "--scenario", os.path.join(HERE, "scenarios", "canary_token.lua")) as em:
            auth = self.write_auth(tmp, oauth2(em.url + "/token", secret=self.SECRET))
            done = harness.run_lcmcoord("coordinate", "-vv", "--endpoint", em.url, "--action",
                                        "prv.test.canary", "--auth", auth)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.check(done)

    def test_repl_trace_replay(self):
        # :trace on prints every exchange as sent and received: the token request, its
        # answer (which holds the token) and the Bearer header must all come out redacted.
        with tempfile.TemporaryDirectory() as tmp, EM(
                "--scenario", os.path.join(HERE, "scenarios", "canary_token.lua")) as em:
            auth = self.write_auth(tmp, oauth2(em.url + "/token", secret=self.SECRET))
            lines = [":trace on", "em:api_versions()",
                     'em:coordinate(lcmcoord.request{action = "prv.test.canary"})']
            done = harness.run_lcmcoord("repl", "--endpoint", em.url, "--auth", auth,
                                        stdin="\n".join(lines) + "\n",
                                        env={"XDG_DATA_HOME": tmp})
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("Authorization: Bearer <redacted>", done.stdout + done.stderr)
            self.check(done)
            history = os.path.join(tmp, "lcmcoord", "history")
            if os.path.exists(history):
                with open(history, encoding="utf-8") as f:
                    text = f.read()
                for word in self.forbidden():
                    self.assertNotIn(word, text)


if __name__ == "__main__":
    unittest.main()
