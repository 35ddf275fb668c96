#!/usr/bin/python3
"""The lcmcoord benchmark (issue 7). Run through bench/run.sh, which installs the packages
and builds lcmcoord first; this file only measures, prints a table and writes
docs/benchmarks.md.

Everything talks to 127.0.0.1 only, every loop is bounded, every server it starts (lcmcoord
em, nginx) is its own child and is stopped by pid at the end.

Sections (see docs/benchmarks.md for what each one means):
  1. one CoordinateVNF run, process start to exit: lcmcoord run vs the curl CLI vs a
     Tacker-like Python client (wall time and peak RSS, medians, interleaved runs);
  2. 10,000 coordinations through client:coordinate_all, sync and async;
  3. 1,000 coordinations parked on a 5 s Retry-After: the client's CPU while they wait;
  4. 1,000 concurrent coordinations with OAuth2: token requests;
  5. the sync batch against nginx answering a fixed 201, next to wrk on the same nginx.
"""

import argparse
import base64
import datetime
import json
import os
import pickle
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIME = "/usr/bin/time"
LISTEN_LINE = re.compile(r"^listening on (https?://\S+)$")
ACTION = "prv.tacker_organization.coordination_test"
KEEP_MARKER = "<!-- Hand-written below this line: bench/run.sh keeps it when it rewrites the file. -->"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def quartiles(xs):
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


# ---- processes -----------------------------------------------------------------------------

class EM:
    """`lcmcoord em` on a free loopback port, as a child; stopped by pid."""

    def __init__(self, binary, *args):
        self.cmd = [binary, "em", "--listen", "127.0.0.1:0", *args]
        # The journal needs the EM's credentials when it has some (issue 16).
        self.headers = {}
        # --oauth2's client id and secret are taken as Basic too.
        for flag in ("--basic", "--oauth2"):
            if flag not in args:
                continue
            user_pass = args[args.index(flag) + 1]
            self.headers["Authorization"] = "Basic " + base64.b64encode(
                user_pass.encode()).decode()
        self.proc = None
        self.url = None
        self.stderr = tempfile.TemporaryFile()

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        m = LISTEN_LINE.match(line)
        if not m:
            self.__exit__(None, None, None)
            raise RuntimeError(f"lcmcoord em did not start: {line!r} {self.stderr_text()}")
        self.url = m.group(1)
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        return False

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-2000:]

    def journal(self):
        req = urllib.request.Request(self.url + "/_em/journal", headers=self.headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def clear_journal(self):
        req = urllib.request.Request(self.url + "/_em/journal", method="DELETE",
                                     headers=self.headers)
        urllib.request.urlopen(req, timeout=30).close()

    def cpu_seconds(self):
        return proc_cpu_ticks(self.proc.pid) / CLK_TCK


def proc_cpu_ticks(pid):
    """utime + stime of the whole process (all threads, dead ones included), in ticks."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def proc_cpu_ns(pid):
    """Time on CPU of the live threads of `pid`, from schedstat (nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def timed(cmd, stdin_path):
    """Runs cmd under /usr/bin/time (a small C parent, so the child's peak RSS is its own and
    not a copy of this Python process's). Returns wall seconds (measured here, around the
    whole launch), user+sys CPU seconds and peak RSS in KiB, and the exit status."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out, \
            open(stdin_path, "rb") as stdin, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        rc = subprocess.call([TIME, "-q", "-f", "%U %S %M", "-o", out.name, *cmd],
                             stdin=stdin, stdout=subprocess.DEVNULL, stderr=err)
        wall = time.perf_counter() - t0
        fields = out.read().split()
        if rc != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd[0]} exited {rc}: {err.read().decode(errors='replace')[-500:]}")
    user, sys_, rss = float(fields[0]), float(fields[1]), int(fields[2])
    return {"wall": wall, "cpu": user + sys_, "rss_kb": rss}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- 1. one CoordinateVNF run ----------------------------------------------------------------

def bench_single(binary, runs, tmp, baseline=None):
    with open(os.path.join(SOURCE, "scripts", "examples", "vnfc_param.json")) as f:
        param = json.load(f)
    results = {}
    with EM(binary, "--quiet", "--basic", "tacker:tacker") as em:
        param["endpoint"] = em.url
        json_path = os.path.join(tmp, "vnfc_param.json")
        with open(json_path, "w") as f:
            json.dump(param, f)
        pickle_path = os.path.join(tmp, "vnfc_param.pickle")
        with open(pickle_path, "wb") as f:
            pickle.dump(param, f)
        # The body lcmcoord's script sends: the LcmCoordRequest with the action name and
        # the operator's inputParams set.
        req = dict(param["LcmCoordRequest"], coordinationActionName=ACTION,
                   inputParams=param["inputParams"])
        body_path = os.path.join(tmp, "request.json")
        with open(body_path, "w") as f:
            json.dump(req, f)
        url = em.url + "/lcmcoord/v1/coordinations"
        clients = {
            "lcmcoord": ([binary, "run", os.path.join(SOURCE, "scripts", "coordinate_vnf.lua")],
                         json_path),
            "curl": (["curl", "-sS", "--fail", "-o", "/dev/null", "-X", "POST",
                      "-H", "Version: 1.0.0", "-H", "Accept: application/json",
                      "-H", "Content-Type: application/json", "-u", "tacker:tacker",
                      "--data-binary", "@" + body_path, url], os.devnull),
            "python": (["/usr/bin/python3", os.path.join(HERE, "tacker_like_client.py")],
                       pickle_path),
            "true": (["/bin/true"], os.devnull),
        }
        if baseline:
            clients["baseline"] = ([baseline, "run",
                                    os.path.join(SOURCE, "scripts", "coordinate_vnf.lua")],
                                   json_path)
        samples = {name: [] for name in clients}
        order = list(clients)
        for i in range(runs + 3):
            random.shuffle(order)
            for name in order:
                cmd, stdin = clients[name]
                s = timed(cmd, stdin)
                if i >= 3:  # the first rounds warm the page cache
                    samples[name].append(s)
        posts = [e for e in em.journal() if e["method"] == "POST"]
        statuses = {e["status"] for e in posts}
        if statuses != {201}:
            raise RuntimeError(f"section 1: the EM answered {statuses}")
    for name, ss in samples.items():
        results[name] = {
            "wall_ms": median([s["wall"] for s in ss]) * 1000,
            "wall_iqr_ms": [x * 1000 for x in quartiles([s["wall"] for s in ss])],
            "cpu_ms": median([s["cpu"] for s in ss]) * 1000,
            "rss_kb": median([s["rss_kb"] for s in ss]),
            "rss_max_kb": max(s["rss_kb"] for s in ss),
            "runs": len(ss),
        }
    return results


# ---- batches under lcmcoord run --------------------------------------------------------------

def run_batch(binary, params, tmp, timeout=300):
    """Runs bench/batch.lua with params; returns its JSON line plus the process's totals."""
    path = os.path.join(tmp, "batch_params.json")
    with open(path, "w") as f:
        json.dump(params, f)
    with open(path, "rb") as stdin:
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary, "run", "--any-params", os.path.join(HERE, "batch.lua")],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=timeout)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"batch.lua exited {proc.returncode}: {out.decode()[-500:]} "
                           f"{err.decode(errors='replace')[-800:]}")
    r = json.loads(out.decode().strip().splitlines()[-1])
    r["process_wall"] = wall
    return r


