"""The suites in expectations/, run by Great Expectations: exactly the rows the contract forbids are flagged,
and hostile uploads get exact, line-accurate outcomes without breaking anything."""

import datetime as dt
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.extracts.contract import FILES
from pipeline.extracts.csv_text import read_text
from pipeline.extracts.validation import load_suite, suite_dir, validate
from pipeline.runs.arrival import check_arrival, pending_arrivals
from pipeline.synthetic.landing import generate_landing

NAUGHTY = json.loads(
    (Path(__file__).parents[1] / "corpora" / "big-list-of-naughty-strings" / "blns.json").read_text(encoding="utf-8")
)
HOSTILE = [
    "NULL",
    "None",
    "NaN",
    "",
    " ",
    "=cmd|'/C calc'!A0",
    "\u200f",
    "A\u200b1",
    "😀",
    "-1",
    "1e3",
    "2014-02-30",
    "0x1F",
    "١٢٣",
    *NAUGHTY[::25],
]


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    generate_landing(str(root / "landing"), 0.01, seed=3, dirty=True)
    return root / "landing"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean extract, so each test below adds exactly one fault."""
    root = tmp_path_factory.mktemp("clean")
    generate_landing(str(root / "landing"), 0.01, seed=3)
    return root / "landing"


def _hostile(text: pd.DataFrame) -> pd.DataFrame:
    """Every hostile value in every column, a row each, appended to a real extract."""
    base = text.iloc[0].to_dict() if len(text) else dict.fromkeys(text.columns, "")
    rows = [{**base, col: value} for col in text.columns for value in HOSTILE]
    return pd.concat([text, pd.DataFrame(rows)], ignore_index=True)


def _params(staff: pd.DataFrame, cases: pd.DataFrame, trust: str) -> dict:
    codes = staff["staff_code"].tolist()
    return {"trust": [trust], "staff_codes": codes, "staff_codes_or_blank": codes + [""], "crns": cases["crn"].tolist()}


def _real_date(v: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return False
    try:
        dt.date(int(v[:4]), int(v[5:7]), int(v[8:]))
    except ValueError:
        return False
    return True


def _number_in(v: str, lo: float, hi: float, whole: bool = False, above: bool = False) -> tuple[bool, bool]:
    """(written as a number, within the range), as the extract contract says, by Python's own parsing."""
    written = re.fullmatch(r"\s*-?\d+\s*" if whole else r"\s*-?\d+(?:\.\d+)?\s*", v) is not None
    value = float(v) if written else None
    return written, not written or ((value > lo if above else value >= lo) and value <= hi)


def _contract(kind: str, frame: pd.DataFrame, params: dict) -> set[tuple[int, str, str]]:
    """(row, column, rule) for every breach of the extract contract in a staff or cases file, written out value by
    value in plain Python (the value sets are the suites')."""
    sets = {
        (e["meta"]["rule"], e["kwargs"].get("column")): e["kwargs"]["value_set"]
        for e in json.loads((suite_dir() / f"{kind}.json").read_text())["expectations"]
        if isinstance(e["kwargs"].get("value_set"), list)
    }
    code = re.compile(r"[A-Za-z0-9]{1,7}")
    out = set()
    key = "staff_code" if kind == "staff" else "crn"
    repeated = frame[key].duplicated(keep=False)
    for i, row in enumerate(frame.to_dict("records")):

        def breach(column: str, rule: str, broken: bool) -> None:
            if broken:
                out.add((i, column, rule))

        breach("trust_code", "TRUST_MATCHES_FOLDER", row["trust_code"] not in params["trust"])
        breach(key, "DUPLICATE_KEY", bool(repeated.iloc[i]))
        breach("team_code", "TEAM_CODE_FORMAT", not re.fullmatch(r"[A-Za-z0-9]{1,6}", row["team_code"]))
        for (rule, column), allowed in sets.items():
            breach(column, rule, column in row and row[column] not in allowed)
        if kind == "staff":
            breach("staff_code", "STAFF_CODE_FORMAT", not code.fullmatch(row["staff_code"]))
            written, within = _number_in(row["fte"], 0, 1, above=True)
            breach("fte", "FTE_FORMAT", not written)
            breach("fte", "FTE_RANGE", not within)
            hours = row.get("contracted_hours", "")
            if hours.strip() != "":
                written, within = _number_in(hours, 0, 60, above=True)
                breach("contracted_hours", "CONTRACTED_HOURS_FORMAT", not written)
                breach("contracted_hours", "CONTRACTED_HOURS_RANGE", not within)
            breach("service_start", "DATE_FORMAT", not _real_date(row["service_start"]))
            leaving = row.get("leaving_date", "")
            breach("leaving_date", "DATE_FORMAT", leaving.strip() != "" and not _real_date(leaving))
            continue
        breach("crn", "CRN_FORMAT", not re.fullmatch(r"[A-Z][0-9]{6}", row["crn"]))
        om = row["om_staff_code"]
        breach("om_staff_code", "STAFF_CODE_FORMAT", om.strip() != "" and not code.fullmatch(om))
        breach("om_staff_code", "OM_NOT_IN_STAFF", om not in params["staff_codes_or_blank"])
        for column, hi in (("mappa_category", 4), ("mappa_level", 3), ("ogrs", 100), ("rsr", 100)):
            value = row.get(column, "")
            if column in ("ogrs", "rsr") and value.strip() == "":
                continue
            written, within = _number_in(value, 0, hi, whole=column != "rsr")
            breach(column, f"{column.upper()}_FORMAT", not written)
            breach(column, f"{column.upper()}_RANGE", not within)
        start, end = row["sentence_date"], row.get("expected_end", "")
        breach("sentence_date", "DATE_FORMAT", not _real_date(start))
        breach("expected_end", "DATE_FORMAT", end.strip() != "" and not _real_date(end))
        breach("expected_end", "END_NOT_BEFORE_START", _real_date(start) and _real_date(end) and end < start)
    return out


