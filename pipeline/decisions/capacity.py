"""Each officer's capacity in workload points, counted two ways: by FTE, and by hours as HMPPS counts it
(contracted hours less the caseload reductions active on the day). The policy's `capacity.model` says which
one the decisions use; both are kept so that the reports can show the difference."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.policy import Policy

CAPACITY_COLUMNS = [
    "hours",
    "hours_given",
    "reduction_hours",
    "capacity_points_fte",
    "capacity_points_hours",
    "capacity_points",
]


def with_capacity(staff: pd.DataFrame, reductions: pd.DataFrame | None, policy: Policy, on: pd.Timestamp | None):
    """`staff` with CAPACITY_COLUMNS: the officer's weekly `hours` (contracted_hours, or fte x full-time hours
    when blank; `hours_given` says which), the `reduction_hours` of the reductions active `on` that day (capped
    at their hours), their capacity by FTE and by hours, and `capacity_points`, the one the policy's model uses."""
    cap = policy.capacity
    per_fte = policy.case_classes.capacity_points_per_fte
    fte = staff["fte"].to_numpy(dtype=np.float64)
    given = (
        pd.to_numeric(staff["contracted_hours"], errors="coerce").to_numpy(dtype=np.float64)
        if "contracted_hours" in staff
        else np.full(len(staff), np.nan)
    )
    # An officer without contracted hours is counted at their FTE exactly, so that with no reductions the
    # hours model gives the FTE model's capacity to the last bit.
    fte_equiv = np.where(np.isnan(given), fte, given / cap.full_time_hours)
    hours = np.where(np.isnan(given), fte * cap.full_time_hours, given)
    reduced = np.minimum(_reduction_hours(staff["staff_code"], hours, reductions, policy, on), hours)
    with np.errstate(divide="ignore", invalid="ignore"):
        availability = np.where(reduced > 0, (hours - reduced) / hours, 1.0)
    by_fte = fte * per_fte
    by_hours = fte_equiv * per_fte * availability
    return staff.assign(
        hours=hours,
        hours_given=~np.isnan(given),
        reduction_hours=reduced,
        capacity_points_fte=by_fte,
        capacity_points_hours=by_hours,
        capacity_points=by_hours if cap.model == "hours" else by_fte,
    )


def over_line(points, capacity, line: float) -> np.ndarray:
    """Loads above `line` (a share of capacity): the one meaning of "over capacity" everywhere. A load exactly
    at the line is not over it; any load on no capacity is."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(points, dtype=np.float64) / np.asarray(capacity, dtype=np.float64) > line + 1e-9


def counted_by_hours(caseload: pd.DataFrame) -> pd.Series:
    """Officers whose extract gives their contracted hours or a reduction active today: where there are none,
    the two ways of counting say the same and the reports show one."""
    return caseload["hours_given"] | (caseload["reduction_hours"] > 0)


def counted(staff: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """`staff` with its capacity as `with_capacity` counted it, or, for a staff table it has not seen, counted
    with no reductions."""
    return staff if "capacity_points" in staff else with_capacity(staff, None, policy, None)


def _reduction_hours(
    codes: pd.Series, hours: np.ndarray, reductions: pd.DataFrame | None, policy: Policy, on: pd.Timestamp | None
) -> np.ndarray:
    """Per staff row, the weekly hours its officer's active reductions take: each reduction's own hours, or its
    percent of the officer's hours, or the policy's allowance for its reason, added up."""
    if reductions is None or reductions.empty or on is None:
        return np.zeros(len(codes))
    r = reductions
    r = r.loc[((r["start_date"] <= on) & (r["end_date"].isna() | (r["end_date"] >= on))).to_numpy(dtype=bool)]
    officer_hours = pd.Series(hours, index=codes.to_numpy()).groupby(level=0).last()  # a code twice: its last row
    r = r.loc[r["staff_code"].isin(officer_hours.index)]
    allowance = policy.capacity.allowances
    officer = officer_hours.reindex(r["staff_code"]).to_numpy()
    default = r["reason"].map(lambda k: allowance[k].hours if k in allowance else None)
    default_pct = r["reason"].map(lambda k: allowance[k].percent if k in allowance else None)
    own_hours, own_pct = r["hours"].astype(float).to_numpy(), r["percent"].astype(float).to_numpy()
    each = np.select(
        [~np.isnan(own_hours), ~np.isnan(own_pct), default.notna().to_numpy()],
        [own_hours, officer * own_pct / 100, default.astype(float).to_numpy()],
        officer * default_pct.astype(float).to_numpy() / 100,
    )
    per_code = pd.Series(np.nan_to_num(each), index=r["staff_code"].to_numpy()).groupby(level=0).sum()
    return codes.map(per_code).fillna(0.0).to_numpy(dtype=np.float64)
