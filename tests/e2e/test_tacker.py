"""End-to-end tests of the Tacker drop-in (scripts/tacker/coordinate_vnf.py): a parameter
dict pickled the way Tacker's infra driver pickles it (uuid.UUID ids, a datetime, the
VnfInstance as a nested dict, is_rollback a bool) is piped to `python3 coordinate_vnf.py`,
exactly as Tacker runs it, against `lcmcoord em`. The EM's journal shows what the Lua script
sent; the exit status and stderr are what Tacker would record. The TLS files of a
tacker.conf `[v2_vnfm]` section (CA, and the client certificate and key in one PEM file as
Tacker keeps them) reach lcmcoord with no other configuration.
"""

import datetime
import filecmp
import json
import os
import pickle
import subprocess
import sys
import tempfile
import uuid

import certs
import harness
from harness import EM, TlsEM

SHIM = os.path.join(harness.SOURCE_DIR, "scripts", "tacker", "coordinate_vnf.py")
PACKAGE = os.path.join(harness.SOURCE_DIR, "scripts", "vnf-package")
ACTION = "prv.tacker_organization.coordination_test"
COORDINATIONS = "/lcmcoord/v1/coordinations"
INSTANCE_ID = uuid.UUID("9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20")
OP_OCC_ID = uuid.UUID("c2a7e4d1-0b5f-4e8a-a1c3-7f6d9e2b4a01")


def tacker_param(endpoint, **overrides):
    """The dict Tacker's infra driver pickles for one VNFC, with its Python types."""
    param = {
        "cp_name": "VDU1_CP1",
        "username": "ubuntu",
        "password": "ubuntu",
        "ssh_ip": "192.0.2.10",
        "is_rollback": False,
        "vnfc_info_id": "VDU1-6f1e2d3c",
        "endpoint": endpoint,
        "authentication": {"authType": ["BASIC"],
                           "paramsBasic": {"userName": "tacker", "password": "tacker"}},
        "timeout": 30,
        "inputParams": {"vnfcInstanceId": ["VDU1-6f1e2d3c"]},
        "LcmCoordRequest": {
            "vnfInstanceId": INSTANCE_ID,
            "vnfLcmOpOccId": OP_OCC_ID,
            "lcmOperationType": "CHANGE_VNFPKG",
            "coordinationActionName": "should_be_set_by_script",
            "_links": {
                "vnfLcmOpOcc": {"href": f"http://vnfm.example:9890/vnflcm/v2/"
                                        f"vnf_lcm_op_occs/{OP_OCC_ID}"},
                "vnfInstance": {"href": f"http://vnfm.example:9890/vnflcm/v2/"
                                        f"vnf_instances/{INSTANCE_ID}"},
            },
        },
        "inst": {
            "id": INSTANCE_ID,
            "vnfdId": uuid.UUID("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"),
            "instantiationState": "INSTANTIATED",
            "instantiatedVnfInfo": {
                "vnfcResourceInfo": [{"id": "VDU1-6f1e2d3c", "vduId": "VDU1",
                                      "metadata": {"creation_time": datetime.datetime(
                                          2026, 5, 4, 10, 0, 0,
                                          tzinfo=datetime.timezone.utc)}}],
                "flavourId": b"simple",
                "extCpInfo": {"VDU1_CP1"},
            },
            "vimConnectionInfo": {"vim1": {"extra": {"created": datetime.date(2026, 5, 1)}}},
        },
    }
    param.update(overrides)
    return param


def run_shim(param, tacker_conf=None, env=None, raw=None, shim=SHIM):
    """Runs the shim as Tacker does: `python3 <script>`, the pickle on stdin."""
    full_env = dict(os.environ)
    full_env["TACKER_CONF"] = tacker_conf or os.path.join(tempfile.gettempdir(), "no-such.conf")
    for name in ("LCMCOORD_CACERT", "LCMCOORD_CERT", "LCMCOORD_KEY", "LCMCOORD_CONFIG"):
        full_env.pop(name, None)
    full_env.update(env or {})
    data = raw if raw is not None else pickle.dumps(param)
    return subprocess.run([sys.executable, shim], input=data, capture_output=True,
                          timeout=120 * harness.TIME_FACTOR, env=full_env)


def posts(journal):
    return [e for e in journal if e["method"] == "POST" and e["path"] == COORDINATIONS]