def _flagged(v) -> set[tuple[int, str, str]]:
    rows = v.flagged
    return set(zip(rows["row"].tolist(), rows["column"].tolist(), rows["rule"].tolist()))


@pytest.mark.parametrize("trust", ["LDN", "WIL"])
def test_great_expectations_flags_exactly_the_rows_the_contract_forbids(landing, trust):
    """The dirty generator's faults and every hostile value in every column: GX flags each breach of the
    contract, written out independently above, and nothing else (Arabic-Indic digits are numbers, as Python
    reads them: 123 is out of range for fte)."""
    folder = sorted((landing / trust).iterdir())[-1]
    texts = {k: read_text((folder / f"{k}.csv").read_bytes(), k).frame for k in ("staff", "cases")}
    params = _params(texts["staff"], texts["cases"], trust)
    for kind, text in texts.items():
        for frame in (text, _hostile(text)):
            v = validate(kind, frame, params)
            want = _contract(kind, frame, params)
            assert _flagged(v) == want, kind
            assert len(want) > (300 if frame is not text else 5 if kind == "cases" else -1)  # the faults are there
            failed = {(r["rule"], r["column"]): r["unexpected_count"] for r in v.results if not r["success"]}
            assert failed == pd.Series([(rule, col) for _, col, rule in want]).value_counts().to_dict()
    hostile = _hostile(texts["staff"])
    fte = hostile.index[hostile["fte"] == "١٢٣"]
    assert {(int(fte[0]), "fte", "FTE_RANGE")} <= _flagged(validate("staff", hostile, params))


def test_suites_are_valid_great_expectations_suites():
    import great_expectations as gx

    for kind in FILES:
        raw = json.loads((suite_dir() / f"{kind}.json").read_text(encoding="utf-8"))
        suite = gx.ExpectationSuite(**raw)
        assert len(suite.expectations) == len(load_suite(kind)) > 0
        assert {c.rule for c in load_suite(kind)} >= ({"MISSING_COLUMN"})


def _upload(landing: Path, trust: str, tmp_path: Path, **files: bytes) -> Path:
    """A one-trust landing zone: the generated extract of `trust`, with some files replaced."""
    src = sorted((landing / trust).iterdir())[-1]
    dst = tmp_path / "landing" / trust / "2014-06-02"
    shutil.copytree(src, dst)
    for name, raw in files.items():
        (dst / f"{name}.csv").write_bytes(raw)
    return tmp_path / "landing"


def _clean_staff(landing: Path) -> str:
    return (sorted((landing / "WIL").iterdir())[-1] / "staff.csv").read_bytes().decode("utf-8-sig")


def _check(landing, tmp_path, **files):
    out = tmp_path / "out"
    s = check_arrival(str(_upload(landing, "WIL", tmp_path, **files)), "WIL", str(out))
    folder = out / "arrivals" / "WIL" / "2014-06-02"
    q = pd.read_csv(folder / "quarantine.csv", dtype=str, keep_default_na=False)
    assert (folder / "validation_report.html").stat().st_size > 0
    return s, q


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("staff.csv", "trust_code,staff_code\n")
    return buf.getvalue()


@pytest.mark.parametrize(
    "raw, rule, line, column",
    [
        (b"", "EMPTY", 1, ""),
        (_zip(), "NOT_CSV", 1, ""),
        (b"trust_code,staff_code\nWIL,A1\n" + b"WIL,B\x81\n", "UNDECODABLE", 3, ""),
        (b"STAFF_HEADER\n", "EMPTY", 2, ""),
        (b"NO_GRADE", "MISSING_COLUMN", 1, "grade"),
        (b"STAFF_HEADER_DUP\n", "DUPLICATE_COLUMN", 1, ""),
    ],
)
def test_a_bad_file_is_rejected_with_file_line_column_and_rule(clean, tmp_path, raw, rule, line, column):
    header = _clean_staff(clean).splitlines()[0]
    if raw == b"NO_GRADE":
        raw = (
            pd.read_csv(io.StringIO(_clean_staff(clean)), dtype=str, keep_default_na=False)
            .drop(columns="grade")
            .to_csv(index=False)
            .encode()
        )
    raw = raw.replace(b"STAFF_HEADER_DUP", (header + ",grade").encode()).replace(b"STAFF_HEADER", header.encode())
    s, q = _check(clean, tmp_path, staff=raw)
    assert s["status"] == "REJECTED"
    (r,) = s["rejected_files"]
    assert (r["file"], r["rule"], r["line"], r["column"]) == ("staff.csv", rule, line, column)
    assert q[["file", "line", "rule"]].values.tolist() == [["staff.csv", str(line), rule]]
    assert [v["rule"] for v in s["validation"] if not v["success"]] == [rule]