def bench_throughput(binary, n, repeats, tmp, baseline=None):
    modes = {
        "sync": ([], {}),
        "async": (["--mode", "async", "--polls", "2", "--retry-after", "0"],
                  {"wait_floor": 0.01, "default_interval": 0.01}),
    }
    results = {}
    for mode, (em_args, client_opts) in modes.items():
        rows, base_rows = [], []
        with EM(binary, "--threads", "2", "--quiet", *em_args) as em:
            for i in range(repeats):
                # With a baseline, the two builds take turns against the same EM.
                order = [(binary, rows)] + ([(baseline, base_rows)] if baseline else [])
                for client, into in (order if i % 2 == 0 else order[::-1]):
                    r = run_batch(client, dict({"endpoint": em.url, "n": n, "timeout": 600,
                                                "em_pid": em.proc.pid}, **client_opts), tmp)
                    if r["ok"] != n:
                        raise RuntimeError(f"throughput {mode}: {r}")
                    into.append(r)
        if base_rows:
            results[mode + "_baseline"] = summarize_batches(base_rows, n, repeats, mode)
        results[mode] = summarize_batches(rows, n, repeats, mode)
    return results


def summarize_batches(rows, n, repeats, mode):
    """Medians of one build's batches; cpu_ratio is the median of client CPU / EM CPU taken
    batch by batch (both measured over the same call)."""
    ratios = [r["cpu"] / (r["em_ticks"] / CLK_TCK) for r in rows if r["em_ticks"]]
    return {
        "n": n,
        "wall": median([r["wall"] for r in rows]),
        "rate": median([n / r["wall"] for r in rows]),
        "cpu": median([r["cpu"] for r in rows]),
        "em_cpu": median([r["em_ticks"] / CLK_TCK for r in rows]),
        "cpu_ratio": median(ratios),
        "cpu_ratio_all": ratios,
        "rss_mb": max(r["vmhwm_kb"] for r in rows) / 1024,
        "repeats": repeats,
        "requests_per_coord": 1 if mode == "sync" else 4,
    }


