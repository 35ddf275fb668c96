"""End-to-end: `client:coordinate_all(reqs [, {timeout=, max_connections=}])`, many
coordinations at once from one `lcmcoord run` script. Each test runs a short Lua script
under `lcmcoord run --any-params` (its parameters as JSON on stdin, its results as one JSON
line on stdout) against `lcmcoord em` (or, for stalled answers, a Python http.server
stand-in) and checks both what the script got back and what the EM saw.
"""

import json
import os
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "scenarios")
COORDINATIONS = "/lcmcoord/v1/coordinations"

# Runs one batch and prints, in input order, what each slot holds: the LcmCoord's action
# name and result, or the error's kind, status, message and ProblemDetails detail.
BATCH_SCRIPT = r"""
local lcmcoord = require "lcmcoord"
local p = ...
local opts = {endpoint = p.endpoint}
for _, k in ipairs{"authentication", "wait_floor", "default_interval"} do
  if p[k] ~= nil then opts[k] = p[k] end
end
local c <close> = lcmcoord.client(opts)
local reqs = {}
for i, name in ipairs(p.actions) do
  reqs[i] = lcmcoord.request{action = name}
end
-- JSON numbers arrive as floats; max_connections must be a Lua integer.
local batch = p.batch
if batch and batch.max_connections then
  batch.max_connections = math.tointeger(batch.max_connections)
end
local t0 = lcmcoord.now()
local results = c:coordinate_all(reqs, batch)
local elapsed = lcmcoord.now() - t0
local out = {}
for i, r in ipairs(results) do
  if r.coord then
    out[i] = {action = r.coord.coordinationActionName, result = r.coord.coordinationResult,
              id = r.coord.id,
              detail = type(r.coord.error) == "table" and r.coord.error.detail or lcmcoord.null}
  else
    local e = r.err
    out[i] = {kind = e.kind, status = e.status or lcmcoord.null, message = tostring(e),
              detail = type(e.problem) == "table" and e.problem.detail or lcmcoord.null,
              is_error = lcmcoord.is_error(e)}
  end
end
io.write(lcmcoord.json.encode{count = #results, elapsed = elapsed, results = out}, "\n")
"""


