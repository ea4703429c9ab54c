"""Validate a trust's newest extract as soon as it lands, without running the split: the trust's fast feedback.

Used by `trp validate` and the `tr_extract_arrival` DAG. It checks the newest extract only (no fall-back:
the trust wants to know about what it just uploaded) and writes the same report, quarantine and warnings
files the nightly run gives, under `OUT/arrivals/<TRUST>/<extract date>/`.
"""

from __future__ import annotations

import json

import pandas as pd

from pipeline import layout
from pipeline.extracts.contract import FILES
from pipeline.extracts.csv_text import FileRejected
from pipeline.extracts.reading import QUARANTINE_COLUMNS, extract_dates, read_extract, rejected_file, rejected_results
from pipeline.extracts.trust_report import REPORT_FILE, render_report
from pipeline.outputs.operational import write_csv
from pipeline.policy import ExtractsPolicy
from pipeline.reference import load_reference
from pipeline.storage import Store

LATEST = "9999-12-31"
MARKER = "arrival.json"
MANDATORY = sorted(spec.name for spec in FILES.values() if spec.mandatory)


def fingerprint(landing: Store, trust: str, extract_date: str) -> dict[str, int]:
    """The files of an extract folder and their sizes: a changed or added file makes the extract new again."""
    return {
        k: v for k, v in landing.files(trust, extract_date).items() if not k.startswith(".")
    }  # an upload still being written


def pending_arrivals(landing: str, out: str) -> list[dict]:
    """Trusts whose newest extract has landed (both mandatory files there) and has no report for these bytes yet."""
    land, done = Store(landing), Store(out)
    pending = []
    for trust in load_reference().trust_codes:
        dates, _ = extract_dates(land, trust, LATEST)
        if not dates:
            continue
        files = fingerprint(land, trust, dates[0])
        if not set(MANDATORY) <= set(files):
            continue
        marker = (*layout.arrival(trust, dates[0]), MARKER)
        if done.exists(*marker) and json.loads(done.read_bytes(*marker))["files"] == files:
            continue
        pending.append({"trust": trust, "extract_date": dates[0]})
    return pending


def assess_extract(
    landing: str,
    trust: str,
    extract_date: str | None = None,
    limits: ExtractsPolicy = ExtractsPolicy(),
    replacing: dict[str, bytes] | None = None,
) -> dict:
    """The newest extract's outcome (or that of `extract_date`), with `replacing` (file name: bytes) in place of
    the landing zone's files: status VALIDATED, REJECTED or NO_EXTRACT, with counts, the rows held back
    (`held_back`; `quarantine` adds a rejected file's own line, as quarantine.csv lists it), the warnings and
    every expectation's result. Writes nothing."""
    land = Store(landing)
    dates, _ = extract_dates(land, trust, LATEST)
    if extract_date is not None:
        dates = [extract_date] if extract_date in dates or replacing else []
    summary: dict = {
        "trust": trust,
        "extract_date": dates[0] if dates else None,
        "newest_extract": dates[0] if dates else None,
        "rejected_files": [],
        "validation": [],
    }
    if not dates:
        return {
            **summary,
            "status": "NO_EXTRACT",
            "quarantined_rows": 0,
            "warnings": 0,
            "quarantine": [],
            "held_back": [],
            "warning_rows": [],
        }
    quarantine, warnings = [], []
    try:
        ex = read_extract(land, trust, dates[0], limits, replacing)
    except FileRejected as exc:
        quarantine = [rejected_file(exc, exc.file)] + exc.findings  # what to fix in a file mostly held back
        summary.update(
            rejected_files=quarantine[:1],
            validation=rejected_results(exc, dates[0]),
            status="REJECTED",
            quarantined_rows=len(exc.findings),
            held_back=exc.findings,
        )
    else:
        summary["validation"] = [{**r, "extract_date": dates[0]} for r in ex.results]
        summary.update(status="VALIDATED", notes=ex.notes, quarantined_rows=len(ex.quarantine), held_back=ex.quarantine)
        quarantine, warnings = ex.quarantine, ex.warnings
    summary.update(warnings=len(warnings), quarantine=quarantine, warning_rows=warnings)
    return summary


def write_arrival(out: str, landing: str, summary: dict) -> str:
    """The arrival report, quarantine and warnings of an assessed extract, under OUT/arrivals/<TRUST>/<date>/,
    and the marker naming the landed files it was made for; the report's path."""
    trust, date = summary["trust"], summary["extract_date"]
    store, folder = Store(out), layout.arrival(trust, date)
    q = pd.DataFrame(summary["quarantine"], columns=QUARANTINE_COLUMNS)
    w = pd.DataFrame(summary["warning_rows"], columns=QUARANTINE_COLUMNS)
    write_csv(store, q, *folder, "quarantine.csv")
    write_csv(store, w, *folder, "warnings.csv")
    store.write_bytes(render_report(trust, date, summary, q, w).encode("utf-8"), *folder, REPORT_FILE)
    marker = {
        "files": fingerprint(Store(landing), trust, date),
        "status": summary["status"],
        "quarantined_rows": summary["quarantined_rows"],
        "warnings": summary["warnings"],
    }
    store.write_bytes(json.dumps(marker, sort_keys=True).encode(), *folder, MARKER)
    return store.path(*folder, REPORT_FILE)


def check_arrival(
    landing: str,
    trust: str,
    out: str | None = None,
    extract_date: str | None = None,
    limits: ExtractsPolicy = ExtractsPolicy(),
) -> dict:
    """`assess_extract` of what has landed, and (with `out`) its arrival report written."""
    summary = assess_extract(landing, trust, extract_date, limits)
    if out is not None and summary["extract_date"] is not None:
        summary["report"] = write_arrival(out, landing, summary)
    return summary
