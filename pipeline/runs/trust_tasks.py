"""One trust's nightly work, run on a Dask worker: pick the extract, check it, decide, stage the outputs.

Idempotent: everything is written under the run's staging folder keyed by run id and trust, so a retried
task overwrites its own files and nothing else. Returns a small summary, never a frame.
"""

from __future__ import annotations

import gc
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import layout
from pipeline.decisions.engine import TrustDecisions, decide_trust
from pipeline.extracts.contract import FILES
from pipeline.extracts.csv_text import FileRejected
from pipeline.extracts.reading import (
    LINE,
    QUARANTINE_COLUMNS,
    extract_dates,
    read_extract,
    rejected_file,
    rejected_results,
)
from pipeline.extracts.trust_report import REPORT_FILE, render_report
from pipeline.extracts.validation import cross_trust_result
from pipeline.outputs.operational import read_csv, write_csv, write_operational
from pipeline.outputs.readme import TRUST_README, trust_readme
from pipeline.policy import Policy
from pipeline.publishing.data_docs import stage_results
from pipeline.publishing.datasets import stage_datasets, stage_validation, write_table
from pipeline.runs.planning import TrustJob
from pipeline.runs.previous_state import previous_state
from pipeline.storage import Store


def _stage_typed(out: Store, job: TrustJob, kind: str, table: pa.Table) -> None:
    """A trust's accepted rows of one file, staged for its decisions and the run-wide CRN check: without
    statistics (read whole, never filtered) and without a dictionary for the file's key and the line numbers,
    which differ in every row (the writer would build one and drop it). LZ4, not snappy: as fast to write,
    as small, and quicker to read back."""
    distinct = {FILES[kind].key, LINE}
    write_table(
        out,
        table,
        *_typed_path(job, kind),
        write_statistics=False,
        compression="lz4",
        use_dictionary=[c for c in table.column_names if c not in distinct],
    )


def _peak_rss_mib() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _operational(job: TrustJob) -> tuple[str, ...]:
    return layout.staged_operational(job.run_id, job.trust, job.run_date)


def _typed_path(job: TrustJob, kind: str) -> tuple[str, ...]:
    return layout.staged_extract(job.run_id, job.trust, kind)


@contextmanager
def _few_collections() -> Iterator[None]:
    """Run a task with Python's cyclic garbage collector at a young collection every 50,000 allocations, not
    700, then restore it. The tasks make millions of short-lived containers and few cycles, so the default
    thresholds spend their time collecting nothing."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@_few_collections()
def ingest_trust(job: TrustJob) -> dict:
    """Phase 1: pick the trust's newest usable extract and validate it; stage its accepted rows.

    A rejected extract falls back to the next older one (CARRIED_OVER), else the trust is REJECTED (or
    NO_EXTRACT). Its quarantined rows and warnings go to the staged operational folder; the summary's
    `validation` holds every expectation's result, for the run to publish (not for the manifest).
    """
    t0 = time.perf_counter()
    landing, out = Store(job.landing), Store(job.out)
    dates, odd = extract_dates(landing, job.trust, job.run_date)
    rejections, results, ex = [], [], None
    for date in dates:
        try:
            ex = read_extract(landing, job.trust, date, job.extract_limits)
        except FileRejected as exc:
            rejections.append(rejected_file(exc, f"{date}/{exc.file}"))
            results.extend(rejected_results(exc, date))
            stage_results(out, job.run_id, job.trust, date, exc.gx)
            continue
        results.extend({**r, "extract_date": date} for r in ex.results)
        stage_results(out, job.run_id, job.trust, date, ex.gx)
        break
    summary = {
        "trust": job.trust,
        "extract_date": ex.date if ex else None,
        "newest_extract": dates[0] if dates else None,
        "odd_folders": odd,
        "rejected_files": rejections,
        "validation": results,
    }
    quarantine = rejections + (ex.quarantine if ex else [])
    write_csv(out, pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS), *_operational(job), "quarantine.csv")
    out.write_bytes(trust_readme(job.trust, job.run_date).encode("utf-8"), *_operational(job), TRUST_README)
    write_csv(
        out, pd.DataFrame(ex.warnings if ex else [], columns=QUARANTINE_COLUMNS), *_operational(job), "warnings.csv"
    )
    if ex is None:
        summary.update(status="REJECTED" if dates else "NO_EXTRACT", quarantined_rows=0)  # files, not rows
    else:
        for kind, table in ex.typed.items():
            _stage_typed(out, job, kind, table)
        summary.update(
            status="FRESH" if ex.date == dates[0] else "CARRIED_OVER",
            input_sha256=ex.hashes,
            notes=ex.notes,
            quarantined_rows=len(ex.quarantine),
            warnings=len(ex.warnings),
            accepted_rows={k: v.num_rows for k, v in ex.typed.items()},
        )
    summary["seconds"] = {"ingest": round(time.perf_counter() - t0, 3)}
    return summary


def staged_crns(job: TrustJob) -> pa.Table:
    """The CRNs (and their lines) a trust's accepted extract holds, for the cross-trust check."""
    raw = Store(job.out).read_bytes(*_typed_path(job, "cases"))
    return pq.read_table(io.BytesIO(raw), columns=["crn", LINE])


