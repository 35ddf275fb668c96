"""Shared plumbing for the end-to-end suites: start `lcmcoord em` on a free loopback port,
talk to it with the `curl` CLI (an independent client), run `lcmcoord` subcommands, and
wait on conditions with deadlines instead of sleeping.

Every suite finds the program under test through the LCMCOORD_BIN environment variable
that ctest sets, and the source tree through LCMCOORD_SOURCE_DIR.
"""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

LCMCOORD_BIN = os.environ.get("LCMCOORD_BIN", "lcmcoord")
SOURCE_DIR = os.environ.get(
    "LCMCOORD_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
# Test inputs live in this tree (tests/e2e/fixtures), never outside it: the suite runs in
# any clone.
E2E_DIR = os.path.dirname(os.path.abspath(__file__))
# Client processes run under this command when set (scripts/valgrind.sh sets valgrind),
# and the timeouts of waits stretch by LCMCOORD_TIME_FACTOR to match.
WRAPPER = os.environ.get("LCMCOORD_WRAPPER", "").split()
TIME_FACTOR = float(os.environ.get("LCMCOORD_TIME_FACTOR", "1"))
LISTEN_LINE = re.compile(r"^listening on (https?://[^\s]+)$")


def wait_for(condition, timeout=10.0, interval=0.02, what="condition"):
    """Polls condition() until it returns a truthy value or the deadline passes. The
    deadline is `timeout` seconds times TIME_FACTOR: a slow machine waits longer."""
    timeout = timeout * TIME_FACTOR
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class LineWatch:
    """Reads a process's output stream (stderr, say) in a thread, so that a test can wait
    for the line in which the process itself says something happened (the EM's journal
    records a request before the EM answers it, so it cannot tell that the client has the
    answer) and still have the whole text at the end."""

    def __init__(self, stream):
        self._lines = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            with self._lock:
                self._lines.append(line)

    def wait_line(self, pattern, timeout=10.0):
        """Waits (timeout scaled by TIME_FACTOR) for a line matching the regex; returns it."""
        regex = re.compile(pattern)

        def find():
            with self._lock:
                return next((line for line in self._lines if regex.search(line)), None)
        return wait_for(find, timeout=timeout, what=f"a line matching {pattern!r}")

    def text(self):
        """Everything read, once the stream has ended (the process exited)."""
        self._thread.join(timeout=10 * TIME_FACTOR)
        with self._lock:
            return "".join(self._lines)


class EM:
    """A running `lcmcoord em` on 127.0.0.1 with a free port.

    Use as a context manager; `url` is the apiRoot. On exit the simulator gets SIGTERM and
    must exit 0 within the deadline. Its stderr (one line per request) is kept in
    `stderr_text()`.
    """

    def __init__(self, *args, start_timeout=10.0):
        self.args = list(args)
        self.start_timeout = start_timeout
        self.proc = None
        self.url = None
        self._stderr = tempfile.TemporaryFile()

    def __enter__(self):
        cmd = [LCMCOORD_BIN, "em", "--listen", "127.0.0.1:0", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, text=True)
        line = self._read_first_line()
        match = LISTEN_LINE.match(line.strip())
        if not match:
            self.stop(check=False)
            raise AssertionError(f"unexpected first line from lcmcoord em: {line!r}; "
                                 f"stderr: {self.stderr_text()}")
        self.url = match.group(1)
        return self

    def _read_first_line(self):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(self.start_timeout * TIME_FACTOR):
            self.stop(check=False)
            raise AssertionError("lcmcoord em did not print its listening line in time; "
                                 f"stderr: {self.stderr_text()}")
        return self.proc.stdout.readline()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop(check=exc_type is None)
        finally:
            self.close()
        return False

    def close(self):
        """Releases the pipes and the stderr file once the simulator has exited."""
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()

    def stop(self, check=True, sig=signal.SIGTERM, timeout=10.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout * TIME_FACTOR)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("lcmcoord em did not exit after a signal")
        if check and rc != 0:
            raise AssertionError(f"lcmcoord em exited {rc}; stderr: {self.stderr_text()}")
        return rc

    def stderr_text(self):
        if self._stderr.closed:
            return ""
        # pread, never seek+read: the EM writes through a duplicate of this descriptor, which
        # shares its file offset, so moving it would make the EM's next line land over text
        # already there.
        fd = self._stderr.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")

    def journal_credentials(self):
        """USER:PASS the journal takes when the EM has credentials (it then needs them):
        --basic, else the --oauth2 client's id and secret; None when the EM has none."""
        for flag in ("--basic", "--oauth2"):
            if flag in self.args:
                value = self.args[self.args.index(flag) + 1]
                if ":" in value:
                    return value
        return None

    def journal(self):
        request = urllib.request.Request(self.url + "/_em/journal")
        credentials = self.journal_credentials()
        if credentials:
            import base64
            request.add_header("Authorization",
                               "Basic " + base64.b64encode(credentials.encode()).decode())
        with urllib.request.urlopen(request, timeout=10 * TIME_FACTOR) as resp:
            return json.loads(resp.read())

    def wait_journal(self, count, timeout=10.0):
        """Waits until the journal holds at least `count` entries and returns it."""
        return wait_for(lambda: (lambda j: j if len(j) >= count else None)(self.journal()),
                        timeout=timeout, what=f"{count} journal entries")


class TlsEM(EM):
    """`lcmcoord em` over HTTPS with a test PKI (certs.make_pki); the journal is read with
    curl trusting the test CA."""

    def __init__(self, pki, *args, cert=None, key=None):
        self.pki = pki
        super().__init__("--tls-cert", cert or pki.server_cert, "--tls-key",
                         key or pki.server_key, *args)

    def journal(self):
        credentials = self.journal_credentials()
        auth = ["-u", credentials] if credentials else []
        if "--client-ca" in self.args and not credentials:
            auth = ["--cert", self.pki.client_cert, "--key", self.pki.client_key]
        done = subprocess.run(["curl", "-sS", "--fail", "--cacert", self.pki.ca_cert, *auth,
                               self.url + "/_em/journal"], capture_output=True,
                              timeout=20 * TIME_FACTOR)
        if done.returncode != 0:
            raise AssertionError(f"cannot read the journal: {done.stderr.decode()}")
        return json.loads(done.stdout)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> last value
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.headers!r}, {self.body[:200]!r})"


