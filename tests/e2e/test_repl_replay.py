"""End-to-end: `lcmcoord repl` with stdin not a terminal, i.e. a session replayed from a
file: no prompts, no colours, continuation lines still work, the first failure ends the
session with `lcmcoord run`'s exit status and one line on stderr; and the startup checks
(options, the --auth file) and the `lcmcoord.request` helper as scripts see it.
The interactive side is in test_repl_pty.py.
"""

import base64
import json
import os
import re
import tempfile
import unittest

import harness

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PASSWORD = "Rpl-P4ss-93kd0"


def replay(lines, *args, timeout=60, env=None):
    return harness.run_lcmcoord("repl", *args, stdin="\n".join(lines) + "\n", timeout=timeout,
                                env=env)


BLOCK_START = re.compile(r"^[\[{]", re.M)


def json_blocks(text):
    """The JSON values printed as blocks (each starting at the beginning of a line)."""
    decoder = json.JSONDecoder()
    values, pos = [], 0
    while True:
        match = BLOCK_START.search(text, pos)
        if not match:
            return values
        value, pos = decoder.raw_decode(text, match.start())
        values.append(value)


class Replay(harness.TestCase):
    def test_a_file_of_lines_runs_to_the_end_and_exits_0(self):
        with harness.EM() as em:
            done = replay([
                "-- a comment, then a blank line",
                "",
                "r = em:api_versions()",
                "r.status",
                "for i = 1, 2 do",
                "  print('line', i)",
                "end",
                'em:coordinate(lcmcoord.request{action = "replayed"})',
                ":time off",
            ], "--endpoint", em.url)
            posts = [e for e in em.journal() if e["method"] == "POST"]
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stderr, "")
        self.assertNotIn("lcmcoord>", done.stdout)
        self.assertNotIn("\x1b[", done.stdout)
        self.assertTrue(done.stdout.startswith("200\nline\t1\nline\t2\n{"), done.stdout)
        (coord,) = json_blocks(done.stdout)
        self.assertEqual(coord["coordinationResult"], "CONTINUE")
        self.assertEqual(coord["coordinationActionName"], "replayed")
        self.assertEqual(len(posts), 1)

    def test_an_authorization_value_is_never_shown(self):
        done = replay([
            'a = lcmcoord.auth.new{authType = {"BASIC"}, '
            'paramsBasic = {userName = "u", password = "Zq9-Repl-Pw"}}',
            "a:header()",
            "{h = a:header()}",
            '"Bearer of good news"',
        ])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.splitlines()[0], "Basic <redacted>")
        self.assertIn('"h": "Basic <redacted>"', done.stdout)
        self.assertIn("Bearer of good news", done.stdout)
        self.assertNotIn(base64.b64encode(b"u:Zq9-Repl-Pw").decode(), done.stdout)
        self.assertNotIn("Zq9-Repl-Pw", done.stdout + done.stderr)

    def test_a_failing_line_stops_the_replay_with_exit_1(self):
        done = replay(["print('before')", "error('the third line fails')", "print('after')"])
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stdout, "before\n")
        self.assertEqual(self.assertOneLine(done.stderr),
                         "lcmcoord: line 2: stdin:1: the third line fails")

    def test_a_syntax_error_stops_the_replay(self):
        done = replay(["x = = 1", "print('after')"])
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stdout, "")
        self.assertIn("line 1: ", self.assertOneLine(done.stderr))

    def test_an_unfinished_statement_at_the_end_is_an_error(self):
        done = replay(["for i = 1, 2 do", "print(i)"])
        self.assertEqual(done.returncode, 1)
        self.assertIn("<eof>", self.assertOneLine(done.stderr))

    def test_nil_err_from_a_method_ends_the_replay_with_the_kind_status(self):
        # Nothing listens on port 1: kind transport, exit 4 as with `lcmcoord run`.
        done = replay(["em:api_versions()", "print('after')"], "--endpoint",
                      "http://127.0.0.1:1")
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertEqual(done.stdout, "")
        self.assertRegex(self.assertOneLine(done.stderr), r"^lcmcoord: line 1: cannot reach the EM")

    def test_a_raised_lcmcoord_error_maps_its_kind(self):
        # An invalid request is refused before anything is sent: invalid_request, exit 2.
        with harness.EM() as em:
            done = replay(["assert(em:coordinate({vnfInstanceId = 'x'}))", "print('after')"],
                          "--endpoint", em.url)
            journal = em.journal()
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertEqual(journal, [])
        self.assertIn("vnfLcmOpOccId", self.assertOneLine(done.stderr))

    def test_deadline_exits_3(self):
        with harness.EM("--delay", "60000") as em:
            done = replay(['em:coordinate(lcmcoord.request{action = "x"}, 1)'], "--endpoint",
                          em.url)
        self.assertEqual(done.returncode, 3, done.stderr)
        self.assertIn("deadline", self.assertOneLine(done.stderr))

    def test_commands_work_in_a_replay(self):
        with tempfile.TemporaryDirectory() as tmp:
            req = os.path.join(tmp, "req.json")
            with open(req, "w", encoding="utf-8") as f:
                json.dump(harness.sample_request(), f)
            out = os.path.join(tmp, "out.json")
            with harness.EM() as em:
                done = replay([f":load {req}", "em:post(body)", f":save {out}", ":journal",
                               ":quit", "print('not reached')"], "--endpoint", em.url)
            self.assertEqual(done.returncode, 0, done.stderr)
            with open(out, encoding="utf-8") as f:
                saved = json.load(f)
        self.assertEqual(saved["coordinationResult"], "CONTINUE")
        self.assertIn("201 Created", done.stdout)
        self.assertNotIn("not reached", done.stdout)
        loaded, _created, journal = json_blocks(done.stdout)
        self.assertEqual(loaded, harness.sample_request())
        self.assertEqual([e["status"] for e in journal], [201])

    def test_unknown_command_fails_the_replay(self):
        done = replay([":bogus", "print('after')"])
        self.assertEqual(done.returncode, 2)
        self.assertIn("unknown command ':bogus'", self.assertOneLine(done.stderr))


