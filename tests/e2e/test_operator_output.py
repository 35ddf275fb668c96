"""End-to-end: what an operator and a VNFM read from `lcmcoord run` and `lcmcoord coordinate`
is true and safe. Strings an EM sends (ids, Locations, ProblemDetails) never reach a
terminal as control sequences or forged log lines, at any verbosity and in both log formats;
a failure's stderr is one line; the VNFC parameters are checked for what a script cannot use
(`timeout`) and accepted for what the docs allow (no `authentication`); Tacker's placeholder
action is never sent; `os.exit` keeps the record and the documented exit statuses; an id
that is not UTF-8 keeps its record.

The hostile EM is a Python peer on 127.0.0.1 that answers a POST with 202 and a Location
chosen by the test, and a poll with an LcmCoord chosen by the test.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import unittest

import harness
from test_run_cli import TempDirTestCase
from test_run_coordination import SCRIPT, posts, vnfc_param

COORDINATIONS = "/lcmcoord/v1/coordinations"

# An id that would clear the screen, start a CSI with the one-byte C1 form, and forge a log
# line, were it written as it is. In the Location it is percent-encoded.
HOSTILE_SEGMENT = "abc%1b%5b2J%c2%9b31m%0aFORGED%20line%0d%e2%80%aeevil%7f"
HOSTILE_ID = "abc\x1b[2J\u009b31m\nFORGED line\r\u202eevil\x7f"
HOSTILE_DETAIL = "not ready\x1b]0;title\x07\nFORGED detail"


class HostilePeer:
    """A one-coordination EM: POST -> 202 with Location .../<segment>; GET of it -> 200 with
    an LcmCoord of `lcmcoord_id` and `result` (ABORT carries HOSTILE_DETAIL)."""

    def __init__(self, segment=HOSTILE_SEGMENT, lcmcoord_id=HOSTILE_ID, result="CONTINUE",
                 poll_status=200):
        self.segment = segment
        self.lcmcoord_id = lcmcoord_id
        self.result = result
        self.poll_status = poll_status
        self.requests = []
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
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                peer.requests.append(("POST", self.path))
                if self.path == COORDINATIONS:
                    location = f"{peer.url}{COORDINATIONS}/{peer.segment}"
                    self.answer(202, headers=[("Location", location)])
                else:
                    self.answer(404, {"status": 404, "detail": "no such thing"})

            def do_GET(self):
                peer.requests.append(("GET", self.path))
                if not self.path.startswith(COORDINATIONS + "/"):
                    self.answer(404, {"status": 404, "detail": "no such thing"})
                elif peer.poll_status != 200:
                    self.answer(peer.poll_status, {"status": peer.poll_status,
                                                   "detail": "gone"})
                else:
                    body = {"id": peer.lcmcoord_id, "coordinationResult": peer.result}
                    if peer.result == "ABORT":
                        body["error"] = {"status": 409, "detail": HOSTILE_DETAIL}
                    self.answer(200, body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def run_bytes(*args, stdin=b"", timeout=60):
    """`lcmcoord ARGS...` with stdout and stderr kept as bytes."""
    if isinstance(stdin, str):
        stdin = stdin.encode()
    return subprocess.run([*harness.WRAPPER, harness.LCMCOORD_BIN, *args], input=stdin,
                          capture_output=True, timeout=timeout * harness.TIME_FACTOR)


def params_text(endpoint, **overrides):
    param = vnfc_param(endpoint, **overrides)
    return json.dumps(param)


class OutputTestCase(TempDirTestCase):
    def assertSafe(self, data, what, json_lines=False):
        """Valid UTF-8 with no C0 control but line feeds, no DEL, no C1 control (raw or
        UTF-8), no bidi override, and no line the EM forged."""
        self.assertNotIn(b"\x1b", data, what)
        text = data.decode("utf-8")  # raises on bytes that are not UTF-8
        for ch in text:
            code = ord(ch)
            self.assertFalse(code < 0x20 and ch != "\n", f"{what}: control {code:#x} in {text!r}")
            self.assertFalse(0x7f <= code <= 0x9f, f"{what}: {code:#x} in {text!r}")
            self.assertFalse(0x202a <= code <= 0x202e or code in (0x2028, 0x2029),
                             f"{what}: {code:#x} in {text!r}")
        lines = text.splitlines()
        for i, line in enumerate(lines):
            self.assertFalse(line.startswith("FORGED"), f"{what}: forged line in {text!r}")
            # In JSON format the final reason of a failure stays plain text.
            if json_lines and not (i == len(lines) - 1 and line.startswith("lcmcoord: ")):
                self.assertIsInstance(json.loads(line), dict, line)
        return text

    def assertStderrLines(self, stderr, what):
        """Every stderr line is one of lcmcoord's (text format)."""
        for line in stderr.splitlines():
            self.assertTrue(line.startswith("lcmcoord"), f"{what}: stray line {line!r}")


