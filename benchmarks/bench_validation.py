"""Benchmark: what validation adds to a run, against the CSV-read floor, measured in the same process.

For each scale it generates a dirty landing zone (the faults real extracts have) and, over every trust's
newest extract, times
- the floor: pyarrow's CSV reader on every file (what any pipeline over these files must at least do);
- ingest as the run does it: decoding, parsing as text and line numbering (`read_text`), and
- validation: every suite, by the vectorised mirror (the nightly engine), references between files included.
Target (issue 4): validation adds no more than 2x the CSV-read floor at scale 10, on one core.
Run: `python benchmarks/bench_validation.py --scales 1 10`.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv

from pipeline.contract import FILES
from pipeline.generate import generate_landing
from pipeline.ingest import read_text
from pipeline.validation import QUARANTINE_ROW, reference_params, validate


def newest_extracts(landing: Path) -> list[tuple[str, Path]]:
    return [(t.name, max(d for d in t.iterdir() if d.is_dir())) for t in sorted(landing.iterdir()) if t.is_dir()]


def measure(landing: Path) -> dict:
    extracts = newest_extracts(landing)
    files = [(trust, kind, folder / spec.name) for trust, folder in extracts for kind, spec in FILES.items()
             if (folder / spec.name).exists()]
    raw = {p: p.read_bytes() for _, _, p in files}
    t0 = time.perf_counter()
    rows = sum(pacsv.read_csv(p).num_rows for _, _, p in files)
    floor = time.perf_counter() - t0
    t0 = time.perf_counter()
    texts = {}
    for trust, kind, p in files:
        try:
            texts[(trust, kind)] = read_text(raw[p], kind).frame
        except Exception:  # a rejected file: not validated further
            pass
    ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    held = 0
    for trust, _ in extracts:
        params: dict = {"trust": [trust]}
        for kind in FILES:
            if (trust, kind) not in texts:
                continue
            v = validate(kind, texts[(trust, kind)], params)
            held += len(v.rows(QUARANTINE_ROW))
            params.update(reference_params(kind, texts[(trust, kind)]))
    validation = time.perf_counter() - t0
    return {"rows": rows, "floor_s": floor, "ingest_s": ingest, "validation_s": validation, "held": held}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print("| scale | rows | CSV-read floor | ingest as text | validation | validation / floor | rows held back |")
    print("|---|---|---|---|---|---|---|")
    for scale in args.scales:
        with tempfile.TemporaryDirectory() as tmp:
            landing = Path(tmp, "landing")
            generate_landing(str(landing), scale, seed=0, dirty=True)
            m = measure(landing)
            print(f"| {scale:g} | {m['rows']:,} | {m['floor_s']:.2f} s | {m['ingest_s']:.2f} s | "
                  f"{m['validation_s']:.2f} s | {m['validation_s'] / m['floor_s']:.1f}x | {m['held']:,} |",
                  flush=True)


if __name__ == "__main__":
    main()
