"""A careless or hostile trust's extract: every fault is that trust's clear rejection or finding, never a
failed night; the command line answers every bad input with one line and a documented exit code."""

import io
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import cli
from pipeline.extracts import reading, validation
from pipeline.extracts.contract import FILES
from pipeline.extracts.csv_text import FileRejected, longest_line_over, read_text
from pipeline.outputs.operational import csv_bytes, formula_safe, formula_safe_frame
from pipeline.policy import ExtractsPolicy, load_policy
from pipeline.reference import load_reference
from pipeline.runs import trust_tasks
from pipeline.runs.arrival import check_arrival
from pipeline.runs.nightly import run_nightly
from pipeline.runs.planning import TrustJob
from pipeline.storage import Store
from pipeline.synthetic.landing import generate_landing

KEY = b"test-key-not-secret"
DATE = "2014-06-01"
MISSING = [(kind, (col,)) for kind, spec in FILES.items() for col in spec.required] + [
    (kind, spec.required) for kind, spec in FILES.items() if spec.mandatory
]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean national landing zone with every trust's optional files."""
    root = tmp_path_factory.mktemp("clean") / "landing"
    generate_landing(str(root), 0.01, seed=5)
    return root


def _copy(clean: Path, tmp_path: Path, trust: str = "LDN") -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(clean / trust, landing / trust)
    return landing


