"""What a trust's operational folder holds beside the CSVs: the transfer list as a workbook, and a README."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd

TRANSFER_WORKBOOK = "transfer_list.xlsx"
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\']")


def _sheet_names(teams: list[str]) -> list[str]:
    """Excel's rules: at most 31 characters, none of []:*?/\\ and unique ignoring case."""
    names, seen = [], set()
    for team in teams:
        base = _SHEET_UNSAFE.sub("_", team)[:31] or "team"
        name, n = base, 2
        while name.lower() in seen:
            suffix = f"~{n}"
            name, n = base[: 31 - len(suffix)] + suffix, n + 1
        seen.add(name.lower())
        names.append(name)
    return names


def transfer_workbook(moves: pd.DataFrame, created: dt.datetime = dt.datetime(2014, 1, 1)) -> bytes:
    """The transfer list, one sheet per team (sorted), each with filters and a frozen header row.

    `moves` is already formula-safe; cells are written as text, never as formulas, numbers or links. Written
    by xlsxwriter in its constant-memory mode (row by row, strings inline, each sheet's rows spooled to a
    temporary file), so no list holds every cell in memory; xlsxwriter's `in_memory` option would turn that
    mode off. `created` goes in the file's properties instead of the clock, so the same moves give the same
    bytes.
    """
    import xlsxwriter

    moves = moves.fillna("").astype(str)
    order = np.argsort(moves["team_code"].to_numpy(dtype=object), kind="stable")
    rows = moves.to_numpy(dtype=object)[order]
    team = rows[:, list(moves.columns).index("team_code")] if len(rows) else np.array([], dtype=object)
    starts = np.flatnonzero(np.r_[len(team) > 0, team[1:] != team[:-1]]) if len(team) else np.zeros(0, np.int64)
    bounds = list(zip(_sheet_names(team[starts].tolist()), starts.tolist(), np.r_[starts[1:], len(team)].tolist()))
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(
        buf,
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
    )
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
