"""The transfer workbook (xlsxwriter, constant-memory mode) read back by openpyxl: every naughty string comes
back as the same text, under a bold header with filters and a frozen row; the same moves and date give the
same bytes."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pandas as pd

from pipeline.outputs.workbook import transfer_workbook

NAUGHTY = json.loads(
    (Path(__file__).parents[1] / "corpora" / "big-list-of-naughty-strings" / "blns.json").read_text(encoding="utf-8")
)


def _naughty_moves() -> pd.DataFrame:
    texts = list(NAUGHTY) + ["<r>rich?</r>", "_x0041_", "\x07bell", " edge "]
    n = len(texts)
    return pd.DataFrame(
        {
            "crn": texts,
            "current_om": texts[::-1],
            "new_om": [None, *texts[1:]],
            "team_code": [f"T{i % 7}" for i in range(n)],
            "reason": ["MOVED_SIDE"] * n,
        }
    )


def _london_sized_moves(n: int = 60_000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "crn": [f"X{i:06d}" for i in range(n)],
            "current_om": [f"OM{i % 300}" for i in range(n)],
            "new_om": [f"OM{i * 7 % 300}" if i % 50 else "" for i in range(n)],
            "team_code": [f"T{i % 40:02d}" for i in range(n)],
            "reason": ["MOVED_SIDE"] * n,
        }
    )


def test_a_london_sized_list_reads_back_row_for_row():
    moves = _london_sized_moves(20_000)
    book = openpyxl.load_workbook(io.BytesIO(transfer_workbook(moves)), read_only=True)
    assert len(book.sheetnames) == 40
    read = [list(r) for sheet in book.worksheets for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert [[c or "" for c in r] for r in read] == moves.sort_values("team_code", kind="stable").to_numpy().tolist()


def test_no_moves_is_one_empty_sheet_with_its_header():
    book = openpyxl.load_workbook(io.BytesIO(transfer_workbook(_london_sized_moves().iloc[:0])))
    assert book.sheetnames == ["no moves"]
    assert [c.value for c in book.active[1]] == ["crn", "current_om", "new_om", "team_code", "reason"]
    assert book.active.max_row == 1


def _sheet_parts(z: zipfile.ZipFile) -> list[str]:
    """The workbook's sheet parts, in sheet order."""
    parts = (n for n in z.namelist() if n.startswith("xl/worksheets/sheet"))
    return sorted(parts, key=lambda n: int(re.findall(r"\d+", n)[0]))


def _as_excel_reads(book: bytes) -> list[list[list[str]]]:
    """Every sheet's rows of text as Excel reads them: each cell's inline string (a rich string's runs
    joined) with each _xHHHH_ read once, left to right, as its character (so _x005F_ keeps a literal
    _xHHHH_)."""
    z = zipfile.ZipFile(io.BytesIO(book))
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    sheets = _sheet_parts(z)

    def text(cell) -> str:
        raw = "".join(t.text or "" for t in cell.find("m:is", ns).iter(f"{{{ns['m']}}}t"))
        return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), raw)

    def row_of(row) -> list[str]:
        cells = {
            ord(re.match(r"[A-Z]", c.get("r")).group()) - ord("A"): text(c)
            for c in row.findall("m:c", ns)
            if c.get("t") == "inlineStr"
        }
        return [cells.get(i, "") for i in range(max(cells, default=-1) + 1)]

    return [[row_of(row) for row in ElementTree.fromstring(z.read(n)).iter(f"{{{ns['m']}}}row")] for n in sheets]


def test_the_workbook_is_written_row_by_row_with_its_strings_inline():
    """Constant-memory mode (xlsxwriter's `in_memory` option would silently turn it off): each row goes to
    the sheet as it is written, its strings inline, so no table of every string is held until the end."""
    book = zipfile.ZipFile(io.BytesIO(transfer_workbook(_london_sized_moves(2_000))))
    sheets = _sheet_parts(book)
    assert len(sheets) == 40 and "xl/sharedStrings.xml" not in book.namelist()
    assert all(b't="inlineStr"' in book.read(n) for n in sheets)


def test_every_naughty_string_reads_back_as_the_same_text_with_filters_and_a_frozen_header():
    moves = _naughty_moves()
    written = transfer_workbook(moves)
    book = openpyxl.load_workbook(io.BytesIO(written))
    assert book.sheetnames == [f"T{i}" for i in range(7)]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:E{sheet.max_row}"
        assert [c.value for c in sheet[1]] == list(moves.columns) and all(c.font.b for c in sheet[1])
    sheets = _as_excel_reads(written)
    assert all(rows[0] == list(moves.columns) for rows in sheets)
    # An empty string is a cell with no text: it reads back as "", as a missing value does.
    read = [[*row, *[""] * (5 - len(row))] for rows in sheets for row in rows[1:]]
    expected = moves.fillna("").sort_values("team_code", kind="stable").to_numpy().tolist()
    assert read == expected


def test_the_same_moves_and_date_give_the_same_bytes():
    moves = _naughty_moves()
    when = dt.datetime(2014, 6, 1)
    assert transfer_workbook(moves, when) == transfer_workbook(moves.copy(), when)
    assert transfer_workbook(moves, when) != transfer_workbook(moves, dt.datetime(2014, 6, 2))