# ---- 3. waiting cost -------------------------------------------------------------------------

def bench_parked(binary, n, tmp):
    with EM(binary, "--threads", "2", "--quiet", "--rejects", str(n),
            "--retry-after", "5") as em:
        path = os.path.join(tmp, "parked_params.json")
        with open(path, "w") as f:
            json.dump({"endpoint": em.url, "n": n, "timeout": 120}, f)
        with open(path, "rb") as stdin:
            proc = subprocess.Popen([binary, "run", "--any-params", os.path.join(HERE, "batch.lua")],
                                    stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Wait (bounded) until every first POST has had its 503: all n are then parked.
            deadline = time.monotonic() + 30
            while len(em.journal()) < n:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("parked: the 503s did not all arrive")
                time.sleep(0.05)
            time.sleep(0.3)
            ns0, ticks0, t0 = proc_cpu_ns(proc.pid), proc_cpu_ticks(proc.pid), time.monotonic()
            cpu_before = ns0 / 1e6
            time.sleep(3.0)
            ns1, ticks1, t1 = proc_cpu_ns(proc.pid), proc_cpu_ticks(proc.pid), time.monotonic()
            still_parked = len(em.journal()) == n
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"parked batch failed: {out.decode()} {err.decode()[-500:]}")
        r = json.loads(out.decode().strip().splitlines()[-1])
        journal = em.journal()
    window = t1 - t0
    return {
        "n": n,
        "window": window,
        "still_parked": still_parked,
        "cpu_window_ms": (ns1 - ns0) / 1e6,
        "cpu_share": (ns1 - ns0) / 1e9 / window,
        "ticks_window": ticks1 - ticks0,
        "cpu_before_ms": cpu_before,
        "total_wall": r["wall"],
        "total_cpu": r["cpu"],
        "posts": sum(1 for e in journal if e["method"] == "POST"),
        "ok": r["ok"],
    }


# ---- 4. tokens -------------------------------------------------------------------------------

def bench_tokens(binary, n, tmp):
    with EM(binary, "--threads", "2", "--quiet", "--oauth2", "vnfm:s3cret") as em:
        auth = {"authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                "paramsOauth2ClientCredentials": {"clientId": "vnfm", "clientPassword": "s3cret",
                                                  "tokenEndpoint": em.url + "/token"}}
        r = run_batch(binary, {"endpoint": em.url, "n": n, "timeout": 120,
                               "authentication": auth}, tmp)
        journal = em.journal()
    tokens = [e for e in journal if e["path"] == "/token"]
    api = [e for e in journal if e["path"] == "/lcmcoord/v1/coordinations"]
    return {"n": n, "ok": r["ok"], "token_requests": len(tokens),
            "api_requests": len(api),
            "bearer_ok": sum(1 for e in api if (e.get("auth") or {}).get("ok")),
            "wall": r["wall"]}


# ---- 5. nginx and wrk ------------------------------------------------------------------------

LCMCOORD_201 = {
    "id": "5c1f0a3e-9b2d-4e47-8a61-000000000001",
    "coordinationResult": "CONTINUE",
    "vnfInstanceId": "9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20",
    "vnfLcmOpOccId": "c2a7e4d1-0b5f-4e8a-a1c3-7f6d9e2b4a01",
    "lcmOperationType": "CHANGE_VNFPKG",
    "coordinationActionName": ACTION,
    "outputParams": {"vnfcInstanceId": ["VDU1-6f1e2d3c"]},
    "_links": {
        "self": {"href": "http://127.0.0.1/lcmcoord/v1/coordinations/5c1f0a3e"},
        "vnfLcmOpOcc": {"href": "http://vnfm.example:9890/vnflcm/v2/vnf_lcm_op_occs/c2a7"},
        "vnfInstance": {"href": "http://vnfm.example:9890/vnflcm/v2/vnf_instances/9b3f"},
    },
}


class Nginx:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "nginx")
        self.port = free_port()
        self.proc = None

    def __enter__(self):
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        body = json.dumps(LCMCOORD_201, separators=(",", ":"))
        assert "'" not in body and "\\" not in body
        temp = {k: os.path.join(self.dir, k) for k in
                ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        conf = f"""
worker_processes 2;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {temp['client_body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location = /lcmcoord/v1/coordinations {{
            default_type application/json;
            add_header Version 1.0.0 always;
            return 201 '{body}';
        }}
    }}
}}
"""
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start: "
                                       + self.proc.stderr.read().decode(errors="replace"))
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: master stops its workers
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        return False