class EscapesFromTheEM(OutputTestCase):
    def run_script(self, peer, *flags):
        return run_bytes("run", *flags, SCRIPT, stdin=params_text(peer.url, authentication=None))

    def test_log_lines_at_every_verbosity_hold_no_control_sequence(self):
        for flags in ((), ("-v",), ("-vv",)):
            with self.subTest(flags=flags), HostilePeer() as peer:
                done = self.run_script(peer, *flags)
                self.assertEqual(done.returncode, 0, done.stderr)
                stderr = self.assertSafe(done.stderr, f"stderr of run {flags}")
                self.assertStderrLines(stderr, f"run {flags}")
                self.assertSafe(done.stdout, f"stdout of run {flags}")
                if flags:
                    # Still readable: the id is shown, escaped.
                    self.assertIn("abc\\x1b[2J\\u009b31m\\nFORGED line\\r\\u202eevil\\x7f",
                                  stderr)

    def test_json_log_lines_hold_no_control_sequence(self):
        for flags in (("-v",), ("-vv",)):
            with self.subTest(flags=flags), HostilePeer() as peer:
                done = self.run_script(peer, "--log-format", "json", *flags)
                self.assertEqual(done.returncode, 0, done.stderr)
                stderr = self.assertSafe(done.stderr, "json stderr", json_lines=True)
                lines = [json.loads(line) for line in stderr.splitlines()]
                result = [line for line in lines if line.get("event") == "result"]
                self.assertEqual(len(result), 1, stderr)
                for line in lines:
                    for value in line.values():
                        if isinstance(value, str):
                            self.assertSafe(value.encode(), f"decoded field of {line}")

    def test_the_failure_line_quotes_the_em_safely(self):
        with HostilePeer(result="ABORT") as peer:
            done = self.run_script(peer)
        self.assertEqual(done.returncode, 1, done.stderr)
        stderr = self.assertSafe(done.stderr, "stderr of an ABORT")
        line = self.assertOneLine(stderr)
        self.assertTrue(line.startswith("lcmcoord: coordination ABORT: not ready\\x1b]0;title"),
                        line)

    def test_coordinate_prints_a_safe_lcmcoord_and_a_safe_reason(self):
        for result in ("CONTINUE", "ABORT"):
            for flags in ((), ("-v",), ("--log-format", "json", "-v")):
                with self.subTest(result=result, flags=flags), \
                        HostilePeer(result=result) as peer:
                    done = run_bytes("coordinate", "--endpoint", peer.url, "--action",
                                     "prv.test.escapes", *flags)
                    self.assertEqual(done.returncode, 0 if result == "CONTINUE" else 1,
                                     done.stderr)
                    stdout = self.assertSafe(done.stdout, "coordinate's stdout")
                    # The LcmCoord printed is still JSON holding the very same id.
                    self.assertEqual(json.loads(stdout)["id"], HOSTILE_ID)
                    self.assertSafe(done.stderr, "coordinate's stderr",
                                    json_lines="json" in flags)
                    if result == "ABORT" and not flags:
                        self.assertOneLine(done.stderr.decode())


