"""Benchmark: `trp run` end to end at scale 1, 3 and 10 (how the cost grows with the work), beside the floor
measured in the same run.

Run with `make bench` (or `python benchmarks/bench_run.py --scales 1 3 10`). For each scale it generates a
clean landing zone, then times
- the floor: reading every newest extract CSV with pyarrow and writing it as Parquet (what any pipeline
  over these files must at least do), and
- `trp run` as a subprocess (start-up, imports and the Dask cluster included), sampling the resident memory
  of its whole process tree every 50 ms for the peak.
Per-stage seconds come from the run's manifest (worker seconds summed over trusts).
The floor and the run are measured `--repeat` times in turn (3 by default, each run into a fresh output
folder): on a shared VM one run's wall varies by 20%, so the medians are reported, with every pass.
Target: scale 10 under 3 GiB peak memory for the whole process tree. The floor is printed beside the wall
for scale; it is not a target (the work between reading and writing is the product's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.synthetic.landing import generate_landing

GIB = 1024**3


def floor_seconds(landing: Path, scratch: Path) -> tuple[float, int]:
    """pyarrow CSV read + Parquet write of the newest extract of every trust; returns seconds and rows."""
    rows = 0
    t0 = time.perf_counter()
    for trust in sorted(p for p in landing.iterdir() if p.is_dir()):
        newest = max(d for d in trust.iterdir() if d.is_dir())
        for f in sorted(newest.glob("*.csv")):
            opts = pacsv.ReadOptions(encoding="cp1252" if trust.name == "WPT" else "utf8")
            try:
                table = pacsv.read_csv(f, read_options=opts)
            except Exception:  # a file even pyarrow refuses (the dirty faults) still counts as read
                continue
            rows += table.num_rows
            pq.write_table(table, scratch / f"{trust.name}-{f.stem}.parquet")
    return time.perf_counter() - t0, rows


def timed_run(landing: Path, out: Path, run_date: str = "2014-06-01", *more: str) -> tuple[float, float, int]:
    """Wall seconds, peak resident memory of the whole process tree (bytes), exit code of `trp run`."""
    return timed_trp("run", "--landing", str(landing), "--out", str(out), "--run-date", run_date, *more)


def timed_trp(*args: str) -> tuple[float, float, int]:
    """Wall seconds, peak resident memory of the whole process tree (bytes), exit code of `trp <args>`."""
    env = {**os.environ, "TRP_PSEUDONYM_KEY": "benchmark-key"}
    cmd = [str(Path(sys.executable).with_name("trp")), *args]
    peak = 0
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    return wall, peak, code


def bench(scale: float, seed: int, repeat: int = 3) -> dict:
    with tempfile.TemporaryDirectory(prefix="trp-bench-") as tmp:
        root = Path(tmp)
        landing = root / "landing"
        t0 = time.perf_counter()
        counts = generate_landing(str(landing), scale, seed, dirty=False)
        generated = time.perf_counter() - t0
        passes = []
        for i in range(repeat):
            scratch, out = root / f"floor{i}", root / f"out{i}"
            scratch.mkdir()
            floor, rows = floor_seconds(landing, scratch)
            wall, peak, code = timed_run(landing, out)
            passes.append({"floor": floor, "wall": wall, "peak": peak, "code": code, "out": out})
        middle = sorted(passes, key=lambda p: p["wall"])[len(passes) // 2]
        floor = statistics.median(p["floor"] for p in passes)
        manifest = json.loads((middle["out"] / "published" / "_manifests" / "run_date=2014-06-01.json").read_text())
        stages: dict[str, float] = {}
        worker_peak = 0.0
        for t in manifest["trusts"].values():
            for k, v in t.get("seconds", {}).items():
                stages[k] = stages.get(k, 0.0) + v
            worker_peak = max(worker_peak, t.get("worker_peak_rss_mib", 0.0))
        wall = middle["wall"]
        return {
            "scale": scale,
            "cases": sum(counts.values()),
            "rows_uploaded": rows,
            "exit_code": max(p["code"] for p in passes),
            "generate_seconds": round(generated, 2),
            "floor_seconds": round(floor, 2),
            "run_wall_seconds": round(wall, 2),
            "x_floor": round(wall / floor, 2),
            "passes": [
                {"floor_seconds": round(p["floor"], 2), "run_wall_seconds": round(p["wall"], 2)} for p in passes
            ],
            "rows_per_second": round(rows / wall),
            "peak_memory_gib": round(max(p["peak"] for p in passes) / GIB, 2),
            "worker_peak_rss_mib": worker_peak,
            "worker_seconds_by_stage": {k: round(v, 2) for k, v in stages.items()},
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="passes of floor and run; medians are reported")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / GIB:.0f} GiB; Python {platform.python_version()}"
    )
    for scale in args.scales:
        r = bench(scale, args.seed, args.repeat)
        print(json.dumps(r), flush=True)
        if scale >= 10.0:
            print("scale 10 under 3 GiB peak:", "met" if r["peak_memory_gib"] < 3 else "MISSED")


if __name__ == "__main__":
    main()
