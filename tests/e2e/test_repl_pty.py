"""End-to-end: `lcmcoord repl` as a person uses it, on a real pseudo-terminal against
`lcmcoord em`: the prompt, results shown as status lines and JSON, continuation lines,
errors that keep the session, Ctrl-C (during a call and at the prompt), Ctrl-D, tab
completion, the history file and its secrets, :trace redaction and the other `:` commands.
Replayed (non-terminal) sessions are in test_repl_replay.py.
"""

import base64
import json
import os
import re
import signal
import stat
import tempfile
import time
import unittest

import harness
from pty_session import PtySession

PROMPT = r"lcmcoord> "
CONTINUATION = r"lcmcoord>> "

# Distinctive, so that finding one anywhere is never a coincidence.
USER = "vnfm-op"
PASSWORD = "S3cr3tPass-q7Zx41"


class ReplTestCase(harness.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name
        self.data_home = os.path.join(self.tmp, "data")

    def tearDown(self):
        self._tmp.cleanup()

    def repl(self, *args, env=None):
        """Starts `lcmcoord repl ARGS` on a terminal, with its history under the test's own
        XDG_DATA_HOME; returns the session once the first prompt is shown."""
        full_env = dict(os.environ, TERM="xterm", XDG_DATA_HOME=self.data_home)
        full_env.pop("NO_COLOR", None)
        full_env.update(env or {})
        session = PtySession([harness.LCMCOORD_BIN, "repl", *args], env=full_env)
        self.addCleanup(session.close)
        session.expect_prompt(PROMPT)
        return session

    def run_line(self, session, line, timeout=20.0):
        """Types a line and returns what it printed up to the next prompt."""
        session.sendline(line)
        text = session.expect_prompt(PROMPT, timeout=timeout)
        return text[:-len("lcmcoord> ")]

    def quit(self, session):
        session.send("\x04")
        self.assertEqual(session.wait(), 0, session.screen())

    def write_auth(self):
        path = os.path.join(self.tmp, "auth.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"authType": ["BASIC"],
                       "paramsBasic": {"userName": USER, "password": PASSWORD}}, f)
        return path


class Results(ReplTestCase):
    def test_api_versions_shows_status_line_and_json(self):
        with harness.EM() as em:
            s = self.repl("--endpoint", em.url)
            out = self.run_line(s, "em:api_versions()")
            self.quit(s)
        self.assertRegex(out, r"200 OK \(\d+(\.\d)? ms\)")
        body = out[out.index("{"):out.rindex("}") + 1]
        self.assertEqual(json.loads(body)["apiVersions"][0]["version"], "1.0.0")
        # Sorted keys: apiVersions before uriPrefix.
        self.assertLess(out.index('"apiVersions"'), out.index('"uriPrefix"'))

    def test_sync_coordination_prints_the_lcmcoord(self):
        with harness.EM() as em:
            s = self.repl("--endpoint", em.url)
            out = self.run_line(s, 'em:coordinate(lcmcoord.request{action="x"})')
            self.quit(s)
        self.assertIn('"coordinationResult": "CONTINUE"', out)
        self.assertIn('"coordinationActionName": "x"', out)

    def test_async_coordination_polls_until_the_result(self):
        with harness.EM("--mode", "async", "--polls", "1", "--retry-after", "0") as em:
            s = self.repl("--endpoint", em.url)
            out = self.run_line(s, 'em:coordinate(lcmcoord.request{action="x"})')
            self.quit(s)
            journal = em.journal()
        self.assertIn('"coordinationResult": "CONTINUE"', out)
        self.assertEqual([e["method"] for e in journal], ["POST", "GET", "GET"])

    def test_202_shows_location_without_headers_on(self):
        with harness.EM("--mode", "async") as em:
            s = self.repl("--endpoint", em.url)
            out = self.run_line(s, 'em:post(lcmcoord.request{action="x"})')
            self.assertRegex(out, r"202 Accepted")
            self.assertRegex(out, r"location: http://127\.0\.0\.1:\d+/lcmcoord/v1/coordinations/")
            self.assertNotIn("version: 1.0.0", out)
            self.run_line(s, ":headers on")
            out = self.run_line(s, 'em:post(lcmcoord.request{action="x"})')
            self.assertIn("version: 1.0.0", out)
            self.quit(s)

    def test_continuation_lines(self):
        s = self.repl()
        s.sendline("for i=1,2 do")
        s.expect_prompt(CONTINUATION)
        s.sendline("print('item', i)")
        s.expect_prompt(CONTINUATION)
        out = self.run_line(s, "end")
        self.assertIn("item\t1\nitem\t2\n", out)
        self.quit(s)

    def test_error_keeps_the_session(self):
        s = self.repl()
        out = self.run_line(s, "no_such_function()")
        self.assertRegex(out, r"error: stdin:1: attempt to call a nil value \(global "
                              r"'no_such_function'\)")
        self.assertIn("42", self.run_line(s, "40 + 2"))
        self.quit(s)

    def test_lcmcoord_error_shows_its_kind(self):
        with harness.EM("--result", "ABORT") as em:
            s = self.repl("--endpoint", em.url)
            out = self.run_line(s, 'lcmcoord.client{endpoint="http://127.0.0.1:1"}:api_versions()')
            self.assertRegex(out, r"error \(transport\): cannot reach the EM")
            # An ABORT is a result, not an error.
            out = self.run_line(s, 'em:coordinate(lcmcoord.request{action="x"})')
            self.assertIn('"coordinationResult": "ABORT"', out)
            self.quit(s)

    def test_colour_follows_no_color(self):
        with harness.EM() as em:
            s = self.repl("--endpoint", em.url)
            self.run_line(s, "em:api_versions()")
            self.quit(s)
            self.assertIn(b"\x1b[1;32m200 OK", s.transcript)
            s = self.repl("--endpoint", em.url, env={"NO_COLOR": "1"})
            self.run_line(s, "em:api_versions()")
            self.quit(s)
            self.assertNotIn(b"\x1b[1;32m", s.transcript)
            self.assertIn("200 OK", s.screen())