class BatchTestCase(harness.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="lcmc-batch-")
        self.addCleanup(self.tmp.cleanup)

    def script(self, text, name="batch.lua"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_batch(self, endpoint, actions, batch=None, timeout=120, **client):
        params = {"endpoint": endpoint, "actions": actions, **client}
        if batch is not None:
            params["batch"] = batch
        started = time.monotonic()
        done = harness.run_lcmcoord("run", "--any-params", self.script(BATCH_SCRIPT),
                                    stdin=json.dumps(params), timeout=timeout)
        wall = time.monotonic() - started
        self.assertEqual(done.returncode, 0, done.stderr)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertEqual(out["count"], len(actions))
        return out, wall


def posts(journal):
    return [e for e in journal if e["method"] == "POST" and e["path"] == COORDINATIONS]


def action_of(entry):
    return json.loads(entry["body"])["coordinationActionName"]


class ResultsOrder(BatchTestCase):
    def test_fifty_sync_results_come_back_in_input_order(self):
        actions = [f"prv.batch.order_{i:02d}" for i in range(1, 51)]
        with harness.EM("--quiet") as em:
            out, _ = self.run_batch(em.url, actions)
            journal = em.journal()
        self.assertEqual([r.get("action") for r in out["results"]], actions)
        self.assertTrue(all(r.get("result") == "CONTINUE" for r in out["results"]), out)
        self.assertEqual(len({r["id"] for r in out["results"]}), 50)
        self.assertEqual(sorted(action_of(e) for e in posts(journal)), actions)

    def test_order_holds_when_they_finish_out_of_order_and_queue_for_connections(self):
        # Async answers with 0..4 polls each: the 50 coordinations finish in a shuffled
        # order; max_connections=2 keeps most of them queued behind the first few.
        actions = [f"prv.batch.async_{i:02d}" for i in range(1, 51)]
        with harness.EM("--quiet", "--retry-after", "0", "--scenario",
                        os.path.join(SCENARIOS, "batch_order.lua")) as em:
            out, _ = self.run_batch(em.url, actions, batch={"max_connections": 2},
                                    wait_floor=0.01, default_interval=0.01)
            journal = em.journal()
        self.assertEqual([r.get("action") for r in out["results"]], actions, out)
        self.assertTrue(all(r.get("result") == "CONTINUE" for r in out["results"]), out)
        # The EM really answered out of order: the last 200s are not in the order of the POSTs.
        gets = [e for e in journal if e["method"] == "GET" and e["status"] == 200]
        self.assertEqual(len(gets), 50)
        ids_in_post_order = [r["id"] for r in out["results"]]
        finished = [e["path"].rsplit("/", 1)[1] for e in gets]
        self.assertNotEqual(finished, ids_in_post_order)
        self.assertEqual(sorted(finished), sorted(ids_in_post_order))

    def test_an_empty_list_gives_an_empty_list_and_sends_nothing(self):
        with harness.EM("--quiet") as em:
            out, _ = self.run_batch(em.url, [])
            self.assertEqual(em.journal(), [])
        self.assertEqual(out["count"], 0)


class MixedOutcomes(BatchTestCase):
    def test_continue_abort_and_409_side_by_side(self):
        kinds = ["ok", "abort", "conflict"]
        actions = [f"prv.batch.{i:02d}.{kinds[i % 3]}" for i in range(30)]
        with harness.EM("--quiet", "--scenario",
                        os.path.join(SCENARIOS, "batch_mixed.lua")) as em:
            out, _ = self.run_batch(em.url, actions)
            journal = em.journal()
        self.assertEqual(len(posts(journal)), 30)
        for i, (name, r) in enumerate(zip(actions, out["results"])):
            with self.subTest(i=i, action=name):
                if name.endswith(".ok"):
                    self.assertEqual((r.get("action"), r.get("result")), (name, "CONTINUE"))
                elif name.endswith(".abort"):
                    self.assertEqual((r.get("action"), r.get("result")), (name, "ABORT"))
                    self.assertEqual(r["detail"], f"VNFC of {name} is not ready")
                else:
                    self.assertTrue(r.get("is_error"), r)
                    self.assertEqual((r["kind"], r["status"]), ("http", 409))
                    self.assertEqual(r["detail"], f"conflict for {name}: VNFC still draining")
                    self.assertIn("409", r["message"])
                    self.assertIn(name, r["message"])


class StallingEM:
    """A stand-in EM on Python's http.server: POST /coordinations answers 201 with an
    LcmCoord at once, except for actions ending in ".slow", which it holds for up to
    `hold` seconds (released early when the server stops)."""

    def __init__(self, hold=60.0):
        self.hold = hold
        self.release = threading.Event()
        self.received = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                req = json.loads(self.rfile.read(length))
                name = req["coordinationActionName"]
                outer.received.append((time.monotonic(), name))
                if name.endswith(".slow"):
                    outer.release.wait(outer.hold)
                body = json.dumps({
                    "id": f"coord-{len(outer.received)}", "coordinationResult": "CONTINUE",
                    "vnfInstanceId": req["vnfInstanceId"], "vnfLcmOpOccId": req["vnfLcmOpOccId"],
                    "lcmOperationType": req["lcmOperationType"], "coordinationActionName": name,
                    "_links": {"vnfLcmOpOcc": req["_links"]["vnfLcmOpOcc"],
                               "vnfInstance": req["_links"]["vnfInstance"]}}).encode()
                try:
                    self.send_response(201)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Version", "1.0.0")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up on it: that is the point

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        return False


class PerRequestDeadlines(BatchTestCase):
    def test_stalled_ones_hit_their_deadline_while_the_others_succeed(self):
        actions = [f"prv.batch.{i:02d}." + ("slow" if i % 3 == 0 else "fast") for i in range(30)]
        with StallingEM(hold=60) as em:
            out, wall = self.run_batch(em.url, actions, batch={"timeout": 2}, timeout=60)
        for name, r in zip(actions, out["results"]):
            with self.subTest(action=name):
                if name.endswith(".slow"):
                    self.assertEqual(r.get("kind"), "deadline", r)
                    self.assertIn("deadline exceeded", r["message"])
                else:
                    self.assertEqual((r.get("action"), r.get("result")), (name, "CONTINUE"))
        # Each coordination has its own 2 s, and a stalled POST the bounded 5 s grace past
        # it; none of them, nor the batch, waits for the 60 s.
        self.assertGreaterEqual(out["elapsed"], 1.9)
        self.assertLess(out["elapsed"], 2.0 + 5.0 + 3.0 * harness.TIME_FACTOR)
        # the batch, plus process start and exit
        self.assertLess(wall, 2 + 5 + 5 * harness.TIME_FACTOR)
        self.assertEqual(sorted(name for _, name in em.received), sorted(actions))


class Tokens(BatchTestCase):
    def test_two_hundred_coordinations_share_one_token(self):
        actions = [f"prv.batch.oauth_{i:03d}" for i in range(200)]
        with harness.EM("--quiet", "--oauth2", "vnfm:s3cret") as em:
            auth = {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                    "paramsOauth2ClientCredentials": {
                        "clientId": "vnfm", "clientPassword": "s3cret",
                        "tokenEndpoint": em.url + "/token"}}
            out, _ = self.run_batch(em.url, actions, authentication=auth)
            journal = em.journal()
        self.assertTrue(all(r.get("result") == "CONTINUE" for r in out["results"]), out)
        tokens = [e for e in journal if e["path"] == "/token"]
        self.assertEqual(len(tokens), 1, [e["status"] for e in tokens])
        self.assertEqual(tokens[0]["status"], 200)
        api = posts(journal)
        self.assertEqual(len(api), 200)
        for e in api:
            self.assertEqual(e["status"], 201)
            self.assertEqual((e["auth"]["scheme"], e["auth"]["ok"], e["auth"]["tokenSeq"]),
                             ("Bearer", True, 1))


BAD_SCRIPT = r"""
local lcmcoord = require "lcmcoord"
local p = ...
local c <close> = lcmcoord.client{endpoint = p.endpoint}
local function good(i) return lcmcoord.request{action = "prv.batch.bad_" .. i} end
local cases = {}
-- 1. an element that is not a table
cases[1] = {good(1), good(2), "not a request", good(4)}
-- 2. a value JSON cannot carry
local r = good(3); r.inputParams = {callback = function() end}
cases[2] = {good(1), good(2), r}
-- 3. a list with a hole: the length operator stops anywhere, so only a table
cases[3] = {good(1), 42}
local out = {}
for i, reqs in ipairs(cases) do
  local ok, err = pcall(function() return c:coordinate_all(reqs) end)
  out[i] = {ok = ok, message = tostring(err)}
end
-- 4. bad options
local ok, err = pcall(function() return c:coordinate_all({good(1)}, {timeout = -1}) end)
out[4] = {ok = ok, message = tostring(err)}
ok, err = pcall(function() return c:coordinate_all({good(1)}, {max_connections = 0}) end)
out[5] = {ok = ok, message = tostring(err)}
io.write(lcmcoord.json.encode(out), "\n")
"""

INVALID_SCRIPT = r"""
local lcmcoord = require "lcmcoord"
local p = ...
local c <close> = lcmcoord.client{endpoint = p.endpoint}
local reqs = {}
for i = 1, 3 do reqs[i] = lcmcoord.request{action = "prv.batch.valid_" .. i} end
reqs[2].vnfInstanceId = nil
local results = c:coordinate_all(reqs)
local out = {}
for i, r in ipairs(results) do
  out[i] = r.coord and {result = r.coord.coordinationResult}
           or {kind = r.err.kind, message = tostring(r.err)}
end
io.write(lcmcoord.json.encode(out), "\n")
"""


class BadInput(BatchTestCase):
    def test_a_bad_request_raises_before_anything_is_sent(self):
        with harness.EM("--quiet") as em:
            done = harness.run_lcmcoord("run", "--any-params", self.script(BAD_SCRIPT, "bad.lua"),
                                        stdin=json.dumps({"endpoint": em.url}))
            # The client has exited: had it sent anything, it would have waited for the
            # answer, and the EM journals a request before answering it.
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertEqual(journal, [], "nothing may reach the EM")
        self.assertFalse(out[0]["ok"])
        self.assertIn("request 3 is not a table", out[0]["message"])
        self.assertIn("bad argument #1 to 'coordinate_all'", out[0]["message"])
        self.assertFalse(out[1]["ok"])
        self.assertIn("request 3", out[1]["message"])
        self.assertFalse(out[2]["ok"])
        self.assertIn("request 2 is not a table", out[2]["message"])
        self.assertFalse(out[3]["ok"])
        self.assertIn("timeout", out[3]["message"])
        self.assertFalse(out[4]["ok"])
        self.assertIn("max_connections", out[4]["message"])

    def test_an_invalid_lcmcoordrequest_fails_in_its_own_slot_without_being_sent(self):
        # A table that encodes but is not a valid LcmCoordRequest is refused by the runtime
        # as c:coordinate refuses it (kind invalid_request), in its slot; the others go.
        with harness.EM("--quiet") as em:
            done = harness.run_lcmcoord("run", "--any-params",
                                        self.script(INVALID_SCRIPT, "invalid.lua"),
                                        stdin=json.dumps({"endpoint": em.url}))
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertEqual(out[0], {"result": "CONTINUE"})
        self.assertEqual(out[1]["kind"], "invalid_request")
        self.assertIn("vnfInstanceId", out[1]["message"])
        self.assertEqual(out[2], {"result": "CONTINUE"})
        self.assertEqual(sorted(action_of(e) for e in posts(journal)),
                         ["prv.batch.valid_1", "prv.batch.valid_3"])


if __name__ == "__main__":
    unittest.main()
