#!/usr/bin/env bash
# Benchmark of `lcmcoord serve` (issue 15), against `lcmcoord em` in the same run, on this
# machine, 127.0.0.1 only, printing the numbers:
#   1. coordinations per second for a hook that answers CONTINUE at once: serve with SQLite
#      (durable: synchronous=FULL, on the disk of --dir), serve with PostgreSQL (a throw-away
#      cluster from tests/e2e/pg_cluster.py), and lcmcoord em (no store, no hook); the client
#      is lcmcoord's own (bench/batch.lua: one coordinate_all of N coordinations);
#   2. the latency serve adds per request: sequential POSTs on one keep-alive connection,
#      median, serve (SQLite) minus em;
#   3. memory with 10,000 decisions waiting (asleep in lcmcoord.sleep): the server's RSS
#      before and after, per decision.
#
#   bench/serve.sh [--build DIR] [--n N] [--waiting N] [--dir DIR]
# Uses an existing build (default build/; a Release build gives the meaningful numbers).
# The servers are its own children, stopped by pid.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
n=2000
waiting=10000
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --waiting) waiting="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "usage: bench/serve.sh [--build DIR] [--n N] [--waiting N] [--dir DIR]" >&2; exit 2 ;;
  esac
done
exec python3 - "$root" "$build/bin/lcmcoord" "$n" "$waiting" "$dir" <<'PY'
import http.client, json, os, statistics, subprocess, sys, tempfile, time

root, lcmcoord, n, waiting, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, os.path.join(root, "tests", "e2e"))
tmp = tempfile.TemporaryDirectory(dir=workdir or None)
T = tmp.name
hooks = os.path.join(T, "continue.lua")
open(hooks, "w").write('return {decide = function() return {result = "CONTINUE"} end}\n')
sleepy = os.path.join(T, "sleep.lua")
open(sleepy, "w").write('local l = require "lcmcoord"\n'
                        'return {decide = function() l.sleep(3600) return {result = "CONTINUE"} end}\n')

def start(args):
    p = subprocess.Popen([lcmcoord, *args, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().split()
    if len(line) != 3:
        p.kill(); raise SystemExit(f"{args[0]} did not start")
    return p, line[2]

def stop(p):
    p.terminate()
    p.wait(timeout=60)

def serve_args(store, hooks_file, *more):
    return ["serve", "--hooks", hooks_file, "--store", store, "--quiet", "--exclusive", "none",
            "--max-decisions", "100000", "--shutdown-grace", "0", *more]

def batch(url):
    params = json.dumps({"endpoint": url, "n": n, "plain_requests": True, "check_names": False})
    done = subprocess.run([lcmcoord, "run", "--any-params", os.path.join(root, "bench", "batch.lua")],
                          input=params, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"batch failed: {done.stdout} {done.stderr}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return r["n"] / r["wall"]

BODY = json.dumps({"vnfInstanceId": "i", "vnfLcmOpOccId": "o", "lcmOperationType": "CHANGE_VNFPKG",
                   "coordinationActionName": "a",
                   "_links": {"vnfLcmOpOcc": {"href": "http://v/o"}, "vnfInstance": {"href": "http://v/i"}}})
HEAD = {"Version": "1.0.0", "Content-Type": "application/json", "Accept": "application/json"}

def posts(url, count, expect):
    host, port = url.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        c.request("POST", "/lcmcoord/v1/coordinations", BODY, HEAD)
        r = c.getresponse(); r.read()
        times.append(time.perf_counter() - t0)
        if r.status != expect:
            raise SystemExit(f"POST answered {r.status}, expected {expect}")
    c.close()
    return times

def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

print(f"lcmcoord serve benchmark: N={n} coordinations per client run, {os.cpu_count()} CPUs, "
      f"store directory {T}")
rows = []
em, url = start(["em"])
rows.append(("lcmcoord em (no store, no hook)", batch(url)))
em_lat = statistics.median(posts(url, 300, 201))
stop(em)
sv, url = start(serve_args("sqlite:" + os.path.join(T, "s.db"), hooks))
rows.append(("lcmcoord serve, SQLite (durable)", batch(url)))
sv_lat = statistics.median(posts(url, 300, 201))
stop(sv)
from pg_cluster import PgCluster
with PgCluster() as pg:
    sv, url = start(serve_args(pg.url, hooks))
    rows.append(("lcmcoord serve, PostgreSQL", batch(url)))
    pg_lat = statistics.median(posts(url, 300, 201))
    stop(sv)
print("\n1. Immediate CONTINUE, coordinations per second (lcmcoord client, coordinate_all):")
for name, rate in rows:
    print(f"   {name:36s} {rate:8.0f}/s")
print("\n2. Latency per request (sequential POSTs, one keep-alive connection, median):")
print(f"   lcmcoord em {em_lat*1e3:.2f} ms; serve SQLite {sv_lat*1e3:.2f} ms "
      f"(+{(sv_lat-em_lat)*1e3:.2f} ms); serve PostgreSQL {pg_lat*1e3:.2f} ms "
      f"(+{(pg_lat-em_lat)*1e3:.2f} ms)")
# Memory: decisions asleep in lcmcoord.sleep; stored RUNNING after a zero budget.
sv, url = start(serve_args("sqlite:" + os.path.join(T, "w.db"), sleepy, "--sync-budget", "0"))
before = rss_kb(sv.pid)
t0 = time.perf_counter()
posts(url, waiting, 202)
took = time.perf_counter() - t0
after = rss_kb(sv.pid)
sv.kill()  # a graceful stop would store every one of them as ABORT first
sv.wait()
print(f"\n3. Memory with {waiting} decisions waiting: RSS {before/1024:.1f} MiB before, "
      f"{after/1024:.1f} MiB after: {(after-before)*1024/waiting/1024:.1f} KiB per decision "
      f"(the {waiting} POSTs took {took:.1f} s)")
PY
