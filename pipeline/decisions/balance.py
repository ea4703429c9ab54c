"""Workforce balance: FTE the workload requires against FTE assigned, per side and grade."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.decisions.capacity import counted
from pipeline.domain import SIDES
from pipeline.policy import Policy


def workforce_balance(
    caseload: pd.DataFrame, staff_split: pd.DataFrame, policy: Policy, units: dict[str, str]
) -> pd.DataFrame:
    """Per side and grade: FTE assigned, FTE available, FTE required, and the surplus (staff at risk) or deficit
    (vacancies).

    Case-holding grades need the points their cases carry / points per FTE; the other grades are needed pro
    rata: the trust's FTE of that grade times the side's share of all workload points. FTE available is the
    capacity the policy counts / points per FTE (the FTE itself under the `fte` model; less the caseload
    reductions under `hours`): a case-holding grade's surplus or deficit is measured on it.
    """
    per_fte = policy.case_classes.capacity_points_per_fte
    staff_split = counted(staff_split, policy)
    holding = set(policy.balance.case_holding_grades)
    points = group_sums(caseload, ["side", "grade"], "points")
    side_points = group_sums(caseload, ["side"], "points")
    total_points = float(sum(side_points.values()))
    fte_of = group_sums(staff_split, ["side", "grade"], "fte")
    heads = group_sums(staff_split, ["side", "grade"], None)
    grade_fte = group_sums(staff_split, ["grade"], "fte")
    available_of = group_sums(staff_split, ["side", "grade"], "capacity_points")
    rows = []
    for side in SIDES:
        share = side_points.get((side,), 0.0) / total_points if total_points else 0.0
        for (grade,) in sorted(grade_fte):
            if grade in holding:
                required = points.get((side, grade), 0.0) / per_fte
            else:
                required = grade_fte[(grade,)] * share
            fte = fte_of.get((side, grade), 0.0)
            available = available_of.get((side, grade), 0.0) / per_fte if policy.capacity.model == "hours" else fte
            counts = available if grade in holding else fte
            rows.append(
                {
                    "side": side,
                    "unit": units[side],
                    "grade": grade,
                    "headcount": heads.get((side, grade), 0),
                    "fte_assigned": round(fte, 6),
                    "fte_available": round(available, 6),
                    "fte_required": round(required, 6),
                    "surplus_fte": round(max(counts - required, 0.0), 6),
                    "deficit_fte": round(max(required - counts, 0.0), 6),
                }
            )
    return pd.DataFrame(rows)


def group_sums(df: pd.DataFrame, keys: list[str], column: str | None) -> dict[tuple, float]:
    """Per distinct `keys` tuple, the sum of `column` (None: the row count), added up in row order as a loop
    over the rows would (np.bincount adds in that order), so the floats are the same to the last bit."""
    if df.empty:
        return {}
    factors = [pd.factorize(df[k], use_na_sentinel=False) for k in keys]
    key = np.ravel_multi_index([codes for codes, _ in factors], [len(names) for _, names in factors])
    distinct, first, dense = np.unique(key, return_index=True, return_inverse=True)
    total = np.bincount(
        dense, weights=None if column is None else df[column].to_numpy(dtype=float), minlength=len(distinct)
    )
    labels = [np.asarray(names, dtype=object)[codes[first]].tolist() for codes, names in factors]
    return dict(zip(zip(*labels), total.tolist()))
