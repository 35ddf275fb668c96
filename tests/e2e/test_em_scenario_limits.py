"""What a scenario may cost the EM (issue 16, findings F1, F2, F9, F10, F11 of the review):
docs/em.md promises that a call ends by its deadline plus a small margin whatever the Lua
code does, that what leaves a Lua state has byte budgets, that scenario errors follow the
log options, that em.http_date refuses what it cannot spell, and that a slow call holds up
no other request. Each test here breaks one of those promises on the code before the fix.

Everything runs on 127.0.0.1, bounded in count and time; wall-clock bounds are multiplied
by harness.TIME_FACTOR. A legitimate client (another connection) is measured during each
attack.
"""

import http.client
import json
import os
import signal
import socket
import tempfile
import threading
import time
import unittest

from harness import EM, TIME_FACTOR, wait_for

DEADLINE = 2.0  # EM_SCENARIO_DEADLINE_MS
MARGIN = 0.5  # EM_SCENARIO_MARGIN_MS: docs/em.md, Scenarios
LEGIT_PATH = "/lcmcoord/api_versions"


def port_of(em):
    return int(em.url.rsplit(":", 1)[1])


def request(em, method, path, body=b"", timeout=15.0):
    """One request on its own connection: (status, body text, seconds); status None when
    no answer came within the timeout (scaled by TIME_FACTOR)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port_of(em), timeout=timeout * TIME_FACTOR)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        return resp.status, data, time.monotonic() - t0
    except (socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        return None, repr(e), time.monotonic() - t0
    finally:
        conn.close()


def memory_mib(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "asan" in f.read()


class Scenario:
    """A scenario file for one test."""

    def __init__(self, text):
        self.text = text

    def __enter__(self):
        self.file = tempfile.NamedTemporaryFile("w", suffix=".lua")
        self.file.write(self.text)
        self.file.flush()
        return self.file.name

    def __exit__(self, *exc):
        self.file.close()
        return False


class Runner(threading.Thread):
    """A request in the background; `result` is (status, body, seconds) once done."""

    def __init__(self, em, path, body=b""):
        super().__init__(daemon=True)
        self.em, self.path, self.body, self.result = em, path, body, None
        self.start()

    def run(self):
        self.result = request(self.em, "POST" if self.body else "GET", self.path, self.body)


ESCAPES = r"""
return function(req)
  local p = req.path
  if p == "/rep-empty" then
    string.rep("", math.maxinteger)
    return 200, nil, "done"
  elseif p == "/rep-empty-method" then
    local s = ""
    return 200, nil, "done " .. #s:rep(math.maxinteger)
  elseif p == "/move" then
    table.move({}, 1, math.maxinteger - 1, 1)
  elseif p == "/plainfind" then
    local s = string.rep("a", 1600000)
    s:find(string.rep("a", 800000) .. "b", 1, true)
  elseif p == "/backref" then
    string.rep("a", 3000000):find("^(.*)%1%1%1%1%1%1%1%1%1%1b")
  elseif p == "/concat" then
    -- every element is rawlen's 0, made on demand: nothing in memory to stop it
    table.concat(setmetatable({}, {__index = rawlen}), "", 1, 1000000000)
  elseif p == "/concat-len" then
    table.concat(setmetatable({}, {__index = rawlen,
                                   __len = function() return math.maxinteger end}))
  elseif p == "/remove-len" then
    table.remove(setmetatable({}, {__len = function() return math.maxinteger end}), 1)
  elseif p == "/sort" then
    local big, t = string.rep("a", 8000000), {}
    for i = 1, 3000 do t[i] = big end
    table.sort(t)
  elseif p == "/compare" then
    local a = string.rep("a", 30000000)
    local b = a .. ""
    while true do local _ = a < b end
  elseif p == "/format" then
    return 200, nil, string.format("%99999d", 1)
  end
