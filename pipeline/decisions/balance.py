"""Workforce balance: FTE the workload requires against FTE assigned, per side and grade."""
from __future__ import annotations

import pandas as pd

from pipeline.domain import SIDES
from pipeline.policy import Policy


def workforce_balance(
    caseload: pd.DataFrame, staff_split: pd.DataFrame, policy: Policy, units: dict[str, str]
) -> pd.DataFrame:
    """Per side and grade: FTE assigned, FTE required, and the surplus (staff at risk) or deficit (vacancies).

    Case-holding grades need the points their cases carry / points per FTE; the other grades are needed pro
    rata: the trust's FTE of that grade times the side's share of all workload points.
    """
    per_fte = policy.case_classes.capacity_points_per_fte
    holding = set(policy.balance.case_holding_grades)
    points = caseload.groupby(["side", "grade"])["points"].sum()
    side_points = caseload.groupby("side")["points"].sum()
    total_points = float(side_points.sum())
    assigned = staff_split.groupby(["side", "grade"]).agg(fte_assigned=("fte", "sum"), headcount=("fte", "size"))
    grade_fte = staff_split.groupby("grade")["fte"].sum()
    rows = []
    for side in SIDES:
        share = float(side_points.get(side, 0.0)) / total_points if total_points else 0.0
        for grade in sorted(set(staff_split["grade"])):
            if grade in holding:
                required = float(points.get((side, grade), 0.0)) / per_fte
            else:
                required = float(grade_fte.get(grade, 0.0)) * share
            got = assigned.loc[(side, grade)] if (side, grade) in assigned.index else None
            fte = float(got["fte_assigned"]) if got is not None else 0.0
            rows.append({
                "side": side, "unit": units[side], "grade": grade,
                "headcount": int(got["headcount"]) if got is not None else 0,
                "fte_assigned": round(fte, 6), "fte_required": round(required, 6),
                "surplus_fte": round(max(fte - required, 0.0), 6),
                "deficit_fte": round(max(required - fte, 0.0), 6),
            })
    return pd.DataFrame(rows)
