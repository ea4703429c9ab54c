"""Benchmark: the case alignment per side, at the scales given, one core, beside the LP relaxation's own time.

Run with `python benchmarks/bench_alignment.py --scales 1 10` (in `make bench`). In total: seconds, the
seconds and share of each step of the sides' solves (the LP relaxation, every plan's floor, among them),
how many sides were proven and by which method, the worst certified gap, and the slowest sides.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict

import pandas as pd

from pipeline.decisions import alignment
from pipeline.decisions.alignment import dealing, exact, relaxation
from pipeline.decisions.case_split import split_cases
from pipeline.decisions.staff_split import split_staff
from pipeline.policy import load_policy
from pipeline.reference import load_reference
from pipeline.synthetic.generator import generate_all

AS_OF = pd.Timestamp("2014-06-01")


# The steps of a side's solve, timed by wrapping them here (the alignment itself reads no clock).
STEPS = {
    "relaxation": "lp_relaxation",
    "relaxation with cuts": "cut_relaxation",
    "flow repair": "flow_repair",
    "exchange": "exchange_plan",
    "exact model": "solve_exact",
    "building the exact model": "exact_model",
    "overload check": "_overload_unavoidable",
    "dealing": "deal",
}
# A step is wrapped wherever the alignment's modules call it from (each binds the names it imports).
MODULES = [alignment, dealing, exact, relaxation]


def _timed(seconds: dict, name: str, fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - t

    return wrapper


def run(scale: float, seed: int) -> dict:
    reference, policy = load_reference(), load_policy()
    steps: dict[str, float] = defaultdict(float)
    side_seconds: list[float] = []
    originals = {name: next(getattr(m, attr) for m in MODULES if hasattr(m, attr)) for name, attr in STEPS.items()}
    solve_side = alignment._solve_side
    for name, attr in STEPS.items():
        wrapped = _timed(steps, name, originals[name])
        for m in MODULES:
            if hasattr(m, attr):
                setattr(m, attr, wrapped)

    def timed_side(*args, **kwargs):
        t = time.perf_counter()
        report = solve_side(*args, **kwargs)
        side_seconds.append(time.perf_counter() - t)
        sides.append(
            {
                "trust": trust,
                "side": report.side,
                "method": report.method,
                "proven": report.proven,
                "seconds": round(side_seconds[-1], 3),
            }
        )
        return report

    alignment._solve_side = timed_side
    sides, total, reports_all = [], 0.0, []
    try:
        for e in generate_all(reference, scale, seed):
            trust = e.trust_code
            nps_unit, crc_unit = reference.units_of(e.trust_code)
            split = split_cases(e.cases, policy)
            staff = split_staff(e.staff, split, e.appeals, policy, nps_unit, crc_unit)
            t = time.perf_counter()
            _, reports = alignment.align_cases(split, staff, e.retention_requests, policy, AS_OF)
            total += time.perf_counter() - t
            reports_all += reports
    finally:
        for name, attr in STEPS.items():
            for m in MODULES:
                if hasattr(m, attr):
                    setattr(m, attr, originals[name])
        alignment._solve_side = solve_side
    gaps = [r.gap or 0.0 for r in reports_all]
    return {
        "scale": scale,
        "seed": seed,
        "total_seconds": round(total, 2),
        "seconds_by_step": {k: round(v, 2) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
        "share_by_step": {k: round(v / total, 3) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
        "lp_relaxation_seconds": round(steps["relaxation"], 2),
        "sides": len(reports_all),
        "proven": sum(r.proven for r in reports_all),
        "methods": {m: sum(r.method == m for r in reports_all) for m in sorted({r.method for r in reports_all})},
        "worst_certified_gap": round(max(gaps), 5),
        "slowest_sides": sorted(sides, key=lambda s: -s["seconds"])[:5],
    }


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
