"""One trust's nightly work, run on a Dask worker: pick the extract, check it, decide, stage the outputs.

Idempotent: everything is written under the run's staging folder keyed by run id and trust, so a retried
task overwrites its own files and nothing else. Returns a small summary, never a frame.
"""
from __future__ import annotations

import datetime as dt
import gc
import io
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.contract import FILES, typed_table
from pipeline.data_docs import stage_results
from pipeline.decisions.engine import decide_trust
from pipeline.decisions.night import OUTSTANDING, PLAN_COLUMNS
from pipeline.decisions.staff_split import HELD_COLUMNS
from pipeline.domain import REASON_WORDS
from pipeline.deliverables import TRANSFER_WORKBOOK, TRUST_README, transfer_workbook, trust_readme
from pipeline.ingest import FileRejected, read_text
from pipeline.policy import ExtractsPolicy, Policy
from pipeline.pseudonyms import Pseudonyms
from pipeline.storage import Store
from pipeline.report import REPORT_FILE, render_report
from pipeline.validation import (QUARANTINE_ROW, REJECT_FILE, REPORT, cross_trust_result, parse_result,
                                 reference_params, validate)

log = logging.getLogger("trp.ingest")
DATE_DIR = re.compile(r"\d{4}-\d{2}-\d{2}")
QUARANTINE_COLUMNS = ["file", "line", "column", "rule", "message", "value"]
LINE = "_line"  # the line of each accepted row in the trust's file, kept beside the staged rows


def is_date_folder(name: str) -> bool:
    """A folder named by a real date, YYYY-MM-DD and nothing else (no trailing newline, no 2014-02-30)."""
    if not DATE_DIR.fullmatch(name):
        return False
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


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
    extract_limits: ExtractsPolicy = ExtractsPolicy()


FORMULA_CHARS = b"=+-@\t\r"  # what a spreadsheet may read as the start of a formula
FORMULA_START = re.compile("^[" + re.escape(FORMULA_CHARS.decode()) + "]")


