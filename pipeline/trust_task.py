"""One trust's nightly work, run on a Dask worker: pick the extract, check it, decide, stage the outputs.

Idempotent: everything is written under the run's staging folder keyed by run id and trust, so a retried
task overwrites its own files and nothing else. Returns a small summary, never a frame.
"""
from __future__ import annotations

import hmac
import io
import re
import time
from dataclasses import dataclass
from hashlib import sha256

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract import FILES, check_rows, to_typed
from pipeline.decisions.engine import decide_trust
from pipeline.ingest import FileRejected, read_text
from pipeline.policy import Policy
from pipeline.storage import Store

DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
QUARANTINE_COLUMNS = ["file", "line", "column", "rule", "message", "value"]


@dataclass(frozen=True)
class TrustJob:
    trust: str
    nps_unit: str
    crc_unit: str
    landing: str
    out: str
    run_id: str
    run_date: str
    pseudonym_key: bytes
    units_per_point: int


def pseudonyms(key: bytes, kind: str, values: pd.Series) -> pd.Series:
    """Keyed pseudonyms (HMAC-SHA256 of "kind:value", first 128 bits in hex) of a column; nulls stay null.

    Stable across runs for one key and unlinkable without it; computed once per distinct value."""
    base = hmac.new(key, digestmod=sha256)

    def one(value: str) -> str:
        h = base.copy()
        h.update(f"{kind}:{value}".encode())
        return h.hexdigest()[:32]

    distinct = values.dropna().unique()
    return values.map(dict(zip(distinct, map(one, distinct))))


FORMULA_START = re.compile(r"^[=+\-@\t\r]")


def formula_safe(value: object) -> object:
    """Neutralise text a spreadsheet would run as a formula (a leading = + - @ that is not a number)."""
    if not isinstance(value, str) or not FORMULA_START.match(value):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def formula_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`formula_safe` on every text column, touching only the cells that start like a formula."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            risky = s.astype("string").str.match(FORMULA_START.pattern).fillna(False).to_numpy(dtype=bool)
            if risky.any():
                out[col] = s.astype(object)
                out.loc[risky, col] = [formula_safe(v) for v in s[risky]]
    return out


def extract_dates(landing: Store, trust: str, run_date: str) -> tuple[list[str], list[str]]:
    """Extract folders of a trust, newest first, not after the run date; and odd folder names, reported."""
    good, odd = [], []
    for name in landing.listdir(trust):
        (good if DATE_DIR.match(name) and name <= run_date else odd).append(name)
    return sorted(good, reverse=True), odd


def _read_extract(landing: Store, trust: str, date: str):
    """All four files of one extract: typed tables, quarantined rows, input hashes, reported notes."""
    typed, quarantine, hashes, notes = {}, [], {}, []
    present = set(landing.listdir(trust, date))
    for kind, spec in FILES.items():
        if spec.name not in present:
            if spec.mandatory:
                raise FileRejected(spec.name, None, "MISSING_FILE", f"{spec.name} was not uploaded")
            typed[kind] = to_typed(kind, pd.DataFrame({c: pd.Series(dtype=str) for c in spec.required}))
            continue
        raw = landing.read_bytes(trust, date, spec.name)
        text = read_text(raw, kind)
        hashes[spec.name] = text.sha256
        if text.extra_columns:
            notes.append(f"{spec.name}: unknown columns ignored: {', '.join(text.extra_columns)}")
        for number, row_text in text.ragged:
            quarantine.append({"file": spec.name, "line": number, "column": "", "rule": "RAGGED_ROW",
                               "message": "the row has a different number of fields from the header",
                               "value": row_text})
        breaches = check_rows(kind, text.frame, trust)
        if kind in ("staff", "cases") and len(breaches):
            misfiled = breaches[breaches["rule"] == "TRUST_MATCHES_FOLDER"]
            if len(misfiled) > len(text.frame) / 2:
                raise FileRejected(spec.name, int(text.lines([int(misfiled["row"].iloc[0])])[0] or 2),
                                   "MISFILED", f"most rows name another trust than {trust}: was this upload "
                                   f"meant for {misfiled['value'].mode().iloc[0]}?")
        if len(breaches):
            lines = text.lines(breaches["row"].tolist())
            quarantine.extend({"file": spec.name, "line": line, "column": b.column, "rule": b.rule,
                               "message": b.message, "value": b.value}
                              for line, b in zip(lines, breaches.itertuples()))
        good = text.frame.drop(index=breaches["row"].unique()) if len(breaches) else text.frame
        typed[kind] = to_typed(kind, good)
    return typed, quarantine, hashes, notes


def _write_csv(store: Store, df: pd.DataFrame, *parts: str) -> None:
    safe = formula_safe_frame(df) if len(df) else df
    store.write_bytes(safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8"), *parts)


def _write_parquet(store: Store, df: pd.DataFrame, *parts: str) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False), buf)
    store.write_bytes(buf.getvalue(), *parts)


def previous_plan(out: Store, trust: str, run_date: str) -> tuple[str | None, pd.DataFrame | None]:
    """The trust's most recent published plan before `run_date` (crn, current_om, om), for incumbency."""
    earlier = [d for d in out.listdir("operational", trust) if DATE_DIR.match(d) and d < run_date]
    for date in sorted(earlier, reverse=True):
        if out.exists("operational", trust, date, "case_alignment.csv"):
            raw = out.read_bytes("operational", trust, date, "case_alignment.csv")
            plan = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, usecols=["crn", "current_om", "om"])
            return date, plan.replace({"": None})
    return None, None


