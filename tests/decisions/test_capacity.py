"""Capacity counted by FTE and by hours: the formula, which reductions count, and the two models agreeing
where they must (every officer full-time, no reductions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.decisions.capacity import with_capacity
from pipeline.decisions.engine import decide_trust
from pipeline.policy import load_policy
from pipeline.synthetic.generator import generate_trust
from tests.builders import AS_OF, T, reductions, staff

FTE = load_policy()
HOURS = FTE.model_copy(update={"capacity": FTE.capacity.model_copy(update={"model": "hours"})})
PER_FTE = FTE.case_classes.capacity_points_per_fte
FULL = FTE.capacity.full_time_hours


def _one(officer: dict, *rows: dict, on=AS_OF, policy=HOURS) -> pd.Series:
    return with_capacity(staff({"staff_code": "A1", **officer}), reductions(*rows), policy, on).iloc[0]


def test_hours_are_points_per_fte_times_the_share_of_full_time_less_the_reduction():
    # 18.5 of 37 hours, a fifth of them reduced: 60 x 0.5 x 0.8
    got = _one({"fte": 0.5, "contracted_hours": 18.5}, {"staff_code": "A1", "reason": "OTHER", "percent": 20})
    assert got["capacity_points_hours"] == pytest.approx(PER_FTE * (18.5 / FULL) * ((18.5 - 3.7) / 18.5))
    assert got["capacity_points_fte"] == PER_FTE * 0.5
    assert got["capacity_points"] == got["capacity_points_hours"]
    assert got["reduction_hours"] == pytest.approx(3.7)


def test_contracted_hours_count_over_fte_and_a_blank_falls_back_to_fte():
    assert _one({"fte": 1.0, "contracted_hours": 29.6})["capacity_points_hours"] == pytest.approx(PER_FTE * 0.8)
    blank = _one({"fte": 0.6, "contracted_hours": np.nan})
    assert blank["capacity_points_hours"] == blank["capacity_points_fte"]
    assert not blank["hours_given"] and blank["hours"] == pytest.approx(0.6 * FULL)


def test_a_reduction_without_a_size_takes_the_policy_allowance_for_its_reason():
    allowance = HOURS.capacity.allowances
    pqip = _one({"grade": "PQIP"}, {"staff_code": "A1", "reason": "PQIP_YEAR_1"})
    assert pqip["reduction_hours"] == pytest.approx(FULL * allowance["PQIP_YEAR_1"].percent / 100)
    union = _one({}, {"staff_code": "A1", "reason": "TRADE_UNION"})
    assert union["reduction_hours"] == pytest.approx(allowance["TRADE_UNION"].hours)
    own = _one({}, {"staff_code": "A1", "reason": "TRADE_UNION", "hours": 2.0})
    assert own["reduction_hours"] == 2.0


@pytest.mark.parametrize(
    ("start", "end", "counts"),
    [
        ("2014-01-01", None, True),
        ("2014-06-01", "2014-06-01", True),  # a reduction of one day counts on that day
        ("2014-06-02", None, False),  # not begun
        ("2014-01-01", "2014-05-31", False),  # over
    ],
)
def test_only_reductions_active_on_the_day_count(start, end, counts):
    row = {"staff_code": "A1", "reason": "SICKNESS", "start_date": T(start), "end_date": T(end) if end else pd.NaT}
    got = _one({}, row)
    assert bool(got["reduction_hours"] > 0) is counts
    assert got["capacity_points_hours"] == (0.0 if counts else PER_FTE)


def test_reductions_add_up_and_never_take_more_than_the_officer_works():
    got = _one(
        {"fte": 0.5},
        {"staff_code": "A1", "reason": "SICKNESS"},
        {"staff_code": "A1", "reason": "TRADE_UNION", "hours": 7.4},
    )
    assert got["reduction_hours"] == pytest.approx(0.5 * FULL)
    assert got["capacity_points_hours"] == 0.0


def test_the_fte_model_decides_by_fte_whatever_the_hours_and_reductions_say():
    got = _one({"contracted_hours": 20.0}, {"staff_code": "A1", "reason": "SICKNESS"}, policy=FTE)
    assert got["capacity_points"] == got["capacity_points_fte"] == PER_FTE
    assert got["capacity_points_hours"] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([1.0, 0.8, 0.6, 0.5, 0.25]), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_without_hours_given_or_reductions_the_two_ways_agree_to_the_last_bit(ftes, blank):
    people = staff(*({"staff_code": f"A{i}", "fte": f} for i, f in enumerate(ftes)))
    # full-time officers may give their 37 hours; part-time ones leave them blank (counted at their FTE)
    people["contracted_hours"] = [FULL if f == 1.0 and not b else np.nan for f, b in zip(ftes, blank)]
    got = with_capacity(people, reductions(), HOURS, AS_OF)
    assert got["capacity_points_hours"].tolist() == got["capacity_points_fte"].tolist()


def test_capacity_by_hours_decides_as_by_fte_when_everyone_is_full_time_without_reductions():
    e = generate_trust("WIL", 900, 0, seed=11)
    people = e.staff.assign(fte=1.0, contracted_hours=FULL)
    args = (people, e.cases, e.retention_requests, e.appeals)
    by_fte = decide_trust(*args, FTE, "N05", "C15", AS_OF, reductions=reductions())
    by_hours = decide_trust(*args, HOURS, "N05", "C15", AS_OF, reductions=reductions())
    for name in ("staff_assignment", "case_alignment", "caseload", "workforce_balance"):
        pd.testing.assert_frame_equal(getattr(by_fte, name), getattr(by_hours, name))
    assert [r.objective for r in by_fte.solver] == [r.objective for r in by_hours.solver]


def test_an_officer_off_sick_has_no_capacity_by_hours_and_their_cases_go_to_colleagues_with_room():
    e = generate_trust("WIL", 900, 0, seed=11)
    held = e.cases["om_staff_code"].value_counts()
    sick = held.index[0]
    off = reductions({"staff_code": sick, "reason": "SICKNESS", "start_date": T("2014-05-01")})
    args = (e.staff, e.cases, e.retention_requests, e.appeals)
    by_fte = decide_trust(*args, FTE, "N05", "C15", AS_OF, reductions=off)
    by_hours = decide_trust(*args, HOURS, "N05", "C15", AS_OF, reductions=off)
    load = by_hours.caseload.set_index("staff_code")
    assert load.at[sick, "capacity_points"] == 0.0 and load.at[sick, "capacity_points_fte"] > 0
    kept_fte = (by_fte.case_alignment["om"] == sick).sum()
    kept_hours = (by_hours.case_alignment["om"] == sick).sum()
    assert kept_fte > 0 and kept_hours < kept_fte
    balance = by_hours.workforce_balance.set_index(["side", "grade"])
    side, grade = load.at[sick, "side"], load.at[sick, "grade"]
    assert balance.at[(side, grade), "fte_available"] < balance.at[(side, grade), "fte_assigned"]


def test_the_extract_contract_gives_each_reason_the_packaged_policy_allowance():
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "extract-contract.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| reason | yes | `PQIP_YEAR_1`"))
    said = dict(re.findall(r"`([A-Z_0-9]+)` \(([^)]+)\)", row))
    want = {
        k: f"{a.percent:g}%" if a.percent is not None else f"{a.hours:g} hours"
        for k, a in FTE.capacity.allowances.items()
    }
    assert {k: v for k, v in said.items() if k in want} == want
    assert said["OTHER"].startswith("no allowance")