# A number as a spreadsheet reads one: digits with an optional sign, decimal point and exponent. Python's
# float() also takes "-Infinity", "+nan" and "\t1", which a spreadsheet reads as a formula or text.
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def formula_safe(value: object) -> object:
    """Neutralise text a spreadsheet would run as a formula: a leading = + - @, tab or CR, unless the whole
    cell is a plain number (-12.5, +3)."""
    if not isinstance(value, str) or not FORMULA_START.match(value) or PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def formula_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`formula_safe` on every text column, touching only the cells that start like a formula (in a shallow
    copy: a column with none is not copied)."""
    out = df.copy(deep=False)
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            risky = s.str.match(FORMULA_START.pattern, na=False).to_numpy(dtype=bool)
            if risky.any():
                out[col] = s.astype(object)
                out.loc[risky, col] = [formula_safe(v) for v in s[risky]]
    return out


def extract_dates(landing: Store, trust: str, run_date: str) -> tuple[list[str], list[str]]:
    """Extract folders of a trust, newest first, not after the run date; and odd folder names, reported."""
    good, odd = [], []
    for name in landing.listdir(trust):
        (good if is_date_folder(name) and name <= run_date else odd).append(name)
    return sorted(good, reverse=True), odd


@dataclass
class Extract:
    """One extract, checked: typed tables, the rows held back, warnings, input hashes and every result."""
    date: str
    typed: dict[str, pa.Table]
    quarantine: list[dict]
    warnings: list[dict]
    hashes: dict[str, str]
    notes: list[str]
    results: list[dict]
    gx: dict[str, dict]  # each file's GX validation result, as GX's JSON


def _findings(text, rows: pd.DataFrame) -> list[dict]:
    if rows.empty:
        return []
    lines = text.lines(rows["row"].to_numpy())
    return [{"file": text.name, "line": line, "column": column, "rule": rule, "message": message, "value": value}
            for line, column, rule, message, value in zip(
                lines, *(rows[c].tolist() for c in ("column", "rule", "message", "value")))]


def read_extract(landing: Store, trust: str, date: str, limits: ExtractsPolicy = ExtractsPolicy(), replacing: dict[str, bytes] | None = None) -> Extract:
    """All four files of one extract, each validated by its suite; a file rule raises FileRejected.

    Files are checked in order (staff, cases, retention requests, appeals) so that each can refer to what
    passed before it: cases to staff codes, requests to cases and staff, appeals to staff. `replacing`: files
    (name: bytes) to check in place of the landing zone's, for an upload not yet committed.
    """
    ex = Extract(date, {}, [], [], {}, [], [], {})
    params: dict = {"trust": [trust]}
    replacing = replacing or {}
    present = set(landing.listdir(trust, date)) | set(replacing)
    links = set(landing.links(trust, date)) - set(replacing)
    held_staff: dict[str, int | None] = {}
    for kind, spec in FILES.items():
        if spec.name in links:
            raise FileRejected(spec.name, None, "NOT_A_FILE", f"{spec.name} is a link to another file, which the "
                               "pipeline never follows: upload the file itself")
        if spec.name not in present:
            if spec.mandatory:
                raise FileRejected(spec.name, None, "MISSING_FILE", f"{spec.name} was not uploaded")
            empty = typed_table(kind, pa.table({c: pa.array([], pa.string()) for c in spec.required}))
            ex.typed[kind] = empty.append_column(LINE, pa.array([], pa.int64()))
            continue
        raw = replacing[spec.name] if spec.name in replacing else landing.read_bytes(trust, date, spec.name)
        try:
            text, v, held = _check_file(kind, raw, params, limits, trust)
            ex.gx[kind] = v.gx
            ex.hashes[spec.name] = text.sha256
            ex.results.extend(v.results)
            ex.notes.extend(_notes(text))
            ex.quarantine.extend(_ragged(text) + _findings(text, held))
            ex.warnings.extend(_findings(text, _held_officers(v.rows(REPORT), held_staff)))
            keep = np.ones(text.table.num_rows, dtype=bool)
            keep[held["row"].to_numpy()] = False
            accepted = text.table.filter(keep) if len(held) else text.table
            ex.typed[kind] = typed_table(kind, accepted).append_column(LINE, text.line_numbers(np.flatnonzero(keep)))
            params.update(reference_params(kind, ex.typed[kind]))
            if kind == "staff":
                held_staff = _held_back_codes(text, held, ex.typed[kind])
        except FileRejected as exc:
            exc.gx = {**ex.gx, **exc.gx}
            raise
        except Exception as exc:  # noqa: BLE001 - one trust's file never fails the night (see _fault)
            raise _fault(spec.name, exc) from exc
    return ex


def check_alone(kind: str, raw: bytes, trust: str, limits: ExtractsPolicy = ExtractsPolicy()) -> dict | None:
    """A file's own file rules (readable, its columns, not empty, not misfiled), for an upload whose extract
    lacks a file it refers to: its rejection as a quarantine row, or None. Its rows are checked with the rest
    of the extract once that is there."""
    try:
        params = {"trust": [trust], "staff_codes": [], "staff_codes_or_blank": [""], "crns": []}
        _check_file(kind, raw, params, limits, trust, share=False)
    except FileRejected as exc:
        return rejected_file(exc, exc.file)
    except Exception as exc:  # noqa: BLE001 - as in read_extract
        return rejected_file(_fault(FILES[kind].name, exc), FILES[kind].name)
    return None


def _check_file(kind: str, raw: bytes, params: dict, limits: ExtractsPolicy, trust: str,
                share: bool = True):
    """One file parsed and validated: its text, its validation and the rows held back. A file rule broken,
    or (`share`) more than the policy's share of rows held back, raises FileRejected."""
    text = read_text(raw, kind, limits)
    v = validate(kind, text.frame, params)
    rejected = v.rejection()
    if rejected:
        raise _rejection(text, v, rejected, trust)
    held = v.rows(QUARANTINE_ROW)
    bad = held["row"].nunique() + len(text.ragged)
    rows = text.table.num_rows + len(text.ragged)
    if share and rows >= limits.held_back_share_min_rows and kind in limits.held_back_share_files and \
            bad / rows > limits.max_held_back_share:
        raise _mostly_held_back(text, v, held, bad, rows, limits.max_held_back_share)
    return text, v, held


HELD_BACK_SHARE = "expect_held_back_share_at_most"


