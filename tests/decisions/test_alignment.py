import pandas as pd
import pytest

from pipeline.decisions.alignment import align_cases
from pipeline.decisions.case_split import split_cases
from pipeline.decisions.retention import retention_decisions
from pipeline.decisions.staff_split import split_staff
from pipeline.policy import load_policy
from tests.builders import AS_OF, T, appeals, cases, retention, staff

P = load_policy()


def align(staff_df, cases_df, retention_df=None, previous=None, policy=P):
    split = split_cases(cases_df, policy)
    assignment = split_staff(staff_df, split, appeals(), policy, "N05", "C15")
    retention_df = retention_df if retention_df is not None else retention()
    out, reports = align_cases(split, assignment, retention_df, policy, AS_OF, previous)
    return out.set_index("crn"), assignment.set_index("staff_code"), reports


def crc_team(*extra):
    """Two CRC-side POs in team T1 (pinned by appeal-free fixed preference through a CRC-only workload)."""
    return staff({"staff_code": "A"}, {"staff_code": "B"}, *extra)


def test_reason_codes_for_kept_allocated_left_and_grade():
    s = crc_team({"staff_code": "Q", "grade": "PSO"})
    c = cases(
        {"crn": "X000001", "om_staff_code": "A"},  # stays
        {"crn": "X000002"},  # no OM
        {"crn": "X000003", "om_staff_code": "GONE"},  # officer left
        {"crn": "X000004", "om_staff_code": "Q", "rsr": 5.0},
    )  # complex: PSO may not hold
    out, _, _ = align(s, c)
    assert out["reason"].to_dict() == {
        "X000001": "KEPT",
        "X000002": "ALLOCATED",
        "X000003": "MOVED_LEFT",
        "X000004": "MOVED_GRADE",
    }
    assert out["moved"].to_dict() == {"X000001": False, "X000002": False, "X000003": True, "X000004": True}
    assert out.loc["X000004", "om"] in ("A", "B")
    assert out["om"].notna().all()


def test_officer_who_left_by_the_extract_date_cannot_hold_cases():
    s = crc_team({"staff_code": "L", "leaving_date": T("2014-05-01")})
    out, _, _ = align(s, cases({"crn": "X000001", "om_staff_code": "L"}))
    assert out.loc["X000001", "reason"] == "MOVED_LEFT" and out.loc["X000001", "om"] in ("A", "B")


def test_moved_side_and_retained():
    s = staff(
        {"staff_code": "N", "role": "OFFENDER_MANAGEMENT", "preference": "NPS"},
        {"staff_code": "C1", "preference": "CRC"},
        {"staff_code": "C2", "preference": "CRC"},
        {"staff_code": "C3", "preference": "CRC"},
    )
    c = cases(
        {"crn": "X000001", "om_staff_code": "N"},
        {"crn": "X000002", "om_staff_code": "N"},
        {"crn": "X000003", "om_staff_code": "N", "deport": True},
        {"crn": "X000004", "om_staff_code": "C1"},
    )
    r = retention({"crn": "X000002", "requested_by": "N", "status": "ACCEPTED"})
    out, assignment, _ = align(s, c, r)
    assert assignment.loc["N", "side"] == "NPS"
    assert out.loc["X000001", "reason"] == "MOVED_SIDE" and out.loc["X000001", "om"].startswith("C")
    assert (out.loc["X000002", "reason"], out.loc["X000002", "om"]) == ("RETAINED", "N")
    assert (out.loc["X000003", "reason"], out.loc["X000003", "om"]) == ("KEPT", "N")
    assert not out.loc["X000002", "moved"]


def test_pending_request_holds_and_rejected_does_not():
    s = staff(
        {"staff_code": "N", "preference": "NPS"},
        {"staff_code": "C1", "preference": "CRC"},
        {"staff_code": "C2", "preference": "CRC"},
    )
    c = cases(
        {"crn": "X000001", "om_staff_code": "N"},
        {"crn": "X000002", "om_staff_code": "N"},
        {"crn": "X000003", "om_staff_code": "N", "deport": True},
    )
    r = retention(
        {"crn": "X000001", "requested_by": "N", "status": "PENDING"},
        {"crn": "X000002", "requested_by": "N", "status": "REJECTED", "decision_note": "Must move"},
        {"crn": "X999999", "requested_by": "N", "status": "ACCEPTED"},
    )
    out, _, _ = align(s, c, r)
    assert out.loc["X000001", "reason"] == "RETAINED"
    assert out.loc["X000002", "reason"] == "MOVED_SIDE"
    decisions = retention_decisions(r, out.reset_index()).set_index("crn")
    assert decisions["outcome"].to_dict() == {
        "X000001": "KEPT_PENDING",
        "X000002": "MOVED",
        "X999999": "CASE_NOT_FOUND",
    }
    assert decisions.loc["X000002", "decision_note"] == "Must move"


