"""End-to-end: the messages an operator reads when something is wrong, checked word for
word where the docs quote them: usage errors as one short line pointing at `--help`,
"did you mean" for misspelt subcommands and options, `lcmcoord help [SUBCOMMAND]`,
`--version` naming what does the work, case-insensitive CLI enums and enumerations that
list the accepted values, endpoints shown as given, --sandbox naming what it leaves out,
and TLS failures against real `lcmcoord em` servers with a hint naming the fix.
"""

import json
import re
import unittest

import certs
import harness
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
        self.assertIn("help [SUBCOMMAND]", done.stdout)
        for name in ("run", "coordinate", "repl", "em"):
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


class TlsHints(certs.WithPki, harness.TestCase):
    """Against real servers: `lcmcoord em` with and without --tls-cert."""

    def coordinate(self, url, *extra):
        done = harness.run_lcmcoord("coordinate", "--endpoint", url, "--action", "x", *extra)
        self.assertEqual(done.returncode, 4, done.stderr)
        return self.assertOneLine(done.stderr)

    def test_https_to_a_plain_http_port_says_to_use_http(self):
        with harness.EM() as em:
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

    def test_a_run_script_gets_the_same_hint(self):
        with harness.TlsEM(self.pki) as em:
            done = harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(vnfc_param(em.url)))
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("give that CA with --cacert FILE", self.assertOneLine(done.stderr))


if __name__ == "__main__":
    unittest.main()
