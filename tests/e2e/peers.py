"""Small EMs written in Python for what `lcmcoord em` will not do on purpose: answer a
coordination's POST, poll and cancel each as a test says (answer late, never answer, answer
with another coordination than the one polled), and a TLS port that accepts the connection
then drops it mid-handshake. Real HTTP on 127.0.0.1, standard library only; everything a
peer holds is let go when the `with` block ends, so no test waits on it.
"""

import http.server
import json
import socket
import threading

from harness import TIME_FACTOR

COORDINATIONS = "/lcmcoord/v1/coordinations"


def lcmcoord(coordination_id, result="CONTINUE"):
    """A finished LcmCoord as an EM sends it."""
    return {"id": coordination_id, "coordinationResult": result,
            "vnfInstanceId": "vnf-1", "coordinationActionName": "x",
            "startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-01T00:00:01Z",
            "_links": {"self": {"href": f"{COORDINATIONS}/{coordination_id}"},
                       "vnfLcmOpOcc": {"href": "/vnflcm/v1/vnf_lcm_op_occs/op-1"},
                       "vnfInstance": {"href": "/vnflcm/v1/vnf_instances/vnf-1"}}}


class CoordinationPeer:
    """An EM whose answers are the test's functions: `on_post(handler)`,
    `on_get(handler)`, `on_cancel(handler)`; each calls `handler.answer(...)`,
    `handler.hang()` or nothing. By default the POST is accepted (202 and a Location to
    coordination `c-1`), a poll says it is in progress, a cancel is accepted. Every request
    is kept in `requests` as (method, path)."""

    def __init__(self, on_post=None, on_get=None, on_cancel=None, retry_after=30):
        self.requests = []
        self.released = threading.Event()
        self.retry_after = retry_after
        self.on_post = on_post or (lambda h: h.answer(
            202, headers=[("Location", f"{self.url}{COORDINATIONS}/c-1"),
                          ("Retry-After", str(self.retry_after))]))
        self.on_get = on_get or (lambda h: h.answer(
            202, headers=[("Retry-After", str(self.retry_after))]))
        self.on_cancel = on_cancel or (lambda h: h.answer(202))
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, body=None, headers=()):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Version", "1.0.0")
                self.end_headers()
                self.wfile.write(data)

            def hang(self, seconds=120):
                """Answers nothing until the peer is closed (or `seconds` pass)."""
                peer.released.wait(seconds * TIME_FACTOR)
                self.close_connection = True

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                peer.requests.append(("POST", self.path))
                if self.path.endswith("/cancel"):
                    peer.on_cancel(self)
                else:
                    peer.on_post(self)

            def do_GET(self):
                peer.requests.append(("GET", self.path))
                peer.on_get(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def paths(self, method=None):
        return [p for m, p in list(self.requests) if method is None or m == method]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class HandshakeDropper:
    """A port that accepts TCP connections, reads the TLS ClientHello and closes the
    connection without a word (a reset when the peer had more to say): what an `https://`
    client meets at a middlebox or a server that refuses it at the TLS layer."""

    def __init__(self, reset=True):
        self.reset = reset
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            with conn:
                conn.settimeout(5 * TIME_FACTOR)
                try:
                    conn.recv(4096)
                except OSError:
                    pass
                if self.reset:
                    # SO_LINGER 0: the close sends RST, not FIN.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.sock.close()