class RequestHelper(harness.TestCase):
    def test_defaults_make_a_valid_request(self):
        done = replay(['lcmcoord.request{action = "prv.example.drain"}'])
        self.assertEqual(done.returncode, 0, done.stderr)
        (req,) = json_blocks(done.stdout)
        self.assertRegex(req["vnfInstanceId"], UUID)
        self.assertRegex(req["vnfLcmOpOccId"], UUID)
        self.assertNotEqual(req["vnfInstanceId"], req["vnfLcmOpOccId"])
        self.assertEqual(req["lcmOperationType"], "CHANGE_VNFPKG")
        self.assertEqual(req["coordinationActionName"], "prv.example.drain")
        self.assertNotIn("inputParams", req)
        self.assertTrue(req["_links"]["vnfInstance"]["href"].endswith(
            "/vnflcm/v2/vnf_instances/" + req["vnfInstanceId"]))
        self.assertTrue(req["_links"]["vnfLcmOpOcc"]["href"].endswith(
            "/vnflcm/v2/vnf_lcm_op_occs/" + req["vnfLcmOpOccId"]))

    def test_given_fields_are_used(self):
        done = replay(['lcmcoord.request{action = "a", instance = "vi 1", op_occ = "op-1", '
                       'operation = "HEAL", input = {vnfc = "VDU1-0"}, '
                       'vnfm = "https://vnfm.test/"}'])
        self.assertEqual(done.returncode, 0, done.stderr)
        (req,) = json_blocks(done.stdout)
        self.assertEqual(req["vnfInstanceId"], "vi 1")
        self.assertEqual(req["vnfLcmOpOccId"], "op-1")
        self.assertEqual(req["lcmOperationType"], "HEAL")
        self.assertEqual(req["inputParams"], {"vnfc": "VDU1-0"})
        self.assertEqual(req["_links"]["vnfInstance"]["href"],
                         "https://vnfm.test/vnflcm/v2/vnf_instances/vi%201")
        self.assertEqual(req["_links"]["vnfLcmOpOcc"]["href"],
                         "https://vnfm.test/vnflcm/v2/vnf_lcm_op_occs/op-1")

    def test_the_em_accepts_what_it_builds(self):
        with harness.EM() as em:
            done = replay(['r = em:post(lcmcoord.request{action = "x", operation = "SCALE", '
                           'input = {n = 1}})', "r.status"], "--endpoint", em.url)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "201\n")

    def test_bad_fields_raise(self):
        for line, message in [
            ("lcmcoord.request{}", "field 'action'"),
            ('lcmcoord.request{action = "x", opration = "HEAL"}', "unknown field 'opration'"),
            ('lcmcoord.request{action = "x", operation = "FOO"}', "'FOO' is not a"),
            ('lcmcoord.request{action = "x", input = 3}', "field 'input': table expected"),
            ('lcmcoord.request{action = ""}', "field 'action'"),
            ("lcmcoord.request()", "table expected"),
        ]:
            with self.subTest(line=line):
                done = replay([line])
                self.assertEqual(done.returncode, 1)
                self.assertIn(message, self.assertOneLine(done.stderr))


