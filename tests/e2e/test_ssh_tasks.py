"""End-to-end: SSH inside Lua tasks (lcmc_lua_spawn) against a real OpenSSH sshd.

Inside a task ssh.connect (lcmc_ssh_connect_start) and s:exec (lcmc_ssh_exec_start) start
their work without waiting and yield, so connections and commands to several VNFCs run at
once and a VNFC that never answers holds no other task; what they return is what the
blocking forms return (output, exit status, a deadline's or a refused key's error).
Aborting a task abandons its connection or command; closing a session while another task's
command runs ends that command with a transport error. The host is tests/unit/lua_tasks_driver.c; the sshd
is the one test_ssh.py starts (its own config, keys and free port in a temporary dir).
"""

import json
import os
import socket
import subprocess
import tempfile
import unittest

import harness
import test_ssh

DRIVER = os.environ.get("LCMC_TASKS_DRIVER", "lua_tasks_driver")

PRELUDE = r"""
local lcmcoord = require "lcmcoord"
local p = lcmcoord.json.decode((...))
local function connect() return assert(lcmcoord.ssh.connect(p.connect)) end
-- sshd may take seconds to start a command on a loaded machine
local WAIT = 120
local function failure(err)
  return {kind = err.kind, message = err.message, stdout = err.stdout}
end
local function outcome(r, err)
  if r then return {status = r.status, stdout = r.stdout, stderr = r.stderr} end
  return {error = failure(err)}
end
"""


def setUpModule():
    test_ssh.setUpModule()


def tearDownModule():
    test_ssh.tearDownModule()


