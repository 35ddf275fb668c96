"""End-to-end: the messages an operator reads when something is wrong, checked word for
word where the docs quote them: usage errors as one short line pointing at `--help`,
"did you mean" for misspelt subcommands and options, `lcmcoord help [SUBCOMMAND]`,
`--version` naming what does the work, case-insensitive CLI enums and enumerations that
list the accepted values, endpoints shown as given, --sandbox naming what it leaves out,
and TLS failures against real `lcmcoord em` servers with a hint naming the fix.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import unittest

import certs
import harness
import peers
from test_run_coordination import SCRIPT, vnfc_param


def run_text(text, *args, param=None):
    """`lcmcoord run ARGS SCRIPT` with the script `text` from a temporary file."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "script.lua")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return harness.run_lcmcoord("run", *args, path,
                                    stdin=json.dumps(param if param is not None else {}))


class UsageErrors(harness.TestCase):
    def test_a_usage_error_is_one_short_line_pointing_at_help(self):
        cases = [
            (["run"], "lcmcoord run: no script given (see lcmcoord run --help)"),
            (["run", "--bogus", "x.lua"],
             "lcmcoord run: unknown option '--bogus' (see lcmcoord run --help)"),
            (["run", "x.lua", "y.lua"],
             "lcmcoord run: unexpected argument 'y.lua' (see lcmcoord run --help)"),
            (["repl", "--timeout", "0"],
             "lcmcoord repl: --timeout needs a positive number of seconds, not '0' "
             "(see lcmcoord repl --help)"),
            (["coordinate", "--action", "x"],
             "lcmcoord coordinate: --endpoint is required (see lcmcoord coordinate --help)"),
            (["coordinate", "--endpoint", "http://127.0.0.1:1", "--action", "x", "--input",
              "[1]"],
             "lcmcoord coordinate: --input is not a JSON object "
             "(see lcmcoord coordinate --help)"),
            ([], "lcmcoord: no subcommand given (see lcmcoord --help)"),
        ]
        for args, expected in cases:
            with self.subTest(args=args):
                done = harness.run_lcmcoord(*args, stdin="{}")
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertEqual(self.assertOneLine(done.stderr), expected)
                self.assertNotIn("usage:", done.stderr)

    def test_misspelt_subcommands_and_options_get_the_nearest_real_one(self):
        cases = [
            (["rnu"], "lcmcoord: unknown subcommand 'rnu'; did you mean 'run'? "
                      "(see lcmcoord --help)"),
            (["coordinat"], "lcmcoord: unknown subcommand 'coordinat'; did you mean "
                            "'coordinate'? (see lcmcoord --help)"),
            (["--verison"], "lcmcoord: unknown option '--verison'; did you mean '--version'? "
                            "(see lcmcoord --help)"),
            (["run", "--recrod", "r.json", "x.lua"],
             "lcmcoord run: unknown option '--recrod'; did you mean '--record'? "
             "(see lcmcoord run --help)"),
            (["run", "--sandbx=1", "x.lua"],
             "lcmcoord run: unknown option '--sandbx=1'; did you mean '--sandbox'? "
             "(see lcmcoord run --help)"),
            (["coordinate", "--endpiont", "http://127.0.0.1:1"],
             "lcmcoord coordinate: unknown option '--endpiont'; did you mean '--endpoint'? "
             "(see lcmcoord coordinate --help)"),
            (["repl", "--cacrt", "ca.pem"],
             "lcmcoord repl: unknown option '--cacrt'; did you mean '--cacert'? "
             "(see lcmcoord repl --help)"),
            # Nothing near: no guess.
            (["frobnicate"], "lcmcoord: unknown subcommand 'frobnicate' (see lcmcoord --help)"),
            (["run", "--zzzzzz", "x.lua"],
             "lcmcoord run: unknown option '--zzzzzz' (see lcmcoord run --help)"),
        ]
        for args, expected in cases:
            with self.subTest(args=args):
                done = harness.run_lcmcoord(*args, stdin="{}")
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertEqual(self.assertOneLine(done.stderr), expected)

    def test_help_and_help_of_a_subcommand(self):
        done = harness.run_lcmcoord("help")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, harness.run_lcmcoord("--help").stdout)
        self.assertIn("  help SUBCOMMAND ", done.stdout)
        # Each entry's words start in one column, `help`'s too.
        block = done.stdout.split("Subcommands:\n")[1].split("\n\n")[0].splitlines()
        entries = [line for line in block if re.match(r"  \S", line)]
        self.assertEqual([e.split()[0] for e in entries],
                         ["run", "coordinate", "repl", "check", "params", "em", "serve", "help",
                          "help"])
        columns = {re.match(r"  \S+(?: [A-Z]+)?\s+", e).end() for e in entries}
        self.assertEqual(len(columns), 1, block)
        for name in ("run", "coordinate", "repl", "check", "params", "em", "serve"):
            with self.subTest(subcommand=name):
                done = harness.run_lcmcoord("help", name)
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertEqual(done.stdout, harness.run_lcmcoord(name, "--help").stdout)
                self.assertTrue(done.stdout.startswith(f"usage: lcmcoord {name}"), done.stdout)
        done = harness.run_lcmcoord("help", "rnu")
        self.assertEqual(done.returncode, 2)
        self.assertEqual(self.assertOneLine(done.stderr),
                         "lcmcoord: unknown subcommand 'rnu'; did you mean 'run'? "
                         "(see lcmcoord --help)")

    def test_version_names_libcurl_the_tls_library_and_lua(self):
        done = harness.run_lcmcoord("--version")
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        self.assertRegex(lines[0], r"^lcmcoord \d+\.\d+\.\d+$")
        self.assertRegex(lines[1], r"^libcurl \d+\.\d+\.\d+, TLS OpenSSL/\d+\.\d+\.\d+\S*, "
                                   r"Lua 5\.4\.\d+$")


