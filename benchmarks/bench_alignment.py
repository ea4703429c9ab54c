"""Benchmark: the case alignment per side, at the scales given, one core, beside the LP relaxation's own time.

Run with `python benchmarks/bench_alignment.py --scales 1 10` (in `make bench`). For every side: the method,
seconds, and whether the plan is proven; in total: seconds, the share spent in each method's sides, and the
time the LP relaxations alone take on the same sides (the floor: every side needs one).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict

import numpy as np
import pandas as pd

from pipeline.decisions import alignment
from pipeline.decisions.case_split import split_cases
from pipeline.decisions.staff_split import split_staff
from pipeline.policy import load_policy
from pipeline.reference import load_reference
from pipeline.synthetic import generate_all
from pipeline.text import arrow_text, sorted_by

AS_OF = pd.Timestamp("2014-06-01")


def _relaxations(split: pd.DataFrame, staff: pd.DataFrame, retention: pd.DataFrame, policy) -> float:
    """Seconds the LP relaxations of the trust's sides take alone."""
    cases = sorted_by(split, "crn").reset_index(drop=True)
    roster = alignment.Roster.of_staff(staff, policy, AS_OF, arrow_text(cases["team_code"]))
    held = retention.loc[retention["status"].isin(alignment.HOLDING_STATUSES), "crn"].drop_duplicates()
    arrays = alignment.CaseArrays.of(cases, cases["om_staff_code"], roster)
    problems, *_ = alignment._classify(cases["crn"], arrays, roster, held, np.zeros(len(cases), dtype=bool))
    t = time.perf_counter()
    for side in problems.values():
        if not side.empty and len(side.officers):
            alignment._relaxation(side, policy)
    return time.perf_counter() - t


def run(scale: float, seed: int) -> dict:
    reference, policy = load_reference(), load_policy()
    sides, by_method, lp_seconds = [], defaultdict(float), 0.0
    for e in generate_all(reference, scale, seed):
        nps_unit, crc_unit = reference.units_of(e.trust_code)
        split = split_cases(e.cases, policy)
        staff = split_staff(e.staff, split, e.appeals, policy, nps_unit, crc_unit)
        lp_seconds += _relaxations(split, staff, e.retention_requests, policy)
        t = time.perf_counter()
        _, reports = alignment.align_cases(split, staff, e.retention_requests, policy, AS_OF)
        seconds = time.perf_counter() - t
        for r in reports:
            share = seconds / len(reports)  # a trust's sides are solved in one call: its time split evenly
            by_method[r.method] += share
            sides.append({"trust": e.trust_code, "side": r.side, "method": r.method, "seconds": round(share, 3),
                          "proven": r.proven, "gap": r.gap})
    total = sum(by_method.values())
    return {"scale": scale, "seed": seed, "total_seconds": round(total, 2), "lp_relaxation_seconds": round(lp_seconds, 2),
            "share_by_method": {m: round(v / total, 3) for m, v in sorted(by_method.items())},
            "sides": len(sides), "proven": sum(s["proven"] for s in sides),
            "worst_gap": max((s["gap"] or 0.0) for s in sides),
            "slowest": sorted(sides, key=lambda s: -s["seconds"])[:5]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0])
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.python_version()}; floor: the LP relaxations alone")
    for s in args.scales:
        print(json.dumps(run(s, args.seed)))


if __name__ == "__main__":
    main()
