"""End-to-end tests of `lcmcoord em` over HTTPS, with the `curl` CLI as the client and a PKI
made at test time by certs.py: the listening line and the URLs the simulator hands out
use https, curl verifies the server against the test CA (and fails without it, or against
a wrong-host certificate), TLS below 1.2 is refused, and --client-ca requires a client
certificate from that CA (none, self-signed, another CA's or an expired one → 401), whose
CN and x5t#S256 thumbprint the journal records. Under --client-ca the token endpoint
issues a token for client_id alone (OAUTH2_CLIENT_CERT).
"""

import json
import subprocess
import unittest
import urllib.parse

import certs
from harness import (API_HEADERS, EM, TIME_FACTOR, TestCase, TlsEM, curl, run_lcmcoord,
                     sample_request)

COORDS = "/lcmcoord/v1/coordinations"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class TlsTestCase(certs.WithPki, TestCase):
    def ca(self, *more):
        return ["--cacert", self.pki.ca_cert, *more]

    def client_cert(self, cert=None, key=None):
        return ["--cert", cert or self.pki.client_cert, "--key", key or self.pki.client_key]


def curl_exit(url, *extra):
    """Runs curl expecting a failure; returns its exit code and stderr."""
    done = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "20", *extra, url],
                          capture_output=True, text=True, timeout=30 * TIME_FACTOR)
    return done.returncode, done.stderr


class HttpsTest(TlsTestCase):
    def test_https_with_the_ca_and_https_urls(self):
        with TlsEM(self.pki) as em:
            self.assertRegex(em.url, r"^https://127\.0\.0\.1:\d+$")
            resp = curl("POST", em.url + COORDS, body=json.dumps(sample_request()),
                        headers=API_HEADERS, extra=self.ca())
            self.assertEqual(resp.status, 201, resp)
            self.assertTrue(resp.headers["location"].startswith(em.url + COORDS + "/"))
            self.assertTrue(resp.json()["_links"]["self"]["href"].startswith("https://"))
            versions = curl("GET", em.url + "/lcmcoord/api_versions", extra=self.ca())
            self.assertEqual(versions.json()["uriPrefix"], em.url + "/lcmcoord/v1")
            by_name = em.url.replace("127.0.0.1", "localhost")
            self.assertEqual(curl("GET", by_name + "/lcmcoord/api_versions",
                                  extra=self.ca()).status, 200)
            entry = em.wait_journal(3)[0]
            self.assertIn(entry["tls"]["version"], ("TLS1.2", "TLS1.3"))
            self.assertIsNone(entry["tls"]["clientCertThumbprint"])

    def test_curl_without_the_ca_fails_verification(self):
        with TlsEM(self.pki) as em:
            rc, err = curl_exit(em.url + "/lcmcoord/api_versions")
            self.assertEqual(rc, 60, err)  # CURLE_PEER_FAILED_VERIFICATION
            rc, err = curl_exit(em.url + "/lcmcoord/api_versions",
                                "--cacert", self.pki.other_ca_cert)
            self.assertEqual(rc, 60, err)
            rc, _ = curl_exit(em.url.replace("https", "http") + "/lcmcoord/api_versions")
            self.assertNotEqual(rc, 0, "plain HTTP must not be served on the TLS port")

    def test_wrong_host_and_self_signed_server_certificates_fail(self):
        with TlsEM(self.pki, cert=self.pki.wrong_host_cert, key=self.pki.wrong_host_key) as em:
            rc, err = curl_exit(em.url + "/lcmcoord/api_versions", *self.ca())
            self.assertEqual(rc, 60, err)
        with TlsEM(self.pki, cert=self.pki.self_signed_cert,
                   key=self.pki.self_signed_key) as em:
            rc, err = curl_exit(em.url + "/lcmcoord/api_versions", *self.ca())
            self.assertEqual(rc, 60, err)
            self.assertEqual(curl("GET", em.url + "/lcmcoord/api_versions",
                                  extra=["--cacert", self.pki.self_signed_cert]).status, 200)

    def test_tls_below_1_2_is_refused(self):
        # openssl s_client at security level 0, so that the refusal is the server's own.
        with TlsEM(self.pki) as em:
            hostport = em.url.split("//", 1)[1]
            for version, accepted in (("-tls1_1", False), ("-tls1_2", True),
                                      ("-tls1_3", True)):
                with self.subTest(version):
                    done = subprocess.run(
                        [certs.OPENSSL, "s_client", "-connect", hostport, version,
                         "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", self.pki.ca_cert],
                        input=b"", capture_output=True, timeout=20 * TIME_FACTOR)
                    negotiated = b"Cipher is (NONE)" not in done.stdout
                    self.assertEqual(negotiated, accepted, done.stdout[-400:])

    def test_bad_tls_files_exit_2(self):
        cases = [("--tls-cert", "/nonexistent.pem", "--tls-key", self.pki.server_key),
                 ("--tls-cert", self.pki.server_cert, "--tls-key", self.pki.client_key),
                 ("--tls-cert", self.pki.server_cert, "--tls-key", self.pki.server_key,
                  "--client-ca", self.pki.server_key)]
        for args in cases:
            with self.subTest(args=args):
                done = run_lcmcoord("em", "--listen", "127.0.0.1:0", *args, timeout=20)
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertOneLine(done.stderr)
                self.assertEqual(done.stdout, "")


