"""End-to-end: one value model from stdin to the EM and back (docs/design.md, "The value
model"). Numbers that a double or 14-digit text would change (integers past 2^53 and 10^15,
the largest double, 0.1) go from the VNFC parameters on stdin through the shipped
scripts/coordinate_vnf.lua to what the EM received, with the same value; an LcmCoord holding
such numbers comes back to a script with integers as Lua integers and reals as the same
doubles, and `lcmcoord coordinate` prints them as the EM wrote them.
"""

import json
import os
import unittest

import harness
from test_run_cli import TempDirTestCase
from test_run_coordination import SCENARIOS, posts, run_script, vnfc_param

INPUT = {
    "requestSerial": 1732700000123456,
    "maxSessions": 12345678901234567,
    "ratio": 0.1,
    "big": 1.7976931348623157e308,
}
# The digits as JSON writes them; the broken path wrote 1.7327000001235e+15.
INPUT_TEXT = ('{"requestSerial": 1732700000123456, "maxSessions": 12345678901234567, '
              '"ratio": 0.1, "big": 1.7976931348623157e308}')
BIG_NUMBERS = os.path.join(SCENARIOS, "big_numbers.lua")


class StdinToJournal(harness.TestCase):
    def test_input_params_reach_the_em_with_the_same_values(self):
        with harness.EM() as em:
            param = vnfc_param(em.url)
            param["inputParams"] = "PLACEHOLDER"
            stdin = json.dumps(param).replace('"PLACEHOLDER"', INPUT_TEXT)
            done = run_script(stdin)
            self.assertEqual(done.returncode, 0, done.stderr)
            sent = posts(em.journal())
        self.assertEqual(len(sent), 1)
        body = sent[0]["body"]
        received = json.loads(body)["inputParams"]
        self.assertEqual(received, INPUT)
        # Integers stayed integers on the wire (a real 1.7327000001235e+15 would compare
        # unequal above; this also refuses 1732700000123456.0).
        for name in ("requestSerial", "maxSessions"):
            self.assertIsInstance(received[name], int, body)
        self.assertIn('"requestSerial":1732700000123456', body)
        self.assertIn('"maxSessions":12345678901234567', body)


SHOW = r"""
local lcmcoord = require "lcmcoord"
local p = ...
p.LcmCoordRequest.coordinationActionName = "prv.tacker_organization.coordination_test"
local coord = lcmcoord.create_coordination(p.endpoint, p.authentication, p.LcmCoordRequest, 30)
local out = coord.outputParams
for _, name in ipairs{"requestSerial", "maxSessions", "smallest", "ratio", "big",
                      "negativeZero", "whole"} do
  local v = out[name]
  print(name, math.type(v), math.type(v) == "integer" and string.format("%d", v)
                                 or string.format("%.17g", v))
end
for _, name in ipairs{"requestSerial", "maxSessions"} do
  local v = out.received[name]
  print("received." .. name, math.type(v), string.format("%d", v))
end
print("ratio is 0.1", out.ratio == 0.1, "received.ratio is 0.1", out.received.ratio == 0.1)
print("negativeZero", 1 / out.negativeZero)
print(lcmcoord.json.encode(out.received))
"""


class LcmCoordToScript(TempDirTestCase):
    def test_an_lcmcoord_comes_back_with_integers_as_integers(self):
        script = self.write("show.lua", SHOW)
        with harness.EM("--scenario", BIG_NUMBERS) as em:
            param = vnfc_param(em.url)
            param["LcmCoordRequest"]["inputParams"] = INPUT
            done = harness.run_lcmcoord("run", script, stdin=json.dumps(param))
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        self.assertEqual(lines[:9], [
            "requestSerial\tinteger\t1732700000123456",
            "maxSessions\tinteger\t12345678901234567",
            "smallest\tinteger\t-9223372036854775808",
            "ratio\tfloat\t0.10000000000000001",
            "big\tfloat\t1.7976931348623157e+308",
            "negativeZero\tfloat\t-0",
            "whole\tfloat\t3",
            "received.requestSerial\tinteger\t1732700000123456",
            "received.maxSessions\tinteger\t12345678901234567",
        ])
        self.assertEqual(lines[9], "ratio is 0.1\ttrue\treceived.ratio is 0.1\ttrue")
        self.assertEqual(lines[10], "negativeZero\t-inf")
        self.assertEqual(json.loads(lines[11]), INPUT)

    def test_coordinate_prints_numbers_as_the_em_wrote_them(self):
        request = harness.sample_request(inputParams=INPUT)
        with harness.EM("--scenario", BIG_NUMBERS) as em:
            done = harness.run_lcmcoord("coordinate", "--endpoint", em.url, "--request", "-",
                                        stdin=json.dumps(request))
        self.assertEqual(done.returncode, 0, done.stderr)
        shown = json.loads(done.stdout)["outputParams"]
        self.assertEqual(shown["received"], INPUT)
        self.assertEqual(shown["smallest"], -9223372036854775808)
        for text in ('"requestSerial": 1732700000123456', '"maxSessions": 12345678901234567',
                     '"ratio": 0.1', '"big": 1.7976931348623157e+308', '"whole": 3.0',
                     '"negativeZero": -0.0'):
            self.assertIn(text, done.stdout)


ANSWERS = r"""
local lcmcoord = require "lcmcoord"
local url = os.getenv("LCMC_URL")
local c = lcmcoord.client{endpoint = url}
for _, name in ipairs{"ints", "duplicate", "huge", "nul"} do
  local r = assert(c:get(url .. "/_values/" .. name))
  print(name, r.status, r.json == nil and "no json" or lcmcoord.json.encode(r.json), #r.body)
end
local req = lcmcoord.request{action = "prv.test.refused"}
local coord, err = c:coordinate(req)
print(coord, err.kind, err.status, math.type(err.problem.retryAfterSerial),
      err.problem.retryAfterSerial)
"""


class AnswersToScript(TempDirTestCase):
    def test_bodies_are_parsed_once_under_the_json_rules(self):
        script = self.write("answers.lua", ANSWERS)
        with harness.EM("--scenario", BIG_NUMBERS) as em:
            done = harness.run_lcmcoord("run", "--any-params", script,
                                        stdin=json.dumps({}), env={"LCMC_URL": em.url})
        self.assertEqual(done.returncode, 0, done.stderr)
        lines = done.stdout.splitlines()
        ints = lines[0].split("\t")
        self.assertEqual(ints[:2], ["ints", "200"])
        self.assertEqual(json.loads(ints[2]), {"serial": 1732700000123456, "ratio": 0.1,
                                               "list": []})
        self.assertIn('"list":[]', ints[2])
        # Text that breaks the rules is kept as the body, with no json.
        self.assertEqual(lines[1], "duplicate\t200\tno json\t16")
        self.assertEqual(lines[2], "huge\t200\tno json\t32")
        self.assertEqual(lines[3], "nul\t200\tno json\t20")
        self.assertEqual(lines[4], "nil\thttp\t409\tinteger\t1732700000123456")


if __name__ == "__main__":
    unittest.main()