def _mostly_held_back(text, v, held: pd.DataFrame, bad: int, rows: int, share: float) -> FileRejected:
    """The file rejected whole because most of it broke row rules: the rules that broke most rows, with
    counts, and every held-back row kept with the rejection for the trust to fix."""
    counts = held.groupby(["rule", "column"], sort=False)["row"].nunique().sort_values(ascending=False, kind="stable")
    if text.ragged:
        counts = pd.concat([counts, pd.Series({("RAGGED_ROW", ""): len(text.ragged)})]).sort_values(
            ascending=False, kind="stable")
    top = "; ".join(f"{rule}{f' on {column}' if column else ''}: {n:,} row(s)" for (rule, column), n in
                    counts.head(3).items())
    message = (f"{bad:,} of {rows:,} rows ({bad / rows:.0%}) break row rules, more than the {share:.0%} a file may "
               f"have held back; most often {top}. Fix the export and upload the file again: until then your "
               "last good extract is used")
    lines = [line for line in (text.lines(held["row"].head(1).to_numpy()) if len(held) else []) if line]
    first = min([*lines, *(n for n, _ in text.ragged if n)], default=None)
    result = {"file": text.name, "expectation": HELD_BACK_SHARE, "rule": "TOO_MANY_ROWS_HELD_BACK", "column": "",
              "on_fail": REJECT_FILE, "success": False, "unexpected_count": int(bad), "message": message}
    return FileRejected(text.name, first, "TOO_MANY_ROWS_HELD_BACK", message, results=[*v.results, result],
                        findings=_ragged(text) + _findings(text, held), gx={v.kind: v.gx})


def _fault(name: str, exc: Exception) -> FileRejected:
    """An unexpected error while checking one trust's file, as that file's rejection: the night goes on for
    every other trust. TRP_RAISE_FAULTS=1 (the test suite sets it) lets the error through, so a bug in the
    pipeline fails its tests loudly instead of becoming a trust's finding."""
    if os.environ.get("TRP_RAISE_FAULTS") == "1":
        raise exc
    log.exception("checking %s failed", name)
    return FileRejected(name, None, "CHECK_FAILED",
                        f"the pipeline could not check this file ({type(exc).__name__}: {exc}); nothing of it was "
                        "used. Send this message to the programme data team; until it is resolved your last good "
                        "extract is used")


def _notes(text) -> list[str]:
    notes = []
    if text.extra_columns:
        notes.append(f"{text.name}: unknown columns ignored: {', '.join(text.extra_columns)}")
    if text.blank_lines:
        shown = ", ".join(map(str, text.blank_lines[:5])) + (", ..." if len(text.blank_lines) > 5 else "")
        notes.append(f"{text.name}: {len(text.blank_lines)} blank line(s) skipped (line {shown})")
    return notes


def _ragged(text) -> list[dict]:
    return [{"file": text.name, "line": number, "column": "", "rule": "RAGGED_ROW",
             "message": "the row has a different number of fields from the header", "value": row_text}
            for number, row_text in text.ragged]


def _held_back_codes(text, held: pd.DataFrame, accepted: pa.Table) -> dict[str, int | None]:
    """Staff codes whose every row was held back, with the line of the first: their cases name an officer
    the trust does employ, whose row needs fixing."""
    if held.empty:
        return {}
    rows = np.unique(held["row"].to_numpy())
    codes = text.frame["staff_code"].iloc[rows].to_numpy(dtype=object)
    kept = set(accepted["staff_code"].to_pylist())
    out: dict[str, int | None] = {}
    for code, line in zip(codes, text.lines(rows)):
        if isinstance(code, str) and code.strip() and code not in kept:
            out.setdefault(code, line)
    return out


OM_NOT_IN_STAFF, OM_ROW_HELD_BACK = "OM_NOT_IN_STAFF", "OM_STAFF_ROW_HELD_BACK"


def _held_officers(warnings: pd.DataFrame, held_staff: dict[str, int | None]) -> pd.DataFrame:
    """A case whose officer is missing from the accepted staff because their staff row was held back says
    so, rather than that the officer has left."""
    if warnings.empty or not held_staff:
        return warnings
    mine = (warnings["rule"] == OM_NOT_IN_STAFF) & warnings["value"].isin(list(held_staff))
    if not mine.any():
        return warnings
    out = warnings.copy()
    out.loc[mine, "rule"] = OM_ROW_HELD_BACK
    out.loc[mine, "message"] = [
        f"the officer's row in staff.csv (line {held_staff[code] or '-'}) was held back, so the case is "
        "re-allocated for now: fix that row and the case stays with them" for code in out.loc[mine, "value"]]
    return out