def _with_rows(landing, *rows: str, crlf: bool = False) -> bytes:
    clean = _clean_staff(landing).splitlines()
    text = "\n".join([clean[0], clean[1], *rows, *clean[2:]]) + "\n"  # the whole file: a few rows held back
    return (text.replace("\n", "\r\n") if crlf else text).encode("utf-8")


def _row(landing, **values: str) -> str:
    header = _clean_staff(landing).splitlines()[0].split(",")
    base = {**dict(zip(header, _clean_staff(landing).splitlines()[1].split(","))), "staff_code": "ZZ1", **values}
    return ",".join(
        '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v for v in (base[h] for h in header)
    )


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"full_name": "x" * 500_000}, []),  # a 500 kB field: free text, kept
        ({"team_code": "y" * 500_000}, [("team_code", "TEAM_CODE_FORMAT")]),
        ({"full_name": "\u202eAnn 😀 \u200b", "ni_number": "NULL"}, []),
        ({"staff_code": "A\u200b1"}, [("staff_code", "STAFF_CODE_FORMAT")]),
        ({"staff_code": "\u200f"}, [("staff_code", "STAFF_CODE_FORMAT")]),
        ({"grade": "None"}, [("grade", "GRADE_KNOWN")]),
        ({"fte": "NaN"}, [("fte", "FTE_FORMAT")]),
        ({"fte": "1.5"}, [("fte", "FTE_RANGE")]),
        ({"service_start": "NULL"}, [("service_start", "DATE_FORMAT")]),
        ({"team_code": "=cmd|'/C calc'!A0"}, [("team_code", "TEAM_CODE_FORMAT")]),
        ({"full_name": 'Smith, "Jo"\nline two'}, []),
    ],
)
def test_a_bad_value_quarantines_its_row_only(clean, tmp_path, values, expected):
    raw = _with_rows(clean, _row(clean, **values))
    s, q = _check(clean, tmp_path, staff=raw)
    assert s["status"] == "VALIDATED"
    assert sorted(zip(q["column"], q["rule"])) == sorted(expected)
    assert set(q["line"]) <= {"3"}
    for value in q["value"]:
        assert not value.startswith(("=", "+", "-", "@")) or value.startswith("'")  # formula-safe


def test_ragged_rows_unclosed_quotes_and_mixed_line_endings(clean, tmp_path):
    ragged = _row(clean) + ",extra"
    quoted = _row(clean, staff_code="ZZ2", full_name="two\nlines")
    unclosed = _row(clean, staff_code="ZZ3").replace(",PO,", ',"PO,', 1)
    text = _with_rows(clean, ragged, quoted, crlf=True).decode() + unclosed + "\n"
    s, q = _check(clean, tmp_path, staff=text.encode())
    assert s["status"] == "VALIDATED"
    rest = len(_clean_staff(clean).splitlines()) - 2
    # header 1, clean row 2, ragged 3, quoted 4-5, the other clean rows from 6, then the unclosed quote
    # swallows the rest
    assert q[["line", "rule"]].values.tolist() == [["3", "RAGGED_ROW"], [str(6 + rest), "RAGGED_ROW"]]
    staff = read_text(text.encode(), "staff")
    assert staff.lines(range(len(staff.frame))) == [2, 4, *range(6, 6 + rest)]
    assert staff.frame["staff_code"].tolist()[1] == "ZZ2"


def test_an_extract_is_pending_until_checked_and_again_when_its_files_change(clean, tmp_path):
    landing, out = _upload(clean, "WIL", tmp_path), tmp_path / "out"
    folder = landing / "WIL" / "2014-06-02"
    (folder / "cases.csv").rename(tmp_path / "cases.csv")
    assert pending_arrivals(str(landing), str(out)) == []  # still landing: no cases.csv yet
    (tmp_path / "cases.csv").rename(folder / "cases.csv")
    assert pending_arrivals(str(landing), str(out)) == [{"trust": "WIL", "extract_date": "2014-06-02"}]
    check_arrival(str(landing), "WIL", str(out))
    assert pending_arrivals(str(landing), str(out)) == []
    with open(folder / "staff.csv", "ab") as f:  # re-uploaded with one more row
        f.write(b"WIL,ZZ9,New Officer,PO,OFFENDER_MANAGEMENT,T1,1.0,PERMANENT,2013-01-01\n")
    assert pending_arrivals(str(landing), str(out)) == [{"trust": "WIL", "extract_date": "2014-06-02"}]
    check_arrival(str(landing), "WIL", str(out))
    (folder.parent / "2014-06-09").mkdir()  # a newer folder, files not yet there
    assert pending_arrivals(str(landing), str(out)) == []
