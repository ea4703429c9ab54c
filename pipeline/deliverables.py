"""What a trust's operational folder holds beside the CSVs: the transfer list as a workbook, and a README."""
from __future__ import annotations

import datetime as dt
import io
import re

import pandas as pd

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
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                     "strings_to_numbers": False})
    book.set_properties({"created": created})
    bold = book.add_format({"bold": True})
    columns = list(moves.columns)
    moves = moves.sort_values("team_code", kind="stable")
    cells = [[("" if pd.isna(v) else str(v)) for v in moves[c].to_numpy(dtype=object)] for c in columns]
    teams = moves["team_code"].to_numpy(dtype=object)
    starts = [i for i in range(len(teams)) if i == 0 or teams[i] != teams[i - 1]] + [len(teams)]
    names = _sheet_names([str(teams[a]) for a in starts[:-1]])
    for name, a, b in list(zip(names, starts[:-1], starts[1:])) or [("no moves", 0, 0)]:
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, columns, bold)
        write = sheet.write_string  # text only: never a formula, number or link
        for r in range(a, b):
            for c, col in enumerate(cells):
                write(r - a + 1, c, col[r])
        sheet.autofilter(0, 0, max(b - a, 1), len(columns) - 1)
        sheet.freeze_panes(1, 0)
        sheet.set_column(0, len(columns) - 1, 18)
    book.close()
    return buf.getvalue()


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