def test_capacity_moves_only_what_brings_the_officer_back_within_capacity():
    # A (0.1 FTE = 6 points) holds 8 standard cases; B has room. Exactly 2 move, reason MOVED_CAPACITY.
    s = staff({"staff_code": "A", "fte": 0.1}, {"staff_code": "B"})
    c = cases(*({"crn": f"X00000{i}", "om_staff_code": "A"} for i in range(8)))
    out, _, _ = align(s, c)
    assert (out["reason"] == "MOVED_CAPACITY").sum() == 2
    assert set(out.loc[out["moved"], "om"]) == {"B"}


def test_overflow_only_when_nothing_else_fits():
    s = staff({"staff_code": "A", "fte": 0.1}, {"staff_code": "B", "fte": 0.1})
    c = cases(*({"crn": f"X00000{i}", "om_staff_code": "A"} for i in range(9)))
    out, _, _ = align(s, c)
    # 12 points of capacity for 9 points of work: spread 6/3 at most before anyone is over.
    counts = out["om"].value_counts().to_dict()
    assert max(counts.values()) <= 6 and sum(counts.values()) == 9
    assert (out["reason"] == "MOVED_CAPACITY").sum() == 3


def test_same_team_preferred_for_moves():
    s = staff(
        {"staff_code": "A", "team_code": "T1"},
        {"staff_code": "B", "team_code": "T1"},
        {"staff_code": "Z", "team_code": "T2"},
    )
    out, _, _ = align(s, cases({"crn": "X000001", "om_staff_code": "GONE", "team_code": "T1"}))
    assert out.loc["X000001", "om"] in ("A", "B") and not out.loc["X000001", "team_change"]


def test_a_planned_move_stands_until_done_and_is_replanned_only_when_its_om_cannot_take_it():
    s = staff({"staff_code": "A"}, {"staff_code": "B"}, {"staff_code": "P", "grade": "PSO"})
    c = cases(
        {"crn": "X000001", "om_staff_code": "A"},  # the extract still shows A: the move to B stands
        {"crn": "X000002", "om_staff_code": "B"},  # the extract moved on from the A it had: it wins
        {"crn": "X000003", "om_staff_code": "B"},  # the move to B is done
        {"crn": "X000004", "om_staff_code": "A"},  # planned to an officer who has left since
        {"crn": "X000005", "om_staff_code": "A", "rsr": 5.0},  # now complex: PSO P may not hold it
        {"crn": "X000006"},
    )  # an allocation not yet made in nDelius
    previous = pd.DataFrame(
        {
            "crn": [f"X00000{i}" for i in range(1, 7)],
            "current_om": ["A", "A", "A", "A", "A", None],
            "om": ["B", "A", "B", "GONE", "P", "B"],
            "reason": ["MOVED_CAPACITY", "KEPT", "MOVED_CAPACITY", "MOVED_CAPACITY", "MOVED_CAPACITY", "ALLOCATED"],
            "planned_on": pd.to_datetime(["2014-05-01", None, "2014-05-01", "2014-05-01", "2014-05-02", "2014-05-03"]),
        }
    )
    split = split_cases(c, P)
    assignment = split_staff(s, split, appeals(), P, "N05", "C15")
    out, _ = align_cases(split, assignment, retention(), P, AS_OF, previous, T("2014-06-01"))
    out = out.set_index("crn")
    got = {
        crn: (
            r.current_om if isinstance(r.current_om, str) else None,
            r.om,
            r.reason,
            bool(r.moved),
            None if pd.isna(r.planned_on) else str(r.planned_on.date()),
            bool(r.replanned),
        )
        for crn, r in out.iterrows()
    }
    assert got["X000001"] == ("A", "B", "MOVED_CAPACITY", True, "2014-05-01", False)
    assert got["X000002"] == ("B", "B", "KEPT", False, None, False)
    assert got["X000003"] == ("B", "B", "KEPT", False, None, False)
    assert got["X000006"] == (None, "B", "ALLOCATED", False, "2014-05-03", False)
    for crn in ("X000004", "X000005"):  # the planned OM can no longer take it: planned again tonight
        current, om, reason, moved, planned_on, replanned = got[crn]
        moves = om != "A"  # or it may stay with A now, the plan cancelled
        assert (current, planned_on, replanned, moved) == ("A", "2014-06-01" if moves else None, moves, moves), crn
        assert om in ("A", "B") and (reason == "KEPT") != moves, crn


