"""What analysts and programme teams get: the catalog, `trp query`, the documented example queries, `trp diff`,
the run report (in headless Chromium) and each trust's workbook and README."""

import dataclasses
import io
import re
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.layout import DATASETS
from pipeline.outputs.operational import formula_safe_frame
from pipeline.outputs.workbook import transfer_workbook
from pipeline.publishing.catalog import open_catalog
from pipeline.publishing.night_diff import case_changes, quarantine_changes, staff_changes
from pipeline.runs.nightly import run_nightly
from pipeline.storage import Store
from pipeline.synthetic.landing import generate_landing

ROOT = Path(__file__).resolve().parents[2]
KEY = b"test-key-not-secret"
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Two nights on the same extracts, and the second night run twice (its first run superseded)."""
    root = tmp_path_factory.mktemp("analysts")
    landing, out = str(root / "landing"), str(root / "out")
    generate_landing(landing, 0.02, seed=5, dirty=True)
    first = run_nightly(landing, out, "2014-06-01", pseudonym_key=KEY)
    replaced = run_nightly(landing, out, "2014-06-02", pseudonym_key=KEY)
    second = run_nightly(landing, out, "2014-06-02", pseudonym_key=KEY)
    return Path(out), first, replaced, second


def _glob_count(out: Path, ds: str, where: str = "true") -> int:
    return duckdb.sql(
        f"select count(*) from read_parquet('{out}/published/{ds}/**/*.parquet', "
        f"hive_partitioning = true) where {where}"
    ).fetchall()[0][0]


def test_the_catalog_reads_exactly_what_is_published_and_keeps_replaced_runs_apart(nights):
    out, first, replaced, second = nights
    with open_catalog(Store(str(out))) as con:
        for ds in DATASETS:
            assert con.sql(f"select count(*) from {ds}").fetchall()[0][0] == _glob_count(out, ds) > 0, ds
        runs = con.sql("select run_date::varchar, run_id, supersedes from runs order by 1").fetchall()
        assert runs == [
            ("2014-06-01", first.manifest["run_id"], None),
            ("2014-06-02", second.manifest["run_id"], replaced.manifest["run_id"]),
        ]
        assert con.sql("select count(*), count(distinct trust_code) from run_trusts").fetchall()[0] == (70, 35)
        history = con.sql(
            "select superseded_run_id, run_date::varchar, count(*) from case_alignment_history group by all"
        ).fetchall()
        assert history == [
            (replaced.manifest["run_id"], "2014-06-02", _glob_count(out, "case_alignment", "run_date = '2014-06-02'"))
        ]
        by_side = "select side, sum(cases)::bigint from {} where run_date = {} group by 1 order by 1"
        assert (
            con.sql(by_side.format("caseload", "(select max(run_date) from runs)")).fetchall()
            == duckdb.sql(
                by_side.format(
                    f"read_parquet('{out}/published/caseload/**/*.parquet', hive_partitioning = true)", "'2014-06-02'"
                )
            ).fetchall()
        )
        status = dict(con.sql("select trust_code, status from run_trusts where run_date = '2014-06-02'").fetchall())
    assert status == {t: s["status"] for t, s in second.manifest["trusts"].items()}


def test_trp_query_prints_a_table_and_writes_csv_and_parquet(nights, tmp_path):
    out = nights[0]
    sql = "select trust_code, count(*) as cases from case_alignment where run_date = '2014-06-01' group by 1"
    expected = duckdb.sql(
        f"select trust_code, count(*) as cases from read_parquet('{out}/published/"
        "case_alignment/**/*.parquet', hive_partitioning = true) where run_date = '2014-06-01' "
        "group by 1 order by 1"
    ).df()
    runner = CliRunner()
    shown = runner.invoke(app, ["query", sql + " order by 1", "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "LDN" in shown.output and str(expected.set_index("trust_code").loc["LDN", "cases"]) in shown.output

    done = runner.invoke(app, ["query", sql, "--out", str(out), "--format", "csv", "--output", str(tmp_path / "q.csv")])
    assert done.exit_code == 0, done.output
    got = pd.read_csv(tmp_path / "q.csv").sort_values("trust_code").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)

    done = runner.invoke(
        app, ["query", sql, "--out", str(out), "--format", "parquet", "--output", str(tmp_path / "q.parquet")]
    )
    assert done.exit_code == 0, done.output
    got = pd.read_parquet(tmp_path / "q.parquet").sort_values("trust_code").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)

    dated = runner.invoke(
        app,
        [
            "query",
            "select run_date, count(*) as n, null::bigint as none from case_alignment group by 1 order by 1",
            "--out",
            str(out),
        ],
    )
    assert dated.exit_code == 0, dated.output
    assert "2014-06-01 " in dated.output and "00:00:00" not in dated.output  # a date prints as a date
    first = _glob_count(out, "case_alignment", "run_date = '2014-06-01'")
    assert f" {first} " in dated.output
    assert ".0" not in dated.output  # counts as integers

    bad = runner.invoke(app, ["query", "select * from no_such_view", "--out", str(out)])
    assert bad.exit_code == 2 and "no_such_view" in bad.output
    missing = runner.invoke(app, ["query", "select 1", "--out", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "nothing published yet" in missing.output


def test_every_example_query_in_the_datasets_doc_runs_and_answers(nights):
    out = nights[0]
    queries = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "datasets.md").read_text(), re.S)
    assert len(queries) == 11
    with open_catalog(Store(str(out))) as con:
        moves_latest = con.sql(
            "select count(*) from case_alignment where moved and run_date = (select max(run_date) from runs)"
        ).fetchall()[0][0]
        for q in queries:
            rows = con.sql(q).fetchall()
            # the second night keeps the first night's plan, so it may move nothing (see the diff test)
            assert rows or (" moved\n" in q and moves_latest == 0), q


def test_an_unchanged_night_changes_nothing_and_trp_diff_says_so(nights):
    out, first, _, second = nights
    with open_catalog(Store(str(out))) as con:
        cases = {
            d: con.sql(f"select trust_code, case_id, om_id, side from case_alignment where run_date = '{d}'").df()
            for d in ("2014-06-01", "2014-06-02")
        }
        staff = {
            d: con.sql(f"select trust_code, staff_id, side, unit from staff_assignment where run_date = '{d}'").df()
            for d in ("2014-06-01", "2014-06-02")
        }
    changes = case_changes(cases["2014-06-01"], cases["2014-06-02"])
    assert len(changes) == sum(t["status"] in ("FRESH", "CARRIED_OVER") for t in second.manifest["trusts"].values())
    assert (changes[["new_cases", "gone_cases", "om_changed", "side_changed"]] == 0).all().all()
    assert (changes["cases_before"] == changes["cases_after"]).all()
    assert (staff_changes(staff["2014-06-01"], staff["2014-06-02"])[["reassigned", "joined", "left"]] == 0).all().all()

    shown = CliRunner().invoke(app, ["diff", "--from", "2014-06-01", "--to", "2014-06-02", "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "om_changed" in shown.output and "reassigned" in shown.output
    unknown = CliRunner().invoke(app, ["diff", "--from", "2014-05-01", "--to", "2014-06-02", "--out", str(out)])
    assert unknown.exit_code == 2 and "no published run for 2014-05-01" in unknown.output


def test_night_diff_counts_each_kind_of_change():
    before = pd.DataFrame(
        {
            "trust_code": ["A"] * 4,
            "case_id": ["c1", "c2", "c3", "c4"],
            "om_id": ["o1", "o1", "o2", None],
            "side": ["CRC", "CRC", "NPS", "CRC"],
        }
    )
    after = pd.DataFrame(
        {
            "trust_code": ["A"] * 4,
            "case_id": ["c1", "c2", "c4", "c5"],
            "om_id": ["o1", "o3", "o1", "o1"],
            "side": ["CRC", "NPS", "CRC", "CRC"],
        }
    )
    got = case_changes(before, after).iloc[0].to_dict()
    assert got == {
        "trust_code": "A",
        "cases_before": 4,
        "cases_after": 4,
        "new_cases": 1,
        "gone_cases": 1,
        "om_changed": 2,
        "side_changed": 1,
    }
    s_before = pd.DataFrame(
        {
            "trust_code": ["A", "A", "B"],
            "staff_id": ["s1", "s2", "s3"],
            "side": ["CRC", "NPS", "NPS"],
            "unit": ["C1", "N1", "N1"],
        }
    )
    s_after = pd.DataFrame(
        {
            "trust_code": ["A", "A", "B"],
            "staff_id": ["s1", "s4", "s3"],
            "side": ["CRC", "NPS", "NPS"],
            "unit": ["C2", "N1", "N1"],
        }
    )
    got = staff_changes(s_before, s_after).set_index("trust_code")
    assert got.loc["A"].to_dict() == {"staff_before": 2, "staff_after": 2, "reassigned": 1, "joined": 1, "left": 1}
    assert got.loc["B"].to_dict() == {"staff_before": 1, "staff_after": 1, "reassigned": 0, "joined": 0, "left": 0}
    v = pd.DataFrame(
        {
            "trust_code": ["A", "A"],
            "file": ["cases.csv"] * 2,
            "rule": ["BAD_DATE", "BAD_CODE"],
            "severity": ["quarantine_row"] * 2,
            "success": [False, True],
            "unexpected_count": [3, 0],
        }
    )
    v2 = v.assign(success=[False, False], unexpected_count=[1, 4])
    q = quarantine_changes(v, v2).set_index("rule")
    assert q.loc["BAD_CODE", ["rows_before", "rows_after", "new"]].tolist() == [0, 4, True]
    assert q.loc["BAD_DATE", ["rows_before", "rows_after", "new"]].tolist() == [3, 1, False]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")
def test_the_run_report_renders_every_chart_offline_in_chromium_with_small_counts_hidden(nights, tmp_path):
    from playwright.sync_api import sync_playwright

    out, _, _, second = nights
    page_path = out / "reports" / "2014-06-02" / "index.html"
    assert page_path.exists()
    url = page_path.as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        problems, requests = [], []
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.wait_for_load_state("load")
        charts = page.locator("figure svg")
        sizes = [charts.nth(i).bounding_box() for i in range(charts.count())]
        words = page.locator("#manifest").inner_text()
        cells = page.locator("table.counts td").all_inner_texts()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert problems == []
    assert requests == [url]  # nothing fetched but the page itself
    assert len(sizes) == 7 and all(b and b["width"] > 300 and b["height"] > 100 for b in sizes), sizes
    assert second.manifest["run_id"] in words and "carried over (DOR)" in words
    numbers = [int(c) for c in cells if c.isdigit()]
    assert numbers and not any(1 <= n < 10 for n in numbers)  # small counts never shown
    assert "[c]" in cells


def test_each_trust_gets_a_transfer_workbook_by_team_and_a_readme(nights):
    out = nights[0]
    for trust in ("LDN", "KNT", "DOR"):
        folder = out / "operational" / trust / "2014-06-02"
        assert "case_alignment.csv" in (folder / "README.txt").read_text()
        moves = pd.read_csv(folder / "transfer_list.csv", dtype=str, keep_default_na=False)
        book = openpyxl.load_workbook(folder / "transfer_list.xlsx")
        teams = sorted(moves["team_code"].unique())
        assert book.sheetnames == (teams or ["no moves"])
        for team in teams:
            sheet = book[team]
            last = chr(ord("A") + len(moves.columns) - 1)
            assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith(f"A1:{last}")
            # a carriage return is stored as Excel's _x000D_ escape, which Excel reads back and openpyxl does not
            rows = [
                [(c or "").replace("_x000D_", "\r") for c in r] for r in sheet.iter_rows(min_row=2, values_only=True)
            ]
            assert rows == moves[moves["team_code"] == team].to_numpy().tolist()


def test_the_workbook_keeps_hostile_text_as_text_and_makes_valid_sheet_names():
    moves = pd.DataFrame(
        {
            "crn": ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)"],
            "current_om": ["A", "B", "C", "D"],
            "new_om": ["E", "F", "G", "H"],
            "team_code": ["T[1]:x/y", "t[1]:X/Y", "T" * 40, "T" * 40],
            "reason": ["MOVED_SIDE"] * 4,
        }
    )
    book = openpyxl.load_workbook(io.BytesIO(transfer_workbook(formula_safe_frame(moves))))
    assert book.sheetnames == ["T" * 31, "T_1__x_y", "t_1__X_Y~2"]
    cells = [r[0] for s in book.worksheets for r in s.iter_rows(min_row=2, values_only=True)]
    assert sorted(cells) == sorted(['\'=HYPERLINK("http://x")', "'+1+1", "-2", "'@SUM(A1)"])
    assert all(c.data_type == "s" for s in book.worksheets for r in s.iter_rows(min_row=2) for c in r)


def _report_inputs() -> dict[str, pd.DataFrame]:
    """The run report's inputs for two small trusts, case rows one per case."""
    return {
        "cases": pd.DataFrame(
            {
                "trust_code": ["AAA"] * 40 + ["BBB"] * 30,
                "side": ["NPS"] * 12 + ["CRC"] * 58,
                "moved": [True] * 20 + [False] * 50,
                "reason": ["MOVED_SIDE"] * 20 + ["KEPT"] * 50,
            }
        ),
        "staff": pd.DataFrame({"trust_code": ["AAA"] * 20 + ["BBB"] * 20, "side": ["NPS", "CRC"] * 20}),
        "caseload": pd.DataFrame({"utilisation": [0.5] * 15 + [1.15] * 12 + [1.25] * 11}),
        "balance": pd.DataFrame(
            {"side": ["NPS", "CRC"], "grade": ["PO", "PO"], "surplus_fte": [1.5, 0.0], "deficit_fte": [0.0, 2.0]}
        ),
        "trusts": pd.DataFrame({"trust_code": ["AAA", "BBB"], "quarantined_rows": [0, 25]}),
    }


