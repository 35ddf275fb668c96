"""End-to-end tests of the runtime's structured log events as `lcmcoord run` renders them:
every event type a coordination, a single request with a retry policy, the OAuth 2.0 token
cache and an interrupt produce appears with its fields in `--log-format json`, one valid
JSON object per line; the text lines are the events' own messages; and nothing is read
back out of prose: a script's line that looks like the runtime's stays a plain message,
and an EM's ProblemDetails detail or plain-text body full of quotes, backslashes, control
characters, bidi overrides and bytes that are not UTF-8 comes out escaped, and the same, in
both formats.
"""

import json
import os
import re
import signal
import subprocess
import tempfile

import harness
from harness import EM

ODD_DETAIL_LUA = ('say \\"hi\\" \\\\ back\\nslash\\t\\27[31m red \\u{9b}31m \\u{202e}evil '
                  '\\u{e9}t\\u{e9} coordination 7: ABORT, polling in 9 s')
# What of it reaches a line: control characters become one space (the runtime's one-line
# rule), C1 controls and bidi overrides are escaped (the host's safe text).
ODD_DETAIL_SHOWN = ('say "hi" \\ back slash [31m red \\u009b31m \\u202eevil \u00e9t\u00e9 '
                    'coordination 7: ABORT, polling in 9 s')
ODD_BODY_SHOWN = "plain \\xff\\xfe bytes ]0;title end"

# The EM's side: which action gets which answer.
SCENARIO = r"""
local ODD = "@ODD@"
return function(req)
  if req.path == "/flaky" then
    em.state.flaky = (em.state.flaky or 0) + 1
    if em.state.flaky == 1 then
      return 503, {["Retry-After"] = "0"}, em.problem(503, "warming up")
    end
    return 200, nil, {ok = true}
  end
  -- The slow coordination's polls ask for more than its deadline leaves in the end.
  if req.method == "GET" and em.state.slow == em.base_url .. req.path then
    return 202, {["Retry-After"] = "@SLOW_RETRY_AFTER@"}, ""
  end
  if req.method ~= "POST" or req.path ~= "/lcmcoord/v1/coordinations" or not req.json then
    return
  end
  local action = req.json.coordinationActionName
  if action == "prv.events.first" then
    em.state.first = (em.state.first or 0) + 1
    if em.state.first == 1 then
      return 503, {["Retry-After"] = "0"}, em.problem(503, "busy")
    end
    return em.accept(req.json, {polls = 1})
  elseif action == "prv.events.refused" then
    return 409, nil, em.problem(409, ODD)
  elseif action == "prv.events.plain" then
    return 409, {["Content-Type"] = "text/plain"}, "plain \xff\xfe bytes \27]0;title\7 end"
  elseif action == "prv.events.slow" then
    local status, headers, body = em.accept(req.json, {polls = 100000})
    em.state.slow = headers.Location
    return status, headers, body
  end
end
""".replace("@ODD@", ODD_DETAIL_LUA)
# The slow coordination: polls asked to wait 3 s under a 5 s deadline (slower machines get
# both stretched): the first wait is as asked, the second is cut to a last look.
SLOW_RETRY_AFTER = max(3, round(3 * harness.TIME_FACTOR))
SLOW_TIMEOUT = SLOW_RETRY_AFTER * 5 / 3
SCENARIO = SCENARIO.replace("@SLOW_RETRY_AFTER@", str(SLOW_RETRY_AFTER))

# The client's side: one of each. Logs a line that reads like the runtime's first.
SCRIPT = r"""
local lcmcoord = require "lcmcoord"
local p = ...
for _, line in ipairs(p.notes) do lcmcoord.log.info("%s", line) end
local c <close> = lcmcoord.client{endpoint = p.endpoint, authentication = p.authentication,
                                  wait_floor = 0.05, default_interval = 0.05}
local function coordinate(action, timeout)
  local r, err = c:coordinate(lcmcoord.request{action = action}, timeout)
  io.write(action, " ", r and r.coordinationResult or err.kind, "\n")
end
for _, action in ipairs(p.actions) do coordinate(action, p.timeout) end
if p.flaky then
  local r, err = lcmcoord.http.request{url = p.endpoint .. "/flaky", auth = p.authentication,
    retry = {attempts = 3, base = 0.01, retry_on = {503}}}
  io.write("flaky ", r and r.status or err.kind, "\n")
end
"""

NOTES = ["coordination 123e4567: CONTINUE", "POST http://em.example/lcmcoord/v1/coordinations",
         "EM busy (503), retrying in 5 s, 295 s left", "201 Created (3 ms)",
         "asking http://em.example/token for an access token"]

ALL_FIELDS = {"time", "level", "message", "event", "reason", "method", "url", "status", "ms",
              "wait", "wait_asked", "time_left", "attempt", "error_kind", "result",
              "coordination_id", "action"}


