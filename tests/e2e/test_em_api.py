"""End-to-end tests of `lcmcoord em`, the protocol side: what the simulator answers to
coordination requests in its synchronous and asynchronous modes, rejections with
Retry-After, cancellation, api_versions and every kind of invalid request. The client is
the `curl` CLI, independent of lcmcoord's own client library.
"""

import datetime
import email.utils
import json
import unittest

from harness import API_HEADERS, EM, TestCase, curl, sample_request

COORDS = "/lcmcoord/v1/coordinations"


def post(em, body=None, headers=None):
    if body is None:
        body = sample_request()
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    return curl("POST", em.url + COORDS, body=body,
                headers=API_HEADERS if headers is None else headers)


def get(em, url, headers=None):
    if url.startswith("/"):
        url = em.url + url
    return curl("GET", url, headers=API_HEADERS if headers is None else headers)


class ProblemAssertions(TestCase):
    def assertProblem(self, resp, status, detail_part=None):
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.headers.get("content-type", "").startswith(
            "application/problem+json"), resp)
        self.assertEqual(resp.headers.get("version"), "1.0.0")
        problem = resp.json()
        self.assertEqual(problem["status"], status)
        self.assertIsInstance(problem["title"], str)
        self.assertIsInstance(problem["detail"], str)
        if detail_part is not None:
            self.assertIn(detail_part, problem["detail"])
        return problem


class SyncModeTest(ProblemAssertions):
    def test_sync_post_answers_201_with_complete_lcmcoord_and_location(self):
        req = sample_request()
        with EM() as em:
            resp = post(em, req)
            self.assertEqual(resp.status, 201, resp)
            self.assertEqual(resp.headers["content-type"], "application/json")
            self.assertEqual(resp.headers["version"], "1.0.0")
            coord = resp.json()
            for field in ("vnfInstanceId", "vnfLcmOpOccId", "lcmOperationType",
                          "coordinationActionName"):
                self.assertEqual(coord[field], req[field])
            self.assertEqual(coord["coordinationResult"], "CONTINUE")
            self.assertRegex(coord["id"], r"^[0-9a-f-]{36}$")
            self.assertEqual(coord["outputParams"], req["inputParams"])
            self.assertNotIn("error", coord)
            self.assertEqual(coord["_links"]["self"]["href"],
                             f"{em.url}{COORDS}/{coord['id']}")
            self.assertEqual(coord["_links"]["vnfLcmOpOcc"], req["_links"]["vnfLcmOpOcc"])
            self.assertEqual(coord["_links"]["vnfInstance"], req["_links"]["vnfInstance"])
            self.assertEqual(resp.headers["location"], coord["_links"]["self"]["href"])

            again = get(em, resp.headers["location"])
            self.assertEqual(again.status, 200, again)
            self.assertEqual(again.json(), coord)

    def test_ids_are_fresh_for_each_coordination(self):
        with EM() as em:
            ids = {post(em).json()["id"] for _ in range(3)}
            self.assertEqual(len(ids), 3)

    def test_output_params_default_to_empty_object(self):
        req = sample_request()
        del req["inputParams"]
        with EM() as em:
            coord = post(em, req).json()
            self.assertEqual(coord["outputParams"], {})

    def test_result_abort_carries_error_problem_details(self):
        with EM("--result", "ABORT") as em:
            coord = post(em).json()
            self.assertEqual(coord["coordinationResult"], "ABORT")
            self.assertEqual(coord["error"]["detail"], "VNFC not ready")
            self.assertIsInstance(coord["error"]["status"], int)

    def test_result_cancelled(self):
        with EM("--result", "CANCELLED") as em:
            self.assertEqual(post(em).json()["coordinationResult"], "CANCELLED")