def _report_tables(**replaced: pd.DataFrame):
    from pipeline.publishing.run_report import report_tables

    i = {**_report_inputs(), **replaced}
    return report_tables(i["cases"], i["staff"], i["caseload"], i["balance"], i["trusts"], 10)


def test_report_tables_from_grouped_case_rows_equal_those_from_every_row():
    """The run report reads case_alignment grouped (with a count per group), not row by row: same tables."""
    raw = _report_tables()
    cases = _report_inputs()["cases"]
    grouped = cases.groupby(list(cases.columns)).size().rename("rows").reset_index()
    assert len(grouped) < len(cases)
    got = _report_tables(cases=grouped)
    for field in dataclasses.fields(raw):
        a, b = getattr(raw, field.name), getattr(got, field.name)
        assert a.equals(b) if hasattr(a, "equals") else a == b, field.name


def test_the_run_report_page_is_the_same_for_the_same_run_and_runs_no_script():
    from pipeline.publishing.run_report import render_run_report

    manifest = {
        "run_id": "r1",
        "run_date": "2014-06-01",
        "started_at": "s",
        "finished_at": "f",
        "policy": {"version": "1.0", "sha256": "0" * 64},
        "code_version": "0.1.0",
        "trusts": {"AAA": {"status": "FRESH"}, "BBB": {"status": "FRESH"}},
    }
    page = render_run_report(manifest, _report_tables(), 10, 1.2)
    assert page == render_run_report(manifest, _report_tables(), 10, 1.2)  # no random ids, no dates
    assert "<script" not in page and "<!--" not in page
    assert page.count("<svg") == 7
    # The utilisation chart colours bands against the capacity line (here 120%) and HMPPS' 110% line.
    utilisation = page[page.index('id="chart-utilisation"') : page.index('id="chart-balance"')]
    assert all(
        name in utilisation for name in ("up to 110% (HMPPS warning)", "over 110%, up to 120% (capacity)", "over 120%")
    )
    one_limit = render_run_report(manifest, _report_tables(), 10, 1.0)
    utilisation = one_limit[one_limit.index('id="chart-utilisation"') : one_limit.index('id="chart-balance"')]
    assert all(
        name in utilisation for name in ("up to 100% (capacity)", "over 100%, up to 110% (HMPPS warning)", "over 110%")
    )


