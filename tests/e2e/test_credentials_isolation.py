"""End to end: credentials stay with their owner. The token cache never hands a token to
credentials that differ from those it was issued to (a wrong secret, another method);
proxies from the environment only ever see a CONNECT tunnel, never a request or its
Authorization, and their own failures are worded as theirs; every request, token fetches
included, speaks HTTP/1.1 even to a server that offers HTTP/2. Against `lcmcoord em` and
small real peers written here (a CONNECT proxy, a TLS server offering h2 by ALPN), all on
127.0.0.1.
"""

import json
import os
import socket
import ssl
import threading
import unittest

import certs
import harness
from harness import EM, TestCase, wait_for
from test_auth import ScriptFile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua")
FIXTURE = os.path.join(HERE, "fixtures", "vnfc_param.json")
COORDS = "/lcmcoord/v1/coordinations"
CLIENT_ID = "vnfm"
SECRET = "Right-S3cret-4-cache"
PASSWORD = "Basic-Pa55-not-for-proxies"

# Right credentials first, then credentials that differ only in the secret, then only in
# the client authentication method: each must stand on its own at the token endpoint.
CACHE_SCRIPT = """
local lcmcoord = require "lcmcoord"
local p = ...
local function attempt(authentication, options)
  local req = p.LcmCoordRequest
  local c <close> = lcmcoord.client{endpoint = p.endpoint, authentication = authentication,
                                    timeout = 30, oauth2_client_auth = options}
  local r, err = c:coordinate(req)
  if r then return r.coordinationResult end
  return "error:" .. err.kind
end
local good = attempt(p.good)
local bad = attempt(p.bad)
local good_auth <close> = lcmcoord.auth.new(p.good)
local header = good_auth:header()
local bad_auth <close> = lcmcoord.auth.new(p.bad)
local bad_header, bad_err = bad_auth:header()
local bad_in_body = attempt(p.bad, "body")
io.stdout:write(string.format("%s %s %s %s %s\\n", good, bad, header and "header" or "none",
  bad_header and "header" or ("error:" .. bad_err.kind), bad_in_body))
"""


def fixture_request():
    with open(FIXTURE, encoding="utf-8") as f:
        request = json.load(f)["LcmCoordRequest"]
    request["coordinationActionName"] = "prv.test.coordination_cache"
    return request


def oauth2(token_endpoint, secret):
    return {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
            "paramsOauth2ClientCredentials": {"clientId": CLIENT_ID, "clientPassword": secret,
                                              "tokenEndpoint": token_endpoint}}


def basic():
    return {"authType": ["BASIC"], "paramsBasic": {"userName": "tacker", "password": PASSWORD}}




def run_script(text, params, env=None, *flags):
    with ScriptFile(text) as path:
        return harness.run_lcmcoord("run", "--any-params", *flags, path,
                                    stdin=json.dumps(params), env=env, timeout=60)


class TokenCacheTest(TestCase):
    def test_a_wrong_secret_never_gets_the_cached_token(self):
        with EM("--oauth2", f"{CLIENT_ID}:{SECRET}") as em:
            token_endpoint = em.url + "/token"
            done = run_script(CACHE_SCRIPT, {
                "endpoint": em.url, "LcmCoordRequest": fixture_request(),
                "good": oauth2(token_endpoint, SECRET),
                "bad": oauth2(token_endpoint, SECRET + "-wrong")})
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.split(),
                         ["CONTINUE", "error:auth", "header", "error:auth", "error:auth"])
        tokens = [e for e in journal if e["path"] == "/token"]
        # The right secret once (the good auth object reuses its token), then the wrong one
        # for the client, the auth object and the client_secret_post client: each asked.
        self.assertEqual([e["auth"]["ok"] for e in tokens], [True, False, False, False])
        self.assertEqual([e["auth"]["scheme"] for e in tokens],
                         ["Basic", "Basic", "Basic", "client_secret_post"])
        # Only the right credentials' coordination reached the API.
        posts = [e for e in journal if e["method"] == "POST" and e["path"] == COORDS]
        self.assertEqual(len(posts), 1)
        self.assertNotIn(SECRET, done.stderr + done.stdout)


class ConnectProxy:
    """A small forward proxy on 127.0.0.1 that understands CONNECT only. It records what
    each client sent before the tunnel (the request line and headers) and relays bytes
    after it; `refuse` answers every CONNECT with that status instead. Anything that is not
    a CONNECT (a plain proxied request, which would show the proxy the Authorization) is
    recorded and answered 502."""

    def __init__(self, refuse=None):
        self.refuse = refuse
        self.heads = []  # the bytes each client sent up to the blank line
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.threads = []
        self.closing = False
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            with self.lock:
                self.heads.append(head)
            line = head.split(b"\r\n", 1)[0].split()
            if len(line) < 2 or line[0] != b"CONNECT":
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            if self.refuse:
                conn.sendall(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n\r\n" % self.refuse)
                return
            host, port = line[1].decode().rsplit(":", 1)
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            with upstream:
                pump = threading.Thread(target=self._pump, args=(upstream, conn), daemon=True)
                pump.start()
                self._pump(conn, upstream)
                pump.join(10)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def seen(self):
        with self.lock:
            return list(self.heads)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closing = True
        self.listener.close()
        for t in self.threads:
            t.join(10)


def coordination_params(endpoint, authentication):
    with open(FIXTURE, encoding="utf-8") as f:
        p = json.load(f)
    p["endpoint"] = endpoint
    p["authentication"] = authentication
    p["timeout"] = 30
    return p


def no_proxy_env(**more):
    """The environment without any proxy variable of the caller's, plus `more`."""
    env = {k: "" for k in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                           "ALL_PROXY", "no_proxy", "NO_PROXY")}
    env.update(more)
    return env