class RejectTest(ProblemAssertions):
    def test_rejects_answer_503_with_retry_after_seconds_then_201(self):
        with EM("--rejects", "2", "--retry-after", "3") as em:
            for _ in range(2):
                resp = post(em)
                self.assertProblem(resp, 503)
                self.assertEqual(resp.headers["retry-after"], "3")
            self.assertEqual(post(em).status, 201)

    def test_invalid_posts_are_not_counted_as_rejects(self):
        with EM("--rejects", "1") as em:
            self.assertEqual(post(em, sample_request(vnfInstanceId="")).status, 422)
            self.assertEqual(post(em).status, 503)
            self.assertEqual(post(em).status, 201)

    def test_retry_after_http_date_is_n_seconds_ahead(self):
        with EM("--rejects", "1", "--retry-after", "date:30") as em:
            resp = post(em)
            self.assertProblem(resp, 503)
            value = resp.headers["retry-after"]
            self.assertRegex(value, r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                                    r"\d\d:\d\d:\d\d GMT$")
            when = email.utils.parsedate_to_datetime(value)
            delta = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            self.assertTrue(27 <= delta <= 31, f"Retry-After {value} is {delta} s ahead")

    def test_retry_after_http_date_in_the_past(self):
        with EM("--rejects", "1", "--retry-after", "date:-120") as em:
            when = email.utils.parsedate_to_datetime(post(em).headers["retry-after"])
            delta = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            self.assertTrue(-122 <= delta <= -118, delta)

    def test_retry_after_zero_none_and_raw(self):
        with EM("--rejects", "1", "--retry-after", "0") as em:
            self.assertEqual(post(em).headers["retry-after"], "0")
        with EM("--rejects", "1", "--retry-after", "none") as em:
            resp = post(em)
            self.assertProblem(resp, 503)
            self.assertNotIn("retry-after", resp.headers)
        with EM("--rejects", "1", "--retry-after", "raw:soon, maybe") as em:
            self.assertEqual(post(em).headers["retry-after"], "soon, maybe")


class AsyncModeTest(ProblemAssertions):
    def test_async_202_then_k_polls_then_200(self):
        req = sample_request()
        with EM("--mode", "async", "--polls", "2", "--retry-after", "0") as em:
            resp = post(em, req)
            self.assertEqual(resp.status, 202, resp)
            self.assertEqual(resp.body, "")
            self.assertEqual(resp.headers["retry-after"], "0")
            location = resp.headers["location"]
            self.assertRegex(location, "^" + em.url + COORDS + "/[0-9a-f-]{36}$")
            for _ in range(2):
                poll = get(em, location)
                self.assertEqual(poll.status, 202, poll)
                self.assertEqual(poll.body, "")
                self.assertEqual(poll.headers["retry-after"], "0")
            done = get(em, location)
            self.assertEqual(done.status, 200, done)
            coord = done.json()
            self.assertEqual(coord["coordinationResult"], "CONTINUE")
            self.assertEqual(coord["_links"]["self"]["href"], location)
            self.assertEqual(coord["vnfLcmOpOccId"], req["vnfLcmOpOccId"])
            self.assertEqual(get(em, location).status, 200)

    def test_async_default_one_poll_and_retry_after_one(self):
        with EM("--mode", "async") as em:
            resp = post(em)
            self.assertEqual(resp.headers["retry-after"], "1")
            self.assertEqual(get(em, resp.headers["location"]).status, 202)
            self.assertEqual(get(em, resp.headers["location"]).status, 200)

    def test_async_zero_polls_answers_200_at_once(self):
        with EM("--mode", "async", "--polls", "0", "--result", "ABORT") as em:
            done = get(em, post(em).headers["location"])
            self.assertEqual(done.status, 200)
            self.assertEqual(done.json()["coordinationResult"], "ABORT")

    def test_relative_location(self):
        with EM("--mode", "async", "--location", "relative") as em:
            location = post(em).headers["location"]
            self.assertRegex(location, "^" + COORDS + "/[0-9a-f-]{36}$")
            self.assertEqual(get(em, location).status, 202)

    def test_location_none_omits_header(self):
        with EM("--mode", "async", "--location", "none") as em:
            resp = post(em)
            self.assertEqual(resp.status, 202)
            self.assertNotIn("location", resp.headers)

    def test_unknown_coordination_is_404(self):
        with EM() as em:
            self.assertProblem(get(em, COORDS + "/no-such-id"), 404, "no-such-id")
            self.assertProblem(get(em, COORDS + "/00000000-0000-4000-8000-000000000001"),
                               404)


