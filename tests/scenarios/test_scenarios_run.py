"""`trp scenarios` end to end on a small national landing zone, after a first night: each scenario decides as
a separate `trp run` with its policy would, the base again differs in nothing, the published run and the
trusts' lists are untouched, and the outputs do not depend on the number of workers."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline import layout
from pipeline.policy import policy_source
from pipeline.publishing.catalog import open_catalog
from pipeline.runs.nightly import run_nightly
from pipeline.scenarios.runner import run_scenarios
from pipeline.scenarios.scenario_set import with_overrides
from pipeline.storage import Store
from pipeline.synthetic.landing import generate_landing

KEY = b"test-key-not-secret"
FIRST, NIGHT = "2014-06-01", "2014-06-02"
SCENARIOS = {
    # the small zone's officers carry a sixth of their 60 points: at 10 points per FTE, capacity binds
    "tight": {"purpose": "less room per officer", "set": {"case_classes.capacity_points_per_fte": 10}},
    "custody_to_nps": {"purpose": "custody cases go to the NPS", "set": {"case_split.enabled.CUSTODY": True}},
    "same": {"purpose": "the base again", "set": {"alignment.capacity_limit_pct": 100}},
}


def _files(root: Path, leave_out: tuple[str, ...]) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not str(p.relative_to(root)).startswith(leave_out)
    }


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A landing zone and an output root holding the first night's run, and the scenarios of the second."""
    root = tmp_path_factory.mktemp("scenarios")
    landing, out = root / "landing", root / "out"
    generate_landing(str(landing), 0.01, seed=6, dirty=True)
    run_nightly(str(landing), str(out), FIRST, pseudonym_key=KEY)
    (root / "scenarios.yaml").write_text(yaml.safe_dump({"scenarios": SCENARIOS}, sort_keys=False))
    shutil.copytree(out, root / "before")  # the state the scenarios start from, for the separate runs
    result = run_scenarios(str(landing), str(out), NIGHT, str(root / "scenarios.yaml"))
    return root, result


def _variant_run(root: Path, name: str) -> Path:
    """A separate nightly run of NIGHT with the variant's policy, from the same first night."""
    out = root / f"run-{name}"
    if not out.exists():
        shutil.copytree(root / "before", out)
        settings, _ = policy_source()
        policy = root / f"{name}.yaml"
        policy.write_text(yaml.safe_dump(with_overrides(settings, SCENARIOS.get(name, {}).get("set", {}))))
        run_nightly(str(root / "landing"), str(out), NIGHT, str(policy), pseudonym_key=KEY)
    return out


def _comparison(result) -> pd.DataFrame:
    return pq.read_table(Path(result.folder) / "comparison" / layout.PART).to_pandas()


def _plan(out: Path, trust: str) -> pd.DataFrame:
    a = pd.read_csv(out / "operational" / trust / NIGHT / "case_alignment.csv", dtype=str, keep_default_na=False)
    return a[["crn", "side", "om", "reason"]].set_index("crn").sort_index()


def test_each_scenario_decides_as_a_separate_run_with_its_policy(night):
    root, result = night
    comparison = _comparison(result)
    assert comparison["scenario"].unique().tolist() == ["base", "tight", "custody_to_nps", "same"]  # file order
    for name in ("base", "custody_to_nps"):
        run = json.loads((_variant_run(root, name) / "published/_manifests" / f"run_date={NIGHT}.json").read_text())
        mine = comparison[comparison["scenario"] == name].groupby("trust_code")
        published = {t: s for t, s in run["trusts"].items() if "cases" in s}
        assert sorted(published) == sorted(mine.groups), name
        for trust, s in published.items():
            rows = mine.get_group(trust).set_index("side")
            assert rows["cases"].sum() == s["cases"] and rows["moves"].sum() == s["moved"], (name, trust)
            assert rows.loc["NPS", "cases"] == s["nps_cases"], (name, trust)
            assert rows["over_capacity_policy"].sum() == s["over_capacity"], (name, trust)
            objective = {r["side"]: r["objective"] for r in s["solver"]}
            assert {k: v for k, v in rows["objective"].dropna().items()} == objective, (name, trust)
    # the variants move the figures the way their rules say
    # (on a night after the first the plan the trusts act on holds: less room per officer shows as officers
    # over capacity more than as moves)
    totals = comparison.groupby("scenario")[["capacity_points", "over_capacity_100"]].sum()
    assert totals.loc["tight", "capacity_points"] == totals.loc["base", "capacity_points"] / 6
    assert totals.loc["tight", "over_capacity_100"] > totals.loc["base", "over_capacity_100"]
    nps = comparison[comparison["side"] == "NPS"].groupby("scenario")["cases"].sum()
    assert nps["custody_to_nps"] > nps["base"]


