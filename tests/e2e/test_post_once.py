"""End to end: a coordination is sent once, and never left behind.

The POST that creates a coordination goes out once per attempt the runtime decides on
(libcurl may not resend it behind our back when a reused connection dies); when the
coordination must end while that POST is out (a signal, --script-timeout, the deadline), the
POST gets a short grace to answer so that what the EM started is cancelled, and when it
cannot be, the client says so; the cancel goes to the right URL with no body; a cancel
asked while the POST waits out a 503 sends nothing again; a poll answered with another
coordination's LcmCoord is an error.

Misbehaviours `lcmcoord em` has no option for come from a raw-socket HTTP/1.1 peer here,
which records every request exactly as it arrived (and on which connection).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import EM, TestCase
from test_run_coordination import SCRIPT, vnfc_param

COORDINATIONS = "/lcmcoord/v1/coordinations"
TF = harness.TIME_FACTOR


class Request:
    def __init__(self, connection, method, target, headers, body):
        self.connection = connection  # serial number of the TCP connection it came on
        self.method = method
        self.target = target
        self.headers = headers  # lower-case name -> value
        self.body = body

    def __repr__(self):
        return f"Request(#{self.connection} {self.method} {self.target} {self.headers})"


def answer(status, reason, headers=(), body=b""):
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Version: 1.0.0"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def problem(status, title):
    body = json.dumps({"title": title, "status": status, "detail": title}).encode()
    return [("Content-Type", "application/problem+json")], body


class Peer:
    """An HTTP/1.1 server on 127.0.0.1 that answers as `respond(peer, request)` says: the
    bytes to send (the connection is kept open), or None to close the connection after
    reading the whole request without answering."""

    def __init__(self, respond):
        self.respond = respond
        self.requests = []
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.stopping = False
        self.threads = []

    def __enter__(self):
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self.threads.append(thread)
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.listener.close()
        return False

    def seen(self, method=None, prefix=""):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and r.target.startswith(prefix)]

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn, self.connections),
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn, serial):
        buffered = b""
        conn.settimeout(60)
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(buffered) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                body, buffered = buffered[:length], buffered[length:]
                request = Request(serial, method, target, headers, body)
                with self.lock:
                    self.requests.append(request)
                reply = self.respond(self, request)
                if reply is None:
                    return
                conn.sendall(reply)
        except OSError:
            return
        finally:
            conn.close()


def lcmcoord_json(coordination_id):
    return json.dumps({
        "id": coordination_id, "coordinationResult": "CONTINUE",
        "vnfInstanceId": "4d2c7f10-8e55-4a3b-b6e1-2f9c0d7a5e31",
        "vnfLcmOpOccId": "e8b1c3a2-5f4d-4c6e-9a7b-1d0e2f3a4b5c",
        "lcmOperationType": "CHANGE_VNFPKG",
        "coordinationActionName": "prv.tacker_organization.coordination_test",
        "_links": {"self": {"href": f"http://127.0.0.1/x/{coordination_id}"},
                   "vnfLcmOpOcc": {"href": "http://vnfm.test/o"},
                   "vnfInstance": {"href": "http://vnfm.test/i"}}}).encode()


def start_run(param, *flags):
    """`lcmcoord run` with the shipped script, VNFC parameters already written."""
    proc = subprocess.Popen([*harness.WRAPPER, harness.LCMCOORD_BIN, "run", *flags, SCRIPT],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(param))
    proc.stdin.close()
    return proc


def finish_run(proc, timeout):
    try:
        proc.wait(timeout=timeout)
        return proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def posts(journal):
    return [e for e in journal if e["method"] == "POST" and e["path"] == COORDINATIONS]


def cancels(journal):
    return [e for e in journal if e["method"] == "POST" and e["path"].endswith("/cancel")]


class PostIsNotResentByLibcurl(TestCase):
    """A kept-alive connection carries a first POST (503, keep-alive); the second POST on it
    is read whole and the connection closed. libcurl would reconnect and send it again."""

    def test_a_post_read_then_dropped_on_a_reused_connection_goes_out_once(self):
        def respond(peer, request):
            if request.method != "POST":
                return None
            if len(peer.seen("POST")) == 1:
                headers, body = problem(503, "busy")
                return answer(503, "Service Unavailable", headers + [("Retry-After", "1")],
                              body)
            return None  # read it all, then close without a word

        with Peer(respond) as peer:
            started = time.monotonic()
            done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(
                vnfc_param(peer.url, authentication=None, timeout=30)))
            elapsed = time.monotonic() - started
            sent = peer.seen("POST")
        self.assertEqual(len(sent), 2, sent)
        # The second one really came on the kept-alive connection of the first.
        self.assertEqual(sent[0].connection, sent[1].connection, sent)
        self.assertEqual(done.returncode, 4, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("may have started the coordination", line)
        self.assertIn(f"(POST {COORDINATIONS})", line)
        self.assertLess(elapsed, 10 * TF)


class PostGrace(TestCase):
    """The EM answers 1.5 s late; the coordination has to end while its POST is out."""

    def assert_cancelled_after_its_202(self, em):
        journal = harness.wait_for(lambda: (lambda j: j if cancels(j) else None)(em.journal()),
                                   timeout=10 * TF, what="a cancel in the journal")
        self.assertEqual(len(posts(journal)), 1, journal)
        self.assertEqual(posts(journal)[0]["status"], 202, journal)
        self.assertEqual(len(cancels(journal)), 1, journal)
        self.assertEqual(journal.index(cancels(journal)[0]), len(journal) - 1, journal)
        self.assertTrue(cancels(journal)[0]["path"].startswith(COORDINATIONS + "/"), journal)

    def test_sigterm_during_the_post_cancels_what_the_em_accepted(self):
        with EM("--mode", "async", "--delay", "1500") as em:
            proc = start_run(vnfc_param(em.url, authentication=None, timeout=60))
            # The EM has the whole POST (it journals on receipt) and answers 1.5 s later.
            em.wait_journal(1, timeout=10 * TF)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            stderr = finish_run(proc, 15 * TF)
            elapsed = time.monotonic() - sent
            self.assertEqual(proc.returncode, 143, stderr)
            # The one line says what became of the EM's side, without -v too.
            self.assertEqual(self.assertOneLine(stderr),
                             "lcmcoord: interrupted by SIGTERM; the EM was asked to cancel")
            # The POST's answer (1.5 s) and the cancel's (1.5 s), within their graces.
            self.assertLess(elapsed, 3.0 + 3.0 * TF)
            self.assert_cancelled_after_its_202(em)

    def test_a_201_in_the_grace_leaves_nothing_to_cancel(self):
        with EM("--delay", "1500") as em:
            proc = start_run(vnfc_param(em.url, authentication=None, timeout=60), "-v")
            em.wait_journal(1, timeout=10 * TF)
            proc.send_signal(signal.SIGTERM)
            stderr = finish_run(proc, 15 * TF)
            journal = em.journal()
        self.assertEqual(proc.returncode, 143, stderr)
        self.assertEqual([e["status"] for e in posts(journal)], [201], journal)
        self.assertEqual(cancels(journal), [])
        self.assertNotIn("could not be cancelled", stderr)

    def test_the_deadline_during_the_post_cancels_what_the_em_accepted(self):
        with EM("--mode", "async", "--delay", "1500") as em:
            started = time.monotonic()
            done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(
                vnfc_param(em.url, authentication=None, timeout=1)))
            elapsed = time.monotonic() - started
            self.assertEqual(done.returncode, 3, done.stderr)
            line = self.assertOneLine(done.stderr)
            self.assertIn("deadline exceeded", line)
            self.assertIn("the EM was asked to cancel", line)
            # At most the POST's grace (5 s) and the cancel's (5 s) past the deadline.
            self.assertLess(elapsed, 1.0 + 10.0 + 2.0 * TF)
            self.assert_cancelled_after_its_202(em)

    def test_the_script_timeout_during_the_post_cancels_what_the_em_accepted(self):
        with EM("--mode", "async", "--delay", "1500") as em:
            done = harness.run_lcmcoord("run", "--script-timeout", "0.7", SCRIPT,
                                        stdin=json.dumps(vnfc_param(em.url, authentication=None,
                                                                    timeout=60)))
            self.assertEqual(done.returncode, 3, done.stderr)
            line = self.assertOneLine(done.stderr)
            self.assertIn("ran past its deadline", line)
            self.assertTrue(line.endswith("; the EM was asked to cancel"), line)
            self.assert_cancelled_after_its_202(em)

    def test_a_post_that_never_answers_is_reported_as_left_behind(self):
        with EM("--mode", "async", "--delay", "600000") as em:
            # -v: without it a failed run's stderr is the one line of its outcome, here
            # "interrupted by SIGTERM", and warnings are held back.
            proc = start_run(vnfc_param(em.url, authentication=None, timeout=60), "-v")
            em.wait_journal(1, timeout=10 * TF)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            stderr = finish_run(proc, 20 * TF)
            elapsed = time.monotonic() - sent
            journal = em.journal()
        self.assertEqual(proc.returncode, 143, stderr)
        # The grace is bounded: 5 s, then the operator is told what may be left.
        self.assertGreaterEqual(elapsed, 4.9)
        self.assertLess(elapsed, 5.0 + 3.0 * TF)
        self.assertIn("lcmcoord: warning: the EM may hold a coordination that could not be "
                      "cancelled (no answer to the POST within 5 s)\n", stderr)
        self.assertIn("coordination failed: interrupted; the EM may hold a coordination that "
                      "could not be cancelled (no answer to the POST within 5 s)\n", stderr)
        self.assertTrue(stderr.endswith(
            "lcmcoord: interrupted by SIGTERM; the EM may hold a coordination that could not be "
            "cancelled (no answer to the POST within 5 s)\n"), stderr)
        self.assertEqual(cancels(journal), [])

    def test_without_v_the_one_line_says_what_may_be_left(self):
        with EM("--mode", "async", "--delay", "600000") as em:
            proc = start_run(vnfc_param(em.url, authentication=None, timeout=60))
            em.wait_journal(1, timeout=10 * TF)
            proc.send_signal(signal.SIGTERM)
            stderr = finish_run(proc, 20 * TF)
        self.assertEqual(proc.returncode, 143, stderr)
        self.assertEqual(self.assertOneLine(stderr),
                         "lcmcoord: interrupted by SIGTERM; the EM may hold a coordination that "
                         "could not be cancelled (no answer to the POST within 5 s)")

    def test_the_deadline_with_no_answer_says_what_may_be_left(self):
        with EM("--mode", "async", "--delay", "600000") as em:
            started = time.monotonic()
            done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(
                vnfc_param(em.url, authentication=None, timeout=1)))
            elapsed = time.monotonic() - started
        self.assertEqual(done.returncode, 3, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("deadline exceeded", line)
        self.assertIn("the EM may hold a coordination that could not be cancelled", line)
        # The POST outlives the deadline by its grace, no more.
        self.assertGreaterEqual(elapsed, 1.0 + 4.9)
        self.assertLess(elapsed, 1.0 + 5.0 + 3.0 * TF)


class CancelRequest(TestCase):
    """The cancel goes to {path}/cancel with the Location's query, with no body and no
    Content-Type."""

    def test_cancel_url_keeps_the_query_and_has_no_body(self):
        location = COORDINATIONS + "/abc?shard=7#frag"

        def respond(peer, request):
            if request.method == "POST" and request.target == COORDINATIONS:
                return answer(202, "Accepted", [("Location", location), ("Retry-After", "1")])
            if request.method == "GET":
                return answer(202, "Accepted", [("Retry-After", "30")])
            return answer(202, "Accepted")

        with Peer(respond) as peer:
            proc = subprocess.Popen([harness.LCMCOORD_BIN, "coordinate", "--endpoint", peer.url,
                                     "--action", "x"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
            try:
                # The poll proves the client holds the 202 and its Location.
                harness.wait_for(lambda: peer.seen("GET"), timeout=10 * TF, what="a poll")
                proc.send_signal(signal.SIGTERM)
                stderr = finish_run(proc, 10 * TF)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            harness.wait_for(lambda: len(peer.seen("POST")) >= 2, timeout=5 * TF,
                             what="the cancel")
            cancel = peer.seen("POST")[1:]
        self.assertEqual(proc.returncode, 143, stderr)
        self.assertEqual(peer.seen("GET")[0].target, COORDINATIONS + "/abc?shard=7")
        self.assertEqual([r.target for r in cancel], [COORDINATIONS + "/abc/cancel?shard=7"])
        self.assertNotIn("content-type", cancel[0].headers)
        self.assertEqual(cancel[0].headers.get("content-length"), "0")
        self.assertEqual(cancel[0].body, b"")


class CancelWhileWaitingOutA503(TestCase):
    def test_sigterm_during_the_wait_sends_nothing_again(self):
        with EM("--rejects", "1", "--retry-after", "2") as em:
            proc = start_run(vnfc_param(em.url, authentication=None, timeout=60))
            em.wait_journal(1, timeout=10 * TF)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            stderr = finish_run(proc, 10 * TF)
            elapsed = time.monotonic() - sent
            journal = em.journal()
        self.assertEqual(proc.returncode, 143, stderr)
        self.assertLess(elapsed, 1.0 * TF)
        self.assertEqual([e["status"] for e in posts(journal)], [503], journal)

    def run_driver(self, when, *em_args):
        """Runs CANCEL_DRIVER against `lcmcoord em EM_ARGS`; returns its outcome and the
        EM's journal."""
        library = os.environ.get("LCMC_RUNTIME_LIBRARY")
        if not library:
            self.skipTest("LCMC_RUNTIME_LIBRARY is not set (ctest sets it)")
        env = dict(os.environ)
        preload = os.environ.get("LCMC_RUNTIME_PRELOAD")
        if preload:
            env["LD_PRELOAD"] = preload
            env["ASAN_OPTIONS"] = "detect_leaks=0"
        with EM(*em_args) as em:
            done = subprocess.run([sys.executable, "-c", CANCEL_DRIVER, library, em.url,
                                   json.dumps(harness.sample_request()), when],
                                  capture_output=True, text=True, timeout=30 * TF, env=env)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout), journal

    def test_lcmc_coordination_cancel_during_the_wait_ends_at_once(self):
        """Through the C API (ctypes on liblcmcoord): the cancel comes while the runtime
        waits out the EM's Retry-After; the coordination ends cancelled, POST not resent."""
        outcome, journal = self.run_driver("waiting", "--rejects", "1", "--retry-after", "1")
        self.assertEqual(outcome["done_after_cancel"], 1, outcome)
        self.assertEqual(outcome["status"], "cancelled", outcome)
        self.assertIn("cancelled before the EM accepted", outcome["message"])
        self.assertEqual([e["status"] for e in posts(journal)], [503], journal)

    def test_lcmc_coordination_cancel_while_the_post_is_out_does_not_wait_out_its_503(self):
        """The cancel comes while the EM holds the POST (it answers 503 1.5 s later): the
        answer ends the coordination, cancelled, instead of a wait and a second POST."""
        outcome, journal = self.run_driver("posted", "--rejects", "1", "--retry-after", "1",
                                           "--delay", "1500")
        self.assertEqual(outcome["done_after_cancel"], 0, outcome)
        self.assertEqual(outcome["status"], "cancelled", outcome)
        self.assertIn("cancelled before the EM accepted", outcome["message"])
        self.assertEqual([e["status"] for e in posts(journal)], [503], journal)


