"""The transfer workbook writer against xlsxwriter, the library it replaced for speed: the same worksheet and
shared-string XML, byte for byte, on the naughty strings and on a London-sized list."""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.utils.escape import unescape
import pandas as pd
import pytest
import xlsxwriter

from pipeline.deliverables import _sheet_names, transfer_workbook

NAUGHTY = json.loads((Path(__file__).with_name("corpora") / "big-list-of-naughty-strings" / "blns.json")
                     .read_text(encoding="utf-8"))


def xlsxwriter_workbook(moves: pd.DataFrame) -> bytes:
    """The transfer workbook as xlsxwriter writes it, cell by cell (the implementation before the writer)."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                     "strings_to_numbers": False})
    bold = book.add_format({"bold": True})
    moves = moves.sort_values("team_code", kind="stable")
    teams = moves["team_code"].tolist()
    starts = [i for i in range(len(teams)) if i == 0 or teams[i] != teams[i - 1]] + [len(teams)]
    for name, a, b in list(zip(_sheet_names([teams[a] for a in starts[:-1]]), starts[:-1], starts[1:])) \
            or [("no moves", 0, 0)]:
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, list(moves.columns), bold)
        for r, row in enumerate(moves.iloc[a:b].fillna("").itertuples(index=False), start=1):
            for c, value in enumerate(row):
                sheet.write_string(r, c, value)
        sheet.autofilter(0, 0, max(b - a, 1), len(moves.columns) - 1)
        sheet.freeze_panes(1, 0)
        sheet.set_column(0, len(moves.columns) - 1, 18)
    book.close()
    return buf.getvalue()


def _parts(book: bytes) -> dict[str, bytes]:
    z = zipfile.ZipFile(io.BytesIO(book))
    return {n: z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/") or n == "xl/sharedStrings.xml"}


def _naughty_moves() -> pd.DataFrame:
    # xlsxwriter writes a string that starts with <r> and ends with </r> unescaped, as rich text: not a reference
    texts = [s for s in NAUGHTY if not (s.startswith("<r>") and s.endswith("</r>"))]
    n = len(texts)
    return pd.DataFrame({"crn": texts, "current_om": texts[::-1], "new_om": [None, *texts[1:]],
                         "team_code": [f"T{i % 7}" for i in range(n)], "reason": ["MOVED_SIDE"] * n})


def _london_sized_moves(n: int = 60_000) -> pd.DataFrame:
    return pd.DataFrame({"crn": [f"X{i:06d}" for i in range(n)], "current_om": [f"OM{i % 300}" for i in range(n)],
                         "new_om": [f"OM{i * 7 % 300}" if i % 50 else "" for i in range(n)],
                         "team_code": [f"T{i % 40:02d}" for i in range(n)], "reason": ["MOVED_SIDE"] * n})


@pytest.mark.parametrize("moves", [_naughty_moves(), _london_sized_moves(), _london_sized_moves().iloc[:0]],
                         ids=["naughty", "london-sized", "no-moves"])
def test_sheets_and_shared_strings_are_byte_for_byte_those_xlsxwriter_writes(moves):
    ours, theirs = _parts(transfer_workbook(moves)), _parts(xlsxwriter_workbook(moves))
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_openpyxl_reads_back_every_naughty_string_as_text_with_filters_and_a_frozen_header():
    moves = _naughty_moves()
    book = openpyxl.load_workbook(io.BytesIO(transfer_workbook(moves)))
    assert book.sheetnames == [f"T{i}" for i in range(7)]
    read = []
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:E{sheet.max_row}"
        assert [c.value for c in sheet[1]] == list(moves.columns) and all(c.font.b for c in sheet[1])
        # Excel reads _xHHHH_ as the character; openpyxl leaves that to the caller
        read += [[unescape(c or "") for c in row] for row in sheet.iter_rows(min_row=2, values_only=True)]
    expected = moves.fillna("").sort_values("team_code", kind="stable").to_numpy().tolist()
    assert read == expected


def test_the_same_moves_and_date_give_the_same_bytes():
    moves = _naughty_moves()
    when = dt.datetime(2014, 6, 1)
    assert transfer_workbook(moves, when) == transfer_workbook(moves.copy(), when)
    assert transfer_workbook(moves, when) != transfer_workbook(moves, dt.datetime(2014, 6, 2))
