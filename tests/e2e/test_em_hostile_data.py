"""Hostile data against `lcmcoord em` (issue 16, the data rows): what a client sends may cost
the EM bounded memory and CPU time only, and nothing it sends reaches the journal or the
logs unless it is known to be harmless.

Every attack runs on 127.0.0.1, bounded in count and time. During each one a legitimate
client is answered: its latency is measured, printed and asserted under a bound scaled by
harness.TIME_FACTOR. Memory is read from /proc/<pid>/status (VmRSS, VmHWM).
"""

import base64
import http.client
import json
import os
import signal
import socket
import tempfile
import threading
import time
import unittest
import urllib.parse

from harness import EM, TestCase, TIME_FACTOR, API_HEADERS, curl, sample_request, wait_for

COORDS = "/lcmcoord/v1/coordinations"
CANARY = "Hostile-Canary-7f3a9"
CLIENT_ID = "app"
CLIENT_SECRET = "configured-Secret-42"


def port_of(em):
    return int(em.url.rsplit(":", 1)[1])


def status_of(pid):
    """VmRSS and VmHWM of a process, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values


def sanitized(pid):
    """The ASan build keeps freed memory in quarantine: memory bounds stretch for it."""
    with open(f"/proc/{pid}/maps") as f:
        return "asan" in f.read()


def request(em, method, path, body=b"", headers=None, timeout=30):
    """One request on its own connection; (status, body bytes, seconds)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port_of(em), timeout=timeout * TIME_FACTOR)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.monotonic() - t0
    finally:
        conn.close()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Legit:
    """Measures a legitimate client while an attack runs."""

    def __init__(self, test, em, path="/lcmcoord/api_versions", headers=None, status=200):
        self.test, self.em, self.path = test, em, path
        self.headers, self.status = headers or {}, status

    def check(self, what, bound=1.0):
        code, _, seconds = request(self.em, "GET", self.path, headers=self.headers)
        print(f"\n  legitimate client during {what}: {code} in {seconds * 1000:.0f} ms")
        self.test.assertEqual(code, self.status)
        self.test.assertLess(seconds, bound * TIME_FACTOR, f"{what}: legitimate client too slow")
        return seconds