# Drives one coordination through the C API: start, run the engine until the runtime says
# it waits out the 503 ("waiting") or until the EM's journal holds the POST ("posted"),
# cancel, then wait for the coordination and print what it became.
CANCEL_DRIVER = r"""
import ctypes, json, os, sys, urllib.request
lib = ctypes.CDLL(sys.argv[1])
LOG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
class Tls(ctypes.Structure):
    _fields_ = [(n, ctypes.c_char_p) for n in ("cacert", "capath", "cert", "key",
                                               "key_password")] + [("insecure", ctypes.c_int)]
class Options(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("endpoint", ctypes.c_char_p),
                ("authentication_json", ctypes.c_char_p), ("api_version", ctypes.c_char_p),
                ("timeout", ctypes.c_double), ("wait_floor", ctypes.c_double),
                ("default_interval", ctypes.c_double), ("max_body", ctypes.c_size_t),
                ("tls", Tls), ("oauth2_secret_in_body", ctypes.c_int),
                ("token_refresh_margin", ctypes.c_double), ("allow_cross_origin", ctypes.c_int)]
lib.lcmc_status_name.restype = ctypes.c_char_p
lib.lcmc_error_message.restype = ctypes.c_char_p
lib.lcmc_coordination_error.restype = ctypes.c_void_p
lib.lcmc_error_message.argtypes = [ctypes.c_void_p]
lib.lcmc_engine_sleep.argtypes = [ctypes.c_void_p, ctypes.c_double]
lib.lcmc_coordination_start.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
                                        ctypes.c_double]
for name in ("lcmc_coordination_cancel", "lcmc_coordination_done", "lcmc_coordination_wait",
             "lcmc_coordination_status", "lcmc_coordination_error", "lcmc_coordination_free"):
    getattr(lib, name).argtypes = [ctypes.c_void_p]
lib.lcmc_engine_set_log.argtypes = [ctypes.c_void_p, LOG, ctypes.c_void_p, ctypes.c_int]
engine, client, coord = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
assert lib.lcmc_engine_new(ctypes.byref(engine)) == 0
lines = []
log = LOG(lambda _u, _level, message: lines.append(message.decode()))
lib.lcmc_engine_set_log(engine, log, None, 2)
options = Options(version=1, endpoint=sys.argv[2].encode())
assert lib.lcmc_client_new(ctypes.byref(client), engine, ctypes.byref(options)) == 0
assert lib.lcmc_coordination_start(ctypes.byref(coord), client, sys.argv[3].encode(), 30.0) == 0
def posted():
    with urllib.request.urlopen(sys.argv[2] + "/_em/journal", timeout=10) as answer:
        return len(json.loads(answer.read())) > 0
def ready():
    if sys.argv[4] == "waiting":
        return any("EM busy (503), retrying in" in line for line in lines)
    return posted()
turns = 0
while not ready():
    assert turns < 400 * float(os.environ.get("LCMCOORD_TIME_FACTOR", "1")), lines
    lib.lcmc_engine_sleep(engine, 0.05)
    turns += 1
lib.lcmc_coordination_cancel(coord)
done_after_cancel = lib.lcmc_coordination_done(coord)
status = lib.lcmc_coordination_wait(coord)
err = lib.lcmc_coordination_error(coord)
print(json.dumps({"done_after_cancel": done_after_cancel,
                  "status": lib.lcmc_status_name(status).decode(),
                  "message": lib.lcmc_error_message(err).decode() if err else None}))
lib.lcmc_coordination_free(coord)
lib.lcmc_client_free(client)
lib.lcmc_engine_free(engine)
"""


class PollAnswersAnotherCoordination(TestCase):
    def test_a_200_with_another_id_is_a_protocol_error(self):
        def respond(peer, request):
            if request.method == "POST":
                return answer(202, "Accepted", [("Location", COORDINATIONS + "/abc"),
                                                ("Retry-After", "1")])
            body = lcmcoord_json("xyz")
            return answer(200, "OK", [("Content-Type", "application/json")], body)

        with Peer(respond) as peer:
            done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(
                vnfc_param(peer.url, authentication=None, timeout=30)))
        self.assertEqual(done.returncode, 1, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("LcmCoord of coordination 'xyz', not of 'abc'", line)
        self.assertIn(f"(GET {COORDINATIONS}/abc)", line)


if __name__ == "__main__":
    unittest.main()