end
"""

# (path, expected status, a word of the answer) — the documented outcome of each.
ESCAPE_CASES = [
    ("/rep-empty", 200, "done"),
    ("/rep-empty-method", 200, "done 0"),
    ("/move", 500, "longer than 2000 ms"),
    ("/plainfind", 500, "longer than 2000 ms"),
    ("/backref", 500, "too costly"),
    ("/concat", 500, "longer than 2000 ms"),
    ("/concat-len", 500, "longer than 2000 ms"),
    ("/remove-len", 500, "__len"),
    ("/sort", 500, "longer than 2000 ms"),
    ("/compare", 500, "longer than 2000 ms"),
    ("/format", 500, "invalid conversion"),
]


class DeadlineTest(unittest.TestCase):
    def test_c_functions_end_by_the_deadline_and_others_are_answered(self):
        with Scenario(ESCAPES) as path, EM("--quiet", "--scenario", path) as em:
            for case, status, needle in ESCAPE_CASES:
                runner = Runner(em, case)
                legit = request(em, "GET", LEGIT_PATH)
                runner.join((DEADLINE + MARGIN + 10) * TIME_FACTOR)
                code, body, seconds = runner.result or (None, "still running", None)
                print(f"\n  {case}: {code} in {seconds if seconds is None else round(seconds, 2)}"
                      f" s; legitimate GET meanwhile: {legit[0]} in {legit[2] * 1000:.0f} ms")
                self.assertEqual(code, status, f"{case}: {body[:300]}")
                self.assertIn(needle, body, case)
                self.assertLess(seconds, (DEADLINE + MARGIN) * TIME_FACTOR,
                                f"{case} ran past the deadline and its margin")
                self.assertEqual(legit[0], 200, f"legitimate GET during {case}: {legit[1]}")
                self.assertLess(legit[2], 1.0 * TIME_FACTOR,
                                f"legitimate GET during {case} too slow")
                self.assertIsNone(em.proc.poll(), f"{case} ended the EM")


BUDGETS = r"""
return function(req)
  local depth = tonumber(req.path:match("^/dag/(%d+)$"))
  if depth then
    local x = {}
    for i = 1, depth do x = {a = x, b = x} end
    return 200, nil, x
  end
  local mib = tonumber(req.path:match("^/state/(%d+)$"))
  if mib then
    em.state["k" .. req.count] = string.rep("x", mib * 1024 * 1024)
    return 204
  end
  if req.path == "/state-dag" then
    local x = {}
    for i = 1, 21 do x = {a = x, b = x} end
    em.state.dag = x
    return 204
  end
  if req.path == "/cycle" then
    local t = {}
    t.me = t
    return 200, nil, t
  end
  if req.path == "/shared" then  -- a table in two places is fine: it is copied twice
    local leaf = {n = 1}
    return 200, nil, {one = leaf, two = leaf}
  end
  if req.path == "/headers" then
    local h, v = {}, string.rep("v", 60000)
    for i = 1, 1000 do h["X-H" .. i] = v end
    return 200, h, "many headers"
  end
end
"""


class MemoryBudgetTest(unittest.TestCase):
    def test_what_leaves_a_state_is_bounded_in_bytes(self):
        with Scenario(BUDGETS) as path, EM("--quiet", "--scenario", path) as em:
            pid = em.proc.pid
            factor = 4 if sanitized(pid) else 1
            code, body, seconds = request(em, "GET", "/shared")
            self.assertEqual((code, json.loads(body)), (200, {"one": {"n": 1}, "two": {"n": 1}}))
            code, body, seconds = request(em, "GET", "/cycle")
            self.assertEqual(code, 500)
            self.assertIn("a cycle", body)
            # A DAG of 21 levels: a few KiB of Lua heap, 2^21 values once copied.
            runner = Runner(em, "/dag/21")
            legit = request(em, "GET", LEGIT_PATH)
            runner.join(30 * TIME_FACTOR)
            code, body, seconds = runner.result or (None, "still running", 0)
            print(f"\n  /dag/21: {code} in {seconds:.2f} s, VmHWM "
                  f"{memory_mib(pid)['VmHWM']:.0f} MiB; legitimate GET: {legit[0]} in "
                  f"{legit[2] * 1000:.0f} ms")
            self.assertEqual(code, 500, body)
            self.assertIn("too large to encode", body)
            self.assertLess(seconds, 1.0 * TIME_FACTOR)
            self.assertEqual(legit[0], 200)
            # em.state: one value over the budget is refused, and so is the value that
            # would take the sum past it; removing values makes room again.
            code, body, _ = request(em, "GET", "/state/24")
            self.assertEqual(code, 500)
            self.assertIn("too large to encode", body)
            code, body, _ = request(em, "GET", "/state-dag")
            self.assertEqual(code, 500)
            self.assertIn("too large to encode", body)
            answers = [request(em, "GET", "/state/6") for _ in range(3)]
            self.assertEqual([a[0] for a in answers], [204, 204, 500])
            self.assertIn("em.state would hold more than 16777216 bytes", answers[2][1])
            for _ in range(8):
                request(em, "GET", "/state/6")
            mem = memory_mib(pid)
            print(f"  after 11 tries to keep 6 MiB more in em.state: VmRSS {mem['VmRSS']:.0f} MiB, "
                  f"VmHWM {mem['VmHWM']:.0f} MiB")
            self.assertLess(mem["VmHWM"], 400 * factor)
            code, body, _ = request(em, "GET", "/headers")
            self.assertEqual(code, 500)
            self.assertIn("headers are larger than", body)


LOGGED = r"""
return function(req)
  if req.path == "/boom" then error("bad note: " .. req.body) end