class Keys(ReplTestCase):
    def test_ctrl_c_interrupts_a_slow_call_and_the_session_goes_on(self):
        with harness.EM("--delay", "60000") as em:
            s = self.repl("--endpoint", em.url)
            s.sendline("em:api_versions()")
            em.wait_journal(1)
            sent = time.monotonic()
            s.send("\x03")
            s.expect_prompt(r"interrupted\n" + PROMPT, timeout=5)
            self.assertLess(time.monotonic() - sent, 5 * harness.TIME_FACTOR)
            self.assertIn("4", self.run_line(s, "2 + 2"))
            self.quit(s)

    def test_ctrl_c_interrupts_a_coordination_and_asks_the_em_to_cancel(self):
        with harness.EM("--mode", "async", "--polls", "1000", "--retry-after", "30") as em:
            s = self.repl("--endpoint", em.url)
            s.sendline('em:coordinate(lcmcoord.request{action="x"})')
            # The REPL says nothing until the call ends, so the nearest sign that the client
            # has the 202 (and its Location, to cancel) is the EM's log line, written once
            # the answer is handed to the connection: the journal has the POST before that.
            harness.wait_for(lambda: re.search(r"^POST /lcmcoord/v1/coordinations 202 ",
                                               em.stderr_text(), re.M), what="the 202 sent")
            s.send("\x03")
            s.expect_prompt(r"interrupted\n" + PROMPT, timeout=10)
            journal = em.wait_journal(2)
            self.assertTrue(journal[-1]["path"].endswith("/cancel"), journal)
            self.assertIn("ok", self.run_line(s, "'ok'"))
            self.quit(s)

    def test_ctrl_c_stops_a_busy_lua_loop(self):
        s = self.repl()
        s.sendline("while true do end")
        # The loop has started once the line is echoed and no prompt follows it.
        s.expect(r"while true do end\n")
        s.send("\x03")
        s.expect_prompt(r"interrupted\n" + PROMPT, timeout=5)
        self.quit(s)

    def test_ctrl_c_at_the_prompt_clears_the_line(self):
        s = self.repl()
        s.send("half typed")
        s.expect("half typed")
        s.send("\x03")
        s.expect_prompt(PROMPT)
        self.assertIn("7", self.run_line(s, "3 + 4"))
        # And in a continuation, the whole statement is dropped.
        s.sendline("if true then")
        s.expect_prompt(CONTINUATION)
        s.send("\x03")
        s.expect_prompt(PROMPT)
        self.assertIn("yes", self.run_line(s, "'yes'"))
        self.quit(s)

    def test_ctrl_d_exits_0(self):
        s = self.repl()
        s.send("\x04")
        self.assertEqual(s.wait(), 0)

    def test_sigterm_at_the_prompt_exits_143_and_gives_the_terminal_back(self):
        s = self.repl()
        s.proc.send_signal(signal.SIGTERM)
        self.assertEqual(s.wait(), 143)
        self.assertIn("lcmcoord: interrupted by SIGTERM", s.screen())
        self.assertFalse(s.line_editor_ready(), "the terminal was left in raw mode")

    def test_quit_command_exits_0(self):
        s = self.repl()
        s.sendline(":quit")
        self.assertEqual(s.wait(), 0)

    def test_tab_completes_client_methods(self):
        with harness.EM() as em:
            s = self.repl("--endpoint", em.url)
            s.send("em:api_v\t")
            s.expect(r"em:api_versions")
            out = self.run_line(s, "()")
            self.assertIn("200 OK", out)
            self.quit(s)

    def test_tab_completes_module_functions_and_globals(self):
        s = self.repl()
        s.send("lcmcoord.reque\t")
        s.expect(r"lcmcoord\.request")
        s.send("\x03")
        s.expect_prompt(PROMPT)
        s.send("lcmco\t")
        s.expect(r"lcmcoord")
        out = self.run_line(s, ".version")
        self.assertRegex(out, r"\d+\.\d+\.\d+")
        self.quit(s)


