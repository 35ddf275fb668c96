"""End-to-end: how `lcmcoord serve` writes (docs/serve.md, "Operations"): its log in text (the
default, as `lcmcoord em`) or JSON with --log-format; the store written off the engine thread,
so a slow store delays no other decision's wake-up; and a busy answer leaves nothing in the
store, on SQLite and on PostgreSQL. Each test runs its own server on a free port.
"""

import json
import os
import re
import subprocess
import threading
import unittest

from pg_cluster import PgCluster
from serve_harness import Serve, run_lcmcoord, wait_for, TIME_FACTOR

# A decision that keeps time: it sleeps `ticks` short sleeps and returns how late the latest
# wake-up was, in outputParams. Any other decision ends at once.
TICKING_HOOKS = r'''
local lcmcoord = require "lcmcoord"
return { decide = function(req, ctx)
  local p = req.inputParams or {}
  if p.busy then return {busy = p.busy} end
  if not p.ticks then return {result = "CONTINUE"} end
  local latest = 0
  for _ = 1, p.ticks do
    local start = lcmcoord.now()
    lcmcoord.sleep(p.tick)
    local late = (lcmcoord.now() - start) - p.tick
    if late > latest then latest = late end
  end
  return {result = "CONTINUE", outputParams = {latest = latest}}
end }
'''


class LogFormat(unittest.TestCase):
    def test_text_is_the_default_with_the_fields_as_key_value_and_no_line_forged(self):
        hooks = r'''
return { decide = function(req, ctx)
  ctx.log("two\nlines " .. (req.inputParams.note or ""))
  return {result = "CONTINUE"}
end }
'''
        s = Serve(hooks=hooks)
        i = s.args.index("--log-format")
        del s.args[i:i + 2]  # the program's own default, not the harness's json
        with s:
            r = s.post({"note": "forged\n{\"event\":\"decision\"}"})
            self.assertEqual(r.status, 201, r)
            cid = r.json()["id"]
            wait_for(lambda: re.search(r"^POST \S+ 201 [0-9.]+ ms .*id=" + cid, s.log_text(),
                                       re.M), what="the POST's text line")
            wait_for(lambda: "lcmcoord serve: decision " in s.log_text(), what="decision line")
        lines = s.log_text().splitlines()
        for line in lines:
            self.assertFalse(line.startswith("{"), lines)  # no JSON line at all
        post = next(line for line in lines if line.startswith("POST "))
        self.assertIn(" action=coordinate", post)
        self.assertIn(" result=CONTINUE", post)
        decision = next(line for line in lines if line.startswith("lcmcoord serve: decision "))
        self.assertIn(" id=" + cid, decision)
        self.assertIn(" result=CONTINUE", decision)
        # What the hook logs is one line whatever it holds: newlines come out escaped.
        hook = [line for line in lines if line.startswith("lcmcoord serve: hook ")]
        self.assertEqual(len(hook), 1, lines)
        self.assertNotIn("forged", "\n".join(l for l in lines if l not in hook))

    def test_json_gives_one_object_per_line(self):
        with Serve("--log-format", "json") as s:
            r = s.post({})
            self.assertEqual(r.status, 201, r)
            s.wait_log(lambda o: o.get("event") == "decision", "the decision's line")
            s.wait_log(lambda o: o.get("method") == "POST", "the POST's line")
            self.assertTrue(all(isinstance(o, dict) for o in s.log_lines()))

    def test_a_bad_log_format_is_one_line_and_exit_2(self):
        done = run_lcmcoord("serve", "--hooks", "/dev/null", "--log-format", "xml", timeout=10)
        self.assertEqual(done.returncode, 2, done)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertIn("--log-format needs text or json", done.stderr)


