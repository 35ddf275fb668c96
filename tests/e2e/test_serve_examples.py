"""End-to-end: the hook examples shipped in scripts/serve/ (docs/serve.md, "Hook examples")
run by `lcmcoord serve` as an operator would: draining a VNFC from a load balancer over
HTTP (a Python peer on 127.0.0.1 playing the load balancer), a maintenance window, and a
health check over SSH (Debian's sshd on a free port, from test_ssh.py's harness).
"""

import http.server
import json
import os
import tempfile
import threading
import time
import unittest

from harness import SOURCE_DIR
from serve_harness import Serve

EXAMPLES = os.path.join(SOURCE_DIR, "scripts", "serve")


class FakeLoadBalancer:
    """POST /members/X/drain starts a drain; GET /members/X reports connections that fall by
    one per GET once draining. `refuse` names members whose drain is answered 409."""

    def __init__(self, connections=3, refuse=()):
        self.calls = []
        self.left = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, doc=None):
                body = json.dumps(doc or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                outer.calls.append(("POST", self.path))
                member = self.path.split("/")[2]
                if member in refuse:
                    return self._send(409, {"error": "in use"})
                outer.left[member] = connections
                self._send(202)

            def do_GET(self):
                outer.calls.append(("GET", self.path))
                member = self.path.split("/")[2]
                n = outer.left.get(member, connections)
                if member in outer.left and n > 0:
                    outer.left[member] = n - 1
                self._send(200, {"connections": n})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class DrainFromLoadBalancer(unittest.TestCase):
    def test_drains_each_vnfc_then_continues_and_aborts_when_refused(self):
        with FakeLoadBalancer(connections=2, refuse=("stuck",)) as lb:
            with Serve("--sync-budget", "0.05", "--exclusive", "none",
                       hooks_file=os.path.join(EXAMPLES, "drain_lb.lua"),
                       env={"LCMCOORD_LB_URL": lb.url}) as s:
                r = s.post({"vnfcInstanceId": ["vdu1", "vdu2"]})
                self.assertEqual(r.status, 202, r)  # draining takes a few seconds
                done = s.wait_done(r.headers["location"], timeout=20)
                self.assertEqual(done.json()["coordinationResult"], "CONTINUE")
                self.assertIn(("POST", "/members/vdu1/drain"), lb.calls)
                self.assertIn(("POST", "/members/vdu2/drain"), lb.calls)
                self.assertEqual(lb.left, {"vdu1": 0, "vdu2": 0})
                refused = s.post({"vnfcInstanceId": "stuck"})
                self.assertEqual(refused.status, 201, refused)
                self.assertEqual(refused.json()["coordinationResult"], "ABORT")
                self.assertIn("409", refused.json()["error"]["detail"])


class MaintenanceWindow(unittest.TestCase):
    def window(self, start_offset, length):
        def hhmm(seconds):
            seconds %= 86400
            return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
        now = int(time.time()) % 86400
        return hhmm(now + start_offset), hhmm(now + start_offset + length)

    def test_inside_continues_outside_is_busy_until_it_opens(self):
        hooks = os.path.join(EXAMPLES, "maintenance_window.lua")
        start, end = self.window(-3600, 7200)  # opened an hour ago, closes in an hour
        with Serve(hooks_file=hooks, env={"LCMCOORD_WINDOW": f"{start}-{end}"}) as s:
            r = s.post({})
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["coordinationResult"], "CONTINUE")
        start, end = self.window(2 * 3600, 3600)  # opens in about two hours
        with Serve(hooks_file=hooks, env={"LCMCOORD_WINDOW": f"{start}-{end}",
                                          "LCMCOORD_WINDOW_MAX_WAIT": "86400"}) as s:
            r = s.post({})
            self.assertEqual(r.status, 503, r)
            wait = int(r.headers["retry-after"])
            self.assertTrue(2 * 3600 - 120 <= wait <= 2 * 3600 + 60, wait)
        with Serve(hooks_file=hooks, env={"LCMCOORD_WINDOW": f"{start}-{end}"}) as s:
            self.assertEqual(s.post({}).headers["retry-after"], "3600")


class SshHealthCheck(unittest.TestCase):
    def test_healthy_continues_unhealthy_and_unreachable_abort(self):
        import test_ssh
        with tempfile.TemporaryDirectory() as d:
            if not os.path.isdir("/run/sshd"):
                os.makedirs("/run/sshd", mode=0o755)
            sshd = test_ssh.Sshd(d)
            sshd.start()
            try:
                known = os.path.join(d, "known_hosts")
                with open(known, "w") as f:
                    f.write(sshd.known_hosts_line())
                flag = os.path.join(d, "healthy")
                env = {"LCMCOORD_HEALTH_USER": test_ssh.current_user(),
                       "LCMCOORD_HEALTH_KEY": sshd.client_key,
                       "LCMCOORD_HEALTH_KNOWN_HOSTS": known,
                       "LCMCOORD_HEALTH_PORT": str(sshd.port),
                       "LCMCOORD_HEALTH_COMMAND": f"test -f {flag}",
                       "LCMCOORD_HEALTH_TIMEOUT": "10"}
                with Serve("--sync-budget", "10", "--exclusive", "none",
                           hooks_file=os.path.join(EXAMPLES, "ssh_health.lua"), env=env) as s:
                    sick = s.post({"ssh_ip": "127.0.0.1"})
                    self.assertEqual(sick.json()["coordinationResult"], "ABORT", sick)
                    self.assertIn("exited 1", sick.json()["error"]["detail"])
                    open(flag, "w").close()
                    well = s.post({"ssh_ip": "127.0.0.1"})
                    self.assertEqual(well.json()["coordinationResult"], "CONTINUE", well)
                    missing = s.post({})
                    self.assertIn("ssh_ip", missing.json()["error"]["detail"])
                sshd.stop()
                with Serve("--sync-budget", "10",
                           hooks_file=os.path.join(EXAMPLES, "ssh_health.lua"), env=env) as s:
                    gone = s.post({"ssh_ip": "127.0.0.1"})
                    self.assertEqual(gone.json()["coordinationResult"], "ABORT", gone)
                    self.assertIn("cannot reach", gone.json()["error"]["detail"])
            finally:
                sshd.stop()


if __name__ == "__main__":
    unittest.main()
