"""End to end, second look at issue 12's promises: cases the first suites did not try.

- The token cache key covers the TLS settings of every request, also those given per
  request (`http.request{tls = ...}`) with a shared auth object: a request whose TLS
  settings differ never reuses a token fetched under other ones.
- A POST that must end (a signal during it) is not sent again by the call layer's one
  retry after a 401: nothing new goes out after the coordination had to end.
"""

import json
import os
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certs
import harness
from harness import TestCase, wait_for

TF = harness.TIME_FACTOR
SECRET = "Review-S3cret"


def oauth2(token_endpoint):
    return {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
            "paramsOauth2ClientCredentials": {"clientId": "vnfm", "clientPassword": SECRET,
                                              "tokenEndpoint": token_endpoint}}


class Server:
    """A threading HTTP/1.1 server on 127.0.0.1 (TLS when `pki` is given) whose requests
    are recorded as (method, path, Authorization) and answered by `reply(handler)`."""

    def __init__(self, reply, pki=None):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self):
                length = int(self.headers.get("Content-Length", "0"))
                self.body = self.rfile.read(length) if length else b""
                seen.append((self.command, self.path, self.headers.get("Authorization")))
                status, doc = reply(self)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = handle_one

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if pki:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(pki.server_cert, pki.server_key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def run_script(text, params, *flags, timeout=60):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        env = {k: "" for k in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                               "ALL_PROXY", "no_proxy", "NO_PROXY")}
        return harness.run_lcmcoord("run", "--any-params", *flags, path,
                                    stdin=json.dumps(params), env=env, timeout=timeout)


# One auth object, two requests whose TLS settings differ: the second trusts another CA
# only, so the token endpoint cannot be reached with it and no token may be had.
PER_REQUEST_TLS_SCRIPT = """
local lcmcoord = require "lcmcoord"
local p = ...
local auth <close> = lcmcoord.auth.new(p.authentication)
local function get(cacert)
  local r, err = lcmcoord.http.request{url = p.url, auth = auth, tls = {cacert = cacert}}
  if r then return tostring(r.status) end
  return "error:" .. err.kind
end
local first = get(p.cacert)
local second = get(p.other_cacert)
io.stdout:write(first, " ", second, "\\n")
"""


class PerRequestTlsTest(certs.WithPki, TestCase):
    def test_other_tls_settings_per_request_never_share_a_token(self):
        def token(handler):
            return 200, {"access_token": "tok-first-tls", "token_type": "Bearer",
                         "expires_in": 600}

        def api(handler):
            return 200, {"ok": True}

        with Server(token, self.pki) as token_server, Server(api) as api_server:
            done = run_script(PER_REQUEST_TLS_SCRIPT, {
                "url": api_server.url + "/api", "cacert": self.pki.ca_cert,
                "other_cacert": self.pki.other_ca_cert,
                "authentication": oauth2(token_server.url + "/token")})
            api_seen = list(api_server.seen)
        self.assertEqual(done.returncode, 0, done.stderr)
        # The second request cannot reach the token endpoint under its own TLS settings:
        # it must fail there, not reuse the token fetched under the first ones.
        self.assertEqual(done.stdout.split(), ["200", "error:tls"], done.stderr)
        self.assertEqual([s[2] for s in api_seen], ["Bearer tok-first-tls"])


