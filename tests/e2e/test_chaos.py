"""End to end: the client against a hostile EM. Every misbehaviour of `lcmcoord em --chaos`
(docs/reliability.md) is run against `lcmcoord run scripts/coordinate_vnf.lua` and the
outcome the client owes is asserted: a clear one-line error with the exit status of its
kind (1 protocol/http, 3 deadline, 4 transport/TLS/auth), or success where the answer is
usable; never a crash; never past the deadline (the vnfc_param `timeout`) by more than
3 s; a bounded peak memory (the client's own, read with os.wait4).

The cases are independent processes that mostly wait on sockets, so setUpModule runs them
all at once in a thread pool (each with its own EM on port 0) and the test methods only
judge the recorded outcomes: one test per misbehaviour, yet the suite takes about as
long as its slowest case.

A test marked expectedFailure states the correct behaviour of a case the runtime gets
wrong today; its comment says what happens instead.
"""

import concurrent.futures
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
from datetime import datetime

import certs
import harness

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "vnfc_param.json")
SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "coordinate_vnf.lua")
COORDS = "/lcmcoord/v1/coordinations"
SANITIZED = "ASAN_OPTIONS" in os.environ
# The client's peak RSS must show that nothing near a 100 MB answer was held. A sanitized
# build carries shadow memory and quarantine, so it gets a looser bound.
RSS_LIMIT_KB = (160 if SANITIZED else 64) * 1024
CRASH_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


class Case:
    """One misbehaviour: how to start the EM, how to call the client."""

    def __init__(self, chaos, timeout=5, em_args=(), flags=(), auth=None, pki=False):
        self.chaos = chaos
        self.timeout = timeout
        self.em_args = list(em_args)
        self.flags = list(flags)
        self.auth = auth  # None: the fixture's BASIC; "oauth2": client credentials at /token
        self.pki = pki  # the EM serves a bad certificate from the test PKI; the client trusts the CA


CERTS = {"tls-expired-cert": "expired", "tls-wrong-host-cert": "wrong_host",
         "tls-self-signed-cert": "self_signed"}

CASES = [Case(name) for name in (
    "truncated-body", "short-content-length", "overlong-body", "chunked-garbage",
    "reset-mid-headers", "reset-mid-body", "empty-reply", "many-headers", "long-header-line",
    "endless-headers", "huge-body", "huge-body-chunked", "not-http", "status-999",
    "missing-content-type", "tls-plain-http", "tls-garbage",
    "wrong-content-type", "problem-json-params", "problem-without-detail", "html-error",
    "empty-201", "no-result-201", "unknown-result", "id-not-string", "deep-json",
    "duplicate-keys", "invalid-utf8", "nan-literal", "huge-number", "retry-after-garbage",
    "retry-after-negative", "retry-after-fractional", "retry-after-past-date",
    "retry-after-far-future", "location-other-host", "location-file", "location-dotdot",
    "location-empty", "location-fragment", "redirect-loop", "redirect-other-host",
    "problem-escape-sequences", "body-not-object", "empty-200-on-poll")]
CASES += [Case(name, timeout=3) for name in (
    "drip", "never-answer", "endless-100-continue", "503-forever", "202-forever")]
CASES += [Case(name, auth="oauth2") for name in (
    "401-storm", "token-no-access-token", "token-type-mac", "token-expires-zero",
    "token-expires-negative", "token-not-json")]
CASES += [Case(name, pki=True) for name in CERTS]


class Outcome:
    """What one run of the client against one misbehaving EM gave."""

    def __init__(self):
        self.rc = None
        self.stdout = ""
        self.stderr = ""
        self.elapsed = 0.0
        self.maxrss_kb = 0
        self.hung = False
        self.em_rc = None
        self.em_stderr = ""
        self.journal = None  # None for the raw-socket misbehaviours, which keep none
        self.error = None  # the harness itself failed


def vnfc_param(endpoint, timeout, authentication):
    with open(FIXTURE, encoding="utf-8") as f:
        param = json.load(f)
    param["endpoint"] = endpoint
    param["timeout"] = timeout
    if authentication is not None:
        param["authentication"] = authentication
    return param