class OneLineOnFailure(OutputTestCase):
    """Without -v, a failure's stderr is its reason alone: the plain-http credentials
    warning (and any other) shows only when the run succeeds, or at once with -v."""

    WARNING = "lcmcoord: warning: credentials are sent to"

    def test_a_refused_coordination_over_plain_http_with_credentials_is_one_line(self):
        with harness.EM("--result", "ABORT") as em:
            done = harness.run_lcmcoord("run", SCRIPT, stdin=params_text(em.url))
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.stderr, "lcmcoord: coordination ABORT: VNFC not ready\n")

    def test_a_failure_before_anything_is_sent_is_one_line(self):
        # Nothing listens there: the transport fails, credentials were never sent.
        done = harness.run_lcmcoord("run", SCRIPT, stdin=params_text("http://127.0.0.1:9"))
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertNotIn("warning", done.stderr)

    def test_without_credentials_the_failure_is_one_line_too(self):
        with harness.EM("--result", "ABORT") as em:
            done = harness.run_lcmcoord("run", SCRIPT,
                                        stdin=params_text(em.url, authentication=None))
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.stderr, "lcmcoord: coordination ABORT: VNFC not ready\n")

    def test_coordinate_failure_over_plain_http_with_credentials_is_one_line(self):
        auth = self.write("auth.json", json.dumps(vnfc_param("x")["authentication"]))
        with harness.EM("--result", "ABORT") as em:
            done = harness.run_lcmcoord("coordinate", "--endpoint", em.url, "--action",
                                        "prv.test.one_line", "--auth", auth)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertTrue(done.stderr.startswith("lcmcoord: coordination "), done.stderr)

    def test_the_warning_still_shows_on_success_and_with_v(self):
        with harness.EM() as em:
            quiet = harness.run_lcmcoord("run", SCRIPT, stdin=params_text(em.url))
        with harness.EM("--result", "ABORT") as em:
            loud = harness.run_lcmcoord("run", "-v", SCRIPT, stdin=params_text(em.url))
        self.assertEqual(quiet.returncode, 0, quiet.stderr)
        self.assertTrue(quiet.stderr.startswith(self.WARNING), quiet.stderr)
        self.assertEqual(loud.returncode, 1, loud.stderr)
        self.assertIn(self.WARNING, loud.stderr)
        self.assertTrue(loud.stderr.endswith("lcmcoord: coordination ABORT: VNFC not ready\n"),
                        loud.stderr)


