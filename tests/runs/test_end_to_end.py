"""End to end on a small generated landing zone: real Dask workers, real files, read back with DuckDB."""

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.runs.nightly import run_nightly
from pipeline.runs.planning import RunRefused
from pipeline.storage import Store
from pipeline.synthetic.landing import generate_landing

KEY = b"test-key-not-secret"
SCALE = 0.02


@pytest.fixture(scope="module")
def dirty_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    landing, out = str(root / "landing"), str(root / "out")
    generate_landing(landing, SCALE, seed=1, dirty=True)
    result = run_nightly(landing, out, "2014-06-01", pseudonym_key=KEY)
    return root, landing, out, result


def _published(out: str, dataset: str) -> pd.DataFrame:
    return duckdb.sql(
        f"select * from read_parquet('{out}/published/{dataset}/**/*.parquet', hive_partitioning=true)"
    ).df()


def test_dirty_run_publishes_with_exit_3_and_carries_over_the_broken_trust(dirty_run):
    _, _, out, result = dirty_run
    assert result.exit_code == 3
    trusts = result.manifest["trusts"]
    assert len(trusts) == 35
    assert trusts["DOR"]["status"] == "CARRIED_OVER" and trusts["DOR"]["extract_date"] == "2014-05-31"
    assert trusts["DOR"]["rejected_files"][0]["rule"] == "MISSING_COLUMN"
    assert all(t["status"] == "FRESH" for code, t in trusts.items() if code != "DOR")
    assert set(_published(out, "case_alignment")["trust_code"]) == set(trusts)


