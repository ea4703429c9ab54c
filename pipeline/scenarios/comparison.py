"""What a scenario's decisions come to, trust by trust and side by side, and who fares differently in it.

Pure: tables in, tables out. The figures are those a transition board weighs (docs/scenarios.md says each).
"""

from __future__ import annotations

import pandas as pd

from pipeline.decisions.capacity import counted_by_hours, over_line
from pipeline.decisions.engine import TrustDecisions
from pipeline.domain import HMPPS_WARNING, MOVE_REASONS, NPS, RETAINED, SIDES

COMPARISON_COLUMNS = [
    "scenario",
    "trust_code",
    "side",
    "cases",
    "nps_case_share",
    "nps_staff_share",
    "moves",
    *(f"moves_{r.removeprefix('MOVED_').lower()}" for r in MOVE_REASONS),
    "retained",
    "team_changes",
    "offender_managers",
    "over_capacity_100",
    "over_capacity_110",
    "over_capacity_policy",
    "capacity_points",
    "capacity_points_fte",
    "capacity_points_hours",
    "over_capacity_fte",
    "over_capacity_hours",
    "officers_counted_by_hours",
    "workload_points",
    "staff",
    "staff_fte",
    "staff_at_risk_fte",
    "vacancies_fte",
    "preference_stated",
    "preference_met",
    "objective",
    "proven",
]
_COUNTS = {"objective"} | {c for c in COMPARISON_COLUMNS if c.startswith(("moves", "over_capacity"))}
_COUNTS |= {"cases", "retained", "team_changes", "offender_managers", "staff", "preference_stated", "preference_met"}
_COUNTS |= {"officers_counted_by_hours"}
# One type per column whatever the rows (a side with no solve has no objective), so every set reads alike
COLUMN_TYPES = {
    c: "string"
    if c in ("scenario", "trust_code", "side")
    else "boolean"
    if c == "proven"
    else "Int64"
    if c in _COUNTS
    else "float64"
    for c in COMPARISON_COLUMNS
}
CASE_OUTCOME = ["crn", "side", "om", "reason"]
STAFF_OUTCOME = ["staff_code", "grade", "role", "side", "unit", "reason"]


def side_figures(scenario: str, trust: str, d: TrustDecisions, capacity_limit: float) -> pd.DataFrame:
    """One row per side of the trust: cases, moves by reason, capacity, staff and preferences.
    `capacity_limit`: the scenario's own line (capacity_limit_pct / 100)."""
    a, s, load, bal = d.case_alignment, d.staff_assignment, d.caseload, d.workforce_balance
    nps_case_share = float((a["side"] == NPS).mean()) if len(a) else 0.0
    fte_total = float(s["fte"].sum())
    nps_staff_share = float(s.loc[s["side"] == NPS, "fte"].sum()) / fte_total if fte_total else 0.0
    stated = s["guaranteed"].to_numpy(dtype=bool) & s["preference"].isin(SIDES).to_numpy(dtype=bool)
    solver = {r.side: r for r in d.solver}
    rows = []
    for side in SIDES:
        on = (a["side"] == side).to_numpy(dtype=bool)
        reason = a["reason"][on]
        officers = load[(load["side"] == side).to_numpy(dtype=bool)]
        points, capacity = officers["points"], officers["capacity_points"]
        staff = s[(s["side"] == side).to_numpy(dtype=bool)]
        mine = stated & (s["side"] == side).to_numpy(dtype=bool)
        b = bal[(bal["side"] == side).to_numpy(dtype=bool)]
        report = solver.get(side)
        rows.append(
            {
                "scenario": scenario,
                "trust_code": trust,
                "side": side,
                "cases": int(on.sum()),
                "nps_case_share": round(nps_case_share, 6),
                "nps_staff_share": round(nps_staff_share, 6),
                "moves": int(a["moved"][on].sum()),
                **{f"moves_{r.removeprefix('MOVED_').lower()}": int((reason == r).sum()) for r in MOVE_REASONS},
                "retained": int((reason == RETAINED).sum()),
                "team_changes": int(a["team_change"][on].sum()),
                "offender_managers": int(len(officers)),
                "over_capacity_100": int(over_line(points, capacity, 1.0).sum()),
                "over_capacity_110": int(over_line(points, capacity, HMPPS_WARNING).sum()),
                "over_capacity_policy": int(over_line(points, capacity, capacity_limit).sum()),
                "capacity_points": round(float(capacity.sum()), 6),
                "capacity_points_fte": round(float(officers["capacity_points_fte"].sum()), 6),
                "capacity_points_hours": round(float(officers["capacity_points_hours"].sum()), 6),
                **{
                    f"over_capacity_{way}": int(
                        over_line(points, officers[f"capacity_points_{way}"], capacity_limit).sum()
                    )
                    for way in ("fte", "hours")
                },
                "officers_counted_by_hours": int(counted_by_hours(officers).sum()),
                "workload_points": round(float(officers["points"].sum()), 6),
                "staff": int(len(staff)),
                "staff_fte": round(float(staff["fte"].sum()), 6),
                "staff_at_risk_fte": round(float(b["surplus_fte"].sum()), 6),
                "vacancies_fte": round(float(b["deficit_fte"].sum()), 6),
                "preference_stated": int(mine.sum()),
                "preference_met": int((mine & (s["preference"] == side).to_numpy(dtype=bool)).sum()),
                "objective": None if report is None else int(report.objective),
                "proven": None if report is None else bool(report.proven),
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS).astype(COLUMN_TYPES)


def outcomes(d: TrustDecisions) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each case's side, officer and reason, and each person's side, unit and reason, by key."""
    cases = d.case_alignment[CASE_OUTCOME].sort_values("crn", kind="stable").reset_index(drop=True)
    staff = d.staff_assignment[STAFF_OUTCOME].sort_values("staff_code", kind="stable").reset_index(drop=True)
    return cases, staff


def differences(base: pd.DataFrame, variant: pd.DataFrame, key: str, fixed: list[str] | None = None) -> pd.DataFrame:
    """The rows whose outcome differs between the base and a variant (present in one only, or any outcome
    column not the same), with `base_<column>` and `variant_<column>` side by side, sorted by key.
    `fixed`: columns that describe the row rather than its outcome (a person's grade), shown once."""
    fixed = fixed or []
    outcome = [c for c in base.columns if c != key and c not in fixed]
    both = base.merge(variant, on=key, how="outer", suffixes=("_base", "_variant"), indicator=True, sort=True)
    differs = both["_merge"] != "both"
    for c in outcome:
        x, y = both[f"{c}_base"], both[f"{c}_variant"]
        differs |= ~((x == y).fillna(False) | (x.isna() & y.isna()))
    picked = both[differs.to_numpy(dtype=bool)]
    columns = {key: picked[key]}
    for c in fixed:
        columns[c] = picked[f"{c}_base"].fillna(picked[f"{c}_variant"])
    for c in outcome:
        columns[f"base_{c}"] = picked[f"{c}_base"]
        columns[f"variant_{c}"] = picked[f"{c}_variant"]
    return pd.DataFrame(columns).reset_index(drop=True)
