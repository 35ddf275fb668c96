"""End-to-end tests of `lcmcoord em --oauth2` over plain HTTP, with the `curl` CLI as the
client: the token endpoint (client_secret_basic with RFC 6749 §2.3.1 encoding and
client_secret_post, wrong secrets, bad grants, repeated parameters), Bearer tokens on the
API (valid, missing, garbage, expired with --token-ttl), --basic alongside, the shipped
expire_token_once.lua scenario, and canaries: the secret, the token and base64 of the
credentials must never reach the journal or stderr. TLS has its own suite (test_em_tls).
"""

import base64
import json
import os
import urllib.parse

from harness import API_HEADERS, EM, SOURCE_DIR, TestCase, curl, sample_request, wait_for

COORDS = "/lcmcoord/v1/coordinations"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CLIENT_ID = "vnfm client/1é"  # space, slash, non-ASCII: all need RFC 6749 encoding
SECRET = "Zq7%canary+S3CR3T:ü&x"  # every character RFC 6749 encoding must handle
EXPIRE_ONCE = os.path.join(SOURCE_DIR, "scripts", "em", "expire_token_once.lua")


def oauth_basic(client_id, secret):
    """client_secret_basic as RFC 6749 §2.3.1 spells it: form-encode, then base64."""
    pair = urllib.parse.quote_plus(client_id) + ":" + urllib.parse.quote_plus(secret)
    return "Basic " + base64.b64encode(pair.encode()).decode()


def token_request(em, form, headers=None, extra=()):
    body = urllib.parse.urlencode(form) if isinstance(form, dict) else form
    return curl("POST", em.url + "/token", body=body, headers=dict(FORM, **(headers or {})),
                extra=extra)


def get_token(em):
    resp = token_request(em, {"grant_type": "client_credentials"},
                         headers={"Authorization": oauth_basic(CLIENT_ID, SECRET)})
    if resp.status != 200:
        raise AssertionError(f"token request failed: {resp}")
    return resp.json()["access_token"]


def post(em, token=None, headers=None):
    h = dict(API_HEADERS, **(headers or {}))
    if token:
        h["Authorization"] = "Bearer " + token
    return curl("POST", em.url + COORDS, body=json.dumps(sample_request()), headers=h)


def oauth_em(*args):
    return EM("--oauth2", f"{CLIENT_ID}:{SECRET}", *args)