def test_a_load_exactly_at_capacity_is_not_over_it_in_the_report():
    from pipeline.publishing.run_report import capacity_in_words, report_tables

    t = _report_tables()
    caseload = pd.DataFrame({"utilisation": [1.0] * 12 + [1.0 + 1e-12] * 0 + [1.05] * 11})
    t = report_tables(
        pd.DataFrame({"trust_code": ["AAA"], "side": ["NPS"], "moved": [False], "reason": ["KEPT"]}),
        pd.DataFrame({"trust_code": ["AAA"], "side": ["NPS"]}),
        caseload,
        pd.DataFrame({"side": ["NPS"], "grade": ["PO"], "surplus_fte": [0.0], "deficit_fte": [0.0]}),
        pd.DataFrame({"trust_code": ["AAA"], "quarantined_rows": [0]}),
        10,
    )
    assert t.utilisation["to 100%"] == 12 and t.utilisation["to 110%"] == 11
    manifest = {
        "trusts": {
            "AAA": {
                "solver": [
                    {"side": "NPS", "over_capacity": 3, "overload_unavoidable": True, "proven": True, "gap": 0.0},
                    {"side": "CRC", "over_capacity": 2, "overload_unavoidable": False, "proven": False, "gap": 0.004},
                ]
            }
        }
    }
    words = capacity_in_words(manifest, 1.0)
    assert words.startswith("5 offender managers are over capacity")
    assert "No plan could avoid it on AAA NPS" in words and "may exist" in words and "AAA CRC (0.40%)" in words