class LastPostIn401Grace(TestCase):
    """OAuth 2.0 credentials; the EM holds the POST, SIGTERM comes, and only then (while
    the client waits out the POST's grace) the EM answers 401. The call layer's one resend
    after a 401 (a fresh token, the POST again) would put a new coordination at the EM
    after the run was told to stop."""

    def test_a_401_in_the_grace_sends_no_new_post(self):
        from test_post_once import Peer, answer, problem, COORDINATIONS
        from test_run_coordination import SCRIPT, vnfc_param
        release = threading.Event()

        def respond(peer, request):
            if request.target == "/token":
                body = json.dumps({"access_token": f"tok-{len(peer.seen(prefix='/token'))}",
                                   "token_type": "Bearer", "expires_in": 600}).encode()
                return answer(200, "OK", [("Content-Type", "application/json")], body)
            if request.method == "POST" and request.target == COORDINATIONS:
                if len(peer.seen("POST", COORDINATIONS)) == 1:
                    release.wait(30 * TF)
                headers, body = problem(401, "token refused")
                return answer(401, "Unauthorized", headers, body)
            return None

        with Peer(respond) as peer:
            param = vnfc_param(peer.url, timeout=60, authentication=oauth2(peer.url + "/token"))
            proc = subprocess.Popen([*harness.WRAPPER, harness.LCMCOORD_BIN, "run", "-v", SCRIPT],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            proc.stdin.write(json.dumps(param))
            proc.stdin.close()
            lines = []
            reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
            reader.start()
            try:
                wait_for(lambda: peer.seen("POST", COORDINATIONS), timeout=20,
                         what="the POST at the peer")
                proc.send_signal(signal.SIGTERM)
                wait_for(lambda: any("waiting up to" in line for line in lines), timeout=20,
                         what="the client waiting out the POST's grace")
                release.set()
                proc.wait(timeout=20 * TF)
            finally:
                release.set()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            reader.join(10)
            proc.stderr.close()
            sent = peer.seen("POST", COORDINATIONS)
        self.assertEqual(proc.returncode, 143, "".join(lines))
        self.assertEqual(len(sent), 1, sent)


class ProxyWording(TestCase):
    """What is said about a proxy: never its credentials, even when libcurl quotes the
    proxy as configured; and never that the EM may hold a coordination it never saw."""

    def coordinate(self, endpoint, proxy):
        from test_run_coordination import SCRIPT, vnfc_param
        env = {k: "" for k in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                               "no_proxy", "NO_PROXY")}
        env["http_proxy"] = proxy
        return harness.run_lcmcoord("run", "-vv", SCRIPT, env=env, timeout=60, stdin=json.dumps(
            vnfc_param(endpoint, authentication=None, timeout=3)))

    def test_an_unparsable_proxy_is_never_quoted_with_its_password(self):
        done = self.coordinate("http://127.0.0.1:9", "http://puser:Proxy-Pa55@[broken")
        self.assertNotEqual(done.returncode, 0, done.stderr)
        self.assertIn("cannot reach the proxy", done.stderr)
        self.assertNotIn("Proxy-Pa55", done.stderr + done.stdout)
        self.assertNotIn("puser", done.stderr + done.stdout)

    def test_the_repl_trace_never_names_the_proxy_user(self):
        from test_credentials_isolation import ConnectProxy
        env = {k: "" for k in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                               "no_proxy", "NO_PROXY")}
        with harness.EM() as em, ConnectProxy() as proxy:
            # A short user name: libcurl's "Proxy auth using Basic with user 'zq7'".
            env["http_proxy"] = f"http://zq7:Pr0xy-Pa55@127.0.0.1:{proxy.port}"
            script = (":trace on\nr = lcmcoord.http.request{url = \"%s/lcmcoord/v1/api_versions\"}"
                      "\nr.status\n" % em.url)
            done = harness.run_lcmcoord("repl", stdin=script, env=env, timeout=60)
            used = len(proxy.seen())
        out = done.stdout + done.stderr
        self.assertEqual(used, 1, out)
        self.assertIn("Proxy auth using Basic with user <redacted>", out)
        self.assertNotIn("zq7", out)
        self.assertNotIn("Pr0xy-Pa55", out)

    def test_a_proxy_that_never_opens_the_tunnel_is_the_proxys_failure(self):
        """A proxy that takes the connection and never answers the CONNECT: libcurl gives
        up after its 30 s connect cap. The EM got nothing: neither blamed nor said to
        hold anything (the CONNECT's bytes are not the request's)."""
        import socket
        held = []
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def hold():
            while True:
                try:
                    held.append(listener.accept()[0])
                except OSError:
                    return

        threading.Thread(target=hold, daemon=True).start()
        try:
            from test_run_coordination import SCRIPT, vnfc_param
            env = {k: "" for k in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                                   "no_proxy", "NO_PROXY")}
            env["http_proxy"] = f"http://127.0.0.1:{port}"
            done = harness.run_lcmcoord("run", SCRIPT, env=env, timeout=120, stdin=json.dumps(
                vnfc_param("http://127.0.0.1:9", authentication=None, timeout=120)))
        finally:
            listener.close()
            for conn in held:
                conn.close()
        self.assertEqual(done.returncode, 4, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn(f"the proxy http://127.0.0.1:{port} did not open the tunnel", line)
        self.assertNotIn("may have started", line)
        self.assertNotIn("answer from the EM", line)

    def test_a_refused_tunnel_does_not_say_the_em_may_hold_anything(self):
        from test_credentials_isolation import ConnectProxy
        with ConnectProxy(refuse=403) as proxy:
            done = self.coordinate("http://127.0.0.1:9", proxy.url)
        self.assertNotEqual(done.returncode, 0, done.stderr)
        self.assertIn("refused the tunnel", done.stderr)
        self.assertNotIn("may have started", done.stderr)
        self.assertNotIn("may hold", done.stderr)


class NoProxyAsLibcurl(TestCase):
    """no_proxy entries whose meaning libcurl settles one way: the runtime decides alike."""

    def routed_through_proxy(self, no_proxy):
        from test_credentials_isolation import ConnectProxy
        from test_run_coordination import SCRIPT, vnfc_param
        env = {k: "" for k in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                               "NO_PROXY")}
        with ConnectProxy(refuse=403) as proxy:
            env["http_proxy"] = proxy.url
            env["no_proxy"] = no_proxy
            done = harness.run_lcmcoord("run", SCRIPT, env=env, timeout=60, stdin=json.dumps(
                vnfc_param("http://127.0.0.1:9", authentication=None, timeout=2)))
            return len(proxy.seen()) > 0, done

    def test_a_star_among_other_entries_is_not_every_host(self):
        used, done = self.routed_through_proxy("localhost,*")
        self.assertTrue(used, done.stderr)
        used, done = self.routed_through_proxy("*")
        self.assertFalse(used, done.stderr)

    def test_more_bits_than_the_address_has_match_nothing(self):
        used, done = self.routed_through_proxy("127.0.0.1/40")
        self.assertTrue(used, done.stderr)
        used, done = self.routed_through_proxy("127.0.0.1/32")
        self.assertFalse(used, done.stderr)


