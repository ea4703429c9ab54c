"""Reading one trust's extract: its files parsed and validated in order, the rows held back and why, and
a file rule broken as that file's rejection (file, line, column, rule, what to do)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import layout, settings
from pipeline.extracts.contract import FILES, typed_table
from pipeline.extracts.csv_text import FileRejected, read_text
from pipeline.extracts.validation import QUARANTINE_ROW, REJECT_FILE, REPORT, parse_result, reference_params, validate
from pipeline.policy import ExtractsPolicy
from pipeline.storage import Store

log = logging.getLogger("trp.ingest")

QUARANTINE_COLUMNS = ["file", "line", "column", "rule", "message", "value"]


LINE = "_line"  # the line of each accepted row in the trust's file, kept beside the staged rows


def extract_dates(landing: Store, trust: str, run_date: str) -> tuple[list[str], list[str]]:
    """Extract folders of a trust, newest first, not after the run date; and odd folder names, reported."""
    good, odd = [], []
    for name in landing.listdir(trust):
        (good if layout.is_date_folder(name) and name <= run_date else odd).append(name)
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
    return [
        {"file": text.name, "line": line, "column": column, "rule": rule, "message": message, "value": value}
        for line, column, rule, message, value in zip(
            lines, *(rows[c].tolist() for c in ("column", "rule", "message", "value"))
        )
    ]


def read_extract(
    landing: Store,
    trust: str,
    date: str,
    limits: ExtractsPolicy = ExtractsPolicy(),
    replacing: dict[str, bytes] | None = None,
) -> Extract:
    """All the files of one extract, each validated by its suite; a file rule raises FileRejected.

    Files are checked in order (staff, cases, retention requests, appeals, reductions) so that each can refer
    to what passed before it: cases to staff codes, requests to cases and staff, appeals and reductions to
    staff. `replacing`: files (name: bytes) to check in place of the landing zone's, for an upload not yet
    committed.
    """
    ex = Extract(date, {}, [], [], {}, [], [], {})
    params: dict = {"trust": [trust]}
    replacing = replacing or {}
    present = set(landing.listdir(*layout.extract_folder(trust, date))) | set(replacing)
    links = set(landing.links(*layout.extract_folder(trust, date))) - set(replacing)
    held_staff: dict[str, int | None] = {}
    for kind, spec in FILES.items():
        if spec.name in links:
            raise FileRejected(
                spec.name,
                None,
                "NOT_A_FILE",
                f"{spec.name} is a link to another file, which the pipeline never follows: upload the file itself",
            )
        if spec.name not in present:
            if spec.mandatory:
                raise FileRejected(spec.name, None, "MISSING_FILE", f"{spec.name} was not uploaded")
            empty = typed_table(kind, pa.table({c: pa.array([], pa.string()) for c in spec.required}))
            ex.typed[kind] = empty.append_column(LINE, pa.array([], pa.int64()))
            continue
        raw = (
            replacing[spec.name]
            if spec.name in replacing
            else landing.read_bytes(*layout.extract_file(trust, date, spec.name))
        )
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


def _check_file(kind: str, raw: bytes, params: dict, limits: ExtractsPolicy, trust: str, share: bool = True):
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
    if (
        share
        and rows >= limits.held_back_share_min_rows
        and kind in limits.held_back_share_files
        and bad / rows > limits.max_held_back_share
    ):
        raise _mostly_held_back(text, v, held, bad, rows, limits.max_held_back_share)
    return text, v, held


HELD_BACK_SHARE = "expect_held_back_share_at_most"


def _mostly_held_back(text, v, held: pd.DataFrame, bad: int, rows: int, share: float) -> FileRejected:
    """The file rejected whole because most of it broke row rules: the rules that broke most rows, with
    counts, and every held-back row kept with the rejection for the trust to fix."""
    counts = held.groupby(["rule", "column"], sort=False)["row"].nunique().sort_values(ascending=False, kind="stable")
    if text.ragged:
        counts = pd.concat([counts, pd.Series({("RAGGED_ROW", ""): len(text.ragged)})]).sort_values(
            ascending=False, kind="stable"
        )
    top = "; ".join(
        f"{rule}{f' on {column}' if column else ''}: {n:,} row(s)" for (rule, column), n in counts.head(3).items()
    )
    message = (
        f"{bad:,} of {rows:,} rows ({bad / rows:.0%}) break row rules, more than the {share:.0%} a file may "
        f"have held back; most often {top}. Fix the export and upload the file again: until then your "
        "last good extract is used"
    )
    lines = [line for line in (text.lines(held["row"].head(1).to_numpy()) if len(held) else []) if line]
    first = min([*lines, *(n for n, _ in text.ragged if n)], default=None)
    result = {
        "file": text.name,
        "expectation": HELD_BACK_SHARE,
        "rule": "TOO_MANY_ROWS_HELD_BACK",
        "column": "",
        "on_fail": REJECT_FILE,
        "success": False,
        "unexpected_count": int(bad),
        "message": message,
    }
    return FileRejected(
        text.name,
        first,
        "TOO_MANY_ROWS_HELD_BACK",
        message,
        results=[*v.results, result],
        findings=_ragged(text) + _findings(text, held),
        gx={v.kind: v.gx},
    )


def _fault(name: str, exc: Exception) -> FileRejected:
    """An unexpected error while checking one trust's file, as that file's rejection: the night goes on for
    every other trust. TRP_RAISE_FAULTS=1 (the test suite sets it) lets the error through, so a bug in the
    pipeline fails its tests loudly instead of becoming a trust's finding."""
    if settings.load().raise_faults:
        raise exc
    log.exception("checking %s failed", name)
    return FileRejected(
        name,
        None,
        "CHECK_FAILED",
        f"the pipeline could not check this file ({type(exc).__name__}: {exc}); nothing of it was "
        "used. Send this message to the programme data team; until it is resolved your last good "
        "extract is used",
    )


