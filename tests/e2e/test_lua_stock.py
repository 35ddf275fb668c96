"""End-to-end: the `lcmcoord` module in a stock lua5.4 (LUA_CPATH from ctest points at
lib/lua/5.4/lcmcoord.so) running the shipped CoordinateVNF script against `lcmcoord em`,
the way a VNFM that embeds its own Lua would.
"""

import json
import os
import subprocess
import unittest

import harness
from test_run_coordination import SCRIPT, posts, vnfc_param

LUA = "lua5.4"
# Decodes stdin with the module's own JSON (as the sample script's header says) and calls the
# script with the table.
DRIVER = ('local script = assert(loadfile(os.getenv("LCMC_SCRIPT"), "t"))\n'
          'script(require("lcmcoord").json.decode(io.read("a")))')


def stock_env(**extra):
    """The environment for lua5.4: under sanitizers the module needs their runtime
    preloaded (tests/client.cmake says which); leaks are left to the host's suites, as the
    interpreter's own exit path is not ours to judge."""
    env = dict(os.environ, **extra)
    preload = os.environ.get("LCMC_STOCK_LUA_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    return env


def run_stock(param, timeout=60):
    return subprocess.run([LUA, "-e", DRIVER], input=json.dumps(param), capture_output=True,
                          text=True, timeout=timeout * harness.TIME_FACTOR,
                          env=stock_env(LCMC_SCRIPT=SCRIPT))


class StockInterpreter(harness.TestCase):
    def test_module_loads_from_lua_cpath(self):
        done = subprocess.run([LUA, "-e", "local m = require 'lcmcoord'; io.write(m.version)"],
                              capture_output=True, text=True, timeout=30 * harness.TIME_FACTOR,
                              env=stock_env())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"^\d+\.\d+\.\d+$")

    def test_sample_script_continues(self):
        with harness.EM() as em:
            done = run_stock(vnfc_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            (post,) = posts(em.journal())
        body = json.loads(post["body"])
        self.assertEqual(body["coordinationActionName"],
                         "prv.tacker_organization.coordination_test")

    def test_sample_script_raises_on_abort(self):
        with harness.EM("--result", "ABORT") as em:
            done = run_stock(vnfc_param(em.url))
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("coordination ABORT: VNFC not ready", done.stderr)


if __name__ == "__main__":
    unittest.main()
