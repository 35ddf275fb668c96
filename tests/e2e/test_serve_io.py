"""End-to-end: how `lcmcoord serve` writes (docs/serve.md, "Operations"): its log in text (the
default, as `lcmcoord em`) or JSON with --log-format; the store written off the engine thread,
so a slow store delays no other decision's wake-up; and a busy answer leaves nothing in the
store, on SQLite and on PostgreSQL. Each test runs its own server on a free port.
"""

import json
import os
import re
import time
import unittest

from serve_harness import Serve, run_lcmcoord, wait_for, TIME_FACTOR


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


if __name__ == "__main__":
    unittest.main()