def test_the_report_shows_capacity_both_ways_only_when_an_extract_gives_hours_or_reductions():
    from pipeline.publishing.run_report import capacity_two_ways

    n = 30
    caseload = pd.DataFrame(
        {
            "side": ["NPS"] * 12 + ["CRC"] * 18,
            "points": [60.0] * n,
            "capacity_points_fte": [60.0] * n,
            "capacity_points_hours": [30.0] * 11 + [60.0] * 19,
            "hours_given": [False] * n,
            "reduction_hours": [18.5] * 11 + [0.0] * 19,
        }
    )
    table = capacity_two_ways(caseload, 1.0, 10)
    assert table.loc["capacity points, by FTE"].tolist() == ["720", "1080", "1800"]
    assert table.loc["capacity points, by hours"].tolist() == [str(12 * 60 - 11 * 30), "1080", str(1800 - 330)]
    # at capacity by FTE is not over it; 11 NPS officers over by hours, none on the CRC side
    assert table.loc["officers over capacity, by FTE"].tolist() == ["0", "0", "0"]
    assert table.loc["officers over capacity, by hours"].tolist() == ["11", "0", "11"]
    few = caseload.assign(reduction_hours=[18.5] * 3 + [0.0] * 27, capacity_points_hours=[30.0] * 3 + [60.0] * 27)
    assert "[c]" in capacity_two_ways(few, 1.0, 10).loc["officers with a caseload reduction today"].tolist()
    same = caseload.assign(reduction_hours=0.0, capacity_points_hours=60.0)
    assert capacity_two_ways(same, 1.0, 10) is None
    assert capacity_two_ways(same.assign(hours_given=True), 1.0, 10) is not None
