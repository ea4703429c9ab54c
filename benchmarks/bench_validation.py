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
and validation on one core against the floor on one thread (CPU for CPU). Both ratios are printed.
Run: `python benchmarks/bench_validation.py --scales 1 10`.
"""
from __future__ import annotations

import argparse
import multiprocessing
import platform
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


def measure(landing: Path) -> dict:
    extracts = newest_extracts(landing)
    files = [(trust, kind, folder / spec.name) for trust, folder in extracts for kind, spec in FILES.items()
             if (folder / spec.name).exists()]
    raw = {p: p.read_bytes() for _, _, p in files}
    floor, rows = read_floor([p for _, _, p in files], threads=True)
    floor_one, _ = read_floor([p for _, _, p in files], threads=False)
    t0 = time.perf_counter()
    _TEXTS.clear()
    for trust, kind, p in files:
        try:
            _TEXTS[(trust, kind)] = read_text(raw[p], kind).frame
        except Exception:  # a rejected file: not validated further
            pass
    ingest = time.perf_counter() - t0
    trusts = [trust for trust, _ in extracts]
    t0 = time.perf_counter()
    held = sum(validate_trust(trust) for trust in trusts)
    validation = time.perf_counter() - t0
    by_size = sorted(trusts, key=lambda t: -sum(len(f) for (tr, _), f in _TEXTS.items() if tr == t))
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        pool.map(abs, range(WORKERS))  # the processes are up before the clock starts, as a run's workers are
        t0 = time.perf_counter()
        held_parallel = sum(pool.imap_unordered(validate_trust, by_size, chunksize=1))
        parallel = time.perf_counter() - t0
    assert held_parallel == held
    return {"rows": rows, "floor_s": floor, "floor_one_thread_s": floor_one, "ingest_s": ingest,
            "validation_s": validation, "validation_two_workers_s": parallel, "held": held}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print("| scale | rows | floor (2 threads / 1 thread) | ingest as text | validation (2 workers / 1 core) | "
          "x floor (2 workers / 1 core) | rows held back |")
    print("|---|---|---|---|---|---|---|")
    for scale in args.scales:
        with tempfile.TemporaryDirectory() as tmp:
            landing = Path(tmp, "landing")
            generate_landing(str(landing), scale, seed=0, dirty=True)
            m = measure(landing)
            print(f"| {scale:g} | {m['rows']:,} | {m['floor_s']:.2f} s / {m['floor_one_thread_s']:.2f} s | "
                  f"{m['ingest_s']:.2f} s | {m['validation_two_workers_s']:.2f} s / {m['validation_s']:.2f} s | "
                  f"{m['validation_two_workers_s'] / m['floor_s']:.1f}x / "
                  f"{m['validation_s'] / m['floor_one_thread_s']:.1f}x | {m['held']:,} |", flush=True)


if __name__ == "__main__":
    main()
