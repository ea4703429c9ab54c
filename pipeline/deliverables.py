"""What a trust's operational folder holds beside the CSVs: the transfer list as a workbook, and a README."""
from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd

from pipeline.domain import OUTCOME_WORDS, REASON_WORDS

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

    `moves` is already formula-safe; cells are written as text, never as formulas, numbers or links. Written
    by xlsxwriter in its constant-memory mode (row by row, strings inline). `created` goes in the file's
    properties instead of the clock, so the same moves give the same bytes.
    """
    import xlsxwriter

    moves = moves.fillna("").astype(str)
    order = np.argsort(moves["team_code"].to_numpy(dtype=object), kind="stable")
    rows = moves.to_numpy(dtype=object)[order]
    team = rows[:, list(moves.columns).index("team_code")] if len(rows) else np.array([], dtype=object)
    starts = np.flatnonzero(np.r_[len(team) > 0, team[1:] != team[:-1]]) if len(team) else np.zeros(0, np.int64)
    bounds = list(zip(_sheet_names(team[starts].tolist()), starts.tolist(), np.r_[starts[1:], len(team)].tolist()))
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    book.set_properties({"created": created})
    bold = book.add_format({"bold": True})
    header, width = list(moves.columns), len(moves.columns)
    for name, a, b in bounds or [("no moves", 0, 0)]:
        sheet = book.add_worksheet(name)
        sheet.set_column(0, width - 1, 18)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(b - a, 1), width - 1)
        sheet.write_row(0, 0, header, bold)
        for r, row in enumerate(rows[a:b].tolist(), start=1):
            for c, value in enumerate(row):
                if value.startswith("<r>") and value.endswith("</r>"):
                    # xlsxwriter would store such a string as rich-text XML as it stands (and lose it): plain
                    # fragments (it takes three at least) are stored escaped, and read back as the one text.
                    sheet.write_rich_string(r, c, value[:1], value[1:2], value[2:])
                else:
                    sheet.write_string(r, c, value)
    book.close()
    return buf.getvalue()


def trust_readme(trust: str, run_date: str) -> str:
    reasons = "\n".join(f"  {code:<16} {words}" for code, words in REASON_WORDS.items())
    outcomes = "\n".join(f"  {code:<16} {words}" for code, words in OUTCOME_WORDS.items())
    return f"""Transition pipeline: {trust}, run of {run_date}

These files are for {trust} only. They hold real identifiers (CRNs, staff codes, names): handle them as
OFFICIAL-SENSITIVE personal data and do not pass them on. Text cells that would start with = + - @, a tab or a
carriage return begin with ' so that a spreadsheet shows them as text (plain numbers such as -12.5 are left as
they are).

The plan holds from night to night: a person keeps the side first given to them (assigned_on) unless an appeal
is upheld or they move into a role that belongs to the other side; a planned move stays on the transfer list,
with the date it was first planned (planned_on), until your extract shows the case with its new officer.

staff_assignment.csv     every person in your staff extract: grade, role, FTE, side (NPS or CRC), unit, reason,
                         guaranteed (Y: in post by the cut-off date, so the job is guaranteed) and assigned_on
                         (the night the side was first given).
case_alignment.csv       every case aligned: side, the rule that decided it, case class, current_om (as your
                         extract shows it), om (the officer it should have), moved (Y/N), reason, planned_on
                         (the night a move or allocation was first planned) and replanned (Y: planned again
                         because the officer first planned can no longer take it).
transfer_list.csv        the moves still to make, oldest first: the case, its side, class and RoSH, its team,
                         the current and the new officer with their names and teams, the reason as a code and
                         in words, planned_on, days_outstanding and replanned. Make the move in nDelius and it
                         leaves the list the next night.
transfer_list.xlsx       the same moves as a workbook, one sheet per team, with filters.
retention_decisions.csv  each retention request as you made it, its status and decision note, the case's
                         officer and reason after alignment, and the outcome, as a code and in words.
quarantine.csv           rows and files held back: file, line (as in your file, header = line 1), column,
                         rule, message and value. Fix them in your next extract.
warnings.csv             findings that did not hold anything back (for example a CRN also in another trust).
validation_report.html   the validation of your extract: every rule checked, counts, sample values and what
                         to do about each finding.

Staff reasons:
  APPEAL_UPHELD    an appeal for this side was upheld
  FIXED_ROLE       the role belongs wholly to this side (court, approved premises, victim liaison: NPS;
                   programmes, unpaid work, interventions: CRC)
  PREFERENCE       got the side they asked for
  ALIGNMENT        no preference: went where their caseload points
  TARGET_FULL      their choice was full for their grade: went to the other side

Case reasons:
{reasons}

Retention outcomes:
{outcomes}

If your newest extract was rejected, the lists were made from your last good extract; the report says why.
What each file you upload must hold: the extract contract (/contract on the upload service).
"""
