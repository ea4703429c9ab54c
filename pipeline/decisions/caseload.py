"""Each offender manager's caseload after alignment: cases, workload points, capacity and utilisation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.decisions.capacity import CAPACITY_COLUMNS, counted, over_line
from pipeline.policy import Policy


def caseload(aligned: pd.DataFrame, staff_split: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Per offender manager: cases, workload points, capacity (both ways, and as the policy counts it) and
    utilisation after alignment."""
    staff = staff_split.sort_values("staff_code", kind="stable")
    row = pd.Index(staff["staff_code"]).get_indexer(aligned["om"])
    held = row >= 0
    cases = np.bincount(row[held], minlength=len(staff))
    units = np.bincount(row[held], weights=aligned["weight_units"].to_numpy()[held], minlength=len(staff))
    keep = (cases > 0) | staff["role"].isin(_holding_roles(policy)).to_numpy()
    columns = ["staff_code", "side", "unit", "grade", "role", "team_code", "fte", *CAPACITY_COLUMNS]
    out = counted(staff, policy).loc[keep, columns].reset_index(drop=True)
    points = units[keep] / policy.units_per_point
    capacity = out["capacity_points"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        utilisation = points / capacity
    return out.assign(
        cases=cases[keep].astype("int64"),
        points=points,
        capacity_points=capacity,
        utilisation=utilisation,
        over_capacity=over_line(points, capacity, policy.alignment.capacity_limit_pct / 100),
    )


def _holding_roles(policy: Policy) -> set[str]:
    return {r for rules in policy.case_classes.eligibility.values() for e in rules for r in e.roles if r != "*"}
