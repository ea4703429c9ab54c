"""Input nobody on this project wrote: csv-spectrum (tricky but valid CSV) and the big list of naughty strings."""

import csv
import datetime as dt
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.extracts.contract import FILES, PANDAS_TYPES, WHITESPACE, blank, type_column
from pipeline.extracts.csv_text import parse_csv, read_table, read_text, record_starts, starts_from_values
from pipeline.extracts.validation import QUARANTINE_ROW, prepare, validate
from pipeline.outputs.operational import FORMULA_START, formula_safe_frame

CORPORA = Path(__file__).parents[1].joinpath("corpora")  # public corpora, copied as published (README.md there)
SPECTRUM = CORPORA / "csv-spectrum"
NAUGHTY = json.loads((CORPORA / "big-list-of-naughty-strings" / "blns.json").read_text(encoding="utf-8"))
SPECTRUM_CASES = sorted(p.stem for p in (SPECTRUM / "csvs").glob("*.csv") if p.stem != "location_coordinates")


@pytest.mark.parametrize("name", SPECTRUM_CASES)
def test_csv_spectrum_parses_as_published(name):
    expected = json.loads((SPECTRUM / "json" / f"{name}.json").read_text(encoding="utf-8"))
    raw = (SPECTRUM / "csvs" / f"{name}.csv").read_bytes()
    parsed = parse_csv(raw, f"{name}.csv")
    got = parsed.frame.to_dict(orient="records")
    assert got == [{k: v for k, v in row.items()} for row in expected]
    # lines as the file's author sees them: where each record starts, quoted newlines counted
    starts, line = [], 1
    for chunk in csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")):
        starts.append(line)
        line += sum(field.count("\n") for field in chunk) + 1
    assert parsed.lines(range(len(got))) == starts[1 : len(got) + 1]


def _staff_csv(values: list[str]) -> bytes:
    rows = [
        {
            "trust_code": "WIL",
            "staff_code": f"WIL{i:04d}",
            "full_name": v,
            "ni_number": "",
            "grade": "PO",
            "role": "OFFENDER_MANAGEMENT",
            "team_code": "WIL001",
            "fte": "1.0",
            "contract": "PERMANENT",
            "service_start": "2010-01-01",
            "leaving_date": "",
            "preference": "",
        }
        for i, v in enumerate(values)
    ]
    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def test_naughty_strings_in_free_text_survive_ingest_unchanged():
    """Every naughty string as a name: read back exactly, and only rule breaches are quarantined."""
    text = read_text(_staff_csv(NAUGHTY), "staff")
    assert len(text.frame) + len(text.ragged) == len(NAUGHTY)
    assert not text.ragged
    assert text.frame["full_name"].tolist() == [s if s.strip() else s for s in NAUGHTY]
    breaches = validate("staff", text.frame, {"trust": ["WIL"]}).rows(QUARANTINE_ROW)
    assert breaches.empty  # nothing else in these rows is wrong


@pytest.mark.parametrize("code", [s for s in NAUGHTY if s.strip()][:150])
def test_naughty_strings_as_staff_codes_are_quarantined_unless_valid(code):
    raw = _staff_csv(["Ann Example"]).decode().replace("WIL0000", code.replace('"', '""').join('""'), 1)
    text = read_text(raw.encode("utf-8"), "staff")
    assert len(text.frame) == 1 and text.frame["staff_code"].iloc[0] == code
    breaches = validate("staff", text.frame, {"trust": ["WIL"]}).rows(QUARANTINE_ROW)
    valid = re.fullmatch(r"[A-Za-z0-9]{1,7}", code) is not None  # the extract contract, written out independently
    flagged = breaches[breaches["column"] == "staff_code"]
    assert flagged.empty == valid, code
    if not valid:
        assert flagged["rule"].iloc[0] == "STAFF_CODE_FORMAT" and "1-7 letters or digits" in flagged["message"].iloc[0]


def test_no_published_cell_starts_like_a_formula():
    df = pd.DataFrame({"text": NAUGHTY, "n": range(len(NAUGHTY))})
    safe = formula_safe_frame(df)
    for before, after in zip(df["text"], safe["text"]):
        if FORMULA_START.match(after):
            float(after)  # only numbers may start with + or -
        assert after in (before, "'" + before)
    assert safe["n"].tolist() == df["n"].tolist()


TYPED_TEXT = {
    "number": ["1", " 1.5", "2.", "+2", "1_000", "-0.5", "1e3"],
    "integer": ["1", "01", "+2", " 3", "-4"],
    "date": ["2014-02-28", "2014-02-30", "2016-02-29", "", " ", "2014-1-1", "١٢٣٤-٠١-٠١", *NAUGHTY],
    "optional": ["", " ", "\u3000", "\x1c", "\u200b", *NAUGHTY],
    "optional_number": ["", " ", "1.5", "\u3000", "\x1f 2 "],
    "flag": ["Y", "N", "", "y", " Y"],
}