class Placeholder(OutputTestCase):
    def test_a_misspelt_action_field_sends_nothing_and_names_the_field(self):
        script = self.write("typo.lua", """
local lcmcoord = require "lcmcoord"
local p = ...
local req = p.LcmCoordRequest
req.coordinationActionNam = "prv.tacker_organization.coordination_test"
lcmcoord.create_coordination(p.endpoint, p.authentication, req, p.timeout)
""")
        with harness.EM() as em:
            done = harness.run_lcmcoord("run", script, stdin=params_text(em.url))
            journal = em.journal()
        self.assertEqual(done.returncode, 2, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("coordinationActionName", line)
        self.assertIn("should_be_set_by_script", line)
        self.assertEqual(posts(journal), [])

    def test_coordinate_refuses_the_placeholder_too(self):
        with harness.EM() as em:
            done = harness.run_lcmcoord("coordinate", "--endpoint", em.url, "--action",
                                        "should_be_set_by_script")
            journal = em.journal()
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("coordinationActionName", self.assertOneLine(done.stderr))
        self.assertEqual(posts(journal), [])


class VnfcParameters(OutputTestCase):
    def test_no_authentication_key_means_no_credentials(self):
        with harness.EM() as em:
            param = vnfc_param(em.url)
            del param["authentication"]
            done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(param))
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, "")
        self.assertEqual(len(posts(journal)), 1)
        self.assertNotIn("authorization", {k.lower() for k in posts(journal)[0]["headers"]})

    def test_a_timeout_that_is_not_a_positive_number_is_refused(self):
        with harness.EM() as em:
            base = params_text(em.url)
            for raw in ('"30s"', "0", "-5", "1e300", "1e400", "true", "[30]", "{}"):
                with self.subTest(timeout=raw):
                    stdin = re.sub(r'"timeout": [0-9]+', f'"timeout": {raw}', base)
                    self.assertNotEqual(stdin, base)
                    done = harness.run_lcmcoord("run", SCRIPT, stdin=stdin)
                    self.assertEqual(done.returncode, 2, done.stderr)
                    line = self.assertOneLine(done.stderr)
                    if raw == "1e400":
                        # Beyond a double: refused by the JSON rules, before any field check.
                        self.assertTrue(line.startswith("lcmcoord run: stdin is not valid JSON: a "
                                                        "number out of range"), line)
                        continue
                    self.assertTrue(line.startswith("lcmcoord run: the VNFC parameters' "
                                                    "'timeout' must be a positive number"), line)
            # NaN is not JSON: refused as such, still exit 2 on one line.
            done = harness.run_lcmcoord("run", SCRIPT,
                                        stdin=re.sub(r'"timeout": [0-9]+', '"timeout": NaN', base))
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertOneLine(done.stderr)
            for raw in ("null", "0.5", "30"):
                with self.subTest(timeout=raw):
                    stdin = re.sub(r'"timeout": [0-9]+', f'"timeout": {raw}', base)
                    done = harness.run_lcmcoord("run", SCRIPT, stdin=stdin)
                    self.assertEqual(done.returncode, 0, done.stderr)
            journal = em.journal()
        self.assertEqual(len(posts(journal)), 3)


class OsExit(OutputTestCase):
    def run_exit(self, em, body, *flags):
        script = self.write("exit.lua", """
local lcmcoord = require "lcmcoord"
local p = ...
local req = p.LcmCoordRequest
req.coordinationActionName = "prv.test.exit"
local coord = lcmcoord.create_coordination(p.endpoint, p.authentication, req, p.timeout)
""" + body)
        record = os.path.join(self.tmp, "record.json")
        done = harness.run_lcmcoord("run", "--record", record, *flags, script,
                                    stdin=params_text(em.url, authentication=None))
        with open(record, encoding="utf-8") as f:
            return done, json.load(f)

    def test_the_record_is_written_and_the_status_is_a_documented_one(self):
        cases = [("os.exit(5)", 1), ("os.exit(false)", 1), ("os.exit(true)", 0),
                 ("os.exit(0)", 0), ("os.exit()", 0),
                 # Caught by the script or raised in a coroutine: still the end.
                 ("pcall(os.exit, 3) print('after') while true do end", 1),
                 ("coroutine.wrap(function() os.exit(7) end)() print('after')", 1),
                 ("print(pcall(coroutine.wrap(function() os.exit(7) end))) print('after')", 1)]
        with harness.EM() as em:
            for body, status in cases:
                with self.subTest(body=body):
                    done, record = self.run_exit(em, body)
                    self.assertEqual(done.returncode, status, done.stderr)
                    self.assertNotIn("after", done.stdout)
                    entries = record["lcmCoordinations"]
                    self.assertEqual(len(entries), 1, record)
                    self.assertEqual(entries[0]["coordinationResult"], "CONTINUE")
                    if status == 0:
                        self.assertEqual(done.stderr, "")
                    else:
                        line = self.assertOneLine(done.stderr)
                        self.assertTrue(line.startswith("lcmcoord: the script ended with "
                                                        "os.exit("), line)