def _frame(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _write(folder: Path, name: str, frame: pd.DataFrame) -> None:
    (folder / name).write_bytes(frame.to_csv(index=False).encode())


def _without(folder: Path, kind: str, columns) -> None:
    _write(folder, FILES[kind].name, _frame(folder, FILES[kind].name).drop(columns=list(columns)))


@pytest.mark.parametrize("kind, columns", MISSING, ids=[f"{k}-{'all' if len(c) > 1 else c[0]}" for k, c in MISSING])
def test_every_required_column_missing_alone_or_together_rejects_its_file(clean, tmp_path, kind, columns):
    landing = _copy(clean, tmp_path)
    _without(landing / "LDN" / DATE, kind, columns)
    s = check_arrival(str(landing), "LDN", str(tmp_path / "out"))
    assert s["status"] == "REJECTED"
    (r,) = s["rejected_files"]
    assert (r["file"], r["line"], r["rule"]) == (FILES[kind].name, 1, "MISSING_COLUMN")
    assert r["column"].split(", ") == sorted(columns)
    assert f"required column(s) missing: {', '.join(sorted(columns))}." in r["message"]
    assert s["quarantined_rows"] == 0  # a rejected file is not also a row held back
    q = pd.read_csv(tmp_path / "out" / "arrivals" / "LDN" / DATE / "quarantine.csv", dtype=str, keep_default_na=False)
    assert q[["file", "rule"]].values.tolist() == [[FILES[kind].name, "MISSING_COLUMN"]]


def test_trp_run_publishes_every_other_trust_when_trusts_miss_columns(clean, tmp_path):
    """Each of 32 trusts misses other required columns (each one alone, then all of a mandatory file's): one run, the
    night published for all 35 with exit 3, each broken trust rejected with exactly its missing columns."""
    landing = tmp_path / "landing"
    shutil.copytree(clean, landing)
    broken = dict(zip(load_reference().trust_codes, MISSING))
    for trust, (kind, columns) in broken.items():
        _without(landing / trust / DATE, kind, columns)
    result = run_nightly(str(landing), str(tmp_path / "out"), DATE, pseudonym_key=KEY)
    assert result.exit_code == 3
    trusts = result.manifest["trusts"]
    for trust, t in trusts.items():
        if trust in broken:
            kind, columns = broken[trust]
            assert t["status"] == "REJECTED", trust
            assert [(r["file"], r["rule"], r["column"]) for r in t["rejected_files"]] == [
                (f"{DATE}/{FILES[kind].name}", "MISSING_COLUMN", ", ".join(sorted(columns)))
            ], trust
            assert t["quarantined_rows"] == 0
        else:
            assert t["status"] == "FRESH" and t["cases"] > 0, trust
    assert len(trusts) == 35 and len(broken) == len(MISSING) == 32


def _rows_with_bad_dates(folder: Path, bad: int) -> int:
    """cases.csv with `bad` rows' sentence dates written dd/mm/yyyy; the file's row count."""
    cases = _frame(folder, "cases.csv")
    day = pd.to_datetime(cases["sentence_date"])
    cases.loc[cases.index[:bad], "sentence_date"] = day[:bad].dt.strftime("%d/%m/%Y")
    _write(folder, "cases.csv", cases)
    return len(cases)


def test_a_file_whose_every_row_is_held_back_is_rejected_and_the_last_good_extract_used(clean, tmp_path):
    landing = _copy(clean, tmp_path)
    shutil.copytree(landing / "LDN" / DATE, landing / "LDN" / "2014-06-02")
    rows = _rows_with_bad_dates(landing / "LDN" / "2014-06-02", bad=10**9)
    s = check_arrival(str(landing), "LDN", str(tmp_path / "out"))
    assert s["status"] == "REJECTED"
    (r,) = s["rejected_files"]
    assert (r["file"], r["rule"], r["line"]) == ("cases.csv", "TOO_MANY_ROWS_HELD_BACK", 2)
    assert r["message"].startswith(f"{rows:,} of {rows:,} rows (100%) break row rules, more than the 20%")
    assert f"DATE_FORMAT on sentence_date: {rows:,} row(s)" in r["message"]
    assert s["quarantined_rows"] == rows  # every row to fix is listed with its line
    q = pd.read_csv(
        tmp_path / "out" / "arrivals" / "LDN" / "2014-06-02" / "quarantine.csv", dtype=str, keep_default_na=False
    )
    assert (q["rule"] == "DATE_FORMAT").sum() == rows and q["line"].iloc[1:].astype(int).is_monotonic_increasing

    trust_task_job = TrustJob("LDN", "N07", "C17", str(landing), str(tmp_path / "night"), "r1", "2014-06-02", KEY, 3)
    night = trust_tasks.ingest_trust(trust_task_job)
    assert (night["status"], night["extract_date"]) == ("CARRIED_OVER", DATE)
    assert night["accepted_rows"]["cases"] == rows  # the plan is made from the last good extract, whole
    assert night["rejected_files"][0]["rule"] == "TOO_MANY_ROWS_HELD_BACK"


@pytest.mark.parametrize("extra, status", [(0, "VALIDATED"), (1, "REJECTED")])
def test_a_file_held_back_up_to_the_share_is_used_and_one_row_more_is_not(clean, tmp_path, extra, status):
    landing = _copy(clean, tmp_path)
    folder = landing / "LDN" / DATE
    rows = len(_frame(folder, "cases.csv"))
    limit = int(rows * load_policy().extracts.max_held_back_share)
    _rows_with_bad_dates(folder, limit + extra)
    s = check_arrival(str(landing), "LDN")
    assert s["status"] == status
    if status == "VALIDATED":
        assert [q["rule"] for q in s["held_back"] if q["file"] == "cases.csv"] == ["DATE_FORMAT"] * limit
    else:
        assert s["rejected_files"][0]["rule"] == "TOO_MANY_ROWS_HELD_BACK"
    tight = ExtractsPolicy(max_held_back_share=0.01)  # the share is the policy's
    assert check_arrival(str(landing), "LDN", limits=tight)["status"] == "REJECTED"


def test_an_unexpected_error_checking_a_file_is_that_trusts_rejection_and_a_bug_under_test(
    clean, tmp_path, monkeypatch
):
    landing = _copy(clean, tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("the check itself broke")

    monkeypatch.setattr(reading, "validate", broken)
    with pytest.raises(RuntimeError):  # TRP_RAISE_FAULTS=1 under test: a bug fails loudly
        check_arrival(str(landing), "LDN")
    monkeypatch.delenv("TRP_RAISE_FAULTS")
    s = check_arrival(str(landing), "LDN")
    assert s["status"] == "REJECTED"
    (r,) = s["rejected_files"]
    assert (r["file"], r["rule"]) == ("staff.csv", "CHECK_FAILED")
    assert "RuntimeError: the check itself broke" in r["message"] and "programme data team" in r["message"]


def test_a_held_back_staff_row_is_named_on_its_officers_cases_not_as_a_leaver(clean, tmp_path):
    landing = _copy(clean, tmp_path)
    folder = landing / "LDN" / DATE
    staff, cases = _frame(folder, "staff.csv"), _frame(folder, "cases.csv")
    officer = cases["om_staff_code"].replace("", None).dropna().value_counts().index[0]
    row = staff.index[staff["staff_code"] == officer][0]
    staff.loc[row, "grade"] = "P0"
    _write(folder, "staff.csv", staff)
    s = check_arrival(str(landing), "LDN")
    assert s["status"] == "VALIDATED"
    assert [(q["line"], q["rule"]) for q in s["held_back"] if q["file"] == "staff.csv"] == [(row + 2, "GRADE_KNOWN")]
    theirs = [w for w in s["warning_rows"] if w["value"] == officer]
    assert len(theirs) == (cases["om_staff_code"] == officer).sum() > 0
    assert {w["rule"] for w in theirs} == {"OM_STAFF_ROW_HELD_BACK"}
    assert all(f"staff.csv (line {row + 2}) was held back" in w["message"] for w in theirs)
    assert not any("has left" in w["message"] for w in theirs)


def test_blank_lines_are_skipped_and_counted_once(clean, tmp_path):
    landing = _copy(clean, tmp_path)
    folder = landing / "LDN" / DATE
    raw = (folder / "staff.csv").read_bytes()
    width = raw.split(b"\n", 1)[0].count(b",")
    (folder / "staff.csv").write_bytes(raw + (b"," * width + b"\r\n") * 3 + b" ," + b"," * (width - 1) + b"\n")
    s = check_arrival(str(landing), "LDN")
    clean_s = check_arrival(str(clean), "LDN")
    assert s["status"] == "VALIDATED"
    assert s["held_back"] == clean_s["held_back"] and s["warnings"] == clean_s["warnings"]
    rows = raw.count(b"\n")
    assert f"staff.csv: 4 blank line(s) skipped (line {rows + 1}, {rows + 2}, {rows + 3}, {rows + 4})" in s["notes"]


def test_a_date_folder_must_be_a_date_and_nothing_more(clean, tmp_path):
    landing = _copy(clean, tmp_path)
    shutil.copytree(landing / "LDN" / DATE, landing / "LDN" / "2014-06-05\n")
    shutil.copytree(landing / "LDN" / DATE, landing / "LDN" / "2014-02-30")
    dates, odd = reading.extract_dates(Store(str(landing)), "LDN", "2014-06-30")
    assert dates == [DATE] and sorted(odd) == ["2014-02-30", "2014-06-05\n"]


def test_symlinks_in_the_landing_zone_are_never_followed(clean, tmp_path):
    landing = _copy(clean, tmp_path)
    secret = tmp_path / "secret.csv"
    secret.write_bytes((landing / "LDN" / DATE / "staff.csv").read_bytes())
    (landing / "LDN" / DATE / "staff.csv").unlink()
    (landing / "LDN" / DATE / "staff.csv").symlink_to(secret)
    s = check_arrival(str(landing), "LDN")
    assert [(r["file"], r["rule"]) for r in s["rejected_files"]] == [("staff.csv", "NOT_A_FILE")]
    other = tmp_path / "elsewhere"
    shutil.copytree(clean / "WIL" / DATE, other)
    (landing / "LDN" / "2014-06-09").symlink_to(other, target_is_directory=True)  # a linked date folder
    dates, _ = reading.extract_dates(Store(str(landing)), "LDN", "2014-06-30")
    assert dates == [DATE]


@pytest.mark.parametrize(
    "raw, rule, line, says",
    [
        ("trust_code,staff_code\r\nLDN,A1\r\n".encode("utf-16"), "WRONG_ENCODING", 1, "save it as 'CSV UTF-8"),
        ("trust_code,staff_code\nLDN,A1\n".encode("utf-16-le"), "WRONG_ENCODING", 1, "save it as 'CSV UTF-8"),
        (
            b"trust_code,staff_code\nLDN,A1\n" + b"x" * (2 << 20) + b"\nLDN,A2\n",
            "LINE_TOO_LONG",
            3,
            "line 3 is 2,097,152 bytes long; no line of an extract may be longer than 1,048,576 bytes",
        ),
        (b"trust_code,staff_code\r\rLDN,A1\r" + b"x" * (2 << 20), "LINE_TOO_LONG", 4, "a lost line break"),
        (
            ",".join(f"c{i}" for i in range(100_000)).encode() + b"\n" + b"," * 99_999 + b"\n",
            "TOO_MANY_COLUMNS",
            1,
            "the header has 100,000 columns; an extract has at most 200",
        ),
    ],
)
def test_files_that_are_no_extract_are_rejected_before_parsing_with_what_to_do(raw, rule, line, says):
    with pytest.raises(FileRejected) as found:
        read_text(raw, "staff")
    assert (found.value.rule, found.value.line) == (rule, line)
    assert says in found.value.message


@given(
    st.lists(st.integers(0, 300), min_size=0, max_size=12),
    st.integers(1, 120),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_the_long_line_scan_finds_what_a_pass_over_every_line_finds(lengths, limit, end):
    raw = end.join(b"x" * n for n in lengths)
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n") if raw else []
    over = [(i + 1, len(x)) for i, x in enumerate(lines) if len(x) > limit]
    found = longest_line_over(raw, limit)
    if not over:
        assert found is None
    else:
        assert found is not None and found[1] > limit
        assert found in over


@pytest.mark.parametrize(
    "value, safe",
    [
        ("-Infinity", "'-Infinity"),
        ("+nan", "'+nan"),
        ("-1e", "'-1e"),
        ("\t1", "'\t1"),
        ("\r1", "'\r1"),
        ("=1+1", "'=1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-", "'-"),
        ("+", "'+"),
        ("- 1", "'- 1"),
        ("-0x1F", "'-0x1F"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("-1e5", "-1e5"),
        ("-.5", "-.5"),
        ("12", "12"),
        ("Smith", "Smith"),
    ],
)
def test_a_cell_a_spreadsheet_would_read_as_a_formula_is_escaped_unless_a_plain_number(value, safe):
    assert formula_safe(value) == safe
    written = csv_bytes(formula_safe_frame(pd.DataFrame({"note": [value]}))).decode()
    assert pd.read_csv(io.StringIO(written), dtype=str, keep_default_na=False)["note"].tolist() == [safe]


def _trp(capsys, monkeypatch, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["trp", *args])
    monkeypatch.setattr(cli, "_OPTIONS", {"debug": False})
    with pytest.raises(SystemExit) as done:
        cli.main()
    return done.value.code, capsys.readouterr().err


def _upload(token: str = "TOKEN", date: str = DATE) -> list[str]:
    return ["upload", "FILE", "--url", "http://127.0.0.1:9", "--token-file", token, "--trust", "LDN", "--date", date]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["run", "--run-date", "01/06/2014"], 2, "the run date must be a real date written YYYY-MM-DD"),
        (["run", "--run-date", "2014-02-30"], 2, "not '2014-02-30'"),
        (["run", "--run-date", ""], 2, "not ''"),
        (
            ["run", "--run-date", DATE, "--policy", "/no/such/policy.yaml"],
            2,
            "policy file /no/such/policy.yaml not found",
        ),
        (
            ["run", "--run-date", DATE, "--policy", "TYPO"],
            2,
            "alignment.capacity_limit_pc: Extra inputs are not permitted",
        ),
        (["validate", "--trust", "XYZ"], 2, "unknown trust code 'XYZ'"),
        (_upload(), 2, "cannot reach the upload service at http://127.0.0.1:9"),
        (_upload("/no/token"), 2, "the token file /no/token cannot be read"),
        (_upload("TOKEN", "2014-6-1"), 2, "--date must be a real date"),
    ],
)
def test_every_command_line_error_is_one_clear_line_with_its_exit_code(
    tmp_path, capsys, monkeypatch, args, code, message
):
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        (Path(cli.__file__).parent / "data" / "policy-v1.yaml")
        .read_text()
        .replace("capacity_limit_pct", "capacity_limit_pc")
    )
    (tmp_path / "token").write_text("trp.0.x")
    (tmp_path / "staff.csv").write_text("trust_code\n")
    where = {"TYPO": str(typo), "TOKEN": str(tmp_path / "token"), "FILE": str(tmp_path / "staff.csv")}
    args = [where.get(a, a) for a in args]
    if args[0] in ("run", "validate"):
        args += ["--landing", str(tmp_path / "landing")]
        args += ["--out", str(tmp_path / "out")] if args[0] == "run" else []
    got, err = _trp(capsys, monkeypatch, *args)
    assert got == code
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out" / "published").exists()