@pytest.mark.parametrize("how", sorted(TYPED_TEXT))
def test_arrow_types_accepted_text_as_pandas_does(how):
    """Rows that pass are typed by Arrow (pandas where Arrow is stricter): the same values either way."""
    values = pa.chunked_array([pa.array(TYPED_TEXT[how], pa.string())])
    expected = PANDAS_TYPES[how](pd.Series(TYPED_TEXT[how], dtype="str"))
    got = pa.chunked_array([type_column(how, values)]).to_pandas()
    pd.testing.assert_series_equal(
        got, expected.reset_index(drop=True), check_names=False, check_dtype=how not in ("optional",)
    )
    if how == "optional":  # blanks as Python's strip() finds them, whatever Arrow's own whitespace is
        assert got.isna().tolist() == [v.strip() == "" for v in TYPED_TEXT[how]]


def test_the_whitespace_arrow_trims_is_every_character_python_strips():
    assert WHITESPACE == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())


def test_blank_is_missing_or_what_python_strips_to_nothing():
    values = ["", " ", "a", " a", "a ", "\u3000", "\u3000x", "\x7f", "\x1c", *NAUGHTY, None]
    expected = [v is None or v.strip() == "" for v in values]
    assert blank(pa.array(values, pa.string())).to_pylist() == expected
    assert blank(pa.chunked_array([pa.array(values[:5]), pa.array(values[5:])])).to_pylist() == expected


@pytest.mark.parametrize(
    "texts",
    [
        ["2014-02-28", "2016-02-29", " 1.5 ", "7", "", " ", "x"],
        NAUGHTY + ["2014-02-30", "2015-02-29", "+2", " 1.5", "١٢", "2014-1-1", "٠.٥", "1e3"],
    ],
    ids=["plain", "naughty"],
)
def test_derived_numbers_and_dates_are_what_python_reads(texts):
    """`fte__num` is the number Python's float() reads from text written as one (digits of any script, as the
    accepted value is typed); `service_start__date` the day a YYYY-MM-DD text names, if there is one."""
    frame = prepare(
        "staff",
        pd.DataFrame(
            {
                c: pd.Series(texts, dtype="str") if c in ("fte", "service_start") else "x"
                for c in FILES["staff"].required
            }
        ),
    )

    def number(v):
        return float(v) if re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", v) else np.nan

    def day(v):
        try:
            return (
                pd.Timestamp(dt.date(int(v[:4]), int(v[5:7]), int(v[8:])))
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)
                else pd.NaT
            )
        except ValueError:
            return pd.NaT

    np.testing.assert_array_equal(frame["fte__num"].to_numpy(), np.array([number(v) for v in texts]))
    assert [d if not pd.isna(d) else None for d in frame["service_start__date"]] == [
        d if not pd.isna(d) else None for d in map(day, texts)
    ]


_CELL = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t;é')), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(_CELL, min_size=3, max_size=3), min_size=1, max_size=8),
    header=st.lists(_CELL.filter(lambda c: c.strip()), min_size=3, max_size=3, unique_by=str.strip),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    final_eol=st.booleans(),
)
@example(rows=[["1", "2", "3"], ["4", "5", "6"]], header=["a", "b", "c"], eol="\r", final_eol=False)
def test_line_numbers_from_parsed_values_equal_the_csv_modules(rows, header, eol, final_eol):
    """Where a record starts, counted from the line breaks in its values (the fast way), is where Python's
    csv module finds it; files the fast way cannot number (blank lines, ragged rows) go to the csv pass."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator=eol, quoting=csv.QUOTE_MINIMAL).writerows([header, *rows])
    text = buf.getvalue() if final_eol else buf.getvalue()[: -len(eol)]
    try:
        table, skipped = read_table(text)
    except pa.ArrowInvalid:  # not CSV as pyarrow reads it: rejected before any line is numbered
        return
    slow, ragged = record_starts(text, table.num_columns)
    fast = starts_from_values(text.encode("utf-8"), table, skipped)
    if fast is not None:
        assert fast.tolist() == slow and not ragged


@pytest.mark.parametrize(
    "text, starts",
    [
        ("a,b\n1,2\n3,4\n", [2, 3]),
        ("a,b\r\n1,2\r\n3,4", [2, 3]),
        ("a,b\r1,2\r3,4\r", [2, 3]),
        ('a,b\r\n"x\r\ny",2\r\n3,"a\rb"\r\n5,6\n', [2, 4, 6]),  # a quoted CRLF, a quoted lone CR
        ('"a\nb",c\n1,2\n', [3]),  # a line break in the header
        ("a,b\n1,\t\x0b\n3,4\n", [2, 3]),  # other control bytes are not line breaks
        ("a,b\n1,2\n\n3,4\n", None),
        ("a,b\r\r1,2\r", None),
        ("a,b\n\r1,2\n", None),  # blank lines
        ("\na,b\n1,2\n", None),
        ("\ra,b\r1,2\r", None),  # a file opening with a line break
    ],
)
def test_line_numbers_read_from_the_bytes_or_left_to_the_csv_pass(text, starts):
    """Line breaks are counted byte by byte (LF, CR, CRLF as one); a blank line leaves the numbering to the
    csv pass, which sees what Arrow skips."""
    table, skipped = read_table(text)
    fast = starts_from_values(text.encode("utf-8"), table, skipped)
    assert (None if fast is None else fast.tolist()) == starts
    if starts is not None:
        assert record_starts(text, table.num_columns)[0] == starts
