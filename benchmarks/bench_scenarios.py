"""Benchmark: a scenario set of 4 variants (`trp scenarios`) beside one `trp run` of the same night, timed in
turn in the same process on the national synthetic set (scale 1, seed 11, dirty).

Run with `python benchmarks/bench_scenarios.py` (`--repeat`, `--scale`). Both start from an empty output
root (the first night), as subprocesses: start-up, imports and the Dask cluster included; medians of the
passes are reported. Target: the set of 4 variants (5 decisions per trust: the base and 4) costs at most
1.5x one run, the validation being shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_run import GIB, timed_run, timed_trp  # noqa: E402

from pipeline.synthetic.landing import generate_landing  # noqa: E402

VARIANTS = {
    "capacity_110": {"purpose": "capacity moves only above 110%", "set": {"alignment.capacity_limit_pct": 110}},
    "capacity_125": {"purpose": "capacity moves only above 125%", "set": {"alignment.capacity_limit_pct": 125}},
    "custody_to_nps": {"purpose": "custody cases go to the NPS", "set": {"case_split.enabled.CUSTODY": True}},
    "teams_free": {"purpose": "a change of team costs nothing", "set": {"alignment.cost_team_change": 0}},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / GIB:.0f} GiB; Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="trp-bench-") as tmp:
        root = Path(tmp)
        landing = root / "landing"
        counts = generate_landing(str(landing), args.scale, args.seed, dirty=True)
        scenarios = root / "scenarios.yaml"
        scenarios.write_text(yaml.safe_dump({"scenarios": VARIANTS}, sort_keys=False))
        runs, sets = [], []
        for i in range(args.repeat):
            runs.append(timed_run(landing, root / f"run{i}"))
            sets.append(
                timed_trp(
                    "scenarios",
                    *("--landing", str(landing), "--out", str(root / f"set{i}")),
                    *("--run-date", "2014-06-01", "--scenarios", str(scenarios)),
                )
            )
        run, scenario_set = statistics.median(r[0] for r in runs), statistics.median(s[0] for s in sets)
        result = {
            "scale": args.scale,
            "cases": sum(counts.values()),
            "variants": len(VARIANTS),
            "run_wall_seconds": round(run, 2),
            "scenarios_wall_seconds": round(scenario_set, 2),
            "x_one_run": round(scenario_set / run, 2),
            "passes": [{"run": round(r[0], 2), "scenarios": round(s[0], 2)} for r, s in zip(runs, sets)],
            "exit_codes": sorted({r[2] for r in runs} | {s[2] for s in sets}),
            "peak_memory_gib": {
                "run": round(max(r[1] for r in runs) / GIB, 2),
                "scenarios": round(max(s[1] for s in sets) / GIB, 2),
            },
        }
        print(json.dumps(result), flush=True)
        failed = [code for code in result["exit_codes"] if code not in (0, 3)]  # 3: a trust not fresh (dirty set)
        if failed:
            print("a run or the scenario set FAILED (exit codes", failed, "): the times are not comparable")
        else:
            print("4 variants within 1.5x one run:", "met" if result["x_one_run"] <= 1.5 else "MISSED")


if __name__ == "__main__":
    main()