def run_client(param, flags, hard_limit):
    """Runs the script; returns (rc, stdout, stderr, elapsed, maxrss_kb, hung). The child is
    reaped with os.wait4 so that its peak RSS is its own, whatever else runs in parallel."""
    started = time.monotonic()
    proc = subprocess.Popen([harness.LCMCOORD_BIN, "run", *flags, SCRIPT],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = [], []
    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read())),
               threading.Thread(target=lambda: err.append(proc.stderr.read()))]
    for r in readers:
        r.start()
    try:
        proc.stdin.write(json.dumps(param).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    killed = threading.Event()

    def kill():
        killed.set()  # before the kill, so that wait4 cannot return before it is known
        proc.kill()

    killer = threading.Timer(hard_limit, kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    hung = killed.is_set()
    elapsed = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    proc.stdout.close()
    proc.stderr.close()
    return (proc.returncode, out[0].decode("utf-8", "replace"),
            err[0].decode("utf-8", "replace"), elapsed, usage.ru_maxrss, hung)


def oauth2(token_endpoint):
    return {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
            "paramsOauth2ClientCredentials": {"clientId": "vnfm", "clientPassword": "s3cret",
                                              "tokenEndpoint": token_endpoint}}


def run_case(case, pki):
    outcome = Outcome()
    em_args = ["--chaos", case.chaos, *case.em_args]
    flags = list(case.flags)
    if case.pki:
        stem = CERTS[case.chaos]
        em_args += ["--tls-cert", getattr(pki, stem + "_cert"),
                    "--tls-key", getattr(pki, stem + "_key")]
        flags += ["--cacert", pki.ca_cert]
    em = harness.EM(*em_args)
    try:
        em.__enter__()
    except AssertionError as e:
        outcome.error = str(e)
        return outcome
    try:
        auth = oauth2(em.url + "/token") if case.auth == "oauth2" else None
        param = vnfc_param(em.url, case.timeout, auth)
        (outcome.rc, outcome.stdout, outcome.stderr, outcome.elapsed, outcome.maxrss_kb,
         outcome.hung) = run_client(param, flags, case.timeout + 30)
        if not case.chaos.startswith("tls-") and not is_raw(case.chaos):
            outcome.journal = em.journal()
    except Exception as e:  # recorded, so that one broken case does not hide the others
        outcome.error = f"{type(e).__name__}: {e}"
    finally:
        outcome.em_rc = em.stop(check=False)
        outcome.em_stderr = em.stderr_text()
        em.close()
    return outcome


RAW_NAMES = set()


def is_raw(name):
    return name in RAW_NAMES


OUTCOMES = {}
_pki_dir = None


def setUpModule():
    global _pki_dir
    listed = harness.run_lcmcoord("em", "--chaos", "list", timeout=30).stdout
    # The raw-socket misbehaviours keep no journal; their names are those without a
    # scripts/em/chaos/ file and not about certificates.
    scripts = {f[:-4] for f in os.listdir(os.path.join(harness.SOURCE_DIR, "scripts", "em",
                                                       "chaos")) if f.endswith(".lua")}
    for line in listed.splitlines():
        name = line.split()[0]
        if name not in scripts and name not in CERTS:
            RAW_NAMES.add(name)
    _pki_dir = tempfile.TemporaryDirectory()
    pki = certs.make_pki(_pki_dir.name)
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        futures = {case.chaos: pool.submit(run_case, case, pki) for case in CASES}
        for name, future in futures.items():
            OUTCOMES[name] = future.result()


def tearDownModule():
    if _pki_dir is not None:
        _pki_dir.cleanup()


def journal_time(entry):
    return datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


class ChaosTestCase(harness.TestCase):
    """Judges one recorded outcome: the checks every case shares, then its own."""

    def outcome(self, name, rc):
        """The outcome of `name`, checked for: the harness worked, the EM stayed sane and
        exited 0, no crash, no hang, the expected exit status, one line of stderr (for
        failures), the deadline kept, memory bounded. Returns (outcome, stderr line)."""
        case = next(c for c in CASES if c.chaos == name)
        o = OUTCOMES[name]
        self.assertIsNone(o.error, o.error)
        for marker in CRASH_MARKERS:
            self.assertNotIn(marker, o.em_stderr, f"the EM misbehaved itself: {o.em_stderr}")
            self.assertNotIn(marker, o.stderr, f"the client: {o.stderr}")
        self.assertEqual(o.em_rc, 0, f"EM exit status; stderr: {o.em_stderr[-2000:]}")
        self.assertFalse(o.hung, f"the client hung and was killed after {o.elapsed:.1f} s")
        crashed = o.rc < 0 or (o.rc >= 128 and o.rc not in (130, 143))
        self.assertFalse(crashed, f"the client crashed (exit {o.rc}): {o.stderr[-2000:]}")
        self.assertEqual(o.rc, rc, f"exit status; stderr: {o.stderr[-2000:]!r}")
        # A POST out at the deadline gets up to 5 s more to answer, so that what the EM
        # started can be cancelled (docs/design.md, "One wall-clock deadline").
        self.assertLess(o.elapsed, case.timeout + 5.0 + 3.0 * harness.TIME_FACTOR,
                        "the client overran its deadline")
        self.assertLess(o.maxrss_kb, RSS_LIMIT_KB, "the client's peak RSS (KiB)")
        line = None
        if rc != 0:
            line = self.assertOneLine(o.stderr)
            self.assertTrue(line.startswith("lcmcoord: "), line)
            self.assertLess(len(line), 1000, "the error line is not bounded")
        return o, line

    def assertNoControlCharacters(self, text):
        for ch in text:
            if ch != "\n" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
                self.fail(f"control character {ord(ch):#x} in {text!r}")

    # ---- helpers over what the EM saw ----

    def raw_posts(self, o, name):
        """POSTs received by a raw-socket misbehaviour (it logs one line per connection)."""
        return [l for l in o.em_stderr.splitlines()
                if l.startswith(f"chaos {name}: connection") and f"POST {COORDS}" in l]

    def posts(self, o):
        return [e for e in o.journal if e["method"] == "POST" and e["path"] == COORDS]

    def api(self, o):
        return [e for e in o.journal if e["path"].startswith("/lcmcoord/")]

    def tokens(self, o):
        return [e for e in o.journal if e["path"] == "/token"]

    def gap_between_posts(self, o):
        sent = self.posts(o)
        self.assertEqual(len(sent), 2, o.journal)
        return journal_time(sent[1]) - journal_time(sent[0])


class Framing(ChaosTestCase):
    """Answers broken below the HTTP message: transport errors (exit 4), and a POST that may
    have reached the EM is never sent again."""

    def check_transport_error_without_resend(self, name):
        o, line = self.outcome(name, 4)
        self.assertEqual(len(self.raw_posts(o, name)), 1, o.em_stderr)
        return line

    def test_truncated_body_is_a_transport_error_and_not_resent(self):
        self.check_transport_error_without_resend("truncated-body")

    def test_reset_mid_headers_is_a_transport_error_and_not_resent(self):
        self.check_transport_error_without_resend("reset-mid-headers")

    def test_reset_mid_body_is_a_transport_error_and_not_resent(self):
        self.check_transport_error_without_resend("reset-mid-body")

    def test_empty_reply_is_a_transport_error_and_not_resent(self):
        self.check_transport_error_without_resend("empty-reply")

    def test_chunked_garbage_is_a_transport_error(self):
        self.check_transport_error_without_resend("chunked-garbage")

    def test_ssh_banner_instead_of_http_is_a_transport_error(self):
        self.check_transport_error_without_resend("not-http")

    def test_broken_answers_are_not_reported_as_an_unreachable_em(self):
        for name in ("truncated-body", "reset-mid-headers", "reset-mid-body", "empty-reply",
                     "chunked-garbage", "not-http"):
            with self.subTest(name):
                _, line = self.outcome(name, 4)
                self.assertNotIn("cannot reach", line)

    def test_endless_headers_are_cut_off_long_before_the_deadline(self):
        o, _ = self.outcome("endless-headers", 4)
        self.assertLess(o.elapsed, 3.0 * harness.TIME_FACTOR)

    def test_content_length_shorter_than_the_json_is_a_protocol_error(self):
        # The message ends where Content-Length says: what is left is half a JSON text.
        self.outcome("short-content-length", 1)

    def test_bytes_beyond_content_length_are_ignored(self):
        # The first Content-Length bytes are a whole, valid LcmCoord; the rest is not part
        # of this answer (RFC 9112 §6.3) and must not change it.
        self.outcome("overlong-body", 0)

    def test_status_999_is_an_http_error_naming_it(self):
        _, line = self.outcome("status-999", 1)
        self.assertIn("999", line)


class Size(ChaosTestCase):
    def check_capped(self, name):
        o, line = self.outcome(name, 1)
        self.assertRegex(line, r"larger than the .*limit")
        self.assertLess(o.elapsed, 4.0 * harness.TIME_FACTOR,
                        "the cap should stop the transfer at once")

    def test_100_mb_body_stops_at_the_1_mib_cap(self):
        self.check_capped("huge-body")

    def test_100_mb_chunked_body_stops_at_the_1_mib_cap(self):
        self.check_capped("huge-body-chunked")

    def test_10000_headers_are_accepted_promptly(self):
        # About 200 KB of small header fields: within libcurl's bound on a header section,
        # and the answer is a valid LcmCoord.
        o, _ = self.outcome("many-headers", 0)
        self.assertLess(o.elapsed, 2.0 * harness.TIME_FACTOR,
                        "handling the headers took longer than the answer")

    def test_64_kib_header_line_is_accepted(self):
        self.outcome("long-header-line", 0)

    def test_100000_nested_arrays_are_a_protocol_error_not_a_stack_overflow(self):
        self.outcome("deep-json", 1)


class Time(ChaosTestCase):
    """EMs that take forever: the deadline (3 s here) ends them all, with exit 3."""

    def check_deadline(self, name):
        o, line = self.outcome(name, 3)
        self.assertIn("deadline", line)
        self.assertGreater(o.elapsed, 2.0, "gave up before the deadline")
        return o

    def test_one_byte_per_second_ends_at_the_deadline(self):
        self.check_deadline("drip")

    def test_server_that_never_answers_ends_at_the_deadline(self):
        self.check_deadline("never-answer")

    def test_endless_100_continue_ends_at_the_deadline(self):
        self.check_deadline("endless-100-continue")

    def test_503_forever_ends_at_the_deadline(self):
        o = self.check_deadline("503-forever")
        self.assertLessEqual(len(self.posts(o)), 4, "more POSTs than the 1 s waits allow")

    def test_202_forever_ends_at_the_deadline_and_cancels(self):
        o = self.check_deadline("202-forever")
        cancels = [e for e in o.journal if e["method"] == "POST" and e["path"].endswith("/cancel")]
        self.assertEqual(len(cancels), 1, o.journal)


class RetryAfter(ChaosTestCase):
    """Retry-After values that are not delay-seconds: the wait floor (1 s) applies."""

    def check_floor(self, name):
        o, _ = self.outcome(name, 0)
        gap = self.gap_between_posts(o)
        self.assertGreaterEqual(gap, 0.95, "waited less than the 1 s floor")
        self.assertLess(gap, 3.0 * harness.TIME_FACTOR, "waited as if the value meant something")

    def test_garbage_retry_after_waits_the_floor(self):
        self.check_floor("retry-after-garbage")

    def test_negative_retry_after_waits_the_floor(self):
        self.check_floor("retry-after-negative")

    def test_fractional_retry_after_waits_about_a_second(self):
        self.check_floor("retry-after-fractional")

    def test_retry_after_date_in_the_past_waits_the_floor(self):
        self.check_floor("retry-after-past-date")

    def test_retry_after_ten_days_fails_at_once_with_the_deadline(self):
        o, line = self.outcome("retry-after-far-future", 3)
        self.assertIn("deadline", line)
        self.assertLess(o.elapsed, 2.0 * harness.TIME_FACTOR, "slept instead of failing at once")
        self.assertEqual(len(self.posts(o)), 1)


class Location(ChaosTestCase):
    def only_the_post(self, o):
        self.assertEqual([(e["method"], e["path"]) for e in o.journal], [("POST", COORDS)])

    def test_location_on_another_host_is_refused(self):
        o, line = self.outcome("location-other-host", 1)
        self.assertIn("origin", line)
        self.only_the_post(o)

    def test_file_location_is_refused(self):
        o, line = self.outcome("location-file", 1)
        self.assertIn("Location", line)
        self.only_the_post(o)

    def test_relative_location_with_dotdot_is_resolved(self):
        o, _ = self.outcome("location-dotdot", 0)
        gets = [e for e in o.journal if e["method"] == "GET"]
        self.assertEqual(len(gets), 1)
        self.assertRegex(gets[0]["path"], "^" + COORDS + "/[^/]+$")
        self.assertEqual(gets[0]["status"], 200)

    def test_empty_location_is_a_protocol_error(self):
        o, line = self.outcome("location-empty", 1)
        self.assertIn("Location", line)
        self.only_the_post(o)

    def test_fragment_of_location_is_not_sent(self):
        o, _ = self.outcome("location-fragment", 0)
        gets = [e for e in o.journal if e["method"] == "GET"]
        self.assertEqual(len(gets), 1)
        self.assertNotIn("#", gets[0]["path"])
        self.assertNotIn("chaos-fragment", gets[0]["path"])

    def test_redirect_loop_is_not_followed(self):
        o, line = self.outcome("redirect-loop", 1)
        self.assertIn("307", line)
        self.only_the_post(o)

    def test_redirect_to_another_host_is_not_followed(self):
        o, line = self.outcome("redirect-other-host", 1)
        self.assertIn("301", line)
        self.only_the_post(o)


class Bodies(ChaosTestCase):
    def test_wrong_content_type_on_a_valid_lcmcoord_is_accepted(self):
        # Decision: the body decides. A valid LcmCoord labelled text/plain is used.
        self.outcome("wrong-content-type", 0)

    def test_missing_content_type_on_a_valid_lcmcoord_is_accepted(self):
        self.outcome("missing-content-type", 0)

    def test_problem_json_with_parameters_gives_status_and_detail(self):
        _, line = self.outcome("problem-json-params", 1)
        self.assertIn("409", line)
        self.assertIn("VNFC VDU1-chaos is still draining", line)

    def test_problem_details_without_detail_gives_status_and_title(self):
        _, line = self.outcome("problem-without-detail", 1)
        self.assertIn("409", line)
        self.assertIn("Coordination refused by chaos", line)

    def test_html_error_page_gives_the_status_without_markup(self):
        _, line = self.outcome("html-error", 1)
        self.assertIn("502", line)
        self.assertNotIn("<", line)

    def test_problem_detail_with_escapes_is_one_clean_bounded_line(self):
        o, line = self.outcome("problem-escape-sequences", 1)
        self.assertIn("403", line)
        self.assertNoControlCharacters(o.stderr)

    def test_empty_201_is_a_protocol_error(self):
        _, line = self.outcome("empty-201", 1)
        self.assertIn("201", line)

    def test_empty_200_on_a_poll_is_a_protocol_error(self):
        _, line = self.outcome("empty-200-on-poll", 1)
        self.assertIn("200", line)

    def test_201_without_coordination_result_is_a_protocol_error(self):
        _, line = self.outcome("no-result-201", 1)
        self.assertIn("coordinationResult", line)

    def test_unknown_coordination_result_is_a_protocol_error(self):
        _, line = self.outcome("unknown-result", 1)
        self.assertIn("PROCEED_WITH_CAUTION", line)

    def test_numeric_id_is_a_protocol_error(self):
        _, line = self.outcome("id-not-string", 1)
        self.assertIn("id", line)

    def test_body_that_is_not_an_object_is_a_protocol_error(self):
        self.outcome("body-not-object", 1)

    def test_duplicate_coordination_result_is_refused(self):
        # ABORT then CONTINUE: whichever a parser keeps, going on would be a guess.
        o, line = self.outcome("duplicate-keys", 1)
        self.assertNotIn("coordination ABORT", line, "read the first duplicate as the answer")

    def test_invalid_utf8_is_a_protocol_error(self):
        self.outcome("invalid-utf8", 1)

    def test_nan_literal_is_a_protocol_error(self):
        self.outcome("nan-literal", 1)

    def test_number_beyond_a_double_is_a_protocol_error(self):
        # RFC 8259 §6 lets a parser refuse numbers it cannot represent; jansson does.
        self.outcome("huge-number", 1)


class Tls(ChaosTestCase):
    """TLS failures are exit 4 with the word TLS, even with the test CA trusted."""

    def check_tls(self, name):
        _, line = self.outcome(name, 4)
        self.assertIn("TLS", line)

    def test_plain_http_on_an_https_url_is_a_tls_error(self):
        self.check_tls("tls-plain-http")

    def test_garbage_instead_of_a_server_hello_is_a_tls_error(self):
        self.check_tls("tls-garbage")

    def test_expired_certificate_is_a_tls_error(self):
        self.check_tls("tls-expired-cert")

    def test_wrong_host_certificate_is_a_tls_error(self):
        self.check_tls("tls-wrong-host-cert")

    def test_self_signed_certificate_is_a_tls_error(self):
        self.check_tls("tls-self-signed-cert")


class Tokens(ChaosTestCase):
    """A broken token endpoint: an auth error (exit 4) before any API request, or, when the
    token is usable, success; never a storm of token requests."""

    def check_refused_token(self, name, *words):
        o, line = self.outcome(name, 4)
        for word in words:
            self.assertIn(word, line)
        self.assertEqual(self.api(o), [], "an API request went out without a usable token")
        self.assertLessEqual(len(self.tokens(o)), 2)

    def test_token_answer_without_access_token_is_an_auth_error(self):
        self.check_refused_token("token-no-access-token", "access_token")

    def test_token_type_other_than_bearer_is_an_auth_error(self):
        self.check_refused_token("token-type-mac", "mac")

    def test_token_endpoint_answering_html_is_an_auth_error(self):
        self.check_refused_token("token-not-json")

    def check_usable_token(self, name):
        # A token that is already (or absurdly) expired is still the EM's own answer to
        # this request: use it once, do not ask again and again.
        o, _ = self.outcome(name, 0)
        self.assertLessEqual(len(self.tokens(o)), 2, o.journal)
        self.assertEqual(len(self.posts(o)), 1)

    def test_expires_in_zero_still_coordinates(self):
        self.check_usable_token("token-expires-zero")

    def test_negative_expires_in_still_coordinates(self):
        self.check_usable_token("token-expires-negative")

    def test_401_storm_is_one_new_token_then_an_auth_error(self):
        o, line = self.outcome("401-storm", 4)
        self.assertIn("401", line)
        self.assertEqual(len(self.tokens(o)), 2, o.journal)
        self.assertEqual(len(self.api(o)), 2, o.journal)


class Catalogue(harness.TestCase):
    def test_every_chaos_name_has_a_case_here_and_a_row_in_reliability_md(self):
        listed = harness.run_lcmcoord("em", "--chaos", "list", timeout=30)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        names = [line.split()[0] for line in listed.stdout.splitlines()]
        self.assertGreaterEqual(len(names), 40)
        self.assertEqual(sorted(names), sorted(c.chaos for c in CASES))
        with open(os.path.join(harness.SOURCE_DIR, "docs", "reliability.md"),
                  encoding="utf-8") as f:
            doc = f.read()
        for name in names:
            self.assertIn(f"| `{name}` |", doc)

    def test_unknown_chaos_name_exits_2(self):
        done = harness.run_lcmcoord("em", "--chaos", "no-such-misbehaviour", timeout=30)
        self.assertEqual(done.returncode, 2)
        self.assertIn("--chaos list", done.stderr)

    def test_certificate_chaos_refuses_a_good_certificate(self):
        with tempfile.TemporaryDirectory() as tmp:
            pki = certs.make_pki(tmp)
            done = harness.run_lcmcoord("em", "--chaos", "tls-expired-cert", "--listen",
                                        "127.0.0.1:0", "--tls-cert", pki.server_cert,
                                        "--tls-key", pki.server_key, timeout=30)
        self.assertEqual(done.returncode, 2)
        self.assertIn("has not expired", done.stderr)


if __name__ == "__main__":
    unittest.main()