class Values(harness.TestCase):
    def test_operation_is_case_insensitive_at_the_command_line(self):
        with harness.EM() as em:
            done = harness.run_lcmcoord("coordinate", "--endpoint", em.url, "--action", "x",
                                        "--operation", "heal")
            self.assertEqual(done.returncode, 0, done.stderr)
            posted = [json.loads(e["body"]) for e in em.journal()
                      if e["method"] == "POST" and e["path"].endswith("/coordinations")]
        self.assertEqual([p["lcmOperationType"] for p in posted], ["HEAL"])

    def test_a_bad_enumeration_value_lists_the_accepted_ones(self):
        done = harness.run_lcmcoord("coordinate", "--endpoint", "http://127.0.0.1:1",
                                    "--action", "x", "--operation", "REPAIR")
        self.assertEqual(done.returncode, 2, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("'REPAIR' is not a LcmOperationForCoordType (one of INSTANTIATE, SCALE, "
                      "SCALE_TO_LEVEL, CHANGE_FLAVOUR, TERMINATE, HEAL, OPERATE, CHANGE_EXT_CONN, "
                      "MODIFY_INFO, CREATE_SNAPSHOT, REVERT_TO_SNAPSHOT, CHANGE_VNFPKG)", line)
        done = harness.run_lcmcoord("run", "--log-format", "yaml", SCRIPT, stdin="{}")
        self.assertEqual(done.returncode, 2)
        self.assertEqual(self.assertOneLine(done.stderr),
                         "lcmcoord run: --log-format needs text or json, not 'yaml' "
                         "(see lcmcoord run --help)")

    def test_an_endpoint_without_scheme_is_shown_and_named(self):
        done = harness.run_lcmcoord("coordinate", "--endpoint", "127.0.0.1:6789",
                                    "--action", "x")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("endpoint '127.0.0.1:6789' is missing its scheme (http:// or https://)",
                      self.assertOneLine(done.stderr))
        param = vnfc_param("em.example:6789")
        done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(param))
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("endpoint 'em.example:6789' is missing its scheme",
                      self.assertOneLine(done.stderr))

    def test_an_endpoint_with_credentials_is_never_shown(self):
        done = harness.run_lcmcoord("coordinate", "--endpoint",
                                    "ftp://admin:Hunter2-Secret@em.example", "--action", "x")
        self.assertEqual(done.returncode, 2, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertIn("must be an http:// or https:// URL", line)
        self.assertNotIn("Hunter2-Secret", line)

    def test_sandbox_names_what_is_unavailable(self):
        for name, code in (("io", "io.open('/etc/passwd')"), ("os", "os.exit(0)"),
                           ("package", "print(package.path)"), ("debug", "debug.traceback()"),
                           ("dofile", "dofile('x.lua')")):
            with self.subTest(name=name):
                done = run_text(code + "\n", "--sandbox", "--any-params")
                self.assertEqual(done.returncode, 1, done.stderr)
                line = self.assertOneLine(done.stderr)
                self.assertIn(f"{name} is not available under --sandbox", line)
        done = run_text("print(undefined_name == nil)\n", "--sandbox", "--any-params")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "true\n")
        done = run_text("print(io ~= nil)\n", "--any-params")
        self.assertEqual(done.stdout, "true\n")


