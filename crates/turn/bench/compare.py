#!/usr/bin/env python3
"""Ours vs coturn from turn.sh's results: medians per scenario and ratios."""
import glob
import json
import os
import statistics
import sys


def runs(out, server):
    by = {}
    for path in glob.glob(os.path.join(out, server, "*", "runs.jsonl")):
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                if "window" in r:
                    by.setdefault(r["scenario"], []).append(r)
    return by


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def figures(rs):
    w = [r["window"] for r in rs]
    start = [r.get("server_rss_kb_start") for r in rs]
    peak = [r.get("server_rss_kb_hwm") or r.get("server_rss_kb_max_sampled") for r in rs]
    per_alloc = [
        (p - s) / r["sessions"] for r, s, p in zip(rs, start, peak) if s and p and r.get("sessions")
    ]
    return {
        "runs": len(rs),
        "pkts_s": med([x["relayed_pkts_per_s"] for x in w]),
        "per_cpu": med([x["relayed_pkts_per_server_cpu_s"] for x in w]),
        "cpu": med([x["server_cpu_pct"] for x in w]),
        "loss": med([x["loss_pct"] for x in w]),
        "other": med([x["other_cpu_pct"] for x in w]),
        "rss_peak": med(peak),
        "kb_per_alloc": med(per_alloc),
    }


def fmt(x, nd=0):
    return "-" if x is None else f"{x:,.{nd}f}"


def main():
    out = sys.argv[1]
    ours, coturn = runs(out, "ours"), runs(out, "coturn")
    print("| scenario | server | runs | relayed pkts/s | server CPU % | relayed pkts per server CPU-s | loss % "
          "| other CPU % | RSS peak MiB | RSS growth KiB per allocation |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for sc in sorted(set(ours) | set(coturn)):
        got = {}
        for name, by in (("coturn", coturn), ("realtimer", ours)):
            if sc not in by:
                continue
            f = figures(by[sc])
            got[name] = f
            print(f"| {sc} | {name} | {f['runs']} | {fmt(f['pkts_s'])} | {fmt(f['cpu'], 1)} | {fmt(f['per_cpu'])} "
                  f"| {fmt(f['loss'], 2)} | {fmt(f['other'], 1)} | {fmt(f['rss_peak'] and f['rss_peak'] / 1024, 1)} "
                  f"| {fmt(f['kb_per_alloc'], 1)} |")
        if "coturn" in got and "realtimer" in got and got["coturn"]["per_cpu"]:
            ratios.append((sc, got["realtimer"]["per_cpu"] / got["coturn"]["per_cpu"],
                           (got["realtimer"]["pkts_s"] or 0) / (got["coturn"]["pkts_s"] or 1)))
    print()
    for sc, per_cpu, rate in ratios:
        print(f"{sc}: realtimer / coturn = {per_cpu:.2f}x relayed packets per server CPU-second, {rate:.2f}x packets/s")
    print("\nrelayed pkts = 2 per delivered message (client -> relay -> peer and back). CPU % of one core.")


if __name__ == "__main__":
    main()
