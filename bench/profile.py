#!/usr/bin/python3
"""Client-side profiles behind docs/benchmarks.md (run through bench/profile.sh).

Against nginx on loopback (the same fixed-201 server as the benchmark's section 5, so that
the server costs next to nothing), one `lcmcoord run bench/batch.lua` (the benchmark's own
batch: requests from lcmcoord.request, one coordinate_all) is profiled three ways:

  perf      sampling on cpu-clock with DWARF call graphs, N coordinations (default
            10,000); samples inside client:coordinate_all are put in buckets by the first
            matching function on their stack, and those in curl_multi_perform are split
            into libcurl / kernel (by syscall) / libc;
  callgrind instructions inside coordinate_all only (--toggle-collect), N/5
            coordinations: inclusive counts of the runtime's and the binding's functions
            and of the libraries' entry points, per coordination;
  massif    the heap at its peak, N/2 coordinations, by the innermost frames of our code;
  floor     callgrind's instructions per request of the libcurl multi floor
            (bench/curl_floor.c, --curl-floor), N/5 requests minus a run of one: the
            user-space cost the client's own per coordination compares with, unmoved by
            whatever else the machine runs.

Needs linux-perf and valgrind (bench/profile.sh installs them). Prints plain text.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import bench  # noqa: E402  (the Nginx helper)

BUCKETS = [
    ("jansson json_loads: the request re-parsed in lcmc_coordination_start", ["json_loads"]),
    ("jansson json_loadb: the LcmCoord parsed in accept_lcmcoord", ["json_loadb"]),
    ("lcmc_lua_json_decode: the LcmCoord decoded again by cjson for Lua", ["lcmc_lua_json_decode"]),
    ("lcmc_lua_json_encode: requests encoded by cjson", ["lcmc_lua_json_encode"]),
    # The value model (issue 13): Lua tables and jansson values converted directly.
    ("lcmc_lua_to_json: request tables made jansson values", ["lcmc_lua_to_json"]),
    ("json_dumps: request values written as the text sent", ["json_dumps"]),
    ("lcmc_lua_push_json: the LcmCoord value made a Lua table", ["lcmc_lua_push_json"]),
    ("json_delete: jansson values freed (each block wiped)", ["json_delete"]),
    ("lcmc__url_origin: URL parsed by curl_url per call", ["lcmc__url_origin"]),
    ("curl_multi_poll", ["curl_multi_poll"]),
    ("curl_multi_perform: libcurl's HTTP work and the socket syscalls", ["curl_multi_perform"]),
    ("curl_multi_add_handle / curl_multi_remove_handle",
     ["curl_multi_remove_handle", "curl_multi_add_handle"]),
    ("response headers read through curl_easy_header / nextheader",
     ["curl_easy_header", "curl_easy_nextheader"]),
    ("curl_easy_reset and configure (options set per transfer)", ["curl_easy_reset", "configure"]),
    ("rest of lcmc_coordination_start", ["lcmc_coordination_start"]),
    ("rest of the completion callbacks (lcmc__transfers_collect)", ["lcmc__transfers_collect"]),
    ("rest of lcmc_lua_push_result", ["lcmc_lua_push_result"]),
    ("lcmc_coordination_free", ["lcmc_coordination_free"]),
]


def stacks(perf_script_text):
    for block in perf_script_text.split("\n\n"):
        frames = []
        for line in block.strip().split("\n"):
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line.strip())
            if m:
                frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)),
                               m.group(2).rsplit("/", 1)[-1]))
        if frames:
            yield frames


def perf_profile(binary, params_path, tmp, freq):
    data = os.path.join(tmp, "perf.data")
    with open(params_path, "rb") as stdin:
        subprocess.run(["perf", "record", "-q", "-F", str(freq), "-e", "cpu-clock",
                        "--call-graph", "dwarf,32768", "-o", data, "--", binary, "run",
                        "--any-params", os.path.join(HERE, "batch.lua")],
                       stdin=stdin, stdout=subprocess.DEVNULL, check=True)
    text = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"],
                          capture_output=True, text=True, check=True).stdout
    total = 0
    buckets = collections.Counter()
    curl_split = collections.Counter()
    curl_total = 0
    self_time = collections.Counter()
    for frames in stacks(text):
        names = [f[0] for f in frames]
        if "lcmc_lua_client_coordinate_all" not in names:
            continue
        total += 1
        for label, keys in BUCKETS:
            if any(n in keys for n in names):
                buckets[label] += 1
                break
        else:
            buckets["other"] += 1
        top_name, top_dso = frames[0]
        self_time[top_dso if top_name == "[unknown]" else f"{top_name} ({top_dso})"] += 1
        if "curl_multi_perform" in names:
            curl_total += 1
            if top_dso == "[kernel.kallsyms]":
                call = next((n for n in names if n.startswith(("__sys_", "__x64_sys_"))), "other")
                curl_split["kernel: " + call] += 1
            else:
                curl_split[top_dso] += 1
    print(f"== perf (cpu-clock at {freq} Hz): {total} samples inside coordinate_all "
          f"({total / freq:.2f} s)")
    for label, count in buckets.most_common():
        print(f"{100 * count / total:6.1f} %  {label}")
    print(f"-- inside curl_multi_perform ({100 * curl_total / max(total, 1):.1f} % of the "
          "above), by where the sample landed")
    for label, count in curl_split.most_common(8):
        print(f"{100 * count / max(curl_total, 1):6.1f} %  {label}")
    print("-- self time, top 15")
    for label, count in self_time.most_common(15):
        print(f"{100 * count / total:6.1f} %  {label}")


def callgrind_profile(binary, params_path, tmp, n):
    out = os.path.join(tmp, "callgrind.out")
    with open(params_path, "rb") as stdin:
        subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect="
                        "lcmc_lua_client_coordinate_all", f"--callgrind-out-file={out}",
                        binary, "run", "--any-params", os.path.join(HERE, "batch.lua")],
                       stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                          capture_output=True, text=True, check=True).stdout
    rows = []
    total = None
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)$", line)
        if not m:
            continue
        count = int(m.group(1).replace(",", ""))
        where = m.group(3)
        if "PROGRAM TOTALS" in where:
            total = count
            continue
        fn = re.sub(r"^.*?:", "", where.split(" [")[0]) if ":" in where else where
        if re.search(r"/work/|runtime/|bindings/", where) or re.match(
                r"^\?\?\?:(json_\w+|curl_\w+|lua_\w+)", where):
            rows.append((count, fn, where.rsplit(" [", 1)[-1].rstrip("]").rsplit("/", 1)[-1]))
    print(f"== callgrind: {total:,} instructions inside coordinate_all for {n} coordinations "
          f"= {total / n:,.0f} per coordination")
    seen = set()
    shown = 0
    for count, fn, lib in rows:
        if fn in seen or count < total * 0.01 or count >= total * 0.999 or "lua_pcallk" in fn:
            continue
        seen.add(fn)
        print(f"{100 * count / total:6.1f} %  {count / n:>9,.0f}/coord  {fn}  [{lib}]")
        shown += 1
        if shown >= 40:
            break


def floor_profile(curl_floor, url, tmp, n):
    body = os.path.join(tmp, "floor_body.json")
    with open(body, "w") as f:
        json.dump(bench.LCMCOORD_201, f)
    counts = {}
    for runs in (1, n):
        out = os.path.join(tmp, f"callgrind.floor.{runs}")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        curl_floor, url + "/lcmcoord/v1/coordinations", body, str(runs)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        text = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True,
                              check=True).stdout
        m = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text)
        counts[runs] = int(m.group(1).replace(",", ""))
    per = (counts[n] - counts[1]) / (n - 1)
    print(f"== callgrind, libcurl multi floor: {per:,.0f} instructions per request "
          f"({n} requests, less a run of one)")


def massif_profile(binary, params_path, tmp, n):
    out = os.path.join(tmp, "massif.out")
    with open(params_path, "rb") as stdin:
        subprocess.run(["valgrind", "--tool=massif", "--depth=30",
                        f"--massif-out-file={out}", binary, "run", "--any-params",
                        os.path.join(HERE, "batch.lua")],
                       stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
    lines = open(out).read().split("\n")
    start = None
    for i, line in enumerate(lines):
        if line == "heap_tree=peak":
            start = i + 1
            break
    node = re.compile(r"^( *)n(\d+): (\d+) (.*)$")
    ours = re.compile(r"\((\w+\.c):\d+\)")
    agg = collections.Counter()
    stack = []
    total = None
    for line in lines[start:]:
        m = node.match(line)
        if not m:
            break
        depth, children, size, desc = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        if total is None:
            total = size
        stack = stack[:depth] + [desc]
        if children == 0:
            inner = [re.sub(r"^0x[0-9A-F]+: ", "", d).split(" (in ")[0]
                     for d in stack[1:] if ours.search(d)]
            agg[" <- ".join(inner[:2]) if inner else "(below massif's threshold)"] += size
    print(f"== massif: heap at its peak {total / 2**20:.1f} MiB for {n} coordinations "
          f"= {total / n:,.0f} bytes per coordination")
    for where, size in agg.most_common(16):
        print(f"{100 * size / total:6.1f} %  {size / n:>6,.0f} B/coord  {where}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lcmcoord", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--only", default="perf,callgrind,massif,floor")
    ap.add_argument("--curl-floor", help="the compiled bench/curl_floor.c (--only floor)")
    ap.add_argument("--keep", help="copy the callgrind output here (for callgrind_annotate "
                    "--tree=caller and the like)")
    a = ap.parse_args()
    only = set(a.only.split(","))
    with tempfile.TemporaryDirectory(prefix="lcmc-profile-") as tmp, bench.Nginx(tmp) as ngx:
        def params(n):
            path = os.path.join(tmp, f"params_{n}.json")
            with open(path, "w") as f:
                json.dump({"endpoint": ngx.url, "n": n, "timeout": 600, "check_names": False},
                          f)
            return path
        if "perf" in only:
            perf_profile(a.lcmcoord, params(a.n), tmp, 4000)
            print()
        if "callgrind" in only:
            callgrind_profile(a.lcmcoord, params(a.n // 5), tmp, a.n // 5)
            if a.keep:
                shutil.copy(os.path.join(tmp, "callgrind.out"), a.keep)
            print()
        if "floor" in only and a.curl_floor:
            floor_profile(a.curl_floor, ngx.url, tmp, a.n // 5)
            print()
        if "massif" in only:
            massif_profile(a.lcmcoord, params(a.n // 2), tmp, a.n // 2)


if __name__ == "__main__":
    main()