end
"""
FORGED = b'x\r\n{"time":"forged","level":"info","message":"all good"}\r\nlcmcoord em: forged'


class LogTest(unittest.TestCase):
    def raise_many(self, em, count=60):
        for _ in range(count):
            code, _, _ = request(em, "POST", "/boom", FORGED)
            self.assertEqual(code, 500)

    def test_quiet_silences_scenario_errors(self):
        with Scenario(LOGGED) as path, EM("--quiet", "--scenario", path) as em:
            self.raise_many(em, 10)
            em.stop()
            self.assertEqual(em.stderr_text(), "")

    def test_json_format_escaping_and_rate_limit(self):
        with Scenario(LOGGED) as path, EM("--log-format", "json", "--scenario", path) as em:
            t0 = time.monotonic()
            self.raise_many(em)
            seconds = time.monotonic() - t0
            em.stop()
            lines = em.stderr_text().splitlines()
        errors = []
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            self.assertNotEqual(record.get("time"), "forged")
            if "scenario error" in record.get("message", ""):
                errors.append(record)
        print(f"\n  60 raising requests in {seconds:.1f} s: {len(errors)} scenario error lines")
        self.assertGreater(len(errors), 0)
        self.assertLessEqual(len(errors), 5 * (int(seconds) + 2))
        self.assertIn("\\x0d\\x0a", errors[0]["message"])
        self.assertTrue(any("suppressed" in json.loads(line).get("message", "")
                            for line in lines))

    def test_text_format_escapes_control_characters(self):
        with Scenario(LOGGED) as path, EM("--scenario", path) as em:
            self.raise_many(em, 3)
            em.stop()
            text = em.stderr_text()
        self.assertNotIn("\r", text)
        for line in text.splitlines():
            self.assertFalse(line.startswith('{"time":"forged"'), line)
            self.assertFalse(line.startswith("lcmcoord em: forged"), line)
        self.assertIn("lcmcoord em: scenario error: ", text)


DATES = r"""
return function(req)
  local n = ({["/max"] = math.maxinteger, ["/min"] = math.mininteger, ["/big"] = 1 << 60,
              ["/past"] = -os.time() - 1, ["/ok"] = 60})[req.path]
  if n then return 200, nil, em.http_date(n) end
end
"""


class HttpDateTest(unittest.TestCase):
    def test_offsets_out_of_range_are_refused(self):
        with Scenario(DATES) as path, EM("--quiet", "--scenario", path) as em:
            for case in ("/max", "/min", "/big", "/past"):
                code, body, _ = request(em, "GET", case)
                self.assertEqual(code, 500, f"{case}: {body}")
                self.assertIn("out of range", body)
            code, body, _ = request(em, "GET", "/ok")
            self.assertEqual(code, 200)
            self.assertRegex(body, r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")


SLOW = r"""
return function(req)
  if req.path == "/slow" then  -- runs to its deadline; pcall cannot catch it
    print("slow call running")
    while true do pcall(function() while true do end end) end
  end
  if req.path == "/fine" then return 200, nil, "fine" end