class ProxyTest(TestCase):
    def coordinate(self, em, env, *flags, deadline=30):
        params = coordination_params(em.url, basic())
        params["timeout"] = deadline
        return harness.run_lcmcoord("run", *flags, SCRIPT, stdin=json.dumps(params), env=env,
                                    timeout=60)

    def test_a_proxy_only_ever_sees_a_tunnel(self):
        with EM("--basic", f"tacker:{PASSWORD}") as em, ConnectProxy() as proxy:
            proxy_url = f"http://puser:Proxy-Pa55@127.0.0.1:{proxy.port}"
            done = self.coordinate(em, no_proxy_env(http_proxy=proxy_url), "-v")
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        heads = proxy.seen()
        self.assertGreaterEqual(len(heads), 1)
        em_target = em.url.split("://", 1)[1].encode()
        for head in heads:
            self.assertTrue(head.startswith(b"CONNECT " + em_target + b" HTTP/1.1\r\n"), head)
            self.assertNotIn(b"authorization:", head.lower().replace(b"proxy-authorization:", b""))
            self.assertNotIn(PASSWORD.encode(), head)
        posts = [e for e in journal if e["method"] == "POST" and e["path"] == COORDS]
        self.assertTrue(posts and all(e["auth"]["ok"] for e in posts))
        # -v names the proxy once, without its userinfo.
        named = [line for line in done.stderr.splitlines()
                 if f"using the proxy http://127.0.0.1:{proxy.port}" in line]
        self.assertEqual(len(named), 1, done.stderr)
        self.assertNotIn("Proxy-Pa55", done.stderr + done.stdout)
        self.assertNotIn("puser", done.stderr + done.stdout)
        self.assertNotIn(PASSWORD, done.stderr + done.stdout)

    def test_no_proxy_goes_direct(self):
        with EM("--basic", f"tacker:{PASSWORD}") as em, ConnectProxy() as proxy:
            done = self.coordinate(em, no_proxy_env(http_proxy=proxy.url,
                                                    no_proxy="example.org, 127.0.0.0/8"), "-v")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(proxy.seen(), [])
        self.assertNotIn("using the proxy", done.stderr)

    def test_a_refused_tunnel_is_the_proxys_failure(self):
        with EM("--basic", f"tacker:{PASSWORD}") as em, ConnectProxy(refuse=502) as proxy:
            done = self.coordinate(em, no_proxy_env(http_proxy=proxy.url))
            journal = em.journal()
        self.assertNotEqual(done.returncode, 0)
        self.assertOneLine(done.stderr)
        em_target = em.url.split("://", 1)[1]
        self.assertIn(f"the proxy {proxy.url} refused the tunnel to {em_target}", done.stderr)
        self.assertIn("502", done.stderr)
        self.assertNotIn("EM answered", done.stderr)
        self.assertEqual([e for e in journal if e["path"] == COORDS], [])

    def test_an_unreachable_proxy_is_named(self):
        spare = socket.create_server(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{spare.getsockname()[1]}"
        spare.close()
        with EM("--basic", f"tacker:{PASSWORD}") as em:
            # A connection refused before the request went out is retried until the
            # deadline: a short one keeps the test short.
            done = self.coordinate(em, no_proxy_env(http_proxy=dead), deadline=2)
        self.assertNotEqual(done.returncode, 0)
        self.assertOneLine(done.stderr)
        self.assertIn(f"cannot reach the proxy {dead}", done.stderr)


# The API and the token endpoint, both on a TLS server that offers h2 first.
ALPN_SCRIPT = """
local lcmcoord = require "lcmcoord"
local p = ...
local auth <close> = lcmcoord.auth.new(p.authentication, {cacert = p.cacert})
local r = assert(lcmcoord.http.request{url = p.url, auth = auth, tls = {cacert = p.cacert}})
io.stdout:write(r.status, "\\n")
"""


class HttpVersionTest(certs.WithPki, TestCase):
    def test_http_1_1_even_when_the_server_offers_h2(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                seen.append((self.connection.selected_alpn_protocol(), self.request_version,
                             self.path))
                self.reply({"access_token": "tok-123", "token_type": "Bearer",
                            "expires_in": 60})

            def do_GET(self):
                seen.append((self.connection.selected_alpn_protocol(), self.request_version,
                             self.path, self.headers.get("Authorization")))
                self.reply({"ok": True})

            def reply(self, doc):
                data = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        context.set_alpn_protocols(["h2", "http/1.1"])
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"https://127.0.0.1:{server.server_address[1]}"
            authentication = oauth2(base + "/token", SECRET)
            done = run_script(ALPN_SCRIPT, {"url": base + "/api", "cacert": self.pki.ca_cert,
                                            "authentication": authentication},
                              no_proxy_env())
        finally:
            server.shutdown()
            server.server_close()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "200")
        self.assertEqual([s[:3] for s in seen], [("http/1.1", "HTTP/1.1", "/token"),
                                                 ("http/1.1", "HTTP/1.1", "/api")])
        self.assertEqual(seen[1][3], "Bearer tok-123")


if __name__ == "__main__":
    unittest.main()
