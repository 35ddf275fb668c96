"""`lcmcoord params`: the VNFC parameters a VNFM passes for one VDU and VNFC, made from a
package's additionalParams. Checks the JSON it prints (the operator's new or old
parameters plus what the VNFM adds, with a LcmCoordRequest the runtime accepts), its
one-line errors, and the round trip: params, then check, then run against `lcmcoord em`.
"""

import json
import os
import re
import tempfile
import unittest

from harness import EM, SOURCE_DIR, TestCase, run_lcmcoord

PACKAGE_PARAMS = os.path.join(SOURCE_DIR, "scripts", "vnf-package", "additional_params.json")
SCRIPT = os.path.join(SOURCE_DIR, "scripts", "coordinate_vnf.lua")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def load_package_params():
    with open(PACKAGE_PARAMS, encoding="utf-8") as f:
        return json.load(f)


class ParamsTestCase(TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, value):
        path = os.path.join(self.tmp.name, "additional_params.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(value if isinstance(value, str) else json.dumps(value))
        return path

    def params(self, *args, stdin=None):
        done = run_lcmcoord("params", *args, stdin=stdin)
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout)

    def params_error(self, *args, stdin=None):
        done = run_lcmcoord("params", *args, stdin=stdin)
        self.assertEqual(done.returncode, 2, done.stdout)
        self.assertEqual(done.stdout, "")
        return self.assertOneLine(done.stderr)


class OutputTest(ParamsTestCase):
    def test_new_vnfc_of_the_package(self):
        operator = load_package_params()["additionalParams"]["vdu_params"][0]["new_vnfc_param"]
        p = self.params(PACKAGE_PARAMS)
        for key, value in operator.items():
            self.assertEqual(p[key], value)
        self.assertIs(p["is_rollback"], False)
        self.assertEqual(p["ssh_ip"], "192.0.2.10")
        self.assertTrue(p["vnfc_info_id"].startswith("VDU1-"))
        req = p["LcmCoordRequest"]
        self.assertEqual(req["lcmOperationType"], "CHANGE_VNFPKG")
        self.assertEqual(req["coordinationActionName"], "should_be_set_by_script")
        self.assertRegex(req["vnfInstanceId"], UUID)
        self.assertRegex(req["vnfLcmOpOccId"], UUID)
        self.assertEqual(p["inst"]["id"], req["vnfInstanceId"])
        self.assertTrue(req["_links"]["vnfInstance"]["href"].endswith(req["vnfInstanceId"]))
        self.assertTrue(req["_links"]["vnfLcmOpOcc"]["href"].endswith(req["vnfLcmOpOccId"]))

    def test_fresh_ids_each_time(self):
        a = self.params(PACKAGE_PARAMS)["LcmCoordRequest"]["vnfLcmOpOccId"]
        b = self.params(PACKAGE_PARAMS)["LcmCoordRequest"]["vnfLcmOpOccId"]
        self.assertNotEqual(a, b)

    def test_old_vnfc_is_a_rollback(self):
        p = self.params("--old", "--vdu", "VDU1", "--vnfc", "VDU1-abc", PACKAGE_PARAMS)
        self.assertIs(p["is_rollback"], True)
        self.assertEqual(p["vnfc_info_id"], "VDU1-abc")
        self.assertEqual(p["authentication"]["authType"], ["OAUTH2_CLIENT_CERT"])

    def test_operation_any_case_and_options(self):
        p = self.params("--operation", "heal", "--ssh-ip", "10.0.0.5",
                        "--vnfm", "https://tacker.example:9890/", PACKAGE_PARAMS)
        self.assertEqual(p["LcmCoordRequest"]["lcmOperationType"], "HEAL")
        self.assertEqual(p["ssh_ip"], "10.0.0.5")
        self.assertTrue(p["LcmCoordRequest"]["_links"]["vnfInstance"]["href"].startswith(
            "https://tacker.example:9890/vnflcm/v2/vnf_instances/"))

    def test_stdin_and_a_bare_additional_params_object(self):
        bare = json.dumps(load_package_params()["additionalParams"])
        p = self.params(stdin=bare)
        self.assertEqual(p["cp_name"], "VDU1_CP1")
        p = self.params("-", stdin=bare)
        self.assertEqual(p["cp_name"], "VDU1_CP1")


