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

from pipeline.contract import _PANDAS, FILES, PRINTABLE, WHITESPACE, blank, type_column
from pipeline.ingest import _records, _starts_from_values, parse_csv, read_table, read_text
from pipeline.trust_task import FORMULA_CHARS, FORMULA_START, formula_safe_frame
from pipeline.text import (_may_differ, arrow_text, ascending, concatenated, equals, isin, matches, positions,
                           repeated, starts_with)
from pipeline.validation import QUARANTINE_ROW, prepare, suite_json, validate

CORPORA = Path(__file__).with_name("corpora")  # copied as published from ../shared/corpora (PROVENANCE.txt)
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
    assert parsed.lines(range(len(got))) == starts[1:len(got) + 1]


def _staff_csv(values: list[str]) -> bytes:
    rows = [{"trust_code": "WIL", "staff_code": f"WIL{i:04d}", "full_name": v, "ni_number": "",
             "grade": "PO", "role": "OFFENDER_MANAGEMENT", "team_code": "WIL001", "fte": "1.0",
             "contract": "PERMANENT", "service_start": "2010-01-01", "leaving_date": "", "preference": ""}
            for i, v in enumerate(values)]
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
    valid = re.fullmatch(r"[A-Za-z0-9]{1,7}", code) is not None  # spec section 3, written out independently
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


SUITE_PATTERNS = sorted({e["kwargs"]["regex"] for kind in FILES for e in suite_json(kind)["expectations"]
                         if "regex" in e["kwargs"]} | {r"\A\s*-?\d+(?:\.\d+)?\s*\Z", FORMULA_START.pattern, r"^[=+]|x$"})


@pytest.mark.parametrize("pattern", SUITE_PATTERNS)
def test_fast_regex_matches_pythons_re_on_every_naughty_string(pattern):
    """The mirror's Arrow fast path gives exactly re.search's answer, whitespace and digits beyond ASCII
    included (the naughty strings hold vertical tabs, Arabic digits, zero-width and right-to-left marks)."""
    values = NAUGHTY + [f" {s} " for s in NAUGHTY] + ["12\x0b", "\u0661\u0662", "1.5\n", "A123456", "1\x1c",
                                                  "\x1f2 ", None]
    got = matches(pd.Series(values, dtype="str"), pattern).tolist()
    want = [v is not None and re.search(pattern, v) is not None for v in values]
    assert got == want
    assert any(want)  # the list exercises the matching side too


@pytest.mark.parametrize("pattern", SUITE_PATTERNS)
def test_plain_ascii_columns_skip_the_screening_and_agree_with_pythons_re(pattern):
    """A column with no byte on which RE2 and re may differ is answered by RE2 alone, and rightly; the same
    values beside one separator character (sliced off the end) still agree."""
    plain = ["1", " 2 ", "-3", "1.5", "A123456", "a1", "2014-06-01", "=1+1", "", "  ", "x y", None]
    assert not _may_differ(pa.array(plain))
    sliced = pa.array(plain + ["1\x1c"]).slice(0, len(plain))
    assert _may_differ(sliced)
    for values in (pd.Series(plain, dtype="str"), pd.Series(pd.arrays.ArrowStringArray(sliced))):
        assert matches(values, pattern).tolist() == [v is not None and re.search(pattern, v) is not None
                                                     for v in plain]