class Startup(harness.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_auth_file_is_used(self):
        auth = self.write("auth.json", json.dumps({
            "authType": ["BASIC"], "paramsBasic": {"userName": "op", "password": PASSWORD}}))
        with harness.EM("--basic", f"op:{PASSWORD}") as em:
            done = replay(["em:api_versions().status", "em"], "--endpoint", em.url, "--auth", auth)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.startswith("200\nlcmcoord.client (http://"), done.stdout)
        self.assertEqual(journal[0]["auth"], {"scheme": "Basic", "user": "op", "ok": True})
        self.assertNotIn(PASSWORD, done.stdout + done.stderr)

    def test_unreadable_auth_file_exits_2_naming_it(self):
        missing = os.path.join(self.tmp, "nowhere.json")
        done = replay(["print('never')"], "--endpoint", "http://127.0.0.1:1", "--auth", missing)
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stdout, "")
        self.assertIn("nowhere.json", self.assertOneLine(done.stderr))

    def test_invalid_auth_file_exits_2_without_showing_its_content(self):
        for name, text in [("broken.json", '{"paramsBasic": {"password": "' + PASSWORD + '"'),
                           ("array.json", '["' + PASSWORD + '"]'),
                           ("incomplete.json", json.dumps({"authType": ["BASIC"], "x": PASSWORD}))]:
            with self.subTest(name=name):
                path = self.write(name, text)
                done = replay(["print('never')"], "--endpoint", "http://127.0.0.1:1", "--auth",
                              path)
                self.assertEqual(done.returncode, 2)
                line = self.assertOneLine(done.stderr)
                self.assertIn(name, line)
                self.assertNotIn(PASSWORD, done.stdout + done.stderr)

    def test_bad_options_exit_2_with_one_usage_line(self):
        for args in (["--bogus"], ["--endpoint"], ["--timeout", "0"], ["extra"],
                     ["--auth", "x.json"], ["--endpoint", "ftp://example"]):
            with self.subTest(args=args):
                done = harness.run_lcmcoord("repl", *args, stdin="")
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertTrue(self.assertOneLine(done.stderr).startswith("lcmcoord repl: "))

    def test_help_exits_0(self):
        done = harness.run_lcmcoord("repl", "--help")
        self.assertEqual(done.returncode, 0)
        self.assertIn("usage: lcmcoord repl", done.stdout)

    def test_program_help_lists_the_new_subcommands(self):
        done = harness.run_lcmcoord("--help")
        self.assertEqual(done.returncode, 0)
        self.assertRegex(done.stdout, r"\n  repl ")
        self.assertRegex(done.stdout, r"\n  coordinate ")


if __name__ == "__main__":
    unittest.main()