end
"""


class SlowCallTest(unittest.TestCase):
    def test_runaway_calls_hold_up_no_other_request(self):
        with Scenario(SLOW) as path, EM("--quiet", "--scenario", path) as em:
            stop = threading.Event()

            def attacker():
                while not stop.is_set():
                    request(em, "GET", "/slow")
            attackers = [threading.Thread(target=attacker, daemon=True) for _ in range(3)]
            for t in attackers:
                t.start()
            try:
                wait_for(lambda: em.stderr_text().count("slow call running") >= 3,
                         what="3 runaway calls running")
                latencies = []
                for i in range(20):
                    code, body, seconds = request(em, "GET", LEGIT_PATH if i % 2 else "/fine")
                    self.assertEqual(code, 200, body)
                    latencies.append(seconds)
            finally:
                stop.set()
            for t in attackers:
                t.join((DEADLINE + MARGIN + 10) * TIME_FACTOR)
            latencies.sort()
            print(f"\n  20 legitimate GETs during 3 runaway calls: median "
                  f"{latencies[10] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
            self.assertLess(latencies[-1], 0.5 * TIME_FACTOR)

    def test_calls_past_the_threads_wait_at_most_3_s_then_get_503(self):
        # 4 threads: 4 calls run, 8 wait. At 2 s four of them start (waited < 3 s); the
        # last four would start at 4 s, past their 3 s, and get 503 instead.
        with Scenario(SLOW) as path, EM("--quiet", "--scenario", path) as em:
            t0 = time.monotonic()
            runners = [Runner(em, "/slow") for _ in range(12)]
            for r in runners:
                r.join(3 * (DEADLINE + MARGIN + 2) * TIME_FACTOR)
            seconds = time.monotonic() - t0
            results = [r.result for r in runners]
            statuses = sorted(code for code, _, _ in results)
            print(f"\n  12 runaway calls at once: {statuses} in {seconds:.1f} s")
            self.assertEqual(statuses, [500] * 8 + [503] * 4)
            for code, body, _ in results:
                self.assertIn("longer than" if code == 500 else "busy", body)
            self.assertLess(seconds, (2 * (DEADLINE + MARGIN) + 1) * TIME_FACTOR)

    def test_a_full_queue_answers_503_at_once(self):
        with Scenario(SLOW) as path, \
                EM("--quiet", "--scenario", path, "--max-per-client", "400") as em:
            socks = []
            try:
                for _ in range(4 + 256 + 20):
                    s = socket.create_connection(("127.0.0.1", port_of(em)))
                    s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                    socks.append(s)
                answers = {}

                def refused():
                    for s in socks:
                        if s not in answers:
                            s.setblocking(False)
                            try:
                                answers[s] = s.recv(65536)
                            except BlockingIOError:
                                pass
                    return [a for a in answers.values() if b"too many scenario calls" in a]
                got = wait_for(lambda: (lambda r: r if len(r) >= 20 else None)(refused()),
                               timeout=1.5, what="20 calls refused at once")
                self.assertEqual(len(got), 20)
                self.assertTrue(all(a.startswith(b"HTTP/1.1 503") for a in got))
            finally:
                for s in socks:
                    s.close()

    def test_a_half_closed_client_gets_its_scenario_answer(self):
        for args in ((), ("--delay", "200")):
            with Scenario(SLOW) as path, EM("--quiet", "--scenario", path, *args) as em:
                for _ in range(5):
                    s = socket.create_connection(("127.0.0.1", port_of(em)))
                    s.sendall(b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    s.shutdown(socket.SHUT_WR)
                    s.settimeout(5 * TIME_FACTOR)
                    out = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        out += chunk
                    s.close()
                    self.assertTrue(out.startswith(b"HTTP/1.1 200"), (args, out[:200]))
                    self.assertTrue(out.endswith(b"fine"), (args, out[-200:]))

    def test_sigterm_with_runaway_calls_is_prompt(self):
        with Scenario(SLOW) as path, EM("--quiet", "--scenario", path) as em:
            runners = [Runner(em, "/slow") for _ in range(6)]
            wait_for(lambda: em.stderr_text().count("slow call running") >= 4,
                     what="4 runaway calls running")
            t0 = time.monotonic()
            em.proc.send_signal(signal.SIGTERM)
            rc = em.proc.wait(timeout=10 * TIME_FACTOR)
            seconds = time.monotonic() - t0
            print(f"\n  SIGTERM with 4 runaway calls and 2 queued: exit {rc} in "
                  f"{seconds * 1000:.0f} ms")
            self.assertEqual(rc, 0)
            self.assertLess(seconds, 1.5 * TIME_FACTOR)
            for r in runners:
                r.join(5 * TIME_FACTOR)


if __name__ == "__main__":
    unittest.main(verbosity=2)