class CancelTest(ProblemAssertions):
    def cancel(self, em, location):
        return curl("POST", location + "/cancel", headers={"Version": "1.0.0"})

    def test_cancel_then_one_more_202_then_cancelled(self):
        with EM("--mode", "async", "--polls", "5", "--result", "ABORT") as em:
            location = post(em).headers["location"]
            self.assertEqual(get(em, location).status, 202)
            resp = self.cancel(em, location)
            self.assertEqual(resp.status, 202, resp)
            self.assertEqual(get(em, location).status, 202)
            done = get(em, location)
            self.assertEqual(done.status, 200)
            coord = done.json()
            self.assertEqual(coord["coordinationResult"], "CANCELLED")
            self.assertNotIn("error", coord)
            self.assertProblem(self.cancel(em, location), 409)

    def test_cancel_of_sync_coordination_is_409(self):
        with EM() as em:
            self.assertProblem(self.cancel(em, post(em).headers["location"]), 409,
                               "finished")

    def test_cancel_of_unknown_coordination_is_404(self):
        with EM() as em:
            self.assertProblem(self.cancel(em, em.url + COORDS + "/nope"), 404)

    def test_cancel_needs_post(self):
        with EM("--mode", "async") as em:
            location = post(em).headers["location"]
            resp = get(em, location + "/cancel")
            self.assertProblem(resp, 405)
            self.assertEqual(resp.headers["allow"], "POST")


class ApiVersionsTest(TestCase):
    def test_both_paths_without_version_header(self):
        with EM() as em:
            for path in ("/lcmcoord/api_versions", "/lcmcoord/v1/api_versions"):
                resp = curl("GET", em.url + path)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(resp.headers["content-type"], "application/json")
                self.assertEqual(resp.json(), {
                    "uriPrefix": em.url + "/lcmcoord/v1",
                    "apiVersions": [{"version": "1.0.0", "isDeprecated": False}]})


class ValidationTest(ProblemAssertions):
    def test_missing_version_header_is_400(self):
        headers = dict(API_HEADERS)
        del headers["Version"]
        with EM() as em:
            self.assertProblem(post(em, headers=headers), 400, "Version")
            self.assertProblem(get(em, COORDS + "/x", headers={}), 400, "Version")

    def test_unsupported_version_is_406(self):
        with EM() as em:
            for version in ("2.0.0", "0.9.1", "banana"):
                self.assertProblem(post(em, headers=dict(API_HEADERS, Version=version)), 406,
                                   version)
            self.assertEqual(post(em, headers=dict(API_HEADERS, Version="1.1.0")).status, 201)

    def test_wrong_content_type_is_415(self):
        with EM() as em:
            self.assertProblem(
                post(em, headers=dict(API_HEADERS, **{"Content-Type": "text/plain"})), 415)
            self.assertProblem(
                post(em, headers=dict(API_HEADERS, **{"Content-Type": "application/jsonx"})),
                415)
            ok = post(em, headers=dict(
                API_HEADERS, **{"Content-Type": "application/json; charset=utf-8"}))
            self.assertEqual(ok.status, 201, ok)

    def test_malformed_bodies_are_400(self):
        with EM() as em:
            self.assertProblem(post(em, "{not json"), 400, "not valid JSON")
            self.assertProblem(post(em, b'{"vnfInstanceId": "\xff\xfe"}'), 400, "UTF-8")
            self.assertProblem(post(em, "[" * 5000 + "]" * 5000), 400, "nested")
            self.assertProblem(post(em, "[1, 2]"), 400, "JSON object")
            self.assertProblem(post(em, ""), 400, "empty")

    def test_each_invalid_field_is_422_naming_it(self):
        req = sample_request()
        cases = [
            ("vnfInstanceId", dict(req, vnfInstanceId=""), "vnfInstanceId"),
            ("vnfInstanceId", {k: v for k, v in req.items() if k != "vnfInstanceId"},
             "vnfInstanceId: required"),
            ("vnfLcmOpOccId", dict(req, vnfLcmOpOccId=42), "vnfLcmOpOccId"),
            ("lcmOperationType", dict(req, lcmOperationType="FOO"),
             "lcmOperationType: 'FOO' is not a LcmOperationForCoordType"),
            ("lcmOperationType", {k: v for k, v in req.items() if k != "lcmOperationType"},
             "lcmOperationType"),
            ("coordinationActionName", dict(req, coordinationActionName=None),
             "coordinationActionName"),
            ("inputParams", dict(req, inputParams=[1]), "inputParams"),
            ("_links.vnfLcmOpOcc.href",
             dict(req, _links={"vnfInstance": req["_links"]["vnfInstance"]}),
             "_links.vnfLcmOpOcc.href"),
            ("_links.vnfInstance.href",
             dict(req, _links={"vnfLcmOpOcc": req["_links"]["vnfLcmOpOcc"],
                               "vnfInstance": {"href": 7}}),
             "_links.vnfInstance.href"),
            ("_links", {k: v for k, v in req.items() if k != "_links"},
             "_links.vnfLcmOpOcc.href"),
        ]
        with EM() as em:
            for field, body, detail in cases:
                with self.subTest(field=field, detail=detail):
                    problem = self.assertProblem(post(em, body), 422, detail)
                    self.assertTrue(problem["detail"].startswith(field), problem)


