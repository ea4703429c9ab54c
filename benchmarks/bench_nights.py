"""Benchmark: what a night with state costs beside a first night, and how the outputs grow night by night.

Run with `python benchmarks/bench_nights.py --scales 1 10` (part of `make bench`). For each scale it
generates a clean landing zone, runs its first night (no earlier state: every person split, every case
planned from scratch), moves the extracts on one night as `trp simulate` does, and runs the second night
(staff and plan read back and held), each as `trp run` in a subprocess; then once more the other way round
(the first night run again into fresh outputs) so that both are timed twice, alternating. Reported: the
medians, the ratio (target: a night with state at most 10% over a first night), the decide stage's
worker-seconds of each (where the state is read and applied), and the bytes OUT grows by per night.
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

sys.path.insert(0, str(Path(__file__).parent))
from bench_run import timed_run  # noqa: E402

from pipeline.synthetic.landing import generate_landing  # noqa: E402
from pipeline.synthetic.simulate import NightRates, next_night  # noqa: E402

FIRST, SECOND = "2014-06-01", "2014-06-02"


def trp_run(landing: Path, out: Path, date: str) -> float:
    wall, _, code = timed_run(landing, out, date)
    assert code == 0, f"trp run {date} exit {code}"
    return wall


def decide_seconds(out: Path, date: str) -> float:
    manifest = json.loads((out / "published" / "_manifests" / f"run_date={date}.json").read_text())
    return sum(t.get("seconds", {}).get("decide", 0.0) for t in manifest["trusts"].values())


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench(scale: float, seed: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="trp-bench-nights-") as tmp:
        root = Path(tmp)
        landing = root / "landing"
        generate_landing(str(landing), scale, seed)
        first, second, decide_first, decide_second, growth = [], [], [], [], []
        for i in range(repeat):
            out = root / f"out{i}"
            first.append(trp_run(landing, out, FIRST))
            decide_first.append(decide_seconds(out, FIRST))
            after_first = size(out)
            if i == 0:
                next_night(str(landing), str(out), SECOND, FIRST, 1, seed, NightRates())
            second.append(trp_run(landing, out, SECOND))
            decide_second.append(decide_seconds(out, SECOND))
            growth.append(size(out) - after_first)
        a, b = statistics.median(first), statistics.median(second)
        return {
            "scale": scale,
            "first_night_seconds": round(a, 2),
            "night_with_state_seconds": round(b, 2),
            "ratio": round(b / a, 3),
            "passes": [[round(x, 2), round(y, 2)] for x, y in zip(first, second)],
            "decide_worker_seconds": [
                round(statistics.median(decide_first), 2),
                round(statistics.median(decide_second), 2),
            ],
            "out_growth_mib_per_night": round(statistics.median(growth) / (1 << 20), 1),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    for scale in args.scales:
        result = bench(scale, args.seed, args.repeat)
        print(json.dumps(result))
        print(
            f"scale {scale:g}: a night with state at {result['ratio']:.0%} of a first night "
            f"(target at most 110%): {'met' if result['ratio'] <= 1.10 else 'missed'}"
        )


if __name__ == "__main__":
    main()