def in_thread(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


class TokenEndpointTest(TestCase):
    def test_a_megabyte_form_is_refused_fast_and_others_are_answered(self):
        fields = "&".join(f"f{i}=" for i in range(210000)).encode()[:1024 * 1024]
        with EM("--oauth2", f"{CLIENT_ID}:{CLIENT_SECRET}") as em:
            results = []

            def attack():
                t = time.monotonic()
                try:
                    code = request(em, "POST", "/token", fields, {
                        "Content-Type": "application/x-www-form-urlencoded"}, timeout=60)[0]
                except (ConnectionError, OSError):
                    code = 413  # refused from Content-Length and closed while still sending
                results.append((code, None, time.monotonic() - t))
            attackers = [in_thread(attack) for _ in range(2)]
            form = (f"grant_type=client_credentials&client_id={CLIENT_ID}"
                    f"&client_secret={CLIENT_SECRET}")
            t0 = time.monotonic()
            code, body, seconds = request(em, "POST", "/token", form.encode(), {
                "Content-Type": "application/x-www-form-urlencoded"})
            print(f"\n  legitimate token request during 2 x 1 MiB forms: {code} in "
                  f"{seconds * 1000:.0f} ms")
            self.assertEqual(code, 200, body)
            self.assertLess(seconds, 1.0 * TIME_FACTOR)
            for t in attackers:
                t.join(60 * TIME_FACTOR)
            self.assertEqual([r[0] for r in results], [413, 413])
            for r in results:
                self.assertLess(r[2], 2.0 * TIME_FACTOR, "a 1 MiB form took long to refuse")
            self.assertLess(time.monotonic() - t0, 5 * TIME_FACTOR)

    def test_a_small_form_with_many_fields_is_answered_in_milliseconds(self):
        many = "&".join(f"x{i}=1" for i in range(60))
        with EM("--oauth2", f"{CLIENT_ID}:{CLIENT_SECRET}") as em:
            code, body, seconds = request(em, "POST", "/token", (
                f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret="
                f"{CLIENT_SECRET}&{many}").encode(), {
                "Content-Type": "application/x-www-form-urlencoded"})
            print(f"\n  60-field form: {code} in {seconds * 1000:.0f} ms")
            self.assertEqual(code, 200, body)
            self.assertLess(seconds, 0.5 * TIME_FACTOR)
            # Past the field cap: a one-line 400 naming it.
            code, body, _ = request(em, "POST", "/token", "&".join(
                f"y{i}=1" for i in range(100)).encode(), {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": basic(CLIENT_ID, CLIENT_SECRET)})
            self.assertEqual(code, 400)
            self.assertIn("more than 64 fields", json.loads(body)["error_description"])


class ByteBudgetTest(TestCase):
    def test_large_inputs_do_not_grow_memory_and_sigterm_stays_fast(self):
        auth = {"Authorization": basic("u", "p"), **API_HEADERS}
        with EM("--basic", "u:p") as em:
            pid = em.proc.pid
            legit = Legit(self, em, headers=auth)
            huge = json.dumps(sample_request(inputParams={"blob": "x" * (1000 * 1000)})).encode()
            big = json.dumps(sample_request(inputParams={
                f"part{i}": "y" * (50 * 1000) for i in range(4)})).encode()
            codes = {}
            lock = threading.Lock()

            def attack(bodies):
                for body in bodies:
                    try:
                        code = request(em, "POST", COORDS, body, auth)[0]
                    except (ConnectionError, OSError):
                        code = "reset"  # refused from Content-Length while still sending
                    with lock:
                        codes[code] = codes.get(code, 0) + 1
            threads = [in_thread(attack, [huge] * 125) for _ in range(2)]
            threads += [in_thread(attack, [big] * 125) for _ in range(2)]
            legit.check("250 POSTs of 1 MB and 250 of 200 kB", bound=2.0)
            for t in threads:
                t.join(300 * TIME_FACTOR)
            mem = status_of(pid)
            print(f"  answers: {codes}; EM memory after: VmRSS {mem['VmRSS']:.0f} MiB, "
                  f"VmHWM {mem['VmHWM']:.0f} MiB")
            self.assertEqual(codes.get(413, 0) + codes.get("reset", 0), 250, codes)
            self.assertEqual(codes.get(201, 0), 250, codes)
            # Store 32 MiB + journal 16 MiB + bodies in flight: far below the 3.2 GiB of before.
            bound = 200 * (4 if sanitized(pid) else 1)
            self.assertLess(mem["VmHWM"], bound)
            t0 = time.monotonic()
            em.proc.send_signal(signal.SIGTERM)
            em.proc.wait(timeout=10 * TIME_FACTOR)
            print(f"  SIGTERM to exit: {(time.monotonic() - t0) * 1000:.0f} ms")
            self.assertLess(time.monotonic() - t0, 5 * TIME_FACTOR)

    def test_json_limits_answer_400_naming_the_limit(self):
        cases = {
            "nested deeper than 32": {"inputParams": json.loads("[" * 40 + "]" * 40)},
            "more than 10000 members": {"inputParams": {f"k{i}": i for i in range(10001)}},
            "string longer than 65536": {"inputParams": {"s": "z" * 70000}},
        }
        with EM() as em:
            for needle, extra in cases.items():
                code, body, seconds = request(em, "POST", COORDS,
                                              json.dumps(sample_request(**extra)).encode(),
                                              API_HEADERS)
                self.assertEqual(code, 400, body)
                self.assertIn(needle, json.loads(body)["detail"])
                self.assertLess(seconds, 1.0 * TIME_FACTOR)


class JournalTest(TestCase):
    def test_the_journal_needs_the_ems_credentials(self):
        with EM("--basic", "u:p") as em:
            request(em, "GET", "/lcmcoord/api_versions",
                    headers={"Authorization": basic("u", "p")})
            self.assertEqual(request(em, "GET", "/_em/journal")[0], 401)
            self.assertEqual(request(em, "DELETE", "/_em/journal")[0], 401)
            self.assertEqual(request(em, "GET", "/_em/journal",
                                     headers={"Authorization": basic("u", "wrong")})[0], 401)
            code, body, _ = request(em, "GET", "/_em/journal",
                                    headers={"Authorization": basic("u", "p")})
            self.assertEqual(code, 200)
            self.assertEqual(len(json.loads(body)), 1, "an unauthenticated DELETE cleared it")
        with EM("--oauth2", f"{CLIENT_ID}:{CLIENT_SECRET}") as em:
            self.assertEqual(request(em, "GET", "/_em/journal")[0], 401)
            self.assertEqual(request(em, "GET", "/_em/journal", headers={
                "Authorization": basic(CLIENT_ID, CLIENT_SECRET)})[0], 200)

    def hostile_requests(self, em, token):
        """A secret in each of the places issue 16 lists, on real sockets."""
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        bearer = {"Authorization": "Bearer " + token, **API_HEADERS}
        body = json.dumps(sample_request(password=CANARY)).encode()
        sent = [
            ("POST", "/token", f"grant_type=client_credentials&client_id={CLIENT_ID}&"
                               f"client_secret={CLIENT_SECRET}&Client_Secret={CANARY}", form),
            ("POST", "/token", f"grant_type=client_credentials;client_secret={CANARY}", form),
            ("POST", "/token", json.dumps({"client_secret": CANARY}),
             {"Content-Type": "application/json"}),
            ("POST", COORDS, body, {**bearer, "Proxy-Authorization": "Basic " + CANARY}),
            ("POST", COORDS, body, {**bearer, "X-Api-Key": CANARY}),
            ("POST", COORDS, body, {**bearer, "Cookie": "session=" + CANARY}),
            ("POST", COORDS, body, {**API_HEADERS, "Authorization": CANARY}),
            ("POST", COORDS, body, {**API_HEADERS, "Authorization": "Bearer " + CANARY}),
            ("GET", f"/lcmcoord/api_versions?api_key={CANARY}", b"", bearer),
            ("POST", f"/token?client_secret={CANARY}", "grant_type=client_credentials",
             {**form, "Authorization": basic(CLIENT_ID, CLIENT_SECRET)}),
            # In the path itself: parameters, an escaped '?', and as the method.
            ("GET", f"/lcmcoord/api_versions;jsessionid={CANARY}", b"", bearer),
            ("GET", f"/lcmcoord/api_versions%3Fapi_key={CANARY}", b"", bearer),
            (CANARY, "/lcmcoord/api_versions", b"", bearer),
            ("POST", COORDS, body, bearer),
        ]
        for method, path, data, headers in sent:
            request(em, method, path, data.encode() if isinstance(data, str) else data, headers)
        # URL userinfo in an absolute-form request target, sent by hand.
        with socket.create_connection(("127.0.0.1", port_of(em)), timeout=10) as s:
            s.sendall(f"GET http://user:{CANARY}@127.0.0.1:{port_of(em)}/lcmcoord/api_versions"
                      f" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                      f"Connection: close\r\n\r\n".encode())
            while s.recv(4096):
                pass
        return len(sent) + 1  # the absolute-form request is routed on its path

    def test_a_secret_in_ten_places_reaches_neither_journal_nor_logs(self):
        canaries = [CANARY, base64.b64encode(CANARY.encode()).decode(),
                    urllib.parse.quote_plus(CANARY)]
        for log_format in ([], ["--log-format", "json"]):
            with EM(*log_format, "--oauth2", f"{CLIENT_ID}:{CLIENT_SECRET}") as em:
                code, body, _ = request(em, "POST", "/token", (
                    f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret="
                    f"{CLIENT_SECRET}").encode(), {
                    "Content-Type": "application/x-www-form-urlencoded"})
                self.assertEqual(code, 200, body)
                token = json.loads(body)["access_token"]
                n = self.hostile_requests(em, token)
                journal = em.wait_journal(n + 1)
                raw = json.dumps(journal, ensure_ascii=False)
                em.stop()
                stderr = em.stderr_text()
                for canary in canaries:
                    self.assertNotIn(canary, raw, f"{canary} is in the journal")
                    self.assertNotIn(canary, stderr, f"{canary} is on stderr {log_format}")
                for secret in (CLIENT_SECRET, token):
                    self.assertNotIn(secret, raw)
                    self.assertNotIn(secret, stderr)
                # What is harmless stays, so the journal still tells what the client did.
                last = [e for e in journal if e["path"] == COORDS][-1]
                self.assertEqual(last["status"], 201)
                kept = json.loads(last["body"])
                self.assertEqual(kept["vnfInstanceId"], sample_request()["vnfInstanceId"])
                self.assertNotIn("password", kept)
                self.assertTrue(last["bodyRedacted"])
                self.assertEqual(last["headers"]["content-type"], "application/json")

    def test_bodies_refused_by_authentication_are_not_kept(self):
        with EM("--basic", "u:p") as em:
            request(em, "POST", COORDS, json.dumps(sample_request()).encode(), API_HEADERS)
            entry = em.wait_journal(1)[0]
            self.assertEqual(entry["status"], 401)
            self.assertEqual(entry["body"], "")
            self.assertTrue(entry["bodyRedacted"])

    def test_slow_journal_readers_pin_no_copies_and_stall_no_one(self):
        # Bodies of control characters: six bytes each once escaped into the journal.
        payload = b"\x01" * (64 * 1024)
        with EM() as em:
            pid = em.proc.pid
            for _ in range(300):
                request(em, "POST", COORDS, payload, API_HEADERS)
            legit = Legit(self, em)
            readers = []
            for _ in range(3):
                s = socket.create_connection(("127.0.0.1", port_of(em)), timeout=10)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /_em/journal HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(1)  # started, then never read again
                readers.append(s)
            legit.check("3 stalled journal readers")
            code, body, seconds = request(em, "GET", "/_em/journal")
            print(f"  another journal reader: {code}, {len(body)} bytes in "
                  f"{seconds * 1000:.0f} ms")
            self.assertEqual(code, 200)
            self.assertLess(seconds, 2.0 * TIME_FACTOR)
            self.assertLessEqual(len(body), 17 * 1024 * 1024)
            mem = status_of(pid)
            print(f"  EM memory with the readers stalled: VmRSS {mem['VmRSS']:.0f} MiB")
            self.assertLess(mem["VmRSS"], 120 * (4 if sanitized(pid) else 1))
            for s in readers:
                s.close()


SCENARIO = r"""
return function(req)
  if req.path == "/pcall-loop" then
    print("entered the runaway loop")
    while true do pcall(function() while true do end end) end
  elseif req.path == "/find" then
    return 200, {}, tostring(string.find(string.rep("a", 30000), ".-.-.-.-.-.-.-b"))
  elseif req.path == "/exit" then
    os.exit(7)
  elseif req.path == "/execute" then
    os.execute("sleep 60")
  elseif req.path == "/bytecode" then
    local f, err = load(string.dump and string.dump(function() end) or "\27Lua")
    return 200, {}, tostring(f) .. " " .. tostring(err)
  elseif req.path == "/hog" then
    -- 16 MiB at a time: the 64 MiB cap is reached in a few steps, long before the
    -- deadline even on a slow (sanitized, loaded) machine.
    local t = {}
    while true do t[#t + 1] = string.rep(tostring(#t), 16 << 20) end
  end
end
"""


class ScenarioTest(TestCase):
    def test_hostile_scenarios_end_within_the_deadline_and_sigterm_is_prompt(self):
        expected = {"/pcall-loop": (500, "longer than"), "/find": (500, "too costly"),
                    "/exit": (500, "exit"), "/execute": (500, "execute"),
                    "/bytecode": (200, "nil"), "/hog": (500, "memory")}
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
            f.write(SCENARIO)
            f.flush()
            with EM("--scenario", f.name) as em:
                pid = em.proc.pid
                for path, (status, needle) in expected.items():
                    code, body, seconds = request(em, "GET", path)
                    print(f"\n  {path}: {code} in {seconds * 1000:.0f} ms")
                    self.assertEqual(code, status, body)
                    self.assertIn(needle, body.decode())
                    self.assertLess(seconds, 3.0 * TIME_FACTOR)
                    self.assertIsNone(em.proc.poll(), f"{path} ended the EM")
                    Legit(self, em).check(f"after {path}")
                # A legitimate request while a runaway call runs: another state answers it
                # at once (no lock is held across user code).
                def entered():
                    return em.stderr_text().count("entered the runaway loop")
                first = []
                runaway = in_thread(lambda: first.append(request(em, "GET", "/pcall-loop")))
                wait_for(lambda: entered() == 2 or first, what="the runaway call to start")
                self.assertEqual(entered(), 2, f"the runaway call did not run: {first}; "
                                               f"EM stderr: {em.stderr_text()[-800:]}")
                Legit(self, em).check("a runaway scenario call")
                runaway.join(10 * TIME_FACTOR)
                self.assertFalse(runaway.is_alive(), "the runaway call did not end")
                self.assertLess(status_of(pid)["VmHWM"], 200 * (4 if sanitized(pid) else 1))
                # SIGTERM while a runaway call runs: bounded.
                third = []
                in_thread(lambda: third.append(request(em, "GET", "/pcall-loop")))
                wait_for(lambda: entered() == 3 or third, what="the runaway call to start")
                self.assertEqual(entered(), 3, f"the third runaway call did not run: {third}; "
                                               f"EM stderr: {em.stderr_text()[-800:]}")
                t0 = time.monotonic()
                em.proc.send_signal(signal.SIGTERM)
                em.proc.wait(timeout=10 * TIME_FACTOR)
                print(f"  SIGTERM during a runaway call: exit in "
                      f"{(time.monotonic() - t0) * 1000:.0f} ms")
                self.assertLess(time.monotonic() - t0, 5 * TIME_FACTOR)


if __name__ == "__main__":
    unittest.main(verbosity=2)
