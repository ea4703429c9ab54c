"""Validate a trust's newest extract as soon as it lands, without running the split: the trust's fast feedback.

Used by `trp validate` and the `tr_extract_arrival` DAG. It checks the newest extract only (no fall-back:
the trust wants to know about what it just uploaded) and writes the same report, quarantine and warnings
files the nightly run gives, under `OUT/arrivals/<TRUST>/<extract date>/`.
"""
from __future__ import annotations

import pandas as pd

from pipeline.ingest import FileRejected
from pipeline.report import REPORT_FILE, render_report
from pipeline.storage import Store
from pipeline.trust_task import (QUARANTINE_COLUMNS, extract_dates, read_extract, rejected_file, rejected_results,
                                 write_csv)

LATEST = "9999-12-31"


def check_arrival(landing: str, trust: str, out: str | None = None, engine: str = "mirror") -> dict:
    """The newest extract's outcome: status VALIDATED, REJECTED or NO_EXTRACT, with counts and findings."""
    dates, _ = extract_dates(Store(landing), trust, LATEST)
    summary: dict = {"trust": trust, "extract_date": dates[0] if dates else None,
                     "newest_extract": dates[0] if dates else None, "rejected_files": [], "validation": []}
    if not dates:
        return {**summary, "status": "NO_EXTRACT", "quarantined_rows": 0, "warnings": 0}
    quarantine, warnings = [], []
    try:
        ex = read_extract(Store(landing), trust, dates[0], engine)
    except FileRejected as exc:
        quarantine = [rejected_file(exc, exc.file)]
        summary.update(rejected_files=quarantine, validation=rejected_results(exc, dates[0]), status="REJECTED")
    else:
        summary["validation"] = [{**r, "extract_date": dates[0]} for r in ex.results]
        summary.update(status="VALIDATED", notes=ex.notes)
        quarantine, warnings = ex.quarantine, ex.warnings
    summary.update(quarantined_rows=len(quarantine), warnings=len(warnings))
    if out is not None:
        store, folder = Store(out), ("arrivals", trust, dates[0])
        q = pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS)
        w = pd.DataFrame(warnings, columns=QUARANTINE_COLUMNS)
        write_csv(store, q, *folder, "quarantine.csv")
        write_csv(store, w, *folder, "warnings.csv")
        store.write_bytes(render_report(trust, dates[0], summary, q, w).encode("utf-8"), *folder, REPORT_FILE)
        summary["report"] = store.path(*folder, REPORT_FILE)
    return summary
