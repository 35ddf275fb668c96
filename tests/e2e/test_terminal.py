"""End-to-end: what an operator sees at a terminal, through a real pseudo-terminal
(pty_session.py): the live progress line of `lcmcoord run` while the EM answers 503 or does
not answer at all (and nothing of it when stderr is a pipe, as under a VNFM), what Ctrl-C
says it does (with the coordination's id, and the EM's journal showing the cancel), the REPL
keeping its session through a second Ctrl-C, and `run` saying it waits for the VNFC
parameters when stdin is a terminal.
"""

import json
import os
import re
import shlex
import socket
import tempfile
import time

import harness
import peers
from pty_session import PtySession, strip_escapes

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "vnfc_param.json")
SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua")
PROMPT = r"lcmcoord> "
CLEAR = b"\r\x1b[K"  # the live line is taken away: back to the start, erase the line
WAITING_HINT = "lcmcoord run: waiting for the VNFC parameters (a JSON object) on stdin"


def vnfc_param(endpoint, **overrides):
    with open(FIXTURE, encoding="utf-8") as f:
        param = json.load(f)
    param["endpoint"] = endpoint
    param.update(overrides)
    return param


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TerminalCase(harness.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def env(self, **extra):
        env = dict(os.environ, TERM="xterm", XDG_DATA_HOME=os.path.join(self.tmp, "data"))
        env.pop("NO_COLOR", None)
        env.update(extra)
        return env

    def params_file(self, param):
        path = os.path.join(self.tmp, "vnfc_param.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(param, f)
        return path

    def run_on_terminal(self, param, *flags, **env):
        """`lcmcoord run FLAGS SCRIPT < params` with stdout and stderr on a terminal."""
        command = (f"exec {shlex.quote(harness.LCMCOORD_BIN)} run "
                   f"{' '.join(shlex.quote(f) for f in flags)} {shlex.quote(SCRIPT)} "
                   f"< {shlex.quote(self.params_file(param))}")
        session = PtySession(["/bin/sh", "-c", command], env=self.env(**env))
        self.addCleanup(session.close)
        return session

    def run_on_pipes(self, param, **env):
        return harness.run_lcmcoord("run", SCRIPT, stdin=json.dumps(param), timeout=60,
                                    env=self.env(**env))


class LiveLine(TerminalCase):
    def test_503_with_retry_after_shows_a_live_line_that_is_cleared(self):
        with harness.EM("--rejects", "2", "--retry-after", "1") as em:
            s = self.run_on_terminal(vnfc_param(em.url, timeout=60))
            s.expect(r"EM busy \(503\): retrying in 1\.0 s, \d+ s left", timeout=10)
            self.assertEqual(s.wait(timeout=20), 0, s.screen())
        raw = s.transcript
        # The line is rewritten in place (the second 503 over the first), never scrolled.
        self.assertEqual(raw.count(b"\r\x1b[KEM busy (503): retrying in 1.0 s,"), 2, raw)
        self.assertNotIn(b"EM busy (503): retrying in 1.0 s, 59 s left\n", raw)
        # And it is gone at the end: after the last live text comes a clear, and nothing of
        # the live text follows it.
        last = raw.rindex(b"EM busy")
        self.assertIn(CLEAR, raw[last:])
        self.assertNotIn(b"EM busy", raw[raw.rindex(CLEAR):])

    def test_no_live_line_with_v_or_a_dumb_terminal(self):
        for flags, env in ((("-v",), {}), ((), {"TERM": "dumb"})):
            with self.subTest(flags=flags, env=env), \
                    harness.EM("--rejects", "1", "--retry-after", "1") as em:
                s = self.run_on_terminal(vnfc_param(em.url, timeout=60), *flags, **env)
                self.assertEqual(s.wait(timeout=20), 0, s.screen())
                self.assertNotIn(CLEAR, s.transcript)
                if flags:
                    self.assertIn("lcmcoord: EM busy (503), retrying in", s.screen())
                else:
                    self.assertNotIn("EM busy", s.screen())

    def test_stderr_on_a_pipe_is_exactly_as_before(self):
        with harness.EM("--rejects", "2", "--retry-after", "1") as em:
            done = self.run_on_pipes(vnfc_param(em.url, timeout=60))
            self.assertEqual(done.returncode, 0, done.stderr)
            # Only the warning every plain-http run has: no live line, no escapes.
            self.assertEqual(done.stderr,
                             f"lcmcoord: warning: credentials are sent to {em.url} over plain "
                             "http://, readable by anyone on the path\n")

    def test_each_attempt_at_an_unreachable_em_shows_and_the_error_counts_them(self):
        url = f"http://127.0.0.1:{closed_port()}"
        # A try each second (the default interval when the EM names none), for 4 s.
        s = self.run_on_terminal(vnfc_param(url, timeout=4), LCMCOORD_DEFAULT_INTERVAL="1")
        s.expect(r"EM not answering \(attempt 1\): retrying in", timeout=10)
        s.expect(r"EM not answering \(attempt 2\): retrying in", timeout=10)
        self.assertEqual(s.wait(timeout=20), 4, s.screen())
        screen = s.screen()
        match = re.search(r"lcmcoord: .*\((\d+) attempts over (\d+) s\)\n", screen)
        self.assertIsNotNone(match, screen)
        self.assertGreaterEqual(int(match.group(1)), 2)
        self.assertLessEqual(int(match.group(2)), 5)
        # The final line starts on a clean line: the live line was cleared before it.
        final = s.transcript.rindex(b"lcmcoord: ")
        self.assertEqual(s.transcript[final - len(CLEAR):final], CLEAR)

    def coordinate_on_terminal(self, url, *flags, **env):
        s = PtySession([harness.LCMCOORD_BIN, "coordinate", *flags, "--endpoint", url,
                        "--action", "x", "--timeout", "4"], env=self.env(**env))
        self.addCleanup(s.close)
        return s

    def assert_attempts_counted(self, s):
        self.assertEqual(s.wait(timeout=20), 4, s.screen())
        screen = s.screen()  # the live line's text runs into the final line once cleared
        final = screen[screen.rindex("lcmcoord: cannot reach"):].rstrip("\n")
        match = re.fullmatch(r"lcmcoord: cannot reach the EM: .*no time left before the "
                             r"deadline to try again \((\d+) attempts over (\d+) s\)", final)
        self.assertIsNotNone(match, s.screen())
        self.assertGreaterEqual(int(match.group(1)), 2)
        self.assertLessEqual(int(match.group(2)), 5)
        return int(match.group(1))

    def test_coordinate_shows_each_attempt_and_counts_them_too(self):
        url = f"http://127.0.0.1:{closed_port()}"
        s = self.coordinate_on_terminal(url, LCMCOORD_DEFAULT_INTERVAL="1")
        s.expect(r"EM not answering \(attempt 1\): retrying in", timeout=10)
        s.expect(r"EM not answering \(attempt 2\): retrying in", timeout=10)
        self.assert_attempts_counted(s)

    def test_the_count_does_not_need_the_live_line(self):
        # With -v each attempt is a line of its own, and a dumb terminal shows no live line:
        # the final error still says how many attempts were made, for run and coordinate.
        url = f"http://127.0.0.1:{closed_port()}"
        for flags, env in ((("-v",), {}), ((), {"TERM": "dumb"})):
            with self.subTest(flags=flags, env=env, command="coordinate"):
                s = self.coordinate_on_terminal(url, *flags, LCMCOORD_DEFAULT_INTERVAL="1",
                                                **env)
                attempts = self.assert_attempts_counted(s)
                if flags:
                    posts = re.findall(r"^lcmcoord: POST http://\S+/coordinations$",
                                       s.screen(), re.M)
                    self.assertEqual(len(posts), attempts, s.screen())
            with self.subTest(flags=flags, env=env, command="run"):
                s = self.run_on_terminal(vnfc_param(url, timeout=4), *flags,
                                         LCMCOORD_DEFAULT_INTERVAL="1", **env)
                self.assert_attempts_counted(s)

    def test_unreachable_em_on_a_pipe_keeps_its_one_line(self):
        url = f"http://127.0.0.1:{closed_port()}"
        done = self.run_on_pipes(vnfc_param(url, timeout=4), LCMCOORD_DEFAULT_INTERVAL="1")
        self.assertEqual(done.returncode, 4, done.stderr)
        line = self.assertOneLine(done.stderr)
        self.assertNotIn("attempts over", line)
        self.assertNotIn("\r", line)
        self.assertNotIn("\x1b", line)


class CtrlC(TerminalCase):
    def test_ctrl_c_says_at_once_which_coordination_it_asks_the_em_to_cancel(self):
        with harness.EM("--mode", "async", "--polls", "1000", "--retry-after", "30") as em:
            s = self.run_on_terminal(vnfc_param(em.url, timeout=600))
            s.expect(r"coordination \S+ in progress: polling in", timeout=10)
            coordination_id = em.journal()[0]
            s.send("\x03")
            text = s.expect(r"interrupted: asking the EM to cancel (\S+) \(Ctrl-C again to "
                            r"stop waiting\)\n", timeout=3)
            shown = re.search(r"cancel (\S+) \(Ctrl-C", text).group(1)
            self.assertEqual(s.wait(timeout=10), 130, s.screen())
            journal = em.wait_journal(2)
        cancels = [e for e in journal if e["path"].endswith("/cancel")]
        self.assertEqual(len(cancels), 1, journal)
        self.assertEqual(cancels[0]["path"],
                         f"/lcmcoord/v1/coordinations/{shown}/cancel", coordination_id)
        self.assertRegex(s.screen(), r"lcmcoord: interrupted by SIGINT; the EM was asked to "
                                     r"cancel\n")

    def test_ctrl_c_while_the_post_is_out_says_what_it_waits_for(self):
        with harness.EM("--delay", "60000") as em:
            s = self.run_on_terminal(vnfc_param(em.url, timeout=600))
            em.wait_journal(1)
            s.send("\x03")
            s.expect(r"interrupted: waiting up to 5\.0 s for the EM's answer to the POST, to "
                     r"cancel what it started \(Ctrl-C again to stop waiting\)\n", timeout=3)
            # A second Ctrl-C does stop the wait: the program ends by the signal at once.
            sent = time.monotonic()
            s.send("\x03")
            self.assertEqual(s.wait(timeout=3), -2, s.screen())
            self.assertLess(time.monotonic() - sent, 3 * harness.TIME_FACTOR)
            em.stop(check=False)

    def repl(self, endpoint):
        s = PtySession([harness.LCMCOORD_BIN, "repl", "--endpoint", endpoint], env=self.env())
        self.addCleanup(s.close)
        s.expect_prompt(PROMPT)
        s.sendline("kept = 6 * 7")
        s.expect_prompt(PROMPT)
        return s

    def assert_session_kept(self, s):
        self.assertIsNone(s.proc.poll())
        s.sendline("kept")
        self.assertIn("42", s.expect_prompt(PROMPT))
        s.send("\x04")
        self.assertEqual(s.wait(), 0, s.screen())

    # The runtime waits at most 5 s for the EM's answer to a cancel or to a POST that was out;
    # the second Ctrl-C must not wait that out. Whether it did is also in what the statement
    # ends with, which does not depend on the machine's speed: a wait that ran out says so.
    SECOND_CTRL_C_BOUND = 2.0

    def test_repl_survives_a_second_ctrl_c_at_once_while_the_cancel_is_awaited(self):
        # The EM accepts the coordination and then never answers the cancel. It asks for
        # polls every second, so that the first one (the sign the client holds the id) comes
        # well within the wait below at any slow-machine factor.
        with peers.CoordinationPeer(on_cancel=lambda h: h.hang(), retry_after=1) as em:
            s = self.repl(em.url)
            s.sendline('em:coordinate(lcmcoord.request{action="x"})')
            harness.wait_for(lambda: em.paths("GET"), timeout=15, what="the first poll")
            s.send("\x03")
            s.expect(r"interrupted: asking the EM to cancel c-1 \(Ctrl-C again to stop "
                     r"waiting; the session stays\)\n", timeout=3)
            harness.wait_for(lambda: em.paths()[-1].endswith("/cancel"),
                             what="the cancel at the EM")
            sent = time.monotonic()
            s.send("\x03")
            text = s.expect_prompt(r"\n" + PROMPT, timeout=10)
            self.assertLess(time.monotonic() - sent,
                            self.SECOND_CTRL_C_BOUND * harness.TIME_FACTOR, text)
            self.assertIn("interrupted", text)
            self.assertNotIn("cancel request for coordination c-1 failed", text)
            self.assert_session_kept(s)

    def test_repl_survives_a_second_ctrl_c_at_once_while_the_post_is_out(self):
        with harness.EM("--delay", "60000") as em:
            s = self.repl(em.url)
            s.sendline('em:coordinate(lcmcoord.request{action="x"})')
            em.wait_journal(1)
            s.send("\x03")
            s.expect(r"interrupted: waiting up to 5\.0 s for the EM's answer to the POST, to "
                     r"cancel what it started \(Ctrl-C again to stop waiting; the session "
                     r"stays\)\n", timeout=3)
            sent = time.monotonic()
            s.send("\x03")
            text = s.expect_prompt(r"\n" + PROMPT, timeout=10)
            self.assertLess(time.monotonic() - sent,
                            self.SECOND_CTRL_C_BOUND * harness.TIME_FACTOR, text)
            self.assertIn("its answer to the POST was not awaited", text)
            self.assertNotIn("no answer to the POST within", text)
            self.assert_session_kept(s)
            em.stop(check=False)


class StdinHint(TerminalCase):
    def test_run_with_stdin_at_a_terminal_says_it_waits_for_the_parameters(self):
        with harness.EM() as em:
            s = PtySession([harness.LCMCOORD_BIN, "run", SCRIPT], env=self.env())
            self.addCleanup(s.close)
            s.expect(re.escape(WAITING_HINT) + r".*\n", timeout=10)
            s.send(json.dumps(vnfc_param(em.url)) + "\n")
            s.send("\x04")
            self.assertEqual(s.wait(timeout=20), 0, s.screen())
        self.assertEqual(s.screen().count(WAITING_HINT), 1)

    def test_run_with_stdin_from_a_pipe_says_nothing_of_it(self):
        with harness.EM() as em:
            done = self.run_on_pipes(vnfc_param(em.url))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn("waiting for the VNFC parameters", done.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