def test_an_unexpected_error_is_one_line_with_exit_4_and_a_traceback_only_with_debug(tmp_path, capsys, monkeypatch):
    import pipeline.runs.nightly

    def fails(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(pipeline.runs.nightly, "run_nightly", fails)
    args = ["run", "--landing", str(tmp_path), "--out", str(tmp_path / "out"), "--run-date", DATE]
    code, err = _trp(capsys, monkeypatch, *args)
    assert code == 4 and len(err.strip().splitlines()) == 1
    assert "unexpected ZeroDivisionError: division by zero (run again with --debug" in err
    monkeypatch.setattr(sys, "argv", ["trp", "--debug", *args])
    with pytest.raises(ZeroDivisionError):
        cli.main()


def test_a_trusts_line_has_no_stray_separator():
    assert (
        cli.trust_line({"trust": "WIL", "status": "VALIDATED", "quarantined_rows": 7})
        == "WIL  VALIDATED    7 row(s) quarantined"
    )
    assert (
        cli.trust_line({"trust": "WIL", "status": "FRESH", "cases": 5, "moved": 1, "warnings": 2})
        == "WIL  FRESH              5 cases,      1 moved, 2 warning(s)"
    )
    assert (
        cli.trust_line({"trust": "WIL", "status": "REJECTED", "rejected_files": [{}]})
        == "WIL  REJECTED     1 file(s) rejected"
    )


def test_the_templates_are_one_valid_extract_with_no_finding(tmp_path):
    from pipeline.extracts.guide import template_csv

    folder = tmp_path / "landing" / "WIL" / DATE
    folder.mkdir(parents=True)
    for kind, spec in FILES.items():
        (folder / spec.name).write_text(template_csv(kind))
        header = template_csv(kind).splitlines()[0].split(",")
        assert header == [*spec.required, *spec.optional], kind  # every column, required ones first
    s = check_arrival(str(tmp_path / "landing"), "WIL")
    assert (s["status"], s["held_back"], s["warning_rows"], s.get("notes")) == ("VALIDATED", [], [], [])
    assert all(r["success"] for r in s["validation"])


def test_the_extract_contract_says_what_to_do_for_every_rule_a_trust_can_meet():
    from pipeline.extracts.guide import guide_text, what_to_do

    suites = {c.rule for kind in FILES for c in validation.load_suite(kind)}
    codes = suites | {  # the rules found outside the suites: reading a file, the share, the run-wide check
        "RAGGED_ROW",
        "NOT_A_FILE",
        "CHECK_FAILED",
        "TOO_MANY_ROWS_HELD_BACK",
        "TOO_MANY_COLUMNS",
        "LINE_TOO_LONG",
        "WRONG_ENCODING",
        "UNDECODABLE",
        "NOT_CSV",
        "EMPTY",
        "DUPLICATE_COLUMN",
        "MISSING_FILE",
        "OM_STAFF_ROW_HELD_BACK",
        validation.CROSS_TRUST_RULE,
    }
    fixes = what_to_do()
    assert sorted(c for c in codes if not fixes.get(c)) == []
    assert Path(__file__).parents[2].joinpath("docs", "extract-contract.md").read_text() == guide_text()


def test_a_small_file_is_never_rejected_for_its_share_each_bad_row_is_held_back(clean, tmp_path):
    landing = _copy(clean, tmp_path, "WIL")
    rows = _rows_with_bad_dates(landing / "WIL" / DATE, bad=3)
    assert rows < load_policy().extracts.held_back_share_min_rows and 3 / rows > 0.05
    s = check_arrival(str(landing), "WIL", limits=ExtractsPolicy(max_held_back_share=0.05))
    assert s["status"] == "VALIDATED"
    assert [q["rule"] for q in s["held_back"] if q["file"] == "cases.csv"] == ["DATE_FORMAT"] * 3
