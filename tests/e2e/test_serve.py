"""End-to-end: `lcmcoord serve` (docs/serve.md) driven by the `curl` CLI and by lcmcoord's
own client: answers within the sync budget (201) and after it (202, then GET), cancel with
its grace, busy, ABORT, a failing hook, the limits, one coordination at a time per VNFC,
the SOL 013 checks, the log, and restarts on the same SQLite store (nothing answered is
lost, nothing left running is decided twice). Each test runs its own server on a free port
with its own store, so the suite runs in parallel with the others.
"""

import json
import signal
import tempfile
import unittest

from harness import TIME_FACTOR
from serve_harness import (API_HEADERS, STEERED_HOOKS, Serve, curl, run_lcmcoord,
                           sample_request, wait_for)


class SyncAndAsync(unittest.TestCase):
    def test_decided_within_the_budget_is_201_stored_and_read_back(self):
        with Serve() as s:
            r = s.post({"vnfcInstanceId": "c1"})
            self.assertEqual(r.status, 201, r)
            doc = r.json()
            self.assertEqual(doc["coordinationResult"], "CONTINUE")
            self.assertEqual(doc["warnings"], ["checked"])
            self.assertEqual(doc["outputParams"], {"by": "hooks"})
            self.assertEqual(r.headers["location"], doc["_links"]["self"]["href"])
            self.assertTrue(r.headers["location"].startswith(s.url + "/lcmcoord/v1/"))
            again = s.get(r.headers["location"])
            self.assertEqual(again.status, 200, again)
            self.assertEqual(again.json(), doc)

    def test_lcmcoord_coordinate_as_client_sync_and_async(self):
        with Serve("--sync-budget", "0.1") as s:
            done = run_lcmcoord("coordinate", "--endpoint", s.url, "--action", "a.b",
                                "--input", '{"vnfcInstanceId": "x"}', timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(json.loads(done.stdout)["coordinationResult"], "CONTINUE")
            # Past the budget: 202, then the client polls until 200.
            done = run_lcmcoord("coordinate", "--endpoint", s.url, "--action", "a.b",
                                "--input", '{"vnfcInstanceId": "y", "sleep": 0.4}', timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(json.loads(done.stdout)["coordinationResult"], "CONTINUE")
            self.assertTrue(any(o.get("status") == 202 for o in s.log_lines()))

    def test_past_the_budget_is_202_with_location_then_get_202_then_200(self):
        with Serve("--sync-budget", "0.05") as s:
            # Long enough that the first GET comes before the decision ends, even on a
            # loaded machine (the suite's slow-machine factor stretches it).
            r = s.post({"sleep": 2.0 * TIME_FACTOR})
            self.assertEqual(r.status, 202, r)
            location = r.headers["location"]
            self.assertTrue(location.startswith("http://127.0.0.1:"), location)
            self.assertEqual(r.headers["retry-after"], "1")
            first = s.get(location)
            self.assertEqual(first.status, 202, first)
            self.assertIn("retry-after", first.headers)
            done = s.wait_done(location)
            self.assertEqual(done.json()["coordinationResult"], "CONTINUE")
            self.assertEqual(done.json()["id"], location.rsplit("/", 1)[1])

    def test_sleeping_decisions_do_not_hold_up_others(self):
        """lcmcoord.sleep yields to the engine: a quick decision is answered while 20
        others sleep."""
        with Serve("--sync-budget", "0.05", "--exclusive", "none") as s:
            slow = [s.post({"sleep": 60}) for _ in range(20)]
            self.assertTrue(all(r.status == 202 for r in slow), slow)
            quick = s.post({})
            self.assertEqual(quick.status, 201, quick)
            in_flight = curl("GET", s.url + "/metrics").body
            self.assertIn("lcmcoord_serve_decisions_in_flight 20", in_flight)


    def test_a_slow_http_request_in_a_hook_does_not_hold_up_other_decisions(self):
        """lcmcoord.http.request yields to the engine inside decide: while one decision
        waits on a peer that does not answer until told to, another is decided."""
        import http.server
        import threading
        release = threading.Event()

        class Slow(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                release.wait(30)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        peer = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        threading.Thread(target=peer.serve_forever, daemon=True).start()
        self.addCleanup(peer.server_close)
        self.addCleanup(peer.shutdown)
        self.addCleanup(release.set)
        hooks = r'''
local lcmcoord = require "lcmcoord"
return { decide = function(req, ctx)
  local url = (req.inputParams or {}).url
  if url then
    local r = assert(lcmcoord.http.request{url = url, timeout = 60})
    if not r.json.ok then return {result = "ABORT"} end
  end
  return {result = "CONTINUE"}
end }
'''
        with Serve("--sync-budget", "0.05", "--exclusive", "none", hooks=hooks) as s:
            url = f"http://127.0.0.1:{peer.server_address[1]}/check"
            slow = s.post({"url": url})
            self.assertEqual(slow.status, 202, slow)
            quick = s.post({}, extra=("--max-time", "10"))
            self.assertEqual(quick.status, 201, quick)
            release.set()
            done = s.wait_done(slow.headers["location"])
            self.assertEqual(done.json()["coordinationResult"], "CONTINUE")


class Outcomes(unittest.TestCase):
    def test_abort_is_a_problem_details_with_status_and_type_filled_in(self):
        with Serve() as s:
            r = s.post({"abort": "draining failed"})
            self.assertEqual(r.status, 201, r)
            doc = r.json()
            self.assertEqual(doc["coordinationResult"], "ABORT")
            self.assertEqual(doc["error"], {"title": "Not now", "detail": "draining failed",
                                            "status": 409, "type": "about:blank"})

    def test_busy_is_503_with_retry_after_and_nothing_stored(self):
        with Serve() as s:
            r = s.post({"busy": 7})
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.headers["retry-after"], "7")
            self.assertEqual(r.json()["status"], 503)
            self.assertNotIn("location", r.headers)
            # Nothing stored, nothing held: the same VNFC can coordinate at once.
            ok = s.post({})
            self.assertEqual(ok.status, 201, ok)
            self.assertNotIn('"busy"', json.dumps([o for o in s.log_lines()
                                                   if o.get("event") == "stored"]))

    def test_a_lua_error_ends_as_abort_with_the_error_logged_and_the_server_goes_on(self):
        with Serve() as s:
            r = s.post({"fail": "the load balancer said no"})
            self.assertEqual(r.status, 201, r)
            doc = r.json()
            self.assertEqual(doc["coordinationResult"], "ABORT")
            self.assertIn("the load balancer said no", doc["error"]["detail"])
            s.wait_log(lambda o: o.get("event") == "hook_error"
                       and "the load balancer said no" in o.get("message", ""), "hook_error")
            bad = s.post({"bad": True})
            self.assertEqual(bad.json()["coordinationResult"], "ABORT")
            self.assertIn("MAYBE", bad.json()["error"]["detail"])
            self.assertEqual(s.post({}).json()["coordinationResult"], "CONTINUE")

    def test_a_hook_that_drops_ctx_under_constant_garbage_collection(self):
        """The ctx's functions outlive nothing they point to: with the collector running all
        the time, a ctx no longer referenced once decide returns is collected while the
        server still reads the result (a use-after-free under the sanitizers before)."""
        hooks = r'''
collectgarbage("incremental", 0, 1000) -- a collection at every turn
return { decide = function(req, ctx)
  local extra = {}
  for i = 1, 2000 do extra[i] = {n = i, s = "v" .. i} end
  return {result = "ABORT", error = {title = "t", detail = string.rep("x", 200),
                                     extra = extra}}
end }
'''
        with Serve("--exclusive", "none", hooks=hooks) as s:
            for _ in range(30):
                r = s.post({})
                self.assertEqual(r.status, 201, r)
                self.assertEqual(r.json()["coordinationResult"], "ABORT")

    def test_busy_after_the_202_is_asked_again_later(self):
        hooks = r'''
local n = 0
local lcmcoord = require "lcmcoord"
return { decide = function(req, ctx)
  n = n + 1
  if n == 1 then lcmcoord.sleep(0.2); return {busy = 1} end
  return {result = "CONTINUE"}
end }
'''
        with Serve("--sync-budget", "0.05", hooks=hooks) as s:
            r = s.post({})
            self.assertEqual(r.status, 202, r)
            self.assertEqual(s.get(r.headers["location"]).status, 202)
            done = s.wait_done(r.headers["location"], timeout=10)
            self.assertEqual(done.json()["coordinationResult"], "CONTINUE")


class Cancel(unittest.TestCase):
    def test_cancel_is_seen_by_the_hook_and_ends_cancelled_then_409(self):
        with Serve("--sync-budget", "0.05") as s:
            r = s.post({"wait_cancel": True})
            self.assertEqual(r.status, 202, r)
            location = r.headers["location"]
            c = s.cancel(location)
            self.assertEqual(c.status, 202, c)
            done = s.wait_done(location, timeout=5)
            self.assertEqual(done.json()["coordinationResult"], "CANCELLED")
            again = s.cancel(location)
            self.assertEqual(again.status, 409, again)
            self.assertEqual(again.json()["status"], 409)
            self.assertEqual(s.cancel(s.url + "/lcmcoord/v1/coordinations/nope").status, 404)

    def test_a_hook_ignoring_cancel_is_cut_after_the_grace(self):
        with Serve("--sync-budget", "0.05", "--cancel-grace", "0.3") as s:
            r = s.post({"ignore_cancel": True})
            self.assertEqual(r.status, 202, r)
            self.assertEqual(s.cancel(r.headers["location"]).status, 202)
            done = s.wait_done(r.headers["location"], timeout=5)
            self.assertEqual(done.json()["coordinationResult"], "CANCELLED")


class Limits(unittest.TestCase):
    def test_max_decisions_answers_503_with_retry_after(self):
        with Serve("--sync-budget", "0.05", "--max-decisions", "2", "--exclusive",
                   "none") as s:
            self.assertEqual(s.post({"sleep": 60}).status, 202)
            self.assertEqual(s.post({"sleep": 60}).status, 202)
            r = s.post({})
            self.assertEqual(r.status, 503, r)
            self.assertIn("retry-after", r.headers)
            self.assertIn("2", r.json()["detail"])

    def test_one_coordination_at_a_time_per_vnfc(self):
        with Serve("--sync-budget", "0.05") as s:
            first = s.post({"vnfcInstanceId": ["A", "B"], "sleep": 60})
            self.assertEqual(first.status, 202, first)
            first_id = first.headers["location"].rsplit("/", 1)[1]
            clash = s.post({"vnfcInstanceId": "B"})
            self.assertEqual(clash.status, 409, clash)
            self.assertIn(first_id, clash.json()["detail"])
            whole = s.post({})  # no VNFC named: the whole instance, A and B included
            self.assertEqual(whole.status, 409, whole)
            other = s.post({"vnfcInstanceId": "C"})
            self.assertEqual(other.status, 201, other)
            other_instance = s.post({"vnfcInstanceId": "A"}, vnfInstanceId="another")
            self.assertEqual(other_instance.status, 201, other_instance)

    def test_exclusive_none_lets_them_run_together(self):
        with Serve("--sync-budget", "0.05", "--exclusive", "none") as s:
            self.assertEqual(s.post({"vnfcInstanceId": "A", "sleep": 60}).status, 202)
            self.assertEqual(s.post({"vnfcInstanceId": "A"}).status, 201)


class Protocol(unittest.TestCase):
    def test_version_accept_content_type_and_validation(self):
        with Serve() as s:
            body = json.dumps(sample_request())
            url = s.url + "/lcmcoord/v1/coordinations"
            r = curl("POST", url, body, headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, r)
            self.assertIn("Version", r.json()["detail"])
            r = curl("POST", url, body, headers={**API_HEADERS, "Version": "2.0.0"})
            self.assertEqual(r.status, 406, r)
            r = curl("POST", url, body, headers={**API_HEADERS, "Accept": "text/html"})
            self.assertEqual(r.status, 406, r)
            r = curl("POST", url, body, headers={**API_HEADERS, "Content-Type": "text/plain"})
            self.assertEqual(r.status, 415, r)
            req = sample_request()
            del req["vnfLcmOpOccId"]
            r = curl("POST", url, json.dumps(req), headers=API_HEADERS)
            self.assertEqual(r.status, 422, r)
            self.assertIn("vnfLcmOpOccId", r.json()["detail"])
            r = s.post({"vnfcInstanceId": [1]})
            self.assertEqual(r.status, 422, r)
            self.assertIn("vnfcInstanceId", r.json()["detail"])
            self.assertEqual(r.headers["content-type"], "application/problem+json")
            r = curl("GET", s.url + "/lcmcoord/v1/api_versions", headers=API_HEADERS)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["uriPrefix"], s.url + "/lcmcoord/v1/")
            r = curl("DELETE", url, headers=API_HEADERS)
            self.assertEqual(r.status, 405, r)

    def test_the_shared_http_layer_limits_apply(self):
        with Serve("--body-limit", "2000") as s:
            big = sample_request(inputParams={"pad": "x" * 5000})
            r = curl("POST", s.url + "/lcmcoord/v1/coordinations", json.dumps(big),
                     headers=API_HEADERS)
            self.assertEqual(r.status, 413, r)
            self.assertEqual(r.json()["status"], 413)
            # Framing the layer refuses (two Content-Length fields) never reaches decide.
            r = curl("POST", s.url + "/lcmcoord/v1/coordinations", json.dumps(sample_request()),
                     headers={**API_HEADERS, "Content-Length": "5"},
                     extra=("-H", "Content-Length: 7"))
            self.assertEqual(r.status, 400, r)
            self.assertFalse([o for o in s.log_lines() if o.get("event") == "decision"])

    def test_healthz_and_metrics(self):
        with Serve() as s:
            self.assertEqual(s.post({"abort": "no"}).status, 201)
            self.assertEqual(s.post({"busy": 3}).status, 503)
            h = curl("GET", s.url + "/healthz")
            self.assertEqual(h.status, 200, h)
            m = curl("GET", s.url + "/metrics")
            self.assertEqual(m.status, 200)
            self.assertIn('lcmcoord_serve_coordinations_total{result="ABORT"} 1', m.body)
            self.assertIn("lcmcoord_serve_unavailable_total 1", m.body)
            self.assertIn('lcmcoord_serve_decision_seconds_bucket{le="+Inf"} 1', m.body)

    def test_one_json_line_per_request_and_per_decision_never_a_secret(self):
        with Serve() as s:
            secret = "s3cr3t-never-logged"
            r = s.post({}, headers={**API_HEADERS, "Authorization": "Bearer " + secret})
            self.assertEqual(r.status, 201)
            cid = r.json()["id"]
            s.get(r.headers["location"])
            s.wait_log(lambda o: o.get("method") == "GET", "the GET's line")
            lines = s.log_lines()  # each line parses as JSON, or this raises
            posts = [o for o in lines if o.get("method") == "POST"]
            self.assertEqual(len(posts), 1, lines)
            self.assertEqual(posts[0]["id"], cid)
            self.assertEqual(posts[0]["result"], "CONTINUE")
            decisions = [o for o in lines if o.get("event") == "decision"]
            self.assertEqual(len(decisions), 1, lines)
            self.assertEqual(decisions[0]["result"], "CONTINUE")
            self.assertNotIn(secret, s.log_text())


class Lifecycle(unittest.TestCase):
    def test_restart_on_sqlite_keeps_answers_and_ends_running_ones_as_abort(self):
        s = Serve("--sync-budget", "0.05")
        with s:
            done = s.post({"vnfcInstanceId": "a"})
            running = s.post({"vnfcInstanceId": "b", "sleep": 3600})
            self.assertEqual(done.status, 201)
            self.assertEqual(running.status, 202)
            s.kill()  # SIGKILL: nothing runs on the way out
            again = Serve("--sync-budget", "0.05", directory=s.directory, hooks=None)
            with again:
                # The port differs: read by id on the new one.
                def at(r):
                    return again.url + "/lcmcoord/v1/coordinations/" + \
                        r.headers["location"].rsplit("/", 1)[1]
                r = again.get(at(done))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["id"], done.json()["id"])
                self.assertEqual(r.json()["coordinationResult"], "CONTINUE")
                r = again.get(at(running))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["coordinationResult"], "ABORT")
                self.assertIn("restarted", r.json()["error"]["detail"])
                # Its VNFC is free again.
                self.assertEqual(again.post({"vnfcInstanceId": "b"}).status, 201)

    def test_sigterm_stores_what_is_still_running_as_abort_and_exits_0(self):
        # The grace lets the quick decision (0.1 s) end even on a loaded machine.
        s = Serve("--sync-budget", "0.05", "--shutdown-grace", str(1.0 * TIME_FACTOR))
        with s:
            quick = s.post({"vnfcInstanceId": "q", "sleep": 0.1})
            slow = s.post({"vnfcInstanceId": "s", "sleep": 3600})
            self.assertEqual(slow.status, 202)
            self.assertEqual(s.stop(), 0)
            again = Serve(directory=s.directory, hooks=None)
            with again:
                base = again.url + "/lcmcoord/v1/coordinations/"
                r = again.get(base + slow.headers["location"].rsplit("/", 1)[1])
                self.assertEqual(r.json()["coordinationResult"], "ABORT")
                self.assertIn("shut down", r.json()["error"]["detail"])
                r = again.get(base + quick.headers["location"].rsplit("/", 1)[1])
                self.assertEqual(r.json()["coordinationResult"], "CONTINUE")

    def test_finished_coordinations_are_purged_after_the_retention(self):
        with Serve("--retention", "0") as s:
            r = s.post({})
            self.assertEqual(r.status, 201, r)
            wait_for(lambda: s.get(r.headers["location"]).status == 404, timeout=5,
                     what="the coordination purged")

    def test_sighup_reloads_the_hooks_and_a_broken_file_keeps_the_old(self):
        with Serve() as s:
            self.assertEqual(s.post({"vnfcInstanceId": "1"}).json()["coordinationResult"],
                             "CONTINUE")
            with open(s.hooks_path, "w") as f:
                f.write('return {decide = function() return {result = "ABORT"} end}')
            s.proc.send_signal(signal.SIGHUP)
            s.wait_log(lambda o: o.get("event") == "reload" and "level" not in o, "reload")
            self.assertEqual(s.post({"vnfcInstanceId": "2"}).json()["coordinationResult"],
                             "ABORT")
            with open(s.hooks_path, "w") as f:
                f.write("return {decide = ")
            s.proc.send_signal(signal.SIGHUP)
            s.wait_log(lambda o: o.get("event") == "reload" and o.get("level") == "error",
                       "failed reload")
            self.assertEqual(s.post({"vnfcInstanceId": "3"}).json()["coordinationResult"],
                             "ABORT")

    def test_options_from_a_configuration_file_the_command_line_wins(self):
        confdir = tempfile.TemporaryDirectory()
        self.addCleanup(confdir.cleanup)
        conf = confdir.name + "/serve.conf"
        s = Serve()
        with open(conf, "w") as f:
            f.write("# serve options\n[serve]\nsync-budget = 0.05\nmax-decisions = 1\n"
                    "exclusive = none\n")
        s.args += ["--config", conf, "--max-decisions", "2"]
        with s:
            self.assertEqual(s.post({"sleep": 60}).status, 202)  # the file's budget
            self.assertEqual(s.post({"sleep": 60}).status, 202)  # the flag's limit: 2
            self.assertEqual(s.post({}).status, 503)
        with open(conf, "w") as f:
            f.write("sync-budget 3\n")
        done = run_lcmcoord("serve", "--hooks", "/dev/null", "--config", conf, timeout=10)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("serve.conf:1", done.stderr)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)

    def test_bad_options_and_hooks_are_one_line_and_exit_2(self):
        for args, needle in [(["--sync-budget", "x"], "--sync-budget"),
                             (["--exclusive", "all"], "--exclusive"),
                             (["--store", "mysql://x"], "--store"),
                             (["--bogus"], "--bogus"),
                             (["--hooks", "/nonexistent.lua"], "/nonexistent.lua")]:
            full = args if "--hooks" in args else ["--hooks", "/dev/null", *args]
            done = run_lcmcoord("serve", *full, timeout=10)
            self.assertEqual(done.returncode, 2, (args, done.stderr))
            self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
            self.assertIn(needle, done.stderr)
        bad = Serve(hooks="return 42")
        with self.assertRaises(AssertionError) as ctx:
            bad.start()
        self.assertIn("decide", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