def _rejection(text, v, rule: dict, trust: str) -> FileRejected:
    """The file rule's failure as the trust should read it, with the line where it shows."""
    line, message = {"MISSING_COLUMN": 1, "EMPTY": 2}.get(rule["rule"]), rule["message"]
    column = rule["column"]
    if rule["rule"] == "MISSING_COLUMN":
        column = message.rsplit(": ", 1)[-1]
        message = (f"required column(s) missing: {column}. Add them to the header (names as in the extract "
                   "contract, any order) and upload the file again")
    elif rule["rule"] == "MISFILED":
        others = text.frame.loc[text.frame["trust_code"] != trust, "trust_code"]
        line = text.lines([int(others.index[0])])[0]
        message = (f"most rows name another trust than {trust}: was this upload meant for "
                   f"{others.mode().iloc[0]}?")
    return FileRejected(text.name, line, rule["rule"], message, column=column, results=v.results,
                        gx={v.kind: v.gx})


def write_csv(store: Store, df: pd.DataFrame, *parts: str) -> None:
    store.write_bytes(csv_bytes(formula_safe_frame(df)), *parts)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a header row and CRLF line ends, text quoted (Arrow's writer: a trust's 48,000 cases in
    a tenth of pandas' time); pandas' writer for a column Arrow cannot type."""
    try:
        table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return df.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(eol="\r\n", quoting_header="none"))
    return buf.getvalue()


def _write_parquet(store: Store, df: pd.DataFrame, *parts: str) -> None:
    """A published dataset's partition, zstd-compressed: the pseudonyms (32 hex digits) defeat snappy, so zstd
    writes London's case alignment in three quarters of snappy's time at 60% of its size."""
    _write_table(store, pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False), *parts,
                 compression="zstd")


def _write_table(store: Store, table: pa.Table, *parts: str, **options) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf, **options)
    store.write_bytes(buf.getvalue(), *parts)


def _stage_typed(out: Store, job: TrustJob, kind: str, table: pa.Table) -> None:
    """A trust's accepted rows of one file, staged for its decisions and the run-wide CRN check: without
    statistics (read whole, never filtered) and without a dictionary for the file's key and the line numbers,
    which differ in every row (the writer would build one and drop it): London's cases in 0.10 s, not 0.15.
    LZ4, not snappy: as fast to write, as small, and read back in three quarters of the time."""
    distinct = {FILES[kind].key, LINE}
    _write_table(out, table, *_typed_path(job, kind), write_statistics=False, compression="lz4",
                 use_dictionary=[c for c in table.column_names if c not in distinct])


@dataclass(frozen=True)
class PreviousState:
    """What the last run before this one decided for a trust (decisions.night): its run date, its staff
    assignment (staff_split.HELD_COLUMNS) and its case plan (night.PLAN_COLUMNS); all None for a trust no
    earlier run decided."""
    date: str | None = None
    staff: pd.DataFrame | None = None
    plan: pd.DataFrame | None = None


def previous_state(out: Store, trust: str, run_date: str) -> PreviousState:
    """The trust's state from the most recent operational folder before `run_date` that holds a plan: what
    the committed run of that date decided (a re-run or a backfill of `run_date` reads the same). Read once
    per trust. A plan written before `assigned_on` and `planned_on` were kept takes that run's date for them."""
    earlier = [d for d in out.listdir("operational", trust) if is_date_folder(d) and d < run_date]
    for date in sorted(earlier, reverse=True):
        folder = ("operational", trust, date)
        if not (out.exists(*folder, "case_alignment.csv") and out.exists(*folder, "staff_assignment.csv")):
            continue
        then = pa.scalar(pd.Timestamp(date), pa.timestamp("ns"))
        plan = _state_table(out.read_bytes(*folder, "case_alignment.csv"), PLAN_COLUMNS, "planned_on")
        staff = _state_table(out.read_bytes(*folder, "staff_assignment.csv"), HELD_COLUMNS, "assigned_on")
        if plan["planned_on"].null_count == plan.num_rows:  # written before planned_on was kept
            planned = pc.is_in(plan["reason"], pa.array(sorted(OUTSTANDING)))
            plan = plan.set_column(plan.column_names.index("planned_on"), "planned_on",
                                   pc.if_else(planned, then, pa.scalar(None, pa.timestamp("ns"))))
        if staff["assigned_on"].null_count == staff.num_rows:
            staff = staff.set_column(staff.column_names.index("assigned_on"), "assigned_on",
                                     pa.array([then.as_py()] * staff.num_rows, pa.timestamp("ns")))
        return PreviousState(date, staff.to_pandas(), plan.to_pandas())
    return PreviousState()


def _state_table(raw: bytes, columns: list[str], day: str) -> pa.Table:
    """The columns of an operational CSV the state needs, by Arrow (pandas took 0.8 s for London's plan at ten
    times national volume): text with blanks as nulls (a column the file lacks: all null), `day` a timestamp."""
    table = pacsv.read_csv(io.BytesIO(raw), read_options=pacsv.ReadOptions(block_size=1 << 24),
                           convert_options=pacsv.ConvertOptions(
                               include_columns=columns, include_missing_columns=True,
                               column_types={c: pa.string() for c in columns}, strings_can_be_null=True,
                               null_values=[""]))
    at = table.column_names.index(day)
    return table.set_column(at, day, pc.strptime(table[day], "%Y-%m-%d", "ns"))


def _peak_rss_mib() -> float:
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _stage(job: TrustJob, *parts: str) -> tuple[str, ...]:
    return ("_runs", job.run_id, *parts)


def _operational(job: TrustJob) -> tuple[str, ...]:
    return _stage(job, "operational", job.trust, job.run_date)


def _typed_path(job: TrustJob, kind: str) -> tuple[str, ...]:
    return _stage(job, "trusts", job.trust, f"{kind}.parquet")


def rejected_file(exc: FileRejected, file: str) -> dict:
    """A rejected file as its row of quarantine.csv."""
    return {"file": file, "line": exc.line, "column": exc.column or "", "rule": exc.rule, "message": exc.message,
            "value": ""}


def rejected_results(exc: FileRejected, date: str) -> list[dict]:
    """The suite results of a rejected file, or one result for a file no suite could read."""
    return [{**r, "extract_date": date} for r in exc.results or [parse_result(exc)]]


@contextmanager
def _few_collections() -> Iterator[None]:
    """Run a task with Python's cyclic garbage collector at a young collection every 50,000 allocations, not
    700, then restore it. The tasks make millions of short-lived containers and few cycles: at the defaults
    London's decisions ran 500 young and 2 full collections (0.25 s), a national scale-10 run's decisions
    1.3 s of them; now 0.1 s."""
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
    summary = {"trust": job.trust, "extract_date": ex.date if ex else None,
               "newest_extract": dates[0] if dates else None, "odd_folders": odd, "rejected_files": rejections,
               "validation": results}
    quarantine = rejections + (ex.quarantine if ex else [])
    write_csv(out, pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS), *_operational(job), "quarantine.csv")
    out.write_bytes(trust_readme(job.trust, job.run_date).encode("utf-8"), *_operational(job), TRUST_README)
    write_csv(out, pd.DataFrame(ex.warnings if ex else [], columns=QUARANTINE_COLUMNS), *_operational(job),
               "warnings.csv")
    if ex is None:
        summary.update(status="REJECTED" if dates else "NO_EXTRACT", quarantined_rows=0)  # files, not rows
    else:
        for kind, table in ex.typed.items():
            _stage_typed(out, job, kind, table)
        summary.update(status="FRESH" if ex.date == dates[0] else "CARRIED_OVER", input_sha256=ex.hashes,
                       notes=ex.notes, quarantined_rows=len(ex.quarantine), warnings=len(ex.warnings),
                       accepted_rows={k: v.num_rows for k, v in ex.typed.items()})
    summary["seconds"] = {"ingest": round(time.perf_counter() - t0, 3)}
    return summary