class JsonPlaces(harness.TestCase):
    """Lines and columns of a JSON error count from 1, as a person does: an error found at a
    line break is never put at a column 0 (jansson's count after a break)."""

    def test_stdin_ending_after_a_line_break_is_at_column_1_of_the_next_line(self):
        for text, place in (("{\n", "line 2, column 1"), ('{"a": 1}\n\n2', "line 3, column 1"),
                            ('{"a":\n}', "line 2, column 1"), ('{"a": }', "line 1, column 7")):
            with self.subTest(text=text):
                done = harness.run_lcmcoord("run", SCRIPT, stdin=text)
                self.assertEqual(done.returncode, 2, done.stderr)
                line = self.assertOneLine(done.stderr)
                self.assertTrue(line.endswith(f" at {place}"), line)
                self.assertNotIn("column 0", line)

    def test_an_authentication_file_gets_the_same_places(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "auth.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write('{"authType": ["BASIC"],\n')
            done = harness.run_lcmcoord("coordinate", "--endpoint", "http://127.0.0.1:1",
                                        "--action", "x", "--auth", path)
        self.assertEqual(done.returncode, 2, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertTrue(line.endswith("at line 2, column 1"), line)


class TlsHints(certs.WithPki, harness.TestCase):
    """Against real servers: `lcmcoord em` with and without --tls-cert."""

    def coordinate(self, url, *extra):
        done = harness.run_lcmcoord("coordinate", "--endpoint", url, "--action", "x", *extra)
        self.assertEqual(done.returncode, 4, done.stderr)
        return self.assertOneLine(done.stderr)

    def test_https_to_a_plain_http_port_says_to_use_http(self):
        # A server that answers a ClientHello in plain HTTP at once (a plain `lcmcoord em`
        # may also just close on it, which says less).
        with harness.EM("--chaos", "tls-plain-http") as em:
            line = self.coordinate(em.url.replace("http://", "https://"))
        self.assertTrue(line.startswith("lcmcoord: TLS failure talking to the EM: "), line)
        self.assertTrue(line.endswith(
            "; hint: that port answers without TLS: if the EM serves plain HTTP there, the "
            "endpoint must start with http://"), line)

    def test_http_to_an_https_port_says_to_use_https(self):
        with harness.TlsEM(self.pki) as em:
            line = self.coordinate(em.url.replace("https://", "http://"))
        self.assertTrue(line.endswith(
            "; hint: if that port serves HTTPS, the endpoint must start with https://"), line)

    def test_an_unknown_issuer_without_cacert_says_to_give_it(self):
        with harness.TlsEM(self.pki) as em:
            line = self.coordinate(em.url)
            self.assertIn("unable to get local issuer certificate", line)
            self.assertTrue(line.endswith(
                "; hint: this host does not trust the CA that signed the certificate: give that "
                "CA with --cacert FILE (or LCMCOORD_CACERT, or tls.cacert in the configuration "
                "or a Lua client)"), line)
            # Given, but the wrong one: the hint says so instead.
            line = self.coordinate(em.url, "--cacert", self.pki.other_ca_cert)
            self.assertTrue(line.endswith(
                "; hint: the CA file or directory given does not hold the CA that signed this "
                "certificate"), line)
            # The right one: no failure at all.
            done = harness.run_lcmcoord("coordinate", "--endpoint", em.url, "--action", "x",
                                        "--cacert", self.pki.ca_cert)
            self.assertEqual(done.returncode, 0, done.stderr)

    HANDSHAKE_CUT = ("; hint: the connection was closed during the TLS handshake: check that "
                     "the endpoint's port serves HTTPS (not another service) and that nothing "
                     "on the path (a firewall, a load balancer) cuts TLS")

    def test_a_handshake_cut_by_the_peer_names_the_likely_cause(self):
        # A peer that reads the ClientHello and closes (OpenSSL: SSL_ERROR_SYSCALL) or
        # resets the connection: no TLS alert, so no TLS server said no.
        for reset, said in ((False, "SSL_ERROR_SYSCALL"), (True, "Connection reset by peer")):
            with self.subTest(reset=reset), peers.HandshakeDropper(reset=reset) as peer:
                line = self.coordinate(peer.url)
                self.assertTrue(line.startswith("lcmcoord: TLS failure talking to the EM: "),
                                line)
                self.assertIn(said, line)
                self.assertTrue(line.endswith(self.HANDSHAKE_CUT), line)
                self.assertEqual(peer.accepted, 1)
        # A peer that refuses with a TLS alert (a client certificate required) is not it.
        with harness.TlsEM(self.pki, "--client-ca", self.pki.ca_cert) as em:
            line = self.coordinate(em.url, "--cacert", self.pki.ca_cert)
        self.assertNotIn("closed during the TLS handshake", line)

    def test_a_run_script_gets_the_same_hint(self):
        with harness.TlsEM(self.pki) as em:
            done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(vnfc_param(em.url)))
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("give that CA with --cacert FILE", self.assertOneLine(done.stderr))


GUIDE = os.path.join(harness.SOURCE_DIR, "docs", "operator-guide.md")


def troubleshooting_messages():
    """The messages quoted in the first column of the operator guide's "Troubleshooting by
    message" table, in order."""
    with open(GUIDE, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## 7. Troubleshooting by message", 1)[1].split("\n## ", 1)[0]
    messages = []
    for line in section.splitlines():
        match = re.match(r"^\| `([^`]+)`", line)
        if match:
            messages.append(match.group(1))
    return messages


def message_pattern(quoted):
    """A quoted message as a regular expression over one stderr line: `...` stands for any
    text, and X, Y, N, L, C and FILE for one word the program fills in."""
    parts = re.split(r"(\.\.\.|\b(?:X|Y|N|L|C|FILE)\b)", quoted)
    out = []
    for part in parts:
        if part == "...":
            out.append(".*")
        elif part in ("X", "Y", "N", "L", "C", "FILE"):
            out.append(r"[^\s']+?")
        else:
            out.append(re.escape(part))
    return "^" + "".join(out) + "$"


class TroubleshootingTable(certs.WithPki, harness.TestCase):
    """Every message the operator guide's troubleshooting table quotes is produced here by
    the program itself, and must match what it prints, word for word."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def script(self, text, name="X.lua"):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_sample(self, em_args=(), stdin=None, extra=(), script=SCRIPT, tls=False, **over):
        if stdin is None:
            def go(url):
                return harness.run_lcmcoord("run", *extra, script,
                                            stdin=json.dumps(vnfc_param(url, **over)))
            if tls:
                with harness.TlsEM(self.pki, *em_args) as em:
                    return go(em.url)
            with harness.EM(*em_args) as em:
                return go(em.url)
        return harness.run_lcmcoord("run", *extra, script, stdin=stdin)

    def plain_and_tls(self, scheme):
        """The sample script with `scheme` against a server speaking the other one."""
        if scheme == "https://":
            with harness.EM("--chaos", "tls-plain-http") as em:
                url = em.url.replace("http://", scheme)
                return harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(vnfc_param(url)))
        with harness.TlsEM(self.pki) as em:
            url = em.url.replace("https://", scheme)
            return harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(vnfc_param(url)))

    def sigterm_while_waiting(self, *em_args):
        with harness.EM(*em_args) as em:
            child = subprocess.Popen([*harness.WRAPPER, harness.LCMCOORD_BIN, "run", SCRIPT],
                                     stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            child.stdin.write(json.dumps(vnfc_param(em.url)))
            child.stdin.close()
            em.wait_journal(1, timeout=20 * harness.TIME_FACTOR)
            child.send_signal(signal.SIGTERM)
            err = child.stderr.read()
            child.wait(timeout=60 * harness.TIME_FACTOR)
        return subprocess.CompletedProcess(child.args, child.returncode, "", err)

    def handshake_cut(self):
        with peers.HandshakeDropper(reset=False) as peer:
            return harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(vnfc_param(peer.url)))

    def other_coordination_polled(self):
        """An EM (a Python peer) that accepts c-1 and answers its poll with c-2's LcmCoord."""
        with peers.CoordinationPeer(on_get=lambda h: h.answer(200, peers.lcmcoord("c-2")),
                                    retry_after=0) as em:
            return harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(vnfc_param(em.url)))

    def reproducers(self):
        """Quoted message -> a function running the program so that it prints it."""
        no_request = vnfc_param("http://127.0.0.1:1")
        del no_request["LcmCoordRequest"]
        bad_request = vnfc_param("http://127.0.0.1:1")
        del bad_request["LcmCoordRequest"]["vnfInstanceId"]
        no_basic = vnfc_param("http://127.0.0.1:1")
        del no_basic["authentication"]["paramsBasic"]
        binary = os.path.join(self.tmp, "X.luac")
        return {
            "lcmcoord run: stdin is empty (expected ...)":
                lambda: self.run_sample(stdin=""),
            "lcmcoord run: stdin is not valid JSON: invalid JSON at line L, column C":
                lambda: self.run_sample(stdin='{"a": }'),
            "lcmcoord run: stdin is not a JSON object":
                lambda: self.run_sample(stdin="[1]"),
            "lcmcoord run: cannot open X.lua: No such file or directory":
                lambda: harness.run_lcmcoord("run", os.path.join(self.tmp, "X.lua"),
                                             stdin="{}"),
            "lcmcoord run: X.lua:12: unexpected symbol near ...":
                lambda: self.run_sample(stdin="{}", script=self.script("\n" * 11 + "x = = 1\n")),
            "lcmcoord run: attempt to load a binary chunk (mode is 't')":
                lambda: (subprocess.run(["luac5.4", "-o", binary, self.script("return 1\n")],
                                        check=True),
                         self.run_sample(stdin="{}", script=binary))[1],
            "lcmcoord: X.lua:20: ...":
                lambda: self.run_sample(stdin="{}", extra=("--any-params",),
                                        script=self.script("\n" * 19 + "error('boom')\n")),
            "lcmcoord run: the VNFC parameters have no 'LcmCoordRequest'":
                lambda: self.run_sample(stdin=json.dumps(no_request)),
            "lcmcoord: authentication.paramsBasic is missing (the authType needs it)":
                lambda: self.run_sample(stdin=json.dumps(no_basic)),
            "lcmcoord run: the VNFC parameters' 'authentication' must be an object":
                lambda: self.run_sample(stdin=json.dumps(
                    vnfc_param("http://127.0.0.1:1", authentication="x"))),
            "lcmcoord: the script ran past its deadline of N s":
                lambda: self.run_sample(stdin="{}", extra=("--any-params", "--script-timeout",
                                                            "1"),
                                        script=self.script("while true do end\n")),
            "lcmcoord: invalid LcmCoordRequest: vnfInstanceId is missing":
                lambda: self.run_sample(stdin=json.dumps(bad_request)),
            "lcmcoord: coordination ABORT: VNFC not ready":
                lambda: self.run_sample(("--result", "ABORT")),
            "lcmcoord: coordination CANCELLED":
                lambda: self.run_sample(("--result", "CANCELLED")),
            "lcmcoord: EM answered 409 Conflict: ... (POST /lcmcoord/v1/coordinations)":
                lambda: self.run_sample(("--chaos", "problem-json-params")),
            "lcmcoord: EM answered 502 Bad Gateway: text/html; charset=iso-8859-1 body of N bytes "
            "(...)":
                lambda: self.run_sample(("--chaos", "html-error")),
            "lcmcoord: EM answered 401 Unauthorized: ...":
                lambda: self.run_sample(("--basic", "tacker:other")),
            "lcmcoord: EM answered 202 Accepted without a Location header, ...":
                lambda: self.run_sample(("--mode", "async", "--location", "none")),
            "lcmcoord: EM answered 201 Created but ...":
                lambda: self.run_sample(("--chaos", "no-result-201")),
            "lcmcoord: cannot reach the EM: ... Couldn't connect to server ...":
                lambda: harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(
                    vnfc_param("http://127.0.0.1:1", timeout=2))),
            "lcmcoord: TLS failure talking to the EM: ...":
                lambda: self.run_sample(tls=True),
            "lcmcoord: TLS failure talking to the EM: ... (POST ...); hint: this host does not "
            "trust the CA that signed the certificate: give that CA with --cacert FILE (or "
            "LCMCOORD_CACERT, or tls.cacert in the configuration or a Lua client)":
                lambda: self.run_sample(tls=True),
            "lcmcoord: TLS failure talking to the EM: ... (POST ...); hint: that port answers "
            "without TLS: if the EM serves plain HTTP there, the endpoint must start with "
            "http://":
                lambda: self.plain_and_tls("https://"),
            "lcmcoord: TLS failure talking to the EM: ... (POST ...); hint: the connection was "
            "closed during the TLS handshake: check that the endpoint's port serves HTTPS (not "
            "another service) and that nothing on the path (a firewall, a load balancer) cuts "
            "TLS":
                lambda: self.handshake_cut(),
            "lcmcoord: the EM closed the connection without answering; it may have started the "
            "coordination, which is not sent again (POST ...); hint: if that port serves HTTPS, "
            "the endpoint must start with https://":
                lambda: self.run_sample(("--chaos", "empty-reply")),
            "lcmcoord coordinate: endpoint 'X' is missing its scheme (http:// or https://)":
                lambda: harness.run_lcmcoord("coordinate", "--endpoint", "127.0.0.1:6789",
                                             "--action", "x"),
            "lcmcoord: cannot read the CA file '...'":
                lambda: self.run_sample(extra=("--cacert", "/nonexistent/ca.pem")),
            "lcmcoord: deadline exceeded: EM busy (503) and asked to wait 600 s, but only 30 s "
            "were left":
                lambda: self.run_sample(("--rejects", "1", "--retry-after", "600"), timeout=30),
            "lcmcoord: deadline exceeded: the coordination was still in progress after N polls":
                lambda: self.run_sample(("--chaos", "202-forever"), timeout=2),
            "lcmcoord: interrupted by SIGTERM":
                lambda: self.sigterm_while_waiting("--rejects", "1", "--retry-after", "10"),
            "lcmcoord: interrupted by SIGTERM; the EM may hold a coordination that could not be "
            "cancelled (...)":
                lambda: self.sigterm_while_waiting("--delay", "60000"),
            "lcmcoord: deadline exceeded: the EM gave no answer to POST ... in time; the EM was "
            "asked to cancel":
                # The EM answers 202 one second after the deadline: within the 5 s grace.
                lambda: self.run_sample(("--mode", "async", "--delay", "3000"), timeout=2),
            "lcmcoord: deadline exceeded: the EM gave no answer to POST ... in time; the EM may "
            "hold a coordination that could not be cancelled (...)":
                lambda: self.run_sample(("--delay", "60000"), timeout=2),
            "lcmcoord: EM answered 200 OK with the LcmCoord of coordination 'X', not of 'Y' that "
            "was polled (GET ...)":
                lambda: self.other_coordination_polled(),
            "lcmcoord run: cannot write the record to FILE: ...":
                lambda: self.run_sample(extra=("--record", "/nonexistent/dir/FILE")),
        }

    def test_every_quoted_message_is_what_the_program_prints(self):
        quoted = troubleshooting_messages()
        self.assertGreater(len(quoted), 20)
        reproducers = self.reproducers()
        unknown = [q for q in quoted if q not in reproducers]
        self.assertEqual(unknown, [], "quoted in the guide with nothing here producing them")
        for message in quoted:
            with self.subTest(message=message):
                done = reproducers[message]()
                self.assertNotEqual(done.returncode, 0)
                line = self.assertOneLine(done.stderr)
                self.assertRegex(line, message_pattern(message))