class SshTasks(test_ssh.SshTestCase):
    def setUp(self):
        super().setUp()
        # A peer that takes connections and never says a word: an SSH server that hangs.
        self.silent = socket.socket()
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(16)
        self.addCleanup(self.silent.close)

    def run_tasks(self, body, env=None, timeout=120):
        """Runs PRELUDE + body (which returns the task functions); returns the JSON out.
        SILENT in the script is the port of the silent peer."""
        body = f"local SILENT = {self.silent.getsockname()[1]}\n" + body
        with tempfile.NamedTemporaryFile("w", suffix=".lua", dir=test_ssh.TMP,
                                         delete=False) as f:
            f.write(PRELUDE + body)
            path = f.name
        params = json.dumps({"connect": self.connect_options()})
        merged = dict(os.environ, **(env or {}))
        done = subprocess.run([DRIVER, path, params], capture_output=True, text=True,
                              timeout=timeout * harness.TIME_FACTOR, env=merged)
        os.unlink(path)
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout)

    def test_commands_on_several_sessions_run_at_once(self):
        # sshd may take seconds to start a command on a loaded machine: what shows that the
        # commands ran at once is that every one started before any ended.
        out = self.run_tasks(r"""
local tasks = {}
for i = 1, 6 do
  tasks[i] = function()
    local s = connect()
    local started = lcmcoord.now()
    local r, err = s:exec("sleep 2; echo task" .. i, 120)
    local ended = lcmcoord.now()
    s:close()
    local o = outcome(r, err)
    o.started, o.ended = started, ended
    return o
  end
end
return tasks
""")
        results = [task["result"] for task in out["tasks"]]
        for i, (task, result) in enumerate(zip(out["tasks"], results), 1):
            self.assertEqual(task["status"], "ok", task)
            self.assertEqual((result["status"], result["stdout"], result["stderr"]),
                             (0, f"task{i}\n", ""), result)
        self.assertLess(max(r["started"] for r in results), min(r["ended"] for r in results),
                        results)

    def test_results_are_those_of_the_blocking_exec(self):
        # The main chunk runs blocking; the task runs the same commands yielding.
        out = self.run_tasks(r"""
local commands = {{"echo out; echo err >&2; exit 3"}, {"kill -TERM $$"},
                  {"echo partial; sleep 5", 0.5}, {"head -c 100000 /dev/zero | tr '\\0' x"}}
local function run_all()
  local got = {}
  for i, c in ipairs(commands) do
    local s = connect()
    local r, err = s:exec(c[1], c[2] or WAIT)
    got[i] = outcome(r, err)
    if r then got[i].signal = r.signal; got[i].length = #r.stdout; got[i].stdout = nil end
    s:close()
  end
  return lcmcoord.json.encode(got)
end
local function connect_failures()
  local got = {}
  local silent = {}
  for k, v in pairs(p.connect) do silent[k] = v end
  silent.port, silent.timeout = SILENT, 1
  got[1] = outcome(lcmcoord.ssh.connect(silent))
  local pinned = {}
  for k, v in pairs(p.connect) do pinned[k] = v end
  pinned.host_key_sha256 = "SHA256:" .. string.rep("A", 43)
  got[2] = outcome(lcmcoord.ssh.connect(pinned))
  return lcmcoord.json.encode(got)
end
local blocking_connects = connect_failures()
local blocking = run_all()
return {function()
  return {blocking = blocking, task = run_all(), blocking_connects = blocking_connects,
          task_connects = connect_failures()}
end}
""")
        task = out["tasks"][0]
        self.assertEqual(task["status"], "ok", task)
        self.assertEqual(task["result"]["task"], task["result"]["blocking"])
        self.assertEqual(task["result"]["task_connects"], task["result"]["blocking_connects"])
        connects = json.loads(task["result"]["task_connects"])
        self.assertEqual(connects[0]["error"]["kind"], "deadline", connects)
        self.assertEqual(connects[1]["error"]["kind"], "auth", connects)
        got = json.loads(task["result"]["task"])
        self.assertEqual(got[0]["status"], 3)
        self.assertEqual(got[1]["signal"], "TERM")
        self.assertEqual(got[2]["error"]["kind"], "deadline")
        self.assertEqual(got[3]["length"], 100000)

    def test_abort_abandons_the_command_and_others_go_on(self):
        out = self.run_tasks(r"""
return {
  function()
    local s = connect()
    return outcome(s:exec("sleep 30; echo never", WAIT))
  end,
  function()
    local s = connect()
    local r, err = s:exec("sleep 1; echo other", WAIT)
    return outcome(r, err)
  end,
}
""", env={"LCMC_ABORT_TASK": "1", "LCMC_ABORT_AFTER": "0.5"})
        self.assertEqual(out["tasks"][0]["status"], "aborted")
        self.assertEqual(out["tasks"][1]["result"]["stdout"], "other\n")

    def test_a_silent_server_holds_no_other_task(self):
        # The first task's connection is made while the second waits for a server that
        # never answers: were connections made by blocking (a loop turned inside the call),
        # the second would run inside the first's and hold it until its deadline.
        out = self.run_tasks(r"""
return {
  function()
    local s = connect()
    local at = lcmcoord.now()
    s:close()
    return {connected_at = at}
  end,
  function()
    local o = {}
    for k, v in pairs(p.connect) do o[k] = v end
    o.port, o.timeout = SILENT, 8
    local s, err = lcmcoord.ssh.connect(o)
    return {kind = err and err.kind, failed_at = lcmcoord.now()}
  end,
}
""")
        first, second = out["tasks"][0]["result"], out["tasks"][1]["result"]
        self.assertEqual(second["kind"], "deadline", out)
        self.assertLess(first["connected_at"], second["failed_at"] - 4, out)

    def test_abort_during_connect_ends_it_at_once(self):
        out = self.run_tasks(r"""
return {function()
  local o = {}
  for k, v in pairs(p.connect) do o[k] = v end
  o.port, o.timeout = SILENT, 60
  return outcome(lcmcoord.ssh.connect(o))
end}
""", env={"LCMC_ABORT_TASK": "1", "LCMC_ABORT_AFTER": "0.5"})
        self.assertEqual(out["tasks"][0]["status"], "aborted")
        self.assertLess(out["elapsed"], 0.5 + 5 * harness.TIME_FACTOR, out)

    def test_closing_the_session_ends_a_command_in_another_task(self):
        out = self.run_tasks(r"""
local shared = connect()
return {
  function() return outcome(shared:exec("sleep 30", WAIT)) end,
  function() lcmcoord.sleep(0.5); shared:close(); return "closed" end,
}
""")
        first = out["tasks"][0]["result"]
        self.assertEqual(first["error"]["kind"], "transport", first)
        self.assertIn("was closed while running the command", first["error"]["message"])
        self.assertLess(out["elapsed"], 1 + 3 * harness.TIME_FACTOR, out)

    def test_second_command_on_a_busy_session_is_refused(self):
        out = self.run_tasks(r"""
local shared = connect()
return {
  function() return outcome(shared:exec("sleep 1; echo first", WAIT)) end,
  function() return outcome(shared:exec("echo second")) end,
}
""")
        self.assertEqual(out["tasks"][0]["result"]["stdout"], "first\n")
        second = out["tasks"][1]["result"]
        self.assertEqual(second["error"]["kind"], "usage", second)
        self.assertIn("running another command", second["error"]["message"])


if __name__ == "__main__":
    unittest.main()
