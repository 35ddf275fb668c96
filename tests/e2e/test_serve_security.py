"""End-to-end: who may call `lcmcoord serve` (docs/serve.md, "Authentication" and "TLS"):
HTTPS with a certificate made at test time, mutual TLS (a client without a good certificate
is refused, the audit log names the one that called), HTTP Basic against a users file made
by `lcmcoord serve --hash-password`, and Bearer JWTs signed at test time with the openssl
CLI and checked against a JWKS file. Clients: the curl CLI and `lcmcoord coordinate`.
Secrets never appear in the log.
"""

import base64
import json
import os
import subprocess
import tempfile
import time
import unittest

from certs import make_pki
from serve_harness import API_HEADERS, Serve, curl, run_lcmcoord, sample_request
from harness import LCMCOORD_BIN


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.pki = make_pki(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_https_and_lcmcoord_coordinate_over_it(self):
        p = self.pki
        with Serve("--tls-cert", p.server_cert, "--tls-key", p.server_key) as s:
            self.assertTrue(s.url.startswith("https://127.0.0.1:"), s.url)
            r = s.post({}, extra=("--cacert", p.ca_cert))
            self.assertEqual(r.status, 201, r)
            self.assertTrue(r.headers["location"].startswith("https://"), r)
            done = run_lcmcoord("coordinate", "--endpoint", s.url, "--action", "x",
                                "--cacert", p.ca_cert, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            # Verification stays on: a client that does not trust the CA gets nowhere.
            bad = subprocess.run(["curl", "-sS", s.url + "/healthz"], capture_output=True)
            self.assertNotEqual(bad.returncode, 0)

    def test_mutual_tls_refuses_without_a_good_certificate_and_logs_who_called(self):
        p = self.pki
        with Serve("--tls-cert", p.server_cert, "--tls-key", p.server_key, "--client-ca",
                   p.ca_cert) as s:
            ok = s.post({}, extra=("--cacert", p.ca_cert, "--cert", p.client_cert, "--key",
                                   p.client_key))
            self.assertEqual(ok.status, 201, ok)
            none = s.post({}, extra=("--cacert", p.ca_cert))
            self.assertEqual(none.status, 401, none)
            other = s.post({}, extra=("--cacert", p.ca_cert, "--cert", p.other_client_cert,
                                      "--key", p.other_client_key))
            self.assertIn(other.status, (401,), other)
            done = run_lcmcoord("coordinate", "--endpoint", s.url, "--action", "x",
                                "--cacert", p.ca_cert, "--cert", p.client_cert, "--key",
                                p.client_key, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            decisions = [o for o in s.log_lines() if o.get("event") == "decision"]
            self.assertEqual(len(decisions), 2)
            self.assertTrue(all(d["client"] == "cn=lcmcoord-test-client" for d in decisions),
                            decisions)


class Basic(unittest.TestCase):
    def test_basic_against_a_users_file_made_by_hash_password(self):
        with tempfile.TemporaryDirectory() as d:
            password = "pw-for-the-test-9f1"
            made = subprocess.run([LCMCOORD_BIN, "serve", "--hash-password", "vnfm"],
                                  input=password + "\n", capture_output=True, text=True,
                                  timeout=60)
            self.assertEqual(made.returncode, 0, made.stderr)
            self.assertTrue(made.stdout.startswith("vnfm:$y$"), made.stdout)
            self.assertNotIn(password, made.stdout + made.stderr)
            users = os.path.join(d, "users")
            with open(users, "w") as f:
                f.write(made.stdout)
            os.chmod(users, 0o600)
            with Serve("--users-file", users) as s:
                ok = s.post({}, extra=("-u", "vnfm:" + password))
                self.assertEqual(ok.status, 201, ok)
                wrong = s.post({}, extra=("-u", "vnfm:nope"))
                self.assertEqual(wrong.status, 401, wrong)
                self.assertIn("Basic", wrong.headers["www-authenticate"])
                self.assertEqual(s.post({}).status, 401)
                self.assertEqual(s.get(ok.headers["location"]).status, 401)
                auth = os.path.join(d, "auth.json")
                with open(auth, "w") as f:
                    json.dump({"authType": ["BASIC"], "paramsBasic": {
                        "userName": "vnfm", "password": password}}, f)
                done = run_lcmcoord("coordinate", "--endpoint", s.url, "--action", "x",
                                    "--auth", auth, timeout=30)
                self.assertEqual(done.returncode, 0, done.stderr)
                lines = s.log_lines()
                self.assertTrue(any(o.get("client") == "vnfm" for o in lines
                                    if o.get("event") == "decision"), lines)
                self.assertNotIn(password, s.log_text())
                m = curl("GET", s.url + "/metrics").body
                self.assertIn("lcmcoord_serve_auth_failures_total 3", m)


class Jwt(unittest.TestCase):
    def test_bearer_jwt_signed_at_test_time_against_a_jwks(self):
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "key.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                            "rsa_keygen_bits:2048", "-out", key], check=True,
                           capture_output=True)
            modulus = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"],
                                     check=True, capture_output=True, text=True).stdout
            n = bytes.fromhex(modulus.strip().split("=", 1)[1])
            jwks = os.path.join(d, "jwks.json")
            with open(jwks, "w") as f:
                json.dump({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                                     "n": b64url(n), "e": "AQAB"}]}, f)

            def token(**claims):
                head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
                body = b64url(json.dumps(claims).encode())
                signed = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                                        input=f"{head}.{body}".encode(), check=True,
                                        capture_output=True).stdout
                return f"{head}.{body}.{b64url(signed)}"

            now = int(time.time())
            good = token(iss="https://as.test", aud="lcmcoord-em", client_id="tacker",
                         exp=now + 300)
            expired = token(iss="https://as.test", aud="lcmcoord-em", client_id="tacker",
                            exp=now - 3600)
            wrong_aud = token(iss="https://as.test", aud="other", client_id="tacker",
                              exp=now + 300)
            with Serve("--jwks-file", jwks, "--jwt-issuer", "https://as.test",
                       "--jwt-audience", "lcmcoord-em") as s:
                def post(tok):
                    return s.post({}, headers={**API_HEADERS,
                                               "Authorization": "Bearer " + tok})
                ok = post(good)
                self.assertEqual(ok.status, 201, ok)
                for bad in (expired, wrong_aud, good[:-4] + "AAAA"):
                    r = post(bad)
                    self.assertEqual(r.status, 401, r)
                    self.assertIn("invalid_token", r.headers["www-authenticate"])
                decisions = [o for o in s.log_lines() if o.get("event") == "decision"]
                self.assertEqual([o["client"] for o in decisions], ["tacker"])
                for tok in (good, expired):
                    self.assertNotIn(tok.split(".")[2], s.log_text())


if __name__ == "__main__":
    unittest.main()
