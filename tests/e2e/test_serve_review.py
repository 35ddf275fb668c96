"""End-to-end: `lcmcoord serve` against hooks that misbehave in the ways a careless operator's
hooks do (docs/serve.md, "The hook API": a Lua error or a return value of another shape ends
that coordination as ABORT, logged, and the server keeps running). Each case here once
stopped the whole server: results and error values whose metamethods raise or try to yield,
a hook that replaced the global `package`, a reloaded file whose error cannot be shown, and
a decide that loops without ever waiting.
"""

import signal
import unittest

from serve_harness import Serve, curl, wait_for

# inputParams.how picks the misbehaviour; anything else decides CONTINUE.
HOSTILE_HOOKS = r'''
local lcmcoord = require "lcmcoord"
local bad_text = {__tostring = function() error("cannot say") end}
return {
  decide = function(req, ctx)
    local how = (req.inputParams or {}).how
    if how == "index_raises" then
      return setmetatable({}, {__index = function() error("no field for you") end})
    elseif how == "index_yields" then
      return setmetatable({}, {__index = function() coroutine.yield() end})
    elseif how == "error_tostring_raises" then
      error(setmetatable({}, bad_text))
    elseif how == "no_package" then
      package = nil
      return {result = "CONTINUE", outputParams = {a = 1}}
    elseif how == "warnings_not_text" then
      return {result = "CONTINUE", warnings = {"fine", 42, {a = 1}}}
    elseif how == "warnings_empty" then
      return {result = "CONTINUE", warnings = {}}
    elseif how == "spin" then
      while true do end
    end
    return {result = "CONTINUE"}
  end,
}
'''


class ResultsThatCannotBeRead(unittest.TestCase):
    def test_each_ends_as_abort_with_a_detail_and_the_server_keeps_running(self):
        with Serve("--exclusive", "none", hooks=HOSTILE_HOOKS) as s:
            for how in ("index_raises", "index_yields", "error_tostring_raises"):
                r = s.post({"how": how}, extra=("--max-time", "10"))
                self.assertEqual(r.status, 201, (how, r))
                doc = r.json()
                self.assertEqual(doc["coordinationResult"], "ABORT", how)
                self.assertIn("the EM's decision failed", doc["error"]["detail"], how)
            self.assertIsNone(s.proc.poll())
            self.assertEqual(curl("GET", s.url + "/healthz").status, 200)
            self.assertEqual(s.post({}).json()["coordinationResult"], "CONTINUE")

    def test_a_hook_that_replaced_package_still_has_its_output_params_encoded(self):
        with Serve("--exclusive", "none", hooks=HOSTILE_HOOKS) as s:
            r = s.post({"how": "no_package"}, extra=("--max-time", "10"))
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["coordinationResult"], "CONTINUE")
            self.assertEqual(r.json()["outputParams"], {"a": 1})


class Warnings(unittest.TestCase):
    def test_a_list_holding_non_strings_is_a_hook_error_not_an_lcmcoord_a_vnfm_refuses(self):
        """warnings = {"fine", 42, {...}} was answered 201 CONTINUE with those values, which
        lcmcoord's own client refuses ("warnings list holds a non-string")."""
        with Serve("--exclusive", "none", hooks=HOSTILE_HOOKS) as s:
            r = s.post({"how": "warnings_not_text"})
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["coordinationResult"], "ABORT", r.json())
            self.assertIn("list of strings", r.json()["error"]["detail"])
            self.assertNotIn("warnings", r.json())
            # An empty table is no warnings at all.
            r = s.post({"how": "warnings_empty"})
            self.assertEqual(r.json()["coordinationResult"], "CONTINUE", r.json())
            self.assertNotIn("warnings", r.json())


class Spinning(unittest.TestCase):
    def test_a_decide_that_never_waits_is_stopped_and_holds_up_nothing_for_long(self):
        """`while true do end` in decide held the engine thread forever: no answer to it or
        to anyone, and SIGTERM ended in SIGABRT. It is stopped after its CPU slice (2 s)."""
        with Serve("--exclusive", "none", "--sync-budget", "0.2",
                   hooks=HOSTILE_HOOKS) as s:
            spin = s.post({"how": "spin"}, extra=("--max-time", "30"))
            self.assertIn(spin.status, (201, 202), spin)
            other = s.post({}, extra=("--max-time", "30"))
            self.assertEqual(other.status, 201, other)
            if spin.status == 202:
                spin = s.wait_done(spin.headers["location"], timeout=30)
            detail = spin.json()["error"]["detail"]
            self.assertEqual(spin.json()["coordinationResult"], "ABORT")
            self.assertIn("of CPU without waiting", detail)
            # A pcall around the loop does not keep it alive.
        with Serve("--exclusive", "none", "--sync-budget", "0.2", hooks=r'''
return { decide = function(req, ctx)
  while true do pcall(function() while true do end end) end
end }
''') as s:
            r = s.post({}, extra=("--max-time", "30"))
            if r.status == 202:
                r = s.wait_done(r.headers["location"], timeout=30)
            self.assertIn("of CPU without waiting", r.json()["error"]["detail"])
            self.assertEqual(s.stop(), 0)


