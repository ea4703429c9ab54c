"""The scenario comparison's pure parts: figures by side from a trust's decisions, and who differs."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.decisions.engine import decide_trust
from pipeline.domain import MOVE_REASONS
from pipeline.policy import load_policy
from pipeline.scenarios.comparison import COMPARISON_COLUMNS, differences, outcomes, side_figures
from pipeline.synthetic.generator import generate_trust

P = load_policy()
AS_OF = pd.Timestamp("2014-06-01")


def _decided(seed: int, n: int, policy=P):
    e = generate_trust("WIL", n, 0, seed)
    return decide_trust(e.staff, e.cases, e.retention_requests, e.appeals, policy, "N05", "C15", AS_OF)


def test_figures_by_side_add_up_to_the_trusts_decisions():
    d = _decided(3, 700)
    f = side_figures("base", "WIL", d, 1.0).set_index("side")
    a, load = d.case_alignment, d.caseload
    assert list(f.columns) == [c for c in COMPARISON_COLUMNS if c != "side"]
    assert f["cases"].sum() == len(a) and f.loc["NPS", "cases"] == (a["side"] == "NPS").sum()
    assert f["moves"].sum() == a["moved"].sum() > 0
    by_reason = f[[f"moves_{r.removeprefix('MOVED_').lower()}" for r in MOVE_REASONS]].sum(axis=1)
    assert (by_reason == f["moves"]).all()  # every move has one of the four reasons
    assert f["over_capacity_policy"].sum() == load["over_capacity"].sum()
    assert (f["over_capacity_110"] <= f["over_capacity_100"]).all()
    assert f.loc["NPS", "nps_case_share"] == f.loc["CRC", "nps_case_share"]
    assert np.isclose(f.loc["NPS", "nps_case_share"], (a["side"] == "NPS").mean(), atol=1e-6)
    assert (f["preference_met"] <= f["preference_stated"]).all() and f["preference_met"].sum() > 0
    balance = d.workforce_balance
    assert np.isclose(f["vacancies_fte"].sum(), balance["deficit_fte"].sum())
    assert np.isclose(f["staff_fte"].sum(), d.staff_assignment["fte"].sum())


def test_a_load_exactly_at_the_line_is_not_over_it():
    d = _decided(3, 700)
    load = d.caseload.iloc[:3].assign(side="NPS", capacity_points=60.0, points=[60.0, 66.0, 66.000006])
    f = side_figures("base", "WIL", type(d)(**{**d.__dict__, "caseload": load}), 1.0).set_index("side")
    assert f.loc["NPS", "over_capacity_100"] == 2 and f.loc["NPS", "over_capacity_110"] == 1
    assert f.loc["NPS", "over_capacity_policy"] == 2 and f.loc["CRC", "offender_managers"] == 0


def test_outcomes_that_differ_are_listed_side_by_side():
    base = pd.DataFrame(
        {"crn": ["A1", "A2", "A3", "A4"], "side": ["NPS", "CRC", "CRC", None], "om": ["X", "Y", "Z", None]}
    )
    variant = pd.DataFrame(
        {"crn": ["A2", "A1", "A4", "A5"], "side": ["NPS", "NPS", None, "CRC"], "om": ["Y", "X", None, "Q"]}
    )
    got = differences(base, variant, "crn")
    assert list(got.columns) == ["crn", "base_side", "variant_side", "base_om", "variant_om"]
    assert got["crn"].tolist() == ["A2", "A3", "A5"]  # A1 and A4 (both blank) are the same
    assert got.iloc[0][["base_side", "variant_side"]].tolist() == ["CRC", "NPS"]
    assert pd.isna(got.iloc[1]["variant_om"]) and pd.isna(got.iloc[2]["base_side"])


rows = st.lists(
    st.tuples(st.sampled_from(["NPS", "CRC", None]), st.sampled_from(["X", "Y", None])), min_size=0, max_size=12
)


@settings(max_examples=60)
@given(rows, rows)
def test_only_rows_that_differ_are_listed(a_rows, b_rows):
    def frame(rs):
        return pd.DataFrame(
            {"crn": [f"C{i}" for i in range(len(rs))], "side": [r[0] for r in rs], "om": [r[1] for r in rs]}
        )

    a, b = frame(a_rows), frame(b_rows)
    assert differences(a, a, "crn").empty
    got = set(differences(a, b, "crn")["crn"])
    expected = {
        f"C{i}"
        for i in range(max(len(a_rows), len(b_rows)))
        if i >= len(a_rows) or i >= len(b_rows) or a_rows[i] != b_rows[i]
    }
    assert got == expected


def test_a_variant_with_the_base_policy_differs_in_nothing():
    same = load_policy().model_copy(update={"version": "1.2+same"})
    x, y = _decided(8, 500), _decided(8, 500, same)
    for base, variant, key in zip(outcomes(x), outcomes(y), ("crn", "staff_code")):
        assert differences(base, variant, key).empty
    fx, fy = side_figures("base", "WIL", x, 1.0), side_figures("same", "WIL", y, 1.0)
    pd.testing.assert_frame_equal(fx.drop(columns="scenario"), fy.drop(columns="scenario"))
    # The control: on the same trust, a lower capacity line is seen, so "nothing" above is not blindness.
    lower = P.model_copy(update={"alignment": P.alignment.model_copy(update={"capacity_limit_pct": 60})})
    z = _decided(8, 500, lower)
    assert not differences(outcomes(x)[0], outcomes(z)[0], "crn").empty