def test_no_eligible_officer_on_the_side_still_gets_an_officer():
    s = staff({"staff_code": "Q", "grade": "PSO"}, {"staff_code": "R", "grade": "PSO"})
    out, _, _ = align(s, cases({"crn": "X000001", "rsr": 9.0}))
    assert out.loc["X000001", "om"] in ("Q", "R") and not out.loc["X000001", "eligible_om"]


NO_EXACT = P.model_copy(
    update={"alignment": P.alignment.model_copy(update={"exact_work_limit": 0.0, "exact_work_per_1000_cases": 0.0})}
)


def test_a_part_time_po_over_capacity_with_heavy_cases_is_cured_by_exchanges():
    """A (half time: 450 units) holds 23 complex cases of 20 units (460); B (half time) holds 29 standard
    cases of 15 units (435): room for a 1-point case but not a 4/3-point one. Nobody else has room. Only
    exchanges cure A, class for class: two complex cases out, two standard ones in (4 moves), after which
    nobody is over capacity. Moving single cases can never do it; the exact model finds it."""
    s = staff({"staff_code": "A", "fte": 0.5}, {"staff_code": "B", "fte": 0.5})
    c = cases(
        *({"crn": f"X{i:06d}", "om_staff_code": "A", "rosh": "LOW", "rsr": 8.0} for i in range(23)),
        *({"crn": f"Y{i:06d}", "om_staff_code": "B", "rosh": "LOW"} for i in range(29)),
    )
    out, _, reports = align(s, c)
    assert set(out["case_class"]) == {"CRC_COMPLEX", "CRC_STANDARD"}
    units = out.groupby("om")["weight_units"].sum()
    assert units["A"] == 450 and units["B"] == 445
    assert out["moved"].sum() == 4
    assert (out.loc[out["moved"] & (out["om"] == "B"), "case_class"] == "CRC_COMPLEX").sum() == 2
    crc = next(r for r in reports if r.side == "CRC")
    assert crc.proven and not crc.overload_unavoidable and crc.objective >= crc.bound


@pytest.mark.parametrize("policy", [P, NO_EXACT], ids=["exact model", "exchange neighbourhood alone"])
def test_one_exchange_class_for_class_cures_overload_no_single_move_can(policy):
    """A (450 units) holds 22 complex cases and a standard one (455); B (450) holds 28 standard cases and a
    complex one (440, room for 10 units). No case fits anywhere whole; one exchange does: a complex case of
    A's for a standard case of B's (2 moves)."""
    s = staff({"staff_code": "A", "fte": 0.5}, {"staff_code": "B", "fte": 0.5})
    c = cases(
        *({"crn": f"X{i:06d}", "om_staff_code": "A", "rosh": "LOW", "rsr": 8.0} for i in range(22)),
        {"crn": "X000099", "om_staff_code": "A", "rosh": "LOW"},
        *({"crn": f"Y{i:06d}", "om_staff_code": "B", "rosh": "LOW"} for i in range(28)),
        {"crn": "Y000099", "om_staff_code": "B", "rosh": "LOW", "rsr": 8.0},
    )
    out, _, reports = align(s, c, policy=policy)
    units = out.groupby("om")["weight_units"].sum()
    assert units["A"] == 450 and units["B"] == 445
    assert out["moved"].sum() == 2
    assert set(out.loc[out["moved"], "case_class"]) == {"CRC_COMPLEX", "CRC_STANDARD"}


def test_a_side_where_overload_is_unavoidable_reports_it():
    # A (0.1 FTE: 6 points) holds 9 standard cases and nobody else is on the side.
    s = staff({"staff_code": "A", "fte": 0.1})
    c = cases(*({"crn": f"X{i:06d}", "om_staff_code": "A"} for i in range(9)))
    out, _, reports = align(s, c)
    assert (out["om"] == "A").all() and not out["moved"].any()
    crc = next(r for r in reports if r.side == "CRC")
    assert crc.overload_unavoidable and crc.proven


def test_overload_a_colleague_could_take_is_not_reported_unavoidable():
    s = staff({"staff_code": "A", "fte": 0.1}, {"staff_code": "B"})
    c = cases(*({"crn": f"X{i:06d}", "om_staff_code": "A"} for i in range(9)))
    _, _, reports = align(s, c)
    assert not next(r for r in reports if r.side == "CRC").overload_unavoidable