def test_formula_starts_read_from_arrow_buffers_agree_with_the_regex():
    """`starts_with` reads each value's first byte from Arrow's buffers: the same rows as FORMULA_START, in
    sliced and chunked arrays, with missing values, and for a column that is not all text."""
    values = NAUGHTY + ["=1", "+", "-", "@x", "\tx", "\rx", "", "é=", "x=", None]
    want = [isinstance(v, str) and FORMULA_START.match(v) is not None for v in values]
    assert any(want)
    whole = pa.array(values + ["=tail"], pa.large_string()).slice(0, len(values))
    chunked = pa.chunked_array([pa.array(values[:7], pa.string()), pa.array(values[7:], pa.string())])
    for s in (pd.Series(values, dtype="str"), pd.Series(pd.arrays.ArrowStringArray(whole)),
              pd.Series(pd.arrays.ArrowStringArray(chunked)), pd.Series(values, dtype=object)):
        assert starts_with(s, FORMULA_CHARS).tolist() == want
    assert starts_with(pd.Series([*values, 1, "=x"], dtype=object), FORMULA_CHARS).tolist() == [*want, False, True]
    for nothing in (["", ""], [None, None], ["", None], []):  # no value has a first byte
        assert starts_with(pd.Series(nothing, dtype="str"), FORMULA_CHARS).tolist() == [False] * len(nothing)


def test_value_sets_through_arrow_agree_with_pandas():
    values = pd.Series(NAUGHTY + [None, "NPS"], dtype="str")
    allowed = NAUGHTY[::3] + ["NPS"]
    assert isin(values, allowed).tolist() == values.isin(allowed).tolist()
    for one in (["NPS"], [NAUGHTY[5]], [""]):
        assert isin(values, one).tolist() == values.isin(one).tolist()


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=20),
       allowed=st.lists(st.text(max_size=3), max_size=100))
def test_value_sets_agree_with_pandas_from_either_side(values, allowed):
    """Membership by Arrow hashes the set (a code list) or, for a set far longer than the column (a trust's
    CRNs for its retention requests), the column: both answer as pandas' isin, missing values never in."""
    s = pd.Series(values, dtype="str")
    want = s.isin(allowed).tolist()
    assert isin(s, allowed).tolist() == want
    assert isin(s, pa.array(allowed, pa.string())).tolist() == want
    assert isin(pd.Series(values, dtype="string[python]"), allowed).tolist() == want
    assert isin(pd.Series(values, dtype=object), allowed).tolist() == want  # Python objects: pandas' own isin
    one = allowed[:1]  # a set of one (a trust's own code) is compared, not looked up
    assert isin(s, pa.array(one, pa.string())).tolist() == s.isin(one).tolist()


def test_arrow_text_takes_arrow_arrays_as_they_are():
    chunked = pa.chunked_array([pa.array(["a", None], pa.string()), pa.array(["é"], pa.string())])
    assert arrow_text(chunked).to_pylist() == ["a", None, "é"]
    assert arrow_text(pa.array([None, None])).type == pa.large_string()
    assert arrow_text(pa.array([1, 2])) is None


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
    expected = _PANDAS[how](pd.Series(TYPED_TEXT[how], dtype="str"))
    got = pa.chunked_array([type_column(how, values)]).to_pandas()
    pd.testing.assert_series_equal(got, expected.reset_index(drop=True), check_names=False,
                                   check_dtype=how not in ("optional",))
    if how == "optional":  # blanks as Python's strip() finds them, whatever Arrow's own whitespace is
        assert got.isna().tolist() == [v.strip() == "" for v in TYPED_TEXT[how]]


def test_the_whitespace_arrow_trims_is_every_character_python_strips():
    assert WHITESPACE == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    # blank() trims only values that do not start with a printable ASCII byte: no whitespace starts with one
    assert not {c.encode("utf-8")[0] for c in WHITESPACE} & set(PRINTABLE)


def test_blank_is_missing_or_what_python_strips_to_nothing():
    values = ["", " ", "a", " a", "a ", "\u3000", "\u3000x", "\x7f", "\x1c", *NAUGHTY, None]
    expected = [v is None or v.strip() == "" for v in values]
    assert blank(pa.array(values, pa.string())).to_pylist() == expected
    assert blank(pa.chunked_array([pa.array(values[:5]), pa.array(values[5:])])).to_pylist() == expected


