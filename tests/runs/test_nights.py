"""Night after night: ten simulated nights of a national landing zone whose extracts catch up with
the plan (`trp simulate`), one trust uploading the same extract every night; the invariants the programme
relies on, checked night by night; a re-run and a backfill; and the same invariants over random sequences
of extract changes at the decisions' level."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.decisions.engine import decide_trust
from pipeline.policy import load_policy
from pipeline.runs.nightly import run_nightly
from pipeline.synthetic.landing import generate_landing
from pipeline.synthetic.simulate import simulate
from tests.builders import T, appeals, retention
from tests.builders import cases as case_rows
from tests.builders import staff as staff_rows

KEY = b"test-key-not-secret"
NIGHTS = 10
HELD = "WIL"  # uploads the same extract every night
P = load_policy()
OPERATIONAL = ("case_alignment.csv", "staff_assignment.csv", "transfer_list.csv", "retention_decisions.csv")


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    root = tmp_path_factory.mktemp("nights")
    landing, out = str(root / "landing"), str(root / "out")
    generate_landing(landing, 0.01, seed=21)
    results = simulate(
        landing, out, NIGHTS, seed=5, hold=[HELD], run=lambda date: run_nightly(landing, out, date, pseudonym_key=KEY)
    )
    dates = [r.manifest["run_date"] for r in results]
    return root, landing, out, dates, results


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _night(out, trust, date, name) -> pd.DataFrame:
    return _csv(Path(out, "operational", trust, date, name))


def _extract(landing, trust, date, name) -> pd.DataFrame:
    path = Path(landing, trust, date, name)
    return _csv(path) if path.exists() else pd.DataFrame(columns=["crn", "staff_code", "status"])


def test_every_night_publishes_every_trust_and_every_case_has_an_om(months):
    _, _, out, dates, results = months
    assert len(dates) == NIGHTS and dates == sorted(dates) and len(set(dates)) == NIGHTS
    for r in results:
        assert r.exit_code == 0 and all(t["status"] == "FRESH" for t in r.manifest["trusts"].values())
    for date in dates:
        for trust in results[0].manifest["trusts"]:
            plan = _night(out, trust, date, "case_alignment.csv")
            assert len(plan) and (plan["om"] != "").all(), (trust, date)


def test_a_trust_whose_extract_never_changes_gets_the_same_plan_every_night(months):
    _, _, out, dates, _ = months
    first = Path(out, "operational", HELD, dates[0])
    lists = []
    for k, date in enumerate(dates):
        night = Path(out, "operational", HELD, date)
        for name in ("case_alignment.csv", "staff_assignment.csv"):
            assert (night / name).read_bytes() == (first / name).read_bytes(), (date, name)
        moves = _csv(night / "transfer_list.csv")
        assert set(moves["days_outstanding"]) <= {str(k)}
        lists.append(moves.drop(columns="days_outstanding"))
    assert len(lists[0]) > 0 and all(m.equals(lists[0]) for m in lists)


def _causes(landing, out, trust, date, plan_before, plan, staff) -> pd.Series:
    """Per case of tonight's plan also planned last night: whether something gave the plan a reason to
    change (the extract shows another OM than both last night's and the planned one; the planned OM left,
    changed side or may no longer hold the case's class; the case's side or class changed; a retention
    request holds it where it is)."""
    both = plan.merge(plan_before, on="crn", suffixes=("", "_before"))
    who = staff.set_index("staff_code")
    planned = both["om_before"]
    gone = ~planned.isin(who.index)
    side_of = planned.map(who["side"])
    grade, role = planned.map(who["grade"]), planned.map(who["role"])
    may_hold = [
        isinstance(g, str) and P.case_classes.eligible(k, g, r) for k, g, r in zip(both["case_class"], grade, role)
    ]
    row_changed = (both["current_om"] != both["current_om_before"]) & (both["current_om"] != planned)
    requests = _extract(landing, trust, date, "retention_requests.csv")
    held = set(requests.loc[requests["status"].isin(["ACCEPTED", "PENDING"]), "crn"])
    cause = (
        row_changed
        | gone
        | (side_of != both["side"])
        | ~np.array(may_hold, dtype=bool)
        | (both["side"] != both["side_before"])
        | (both["case_class"] != both["case_class_before"])
        | (both["crn"].isin(held) & (planned != both["current_om"]))
    )
    return pd.Series(cause.to_numpy(), index=both["crn"]), both.set_index("crn")


def test_no_plan_changes_without_a_cause_and_a_done_move_is_never_moved_again(months):
    _, landing, out, dates, results = months
    checked = done_seen = 0
    for before, date in zip(dates, dates[1:]):
        for trust in results[0].manifest["trusts"]:
            plan_before = _night(out, trust, before, "case_alignment.csv")
            plan = _night(out, trust, date, "case_alignment.csv")
            staff = _extract(landing, trust, date, "staff.csv").merge(
                _night(out, trust, date, "staff_assignment.csv")[["staff_code", "side"]], on="staff_code"
            )
            cause, both = _causes(landing, out, trust, date, plan_before, plan, staff)
            quiet = both[~cause]
            assert (quiet["om"] == quiet["om_before"]).all(), (trust, date, quiet[quiet["om"] != quiet["om_before"]])
            waiting = quiet[quiet["moved_before"] == "Y"]
            still = waiting[waiting["current_om"] == waiting["current_om_before"]]
            assert (
                still[["reason", "planned_on", "moved"]].values
                == still[["reason_before", "planned_on_before", "moved_before"]].values
            ).all(), (trust, date)
            done = quiet[(quiet["moved_before"] == "Y") & (quiet["current_om"] == quiet["om_before"])]
            assert (done["reason"] == "KEPT").all() and (done["moved"] == "N").all(), (trust, date)
            checked += len(quiet)
            done_seen += len(done)
    assert checked > 10_000 and done_seen > 500  # the nights really did move on


def test_staff_sides_change_only_by_appeal_or_a_move_into_a_fixed_role(months):
    _, landing, out, dates, results = months
    fixed = P.staff_split.fixed_roles
    for before, date in zip(dates, dates[1:]):
        for trust in results[0].manifest["trusts"]:
            a = _night(out, trust, before, "staff_assignment.csv")
            b = _night(out, trust, date, "staff_assignment.csv")
            both = a.merge(b, on="staff_code", suffixes=("_before", ""))
            changed = both[both["side"] != both["side_before"]]
            upheld = _extract(landing, trust, date, "appeals.csv")
            upheld = set(
                zip(
                    upheld.loc[upheld["status"] == "UPHELD", "staff_code"],
                    upheld.loc[upheld["status"] == "UPHELD", "requested_org"],
                )
            )
            for r in changed.itertuples():
                assert (r.staff_code, r.side) in upheld or (r.role != r.role_before and fixed.get(r.role) == r.side), (
                    trust,
                    date,
                    r,
                )
            kept = both[both["side"] == both["side_before"]]
            assert (kept["assigned_on"] == kept["assigned_on_before"]).all(), (trust, date)
            new = b[~b["staff_code"].isin(a["staff_code"])]
            assert (new["assigned_on"] == date).all()


def test_moves_outstanding_fall_as_the_trusts_catch_up(months):
    _, _, _, _, results = months
    moved = [sum(t["moved"] for t in r.manifest["trusts"].values()) for r in results]
    assert moved[-1] < 0.3 * moved[0], moved


def test_re_running_a_night_after_the_next_reproduces_it_and_a_backfill_equals_running_in_order(months, tmp_path):
    root, landing, out, dates, results = months
    k = 4
    trusts = list(results[0].manifest["trusts"])
    kept = {(t, n): Path(out, "operational", t, dates[k], n).read_bytes() for t in trusts for n in OPERATIONAL}
    again = run_nightly(landing, out, dates[k], pseudonym_key=KEY)
    assert again.manifest["run_id"] != results[k].manifest["run_id"]
    for (t, n), raw in kept.items():
        assert Path(out, "operational", t, dates[k], n).read_bytes() == raw, (t, n)

    other = str(tmp_path / "backfilled")  # night k skipped, run later, after night k+1
    for date in (*dates[:k], dates[k + 1], dates[k]):
        run_nightly(landing, other, date, pseudonym_key=KEY)
    for (t, n), raw in kept.items():
        assert Path(other, "operational", t, dates[k], n).read_bytes() == raw, (t, n)


# -- the same invariants over random sequences of extract changes, at the decisions' level --------------


def _trust(rng: np.random.Generator, n_staff: int, n_cases: int):
    staff = staff_rows(
        *(
            {
                "staff_code": f"S{i}",
                "grade": ["PO", "PO", "PSO", "PQIP"][i % 4],
                "team_code": f"T{i % 2}",
                "fte": [1.0, 0.6][i % 2],
                "preference": [None, "NPS", "CRC"][i % 3],
            }
            for i in range(n_staff)
        )
    )
    cases = case_rows(
        *(
            {
                "crn": f"X{i:06d}",
                "om_staff_code": f"S{rng.integers(n_staff)}",
                "team_code": f"T{i % 2}",
                "rosh": ["LOW", "HIGH", "MEDIUM"][rng.integers(3)],
                "mappa_category": int(rng.integers(2)),
                "rsr": float(rng.integers(6)),
            }
            for i in range(n_cases)
        )
    )
    return staff, cases


def _decide(staff, cases, state, night):
    plan, held = state
    d = decide_trust(
        staff,
        cases,
        retention(),
        appeals(),
        P,
        "N05",
        "C15",
        T("2014-06-01"),
        plan,
        held,
        T("2014-06-01") + pd.Timedelta(days=night),
    )
    a, s = d.case_alignment, d.staff_assignment
    return d, (
        a[["crn", "current_om", "om", "reason", "planned_on"]].assign(
            current_om=a["current_om"].astype(object).where(a["current_om"].notna(), None)
        ),
        s[["staff_code", "role", "side", "unit", "reason", "assigned_on"]],
    )


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.sampled_from(["done", "end", "arrive", "leave", "join", "same"]), min_size=1, max_size=5),
)
@example(93717, ["leave", "join"])
def test_random_sequences_of_extract_changes_keep_the_invariants(seed, changes):
    rng = np.random.default_rng(seed)
    staff, cases = _trust(rng, 8, 40)
    d, state = _decide(staff, cases, (None, None), 0)
    compared = 0
    for night, change in enumerate(changes, start=1):
        a = d.case_alignment.set_index("crn")
        if change == "done":  # every outstanding move shown done
            moving = a.index[a["moved"]]
            cases.loc[cases["crn"].isin(moving), "om_staff_code"] = cases["crn"].map(a["om"])
        elif change == "end":
            cases = cases.iloc[1:].reset_index(drop=True)
        elif change == "arrive":
            cases = pd.concat([cases, case_rows({"crn": f"Y{night:06d}"})], ignore_index=True)
        elif change == "leave":
            staff = staff.iloc[1:].reset_index(drop=True)
        elif change == "join":
            staff = pd.concat([staff, staff_rows({"staff_code": f"J{night}"})], ignore_index=True)
        before, before_staff = a, d.staff_assignment.set_index("staff_code")
        d, state = _decide(staff, cases, state, night)
        now = d.case_alignment.set_index("crn")
        assert now["om"].notna().all()
        present = set(staff["staff_code"])
        for crn, r in now.iterrows():
            if crn not in before.index:
                continue
            b = before.loc[crn]
            unchanged = (
                r["current_om"] == b["current_om"]
                or r["current_om"] == b["om"]
                or (pd.isna(r["current_om"]) and pd.isna(b["current_om"]))
            )
            # A case given to an officer not eligible for it (nobody eligible was on its side) is planned
            # again once someone eligible is: that is not churn.
            if (
                unchanged
                and b["om"] in present
                and r["side"] == b["side"]
                and r["case_class"] == b["case_class"]
                and b["eligible_om"]
                and d.staff_assignment.set_index("staff_code").loc[b["om"], "side"] == r["side"]
            ):
                assert r["om"] == b["om"], (change, crn)
                compared += 1
        s = d.staff_assignment.set_index("staff_code")
        for code in s.index.intersection(before_staff.index):
            assert s.loc[code, "side"] == before_staff.loc[code, "side"], (change, code)
    assert compared > 0  # the property held for cases it really applied to


def test_progress_is_published_night_by_night_and_agrees_with_the_lists(months):
    import duckdb

    _, _, out, dates, results = months
    rows = duckdb.sql(
        f"select * from read_parquet('{out}/published/progress/**/*.parquet', "
        "hive_partitioning=true) order by run_date, trust_code, side"
    ).df()
    trusts = list(results[0].manifest["trusts"])
    assert len(rows) == NIGHTS * len(trusts) * 2
    for date in (dates[0], dates[5]):
        for trust in ("LDN", HELD):
            plan = _night(out, trust, date, "case_alignment.csv")
            mine = rows[(rows["run_date"].astype(str) == date) & (rows["trust_code"] == trust)].set_index("side")
            for side in ("NPS", "CRC"):
                moves = plan[(plan["side"] == side) & (plan["moved"] == "Y")]
                assert mine.loc[side, "cases"] == (plan["side"] == side).sum()
                assert mine.loc[side, "moves_outstanding"] == len(moves)
                days = (pd.Timestamp(date) - pd.to_datetime(moves["planned_on"])).dt.days
                assert mine.loc[side, "oldest_days_outstanding"] == (days.max() if len(days) else pd.NA)
    first, later = rows[rows["run_date"].astype(str) == dates[0]], rows[rows["run_date"].astype(str) > dates[0]]
    assert first["moves_done"].sum() == 0 and first["newly_planned"].sum() == first["moves_outstanding"].sum()
    assert later["moves_done"].sum() > 500 and later["staff_held"].sum() > 0
    assert (rows[rows["trust_code"] == HELD].groupby("side")["moves_outstanding"].nunique() == 1).all()
    assert len({r.manifest["key_id"] for r in results}) == 1
    page = Path(out, "reports", dates[-1], "index.html").read_text()
    chart = page[page.index('id="chart-progress"') : page.index('id="chart-moved-by-reason"')]
    assert all(d in chart for d in dates)  # every night so far, by name of its date
    assert "LDN London" in page and "WIL Wiltshire" in page
    table = page[page.index("Moves outstanding by trust") :]
    assert all(d in table for d in dates[-7:]) and dates[-8] not in table  # the last seven nights


def test_trp_simulate_runs_nights_and_trp_diff_refuses_runs_under_two_keys(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    landing, out = str(tmp_path / "landing"), str(tmp_path / "out")
    generate_landing(landing, 0.005, seed=2, dirty=True)  # Windows-1252, a BOM, DOR's newest rejected
    monkeypatch.setenv("TRP_PSEUDONYM_KEY", "first-key")
    done = CliRunner().invoke(app, ["simulate", "--landing", landing, "--out", out, "--nights", "2", "--seed", "3"])
    assert done.exit_code == 0, done.output
    assert "2014-06-01: 35 trusts published" in done.output and "2014-06-02: 35 trusts published" in done.output
    assert sorted(p.name for p in Path(landing, "LDN").iterdir()) == ["2014-06-01", "2014-06-02"]
    night2 = json.loads(Path(out, "published", "_manifests", "run_date=2014-06-02.json").read_text())
    assert night2["trusts"]["DOR"]["status"] == "FRESH"  # moved on from the good extract it fell back to
    assert night2["trusts"]["WPT"]["status"] == "FRESH"
    same = CliRunner().invoke(app, ["diff", "--from", "2014-06-01", "--to", "2014-06-02", "--out", out])
    assert same.exit_code == 0 and "moves" in same.output
    monkeypatch.setenv("TRP_PSEUDONYM_KEY", "another-key")
    shutil.copytree(Path(landing, "LDN", "2014-06-02"), Path(landing, "LDN", "2014-06-03"))
    run_nightly(landing, out, "2014-06-03")
    refused = CliRunner().invoke(app, ["diff", "--from", "2014-06-02", "--to", "2014-06-03", "--out", out])
    assert isinstance(refused.exception, Exception) and "different pseudonym keys" in str(refused.exception)


def test_prune_lets_go_of_old_superseded_runs_and_folders_but_never_a_current_run_or_the_state(months, tmp_path):
    import duckdb
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.publishing.catalog import current_runs, open_catalog
    from pipeline.storage import Store

    _, _, out, dates, _ = months
    copy = tmp_path / "out"
    shutil.copytree(out, copy)  # the fixture's outputs stay whole for the other tests
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        (Path(__file__).parents[2] / "pipeline/data/policy-v1.yaml")
        .read_text()
        .replace("superseded_runs_days: 90", "superseded_runs_days: 0")
        .replace("operational_days: 400", "operational_days: 3")
    )
    current = current_runs(Store(str(copy)))
    superseded = sorted(set(p.name for p in (copy / "runs").iterdir()) - set(current.values()))
    assert len(superseded) == 1 and superseded[0].startswith(dates[4])  # the re-run test replaced night 4
    before = {p: p.stat().st_size for p in (copy / "operational").rglob("*") if p.is_file()}
    dry = CliRunner().invoke(app, ["prune", "--out", str(copy), "--policy", str(policy)])
    assert dry.exit_code == 0 and "dry run: nothing removed" in dry.output, dry.output
    assert "1 superseded run(s)" in dry.output and "operational folder(s)" in dry.output
    assert {p: p.stat().st_size for p in (copy / "operational").rglob("*") if p.is_file()} == before
    done = CliRunner().invoke(app, ["prune", "--out", str(copy), "--policy", str(policy), "--apply"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (copy / "runs").iterdir()) == sorted(current.values())
    cut = (pd.Timestamp(dates[-1]) - pd.Timedelta(days=3)).date().isoformat()
    for trust in (copy / "operational").iterdir():
        kept = sorted(p.name for p in trust.iterdir())
        assert kept == [d for d in dates if d >= cut], trust.name
    with open_catalog(Store(str(copy))) as con:
        assert con.sql("select count(*) from case_alignment_history").fetchall() == [(0,)]
        assert {str(d) for (d,) in con.sql("select distinct run_date from case_alignment").fetchall()} == set(dates)
    assert duckdb.sql(
        f"select count(distinct run_date) from read_parquet('{copy}/published/case_alignment/**/"
        "*.parquet', hive_partitioning=true)"
    ).fetchall() == [(NIGHTS,)]


def test_trp_simulate_refuses_a_rate_that_is_not_a_share(tmp_path, capsys, monkeypatch):
    import sys

    from pipeline import cli

    monkeypatch.setattr(
        sys,
        "argv",
        [
            "trp",
            "simulate",
            "--landing",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--nights",
            "2",
            "--leavers",
            "1.5",
        ],
    )
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 2 and "every rate is a share between 0 and 1" in capsys.readouterr().err