def _peak_rss_mib() -> float:
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def process_trust(job: TrustJob, policy: Policy) -> dict:
    """Ingest, decide and stage one trust; the summary says what was used, quarantined and decided."""
    t0 = time.perf_counter()
    landing, out = Store(job.landing), Store(job.out)
    stage = ("_runs", job.run_id)
    dates, odd = extract_dates(landing, job.trust, job.run_date)
    rejections, quarantine = [], []
    chosen = None
    for date in dates:
        try:
            typed, rows, hashes, notes = _read_extract(landing, job.trust, date)
        except FileRejected as exc:
            rejections.append({"file": f"{date}/{exc.file}", "line": exc.line, "column": "", "rule": exc.rule,
                               "message": exc.message, "value": ""})
            continue
        chosen, quarantine = date, rows
        break
    summary = {"trust": job.trust, "extract_date": chosen, "newest_extract": dates[0] if dates else None,
               "odd_folders": odd, "rejected_files": rejections}
    qdf = pd.DataFrame(rejections + quarantine, columns=QUARANTINE_COLUMNS)
    op = (*stage, "operational", job.trust, job.run_date)
    _write_csv(out, qdf, *op, "quarantine.csv")
    if chosen is None:
        summary["status"] = "REJECTED" if dates else "NO_EXTRACT"
        return summary
    summary["status"] = "FRESH" if chosen == dates[0] else "CARRIED_OVER"
    summary.update(input_sha256=hashes, notes=notes, quarantined_rows=int(len(quarantine)))

    plan_date, plan = previous_plan(out, job.trust, job.run_date)
    t1 = time.perf_counter()
    d = decide_trust(typed["staff"], typed["cases"], typed["retention_requests"], typed["appeals"], policy,
                     job.nps_unit, job.crc_unit, pd.Timestamp(chosen), plan)
    t2 = time.perf_counter()
    _write_operational(out, op, d, typed)
    _stage_published(out, stage, job, d, qdf)
    a = d.case_alignment
    summary.update(
        cases=int(len(a)), staff=int(len(d.staff_assignment)), moved=int(a["moved"].sum()),
        nps_cases=int((a["side"] == "NPS").sum()),
        nps_staff=int((d.staff_assignment["side"] == "NPS").sum()),
        over_capacity=int(d.caseload["over_capacity"].sum()),
        solver=[{"side": r.side, "method": r.method, "objective": r.objective, "bound": r.bound, "parts": r.parts}
                for r in d.solver],
        uploaded_rows={k: int(len(v)) for k, v in typed.items()},
        previous_plan=plan_date,
        seconds={"ingest": round(t1 - t0, 3), "decide": round(t2 - t1, 3),
                 "write": round(time.perf_counter() - t2, 3)},
        worker_peak_rss_mib=_peak_rss_mib(),
    )
    return summary


def _write_operational(out: Store, op: tuple[str, ...], d, typed) -> None:
    s = d.staff_assignment
    _write_csv(out, s[["staff_code", "grade", "role", "fte", "side", "unit", "reason"]].assign(
        guaranteed=s["guaranteed"].map({True: "Y", False: "N"})), *op, "staff_assignment.csv")
    a = d.case_alignment
    _write_csv(out, a[["crn", "side", "rule", "case_class", "current_om", "om"]].assign(
        moved=a["moved"].map({True: "Y", False: "N"}), reason=a["reason"]), *op, "case_alignment.csv")
    moves = a[a["moved"]]
    _write_csv(out, pd.DataFrame({"crn": moves["crn"], "current_om": moves["current_om"], "new_om": moves["om"],
                                  "team_code": moves["team_code"], "reason": moves["reason"]}),
               *op, "transfer_list.csv")
    r = d.retention_decisions
    _write_csv(out, r[["crn", "requested_by", "reason", "note", "status", "decided_by", "decision_note",
                       "case_om", "case_reason", "outcome"]], *op, "retention_decisions.csv")


def _stage_published(out: Store, stage: tuple[str, ...], job: TrustJob, d, qdf: pd.DataFrame) -> None:
    key = job.pseudonym_key
    part = (f"run_date={job.run_date}", f"trust_code={job.trust}", "part-0.parquet")

    def staff_id(codes: pd.Series) -> pd.Series:
        return pseudonyms(key, f"staff:{job.trust}", codes)

    s = d.staff_assignment
    datasets = {
        "staff_assignment": pd.DataFrame({
            "staff_id": staff_id(s["staff_code"]), "grade": s["grade"], "role": s["role"],
            "team_code": s["team_code"], "fte": s["fte"], "side": s["side"], "unit": s["unit"],
            "reason": s["reason"], "guaranteed": s["guaranteed"]}),
        "case_alignment": pd.DataFrame({
            "case_id": pseudonyms(key, "crn", d.case_alignment["crn"]),
            "team_code": d.case_alignment["team_code"], "side": d.case_alignment["side"],
            "rule": d.case_alignment["rule"], "case_class": d.case_alignment["case_class"],
            "weight": d.case_alignment["weight_units"] / job.units_per_point,
            "current_om_id": staff_id(d.case_alignment["current_om"]),
            "om_id": staff_id(d.case_alignment["om"]), "moved": d.case_alignment["moved"],
            "reason": d.case_alignment["reason"], "team_change": d.case_alignment["team_change"]}),
        "caseload": d.caseload.assign(om_id=staff_id(d.caseload["staff_code"])).drop(columns="staff_code"),
        "workforce_balance": d.workforce_balance,
        "validation": (qdf.groupby(["file", "column", "rule"], dropna=False).size().rename("rows").reset_index()
                       if len(qdf) else pd.DataFrame({"file": pd.Series(dtype=str), "column": pd.Series(dtype=str),
                                                      "rule": pd.Series(dtype=str), "rows": pd.Series(dtype="int64")})),
    }
    for name, df in datasets.items():
        _write_parquet(out, df, *stage, "published", name, *part)