class ErrorTest(ParamsTestCase):
    def test_unknown_operation_lists_the_values(self):
        line = self.params_error("--operation", "upgrade", PACKAGE_PARAMS)
        self.assertIn("'upgrade' is not one of", line)
        self.assertIn("CHANGE_VNFPKG", line)

    def test_unknown_vdu_names_the_choices(self):
        line = self.params_error("--vdu", "VDU9", PACKAGE_PARAMS)
        self.assertIn("no VDU 'VDU9' in vdu_params (it has: VDU1)", line)

    def test_several_vdus_need_a_choice(self):
        data = load_package_params()
        second = dict(data["additionalParams"]["vdu_params"][0], vdu_id="VDU2")
        data["additionalParams"]["vdu_params"].append(second)
        line = self.params_error(self.write(data))
        self.assertIn("choose one with --vdu (VDU1, VDU2)", line)
        self.assertEqual(self.params("--vdu", "VDU2", self.write(data))["vnfc_info_id"][:5],
                         "VDU2-")

    def test_missing_old_vnfc_param(self):
        data = load_package_params()
        del data["additionalParams"]["vdu_params"][0]["old_vnfc_param"]
        line = self.params_error("--old", self.write(data))
        self.assertIn("VDU 'VDU1' has no old_vnfc_param object", line)

    def test_not_json(self):
        line = self.params_error(self.write('{"additionalParams": '))
        self.assertIn("is not valid JSON", line)

    def test_no_vdu_params(self):
        line = self.params_error(self.write({"additionalParams": {"upgrade_type": "RollingUpdate"}}))
        self.assertIn("has no vdu_params list", line)

    def test_missing_file(self):
        line = self.params_error(os.path.join(self.tmp.name, "nope.json"))
        self.assertIn("cannot read", line)

    def test_usage(self):
        line = self.params_error("--new", "--old", PACKAGE_PARAMS)
        self.assertIn("--new and --old exclude each other", line)
        line = self.params_error("--colour", PACKAGE_PARAMS)
        self.assertIn("unknown option '--colour'", line)
        line = self.params_error("--operaton", "heal", PACKAGE_PARAMS)
        self.assertIn("unknown option '--operaton'; did you mean '--operation'?", line)

    def test_help(self):
        done = run_lcmcoord("params", "--help")
        self.assertEqual(done.returncode, 0)
        self.assertIn("usage: lcmcoord params", done.stdout)


class RoundTripTest(ParamsTestCase):
    def test_params_then_check_then_run_against_the_em(self):
        data = load_package_params()
        vnfc = data["additionalParams"]["vdu_params"][0]["new_vnfc_param"]
        with EM("--basic", "tacker:pass-word") as em:
            vnfc["endpoint"] = em.url
            vnfc["authentication"] = {"authType": ["BASIC"],
                                      "paramsBasic": {"userName": "tacker",
                                                      "password": "pass-word"}}
            vnfc["timeout"] = 30
            vnfc["inputParams"] = {"vnfcInstanceId": ["VDU1-x"]}
            path = self.write(data)
            text = json.dumps(self.params("--operation", "scale", path))
            checked = run_lcmcoord("check", SCRIPT, stdin=text)
            self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
            self.assertEqual(em.journal() and [e for e in em.journal()
                                               if e.get("method") == "POST"], [])
            done = run_lcmcoord("run", SCRIPT, stdin=text)
            journal = em.journal()
        self.assertEqual(done.returncode, 0, done.stderr)
        post = [e for e in journal if e.get("method") == "POST"]
        self.assertEqual(len(post), 1, journal)
        sent = json.loads(text)["LcmCoordRequest"]
        body = post[0].get("request") or post[0].get("body")
        if isinstance(body, str):
            body = json.loads(body)
        self.assertEqual(body["vnfInstanceId"], sent["vnfInstanceId"])
        self.assertEqual(body["lcmOperationType"], "SCALE")
        self.assertEqual(body["coordinationActionName"],
                         "prv.tacker_organization.coordination_test")
        self.assertEqual(body["inputParams"], {"vnfcInstanceId": ["VDU1-x"]})


if __name__ == "__main__":
    unittest.main()
