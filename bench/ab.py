#!/usr/bin/env python3
"""A/B of two lcmcoord builds on the client's CPU per batch against the benchmark's
fixed-response nginx (bench/bench.py section 5's batch: 10,000 sync coordinations through
one coordinate_all, plain requests), their runs alternating (A B B A A B ...) so that both
see the same machine; medians of the client CPU seconds (os.clock around the call) and of
the rates. For a before/after on a shared machine, where a rate ratio moves with other
work but the alternation keeps the comparison fair.

    bench/ab.py --a build-bench/install/bin/lcmcoord --b build-bench-base/install/bin/lcmcoord
                [--rounds 6] [--n 10000] [--env-a NAME=VALUE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the Nginx helper)


def batch(binary, url, n, env=None):
    params = json.dumps({"endpoint": url, "n": n, "timeout": 600, "check_names": False,
                         "plain_requests": True})
    done = subprocess.run([binary, "run", "--any-params", os.path.join(HERE, "batch.lua")],
                          input=params.encode(), capture_output=True, check=True,
                          env=env)
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return out["cpu"], out["n"] / out["wall"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--env-a", action="append", default=[],
                    help="NAME=VALUE for A's runs only (e.g. a GLIBC_TUNABLES trial)")
    a = ap.parse_args()
    got = {"a": [], "b": []}
    with tempfile.TemporaryDirectory(prefix="lcmc-ab-") as tmp, bench.Nginx(tmp) as ngx:
        for r in range(a.rounds):
            order = ("a", "b") if r % 2 == 0 else ("b", "a")
            for which in order:
                env = dict(os.environ, **dict(e.split("=", 1) for e in a.env_a)) \
                    if which == "a" else None
                got[which].append(batch(getattr(a, which), ngx.url, a.n, env))
    for which in ("a", "b"):
        cpus = [c for c, _ in got[which]]
        rates = [q for _, q in got[which]]
        print(f"{which}: client CPU per batch median {statistics.median(cpus):.3f} s "
              f"({', '.join(f'{c:.3f}' for c in cpus)}); rate median "
              f"{statistics.median(rates):,.0f}/s")
    ca = statistics.median(c for c, _ in got["a"])
    cb = statistics.median(c for c, _ in got["b"])
    print(f"a/b client CPU: {ca / cb:.3f}")


if __name__ == "__main__":
    main()
