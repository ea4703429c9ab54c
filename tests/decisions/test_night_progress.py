"""The night's progress table against its definition, counted the plain way with pandas filters."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.decisions.night import progress
from pipeline.domain import MOVE_REASONS

RUN = pd.Timestamp("2014-06-01")
REASONS = ["KEPT", "ALLOCATED", *MOVE_REASONS]

case = st.fixed_dictionaries(
    {
        "side": st.sampled_from(["NPS", "CRC"]),
        "moved": st.booleans(),
        "replanned": st.booleans(),
        "actioned": st.booleans(),
        "reason": st.sampled_from(REASONS),
        "days_ago": st.integers(0, 40),
    }
)
person = st.fixed_dictionaries(
    {
        "side": st.sampled_from(["NPS", "CRC"]),
        "held": st.booleans(),
        "reason": st.sampled_from(["RULE", "APPEAL_UPHELD", "HELD"]),
        "days_ago": st.integers(0, 3),
    }
)


def _expected(a: pd.DataFrame, s: pd.DataFrame, side: str) -> dict:
    mine, staff = a[a["side"] == side], s[s["side"] == side]
    moves = mine[mine["moved"]]
    age = (RUN - moves["planned_on"]).dt.days
    again = moves[moves["replanned"]]
    today = staff["assigned_on"] == RUN
    return {
        "cases": len(mine),
        "moves_outstanding": len(moves),
        "median_days_outstanding": float(age.median()) if len(age) else None,
        "oldest_days_outstanding": int(age.max()) if len(age) else None,
        "moves_done": int(mine["actioned"].sum()),
        "newly_planned": int((moves["planned_on"] == RUN).sum()) - len(again),
        "replanned": len(again),
        **{f"replanned_{r.lower()}": int((again["reason"] == r).sum()) for r in MOVE_REASONS},
        "staff": len(staff),
        "staff_held": int(staff["held"].sum()),
        "staff_newly_assigned": int((today & ~staff["held"]).sum()),
        "staff_changed_by_appeal": int((today & (staff["reason"] == "APPEAL_UPHELD")).sum()),
    }


@settings(max_examples=150, deadline=None)
@given(st.lists(case, max_size=40), st.lists(person, max_size=15))
def test_progress_counts_each_side_as_its_definition_says(cases, people):
    a = pd.DataFrame(cases, columns=["side", "moved", "replanned", "actioned", "reason", "days_ago"])
    a["planned_on"] = RUN - pd.to_timedelta(a["days_ago"].astype("int64"), unit="D")
    s = pd.DataFrame(people, columns=["side", "held", "reason", "days_ago"])
    s["assigned_on"] = RUN - pd.to_timedelta(s["days_ago"].astype("int64"), unit="D")
    a, s = a.astype({"moved": bool, "replanned": bool, "actioned": bool}), s.astype({"held": bool})
    got = progress(a, s, RUN).set_index("side")
    for side in ("NPS", "CRC"):
        row = got.loc[side].to_dict()
        for key, want in _expected(a, s, side).items():
            value = None if pd.isna(row[key]) else row[key]
            assert value == want, (side, key, value, want)
    assert got["cases"].sum() == len(a) and got["staff"].sum() == len(s)