class TackerShimTest(harness.TestCase):
    def test_continue_exits_0_and_the_em_gets_the_action_and_input_params(self):
        with EM("--basic", "tacker:tacker") as em:
            done = run_shim(tacker_param(em.url))
            self.assertEqual(done.returncode, 0, done.stderr)
            (post,) = posts(em.journal())
        body = json.loads(post["body"])
        self.assertEqual(body["coordinationActionName"], ACTION)
        self.assertEqual(body["inputParams"], {"vnfcInstanceId": ["VDU1-6f1e2d3c"]})
        # The UUIDs went through as their text form.
        self.assertEqual(body["vnfInstanceId"], str(INSTANCE_ID))
        self.assertEqual(body["vnfLcmOpOccId"], str(OP_OCC_ID))
        self.assertEqual(body["lcmOperationType"], "CHANGE_VNFPKG")

    def test_abort_exits_1_with_one_line_on_stderr(self):
        with EM("--basic", "tacker:tacker", "--result", "ABORT") as em:
            done = run_shim(tacker_param(em.url))
            self.assertEqual(done.returncode, 1, done.stderr)
            self.assertEqual(len(posts(em.journal())), 1)
        line = self.assertOneLine(done.stderr.decode())
        self.assertIn("ABORT", line)

    def test_rollback_runs_the_same_way(self):
        with EM("--basic", "tacker:tacker") as em:
            done = run_shim(tacker_param(em.url, is_rollback=True))
            self.assertEqual(done.returncode, 0, done.stderr)

    def test_without_input_params_none_are_sent(self):
        param = tacker_param("")
        del param["inputParams"]
        with EM("--basic", "tacker:tacker") as em:
            param["endpoint"] = em.url
            done = run_shim(param)
            self.assertEqual(done.returncode, 0, done.stderr)
            (post,) = posts(em.journal())
        self.assertNotIn("inputParams", json.loads(post["body"]))

    def test_unreachable_em_passes_lcmcoord_status_4_through(self):
        # Refused connections are retried within the deadline: keep it short.
        done = run_shim(tacker_param("http://127.0.0.1:1", timeout=2))
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("cannot reach the EM", self.assertOneLine(done.stderr.decode()))

    def test_a_broken_pickle_exits_2_with_one_line(self):
        done = run_shim(None, raw=b"not a pickle")
        self.assertEqual(done.returncode, 2)
        self.assertIn("cannot read the VNFC parameters",
                      self.assertOneLine(done.stderr.decode()))

    def test_a_pickle_that_is_not_a_dict_exits_2(self):
        done = run_shim(None, raw=pickle.dumps(["a", "list"]))
        self.assertEqual(done.returncode, 2)
        self.assertIn("not a dict", done.stderr.decode())

    def test_missing_lcmcoord_exits_2_naming_it(self):
        done = run_shim(tacker_param("http://127.0.0.1:1"),
                        env={"LCMCOORD_BIN": "/nonexistent/lcmcoord"})
        self.assertEqual(done.returncode, 2)
        self.assertIn("/nonexistent/lcmcoord", self.assertOneLine(done.stderr.decode()))

    def test_the_package_copy_runs_and_matches_the_sources(self):
        self.assertTrue(filecmp.cmp(os.path.join(PACKAGE, "Scripts", "coordinate_vnf.py"),
                                    SHIM, shallow=False))
        self.assertTrue(filecmp.cmp(
            os.path.join(PACKAGE, "Scripts", "coordinate_vnf.lua"),
            os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua"), shallow=False))
        with open(os.path.join(PACKAGE, "additional_params.json")) as f:
            params = json.load(f)["additionalParams"]
        # Tacker's sample additionalParams for coordination (fixture kept in this tree, so
        # the suite runs in any clone).
        with open(os.path.join(harness.E2E_DIR, "fixtures", "tacker_additional_params.json")) as f:
            reference = json.load(f)["additionalParams"]
        for key in ("lcm-operation-coordinate-new-vnf", "lcm-operation-coordinate-old-vnf"):
            self.assertEqual(params[key], "./Scripts/coordinate_vnf.py")
            del params[key], reference[key]
        self.assertEqual(params, reference)
        with EM("--basic", "tacker:tacker") as em:
            done = run_shim(tacker_param(em.url),
                            shim=os.path.join(PACKAGE, "Scripts", "coordinate_vnf.py"))
            self.assertEqual(done.returncode, 0, done.stderr)


class TackerTlsTest(harness.TestCase):
    """The TLS files of tacker.conf [v2_vnfm] reach `lcmcoord run`."""

    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory()
        cls.pki = certs.make_pki(cls._dir.name)
        cls.combined = os.path.join(cls._dir.name, "client-combined.pem")
        cls.key_first = os.path.join(cls._dir.name, "client-key-first.pem")
        with open(cls.pki.client_cert) as c, open(cls.pki.client_key) as k:
            cert, key = c.read(), k.read()
        for path, text in ((cls.combined, cert + key), (cls.key_first, key + cert)):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()

    def tacker_conf(self, **options):
        path = os.path.join(self._dir.name, "tacker.conf")
        with open(path, "w") as f:
            f.write("[DEFAULT]\ndebug = True\n\n[v2_vnfm]\n")
            for name, value in options.items():
                f.write(f"{name} = {value}\n")
        return path

    def test_ca_and_combined_client_certificate_from_tacker_conf(self):
        for client_file in (self.combined, self.key_first):
            with self.subTest(client_file=os.path.basename(client_file)):
                conf = self.tacker_conf(notification_verify_cert="True",
                                        notification_ca_cert_file=self.pki.ca_cert,
                                        notification_mtls_client_cert_file=client_file)
                with TlsEM(self.pki, "--client-ca", self.pki.ca_cert,
                           "--basic", "tacker:tacker") as em:
                    done = run_shim(tacker_param(em.url), tacker_conf=conf)
                    self.assertEqual(done.returncode, 0, done.stderr)
                    (post,) = posts(em.journal())
                self.assertEqual(post["tls"]["clientCertSubject"], certs.CLIENT_CN)
                self.assertTrue(post["tls"]["clientCertVerified"])
                self.assertEqual(post["tls"]["clientCertThumbprint"],
                                 self.pki.thumbprint(self.pki.client_cert))

    def test_mtls_ca_and_notification_ca_are_both_trusted(self):
        # The EM's certificate is from the test CA, named as the mTLS CA; the other CA file
        # is unrelated: the shim must offer both.
        conf = self.tacker_conf(notification_verify_cert="true",
                                notification_ca_cert_file=self.pki.other_ca_cert,
                                notification_mtls_ca_cert_file=self.pki.ca_cert,
                                notification_mtls_client_cert_file=self.combined)
        with TlsEM(self.pki, "--client-ca", self.pki.ca_cert, "--basic", "tacker:tacker") as em:
            done = run_shim(tacker_param(em.url), tacker_conf=conf)
            self.assertEqual(done.returncode, 0, done.stderr)
        leftovers = [n for n in os.listdir(tempfile.gettempdir())
                     if n.startswith("lcmcoord-ca-")]
        self.assertEqual(leftovers, [], "the temporary CA bundle was not removed")

    def test_without_tacker_conf_the_em_is_not_trusted(self):
        with TlsEM(self.pki, "--basic", "tacker:tacker") as em:
            done = run_shim(tacker_param(em.url))
            self.assertEqual(done.returncode, 4, done.stderr)
        self.assertIn("TLS", self.assertOneLine(done.stderr.decode()))

    def test_an_untrusted_em_names_the_tacker_conf_setting(self):
        # Tacker's own sample succeeds here (it does not verify by default); the shim's
        # error must say which tacker.conf line makes lcmcoord trust the EM.
        missing = os.path.join(self._dir.name, "no-tacker.conf")
        cases = [
            (missing, "; hint: Tacker does not verify the EM's certificate by default, "
                      "lcmcoord does: set notification_ca_cert_file = <the EM's CA file> and "
                      f"notification_verify_cert = True in [v2_vnfm] of {missing} (or give the "
                      "EM's CA as LCMCOORD_CACERT or tls.cacert in lcmcoord.conf)"),
            (self.tacker_conf(notification_verify_cert="False",
                              notification_ca_cert_file=self.pki.ca_cert),
             "; hint: Tacker does not verify the EM's certificate by default, lcmcoord does, "
             "and uses notification_ca_cert_file only when Tacker would: set "
             "notification_verify_cert = True in [v2_vnfm] of "
             f"{os.path.join(self._dir.name, 'tacker.conf')} (or give the EM's CA as "
             "LCMCOORD_CACERT or tls.cacert in lcmcoord.conf)"),
        ]
        for conf, hint in cases:
            with self.subTest(conf=os.path.basename(conf)):
                with TlsEM(self.pki, "--basic", "tacker:tacker") as em:
                    done = run_shim(tacker_param(em.url), tacker_conf=conf)
                    self.assertEqual(done.returncode, 4, done.stderr)
                    self.assertEqual(posts(em.journal()), [])
                line = self.assertOneLine(done.stderr.decode())
                self.assertIn("unable to get local issuer certificate", line)
                self.assertTrue(line.endswith(hint), line)
                self.assertNotIn("--cacert", line)

    def test_without_the_client_certificate_the_em_refuses(self):
        conf = self.tacker_conf(notification_verify_cert="True",
                                notification_ca_cert_file=self.pki.ca_cert)
        with TlsEM(self.pki, "--client-ca", self.pki.ca_cert, "--basic", "tacker:tacker") as em:
            done = run_shim(tacker_param(em.url), tacker_conf=conf)
        self.assertNotEqual(done.returncode, 0)
        self.assertOneLine(done.stderr.decode())


if __name__ == "__main__":
    import unittest

    unittest.main()
