#!/usr/bin/python3
"""A CoordinateVNF script the way Tacker runs one, for the benchmark's comparison.

It does what Tacker's sample coordinate_vnf.py and its `create_coordination` helper do
(described in shared/docs/tacker.md), with Debian's python3 and python3-requests and
nothing of Tacker itself:

- the VNFC parameters arrive on stdin as a Python pickle, as Tacker's infra driver passes
  them;
- the script sets coordinationActionName, copies inputParams, and calls
  create_coordination(endpoint, authentication, coord_req, timeout);
- POST {endpoint}/lcmcoord/v1/coordinations with Version: 1.0.0, Accept and Content-Type
  application/json; 201 -> done; 503 -> sleep Retry-After, re-POST the same body;
  202 -> GET the Location until 200, sleeping the previous answer's Retry-After;
  anything else raises;
- Retry-After in seconds, else 5; `timeout` (3600 unless an int) is a budget of sleep
  seconds only;
- BASIC, or OAUTH2_CLIENT_CREDENTIALS with a new token before every request; a new
  connection per request (module-level requests calls, no Session); TLS not verified.

Exit 0 when the result is CONTINUE; otherwise a traceback on stderr and exit 1, as the
sample script does. Not a faithful copy of Tacker's code: a client with the same flow and
the same libraries, which is what the benchmark compares against.
"""

import json
import pickle
import sys
import time

import requests

API_HEADERS = {"Version": "1.0.0", "Accept": "application/json",
               "Content-Type": "application/json"}


class CoordinationError(Exception):
    pass


def _auth(authentication):
    """Returns (requests auth, headers) for one request; OAuth2 asks for a token each time."""
    if not authentication:
        return None, {}
    types = authentication.get("authType", [])
    if "OAUTH2_CLIENT_CREDENTIALS" in types:
        p = authentication["paramsOauth2ClientCredentials"]
        resp = requests.post(p["tokenEndpoint"], data={"grant_type": "client_credentials"},
                             auth=(p["clientId"], p["clientPassword"]), verify=False)
        if resp.status_code != 200:
            raise CoordinationError("token request failed")
        return None, {"Authorization": "Bearer " + resp.json()["access_token"]}
    if "BASIC" in types:
        p = authentication["paramsBasic"]
        return (p["userName"], p["password"]), {}
    return None, {}


def _retry_after(resp):
    value = resp.headers.get("Retry-After")
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return 5
    return seconds if seconds >= 0 else 5


def _request(method, url, authentication, body=None):
    auth, extra = _auth(authentication)
    headers = dict(API_HEADERS, **extra)
    return requests.request(method, url, data=body, headers=headers, auth=auth, verify=False)


def _raise_for(resp):
    detail = ""
    if resp.headers.get("Content-Type", "").startswith("application/problem+json"):
        detail = resp.json().get("detail", "")
    raise CoordinationError(f"{resp.status_code} {detail}")


def create_coordination(endpoint, authentication, coord_req, timeout):
    budget = timeout if isinstance(timeout, int) else 3600
    url = f"{endpoint}/lcmcoord/v1/coordinations"
    body = json.dumps(coord_req)
    while True:
        resp = _request("POST", url, authentication, body)
        if resp.status_code == 201:
            return resp.json()
        if resp.status_code == 503:
            wait = _retry_after(resp)
            if wait > budget:
                raise CoordinationError("did not complete within the timeout period")
            budget -= wait
            time.sleep(wait)
            continue
        if resp.status_code == 202:
            break
        _raise_for(resp)
    location = resp.headers.get("Location")
    if location is None:
        raise CoordinationError("Location header not included in response.")
    coord_id = location.split("/")[-1]
    get_url = f"{endpoint}/lcmcoord/v1/coordinations/{coord_id}"
    while True:
        wait = _retry_after(resp)
        if wait > budget:
            raise CoordinationError("did not complete within the timeout period")
        budget -= wait
        time.sleep(wait)
        resp = _request("GET", get_url, authentication)
        if resp.status_code == 200:
            return resp.json()
        if resp.status_code != 202:
            _raise_for(resp)


def main():
    params = pickle.load(sys.stdin.buffer)
    req = params["LcmCoordRequest"]
    req["coordinationActionName"] = "prv.tacker_organization.coordination_test"
    if "inputParams" in params:
        req["inputParams"] = params["inputParams"]
    result = create_coordination(params["endpoint"], params.get("authentication"), req,
                                 params.get("timeout"))
    if result["coordinationResult"] != "CONTINUE":
        raise CoordinationError(f"coordination {result['coordinationResult']}")


if __name__ == "__main__":
    main()