def psql(pg, sql):
    """One statement through Debian's psql, its first column's values."""
    done = subprocess.run([os.path.join(pg.bin_dir, "psql"), "-XAtq", "-d", pg.url, "-c", sql],
                          capture_output=True, text=True, timeout=30 * TIME_FACTOR)
    if done.returncode != 0:
        raise AssertionError(f"psql {sql!r}: {done.stderr}")
    return done.stdout.split()


class OnPostgreSQL(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster()
        cls.pg.start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def test_a_stuck_store_delays_no_decisions_wake_up(self):
        hold = 2.0 * TIME_FACTOR  # the store takes no write for this long
        tick = 0.05
        with Serve("--sync-budget", "0.05", hooks=TICKING_HOOKS, store=self.pg.url) as s:
            ticker = s.post({"vnfcInstanceId": "t", "ticks": int((hold + 1.5) / tick),
                             "tick": tick})
            self.assertEqual(ticker.status, 202, ticker)
            # Another session locks the coordinations against every write (reads go on).
            locker = subprocess.Popen(
                [os.path.join(self.pg.bin_dir, "psql"), "-XAtq", "-d", self.pg.url],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
            try:
                locker.stdin.write("BEGIN; LOCK TABLE serve_coord IN EXCLUSIVE MODE;\n")
                locker.stdin.flush()
                wait_for(lambda: psql(self.pg, "SELECT count(*) FROM pg_locks WHERE "
                                      "relation = 'serve_coord'::regclass AND "
                                      "mode = 'ExclusiveLock' AND granted") == ["1"],
                         what="the table locked")
                # Decisions finishing meanwhile: each one's write waits on the lock.
                answers = []
                posters = [threading.Thread(target=lambda i=i: answers.append(
                    s.post({"vnfcInstanceId": f"n{i}"}))) for i in range(6)]
                for t in posters:
                    t.start()
                wait_for(lambda: int(psql(self.pg, "SELECT count(*) FROM pg_stat_activity "
                                          "WHERE wait_event_type = 'Lock'")[0]) >= 1,
                         what="serve's writes waiting on the lock")
                stuck_at = len(answers)
                threading.Event().wait(hold)  # the store stays stuck this long (the point)
                self.assertEqual(len(answers), stuck_at)  # nothing answered unstored
            finally:
                locker.stdin.write("COMMIT;\n")
                locker.stdin.close()
                locker.wait(timeout=30 * TIME_FACTOR)
            for t in posters:
                t.join(timeout=30 * TIME_FACTOR)
            # Each answered once stored: decided (201) or, the budget passed, RUNNING (202).
            self.assertEqual(len(answers), 6)
            for r in answers:
                self.assertIn(r.status, (201, 202), r)
            done = s.wait_done(ticker.headers["location"], timeout=30)
            latest = done.json()["outputParams"]["latest"]
            # The ticker slept through the whole stuck time and was never woken late by it.
            self.assertLess(latest, 0.5 * TIME_FACTOR, done.json())

    def test_busy_leaves_no_row(self):
        with Serve(hooks=TICKING_HOOKS, store=self.pg.url) as s:
            r = s.post({"vnfcInstanceId": "b1", "busy": 5})
            self.assertEqual(r.status, 503, r)
            line = s.wait_log(lambda o: o.get("event") == "decision" and
                              o.get("result") == "busy", "the busy decision's line")
            # The id it would have had names nothing: no row, no key held.
            self.assertEqual(s.get(s.url + "/lcmcoord/v1/coordinations/" + line["id"]).status,
                             404)
            gone = line["id"].replace("'", "")
            self.assertEqual(psql(self.pg, f"SELECT count(*) FROM serve_coord WHERE id = "
                                  f"'{gone}'"), ["0"])
            self.assertEqual(psql(self.pg, f"SELECT count(*) FROM serve_coord_key WHERE "
                                  f"coord_id = '{gone}'"), ["0"])
            self.assertEqual(s.post({"vnfcInstanceId": "b1"}).status, 201)


if __name__ == "__main__":
    unittest.main()
