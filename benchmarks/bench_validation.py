"""Benchmark: what validation adds to a run, against the CSV-read floor, measured in the same process.

For each scale it generates a dirty landing zone (the faults real extracts have) and, over every trust's
newest extract, times
- the floor: pyarrow's CSV reader on every file (what any pipeline over these files must at least do), with
  its threads (it uses both cores) and on one thread;
- ingest as the run does it: decoding, parsing as text and line numbering (`read_text`), and
- validation: every suite, by the vectorised mirror (the nightly engine), references between files
  included: on one core, and spread over two processes as the run spreads trusts over its two workers
  (largest trust first; each process holds the parsed files already, as a worker does after reading them).
Target (issue 4): validation adds no more than 2x the CSV-read floor to the run at scale 10. Judged like for
like: validation on the run's two workers against the floor's two threads (what it adds to a run's wall),
and validation on one core against the floor on one thread (CPU for CPU). Both ratios are printed. Each
timing is the median of `--repeats` (3) passes, the floor's and validation's interleaved.
Run: `python benchmarks/bench_validation.py --scales 1 10`.
"""
from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv

from pipeline.contract import FILES
from pipeline.generate import generate_landing
from pipeline.ingest import read_text
from pipeline.validation import QUARANTINE_ROW, reference_params, validate

WORKERS = 2
_TEXTS: dict = {}  # parsed files, inherited by the forked processes


def newest_extracts(landing: Path) -> list[tuple[str, Path]]:
    return [(t.name, max(d for d in t.iterdir() if d.is_dir())) for t in sorted(landing.iterdir()) if t.is_dir()]


def validate_trust(trust: str) -> int:
    """Every file of one trust's extract, in the run's order; the rows held back."""
    held, params = 0, {"trust": [trust]}
    for kind in FILES:
        if (trust, kind) not in _TEXTS:
            continue
        v = validate(kind, _TEXTS[(trust, kind)], params)
        held += len(v.rows(QUARANTINE_ROW))
        params.update(reference_params(kind, _TEXTS[(trust, kind)]))
    return held


def read_floor(files: list[Path], threads: bool) -> tuple[float, int]:
    t0 = time.perf_counter()
    rows = sum(pacsv.read_csv(p, read_options=pacsv.ReadOptions(use_threads=threads)).num_rows for p in files)
    return time.perf_counter() - t0, rows


def measure(landing: Path, repeats: int = 3) -> dict:
    """Each timing the median of `repeats` passes, the floor's and validation's interleaved, so that both
    see the machine in the same state (on this shared machine one pass varies by 20-30%)."""
    extracts = newest_extracts(landing)
    files = [(trust, kind, folder / spec.name) for trust, folder in extracts for kind, spec in FILES.items()
             if (folder / spec.name).exists()]
    paths = [p for _, _, p in files]
    raw = {p: p.read_bytes() for p in paths}
    t0 = time.perf_counter()
    _TEXTS.clear()
    for trust, kind, p in files:
        try:
            _TEXTS[(trust, kind)] = read_text(raw[p], kind).frame
        except Exception:  # a rejected file: not validated further
            pass
    ingest = time.perf_counter() - t0
    trusts = [trust for trust, _ in extracts]
    by_size = sorted(trusts, key=lambda t: -sum(len(f) for (tr, _), f in _TEXTS.items() if tr == t))
    times: dict[str, list[float]] = {"floor_s": [], "floor_one_thread_s": [], "validation_s": [],
                                     "validation_two_workers_s": []}
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        pool.map(abs, range(WORKERS))  # the processes are up before the clock starts, as a run's workers are
        for _ in range(repeats):
            floor, rows = read_floor(paths, threads=True)
            times["floor_s"].append(floor)
            times["floor_one_thread_s"].append(read_floor(paths, threads=False)[0])
            t0 = time.perf_counter()
            held = sum(validate_trust(trust) for trust in trusts)
            times["validation_s"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            held_parallel = sum(pool.imap_unordered(validate_trust, by_size, chunksize=1))
            times["validation_two_workers_s"].append(time.perf_counter() - t0)
            assert held_parallel == held
    return {"rows": rows, "ingest_s": ingest, "held": held, **{k: statistics.median(v) for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--repeats", type=int, default=3, help="passes per timing (the median is printed)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print("| scale | rows | floor (2 threads / 1 thread) | ingest as text | validation (2 workers / 1 core) | "
          "x floor (2 workers / 1 core) | rows held back |")
    print("|---|---|---|---|---|---|---|")
    for scale in args.scales:
        with tempfile.TemporaryDirectory() as tmp:
            landing = Path(tmp, "landing")
            generate_landing(str(landing), scale, seed=0, dirty=True)
            m = measure(landing, args.repeats)
            print(f"| {scale:g} | {m['rows']:,} | {m['floor_s']:.2f} s / {m['floor_one_thread_s']:.2f} s | "
                  f"{m['ingest_s']:.2f} s | {m['validation_two_workers_s']:.2f} s / {m['validation_s']:.2f} s | "
                  f"{m['validation_two_workers_s'] / m['floor_s']:.1f}x / "
                  f"{m['validation_s'] / m['floor_one_thread_s']:.1f}x | {m['held']:,} |", flush=True)


if __name__ == "__main__":
    main()
