#!/usr/bin/env python3
"""Checks every peer binary in bench/peers/bin against the output contract.

  smoke.py                 every workload x peer at a tiny size (fast)
  smoke.py --default -k 3  default sizes, k runs each, peers alternated
                           within each round; prints medians

Exit status is non-zero if any output breaks the contract.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "bin")
PEERS = ["tokio", "go", "tbb", "uring"]
WORKLOADS = ["spawn_many", "spawn_remote", "yield_many", "ping_pong", "chained_spawn",
             "timers", "io_nop", "spawn_idle", "blocking_seq", "blocking_conc"]
TINY = ["--n", "1000", "--t", "10", "--y", "10", "--p", "10", "--r", "10", "--ops", "10000"]
EXTRA = {
    "timers": ["p50_late_ns", "p99_late_ns"],
    "spawn_idle": ["bytes_per_task", "baseline_rss", "peak_rss", "after_cancel_rss", "returned_pct"],
    "io_nop": ["ops_per_sec"],
}


def run(peer, workload, extra_args, timeout):
    exe = os.path.join(BIN, "weft-peer-" + peer)
    cmd = [exe, "--workload", workload, "--workers", "2"] + extra_args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = p.stdout.splitlines()
    problems = []
    if p.returncode != 0:
        problems.append("exit %d: %s" % (p.returncode, p.stderr.strip()[-300:]))
    if len(lines) != 1:
        problems.append("expected one stdout line, got %d" % len(lines))
        return None, problems
    try:
        d = json.loads(lines[0])
    except ValueError as e:
        return None, problems + ["bad JSON: %s" % e]
    if d.get("peer") != peer or d.get("workload") != workload:
        problems.append("peer/workload fields wrong")
    if "skipped" not in d:
        for k in ["workers", "ops", "ns_total", "ns_per_op"] + EXTRA.get(workload, []):
            if k not in d:
                problems.append("missing " + k)
    return d, problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--default", action="store_true", help="default sizes instead of tiny")
    ap.add_argument("-k", type=int, default=1, help="runs per peer and workload")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    o = ap.parse_args()
    peers = [p for p in o.peers.split(",") if os.access(os.path.join(BIN, "weft-peer-" + p), os.X_OK)]
    missing = set(o.peers.split(",")) - set(peers)
    for p in sorted(missing):
        print("not built: %s (run bench/peers/install.sh)" % p)
    args = [] if o.default else TINY
    bad = 0
    results = {}
    for w in o.workloads.split(","):
        for _ in range(o.k):
            for p in peers:  # alternate peers within each round
                d, problems = run(p, w, args, timeout=120)
                if problems:
                    bad += 1
                    print("FAIL %s %s: %s" % (p, w, "; ".join(problems)))
                    continue
                if "skipped" in d:
                    results[(p, w)] = None
                    continue
                results.setdefault((p, w), []).append(d)
                if not o.default:
                    print(json.dumps(d))
    print()
    print("%-14s %-6s %14s %12s  %s" % ("workload", "peer", "ns_total", "ns_per_op", "extra (medians)"))
    for w in o.workloads.split(","):
        for p in peers:
            runs = results.get((p, w))
            if runs is None:
                if (p, w) in results:
                    print("%-14s %-6s %14s" % (w, p, "skipped"))
                continue
            med = lambda k: statistics.median(r[k] for r in runs if r.get(k) is not None)
            extra = []
            for k in EXTRA.get(w, []):
                try:
                    extra.append("%s=%.4g" % (k, med(k)))
                except statistics.StatisticsError:
                    extra.append("%s=null" % k)
            print("%-14s %-6s %14d %12.2f  %s" % (w, p, med("ns_total"), med("ns_per_op"), " ".join(extra)))
    print("\n%d passed, %d failed" % (sum(len(v) for v in results.values() if v) +
                                      sum(1 for v in results.values() if v is None), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