def run_wrk(url, body_path, tmp, seconds=5):
    script = os.path.join(tmp, "post.lua")
    with open(body_path) as f:
        body = f.read()
    with open(script, "w") as f:
        f.write("wrk.method = \"POST\"\n"
                f"wrk.body = {json.dumps(body)}\n"
                "wrk.headers[\"Version\"] = \"1.0.0\"\n"
                "wrk.headers[\"Accept\"] = \"application/json\"\n"
                "wrk.headers[\"Content-Type\"] = \"application/json\"\n")
    done = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", script,
                           url + "/lcmcoord/v1/coordinations"],
                          capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed: {done.stdout} {done.stderr}")
    if "Non-2xx" in done.stdout:
        raise RuntimeError(f"wrk got errors: {done.stdout}")
    return float(m.group(1))


def bench_nginx(binary, n, repeats, tmp, curl_floor=None, baseline=None):
    body_path = os.path.join(tmp, "wrk_body.json")
    with open(body_path, "w") as f:
        f.write(json.dumps({
            "vnfInstanceId": "9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20",
            "vnfLcmOpOccId": "c2a7e4d1-0b5f-4e8a-a1c3-7f6d9e2b4a01",
            "lcmOperationType": "CHANGE_VNFPKG", "coordinationActionName": "prv.bench.action_1",
            "inputParams": {"vnfcInstanceId": ["VDU1-1"]},
            "_links": {"vnfLcmOpOcc": {"href": "http://vnfm.example:9890/vnflcm/v2/vnf_lcm_op_occs/c2a7e4d1-0b5f-4e8a-a1c3-7f6d9e2b4a01"},
                       "vnfInstance": {"href": "http://vnfm.example:9890/vnflcm/v2/vnf_instances/9b3f2a86-6c1d-4b4e-9d0a-3c2f5e7a1b20"}}}))
    wrk_rates, floor_rates, floor_cpus = [], [], []
    batch = {"client": ([], []), "baseline": ([], [])}  # rates, CPU seconds

    def floor_run():
        done = subprocess.run([curl_floor, ngx.url + "/lcmcoord/v1/coordinations",
                               body_path, str(n)], capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"curl_floor failed: {done.stdout} {done.stderr}")
        f = json.loads(done.stdout)
        floor_rates.append(n / f["wall"])
        floor_cpus.append(f["cpu"])

    def batch_run(which, client):
        r = run_batch(client, {"endpoint": ngx.url, "n": n, "timeout": 600,
                               "check_names": False, "plain_requests": True}, tmp)
        if r["ok"] != n:
            raise RuntimeError(f"nginx batch: {r}")
        batch[which][0].append(n / r["wall"])
        batch[which][1].append(r["cpu"])

    with Nginx(tmp) as ngx:
        for i in range(repeats):
            # One round: wrk, then the libcurl floor and the client(s) back to back in an
            # order that alternates, so each round's ratio compares neighbours in time.
            wrk_rates.append(run_wrk(ngx.url, body_path, tmp))
            steps = [lambda: batch_run("client", binary)]
            if curl_floor:
                steps.append(floor_run)
            if baseline:
                steps.append(lambda: batch_run("baseline", baseline))
            for step in (steps if i % 2 == 0 else steps[::-1]):
                step()
    rates, cpus = batch["client"]
    out = {"n": n, "wrk": median(wrk_rates), "batch": median(rates),
           "ratio": median(rates) / median(wrk_rates), "batch_cpu": median(cpus),
           "wrk_all": wrk_rates, "batch_all": rates, "batch_cpu_all": cpus,
           "repeats": repeats, "floor": None}
    if floor_rates:
        # The rate ratio moves with whatever else the 2 cores run; the CPU each side spent
        # on the same 10,000 POSTs (floor CPU / client CPU) is what the rate ratio would be
        # on an idle machine where both are CPU-bound, and moves much less.
        pair = [b / f for b, f in zip(rates, floor_rates)]
        cpu_pair = [f / b for b, f in zip(cpus, floor_cpus)]
        out.update({"floor": median(floor_rates), "floor_all": floor_rates,
                    "floor_cpu": median(floor_cpus), "floor_cpu_all": floor_cpus,
                    "floor_ratio": median(pair), "floor_ratio_all": pair,
                    "floor_cpu_ratio": median(cpu_pair), "floor_cpu_ratio_all": cpu_pair})
    if baseline:
        base_rates, base_cpus = batch["baseline"]
        out.update({"baseline": median(base_rates), "baseline_all": base_rates,
                    "baseline_cpu": median(base_cpus)})
        if floor_rates:
            pair = [b / f for b, f in zip(base_rates, floor_rates)]
            cpu_pair = [f / b for b, f in zip(base_cpus, floor_cpus)]
            out.update({"baseline_floor_ratio": median(pair),
                        "baseline_floor_ratio_all": pair,
                        "baseline_floor_cpu_ratio": median(cpu_pair)})
    return out