def curl(method, url, body=None, headers=None, extra=(), timeout=20):
    """Sends one request with the `curl` CLI and returns status, headers and body."""
    timeout = timeout * TIME_FACTOR
    cmd = ["curl", "-sS", "-i", "-X", method, "--max-time", str(timeout), *extra]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if body is not None:
        cmd += ["--data-binary", "@-"]
    cmd.append(url)
    data = body.encode() if isinstance(body, str) else body
    done = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout + 5)
    if done.returncode != 0:
        raise AssertionError(f"curl failed ({done.returncode}): {done.stderr.decode()}")
    raw = done.stdout
    # Skip interim responses (100 Continue) that curl -i prints before the real one.
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode()
        status = int(status_line.split()[1])
        if status >= 200 or not rest:
            break
        raw = rest
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status, headers, rest.decode("utf-8", "replace"))


def run_lcmcoord(*args, stdin=None, timeout=120, env=None):
    """Runs `lcmcoord ARGS...` and returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([*WRAPPER, LCMCOORD_BIN, *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout * TIME_FACTOR, env=full_env)


def sample_request(**overrides):
    """A valid LcmCoordRequest, as a dict."""
    req = {
        "vnfInstanceId": "9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20",
        "vnfLcmOpOccId": "c2a7e4d1-0b5f-4e8a-a1c3-7f6d9e2b4a01",
        "lcmOperationType": "CHANGE_VNFPKG",
        "coordinationActionName": "prv.tacker_organization.coordination_test",
        "inputParams": {"vnfcInstanceId": ["VDU1-6f1e2d3c"]},
        "_links": {
            "vnfLcmOpOcc": {"href": "http://vnfm.example:9890/vnflcm/v2/vnf_lcm_op_occs/c2a7"},
            "vnfInstance": {"href": "http://vnfm.example:9890/vnflcm/v2/vnf_instances/9b3f"},
        },
    }
    req.update(overrides)
    return req


API_HEADERS = {"Version": "1.0.0", "Accept": "application/json",
               "Content-Type": "application/json"}


class TestCase(unittest.TestCase):
    """unittest.TestCase with a few assertions the suites share."""

    def assertOneLine(self, text):
        """The outcome is exactly one line, as the operator guide promises for a failure:
        nothing else, not even a warning (without -v they are held back on failure)."""
        lines = text.splitlines()
        self.assertEqual(len(lines), 1, f"expected exactly one line, got: {text!r}")
        self.assertTrue(lines[0].strip(), f"expected one non-empty line, got: {text!r}")
        return lines[0]
