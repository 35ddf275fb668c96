"""End-to-end tests of lcmcoord's configuration (the file, the environment and the flags,
strongest last) and of the JSON log lines: `--print-config` shows each effective value and
where it came from with the key passphrase redacted; a bad file stops the program with
`file:line: message` and exit 2; the file's TLS files and timing defaults reach the clients
of a script that gives none; `--log-format json` turns every log line of run, coordinate and
em into one JSON object.
"""

import json
import os
import re
import tempfile
import time

import certs
import harness
from harness import EM, TlsEM, run_lcmcoord

SAMPLE = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua")
PRINTED = re.compile(r"^(\S+) = (.*?)  # (.*)$")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECRET = "correct-horse-battery"


def printed(stdout):
    """{name: (value, origin)} from --print-config output."""
    values = {}
    for line in stdout.splitlines():
        match = PRINTED.match(line)
        if match:
            values[match.group(1)] = (match.group(2), match.group(3))
    return values


def vnfc_param(endpoint, **overrides):
    with open(os.path.join(harness.SOURCE_DIR, "scripts", "examples", "vnfc_param.json")) as f:
        param = json.load(f)
    param["endpoint"] = endpoint
    param["authentication"] = None
    param.update(overrides)
    return param


class ConfigTestCase(harness.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory()
        self.addCleanup(self._dir.cleanup)
        # No stray setting from the machine running the tests.
        self.env = {name: "" for name in (
            "LCMCOORD_CACERT", "LCMCOORD_CAPATH", "LCMCOORD_CERT", "LCMCOORD_KEY",
            "LCMCOORD_KEY_PASSWORD", "LCMCOORD_TIMEOUT", "LCMCOORD_WAIT_FLOOR",
            "LCMCOORD_DEFAULT_INTERVAL", "LCMCOORD_LOG_FORMAT")}
        self.env["LCMCOORD_CONFIG"] = self.write("empty.conf", "")

    def path(self, name):
        return os.path.join(self._dir.name, name)

    def write(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def lcmcoord(self, *args, env=None, stdin=None, timeout=60):
        full = dict(self.env)
        full.update(env or {})
        return run_lcmcoord(*args, env=full, stdin=stdin, timeout=timeout)

    def script(self, text):
        return self.write("script.lua", text)


class PrintConfigTest(ConfigTestCase):
    def test_defaults_without_a_file(self):
        # LCMCOORD_CONFIG set to a missing file is an error; the default path is optional.
        done = self.lcmcoord("run", "--print-config", env={"LCMCOORD_CONFIG": ""})
        if os.path.exists("/etc/lcmcoord/lcmcoord.conf"):
            self.skipTest("this machine has /etc/lcmcoord/lcmcoord.conf")
        self.assertEqual(done.returncode, 0, done.stderr)
        values = printed(done.stdout)
        self.assertEqual(values["client.timeout"], ("3600", "default"))
        self.assertEqual(values["client.wait_floor"], ("1", "default"))
        self.assertEqual(values["client.default_interval"], ("5", "default"))
        self.assertEqual(values["log.format"], ("text", "default"))
        self.assertEqual(values["tls.cacert"][1], "default")

    def test_flags_beat_environment_beat_file(self):
        conf = self.write("lcmcoord.conf", f"""
# a comment
[tls]
cacert = /file/ca.pem     # trailing comment
cert = client.pem
key = /file/client.key
key_password = {SECRET}

[client]
timeout = 120
wait_floor = 2
default_interval = 7

[log]
format = json
""")
        done = self.lcmcoord("run", "--config", conf, "--cacert", "/flag/ca.pem",
                             "--print-config",
                             env={"LCMCOORD_CACERT": "/env/ca.pem", "LCMCOORD_KEY": "/env/k",
                                  "LCMCOORD_TIMEOUT": "60"})
        self.assertEqual(done.returncode, 0, done.stderr)
        values = printed(done.stdout)
        self.assertEqual(values["tls.cacert"], ("/flag/ca.pem", "flag --cacert"))
        self.assertEqual(values["tls.key"], ("/env/k", "environment LCMCOORD_KEY"))
        # A relative file name in the file is taken from the file's directory.
        self.assertEqual(values["tls.cert"], (self.path("client.pem"), f"file {conf}:5"))
        self.assertEqual(values["tls.key_password"], ("<set>", f"file {conf}:7"))
        self.assertEqual(values["client.timeout"], ("60", "environment LCMCOORD_TIMEOUT"))
        self.assertEqual(values["client.wait_floor"], ("2", f"file {conf}:11"))
        self.assertEqual(values["log.format"], ("json", f"file {conf}:15"))
        self.assertIn(f"configuration file: {conf} (--config)", done.stdout)
        self.assertNotIn(SECRET, done.stdout + done.stderr)

    def test_passphrase_from_the_environment_is_redacted(self):
        done = self.lcmcoord("coordinate", "--print-config",
                             env={"LCMCOORD_KEY_PASSWORD": SECRET})
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(printed(done.stdout)["tls.key_password"],
                         ("<set>", "environment LCMCOORD_KEY_PASSWORD"))
        self.assertNotIn(SECRET, done.stdout + done.stderr)

    def test_lcmcoord_config_names_the_file_and_every_client_subcommand_prints(self):
        conf = self.write("via-env.conf", "client.timeout = 42\n")
        for sub in ("run", "coordinate", "repl"):
            with self.subTest(sub=sub):
                done = self.lcmcoord(sub, "--print-config", env={"LCMCOORD_CONFIG": conf})
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertIn(f"configuration file: {conf} (LCMCOORD_CONFIG)", done.stdout)
                self.assertEqual(printed(done.stdout)["client.timeout"],
                                 ("42", f"file {conf}:1"))

    def test_timeout_flag_of_coordinate_and_repl(self):
        for sub in ("coordinate", "repl"):
            done = self.lcmcoord(sub, "--timeout", "9", "--print-config")
            self.assertEqual(printed(done.stdout)["client.timeout"], ("9", "flag --timeout"))


class InvalidConfigTest(ConfigTestCase):
    def check_refused(self, text, message, line):
        conf = self.write("bad.conf", text)
        done = self.lcmcoord("run", "--config", conf, SAMPLE, stdin="{}")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertEqual(self.assertOneLine(done.stderr), f"{conf}:{line}: {message}")

    def test_unknown_setting(self):
        self.check_refused("[client]\ntimout = 3\n", "unknown setting 'client.timout'", 2)

    def test_unknown_section(self):
        self.check_refused("# x\n[server]\n", "unknown section [server] (known: [tls], "
                           "[client], [log])", 2)

    def test_bad_number(self):
        self.check_refused("[client]\nwait_floor = -1\n",
                           "client.wait_floor needs a positive number of seconds, not '-1'", 2)

    def test_bad_log_format(self):
        self.check_refused("log.format = yaml\n", "log.format needs text or json, not 'yaml'", 1)

    def test_setting_twice(self):
        self.check_refused("[client]\ntimeout = 1\ntimeout = 2\n",
                           "client.timeout is already set on line 2", 3)

    def test_key_outside_a_section(self):
        self.check_refused("timeout = 3\n", "'timeout' is outside a section: put it under "
                           "[tls], [client] or [log], or write section.key", 1)

    def test_not_a_key_value_line(self):
        self.check_refused("[tls]\ncacert\n", "expected 'key = value' or '[section]'", 2)

    def test_missing_or_unreadable_file(self):
        for path in (self.path("missing.conf"), self._dir.name):
            with self.subTest(path=path):
                done = self.lcmcoord("run", "--config", path, SAMPLE, stdin="{}")
                self.assertEqual(done.returncode, 2)
                line = self.assertOneLine(done.stderr)
                self.assertTrue(line.startswith(
                    f"lcmcoord run: cannot read the configuration file {path}: "), line)

    def test_bad_environment_and_flag_values(self):
        done = self.lcmcoord("run", "--print-config", env={"LCMCOORD_TIMEOUT": "soon"})
        self.assertEqual(done.returncode, 2)
        self.assertEqual(self.assertOneLine(done.stderr), "lcmcoord run: LCMCOORD_TIMEOUT "
                         "needs a positive number of seconds, not 'soon'")
        done = self.lcmcoord("coordinate", "--log-format", "xml", "--print-config")
        self.assertEqual(done.returncode, 2)
        self.assertIn("--log-format needs text or json", done.stderr)


class ConfigReachesScriptsTest(ConfigTestCase):
    def test_file_timeout_is_the_default_of_scripts_clients(self):
        conf = self.write("short.conf", "[client]\ntimeout = 1.5\n")
        script = self.script("""
local lcmcoord = require "lcmcoord"
local p = ...
local c <close> = lcmcoord.client{endpoint = p.endpoint}
p.LcmCoordRequest.coordinationActionName = "prv.test.config"
local coord, err = c:coordinate(p.LcmCoordRequest)
assert(not coord, "expected the deadline")
error(err)
""")
        with EM("--mode", "async", "--polls", "1000", "--retry-after", "1") as em:
            started = time.monotonic()
            done = self.lcmcoord("run", "--config", conf, script,
                                 stdin=json.dumps(vnfc_param(em.url)))
            elapsed = time.monotonic() - started
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertLess(elapsed, 10 * harness.TIME_FACTOR)

    def test_file_timeout_replaces_create_coordinations_3600(self):
        conf = self.write("short.conf", "[client]\ntimeout = 1.5\n")
        param = vnfc_param("", timeout=None)
        with EM("--mode", "async", "--polls", "1000", "--retry-after", "1") as em:
            param["endpoint"] = em.url
            started = time.monotonic()
            done = self.lcmcoord("run", "--config", conf, SAMPLE, stdin=json.dumps(param))
            elapsed = time.monotonic() - started
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertLess(elapsed, 10 * harness.TIME_FACTOR)

    def test_default_interval_and_wait_floor_from_the_environment(self):
        # No Retry-After: the default interval (5 s built in) decides the polling pace.
        with EM("--mode", "async", "--polls", "3", "--retry-after", "none") as em:
            started = time.monotonic()
            done = self.lcmcoord("run", SAMPLE, stdin=json.dumps(vnfc_param(em.url)),
                                 env={"LCMCOORD_DEFAULT_INTERVAL": "0.2",
                                      "LCMCOORD_WAIT_FLOOR": "0.1"})
            elapsed = time.monotonic() - started
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertLess(elapsed, 4 * harness.TIME_FACTOR)

    def test_tls_files_from_the_file(self):
        with tempfile.TemporaryDirectory() as pki_dir:
            pki = certs.make_pki(pki_dir)
            conf = self.write("tls.conf", f"[tls]\ncacert = {pki.ca_cert}\n")
            with TlsEM(pki) as em:
                stdin = json.dumps(vnfc_param(em.url))
                done = self.lcmcoord("run", "--config", conf, SAMPLE, stdin=stdin)
                self.assertEqual(done.returncode, 0, done.stderr)
                without = self.lcmcoord("run", SAMPLE, stdin=stdin)
                self.assertEqual(without.returncode, 4, without.stderr)


class JsonLogTest(ConfigTestCase):
    def json_lines(self, stderr):
        lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        for line in lines:
            self.assertRegex(line["time"], RFC3339_UTC)
        return lines

    def test_run_logs_one_json_object_per_event(self):
        with EM("--mode", "async", "--polls", "1", "--rejects", "1", "--retry-after", "0",
                "--basic", "tacker:tacker") as em:
            param = vnfc_param(em.url, authentication={
                "authType": ["BASIC"], "paramsBasic": {"userName": "tacker",
                                                       "password": SECRET}})
            done = self.lcmcoord("run", "-v", "--log-format", "json", SAMPLE,
                                 stdin=json.dumps(param))
        self.assertEqual(done.returncode, 4, done.stderr)  # the EM wants tacker:tacker
        lines = self.json_lines(done.stderr)
        self.assertNotIn(SECRET, done.stderr)
        others = [l for l in done.stderr.splitlines() if not l.startswith("{")]
        self.assertEqual(len(others), 1, others)  # the outcome, as Tacker reads it
        self.assertEqual(lines[0]["level"], "warn")  # credentials over plain http
        request = next(l for l in lines if l.get("event") == "request")
        self.assertEqual(request["method"], "POST")
        self.assertEqual(request["action"], "prv.tacker_organization.coordination_test")
        response = next(l for l in lines if l.get("event") == "response")
        self.assertEqual(response["status"], 401)

    def test_run_json_carries_waits_ids_and_the_result(self):
        with EM("--mode", "async", "--polls", "1", "--rejects", "1",
                "--retry-after", "0") as em:
            done = self.lcmcoord("run", "-v", SAMPLE, stdin=json.dumps(vnfc_param(em.url)),
                                 env={"LCMCOORD_LOG_FORMAT": "json",
                                      "LCMCOORD_WAIT_FLOOR": "0.1"})
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = self.json_lines(done.stderr)
        self.assertEqual(len(lines), len(done.stderr.splitlines()))
        events = [l.get("event") for l in lines]
        for wanted in ("request", "response", "wait", "result"):
            self.assertIn(wanted, events)
        waits = [l for l in lines if l.get("event") == "wait"]
        self.assertTrue(all(isinstance(w["wait"], float) for w in waits), waits)
        (result,) = [l for l in lines if l.get("event") == "result"]
        self.assertEqual(result["result"], "CONTINUE")
        self.assertEqual(result["action"], "prv.tacker_organization.coordination_test")
        self.assertRegex(result["coordination_id"], r"^[0-9a-f-]{36}$")
        self.assertEqual({l["level"] for l in lines}, {"info"})

    def test_coordinate_json_names_the_action(self):
        with EM() as em:
            done = self.lcmcoord("coordinate", "-v", "--log-format=json", "--endpoint", em.url,
                                 "--action", "prv.example.json")
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = self.json_lines(done.stderr)
        self.assertTrue(lines)
        self.assertTrue(all(l["action"] == "prv.example.json" for l in lines), lines)

    def test_em_logs_one_json_object_per_request(self):
        with EM("--log-format", "json") as em:
            harness.curl("GET", em.url + "/lcmcoord/v1/api_versions",
                         headers={"Version": "1.0.0"})
            harness.curl("GET", em.url + "/nowhere/\"quoted\"")
            harness.wait_for(lambda: len(em.stderr_text().splitlines()) >= 2,
                             what="two log lines")
            text = em.stderr_text()
        lines = [json.loads(l) for l in text.splitlines()]
        self.assertEqual([list(l) for l in lines], [["time", "method", "path", "status", "ms"]] * 2)
        self.assertEqual((lines[0]["method"], lines[0]["path"], lines[0]["status"]),
                         ("GET", "/lcmcoord/v1/api_versions", 200))
        # Past the characters paths are made of, a path is shown as <redacted> (security.md).
        self.assertEqual(lines[1]["path"], '/nowhere/<redacted>')
        self.assertRegex(lines[0]["time"], RFC3339_UTC)
        self.assertIsInstance(lines[0]["ms"], float)

    def test_em_rejects_an_unknown_log_format(self):
        done = run_lcmcoord("em", "--log-format", "xml")
        self.assertEqual(done.returncode, 2)
        self.assertIn("--log-format needs text or json", done.stderr)


if __name__ == "__main__":
    import unittest

    unittest.main()