class RecordIsSafeToRead(TestCase):
    """The --record file holds the EM's id: C1 controls and bidi overrides in it are
    escaped (\\uXXXX), so `cat record.json` cannot drive a terminal or reorder the text,
    while every JSON reader still reads the same id."""

    def test_the_record_escapes_what_a_terminal_would_act_on(self):
        from test_post_once import Peer, answer
        from test_run_coordination import SCRIPT, vnfc_param
        evil_id = "abc\u009b2J\u202edef\u2028x\u001b"

        def respond(peer, request):
            body = json.dumps({
                "id": evil_id, "coordinationResult": "CONTINUE", "vnfInstanceId": "i",
                "vnfLcmOpOccId": "o", "lcmOperationType": "CHANGE_VNFPKG",
                "coordinationActionName": "prv.tacker_organization.coordination_test",
                "_links": {"self": {"href": "http://x/y"}, "vnfLcmOpOcc": {"href": "http://x/o"},
                           "vnfInstance": {"href": "http://x/i"}}},
                ensure_ascii=False).encode()
            return answer(201, "Created", [("Content-Type", "application/json")], body)

        with Peer(respond) as peer, tempfile.TemporaryDirectory() as d:
            record = os.path.join(d, "record.json")
            done = harness.run_lcmcoord("run", "--record", record, SCRIPT, timeout=60,
                                        stdin=json.dumps(vnfc_param(peer.url, authentication=None,
                                                                    timeout=10)))
            with open(record, "rb") as f:
                raw = f.read()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual([b for b in raw if b >= 0x80 or (b < 0x20 and b not in b"\n")], [])
        self.assertEqual(json.loads(raw)["lcmCoordinations"][0]["id"], evil_id)


if __name__ == "__main__":
    unittest.main()
