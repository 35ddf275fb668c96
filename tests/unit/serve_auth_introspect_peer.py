#!/usr/bin/env python3
"""An RFC 7662 introspection endpoint for test_serve_auth.c: a real HTTP peer on 127.0.0.1
whose answer depends on the token, so the C suite can drive active, inactive, bound, slow,
broken and garbage answers. It demands this server's client credentials (Basic
rs-client:rs-secret), counts introspections per token (GET /count?token=T) so the suite
can see what the cache saved, prints "port N" once listening, and exits when its stdin
closes (the suite ends it; a crashed suite leaves no orphan)."""
import base64
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ISSUER = "https://as.example"
AUDIENCE = "lcmcoord-serve"
BOUND = sys.argv[1] if len(sys.argv) > 1 else "no-thumbprint"
CREDENTIALS = "Basic " + base64.b64encode(b"rs-client:rs-secret").decode()
counts = {}
lock = threading.Lock()


def answer_for(token):
    now = int(time.time())
    active = {"active": True, "client_id": "vnfm-1", "sub": "svc", "exp": now + 300,
              "iss": ISSUER, "aud": ["other", AUDIENCE]}
    if token.startswith("tok-active"):
        return 200, active
    if token == "tok-sub-only":
        return 200, {"active": True, "sub": "user-7", "iss": ISSUER, "aud": AUDIENCE}
    if token == "tok-inactive":
        return 200, {"active": False}
    if token == "tok-bound":
        return 200, dict(active, cnf={"x5t#S256": BOUND})
    if token == "tok-wrong-aud":
        return 200, dict(active, aud="someone-else")
    if token == "tok-wrong-iss":
        return 200, dict(active, iss="https://evil.example")
    if token == "tok-expired":
        return 200, dict(active, exp=now - 600)
    if token == "tok-slow":
        time.sleep(5)  # longer than the suite's timeout; bounded so the peer ends anyway
        return 200, active
    if token == "tok-garbage":
        return 200, "this is not json"
    if token == "tok-no-active":
        return 200, {"client_id": "vnfm-1"}
    if token == "tok-500":
        return 500, {"error": "server_error"}
    return 200, {"active": False}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the suite gave up waiting (the timeout case): expected

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        token = urllib.parse.parse_qs(url.query).get("token", [""])[0]
        with lock:
            self.send(200, {"count": counts.get(token, 0)})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        if self.headers.get("Authorization") != CREDENTIALS:
            self.send(401, {"error": "invalid_client"})
            return
        if not self.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"):
            self.send(400, {"error": "invalid_request"})
            return
        form = urllib.parse.parse_qs(body)
        token = form.get("token", [""])[0]
        with lock:
            counts[token] = counts.get(token, 0) + 1
        if token == "tok-redirect" and self.path == "/introspect":
            # Followed, it would reach an endpoint calling the token active.
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/elsewhere":
            self.send(200, answer_for("tok-active"))
            return
        status, answer = answer_for(token)
        self.send(status, answer)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print("port %d" % server.server_address[1], flush=True)
sys.stdin.read()
