"""Plumbing for the `lcmcoord serve` suites: start the server on a free loopback port with
a hooks file written by the test and a store in a temporary directory, watch its JSON log
lines, restart it on the same store, and talk to it with the `curl` CLI or with lcmcoord's
own client (`lcmcoord coordinate`). Every wait has a deadline (harness.wait_for), stretched
by LCMCOORD_TIME_FACTOR.
"""

import json
import os
import signal
import subprocess
import tempfile

from harness import (API_HEADERS, LCMCOORD_BIN, LISTEN_LINE, TIME_FACTOR, LineWatch, curl,
                     run_lcmcoord, sample_request, wait_for)

SERVE_WRAPPER = os.environ.get("LCMCOORD_SERVE_WRAPPER", "").split()

# A hooks file the suites share: inputParams steer the decision, so one server covers
# many cases.
STEERED_HOOKS = r'''
local lcmcoord = require "lcmcoord"
return {
  decide = function(req, ctx)
    local p = req.inputParams or {}
    ctx.log("deciding " .. req.coordinationActionName)
    if p.sleep then lcmcoord.sleep(p.sleep) end
    if p.busy then return {busy = p.busy} end
    if p.fail then error(p.fail) end
    if p.bad then return {result = "MAYBE"} end
    if p.abort then
      return {result = "ABORT", error = {title = "Not now", detail = p.abort}}
    end
    if p.wait_cancel then
      while not ctx:cancelled() do lcmcoord.sleep(0.02) end
      return {result = "CONTINUE"}
    end
    if p.ignore_cancel then lcmcoord.sleep(3600) end
    return {result = "CONTINUE", warnings = "checked", outputParams = {by = "hooks"}}
  end,
}
'''


class Serve:
    """A running `lcmcoord serve` (context manager). `url` is its apiRoot; `log` a LineWatch
    over its stderr (one JSON object per line)."""

    def __init__(self, *args, hooks=STEERED_HOOKS, directory=None, store=None, hooks_file=None,
                 env=None):
        self._tmp = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory()
            directory = self._tmp.name
        self.directory = directory
        self.hooks_path = hooks_file or os.path.join(directory, "hooks.lua")
        self.env = env
        if hooks is not None and hooks_file is None:
            with open(self.hooks_path, "w") as f:
                f.write(hooks)
        self.store = store or "sqlite:" + os.path.join(directory, "serve.db")
        # Decisions a test leaves asleep must not hold up its end: a short shutdown grace
        # unless the test sets one.
        self.args = list(args) if "--shutdown-grace" in args else \
            ["--shutdown-grace", "0.1", *args]
        # The suites read the log as JSON objects unless a test picks the format.
        if "--log-format" not in args:
            self.args = ["--log-format", "json", *self.args]
        self.proc = None
        self.url = None
        self.log = None

    def start(self):
        # scripts/valgrind.sh runs the server under valgrind too (following the exec of
        # lcmcoord-serve); its waits stretch with LCMCOORD_TIME_FACTOR.
        cmd = [*SERVE_WRAPPER, LCMCOORD_BIN, "serve", "--listen", "127.0.0.1:0", "--hooks",
               self.hooks_path, "--store", self.store, *self.args]
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=env)
        self.log = LineWatch(self.proc.stderr)
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = self.proc.stdout.readline() if sel.select(15 * TIME_FACTOR) else ""
        match = LISTEN_LINE.match(line.strip())
        if not match:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"lcmcoord serve did not start: {line!r}; {self.log_text()}")
        self.url = match.group(1)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop(check=exc_type is None)
        finally:
            if self._tmp:
                self._tmp.cleanup()
        return False

    def stop(self, check=True, sig=signal.SIGTERM, timeout=15.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout * TIME_FACTOR)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("lcmcoord serve did not exit after a signal")
        self._close_pipes()
        if check and rc != 0:
            raise AssertionError(f"lcmcoord serve exited {rc}; stderr: {self.log_text()}")
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self._close_pipes()

    def _close_pipes(self):
        self.proc.stdout.close()
        self.log._thread.join(timeout=5 * TIME_FACTOR)  # the whole log read first
        self.proc.stderr.close()

    def log_text(self):
        """The log read so far (LineWatch.text waits for the end of the stream)."""
        with self.log._lock:
            return "".join(self.log._lines)

    def log_lines(self):
        """The log as JSON objects (every line must be one)."""
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]

    def wait_log(self, predicate, what, timeout=10.0):
        return wait_for(lambda: next((o for o in self.log_lines() if predicate(o)), None),
                        timeout=timeout, what=what)

    # ---- requests ----

    def post(self, inputs=None, headers=None, extra=(), **overrides):
        req = sample_request(**overrides)
        if inputs is not None:
            req["inputParams"] = inputs
        try:
            return curl("POST", self.url + "/lcmcoord/v1/coordinations", json.dumps(req),
                        headers=headers or API_HEADERS, extra=extra)
        except AssertionError as e:  # what the server said is what explains it
            alive = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
            raise AssertionError(f"{e}; serve {alive}; its log: {self.log_text()[-3000:]}")

    def get(self, location, extra=()):
        return curl("GET", location, headers=API_HEADERS, extra=extra)

    def cancel(self, location, extra=()):
        return curl("POST", location + "/cancel", headers={"Version": "1.0.0"}, extra=extra)

    def wait_done(self, location, timeout=10.0, extra=()):
        """GETs until 200 and returns that answer (202 before, nothing else)."""
        def done():
            r = self.get(location, extra=extra)
            if r.status == 202:
                return None
            if r.status != 200:
                raise AssertionError(f"GET {location}: {r}")
            return r
        return wait_for(done, timeout=timeout, interval=0.05, what=f"{location} done")


__all__ = ["Serve", "STEERED_HOOKS", "API_HEADERS", "curl", "run_lcmcoord", "sample_request",
           "wait_for", "TIME_FACTOR"]