class History(ReplTestCase):
    def history_path(self):
        return os.path.join(self.data_home, "lcmcoord", "history")

    def test_history_file_is_private_and_keeps_secret_lines_out(self):
        s = self.repl()
        self.run_line(s, "plain = 1")
        self.run_line(s, 'auth = {paramsBasic = {userName = "u", password = "Hx-5521-pw"}}')
        self.run_line(s, 'tok = "Bearer abc-998877"')
        # A chunk is judged whole: the secret on its second line keeps the first out too.
        s.sendline("t = {")
        s.expect_prompt(CONTINUATION)
        self.run_line(s, 'clientPassword = "Qq-44-secret"}')
        self.run_line(s, "after = 2")
        self.quit(s)
        with open(self.history_path(), encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, ["plain = 1", "after = 2"])
        self.assertEqual(stat.S_IMODE(os.stat(self.history_path()).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.history_path())).st_mode),
                         0o700)

    def test_history_is_loaded_by_the_next_session(self):
        s = self.repl()
        self.run_line(s, "print('remembered', 31)")
        self.quit(s)
        s = self.repl()
        s.send("\x1b[A")  # up arrow
        s.expect(r"print\('remembered', 31\)")
        self.assertIn("remembered\t31", self.run_line(s, ""))
        self.quit(s)


class Commands(ReplTestCase):
    def test_trace_shows_the_exchange_with_the_basic_password_redacted(self):
        auth = self.write_auth()
        with harness.EM("--basic", f"{USER}:{PASSWORD}") as em:
            s = self.repl("--endpoint", em.url, "--auth", auth)
            self.run_line(s, ":trace on")
            out = self.run_line(s, 'em:coordinate(lcmcoord.request{action="x"})')
            self.assertIn("> POST /lcmcoord/v1/coordinations HTTP/1.1", out)
            self.assertIn("> Authorization: Basic <redacted>", out)
            self.assertRegex(out, r"< HTTP/1.1 201 Created")
            self.assertIn('"coordinationResult": "CONTINUE"', out)
            self.run_line(s, ":trace off")
            out = self.run_line(s, "em:api_versions()")
            self.assertNotIn("> GET", out)
            self.quit(s)
        screen = s.transcript
        for secret in (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
                       base64.b64encode(PASSWORD.encode()).decode()):
            self.assertNotIn(secret.encode(), screen)

    def test_journal_shows_what_the_em_received(self):
        with harness.EM() as em:
            s = self.repl("--endpoint", em.url)
            self.run_line(s, "em:api_versions()")
            out = self.run_line(s, ":journal")
            self.quit(s)
        entries = json.loads(out[out.index("["):out.rindex("]") + 1])
        self.assertEqual([(e["method"], e["path"]) for e in entries],
                         [("GET", "/lcmcoord/v1/api_versions")])

    def test_journal_without_a_client_says_so(self):
        s = self.repl()
        out = self.run_line(s, ":journal")
        self.assertIn(":journal needs a client", out)
        self.quit(s)

    def test_load_then_post_then_save(self):
        request = harness.sample_request()
        req_path = os.path.join(self.tmp, "req.json")
        with open(req_path, "w", encoding="utf-8") as f:
            json.dump(request, f)
        saved = os.path.join(self.tmp, "saved.json")
        with harness.EM() as em:
            s = self.repl("--endpoint", em.url)
            out = self.run_line(s, f":load {req_path}")
            self.assertIn('"vnfInstanceId": "9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20"', out)
            out = self.run_line(s, "em:post(body)")
            self.assertIn("201 Created", out)
            out = self.run_line(s, f":save {saved}")
            self.assertIn("saved", out)
            self.quit(s)
        with open(saved, encoding="utf-8") as f:
            coord = json.load(f)
        self.assertEqual(coord["coordinationResult"], "CONTINUE")
        self.assertEqual(coord["vnfInstanceId"], request["vnfInstanceId"])
        # Written through a temporary file renamed into place: none is left behind.
        self.assertEqual([n for n in os.listdir(self.tmp) if n.startswith("saved.json.")], [])

    def test_time_and_help_and_unknown_command(self):
        s = self.repl()
        self.run_line(s, ":time on")
        self.assertRegex(self.run_line(s, "1"), r"1\n\(\d+\.\d ms\)")
        self.assertIn(":journal", self.run_line(s, ":help"))
        self.assertIn("unknown command ':nope'", self.run_line(s, ":nope"))
        self.quit(s)


if __name__ == "__main__":
    unittest.main()