class HttpErrorsTest(ProblemAssertions):
    def test_wrong_method_on_known_path_is_405_with_allow(self):
        with EM() as em:
            resp = get(em, COORDS)
            self.assertProblem(resp, 405)
            self.assertEqual(resp.headers["allow"], "POST")
            resp = curl("DELETE", em.url + COORDS + "/abc", headers=API_HEADERS)
            self.assertProblem(resp, 405)
            self.assertEqual(resp.headers["allow"], "GET")
            resp = curl("POST", em.url + "/lcmcoord/api_versions")
            self.assertProblem(resp, 405)
            self.assertEqual(resp.headers["allow"], "GET")

    def test_unknown_paths_are_404(self):
        with EM() as em:
            for path in ("/", "/lcmcoord/v2/coordinations", COORDS + "/", COORDS + "/a/b",
                         COORDS + "/a/cancel/x"):
                with self.subTest(path=path):
                    self.assertProblem(get(em, path), 404)

    def test_body_over_limit_is_413_and_a_chunked_body_411(self):
        big = json.dumps(sample_request(inputParams={"pad": "x" * 500}))
        with EM("--body-limit", "200") as em:
            self.assertProblem(post(em, big), 413, "200 bytes")
            # Chunked framing is refused whatever the size, before any routing (docs/em.md,
            # "Limits"): a ProblemDetails, and the connection closed.
            for body in (big, "{}"):
                chunked = post(em, body, headers=dict(API_HEADERS,
                                                      **{"Transfer-Encoding": "chunked"}))
                self.assertEqual(chunked.status, 411, chunked)
                self.assertEqual(chunked.headers["content-type"], "application/problem+json")
                self.assertEqual(chunked.headers["connection"], "close")
                self.assertIn("Content-Length", json.loads(chunked.body)["detail"])
            self.assertEqual(get(em, "/lcmcoord/api_versions").status, 200)

    def test_huge_headers_do_not_kill_the_server(self):
        with EM() as em:
            resp = curl("GET", em.url + "/lcmcoord/api_versions",
                        headers={"X-Huge": "y" * 100000})
            self.assertGreaterEqual(resp.status, 400)
            self.assertEqual(get(em, "/lcmcoord/api_versions").status, 200)


if __name__ == "__main__":
    unittest.main()