def decide_staged(job: TrustJob, policy: Policy, ingested: dict) -> tuple[TrustDecisions, dict, str | None]:
    """A trust's four decisions from its staged accepted rows and what the nights before decided: the
    decisions, the typed tables they were made from, and the date of the plan they started from. The nightly
    run and each policy scenario decide through here, so a scenario decides as a run with its policy would."""
    out = Store(job.out)
    tables = {kind: pq.read_table(io.BytesIO(out.read_bytes(*_typed_path(job, kind)))) for kind in FILES}
    typed = {
        kind: t.drop_columns([c for c in (LINE,) if c in t.column_names]).to_pandas() for kind, t in tables.items()
    }
    state = previous_state(out, job.trust, job.run_date)
    d = decide_trust(
        typed["staff"],
        typed["cases"],
        typed["retention_requests"],
        typed["appeals"],
        policy,
        job.nps_unit,
        job.crc_unit,
        pd.Timestamp(ingested["extract_date"]),
        state.plan,
        state.staff,
        pd.Timestamp(job.run_date),
        typed["reductions"],
    )
    return d, typed, state.date


@_few_collections()
def decide_and_stage(job: TrustJob, policy: Policy, ingested: dict) -> dict:
    """Phase 2a: read the trust's staged accepted rows back, run the four decisions, stage both zones'
    outputs. It needs nothing from the other trusts, so it can start as soon as this trust is ingested.
    Facts and stage seconds; empty when the trust has no usable extract."""
    if ingested["extract_date"] is None:
        return {}
    out = Store(job.out)
    t1 = time.perf_counter()
    d, typed, previous = decide_staged(job, policy, ingested)
    t2 = time.perf_counter()
    write_operational(out, _operational(job), d, typed)
    stage_datasets(out, job.run_id, job.trust, job.run_date, d, job.pseudonym_key, job.units_per_point)
    a = d.case_alignment
    facts = dict(
        cases=int(len(a)),
        staff=int(len(d.staff_assignment)),
        moved=int(a["moved"].sum()),
        nps_cases=int((a["side"] == "NPS").sum()),
        nps_staff=int((d.staff_assignment["side"] == "NPS").sum()),
        over_capacity=int(d.caseload["over_capacity"].sum()),
        solver=[
            {
                "side": r.side,
                "method": r.method,
                "objective": r.objective,
                "bound": r.bound,
                "gap": r.gap,
                "proven": r.proven,
                "overload_unavoidable": r.overload_unavoidable,
                "over_capacity": int(d.caseload.loc[d.caseload["side"] == r.side, "over_capacity"].sum()),
            }
            for r in d.solver
        ],
        previous_plan=previous,
    )
    return {"facts": facts, "seconds": {"decide": round(t2 - t1, 3), "write": round(time.perf_counter() - t2, 3)}}


@_few_collections()
def report_trust(job: TrustJob, ingested: dict, decided: dict, conflicts: list[dict] | None = None) -> dict:
    """Phase 2b, once every trust is ingested: add the findings the trust's own files could not show (a CRN
    also in another trust's extract: a warning, the case is still aligned by both trusts), then stage the
    trust's validation results and write its validation report. The trust's summary for the manifest."""
    out = Store(job.out)
    summary = {**ingested, "seconds": dict(ingested["seconds"])}
    conflicts = conflicts or []
    if conflicts:
        warnings = read_csv(out, *_operational(job), "warnings.csv")
        rows = pd.DataFrame(conflicts, columns=QUARANTINE_COLUMNS)
        write_csv(out, pd.concat([warnings, rows], ignore_index=True), *_operational(job), "warnings.csv")
        summary["warnings"] = summary.get("warnings", 0) + len(conflicts)
    if summary["extract_date"] is not None:
        summary["validation"] = summary["validation"] + [cross_trust_result(summary["extract_date"], len(conflicts))]
        summary["crn_conflicts"] = len(conflicts)
        summary.update(decided["facts"])
        summary["seconds"].update(decided["seconds"])
    t2 = time.perf_counter()
    stage_validation(out, job.run_id, job.trust, job.run_date, summary["validation"])
    out.write_bytes(
        render_report(
            job.trust,
            job.run_date,
            summary,
            read_csv(out, *_operational(job), "quarantine.csv"),
            read_csv(out, *_operational(job), "warnings.csv"),
        ).encode("utf-8"),
        *_operational(job),
        REPORT_FILE,
    )
    summary["seconds"]["report"] = round(time.perf_counter() - t2, 3)
    summary["worker_peak_rss_mib"] = _peak_rss_mib()
    return summary