@pytest.mark.parametrize("texts", [
    ["2014-02-28", "2016-02-29", " 1.5 ", "7", "", " ", "x"],
    NAUGHTY + ["2014-02-30", "2015-02-29", "+2", " 1.5", "١٢", "2014-1-1", "٠.٥", "1e3"],
], ids=["plain", "naughty"])
def test_derived_numbers_and_dates_are_what_python_reads(texts):
    """`fte__num` is the number Python's float() reads from text written as one (digits of any script, as the
    accepted value is typed); `service_start__date` the day a YYYY-MM-DD text names, if there is one."""
    frame = prepare("staff", pd.DataFrame({c: pd.Series(texts, dtype="str") if c in ("fte", "service_start")
                                           else "x" for c in FILES["staff"].required}))

    def number(v):
        return float(v) if re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", v) else np.nan

    def day(v):
        try:
            return pd.Timestamp(dt.date(int(v[:4]), int(v[5:7]), int(v[8:]))) if re.fullmatch(
                r"\d{4}-\d{2}-\d{2}", v) else pd.NaT
        except ValueError:
            return pd.NaT
    np.testing.assert_array_equal(frame["fte__num"].to_numpy(), np.array([number(v) for v in texts]))
    assert [d if not pd.isna(d) else None for d in frame["service_start__date"]] == \
           [d if not pd.isna(d) else None for d in map(day, texts)]


_CELL = st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t;é')), max_size=6)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(_CELL, min_size=3, max_size=3), min_size=1, max_size=8),
       header=st.lists(_CELL.filter(lambda c: c.strip()), min_size=3, max_size=3, unique_by=str.strip),
       eol=st.sampled_from(["\n", "\r\n", "\r"]), final_eol=st.booleans())
@example(rows=[["1", "2", "3"], ["4", "5", "6"]], header=["a", "b", "c"], eol="\r", final_eol=False)
def test_line_numbers_from_parsed_values_equal_the_csv_modules(rows, header, eol, final_eol):
    """Where a record starts, counted from the line breaks in its values (the fast way), is where Python's
    csv module finds it; files the fast way cannot number (blank lines, ragged rows) go to the csv pass."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator=eol, quoting=csv.QUOTE_MINIMAL).writerows([header, *rows])
    text = buf.getvalue() if final_eol else buf.getvalue()[:-len(eol)]
    try:
        table, skipped = read_table(text)
    except pa.ArrowInvalid:  # not CSV as pyarrow reads it: rejected before any line is numbered
        return
    slow, ragged = _records(text, table.num_columns)
    fast = _starts_from_values(text.encode("utf-8"), table, skipped)
    if fast is not None:
        assert fast.tolist() == slow and not ragged


@pytest.mark.parametrize("text, starts", [
    ("a,b\n1,2\n3,4\n", [2, 3]),
    ("a,b\r\n1,2\r\n3,4", [2, 3]),
    ("a,b\r1,2\r3,4\r", [2, 3]),
    ('a,b\r\n"x\r\ny",2\r\n3,"a\rb"\r\n5,6\n', [2, 4, 6]),  # a quoted CRLF, a quoted lone CR
    ('"a\nb",c\n1,2\n', [3]),  # a line break in the header
    ("a,b\n1,\t\x0b\n3,4\n", [2, 3]),  # other control bytes are not line breaks
    ("a,b\n1,2\n\n3,4\n", None), ("a,b\r\r1,2\r", None), ("a,b\n\r1,2\n", None),  # blank lines
    ("\na,b\n1,2\n", None), ("\ra,b\r1,2\r", None),  # a file opening with a line break
])
def test_line_numbers_read_from_the_bytes_or_left_to_the_csv_pass(text, starts):
    """Line breaks are counted byte by byte (LF, CR, CRLF as one); a blank line leaves the numbering to the
    csv pass, which sees what Arrow skips."""
    table, skipped = read_table(text)
    fast = _starts_from_values(text.encode("utf-8"), table, skipped)
    assert (None if fast is None else fast.tolist()) == starts
    if starts is not None:
        assert _records(text, table.num_columns)[0] == starts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=12))
def test_ascending_text_is_pandas_is_monotonic_increasing(values):
    """Arrow's order of UTF-8 text is the code point order pandas compares Python strings in."""
    for s in (pd.Series(values, dtype="str"), pd.Series(sorted(v for v in values if v is not None), dtype="str")):
        assert ascending(s) == s.is_monotonic_increasing