# ---- report ----------------------------------------------------------------------------------

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])

    def version(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    try:
        rev = subprocess.run(["git", "-C", SOURCE, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", SOURCE, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        rev += " (with uncommitted changes)" if dirty else ""
    except OSError:
        rev = "?"
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "ram_gib": mem_kb / 1024 / 1024,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "revision": rev,
        "curl": version(["curl", "--version"]),
        "python": version(["/usr/bin/python3", "-c",
                           "import sys, requests; print('Python', sys.version.split()[0], "
                           "'requests', requests.__version__)"]),
        "nginx": version(["nginx", "-v"]),
        "wrk": version(["wrk", "-v"]),
    }


def verdict(ok):
    return "met" if ok else "**missed**"


def render(m, s1, tp, parked, tokens, ngx, command, runs):
    L = []
    rows = []  # (benchmark, measure, value, comparison, target, met)
    base = m.get("baseline_label")
    if s1:
        lc, cu, py, tr = s1["lcmcoord"], s1["curl"], s1["python"], s1["true"]
        r_curl = lc["wall_ms"] / cu["wall_ms"]
        r_py = py["wall_ms"] / lc["wall_ms"]
        before = ""
        if "baseline" in s1:
            b = s1["baseline"]
            before = (f"; {base}: {b['wall_ms']:.1f} ms ({b['wall_ms'] / cu['wall_ms']:.2f}x), "
                      f"{b['rss_kb'] / 1024:.1f} MiB")
        rows += [
            ("1 one run", "wall, median", f"{lc['wall_ms']:.1f} ms",
             f"curl {cu['wall_ms']:.1f} ms ({r_curl:.2f}x); Python {py['wall_ms']:.1f} ms "
             f"({r_py:.1f}x slower than lcmcoord)" + before,
             "<= 1.1x curl", verdict(r_curl <= 1.1)),
            ("1 one run", "peak RSS, median", f"{lc['rss_kb'] / 1024:.1f} MiB",
             f"curl {cu['rss_kb'] / 1024:.1f} MiB; Python {py['rss_kb'] / 1024:.1f} MiB",
             "<= curl", verdict(lc["rss_kb"] <= cu["rss_kb"])),
        ]
    if tp:
        sy, asy = tp["sync"], tp["async"]
        before = ""
        if "sync_baseline" in tp:
            b = tp["sync_baseline"]
            before = (f"; {base}: {b['cpu']:.2f} s vs EM {b['em_cpu']:.2f} s "
                      f"({b['cpu_ratio']:.2f})")
        rows += [
            ("2 10k sync", "coordinations/s", f"{sy['rate']:,.0f}",
             f"wall {sy['wall']:.2f} s", ">= 10,000", verdict(sy["rate"] >= 10000)),
            ("2 10k sync", "client CPU vs EM CPU", f"{sy['cpu']:.2f} s",
             f"EM {sy['em_cpu']:.2f} s (client/EM {sy['cpu_ratio']:.2f})" + before,
             "client < EM", verdict(sy["cpu_ratio"] < 1)),
            ("2 10k sync", "peak RSS", f"{sy['rss_mb']:.1f} MiB", "", "< 64 MiB",
             verdict(sy["rss_mb"] < 64)),
            ("2 10k async", "coordinations/s", f"{asy['rate']:,.0f}",
             f"wall {asy['wall']:.2f} s, 4 requests each ({asy['rate'] * 4:,.0f} req/s)",
             "", ""),
            ("2 10k async", "client CPU vs EM CPU", f"{asy['cpu']:.2f} s",
             f"EM {asy['em_cpu']:.2f} s", "(client < EM)", verdict(asy["cpu"] < asy["em_cpu"])),
            ("2 10k async", "peak RSS", f"{asy['rss_mb']:.1f} MiB", "", "(< 64 MiB)",
             verdict(asy["rss_mb"] < 64)),
        ]
    if parked:
        rows.append(("3 1k parked 5 s", "client CPU while waiting",
                     f"{parked['cpu_share'] * 100:.3f} % of a core",
                     f"{parked['cpu_window_ms']:.1f} ms CPU in {parked['window']:.1f} s",
                     "< 1 %", verdict(parked["cpu_share"] < 0.01 and parked["still_parked"])))
    if tokens:
        rows.append(("4 1k OAuth2", "token requests", str(tokens["token_requests"]),
                     f"{tokens['api_requests']} API requests, {tokens['bearer_ok']} with a valid "
                     "Bearer token", "exactly 1", verdict(tokens["token_requests"] == 1)))
    if ngx and ngx.get("floor"):
        before = ""
        if "baseline_floor_ratio" in ngx:
            before = (f"; {base}: {ngx['baseline']:,.0f}/s, "
                      f"{ngx['baseline_floor_ratio']:.2f} of the floor "
                      f"(by CPU {ngx['baseline_floor_cpu_ratio']:.2f})")
        rows.append(("5 vs nginx", "coordinations/s / libcurl floor",
                     f"{ngx['floor_ratio']:.2f}",
                     f"lcmcoord {ngx['batch']:,.0f}/s; libcurl multi floor "
                     f"{ngx['floor']:,.0f}/s; wrk {ngx['wrk']:,.0f}/s; by CPU (floor CPU / "
                     f"client CPU) {ngx['floor_cpu_ratio']:.2f}" + before,
                     ">= 0.8", verdict(ngx["floor_ratio"] >= 0.8)))
    elif ngx:
        rows.append(("5 vs nginx", "coordinations/s / wrk req/s", f"{ngx['ratio']:.2f}",
                     f"lcmcoord {ngx['batch']:,.0f}/s; wrk {ngx['wrk']:,.0f}/s", "", ""))

    L.append("| # | measure | lcmcoord | comparison (same run) | target | result |")
    L.append("|---|---|---|---|---|---|")
    for r in rows:
        L.append("| " + " | ".join(r) + " |")
    table = "\n".join(L)

    md = ["# Benchmarks", "",
          "Numbers from `bench/run.sh` (issues 7 and 13). Generated: do not edit by hand;",
          "rerun the command to refresh. Every comparison in a row was measured in the same",
          "run, on loopback (127.0.0.1) only"
          + (f"; `{base}` is the baseline build (`--baseline`), measured in the same run, "
             "its runs alternating with the others'." if base else "."), "",
          "## Machine and run", "",
          f"- Date: {m['date']}",
          f"- Command: `{command}`",
          f"- CPU: {m['cpu']}, `nproc` = {m['nproc']}; RAM {m['ram_gib']:.1f} GiB; "
          f"kernel {m['kernel']}; load average at start {' '.join(m['loadavg'])}, at end "
          f"{' '.join(m.get('loadavg_end', ['?']))} (other work on the machine shows here: "
          "the numbers are only as quiet as the machine was)",
          f"- lcmcoord: revision {m['revision']}, CMake Release build in `build-bench/`; "
          + ("measured as installed (`cmake --install build-bench --prefix "
             "build-bench/install`), the way a VNFM runs it"
             if m.get("layout") == "installed" else "measured in the build tree")
          + f" (`{m.get('binary', '?')}`)",
          f"- {m['curl']}",
          f"- {m['python']} (Debian's, for the Tacker-like client)",
          f"- {m['nginx']}; {m['wrk']}",
          "", "## Results", "", table, ""]
    md += ["## What each row measures", ""]
    if s1:
        lc, cu, py, tr = s1["lcmcoord"], s1["curl"], s1["python"], s1["true"]
        md += [
            f"**1. One CoordinateVNF run, process start to exit** ({lc['runs']} runs of each "
            "client after 3 warm-up rounds, in a shuffled order each round; medians). "
            "The EM is `lcmcoord em --quiet --basic tacker:tacker` (sync, 201). Each run is "
            "launched through `/usr/bin/time -f '%U %S %M'`, which reports the child's own "
            "peak RSS; wall time is taken by the driver around the launch, so every client "
            "carries the same launch cost (`/bin/true` row).", "",
            "| client | wall median (IQR) | CPU (user+sys) | peak RSS median (max) |",
            "|---|---|---|---|"]
        names = {"lcmcoord": "`lcmcoord run scripts/coordinate_vnf.lua < vnfc_param.json`",
                 "baseline": f"the same with the baseline build ({base})",
                 "curl": "`curl` CLI, same POST, same headers, `-u tacker:tacker`",
                 "python": "`bench/tacker_like_client.py` (python3 + requests, pickle on stdin)",
                 "true": "`/bin/true` (launch floor)"}
        for k in ("lcmcoord", "baseline", "curl", "python", "true"):
            if k not in s1:
                continue
            v = s1[k]
            cpu = f"{v['cpu_ms']:.0f} ms" if v["cpu_ms"] >= 10 else "< 10 ms"
            md.append(f"| {names[k]} | {v['wall_ms']:.2f} ms ({v['wall_iqr_ms'][0]:.2f}–"
                      f"{v['wall_iqr_ms'][1]:.2f}) | {cpu} | "
                      f"{v['rss_kb'] / 1024:.1f} MiB ({v['rss_max_kb'] / 1024:.1f}) |")
        md.append("")
        net = {k: s1[k]["wall_ms"] - tr["wall_ms"] for k in ("lcmcoord", "curl", "python")}
        md.append(f"Net of the launch floor: lcmcoord {net['lcmcoord']:.2f} ms, curl "
                  f"{net['curl']:.2f} ms, Python {net['python']:.2f} ms; lcmcoord / curl = "
                  f"{net['lcmcoord'] / net['curl']:.2f}, Python / lcmcoord = "
                  f"{net['python'] / net['lcmcoord']:.1f}. (`/usr/bin/time` reports CPU in "
                  "10 ms steps, so the CPU column of short runs is coarse.)")
        md.append("")
    if tp:
        md += [
            f"**2. Throughput**: {tp['sync']['n']:,} coordinations through one "
            "`client:coordinate_all` in one `lcmcoord run` process (`bench/batch.lua`), "
            f"median of {tp['sync']['repeats']} runs per mode. EM: `lcmcoord em --threads 2 "
            "--quiet` on the same 2 cores. Wall time and client CPU (`os.clock()`) are taken "
            "around the `coordinate_all` call alone; the EM's CPU (utime+stime from "
            "`/proc/PID/stat`) is read right before and after the same call. Peak RSS is the "
            "client's `VmHWM` at the end (the largest over the runs). Async mode: EM `--mode "
            "async --polls 2 --retry-after 0` (POST 202, GET 202, GET 202, GET 200: four "
            "requests per coordination) with the client's `wait_floor = 0.01` and "
            "`default_interval = 0.01` (the default 1 s floor would turn `Retry-After: 0` into "
            "1 s waits); default connection limit (64).", "",
            "| mode | wall | coordinations/s | client CPU | EM CPU | client peak RSS |",
            "|---|---|---|---|---|---|"]
        for mode in ("sync", "sync_baseline", "async", "async_baseline"):
            if mode not in tp:
                continue
            v = tp[mode]
            name = mode.replace("_baseline", f" ({base})")
            md.append(f"| {name} | {v['wall']:.2f} s | {v['rate']:,.0f} | {v['cpu']:.2f} s | "
                      f"{v['em_cpu']:.2f} s | {v['rss_mb']:.1f} MiB |")
        md.append("")
    if parked:
        md += [
            f"**3. Waiting cost**: {parked['n']:,} coordinations against `lcmcoord em --rejects "
            f"{parked['n']} --retry-after 5`: every first POST gets 503, every resend 201. "
            "Once the EM's journal holds all the 503s (+0.3 s), the client's time on CPU "
            "(sum of `/proc/PID/task/*/schedstat`) is read twice, "
            f"{parked['window']:.1f} s apart, while all of them wait: "
            f"{parked['cpu_window_ms']:.2f} ms of CPU, {parked['cpu_share'] * 100:.3f} % of "
            f"one core ({parked['ticks_window']} clock ticks by `/proc/PID/stat`; the process had "
            f"used {parked['cpu_before_ms']:.0f} ms of CPU before the window, sending the "
            "first POSTs). Still all "
            f"parked at the end of the window: {parked['still_parked']}. The whole batch took "
            f"{parked['total_wall']:.2f} s and {parked['total_cpu'] * 1000:.0f} ms of CPU "
            f"({parked['posts']} POSTs; {parked['ok']} CONTINUE).", ""]
    if tokens:
        md += [
            f"**4. Tokens**: {tokens['n']:,} concurrent coordinations (one `coordinate_all`) "
            "against `lcmcoord em --oauth2 vnfm:s3cret` with OAUTH2_CLIENT_CREDENTIALS: "
            f"{tokens['token_requests']} request(s) to `/token` in the journal, "
            f"{tokens['api_requests']} POSTs, {tokens['bearer_ok']} of them with a valid "
            f"Bearer token; {tokens['ok']} CONTINUE in {tokens['wall']:.2f} s.", ""]
    if ngx:
        md += [
            f"**5. Near the physical limit**: nginx ({m['nginx']}) on loopback, 2 workers, "
            "`keepalive_requests 1000000`, `access_log off`, answering every `POST "
            "/lcmcoord/v1/coordinations` with `return 201 '<LcmCoord>'` (`default_type "
            "application/json`); the same nginx under `wrk -t2 -c64 -d5s -s post.lua` posting "
            "the same kind of body with the same headers. Rounds of wrk, then the libcurl "
            "floor and the batch(es) back to back, in an order reversed every other round "
            f"({ngx['repeats']} rounds); the ratio to the floor is taken round by round, "
            f"then the median. The batch is {ngx['n']:,} sync coordinations through "
            "`coordinate_all` (64 connections, the default), requests built before the "
            "timed call.", "",
            f"- wrk: {', '.join(f'{x:,.0f}' for x in ngx['wrk_all'])} requests/s",
            f"- lcmcoord: {', '.join(f'{x:,.0f}' for x in ngx['batch_all'])} coordinations/s "
            f"(client CPU {ngx['batch_cpu']:.2f} s per batch)",
            f"- ratio of medians: {ngx['ratio']:.2f}", ""]
        if ngx.get("floor"):
            md[-1:-1] = [
                f"- libcurl multi floor (`bench/curl_floor.c`: the same {ngx['n']:,} POSTs "
                "through a bare curl multi handle, 64 connections, 128 in flight, easy "
                "handles set up once, nothing parsed): "
                f"{', '.join(f'{x:,.0f}' for x in ngx['floor_all'])} requests/s (CPU "
                f"{ngx['floor_cpu']:.2f} s per run); {ngx['floor'] / ngx['wrk']:.2f} of wrk; "
                "lcmcoord / floor by round: "
                f"{', '.join(f'{x:.2f}' for x in ngx['floor_ratio_all'])} "
                f"(median {ngx['floor_ratio']:.2f}); floor CPU / client CPU by round: "
                f"{', '.join(f'{x:.2f}' for x in ngx['floor_cpu_ratio_all'])} "
                f"(median {ngx['floor_cpu_ratio']:.2f})"]
            if "baseline_all" in ngx:
                md[-1:-1] = [
                    f"- {base}: {', '.join(f'{x:,.0f}' for x in ngx['baseline_all'])} "
                    f"coordinations/s (client CPU {ngx['baseline_cpu']:.2f} s per batch); / "
                    "floor by round: "
                    f"{', '.join(f'{x:.2f}' for x in ngx.get('baseline_floor_ratio_all', []))}"
                    f" (median {ngx.get('baseline_floor_ratio', float('nan')):.2f})"]
    return table, "\n".join(md)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lcmcoord", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--out", default=os.path.join(SOURCE, "docs", "benchmarks.md"))
    ap.add_argument("--only", default="1,2,3,4,5")
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--curl-floor", help="the compiled bench/curl_floor.c (section 5)")
    ap.add_argument("--layout", default="build-tree", choices=["installed", "build-tree"])
    ap.add_argument("--baseline", help="another lcmcoord build, measured in the same run")
    ap.add_argument("--baseline-label", default="baseline")
    ap.add_argument("--json", help="also write the raw numbers here")
    a = ap.parse_args()
    only = set(a.only.split(","))
    m = machine()
    with tempfile.TemporaryDirectory(prefix="lcmc-bench-") as tmp:
        s1 = tp = parked = tokens = ngx = None
        if "1" in only:
            log("1/5 one CoordinateVNF run: lcmcoord vs curl vs Python")
            s1 = bench_single(a.lcmcoord, a.runs, tmp, a.baseline)
        if "2" in only:
            log(f"2/5 throughput: {a.n} coordinations, sync and async")
            tp = bench_throughput(a.lcmcoord, a.n, a.repeats, tmp, a.baseline)
        if "3" in only:
            log("3/5 waiting cost: 1000 coordinations parked on Retry-After: 5")
            parked = bench_parked(a.lcmcoord, 1000, tmp)
        if "4" in only:
            log("4/5 tokens: 1000 coordinations with OAuth2")
            tokens = bench_tokens(a.lcmcoord, 1000, tmp)
        if "5" in only:
            log("5/5 nginx and wrk")
            ngx = bench_nginx(a.lcmcoord, a.n, max(3, a.repeats - 2), tmp, a.curl_floor,
                              a.baseline)
    m["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    m["layout"] = a.layout
    m["binary"] = os.path.relpath(a.lcmcoord, SOURCE)
    if a.baseline:
        m["baseline_label"] = a.baseline_label
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": m, "single": s1, "throughput": tp, "parked": parked,
                       "tokens": tokens, "nginx": ngx}, f, indent=1)
    table, md = render(m, s1, tp, parked, tokens, ngx, a.command, a.runs)
    print(table)
    if a.out and a.out != "-":
        # Anything after the marker (hand-written notes, profiles) survives a rerun.
        kept = ""
        if os.path.exists(a.out):
            with open(a.out, encoding="utf-8") as f:
                old = f.read()
            if KEEP_MARKER in old:
                kept = old[old.index(KEEP_MARKER):]
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(md.rstrip("\n") + "\n\n" + (kept or KEEP_MARKER + "\n"))
        log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