def _notes(text) -> list[str]:
    notes = []
    if text.extra_columns:
        notes.append(f"{text.name}: unknown columns ignored: {', '.join(text.extra_columns)}")
    if text.blank_lines:
        shown = ", ".join(map(str, text.blank_lines[:5])) + (", ..." if len(text.blank_lines) > 5 else "")
        notes.append(f"{text.name}: {len(text.blank_lines)} blank line(s) skipped (line {shown})")
    return notes


def _ragged(text) -> list[dict]:
    return [
        {
            "file": text.name,
            "line": number,
            "column": "",
            "rule": "RAGGED_ROW",
            "message": "the row has a different number of fields from the header",
            "value": row_text,
        }
        for number, row_text in text.ragged
    ]


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
        "re-allocated for now: fix that row and the case stays with them"
        for code in out.loc[mine, "value"]
    ]
    return out


def _rejection(text, v, rule: dict, trust: str) -> FileRejected:
    """The file rule's failure as the trust should read it, with the line where it shows."""
    line, message = {"MISSING_COLUMN": 1, "EMPTY": 2}.get(rule["rule"]), rule["message"]
    column = rule["column"]
    if rule["rule"] == "MISSING_COLUMN":
        column = message.rsplit(": ", 1)[-1]
        message = (
            f"required column(s) missing: {column}. Add them to the header (names as in the extract "
            "contract, any order) and upload the file again"
        )
    elif rule["rule"] == "MISFILED":
        others = text.frame.loc[text.frame["trust_code"] != trust, "trust_code"]
        line = text.lines([int(others.index[0])])[0]
        message = f"most rows name another trust than {trust}: was this upload meant for {others.mode().iloc[0]}?"
    return FileRejected(text.name, line, rule["rule"], message, column=column, results=v.results, gx={v.kind: v.gx})


def rejected_file(exc: FileRejected, file: str) -> dict:
    """A rejected file as its row of quarantine.csv."""
    return {
        "file": file,
        "line": exc.line,
        "column": exc.column or "",
        "rule": exc.rule,
        "message": exc.message,
        "value": "",
    }


def rejected_results(exc: FileRejected, date: str) -> list[dict]:
    """The suite results of a rejected file, or one result for a file no suite could read."""
    return [{**r, "extract_date": date} for r in exc.results or [parse_result(exc)]]