def test_every_uploaded_case_row_is_aligned_or_quarantined(dirty_run):
    _, landing, out, result = dirty_run
    for trust, info in result.manifest["trusts"].items():
        date = info["extract_date"]
        uploaded = pd.read_csv(
            Path(landing, trust, date, "cases.csv"), dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
        op = Path(out, "operational", trust, "2014-06-01")
        aligned = pd.read_csv(op / "case_alignment.csv", dtype=str, keep_default_na=False)
        quarantine = pd.read_csv(op / "quarantine.csv", dtype=str, keep_default_na=False)
        held = quarantine[quarantine["file"] == "cases.csv"]["line"].nunique()
        assert len(aligned) + held == len(uploaded), trust
        assert aligned["crn"].is_unique


def test_quarantine_names_file_line_column_rule_as_the_trust_sees_it(dirty_run):
    _, landing, out, _ = dirty_run
    q = pd.read_csv(Path(out, "operational", "LDN", "2014-06-01", "quarantine.csv"), dtype=str, keep_default_na=False)
    bad_crn = q[q["rule"] == "CRN_FORMAT"].iloc[0]
    assert bad_crn["file"] == "cases.csv" and bad_crn["column"] == "crn"
    lines = Path(landing, "LDN", "2014-06-01", "cases.csv").read_bytes().decode().split("\r\n")
    assert lines[int(bad_crn["line"]) - 1].split(",")[1] == "x12"
    formula = q[q["rule"] == "TEAM_CODE_FORMAT"]["value"].iloc[0]
    assert formula.startswith("'=")  # neutralised for spreadsheets


def test_no_identifier_reaches_the_published_zone(dirty_run):
    _, landing, out, _ = dirty_run
    staff = pd.read_csv(Path(landing, "LDN", "2014-06-01", "staff.csv"), dtype=str)
    cases = pd.read_csv(Path(landing, "LDN", "2014-06-01", "cases.csv"), dtype=str)
    secrets = set(staff["staff_code"]) | set(cases["crn"]) | set(staff["full_name"])
    blob = b"".join(p.read_bytes() for p in Path(out, "published").rglob("*.parquet"))
    text = pd.concat([_published(out, d).astype(str) for d in ("staff_assignment", "case_alignment", "caseload")])
    assert not secrets & set(text.to_numpy().ravel())
    well_formed = [c for c in list(staff["staff_code"]) + list(cases["crn"].dropna()) if len(c) == 7]
    leaked = [code for code in well_formed if code.encode() in blob]
    assert not leaked


def test_rerun_replaces_the_date_and_keeps_the_old_run_for_audit(dirty_run):
    root, landing, out, first = dirty_run
    before = _published(out, "case_alignment").sort_values(["trust_code", "case_id"]).reset_index(drop=True)
    second = run_nightly(landing, out, "2014-06-01", pseudonym_key=KEY)
    after = _published(out, "case_alignment").sort_values(["trust_code", "case_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)  # same inputs: identical data, no duplicates
    manifest = json.loads(Path(second.manifest_path).read_text())
    assert manifest["run_id"] == second.manifest["run_id"] != first.manifest["run_id"]
    assert Path(out, "runs", first.manifest["run_id"], "published", "case_alignment").is_dir()
    assert not list(Path(out, "_runs").iterdir())  # no staging debris


def _visible(out: str) -> tuple[str, pd.DataFrame]:
    pointer = Path(out, "published", "_manifests", "run_date=2014-06-01.json").read_text()
    rows = _published(out, "case_alignment").sort_values(["trust_code", "case_id"]).reset_index(drop=True)
    return pointer, rows


def test_a_crash_before_the_manifest_changes_nothing_visible(dirty_run, monkeypatch):
    _, landing, out, _ = dirty_run
    pointer, rows = _visible(out)
    real_write = Store.write_bytes

    def write(self, data, *parts):
        if "_manifests" in parts:
            raise RuntimeError("killed between writing data and writing the manifest")
        return real_write(self, data, *parts)

    monkeypatch.setattr(Store, "write_bytes", write)
    with pytest.raises(RuntimeError, match="killed"):
        run_nightly(landing, out, "2014-06-01", pseudonym_key=KEY)
    after_pointer, after_rows = _visible(out)
    assert after_pointer == pointer
    pd.testing.assert_frame_equal(after_rows, rows)


def test_a_swap_interrupted_after_the_manifest_is_finished_by_the_next_run(dirty_run, monkeypatch):
    _, landing, out, _ = dirty_run
    real_move, moves = Store.move, []

    def move(self, src, dst):
        if len(moves) == 3:
            raise RuntimeError("killed in the middle of the swap")
        moves.append(src)
        return real_move(self, src, dst)

    monkeypatch.setattr(Store, "move", move)
    with pytest.raises(RuntimeError, match="killed"):
        run_nightly(landing, out, "2014-06-01", pseudonym_key=KEY)
    committed = json.loads(Path(out, "published", "_manifests", "run_date=2014-06-01.json").read_text())
    assert Path(out, "_runs", committed["run_id"]).is_dir()  # half swapped, staged rest still there
    monkeypatch.setattr(Store, "move", real_move)
    from pipeline.publishing.commit import recover

    assert recover(Store(out)) == [committed["run_id"]]
    assert not list(Path(out, "_runs").iterdir())
    assert Path(out, "runs", committed["run_id"], "manifest.json").is_file()
    for ds in ("staff_assignment", "case_alignment", "caseload", "workforce_balance"):
        assert len(_published(out, ds)), ds
    trusts = set(_published(out, "case_alignment")["trust_code"])
    assert trusts == set(committed["trusts_published"])


def test_no_key_refuses_to_publish(tmp_path, monkeypatch):
    monkeypatch.delenv("TRP_PSEUDONYM_KEY", raising=False)
    with pytest.raises(RunRefused, match="TRP_PSEUDONYM_KEY"):
        run_nightly(str(tmp_path), str(tmp_path / "out"), "2014-06-01")
    assert not (tmp_path / "out").exists()


def test_the_next_night_of_an_unchanged_extract_keeps_last_nights_plan_byte_for_byte(dirty_run):
    """Night after night: an extract that has not changed gets the same staff sides and the same plan, every
    planned move still listed with the night it was first planned, now a day outstanding."""
    _, landing, out, first = dirty_run
    second = run_nightly(landing, out, "2014-06-02", pseudonym_key=KEY)
    assert {t["previous_plan"] for t in second.manifest["trusts"].values() if "cases" in t} == {"2014-06-01"}
    for trust in ("LDN", "WIL", "KNT"):
        nights = [Path(out, "operational", trust, d) for d in ("2014-06-01", "2014-06-02")]
        for name in ("case_alignment.csv", "staff_assignment.csv"):
            assert (nights[0] / name).read_bytes() == (nights[1] / name).read_bytes(), (trust, name)
        lists = [pd.read_csv(n / "transfer_list.csv", dtype=str, keep_default_na=False) for n in nights]
        assert len(lists[0]) == len(lists[1]) > 0, trust
        assert set(lists[0]["days_outstanding"]) == {"0"} and set(lists[1]["days_outstanding"]) == {"1"}
        assert lists[0].drop(columns="days_outstanding").equals(lists[1].drop(columns="days_outstanding"))


def test_a_crn_in_two_trusts_is_reported_to_both_and_aligned_by_both(dirty_run):
    _, landing, out, result = dirty_run
    uploads = {
        t: pd.read_csv(
            Path(landing, t, info["extract_date"], "cases.csv"), dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
        for t, info in result.manifest["trusts"].items()
    }
    crns = pd.concat([df[["crn"]].assign(trust=t) for t, df in uploads.items()])
    crns = crns[crns["crn"].str.fullmatch(r"[A-Z][0-9]{6}")]
    shared = crns.groupby("crn")["trust"].nunique()
    shared = set(shared[shared > 1].index)
    assert len(shared) == 1  # the generator's one conflict; duplicates within a file are another rule
    holders = set(crns.loc[crns["crn"].isin(shared), "trust"])
    for trust in holders:
        op = Path(out, "operational", trust, "2014-06-01")
        w = pd.read_csv(op / "warnings.csv", dtype=str, keep_default_na=False)
        hit = w[w["rule"] == "CRN_IN_TWO_TRUSTS"]
        assert set(hit["value"]) == shared and set(hit["column"]) == {"crn"}
        (other,) = holders - {trust}
        assert f"also in {other}" in hit["message"].iloc[0]
        line = int(hit["line"].iloc[0])
        assert uploads[trust]["crn"].iloc[line - 2] in shared  # no quoted newlines in this file's rows
        aligned = pd.read_csv(op / "case_alignment.csv", dtype=str, keep_default_na=False)
        assert shared <= set(aligned["crn"])
        assert result.manifest["trusts"][trust]["crn_conflicts"] == 1
        assert "CRN_IN_TWO_TRUSTS" in (op / "validation_report.html").read_text(encoding="utf-8")


def test_validation_dataset_has_every_expectation_of_every_trust(dirty_run):
    _, _, out, result = dirty_run
    v = _published(out, "validation")
    v = v[v["run_date"].astype(str) == "2014-06-01"]
    assert set(v["trust_code"]) == set(result.manifest["trusts"])
    assert set(v["severity"]) == {"reject_file", "quarantine_row", "report"}
    dor = v[v["trust_code"] == "DOR"]
    assert set(dor["extract_date"]) == {"2014-06-01", "2014-05-31"}  # the rejected extract and the one used
    failed = dor[(dor["extract_date"] == "2014-06-01") & ~dor["success"]]
    assert failed[["file", "rule", "column"]].values.tolist() == [["staff.csv", "MISSING_COLUMN", ""]]
    # failing row rules count exactly the rows quarantined for them
    for trust, info in result.manifest["trusts"].items():
        q = pd.read_csv(
            Path(out, "operational", trust, "2014-06-01", "quarantine.csv"), dtype=str, keep_default_na=False
        )
        mine = v[
            (v["trust_code"] == trust)
            & (v["extract_date"] == info["extract_date"])
            & (v["severity"] == "quarantine_row")
        ]
        counted = mine.groupby(["file", "rule"])["unexpected_count"].sum()
        rows = q[(q["rule"] != "RAGGED_ROW") & ~q["file"].str.contains("/")]  # "<date>/<file>": a rejected file
        held = rows.groupby(["file", "rule"]).size()
        assert counted[counted > 0].sort_index().to_dict() == held.sort_index().to_dict(), trust
        assert info["checks_failed"] == int((~v[v["trust_code"] == trust]["success"]).sum())


def test_every_trust_gets_a_validation_report(dirty_run):
    _, _, out, result = dirty_run
    for trust in result.manifest["trusts"]:
        page = Path(out, "operational", trust, "2014-06-01", "validation_report.html").read_text(encoding="utf-8")
        assert page.startswith("<!doctype html>") and f"<h1>{trust}: extract validation</h1>" in page
        assert not any(tag in page for tag in ("<script", "<link", "src=", "href=", "@import"))  # no fetches
    dor = Path(out, "operational", "DOR", "2014-06-01", "validation_report.html").read_text(encoding="utf-8")
    assert "CARRIED_OVER" in dor and "MISSING_COLUMN" in dor and "grade" in dor


def test_each_files_great_expectations_result_is_kept_and_published_as_the_validation_dataset(dirty_run):
    """GX's own JSON per run, trust, extract and file; the `validation` dataset says what it says."""
    _, _, out, result = dirty_run
    kept = Path(out, "runs", result.manifest["run_id"], "validation")
    files = sorted(kept.glob("*/*/*.json"))
    assert {p.parts[-3] for p in files} == set(result.manifest["trusts"])
    assert (kept / "DOR" / "2014-06-01" / "staff.json").exists()  # the rejected extract's result is kept too
    published = _published(out, "validation")
    for path in files:
        trust, date, kind = path.parts[-3], path.parts[-2], path.stem
        gx = json.loads(path.read_text())
        assert gx["meta"]["active_batch_definition"]["data_asset_name"] == kind
        rows = published[
            (published["trust_code"] == trust)
            & (published["extract_date"] == date)
            & (published["file"] == f"{kind}.csv")
            & published["expectation"].str.startswith("expect_")
        ]
        if trust == "DOR" and date == "2014-06-01":
            continue  # rejected for a missing column: only the table rules are published
        want = {
            (
                r["expectation_config"]["meta"]["rule"],
                r["expectation_config"]["type"],
                r["success"],
                r["result"].get("unexpected_count", 0),
            )
            for r in gx["results"]
        }
        got = set(zip(rows["rule"], rows["expectation"], rows["success"], rows["unexpected_count"]))
        assert got == want, (trust, kind)


CHROMIUM = __import__("shutil").which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")
def test_the_runs_data_docs_list_every_result_and_open_offline_in_chromium(dirty_run):
    from playwright.sync_api import sync_playwright

    _, _, out, result = dirty_run
    site = Path(out, "reports", "2014-06-01", "data-docs")
    results = len(list(Path(out, "runs", result.manifest["run_id"], "validation").glob("*/*/*.json")))
    assert 'href="data-docs/index.html"' in Path(out, "reports", "2014-06-01", "index.html").read_text()
    london = next(site.glob("validations/cases/*/*/LDN-2014-06-01.html"))
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for name, page_path in (("index", site / "index.html"), ("london", london)):
            page = browser.new_page()
            problems, fetched = [], []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            seen[name] = (
                problems,
                [u for u in fetched if not u.startswith("file://")],
                page.locator("table tbody tr").count(),
                page.locator("body").inner_text(),
            )
        browser.close()
    for name, (problems, remote, _, _) in seen.items():
        assert problems == [] and remote == [], name  # no error, nothing fetched from the network
    assert seen["index"][2] > 0  # the index's table is drawn (a page at a time), and it links every result
    linked = set(re.findall(r'validations/[^"\\]*\.html', (site / "index.html").read_text()))
    assert len(linked) == results == len(list(site.glob("validations/*/*/*/*.html")))
    assert "crn" in seen["london"][3] and "Failed" in seen["london"][3]


def test_the_nightly_run_validates_with_the_suites_it_is_given(dirty_run, tmp_path, monkeypatch):
    """The night's validation is Great Expectations running the suite files: a suite edited in a copy
    quarantines what it now forbids, and GX's kept result names the expectation."""
    import shutil

    from pipeline.extracts.validation import suite_dir

    root, landing, _, _ = dirty_run
    suites = tmp_path / "expectations"
    shutil.copytree(suite_dir(), suites)
    staff = json.loads((suites / "staff.json").read_text())
    grade = next(e for e in staff["expectations"] if e["meta"]["rule"] == "GRADE_KNOWN")
    grade["kwargs"]["value_set"] = [g for g in grade["kwargs"]["value_set"] if g != "PSO"]
    (suites / "staff.json").write_text(json.dumps(staff))
    monkeypatch.setenv("TRP_EXPECTATIONS", str(suites))
    one = tmp_path / "landing"
    shutil.copytree(Path(landing, "WIL"), one / "WIL")
    out = tmp_path / "out"
    result = run_nightly(str(one), str(out), "2014-06-01", pseudonym_key=KEY)
    uploaded = pd.read_csv(one / "WIL" / "2014-06-01" / "staff.csv", dtype=str, keep_default_na=False)
    pso = int((uploaded["grade"] == "PSO").sum())
    assert pso > 0
    q = pd.read_csv(out / "operational" / "WIL" / "2014-06-01" / "quarantine.csv", dtype=str, keep_default_na=False)
    assert int((q["rule"] == "GRADE_KNOWN").sum()) == pso
    gx = json.loads(
        Path(out, "runs", result.manifest["run_id"], "validation", "WIL", "2014-06-01", "staff.json").read_text()
    )
    (known,) = [r for r in gx["results"] if r["expectation_config"]["meta"]["rule"] == "GRADE_KNOWN"]
    assert known["success"] is False and known["result"]["unexpected_count"] == pso
    assert known["expectation_config"]["id"] == grade["id"]


def test_every_pseudonym_of_the_dirty_national_run_is_the_keyed_hmac_it_always_was(dirty_run):
    """HMAC-SHA256 of "crn:<CRN>" (cases) and "staff:<trust>:<code>" (officers), first 32 hex digits, as
    published since the first run: each trust's operational list joins its published rows on them."""
    import hashlib
    import hmac

    def mac(kind: str, value: str) -> str:
        return hmac.new(KEY, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    _, _, out, result = dirty_run
    published = _published(out, "case_alignment")
    published = published[published["run_date"].astype(str) == "2014-06-01"]  # other tests run later nights
    checked = 0
    for trust in result.manifest["trusts"]:
        ops = pd.read_csv(
            Path(out, "operational", trust, "2014-06-01", "case_alignment.csv"), dtype=str, keep_default_na=False
        )
        want = sorted(
            zip(
                ops["crn"].map(lambda c: mac("crn", c)),
                ops["om"].map(lambda c: mac(f"staff:{trust}", c) if c else None),
            )
        )
        mine = published[published["trust_code"] == trust]
        got = sorted(zip(mine["case_id"], mine["om_id"].where(mine["om_id"].notna(), None)))
        assert got == want, trust
        checked += len(got)
    assert checked == len(published) > 1000