class TokenEndpointTest(TestCase):
    def test_client_secret_basic_with_rfc6749_encoding(self):
        with oauth_em() as em:
            resp = token_request(em, "grant_type=client_credentials",
                                 headers={"Authorization": oauth_basic(CLIENT_ID, SECRET)})
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.headers["cache-control"], "no-store")
            self.assertTrue(resp.headers["content-type"].startswith("application/json"))
            doc = resp.json()
            self.assertEqual(set(doc), {"access_token", "token_type", "expires_in"})
            self.assertEqual(doc["token_type"], "Bearer")
            self.assertEqual(doc["expires_in"], 3600)
            self.assertRegex(doc["access_token"], r"^[A-Za-z0-9_-]{43}$")
            self.assertNotEqual(get_token(em), doc["access_token"])

            # The same credentials without the form encoding (RFC 7617 style) are refused.
            raw = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
            refused = token_request(em, "grant_type=client_credentials",
                                    headers={"Authorization": raw})
            self.assertEqual(refused.status, 401)

    def test_client_secret_post(self):
        with oauth_em("--token-ttl", "none") as em:
            resp = token_request(em, {"grant_type": "client_credentials",
                                      "client_id": CLIENT_ID, "client_secret": SECRET})
            self.assertEqual(resp.status, 200, resp)
            self.assertNotIn("expires_in", resp.json())
            self.assertEqual(post(em, resp.json()["access_token"]).status, 201)

    def test_client_authentication_failures(self):
        with oauth_em() as em:
            cases = [
                ("wrong secret", {"grant_type": "client_credentials"},
                 {"Authorization": oauth_basic(CLIENT_ID, SECRET + "x")}, 401, "invalid_client"),
                ("wrong post secret", {"grant_type": "client_credentials",
                                       "client_id": CLIENT_ID, "client_secret": "nope"},
                 {}, 401, "invalid_client"),
                ("no credentials", {"grant_type": "client_credentials"}, {}, 401,
                 "invalid_client"),
                ("client_id only", {"grant_type": "client_credentials", "client_id": CLIENT_ID},
                 {}, 401, "invalid_client"),
                ("both methods", {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                  "client_secret": SECRET},
                 {"Authorization": oauth_basic(CLIENT_ID, SECRET)}, 400, "invalid_request"),
                ("bad grant", {"grant_type": "password"},
                 {"Authorization": oauth_basic(CLIENT_ID, SECRET)}, 400,
                 "unsupported_grant_type"),
                ("no grant", {"scope": "x"},
                 {"Authorization": oauth_basic(CLIENT_ID, SECRET)}, 400, "invalid_request"),
                ("repeated parameter",
                 "grant_type=client_credentials&grant_type=client_credentials",
                 {"Authorization": oauth_basic(CLIENT_ID, SECRET)}, 400, "invalid_request"),
            ]
            for name, form, headers, status, error in cases:
                with self.subTest(name):
                    resp = token_request(em, form, headers=headers)
                    self.assertEqual(resp.status, status, resp)
                    doc = resp.json()
                    self.assertEqual(doc["error"], error)
                    self.assertIsInstance(doc["error_description"], str)
                    self.assertEqual(resp.headers["cache-control"], "no-store")
                    if status == 401:
                        self.assertEqual(resp.headers["www-authenticate"],
                                         'Basic realm="lcmcoord"')
            json_body = curl("POST", em.url + "/token", body='{"grant_type": "x"}',
                             headers={"Content-Type": "application/json"})
            self.assertEqual(json_body.status, 400)
            self.assertEqual(curl("GET", em.url + "/token").status, 405)

    def test_token_endpoint_is_404_without_oauth2(self):
        with EM() as em:
            self.assertEqual(token_request(em, "grant_type=client_credentials").status, 404)


class BearerTest(TestCase):
    def assertTokenRefused(self, resp, error=True):
        self.assertEqual(resp.status, 401, resp)
        challenge = resp.headers["www-authenticate"]
        self.assertTrue(challenge.startswith('Bearer realm="lcmcoord"'), challenge)
        self.assertEqual('error="invalid_token"' in challenge, error, challenge)
        self.assertTrue(resp.headers["content-type"].startswith("application/problem+json"))
        self.assertEqual(resp.json()["status"], 401)

    def test_api_needs_a_valid_token(self):
        with oauth_em() as em:
            self.assertTokenRefused(post(em), error=False)
            self.assertTokenRefused(post(em, "garbage-token"))
            self.assertTokenRefused(post(em, headers={"Authorization": "Bearer"}))
            self.assertTokenRefused(post(em, headers={
                "Authorization": oauth_basic(CLIENT_ID, SECRET)}), error=False)
            token = get_token(em)
            self.assertEqual(post(em, token).status, 201)
            self.assertEqual(curl("GET", em.url + "/lcmcoord/api_versions",
                                  headers={"Authorization": "Bearer " + token}).status, 200)
            journal = em.wait_journal(6)
            self.assertEqual(journal[-1]["auth"], {"scheme": "Bearer", "user": CLIENT_ID,
                                                   "ok": True, "tokenSeq": 1})
            self.assertEqual(journal[1]["auth"], {"scheme": "Bearer", "user": None,
                                                  "ok": False})
            token_entry = [e for e in journal if e["path"] == "/token"][0]
            self.assertEqual(token_entry["auth"], {"scheme": "Basic", "user": CLIENT_ID,
                                                   "ok": True})

    def test_expired_token_is_refused(self):
        with oauth_em("--token-ttl", "1") as em:
            resp = token_request(em, {"grant_type": "client_credentials"},
                                 headers={"Authorization": oauth_basic(CLIENT_ID, SECRET)})
            self.assertEqual(resp.json()["expires_in"], 1)
            token = resp.json()["access_token"]
            self.assertEqual(post(em, token).status, 201)
            refused = wait_for(lambda: (lambda r: r if r.status == 401 else None)(
                post(em, token)), timeout=5, interval=0.1, what="the token to expire")
            self.assertTokenRefused(refused)
            self.assertIn("expired", refused.headers["www-authenticate"])
            self.assertEqual(post(em, get_token(em)).status, 201)

    def test_basic_and_oauth2_together_accept_either(self):
        with oauth_em("--basic", "alice:pw") as em:
            missing = post(em)
            self.assertEqual(missing.status, 401)
            self.assertEqual(curl("POST", em.url + COORDS, body=json.dumps(sample_request()),
                                  headers=API_HEADERS, extra=["-u", "alice:pw"]).status, 201)
            self.assertEqual(post(em, get_token(em)).status, 201)


