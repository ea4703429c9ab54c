"""The published datasets: their names, and a trust's partition of each, pseudonymised, staged for the commit."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import layout
from pipeline.publishing.pseudonyms import Pseudonyms
from pipeline.storage import Store


def write_parquet(store: Store, df: pd.DataFrame, *parts: str) -> None:
    """A published dataset's partition, zstd-compressed: the pseudonyms (32 hex digits) defeat snappy, and
    zstd writes them faster and smaller (docs/performance.md, "Levers")."""
    write_table(
        store, pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False), *parts, compression="zstd"
    )


def write_table(store: Store, table: pa.Table, *parts: str, **options) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf, **options)
    store.write_bytes(buf.getvalue(), *parts)


VALIDATION_COLUMNS = (
    "extract_date",
    "file",
    "expectation",
    "rule",
    "column",
    "on_fail",
    "success",
    "unexpected_count",
    "message",
)


def stage_validation(out: Store, run_id: str, trust: str, run_date: str, results: list[dict]) -> None:
    """Every expectation's result for the trust, as its partition of the `validation` dataset."""
    df = pd.DataFrame(results, columns=list(VALIDATION_COLUMNS)).rename(columns={"on_fail": "severity"})
    df = df.astype({"success": bool, "unexpected_count": "int64"})
    write_parquet(out, df, *layout.staged_partition(run_id, "validation", run_date, trust))


def stage_datasets(
    out: Store, run_id: str, trust: str, run_date: str, d, pseudonym_key: bytes, units_per_point: int
) -> None:
    """A trust's decisions `d` as its partition of each published dataset, staff codes and CRNs pseudonymised."""
    staff_id, case_id = Pseudonyms(pseudonym_key, f"staff:{trust}"), Pseudonyms(pseudonym_key, "crn")

    s, a, r = d.staff_assignment, d.case_alignment, d.retention_decisions
    staff, current_om, om, caseload, requested_by = staff_id.many(
        s["staff_code"], a["current_om"], a["om"], d.caseload["staff_code"], r["requested_by"]
    )
    datasets = {
        "staff_assignment": pd.DataFrame(
            {
                "staff_id": staff,
                "grade": s["grade"],
                "role": s["role"],
                "team_code": s["team_code"],
                "fte": s["fte"],
                "side": s["side"],
                "unit": s["unit"],
                "reason": s["reason"],
                "guaranteed": s["guaranteed"],
                "assigned_on": pd.to_datetime(s["assigned_on"]).dt.date,
            }
        ),
        "case_alignment": pd.DataFrame(
            {
                "case_id": case_id(a["crn"]),
                "team_code": a["team_code"],
                "side": a["side"],
                "rule": a["rule"],
                "case_class": a["case_class"],
                "weight": a["weight_units"] / units_per_point,
                "current_om_id": current_om,
                "om_id": om,
                "moved": a["moved"],
                "reason": a["reason"],
                "team_change": a["team_change"],
                "planned_on": pd.to_datetime(a["planned_on"]).dt.date,
                "replanned": a["replanned"],
            }
        ),
        "caseload": d.caseload.assign(om_id=caseload).drop(columns="staff_code"),
        "workforce_balance": d.workforce_balance,
        "retention_requests": pd.DataFrame(
            {
                "case_id": case_id(r["crn"]),
                "requested_by_id": requested_by,
                **{c: r[c] for c in ("reason", "status", "outcome", "case_reason")},
            }
        ).astype("string"),
        "progress": d.progress,
    }
    for name, df in datasets.items():
        write_parquet(out, df, *layout.staged_partition(run_id, name, run_date, trust))