class ClientCertTest(TlsTestCase):
    def test_client_certificate_required_and_recorded(self):
        with TlsEM(self.pki, "--client-ca", self.pki.ca_cert) as em:
            ok = curl("POST", em.url + COORDS, body=json.dumps(sample_request()),
                      headers=API_HEADERS, extra=self.ca(*self.client_cert()))
            self.assertEqual(ok.status, 201, ok)
            refused = {
                "none": [],
                "self-signed": self.client_cert(self.pki.self_signed_cert,
                                                self.pki.self_signed_key),
                "other CA": self.client_cert(self.pki.other_client_cert,
                                             self.pki.other_client_key),
                "expired": self.client_cert(self.pki.expired_cert, self.pki.expired_key),
            }
            for name, extra in refused.items():
                with self.subTest(name):
                    resp = curl("POST", em.url + COORDS, body=json.dumps(sample_request()),
                                headers=API_HEADERS, extra=self.ca(*extra))
                    self.assertEqual(resp.status, 401, resp)
                    self.assertIn("www-authenticate", resp.headers)
                    self.assertIn("certificate", resp.json()["detail"])
            journal = em.wait_journal(5)
            expected = self.pki.thumbprint(self.pki.client_cert)
            self.assertEqual(journal[0]["tls"]["clientCertThumbprint"], expected)
            self.assertEqual(journal[0]["tls"]["clientCertSubject"], certs.CLIENT_CN)
            self.assertTrue(journal[0]["tls"]["clientCertVerified"])
            self.assertIsNone(journal[1]["tls"]["clientCertThumbprint"])
            self.assertEqual(journal[4]["tls"]["clientCertSubject"], certs.EXPIRED_CN)
            self.assertEqual(journal[4]["tls"]["clientCertThumbprint"],
                             self.pki.thumbprint(self.pki.expired_cert))
            self.assertFalse(journal[4]["tls"]["clientCertVerified"])
            self.assertIn("expired", self.refusal_detail(em))

    def refusal_detail(self, em):
        resp = curl("GET", em.url + "/lcmcoord/api_versions",
                    extra=self.ca(*self.client_cert(self.pki.expired_cert,
                                                    self.pki.expired_key)))
        return resp.json()["detail"]

    def test_token_for_client_id_alone_under_mtls(self):
        with TlsEM(self.pki, "--client-ca", self.pki.ca_cert, "--oauth2", "cert-client") as em:
            body = urllib.parse.urlencode({"grant_type": "client_credentials",
                                           "client_id": "cert-client"})
            no_cert = curl("POST", em.url + "/token", body=body, headers=FORM, extra=self.ca())
            self.assertEqual(no_cert.status, 401)
            self.assertEqual(no_cert.json()["error"], "invalid_client")
            wrong_id = curl("POST", em.url + "/token", body=body.replace("cert-client", "eve"),
                            headers=FORM, extra=self.ca(*self.client_cert()))
            self.assertEqual(wrong_id.status, 401)
            resp = curl("POST", em.url + "/token", body=body, headers=FORM,
                        extra=self.ca(*self.client_cert()))
            self.assertEqual(resp.status, 200, resp)
            token = resp.json()["access_token"]
            api = curl("POST", em.url + COORDS, body=json.dumps(sample_request()),
                       headers=dict(API_HEADERS, Authorization="Bearer " + token),
                       extra=self.ca(*self.client_cert()))
            self.assertEqual(api.status, 201, api)
            # The token alone is not enough: the certificate is required on every request.
            bare = curl("POST", em.url + COORDS, body=json.dumps(sample_request()),
                        headers=dict(API_HEADERS, Authorization="Bearer " + token),
                        extra=self.ca())
            self.assertEqual(bare.status, 401)
            journal = em.wait_journal(5)
            issued = journal[2]
            self.assertEqual(issued["auth"], {"scheme": "tls_client_auth",
                                              "user": "cert-client", "ok": True})
            self.assertEqual(issued["tls"]["clientCertThumbprint"],
                             self.pki.thumbprint(self.pki.client_cert))
            self.assertNotIn(token, json.dumps(journal))

    def test_secret_client_under_mtls_may_use_either(self):
        args = ("--client-ca", self.pki.ca_cert, "--oauth2", "app:pw")
        with TlsEM(self.pki, *args) as em:
            for body in ("grant_type=client_credentials&client_id=app",
                         "grant_type=client_credentials&client_id=app&client_secret=pw"):
                with self.subTest(body=body):
                    resp = curl("POST", em.url + "/token", body=body, headers=FORM,
                                extra=self.ca(*self.client_cert()))
                    self.assertEqual(resp.status, 200, resp)


if __name__ == "__main__":
    unittest.main()