class ExpireTokenOnceTest(TestCase):
    def test_first_token_is_refused_until_the_client_fetches_another(self):
        with oauth_em("--scenario", EXPIRE_ONCE) as em:
            first = get_token(em)
            refused = post(em, first)
            self.assertEqual(refused.status, 401)
            self.assertEqual(refused.headers["www-authenticate"],
                             'Bearer realm="lcmcoord", error="invalid_token", '
                             'error_description="the access token expired"')
            self.assertEqual(post(em, first).status, 401, "the refused token stays refused")
            second = get_token(em)
            self.assertEqual(post(em, second).status, 201)
            self.assertEqual(post(em, second).status, 201)
            journal = em.wait_journal(6)
            self.assertEqual(sum(1 for e in journal if e["path"] == "/token"), 2)
            api = [e for e in journal if e["path"] == COORDS]
            self.assertEqual([(e["status"], e["auth"]["tokenSeq"]) for e in api],
                             [(401, 1), (401, 1), (201, 2), (201, 2)])

    def test_scenario_sees_auth_and_redacted_token_bodies(self):
        import tempfile
        text = """
            return function(req)
              if req.path == "/token" then
                em.state.token_body = req.body
                em.state.token_auth = req.auth
                return
              end
              if req.path == "/whoami" then
                return 200, nil, {auth = req.auth, token_body = em.state.token_body,
                                  token_auth = em.state.token_auth}
              end
            end
        """
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
            f.write(text)
            f.flush()
            with oauth_em("--scenario", f.name) as em:
                resp = token_request(em, {"grant_type": "client_credentials",
                                          "client_id": CLIENT_ID, "client_secret": SECRET})
                self.assertEqual(resp.status, 200)
                token = resp.json()["access_token"]
                who = curl("GET", em.url + "/whoami", headers={"Authorization": "Bearer " + token})
                self.assertEqual(who.json(), {
                    "auth": {"scheme": "Bearer", "user": CLIENT_ID, "ok": True, "token_seq": 1},
                    "token_auth": {"scheme": "client_secret_post", "user": CLIENT_ID,
                                   "ok": True},
                    "token_body": "grant_type=client_credentials&client_id="
                                  + urllib.parse.quote_plus(CLIENT_ID)
                                  + "&client_secret=<redacted>"})


class CanaryTest(TestCase):
    def test_secrets_never_reach_the_journal_or_stderr(self):
        with oauth_em("--token-ttl", "1") as em:
            basic = oauth_basic(CLIENT_ID, SECRET)
            tokens = [get_token(em)]
            tokens.append(token_request(em, {"grant_type": "client_credentials",
                                             "client_id": CLIENT_ID,
                                             "client_secret": SECRET}).json()["access_token"])
            token_request(em, {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                               "client_secret": SECRET + "-wrong"})
            token_request(em, "grant_type=client_credentials",
                          headers={"Authorization": oauth_basic(CLIENT_ID, "canary-wrong")})
            for token in tokens:
                post(em, token)
            post(em, "canary-garbage-token")
            journal = em.wait_journal(7)
            entries = [e for e in journal if e["path"] == "/token"]
            self.assertEqual(len(entries), 4)
            self.assertIn("client_secret=<redacted>", entries[1]["body"])
            raw = json.dumps(journal, ensure_ascii=False)
            canaries = [SECRET, urllib.parse.quote_plus(SECRET), basic.split()[1],
                        "canary-wrong", "canary-garbage-token", *tokens]
            em.stop()
            stderr = em.stderr_text()
            for canary in canaries:
                self.assertNotIn(canary, raw)
                self.assertNotIn(canary, stderr)
            self.assertNotIn("S3CR3T", raw + stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