_KEY_EDGES = st.sampled_from(["", "\x00", "A123456", "A123456\x00", "A1234567", "é", "😀", "abcdefg", "abcdefgh"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_KEY_EDGES, st.text(max_size=9)), max_size=30), st.integers(0, 4),
       st.booleans())
def test_repeated_is_pandas_duplicated(values, cut, with_missing):
    """Short text compared as integers (up to 7 bytes: CRNs, staff codes, empty text, a NUL byte, text
    beyond ASCII), longer text hashed, in sliced and chunked arrays: the rows pandas calls duplicated."""
    values = values + [None] * with_missing
    plain = pd.Series(values, dtype="str")
    chunked = pa.chunked_array([pa.array(values[:cut], pa.large_string()), pa.array(values[cut:], pa.large_string())])
    sliced = pa.array(["pad"] * cut + values, pa.string()).slice(cut)
    ordered = sorted(v for v in values if v is not None)  # in order: strictly (no repeats) or not
    for s in (plain, pd.Series(pd.arrays.ArrowStringArray(chunked)), pd.Series(pd.arrays.ArrowStringArray(sliced)),
              plain.iloc[cut:], pd.Series(values, dtype=object), pd.Series(ordered, dtype="str"),
              pd.Series(sorted(set(ordered)), dtype="str")):
        assert repeated(s).tolist() == s.duplicated(keep=False).tolist()


def test_repeated_naughty_strings_and_their_copies():
    s = pd.Series(NAUGHTY + NAUGHTY[::7], dtype="str")
    got = repeated(s)
    assert got.tolist() == s.duplicated(keep=False).tolist() and got.sum() >= len(NAUGHTY[::7])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=20), st.text(max_size=3))
def test_equals_is_pandas_comparison_with_missing_false(values, value):
    s = pd.Series(values, dtype="str")
    assert equals(s, value).tolist() == (s == value).fillna(False).astype(bool).tolist()
    assert equals(pd.Series(values, dtype=object), value).tolist() == [v == value for v in values]


@settings(max_examples=200, deadline=None)
@given(within=st.lists(st.text(max_size=3), unique=True, max_size=30),
       values=st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=30))
def test_positions_equal_pandas_get_indexer(within, values):
    """Looking values up by Arrow, from either side (the shorter one is hashed), finds what pandas finds."""
    for v, w in ((values, within), (values[:2], within), (values, within[:2])):
        want = pd.Index(w, dtype=object).get_indexer(pd.Index(v, dtype=object)).tolist()
        for dtype in ("str", object):  # Arrow text, or Python objects (looked up by pandas)
            assert positions(pd.Series(v, dtype=dtype), pd.Series(w, dtype="str")).tolist() == want
    mixed = pd.Series([1, "1", None], dtype=object)  # not all text: pandas' own lookup
    assert positions(mixed, pd.Series(["1"], dtype=object)).tolist() == [-1, 0, -1]


@pytest.mark.parametrize("type_", [pa.string(), pa.large_string()])
def test_concatenated_text_is_the_values_joined_whatever_the_offsets(type_):
    values = pa.array(NAUGHTY, type_)
    for a, b in [(0, len(NAUGHTY)), (3, 40), (17, 17), (40, 3)]:
        assert concatenated(values, a, b) == "".join(NAUGHTY[a:b]).encode("utf-8")
    window = values.slice(5, 30)  # an array that starts inside its buffers
    assert concatenated(window) == "".join(NAUGHTY[5:35]).encode("utf-8")