class NonUtf8Id(OutputTestCase):
    def test_the_record_keeps_a_coordination_whose_id_is_not_utf8(self):
        record = os.path.join(self.tmp, "record.json")
        # The poll fails (the EM lost it): the coordination still belongs in the record.
        with HostilePeer(segment="%ff%fe", poll_status=404) as peer:
            done = run_bytes("run", "--record", record, SCRIPT,
                             stdin=params_text(peer.url, authentication=None))
        self.assertNotEqual(done.returncode, 0)
        stderr = self.assertSafe(done.stderr, "stderr")
        self.assertEqual(len(stderr.splitlines()), 1, stderr)
        self.assertNotIn("memory", stderr)
        with open(record, encoding="utf-8") as f:
            entries = json.load(f)["lcmCoordinations"]
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0]["id"], "%FF%FE")


# A free() that counts the blocks handed back while they still begin with a given text:
# preloaded into lcmcoord, it tells whether a buffer that held the VNFC parameters (or the
# --auth file) went back to the allocator unwiped. It calls glibc's own __libc_free.
FREE_CHECK_C = r"""
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void __libc_free(void *block);

static unsigned long hits;

void free(void *block)
{
    static const char *prefix;
    static size_t prefix_length;
    if (prefix == NULL) {
        prefix = getenv("FREE_CHECK_PREFIX");
        prefix_length = prefix != NULL ? strlen(prefix) : 0;
        if (prefix == NULL)
            prefix = "";
    }
    if (block != NULL && prefix_length > 0 && malloc_usable_size(block) >= prefix_length &&
        memcmp(block, prefix, prefix_length) == 0)
        hits++;
    __libc_free(block);
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("FREE_CHECK_OUT");
    FILE *out = path != NULL ? fopen(path, "w") : NULL;
    if (out != NULL) {
        fprintf(out, "%lu\n", hits);
        fclose(out);
    }
}
"""

CANARY = "canary-pw-7f3e9a61c2"


class SecretsWiped(OutputTestCase):
    """The buffers the host reads secrets into are wiped before they are freed."""

    def setUp(self):
        super().setUp()
        if os.environ.get("ASAN_OPTIONS") or harness.WRAPPER:
            self.skipTest("a preloaded free() does not mix with sanitizers or valgrind")
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            self.skipTest("no C compiler")
        source = self.write("free_check.c", FREE_CHECK_C)
        self.library = os.path.join(self.tmp, "free_check.so")
        subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", self.library, source],
                       check=True)

    def unwiped(self, prefix, *args, stdin=""):
        out = os.path.join(self.tmp, "hits")
        env = dict(os.environ, LD_PRELOAD=self.library, FREE_CHECK_PREFIX=prefix,
                   FREE_CHECK_OUT=out)
        done = subprocess.run([harness.LCMCOORD_BIN, *args], input=stdin, text=True,
                              capture_output=True, env=env,
                              timeout=60 * harness.TIME_FACTOR)
        with open(out, encoding="ascii") as f:
            return done, int(f.read())

    def test_the_vnfc_parameters_read_from_stdin_are_wiped(self):
        with harness.EM() as em:
            param = vnfc_param(em.url, authentication=None)
            # The secret first, so that only a buffer holding the text from its start
            # matches (a Lua string has a header before its bytes).
            text = json.dumps({"password": CANARY, **param})
            done, hits = self.unwiped(text[:40], "run", SCRIPT, stdin=text)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(hits, 0)

    def test_what_is_typed_in_the_repl_is_wiped(self):
        line = (f'a = lcmcoord.auth.new{{paramsBasic = {{password = "{CANARY}", '
                'userName = "vnfm"}, authType = {"BASIC"}}\n')
        done, hits = self.unwiped(line[:40], "repl", stdin=line + "print(a ~= nil)\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("true", done.stdout)
        self.assertEqual(hits, 0)

if __name__ == "__main__":
    unittest.main()