class Repl(harness.TestCase):
    def test_trace_shows_the_exchange_without_libcurls_own_notes(self):
        lines = [":trace on", 'a = em:coordinate(lcmcoord.request{action = "x"})',
                 'b = em:coordinate(lcmcoord.request{action = "y"})', ":trace off"]
        with harness.EM() as em:
            done = harness.run_lcmcoord("repl", "--endpoint", em.url,
                                        stdin="\n".join(lines) + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        trace = done.stderr.splitlines()
        self.assertEqual([t for t in trace if t.startswith("> POST")],
                         ["> POST /lcmcoord/v1/coordinations HTTP/1.1"] * 2)
        self.assertEqual(len([t for t in trace if t == "< HTTP/1.1 201 Created"]), 2)
        notes = [t for t in trace if t.startswith("*")]
        self.assertTrue(notes, "the connection made is still shown")
        for note in notes:
            self.assertRegex(note, r"^\* (Connected to |Establish HTTP proxy tunnel to |"
                                   r"Proxy auth using |SSL connection using |"
                                   r"\d{3} [A-Za-z ]+ in \d+ ms$|wait )")

    def test_trace_shows_each_answers_time_and_each_wait_with_its_reason(self):
        lines = [":trace on", 'a = em:coordinate(lcmcoord.request{action = "x"})',
                 "r = em:api_versions()", ":trace off",
                 'b = em:coordinate(lcmcoord.request{action = "y"})']
        with harness.EM("--rejects", "1", "--retry-after", "1", "--mode", "async") as em:
            done = harness.run_lcmcoord("repl", "--endpoint", em.url, "--timeout", "600",
                                        stdin="\n".join(lines) + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        notes = [re.sub(r"\d+ ms$", "N ms", re.sub(r"\d+ s left$", "N s left", t))
                 for t in done.stderr.splitlines()
                 if t.startswith("* ") and not t.startswith("* Connected to ")]
        # In order: the 503 and the wait it asked for, the 202 and the wait before the first
        # poll, the poll's 202 and the next wait, the 200; then api_versions' 200. Nothing
        # after :trace off.
        self.assertEqual(notes, [
            "* 503 Service Unavailable in N ms",
            "* wait 1.0 s (busy, 503), then POST, N s left",
            "* 202 Accepted in N ms",
            "* wait 1.0 s (accepted, 202), then GET, N s left",
            "* 202 Accepted in N ms",
            "* wait 1.0 s (in_progress, 202), then GET, N s left",
            "* 200 OK in N ms",
            "* 200 OK in N ms",
        ], done.stderr)
        # The time is the exchange's own: the answers here come in well under a second.
        for took in re.findall(r"in (\d+) ms$", done.stderr, re.M):
            self.assertLess(int(took), 1000 * harness.TIME_FACTOR)
        self.assertNotRegex(done.stderr, r"Found bundle|Can not multiplex|left intact")

    def test_trace_shows_waits_for_an_em_that_does_not_answer(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        lines = [":trace on", 'a = em:coordinate(lcmcoord.request{action = "x"})']
        done = harness.run_lcmcoord("repl", "--endpoint", f"http://127.0.0.1:{port}",
                                    "--timeout", "3", stdin="\n".join(lines) + "\n",
                                    env=dict(os.environ, LCMCOORD_DEFAULT_INTERVAL="1"))
        self.assertRegex(done.stderr, r"(?m)^\* wait 1\.0 s \(transport, attempt 1\), then POST, "
                                      r"\d+\.\d s left$")
        self.assertRegex(done.stderr, r"(?m)^\* wait 1\.0 s \(transport, attempt 2\), then POST")

    def test_empty_lists_show_as_in_the_record(self):
        with harness.EM() as em:
            done = harness.run_lcmcoord(
                "repl", "--endpoint", em.url,
                stdin='c = em:coordinate(lcmcoord.request{action = "x"})\n'
                      "em:record().rejectedLcmCoordinations\nlcmcoord.json.decode('[]')\n"
                      "lcmcoord.json.decode('{\"a\": []}')\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, '[]\n[]\n{\n  "a": []\n}\n')

    def test_a_replayed_assert_prints_nothing(self):
        with harness.EM() as em:
            done = harness.run_lcmcoord(
                "repl", "--endpoint", em.url,
                stdin='c = em:coordinate(lcmcoord.request{action = "x"})\nassert(c)\n'
                      '  assert(c.id, "has an id")\nassertive = 1\nassertive\nc.outputParams\n')
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "1\n{}\n")


class ReplDocs(harness.TestCase):
    def test_an_unreadable_ca_file_exits_2_as_repl_md_says(self):
        for sub in ("repl", "coordinate"):
            with self.subTest(subcommand=sub):
                done = harness.run_lcmcoord(sub, "--endpoint", "http://127.0.0.1:1",
                                            "--action", "x", "--cacert", "/nonexistent/ca.pem",
                                            stdin="") if sub == "coordinate" else \
                    harness.run_lcmcoord(sub, "--endpoint", "http://127.0.0.1:1", "--cacert",
                                         "/nonexistent/ca.pem", stdin="")
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertEqual(self.assertOneLine(done.stderr),
                                 f"lcmcoord {sub}: cannot use the endpoint http://127.0.0.1:1: "
                                 "cannot read the CA file '/nonexistent/ca.pem'")

    def test_continue_writes_nothing_on_stderr(self):
        with harness.EM() as em:
            done = harness.run_lcmcoord("coordinate", "--endpoint", em.url, "--action", "x")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, "")
        self.assertEqual(json.loads(done.stdout)["coordinationResult"], "CONTINUE")


class BashCompletion(harness.TestCase):
    COMPLETION = os.path.join(harness.SOURCE_DIR, "scripts", "completion", "lcmcoord.bash")

    def complete(self, *words):
        quoted = " ".join(f"'{w}'" for w in (harness.LCMCOORD_BIN, *words))
        done = subprocess.run(["bash", "-c", f"source '{self.COMPLETION}'; COMP_WORDS=({quoted}); "
                               f"COMP_CWORD={len(words)}; _lcmcoord; echo ${{COMPREPLY[@]}}"],
                              capture_output=True, text=True, timeout=60 * harness.TIME_FACTOR)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.split()

    def test_chaos_names_and_help_subcommands_are_offered(self):
        listed = harness.run_lcmcoord("em", "--chaos", "list").stdout.split("\n")
        names = sorted(line.split()[0] for line in listed if line.strip())
        self.assertIn("empty-reply", names)
        self.assertEqual(sorted(self.complete("em", "--chaos", "")), names)
        self.assertEqual(self.complete("em", "--chaos", "tls-p"), ["tls-plain-http"])
        self.assertEqual(self.complete("help", "co"), ["coordinate"])
        self.assertEqual(self.complete("help", "p"), ["params"])
        self.assertIn("help", self.complete(""))

    def help_options(self, sub):
        text = harness.run_lcmcoord(sub, "--help").stdout
        return sorted(set(re.findall(r"(?:^|[ ,\[(])(--?[a-zA-Z][a-zA-Z0-9-]*)", text, re.M)))

    def test_check_and_params_and_their_options_are_offered(self):
        self.assertIn("check", self.complete(""))
        self.assertIn("params", self.complete(""))
        for sub, expected in (("check", ["--offline", "--script-timeout", "--timeout"]),
                              ("params", ["--new", "--old", "--vdu", "--vnfc", "--operation"])):
            with self.subTest(sub=sub):
                offered = self.complete(sub, "--")
                for option in expected:
                    self.assertIn(option, offered)
                self.assertEqual(sorted(self.complete(sub, "-")), self.help_options(sub))
        self.assertEqual(self.complete("params", "--operation", "HE"), ["HEAL"])
        self.assertEqual(self.complete("check", "--log-format", "j"), ["json"])

    def test_the_list_used_without_the_program_is_its_help(self):
        # When the program cannot be run the completion falls back to a list of its own:
        # that list must be what each subcommand's --help names.
        for sub in ("run", "coordinate", "repl", "check", "params", "em", "serve"):
            with self.subTest(sub=sub):
                done = subprocess.run(
                    ["bash", "-c", f"source '{self.COMPLETION}'; "
                     f"COMP_WORDS=(/nonexistent/lcmcoord {sub} -); COMP_CWORD=2; _lcmcoord; "
                     "echo ${COMPREPLY[@]}"],
                    capture_output=True, text=True, timeout=60 * harness.TIME_FACTOR)
                self.assertEqual(sorted(done.stdout.split()), self.help_options(sub))

    def test_zsh_completion_names_every_option_of_each_subcommand(self):
        zsh = os.path.join(harness.SOURCE_DIR, "scripts", "completion", "_lcmcoord")
        with open(zsh, encoding="utf-8") as f:
            text = f.read()
        shared = re.findall(r"'(--[a-z-]+)[=\[]", text.split("_lcmcoord_run()")[0])
        for sub in ("run", "coordinate", "repl", "check", "params", "em", "serve"):
            with self.subTest(sub=sub):
                body = text.split(f"_lcmcoord_{sub}() {{")[1].split("\n}")[0]
                named = set(re.findall(r"(--?[a-zA-Z][a-zA-Z0-9-]*)[=\[',}]", body))
                if "$tls_opts" in body or "$config_opts" in body:
                    named |= set(shared)
                if "-v" in named:
                    named.add("-vv")  # -v given twice
                self.assertEqual(sorted(set(self.help_options(sub)) - named), [])
        self.assertIn('check\\:"', text)
        self.assertIn('params\\:"', text)
        self.assertIn('serve\\:"', text)


class AuthenticationExamples(certs.WithPki, harness.TestCase):
    def test_the_guides_authentication_examples_are_accepted(self):
        with open(GUIDE, encoding="utf-8") as f:
            text = f.read()
        section = text.split("### The `authentication` object", 1)[1].split("\n## ", 1)[0]
        examples = re.findall(r"```json\n(.*?)```", section, re.S)
        self.assertEqual(len(examples), 3)
        thumbprint = self.pki.thumbprint(self.pki.client_cert)
        with tempfile.TemporaryDirectory() as tmp:
            for k, example in enumerate(examples):
                with self.subTest(example=k):
                    path = os.path.join(tmp, f"auth{k}.json")
                    with open(path, "w") as f:
                        f.write(example.replace("THUMBPRINT", thumbprint))
                    done = harness.run_lcmcoord(
                        "repl", "--endpoint", "https://em.example:6789", "--auth", path,
                        "--cert", self.pki.client_cert, "--key", self.pki.client_key, stdin="")
                    self.assertEqual(done.returncode, 0, done.stderr)
                    self.assertEqual(done.stderr, "")


class DocsUseInstalledFiles(harness.TestCase):
    def test_every_scenario_the_docs_run_is_installed(self):
        # scripts/ is installed (share/lcmcoord/scripts); tests/ is not: an example an
        # operator copies must not need a file only a source tree has.
        docs = os.path.join(harness.SOURCE_DIR, "docs")
        for name in sorted(os.listdir(docs)):
            if not name.endswith(".md"):
                continue
            with open(os.path.join(docs, name), encoding="utf-8") as f:
                text = f.read()
            for path in re.findall(r"--scenario ([\w./-]+\.lua)", text):
                with self.subTest(page=name, path=path):
                    self.assertFalse(path.startswith("tests/"), path)


class Demo(harness.TestCase):
    def test_demo_shows_the_commands_it_really_runs(self):
        import shlex
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "argv.log")
            wrapper = os.path.join(tmp, "lcmcoord")
            with open(wrapper, "w") as f:
                # One line per run: the arguments, NUL-separated, then the real program.
                f.write(f"#!/bin/sh\nprintf '%s\\0' \"$@\" >> '{log}'\necho >> '{log}'\n"
                        f"exec {shlex.quote(os.path.abspath(harness.LCMCOORD_BIN))} \"$@\"\n")
            os.chmod(wrapper, 0o755)
            done = subprocess.run(["bash", os.path.join(harness.SOURCE_DIR, "scripts", "demo.sh")],
                                  env={**os.environ, "LCMCOORD_BIN": wrapper},
                                  capture_output=True, text=True, timeout=120 * harness.TIME_FACTOR)
            self.assertEqual(done.returncode, 0, done.stderr)
            with open(log) as f:
                ran = [line.rstrip("\0").split("\0") for line in f.read().split("\n") if line]
        shown = []
        for line in done.stdout.splitlines():
            if line.startswith("$ lcmcoord "):
                words = shlex.split(line[2:].split(" < ")[0].rstrip(" &"))
                shown.append(words[1:])
        self.assertEqual(len(shown), 6)
        self.assertEqual(shown, ran)


class DocumentedOutputs(harness.TestCase):
    def test_a_coordination_without_an_id_is_recorded_with_id_null(self):
        with open(GUIDE, encoding="utf-8") as f:
            self.assertIn('with `"id": null` and no `coordinationResult`', f.read())
        with tempfile.TemporaryDirectory() as tmp:
            record = os.path.join(tmp, "record.json")
            with harness.EM("--chaos", "empty-reply") as em:
                done = harness.run_lcmcoord("run", "--record", record, SCRIPT,
                                            stdin=json.dumps(vnfc_param(em.url)))
            self.assertEqual(done.returncode, 4, done.stderr)
            with open(record) as f:
                (entry,) = json.load(f)["lcmCoordinations"]
        self.assertIsNone(entry["id"])
        self.assertNotIn("coordinationResult", entry)

    def test_a_scenario_print_is_one_prefixed_line_as_em_md_says(self):
        with open(os.path.join(harness.SOURCE_DIR, "docs", "em.md"), encoding="utf-8") as f:
            self.assertIn("`scenario: hello\\t/lcmcoord/v1/coordinations`", f.read())
        with tempfile.TemporaryDirectory() as tmp:
            scenario = os.path.join(tmp, "s.lua")
            with open(scenario, "w") as f:
                f.write('return function(req) print("hello", req.path) end\n')
            with harness.EM("--scenario", scenario) as em:
                done = harness.run_lcmcoord("coordinate", "--endpoint", em.url, "--action", "x")
                self.assertEqual(done.returncode, 0, done.stderr)
                harness.wait_for(lambda: "scenario: " in em.stderr_text(),
                                 what="the scenario's line")
                lines = em.stderr_text().splitlines()
        self.assertIn("scenario: hello\t/lcmcoord/v1/coordinations", lines)


class RunOptionsTable(harness.TestCase):
    def test_the_guide_lists_every_option_of_run_help_and_no_other(self):
        with open(GUIDE, encoding="utf-8") as f:
            text = f.read()
        table = text.split("Options of `lcmcoord run`:", 1)[1].split("\n\n", 2)[1]
        in_guide = set(re.findall(r"`(--[a-z-]+)", table))
        done = harness.run_lcmcoord("run", "--help")
        in_help = set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", done.stdout, re.M))
        usage = done.stdout.splitlines()[0] + done.stdout.split("\n\n", 1)[0]
        self.assertEqual(in_guide, in_help)
        for option in in_help - {"--help", "--verbose"}:
            self.assertIn(option, usage, "missing from run's usage line")


if __name__ == "__main__":
    unittest.main()
