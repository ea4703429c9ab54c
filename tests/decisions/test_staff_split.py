import pandas as pd

from pipeline.decisions.case_split import split_cases
from pipeline.decisions.staff_split import split_staff
from pipeline.policy import load_policy
from tests.builders import T, appeals, cases, staff

P = load_policy()


def _split(staff_df, cases_df=None, appeals_df=None, policy=P):
    cases_df = cases_df if cases_df is not None else cases({"crn": "A000001"})
    out = split_staff(
        staff_df,
        split_cases(cases_df, policy),
        appeals_df if appeals_df is not None else appeals(),
        policy,
        "N05",
        "C15",
    )
    return out.set_index("staff_code")


def test_appeal_upheld_beats_fixed_role_and_dismissed_appeals_do_nothing():
    out = _split(
        staff({"staff_code": "A", "role": "COURT"}, {"staff_code": "B", "role": "COURT"}),
        appeals_df=appeals(
            {"staff_code": "A", "requested_org": "CRC", "status": "UPHELD"},
            {"staff_code": "B", "requested_org": "CRC", "status": "DISMISSED"},
        ),
    )
    assert (out.loc["A", "side"], out.loc["A", "reason"], out.loc["A", "unit"]) == ("CRC", "APPEAL_UPHELD", "C15")
    assert (out.loc["B", "side"], out.loc["B", "reason"], out.loc["B", "unit"]) == ("NPS", "FIXED_ROLE", "N05")


def test_fixed_roles():
    roles = {
        "COURT": "NPS",
        "APPROVED_PREMISES": "NPS",
        "VICTIM_LIAISON": "NPS",
        "PROGRAMMES": "CRC",
        "UNPAID_WORK": "CRC",
        "INTERVENTIONS": "CRC",
    }
    out = _split(staff(*({"staff_code": r[:7], "role": r} for r in roles)))
    for role, side in roles.items():
        assert (out.loc[role[:7], "side"], out.loc[role[:7], "reason"]) == (side, "FIXED_ROLE")


def test_targets_follow_workload_share_and_clearest_alignment_goes_first():
    # Workload: NPS 2 points, CRC 3 points -> NPS target 0.4 x 4 PO FTE = 1.6 FTE.
    c = cases(
        {"crn": "A1", "om_staff_code": "P1", "deport": True},
        {"crn": "A2", "om_staff_code": "P2"},
        {"crn": "A3", "om_staff_code": "P3"},
        {"crn": "A4", "om_staff_code": "P4", "deport": True},
        {"crn": "A5", "om_staff_code": "P4"},
    )
    s = staff(
        {"staff_code": "P1"},
        {"staff_code": "P2", "preference": "NPS"},
        {"staff_code": "P3"},
        {"staff_code": "P4", "preference": "NPS", "service_start": T("2000-01-01")},
    )
    out = _split(s, c)
    # P1, P2, P3 hold clearly aligned caseloads (|alignment - 0.5| = 0.5) and go before P4 (0.5 -> 0).
    assert (out.loc["P1", "side"], out.loc["P1", "reason"]) == ("NPS", "ALIGNMENT")  # room 1.6 -> 0.6
    assert (out.loc["P2", "side"], out.loc["P2", "reason"]) == ("NPS", "PREFERENCE")  # 0.6 >= 0.5 -> -0.4
    assert (out.loc["P3", "side"], out.loc["P3", "reason"]) == ("CRC", "ALIGNMENT")
    assert (out.loc["P4", "side"], out.loc["P4", "reason"]) == ("CRC", "TARGET_FULL")  # longest service, but last
    assert out.loc["P4", "alignment"] == 0.5


def test_room_is_at_least_half_the_fte():
    # NPS share 0.5 of 1.5 FTE = 0.75: a 1.0 FTE person fits (0.75 >= 0.5), then 0.5 FTE does not (-0.25).
    c = cases({"crn": "A1", "om_staff_code": "P1", "deport": True}, {"crn": "A2", "om_staff_code": "P2"})
    s = staff({"staff_code": "P1", "fte": 1.0}, {"staff_code": "P2", "fte": 0.5, "preference": "NPS"})
    out = _split(s, c)
    assert (out.loc["P1", "side"], out.loc["P2", "side"], out.loc["P2", "reason"]) == ("NPS", "CRC", "TARGET_FULL")


def test_other_grades_follow_the_offender_management_fte_share():
    c = cases({"crn": "A1", "om_staff_code": "P1", "deport": True}, {"crn": "A2", "om_staff_code": "P2"})
    s = staff(
        {"staff_code": "P1"},
        {"staff_code": "P2"},
        {"staff_code": "M1", "grade": "SPO", "role": "MANAGEMENT", "preference": "NPS"},
        {"staff_code": "M2", "grade": "SPO", "role": "MANAGEMENT", "preference": "NPS"},
    )
    out = _split(s, c)
    assert sorted(out.loc[["M1", "M2"], "side"]) == ["CRC", "NPS"]  # 50% of 2 SPO FTE each side
    assert set(out.loc[["M1", "M2"], "reason"]) == {"PREFERENCE", "TARGET_FULL"}


def test_guaranteed_means_in_post_on_the_cutoff():
    s = staff(
        {"staff_code": "IN"},
        {"staff_code": "LATE", "service_start": T("2014-04-01")},
        {"staff_code": "GONE", "leaving_date": T("2014-03-31")},
        {"staff_code": "LEAVES", "leaving_date": T("2014-04-01")},
    )
    out = _split(s)
    assert out["guaranteed"].to_dict() == {"GONE": False, "IN": True, "LATE": False, "LEAVES": True}
    assert out["side"].notna().all()


def test_every_person_gets_exactly_one_side_whatever_the_row_order():
    s = staff(
        *(
            {"staff_code": f"S{i}", "grade": g, "role": "OFFENDER_MANAGEMENT"}
            for i, g in enumerate(["PO", "PSO", "PQIP", "PO", "PSO"])
        )
    )
    a = _split(s).sort_index()
    b = _split(s.sample(frac=1, random_state=3)).sort_index()
    pd.testing.assert_frame_equal(a, b)
    assert a["side"].isin(["NPS", "CRC"]).all()
