"""The suites in expectations/: the vectorised mirror agrees with Great Expectations itself, and hostile
uploads get exact, line-accurate outcomes without breaking anything."""
import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline import validation
from pipeline.arrival import check_arrival, pending_arrivals
from pipeline.contract import FILES
from pipeline.generate import generate_landing
from pipeline.ingest import read_text
from pipeline.validation import load_suite, suite_dir, validate

NAUGHTY = json.loads((Path(__file__).with_name("corpora") / "big-list-of-naughty-strings" / "blns.json")
                     .read_text(encoding="utf-8"))
HOSTILE = ["NULL", "None", "NaN", "", " ", "=cmd|'/C calc'!A0", "\u200f", "A\u200b1", "😀", "-1", "1e3",
           "2014-02-30", "0x1F", "١٢٣", *NAUGHTY[::25]]


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
    return {"trust": [trust], "staff_codes": codes, "staff_codes_or_blank": codes + [""],
            "crns": cases["crn"].tolist()}


@pytest.mark.parametrize("trust, few_rows", [("LDN", 0), ("LDN", 10**9), ("WIL", 0)])
def test_mirror_agrees_with_great_expectations_row_for_row(landing, trust, few_rows, monkeypatch):
    """Both ways the mirror answers a rule: once per distinct value of an encoded column (any file of at
    least `_FEW_ROWS` rows) and once per row (a smaller file)."""
    monkeypatch.setattr(validation, "_FEW_ROWS", few_rows)
    folder = sorted((landing / trust).iterdir())[-1]
    texts = {k: read_text((folder / s.name).read_bytes(), k).frame for k, s in FILES.items()
             if (folder / s.name).exists()}
    params = _params(texts["staff"], texts["cases"], trust)
    compared = 0
    for kind, text in texts.items():
        frame = _hostile(text)
        mirror, gx = validate(kind, frame, params, "mirror"), validate(kind, frame, params, "gx")
        assert [(r["rule"], r["column"], r["success"], r["unexpected_count"]) for r in mirror.results] == \
               [(r["rule"], r["column"], r["success"], r["unexpected_count"]) for r in gx.results], kind
        pd.testing.assert_frame_equal(mirror.flagged.reset_index(drop=True), gx.flagged.reset_index(drop=True))
        compared += int(len(mirror.flagged))
    assert compared > 100  # the hostile rows really were flagged, by both


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


@pytest.mark.parametrize("raw, rule, line, column", [
    (b"", "EMPTY", 1, ""),
    (_zip(), "NOT_CSV", 1, ""),
    ("trust_code,staff_code\nWIL,A1\n".encode() + b"WIL,B\x81\n", "UNDECODABLE", 3, ""),
    ("STAFF_HEADER\n".encode(), "EMPTY", 2, ""),
    (b"NO_GRADE", "MISSING_COLUMN", 1, "grade"),
    ("STAFF_HEADER_DUP\n".encode(), "DUPLICATE_COLUMN", 1, ""),
])
def test_a_bad_file_is_rejected_with_file_line_column_and_rule(clean, tmp_path, raw, rule, line, column):
    header = _clean_staff(clean).splitlines()[0]
    if raw == b"NO_GRADE":
        raw = pd.read_csv(io.StringIO(_clean_staff(clean)), dtype=str, keep_default_na=False).drop(
            columns="grade").to_csv(index=False).encode()
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
    return ",".join('"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v
                    for v in (base[h] for h in header))


@pytest.mark.parametrize("values, expected", [
    ({"full_name": "x" * 500_000}, []),                          # a 500 kB field: free text, kept
    ({"team_code": "y" * 500_000}, [("team_code", "TEAM_CODE_FORMAT")]),
    ({"full_name": "\u202eAnn 😀 \u200b", "ni_number": "NULL"}, []),
    ({"staff_code": "A\u200b1"}, [("staff_code", "STAFF_CODE_FORMAT")]),
    ({"staff_code": "\u200f"}, [("staff_code", "STAFF_CODE_FORMAT")]),
    ({"grade": "None"}, [("grade", "GRADE_KNOWN")]),
    ({"fte": "NaN"}, [("fte", "FTE_FORMAT")]),
    ({"fte": "1.5"}, [("fte", "FTE_RANGE")]),
    ({"service_start": "NULL"}, [("service_start", "DATE_FORMAT")]),
    ({"team_code": "=cmd|'/C calc'!A0"}, [("team_code", "TEAM_CODE_FORMAT")]),
    ({"full_name": "Smith, \"Jo\"\nline two"}, []),
])
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
    assert pending_arrivals(str(landing), str(out)) == []           # still landing: no cases.csv yet
    (tmp_path / "cases.csv").rename(folder / "cases.csv")
    assert pending_arrivals(str(landing), str(out)) == [{"trust": "WIL", "extract_date": "2014-06-02"}]
    check_arrival(str(landing), "WIL", str(out))
    assert pending_arrivals(str(landing), str(out)) == []
    with open(folder / "staff.csv", "ab") as f:                        # re-uploaded with one more row
        f.write(b"WIL,ZZ9,New Officer,PO,OFFENDER_MANAGEMENT,T1,1.0,PERMANENT,2013-01-01\n")
    assert pending_arrivals(str(landing), str(out)) == [{"trust": "WIL", "extract_date": "2014-06-02"}]
    check_arrival(str(landing), "WIL", str(out))
    (folder.parent / "2014-06-09").mkdir()                               # a newer folder, files not yet there
    assert pending_arrivals(str(landing), str(out)) == []
