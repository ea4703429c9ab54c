"""What a trust's operational folder holds beside the CSVs: the transfer list as a workbook, and a README."""
from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.text import arrow_text
from pipeline.workbook import Sheet, write_workbook

TRANSFER_WORKBOOK = "transfer_list.xlsx"
TRUST_README = "README.txt"
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\']")


def _sheet_names(teams: list[str]) -> list[str]:
    """Excel's rules: at most 31 characters, none of []:*?/\\ and unique ignoring case."""
    names, seen = [], set()
    for team in teams:
        base = _SHEET_UNSAFE.sub("_", team)[:31] or "team"
        name, n = base, 2
        while name.lower() in seen:
            suffix = f"~{n}"
            name, n = base[:31 - len(suffix)] + suffix, n + 1
        seen.add(name.lower())
        names.append(name)
    return names


def transfer_workbook(moves: pd.DataFrame, created: dt.datetime = dt.datetime(2014, 1, 1)) -> bytes:
    """The transfer list, one sheet per team (sorted), each with filters and a frozen header row.

    `moves` is already formula-safe; cells are written as text, never as formulas. `created` goes in the
    file's properties instead of the clock, so the same moves give the same bytes.
    """
    columns = [arrow_text(moves[c].fillna("").astype(str)) for c in moves.columns]
    at = list(moves.columns).index("team_code")
    order = pc.sort_indices(columns[at])  # stable
    columns = [c.take(order) for c in columns]
    team = columns[at]
    starts = np.flatnonzero(np.r_[len(team) > 0, pc.not_equal(team[1:], team[:-1]).to_numpy(zero_copy_only=False)])
    names = _sheet_names(team.take(pa.array(starts)).to_pylist())
    sheets = [Sheet(name, rows) for name, rows in zip(names, np.diff(np.r_[starts, len(team)]).tolist())]
    return write_workbook(list(moves.columns), columns, sheets or [Sheet("no moves", 0)], created)


def trust_readme(trust: str, run_date: str) -> str:
    return f"""Transition pipeline: {trust}, run of {run_date}

These files are for {trust} only. They hold real identifiers (CRNs, staff codes): handle them as OFFICIAL-SENSITIVE
personal data and do not pass them on. Text cells that would start with = + - or @ begin with ' so that a
spreadsheet shows them as text.

staff_assignment.csv     every person in your staff extract: side (NPS/CRC), unit, reason code, and whether
                         the assignment is guaranteed (in post by the cut-off date).
case_alignment.csv       every case aligned: side, the rule that decided it, case class, current and new
                         offender manager, moved (Y/N) and the reason.
transfer_list.csv        the moves only: crn, current_om, new_om, team_code, reason.
transfer_list.xlsx       the same moves as a workbook, one sheet per team, with filters.
retention_decisions.csv  each retention request as you made it, its status and explanation, and the outcome
                         for the case.
quarantine.csv           rows and files held back: file, line (as in your file, header = line 1), column,
                         rule and message. Fix them in your next extract.
warnings.csv             findings that did not hold anything back (for example a CRN also in another trust).
validation_report.html   the validation of your extract: every rule checked, counts and sample values.

If your newest extract was rejected, the lists were made from your last good extract; the report says why.
"""