def test_the_differences_listed_are_those_between_the_separate_runs(night):
    root, result = night
    base, variant = _variant_run(root, "base"), _variant_run(root, "custody_to_nps")
    listed_any = 0
    for trust in ("LDN", "WIL", "DOR"):
        a, b = _plan(base, trust), _plan(variant, trust)
        differ = a.index[(a != b).any(axis=1)].tolist()
        listed = pd.read_csv(
            Path(result.folder) / "trusts" / trust / "custody_to_nps_cases.csv", dtype=str, keep_default_na=False
        )
        assert listed["crn"].tolist() == differ, trust
        assert (listed.set_index("crn")["variant_om"] == b.loc[differ, "om"]).all(), trust
        listed_any += len(listed)
    assert listed_any > 0
    changed = result.manifest["outcomes_changed"]["custody_to_nps"]
    assert changed["LDN"]["cases"] == len(
        pd.read_csv(Path(result.folder) / "trusts/LDN/custody_to_nps_cases.csv", dtype=str)
    )


def test_a_variant_identical_to_the_base_shows_no_difference(night):
    _, result = night
    c = _comparison(result)
    figures = [x for x in c.columns if x not in ("run_date", "scenario_set", "scenario")]
    base = c[c["scenario"] == "base"][figures].reset_index(drop=True)
    same = c[c["scenario"] == "same"][figures].reset_index(drop=True)
    pd.testing.assert_frame_equal(base, same)
    for trust_dir in (Path(result.folder) / "trusts").iterdir():
        for what in ("cases", "staff"):
            lines = (trust_dir / f"same_{what}.csv").read_text().splitlines()
            assert len(lines) == 1, (trust_dir.name, what)  # the header alone
    assert all(v == {"cases": 0, "staff": 0} for v in result.manifest["outcomes_changed"]["same"].values())


def test_scenarios_never_touch_the_published_runs_or_the_trusts_lists(night):
    root, result = night
    leave_out = ("scenarios/", "published/catalog.duckdb")
    assert _files(root / "out", leave_out) == _files(root / "before", leave_out)
    assert not any((root / "out" / "_runs").iterdir())  # the scenarios' own staging is gone
    with open_catalog(Store(str(root / "out"))) as con:
        rows = con.sql("select scenario, sum(cases) from scenario_comparison group by 1 order by 1").fetchall()
        published = con.sql("select count(*) from case_alignment").fetchall()[0][0]
    assert sorted(r[0] for r in rows) == ["base", "custody_to_nps", "same", "tight"]
    assert len({r[1] for r in rows}) == 1 and published == rows[0][1]  # the same cases; the run still readable
    page = (Path(result.folder) / "index.html").read_text()
    assert "<script" not in page and "custody_to_nps" in page and 'class="diff"' in page


def test_the_outputs_are_the_same_whatever_the_number_of_workers(night, tmp_path):
    root, result = night
    again = tmp_path / "out"
    shutil.copytree(root / "before", again)
    one = run_scenarios(str(root / "landing"), str(again), NIGHT, str(root / "scenarios.yaml"), n_workers=1)
    assert one.manifest["scenario_set"] == result.manifest["scenario_set"]
    mine = Path(one.folder)
    assert _files(mine, ("manifest.json",)) == _files(Path(result.folder), ("manifest.json",))


def test_a_bad_scenario_is_refused_before_any_work(night, tmp_path):
    root, _ = night
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"scenarios": {"typo": {"set": {"alignment.capacity_limt_pct": 110}}}}))
    out = tmp_path / "out"
    done = subprocess.run(
        [
            Path(sys.executable).parent / "trp",
            "scenarios",
            "--landing",
            str(root / "landing"),
            "--out",
            str(out),
            "--run-date",
            NIGHT,
            "--scenarios",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "scenario typo" in done.stderr and "alignment.capacity_limt_pct" in done.stderr
    assert not out.exists()