class LogEventsTest(harness.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory()
        self.addCleanup(self._dir.cleanup)
        self.scenario = self.write("scenario.lua", SCENARIO)
        self.script = self.write("events.lua", SCRIPT)

    def write(self, name, text):
        path = os.path.join(self._dir.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def em(self, *args):
        return EM("--scenario", self.scenario, "--retry-after", "0", *args)

    def run_script(self, em, log_format, actions, flaky=False, timeout=20, oauth2=False):
        param = {"endpoint": em.url, "actions": actions, "notes": NOTES, "flaky": flaky,
                 "timeout": timeout}
        if oauth2:
            param["authentication"] = {
                "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                "paramsOauth2ClientCredentials": {
                    "clientId": "vnfm", "clientPassword": "s3cret-for-events",
                    "tokenEndpoint": em.url + "/token"}}
        done = subprocess.run(
            [*harness.WRAPPER, harness.LCMCOORD_BIN, "run", "--any-params", "-v",
             "--log-format", log_format, self.script],
            input=json.dumps(param).encode(), capture_output=True,
            timeout=120 * harness.TIME_FACTOR,
            env=dict(os.environ, LCMCOORD_CONFIG=os.devnull, LCMCOORD_LOG_FORMAT=""))
        self.assertNotIn(b"s3cret-for-events", done.stderr + done.stdout)
        return done

    def json_lines(self, stderr):
        """Every line of stderr is one JSON object with the fields documented, no other."""
        text = stderr.decode("utf-8")
        self.assertTrue(text.endswith("\n"), text)
        lines = []
        for raw in text.split("\n")[:-1]:
            obj = json.loads(raw)
            self.assertIsInstance(obj, dict, raw)
            self.assertLessEqual(set(obj), ALL_FIELDS, raw)
            self.assertRegex(obj["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            lines.append(obj)
        return lines

    def one(self, lines, event, **fields):
        """The lines of `event` whose fields have the values given; at least one."""
        found = [l for l in lines if l["event"] == event
                 and all(l.get(k) == v for k, v in fields.items())]
        self.assertTrue(found, f"no {event} event with {fields} in {lines}")
        return found

    def test_a_coordination_reports_each_step_with_its_fields(self):
        with self.em("--oauth2", "vnfm:s3cret-for-events") as em:
            done = self.run_script(em, "json", ["prv.events.first"], flaky=True, oauth2=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.decode().split("\n")[:2],
                         ["prv.events.first CONTINUE", "flaky 200"])
        lines = self.json_lines(done.stderr)
        action = "prv.events.first"
        post_url = em.url + "/lcmcoord/v1/coordinations"

        # The secret goes over plain http: warned about.
        self.one(lines, "warning", level="warn")
        for line in lines:
            self.assertEqual(line["level"] == "warn", line["event"] == "warning", line)
        (asking,) = self.one(lines, "token", reason="asking")
        self.assertEqual((asking["method"], asking["url"]), ("POST", em.url + "/token"))
        self.one(lines, "token", reason="received", url=em.url + "/token")

        posts = self.one(lines, "request", method="POST", url=post_url, action=action)
        self.assertEqual(len(posts), 2, posts)
        self.assertNotIn("coordination_id", posts[0])  # the EM has not given one yet
        busy = self.one(lines, "response", status=503, method="POST", url=post_url)[0]
        self.assertIsInstance(busy["ms"], float)
        (wait_busy,) = self.one(lines, "wait", reason="busy", status=503, method="POST",
                                attempt=1, action=action)
        self.assertIsInstance(wait_busy["wait"], float)
        self.assertTrue(0 < wait_busy["time_left"] <= 20, wait_busy)
        (accepted,) = self.one(lines, "wait", reason="accepted", status=202, method="GET",
                               attempt=2, action=action)
        coordination_id = accepted["coordination_id"]
        self.assertRegex(coordination_id, r"^[0-9a-f-]{36}$")
        poll_url = post_url + "/" + coordination_id
        self.one(lines, "request", method="GET", url=poll_url,
                 coordination_id=coordination_id)
        self.one(lines, "wait", reason="in_progress", status=202, attempt=1,
                 coordination_id=coordination_id)
        self.one(lines, "response", status=200, method="GET", url=poll_url)
        (result,) = self.one(lines, "result")
        self.assertEqual((result["result"], result["coordination_id"], result["action"]),
                         ("CONTINUE", coordination_id, action))

        # The single request's retry policy.
        (retry,) = self.one(lines, "retry", reason="status", status=503, attempt=1,
                            method="GET", url=em.url + "/flaky")
        self.assertGreaterEqual(retry["wait"], 0)
        self.assertGreater(retry["time_left"], 0)
        self.assertNotIn("action", retry)  # not a coordination's
        self.one(lines, "response", status=200, url=em.url + "/flaky")

    def test_a_refused_coordination_names_the_failure(self):
        with self.em() as em:
            done = self.run_script(em, "json", ["prv.events.refused", "prv.events.plain"])
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = self.json_lines(done.stderr)
        failed = self.one(lines, "failed")
        self.assertEqual(len(failed), 2, failed)
        for line, action in zip(failed, ("prv.events.refused", "prv.events.plain")):
            self.assertEqual(
                {k: line.get(k) for k in ("status", "error_kind", "method", "url", "action")},
                {"status": 409, "error_kind": "http", "method": "POST",
                 "url": em.url + "/lcmcoord/v1/coordinations", "action": action})
            self.assertNotIn("result", line)
            self.assertNotIn("wait", line)

    def test_the_deadline_cancels_and_says_so(self):
        with self.em() as em:
            done = self.run_script(em, "json", ["prv.events.slow"], timeout=SLOW_TIMEOUT)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.decode(), "prv.events.slow deadline\n")
        lines = self.json_lines(done.stderr)
        (last_poll,) = [l for l in lines if "wait_asked" in l]
        self.assertEqual(last_poll["event"], "wait")
        self.assertLess(last_poll["wait"], last_poll["wait_asked"] + 1e-9)
        (asking,) = self.one(lines, "cancel", reason="asking", method="POST",
                             error_kind="deadline")
        self.assertTrue(asking["url"].endswith(asking["coordination_id"] + "/cancel"), asking)
        self.one(lines, "cancel", reason="accepted", coordination_id=asking["coordination_id"])
        (failed,) = self.one(lines, "failed", error_kind="deadline")
        self.assertEqual(failed["coordination_id"], asking["coordination_id"])

    def test_an_interrupt_is_an_event(self):
        with self.em("--delay", "600000") as em:
            param = {"endpoint": em.url, "actions": ["prv.events.stalled"], "notes": [],
                     "timeout": 60}
            proc = subprocess.Popen(
                [*harness.WRAPPER, harness.LCMCOORD_BIN, "run", "--any-params", "-v",
                 "--log-format", "json", self.script],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                encoding="utf-8")
            try:
                proc.stdin.write(json.dumps(param))
                proc.stdin.close()
                watch = harness.LineWatch(proc.stderr)
                em.wait_journal(1)
                watch.wait_line(r'"event":"request"')
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30 * harness.TIME_FACTOR)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
        self.assertEqual(proc.returncode, 128 + signal.SIGINT)
        stderr = watch.text().encode()
        proc.stderr.close()
        # The last line is the outcome in plain text, as Tacker reads it.
        *events, outcome = stderr.decode().split("\n")[:-1]
        self.assertTrue(outcome.startswith("lcmcoord: interrupted by SIGINT"), outcome)
        lines = self.json_lines(("\n".join(events) + "\n").encode())
        self.one(lines, "interrupt", reason="in_flight")
        self.one(lines, "wait", reason="post_answer", method="POST", error_kind="cancelled",
                 action="prv.events.stalled", wait=5.0)
        self.one(lines, "warning", reason="left_behind", level="warn",
                 action="prv.events.stalled")

    def test_a_script_line_that_reads_like_the_runtime_stays_a_message(self):
        with self.em() as em:
            done = self.run_script(em, "json", [])
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = self.json_lines(done.stderr)
        self.assertEqual([l["message"] for l in lines], NOTES)
        for line in lines:
            self.assertEqual(set(line), {"time", "level", "message", "event"}, line)
            self.assertEqual(line["event"], "message")

    def test_text_lines_are_the_json_messages(self):
        """Both formats render the same events: the text line is "lcmcoord: " and the
        event's message, whatever the EM put in it (durations aside)."""
        actions = ["prv.events.refused", "prv.events.plain", "prv.events.first"]
        renders = {}
        for log_format in ("text", "json"):
            with self.em() as em:
                done = self.run_script(em, log_format, actions)
            self.assertEqual(done.returncode, 0, done.stderr)
            text = done.stderr.decode("utf-8")
            # Ids, ports and durations differ from run to run.
            text = text.replace(em.url, "EM")
            renders[log_format] = text
        json_messages = [json.loads(l)["message"] for l in renders["json"].splitlines()]
        text_lines = renders["text"].splitlines()

        def masked(line):
            line = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "ID", line)
            return re.sub(r"\(\d+ ms\)|in \d+(\.\d+)? s|\d+(\.\d+)? s left", "N", line)
        self.assertEqual([masked(l) for l in text_lines],
                         [masked("lcmcoord: " + m) for m in json_messages])
        refused = [l for l in text_lines if "coordination failed" in l]
        self.assertEqual(refused, [
            "lcmcoord: coordination failed: EM answered 409 Conflict: " + ODD_DETAIL_SHOWN
            + " (POST /lcmcoord/v1/coordinations)",
            "lcmcoord: coordination failed: EM answered 409 Conflict: " + ODD_BODY_SHOWN
            + " (POST /lcmcoord/v1/coordinations)"])
        # Nothing that would drive a terminal, in either format.
        for text in renders.values():
            self.assertNotRegex(text, "[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u202a-\u202e]")


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
