"""Workforce balance: FTE the workload requires against FTE assigned, per side and grade."""
from __future__ import annotations

from collections import defaultdict

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
    points: dict[tuple[str, str], float] = defaultdict(float)
    side_points: dict[str, float] = defaultdict(float)
    for side, grade, p in zip(caseload["side"], caseload["grade"], caseload["points"].to_numpy(dtype=float)):
        points[(side, grade)] += p
        side_points[side] += p
    total_points = float(sum(side_points.values()))
    fte_of: dict[tuple[str, str], float] = defaultdict(float)
    heads: dict[tuple[str, str], int] = defaultdict(int)
    grade_fte: dict[str, float] = defaultdict(float)
    for side, grade, fte in zip(staff_split["side"], staff_split["grade"], staff_split["fte"].to_numpy(dtype=float)):
        fte_of[(side, grade)] += fte
        heads[(side, grade)] += 1
        grade_fte[grade] += fte
    rows = []
    for side in SIDES:
        share = side_points.get(side, 0.0) / total_points if total_points else 0.0
        for grade in sorted(grade_fte):
            if grade in holding:
                required = points.get((side, grade), 0.0) / per_fte
            else:
                required = grade_fte[grade] * share
            fte = fte_of.get((side, grade), 0.0)
            rows.append({
                "side": side, "unit": units[side], "grade": grade, "headcount": heads.get((side, grade), 0),
                "fte_assigned": round(fte, 6), "fte_required": round(required, 6),
                "surplus_fte": round(max(fte - required, 0.0), 6),
                "deficit_fte": round(max(required - fte, 0.0), 6),
            })
    return pd.DataFrame(rows)
