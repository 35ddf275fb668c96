"""The REPL's :trace never shows a secret that travels in a header (review of issue 14):
besides Authorization, a Cookie the script sends, a Set-Cookie the peer answers, and the
OpenStack Keystone token headers (X-Auth-Token, X-Subject-Token) that Tacker's peers use.
Their first word is the secret itself, so keeping "the scheme" of them showed it. A real
Python peer on 127.0.0.1 answers with the cookie and the token.
"""

import http.server
import threading

from harness import TestCase, run_lcmcoord

SECRETS = ("cookie-secret-41", "auth-token-secret-42", "set-cookie-secret-43",
           "subject-token-secret-44")


class CookiePeer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        data = b'{"apiVersions": [{"version": "1.0.0"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", f"sid={SECRETS[2]}; Path=/; HttpOnly")
        self.send_header("X-Subject-Token", SECRETS[3])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class TraceSecretsTest(TestCase):
    def test_cookie_and_token_headers_are_redacted_both_ways(self):
        server = http.server.HTTPServer(("127.0.0.1", 0), CookiePeer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        lines = (":trace on\n"
                 f'r = lcmcoord.http.request{{url = "{url}/lcmcoord/v1/api_versions", '
                 f'headers = {{Cookie = "s={SECRETS[0]}", '
                 f'["X-Auth-Token"] = "{SECRETS[1]}"}}}}\n'
                 "print(r.status)\n")
        done = run_lcmcoord("repl", "--endpoint", url, stdin=lines, timeout=60)
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        self.assertIn("200", done.stdout)
        # The trace is on and shows the headers by name.
        for name in ("> Cookie: <redacted>", "> X-Auth-Token: <redacted>",
                     "< Set-Cookie: <redacted>", "< X-Subject-Token: <redacted>"):
            self.assertIn(name, output)
        for secret in SECRETS:
            self.assertNotIn(secret, output)


if __name__ == "__main__":
    import unittest
    unittest.main()