def staged_crns(job: TrustJob) -> pa.Table:
    """The CRNs (and their lines) a trust's accepted extract holds, for the cross-trust check."""
    raw = Store(job.out).read_bytes(*_typed_path(job, "cases"))
    return pq.read_table(io.BytesIO(raw), columns=["crn", LINE])


@_few_collections()
def decide_and_stage(job: TrustJob, policy: Policy, ingested: dict) -> dict:
    """Phase 2a: read the trust's staged accepted rows back, run the four decisions, stage both zones'
    outputs. It needs nothing from the other trusts, so it can start as soon as this trust is ingested.
    Facts and stage seconds; empty when the trust has no usable extract."""
    if ingested["extract_date"] is None:
        return {}
    out = Store(job.out)
    tables = {kind: pq.read_table(io.BytesIO(out.read_bytes(*_typed_path(job, kind)))) for kind in FILES}
    typed = {kind: t.drop_columns([c for c in (LINE,) if c in t.column_names]).to_pandas() for kind, t in tables.items()}
    state = previous_state(out, job.trust, job.run_date)
    t1 = time.perf_counter()
    d = decide_trust(typed["staff"], typed["cases"], typed["retention_requests"], typed["appeals"], policy,
                     job.nps_unit, job.crc_unit, pd.Timestamp(ingested["extract_date"]), state.plan, state.staff,
                     pd.Timestamp(job.run_date))
    t2 = time.perf_counter()
    _write_operational(out, _operational(job), d, typed)
    _stage_published(out, _stage(job), job, d)
    a = d.case_alignment
    facts = dict(
        cases=int(len(a)), staff=int(len(d.staff_assignment)), moved=int(a["moved"].sum()),
        nps_cases=int((a["side"] == "NPS").sum()),
        nps_staff=int((d.staff_assignment["side"] == "NPS").sum()),
        over_capacity=int(d.caseload["over_capacity"].sum()),
        solver=[{"side": r.side, "method": r.method, "objective": r.objective, "bound": r.bound,
                 "gap": r.gap, "proven": r.proven, "overload_unavoidable": r.overload_unavoidable,
                 "over_capacity": int(d.caseload.loc[d.caseload["side"] == r.side, "over_capacity"].sum())}
                for r in d.solver],
        previous_plan=state.date,
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
        warnings = _read_csv(out, *_operational(job), "warnings.csv")
        rows = pd.DataFrame(conflicts, columns=QUARANTINE_COLUMNS)
        write_csv(out, pd.concat([warnings, rows], ignore_index=True), *_operational(job), "warnings.csv")
        summary["warnings"] = summary.get("warnings", 0) + len(conflicts)
    if summary["extract_date"] is not None:
        summary["validation"] = summary["validation"] + [cross_trust_result(summary["extract_date"], len(conflicts))]
        summary["crn_conflicts"] = len(conflicts)
        summary.update(decided["facts"])
        summary["seconds"].update(decided["seconds"])
    t2 = time.perf_counter()
    _stage_validation(out, job, summary["validation"])
    out.write_bytes(render_report(job.trust, job.run_date, summary,
                                  _read_csv(out, *_operational(job), "quarantine.csv"),
                                  _read_csv(out, *_operational(job), "warnings.csv")).encode("utf-8"),
                    *_operational(job), REPORT_FILE)
    summary["seconds"]["report"] = round(time.perf_counter() - t2, 3)
    summary["worker_peak_rss_mib"] = _peak_rss_mib()
    return summary


VALIDATION_COLUMNS = ("extract_date", "file", "expectation", "rule", "column", "on_fail", "success",
                      "unexpected_count", "message")


def _stage_validation(out: Store, job: TrustJob, results: list[dict]) -> None:
    """Every expectation's result for the trust, as its partition of the `validation` dataset."""
    df = pd.DataFrame(results, columns=list(VALIDATION_COLUMNS)).rename(columns={"on_fail": "severity"})
    df = df.astype({"success": bool, "unexpected_count": "int64"})
    _write_parquet(out, df, *_stage(job), "published", "validation", f"run_date={job.run_date}",
                   f"trust_code={job.trust}", "part-0.parquet")


def _read_csv(store: Store, *parts: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(store.read_bytes(*parts)), dtype=str, keep_default_na=False)


def _day(values: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD text, blank where there is none."""
    return pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")


YES_NO = {True: "Y", False: "N"}


def _write_operational(out: Store, op: tuple[str, ...], d, typed) -> None:
    s = d.staff_assignment
    write_csv(out, s[["staff_code", "grade", "role", "fte", "side", "unit", "reason"]].assign(
        guaranteed=s["guaranteed"].map(YES_NO), assigned_on=_day(s["assigned_on"])), *op, "staff_assignment.csv")
    a = d.case_alignment
    write_csv(out, a[["crn", "side", "rule", "case_class", "current_om", "om"]].assign(
        moved=a["moved"].map(YES_NO), reason=a["reason"], planned_on=_day(a["planned_on"]),
        replanned=a["replanned"].map(YES_NO)), *op, "case_alignment.csv")
    moves = a.loc[a["moved"].to_numpy()]
    night = pd.Timestamp(op[-1])
    people = typed["staff"].drop_duplicates("staff_code").set_index("staff_code")
    rosh = typed["cases"].drop_duplicates("crn").set_index("crn")["rosh"]

    def of(codes: pd.Series, column: str) -> pd.Series:
        return codes.map(people[column]).fillna("")

    transfers = pd.DataFrame({
        "crn": moves["crn"], "side": moves["side"], "case_class": moves["case_class"],
        "rosh": moves["crn"].map(rosh).fillna(""), "team_code": moves["team_code"],
        "current_om": moves["current_om"], "current_om_name": of(moves["current_om"], "full_name"),
        "current_om_team": of(moves["current_om"], "team_code"), "new_om": moves["om"],
        "new_om_name": of(moves["om"], "full_name"), "new_om_team": of(moves["om"], "team_code"),
        "reason": moves["reason"], "reason_in_words": moves["reason"].map(REASON_WORDS),
        "planned_on": _day(moves["planned_on"]),
        "days_outstanding": (night - moves["planned_on"]).dt.days.astype("Int64").astype(str),
        "replanned": moves["replanned"].map(YES_NO)})
    transfers = transfers.iloc[np.lexsort((transfers["crn"].to_numpy(dtype=object),
                                           moves["planned_on"].to_numpy()))]  # oldest first
    transfers = formula_safe_frame(transfers)  # once, for the CSV and the workbook
    out.write_bytes(csv_bytes(transfers), *op, "transfer_list.csv")
    out.write_bytes(transfer_workbook(transfers, dt.datetime.fromisoformat(op[-1])), *op, TRANSFER_WORKBOOK)
    r = d.retention_decisions
    write_csv(out, r[["crn", "requested_by", "reason", "note", "status", "decided_by", "decision_note",
                       "case_om", "case_reason", "outcome", "outcome_in_words"]], *op, "retention_decisions.csv")


def _stage_published(out: Store, stage: tuple[str, ...], job: TrustJob, d) -> None:
    part = (f"run_date={job.run_date}", f"trust_code={job.trust}", "part-0.parquet")
    staff_id, case_id = Pseudonyms(job.pseudonym_key, f"staff:{job.trust}"), Pseudonyms(job.pseudonym_key, "crn")

    s, a, r = d.staff_assignment, d.case_alignment, d.retention_decisions
    staff, current_om, om, caseload, requested_by = staff_id.many(
        s["staff_code"], a["current_om"], a["om"], d.caseload["staff_code"], r["requested_by"])
    datasets = {
        "staff_assignment": pd.DataFrame({
            "staff_id": staff, "grade": s["grade"], "role": s["role"],
            "team_code": s["team_code"], "fte": s["fte"], "side": s["side"], "unit": s["unit"],
            "reason": s["reason"], "guaranteed": s["guaranteed"],
            "assigned_on": pd.to_datetime(s["assigned_on"]).dt.date}),
        "case_alignment": pd.DataFrame({
            "case_id": case_id(a["crn"]), "team_code": a["team_code"], "side": a["side"], "rule": a["rule"],
            "case_class": a["case_class"], "weight": a["weight_units"] / job.units_per_point,
            "current_om_id": current_om, "om_id": om, "moved": a["moved"], "reason": a["reason"],
            "team_change": a["team_change"], "planned_on": pd.to_datetime(a["planned_on"]).dt.date,
            "replanned": a["replanned"]}),
        "caseload": d.caseload.assign(om_id=caseload).drop(columns="staff_code"),
        "workforce_balance": d.workforce_balance,
        "retention_requests": pd.DataFrame({
            "case_id": case_id(r["crn"]), "requested_by_id": requested_by,
            **{c: r[c] for c in ("reason", "status", "outcome", "case_reason")}}).astype("string"),
        "progress": d.progress,
    }
    for name, df in datasets.items():
        _write_parquet(out, df, *stage, "published", name, *part)