class ShutdownWithTheEngineHeld(unittest.TestCase):
    def test_sigterm_while_a_hook_blocks_in_os_execute_exits_0_and_stores_abort(self):
        """A hook blocked in a call that never yields (os.execute) held the engine past the
        shutdown grace: MHD_stop_daemon met the suspended POST and aborted the process
        (SIGABRT), the 202'd coordination left RUNNING."""
        hooks = r'''
local lcmcoord = require "lcmcoord"
return { decide = function(req, ctx)
  local p = req.inputParams or {}
  if p.shell then lcmcoord.sleep(0.3) os.execute("exec sleep " .. p.shell .. " >/dev/null 2>&1") end
  return {result = "CONTINUE"}
end }
'''
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            s = Serve("--exclusive", "none", "--sync-budget", "0.1", "--shutdown-grace", "0.2",
                      hooks=hooks, directory=d).start()
            try:
                held = s.post({"shell": 30})
                self.assertEqual(held.status, 202, held)
                s.wait_log(lambda o: o.get("status") == 202, "the 202 logged")
            finally:
                rc = s.stop(check=False, timeout=30)
            self.assertEqual(rc, 0, s.log_text()[-2000:])
            line = next(o for o in s.log_lines()
                        if o.get("event") == "shutdown" and o.get("level") == "error")
            self.assertEqual(line["ended_as_abort"], 1, line)
            with Serve(hooks=hooks, directory=d) as again:
                location = held.headers["location"]
                r = again.get(again.url + location[location.index("/lcmcoord/"):])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["coordinationResult"], "ABORT")
                self.assertEqual(r.json()["error"]["detail"], "the EM shut down before deciding")


class Secrets(unittest.TestCase):
    def test_a_token_in_the_query_of_a_hooks_request_never_reaches_the_log(self):
        """The runtime logs each request of a hook ("GET URL"), query included: an
        access_token=... in it went to the serve log as it was."""
        hooks = r'''
local lcmcoord = require "lcmcoord"
return { decide = function(req, ctx)
  local r, err = lcmcoord.http.request{
    url = "http://127.0.0.1:1/drain?access_token=QUERYSECRET1&x=1", timeout = 2}
  return {result = "CONTINUE"}
end }
'''
        with Serve(hooks=hooks) as s:
            r = s.post({}, extra=("--max-time", "20"))
            self.assertEqual(r.status, 201, r)
            s.wait_log(lambda o: o.get("event") == "decision", "the decision logged")
            requests = [o for o in s.log_lines()
                        if o.get("event") == "hook" and "/drain" in o.get("message", "")]
            self.assertTrue(requests, s.log_text())
            self.assertNotIn("QUERYSECRET1", s.log_text())
            self.assertNotIn("QUERYSECRET1", r.body)


class ShutdownWithTheEngineHeldOnPostgres(unittest.TestCase):
    def test_only_this_instances_coordination_ends_as_abort(self):
        from pg_cluster import PgCluster
        pg = PgCluster()
        pg.start()
        self.addCleanup(pg.stop)
        hooks = r'''
local lcmcoord = require "lcmcoord"
return { decide = function(req, ctx)
  local p = req.inputParams or {}
  if p.shell then lcmcoord.sleep(0.3) os.execute("exec sleep " .. p.shell .. " >/dev/null 2>&1") end
  if p.sleep then lcmcoord.sleep(p.sleep) end
  return {result = "CONTINUE"}
end }
'''
        common = ("--sync-budget", "0.1", "--exclusive", "none", "--shutdown-grace", "0.2")
        a = Serve(*common, "--instance-id", "a", store=pg.url, hooks=hooks)
        b = Serve(*common, "--instance-id", "b", store=pg.url, hooks=hooks)
        with b:
            a.start()
            try:
                held = a.post({"shell": 30})
                self.assertEqual(held.status, 202, held)
                other = b.post({"sleep": 3600})
                self.assertEqual(other.status, 202, other)
            finally:
                rc = a.stop(check=False, timeout=30)
            self.assertEqual(rc, 0, a.log_text()[-2000:])
            base = b.url + "/lcmcoord/v1/coordinations/"
            done = b.get(base + held.headers["location"].rsplit("/", 1)[1])
            self.assertEqual(done.status, 200, done)
            self.assertEqual(done.json()["error"]["detail"], "the EM shut down before deciding")
            # b's own decision is b's: still running.
            self.assertEqual(b.get(base + other.headers["location"].rsplit("/", 1)[1]).status,
                             202)


class Reload(unittest.TestCase):
    def test_a_file_whose_error_cannot_be_shown_keeps_the_old_hooks(self):
        with Serve(hooks=HOSTILE_HOOKS) as s:
            with open(s.hooks_path, "w") as f:
                f.write('error(setmetatable({}, {__tostring = function() error("x") end}))\n')
            s.proc.send_signal(signal.SIGHUP)
            s.wait_log(lambda o: o.get("event") == "reload", "the reload logged")
            line = next(o for o in s.log_lines() if o.get("event") == "reload")
            self.assertEqual(line.get("level"), "error", line)
            self.assertIsNone(s.proc.poll())
            self.assertEqual(s.post({}).json()["coordinationResult"], "CONTINUE")

    def test_a_file_that_loops_forever_fails_to_reload_instead_of_holding_the_engine(self):
        """The reload ran the file on the engine thread with no bound: a `while true do end`
        at its top level held every request forever."""
        with Serve(hooks=HOSTILE_HOOKS) as s:
            with open(s.hooks_path, "w") as f:
                f.write("while true do end\n")
            s.proc.send_signal(signal.SIGHUP)
            line = s.wait_log(lambda o: o.get("event") == "reload", "the reload logged",
                              timeout=30)
            self.assertEqual(line.get("level"), "error", line)
            self.assertIn("of CPU without waiting", line["message"])
            self.assertEqual(s.post({}).json()["coordinationResult"], "CONTINUE")
            # A good file still reloads after it.
            with open(s.hooks_path, "w") as f:
                f.write('return {decide = function() return {result = "ABORT"} end}\n')
            s.proc.send_signal(signal.SIGHUP)
            s.wait_log(lambda o: o.get("event") == "reload" and "level" not in o,
                       "the second reload logged")
            self.assertEqual(s.post({}).json()["coordinationResult"], "ABORT")


if __name__ == "__main__":
    unittest.main()
