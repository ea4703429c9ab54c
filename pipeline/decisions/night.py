"""Night after night (docs/decisions.md, section 5): what the last run before this one decided, as tonight's
decisions read it.

A person keeps the side an earlier run gave them (`staff_split.split_staff`, `held`); a case keeps the OM an
earlier run planned for it while the extract still shows the OM it had then, or shows the planned one (the
move done), and the planned OM can still take it (`alignment.align_cases`). These functions only line the
earlier tables up with tonight's extract, and count the night's progress; they decide nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.domain import ALLOCATED, MOVE_REASONS

PLAN_COLUMNS = ["crn", "current_om", "om", "reason", "planned_on"]
OUTSTANDING = frozenset(MOVE_REASONS) | {ALLOCATED}  # a plan the extract has still to show done


def prior_plan(cases: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The earlier plan (PLAN_COLUMNS) of each of tonight's cases (in `cases` order): `planned_om`, `reason`,
    `planned_on`, `then_om` (the OM the extract showed then), whether it was a move or an allocation still to
    be made (`outstanding`), and whether tonight's extract still shows the OM it showed then (`unchanged`) or
    the planned one (`done`). Cases new tonight have no planned OM. Each case is looked up once, by Arrow
    (pandas' isin on text goes value by value)."""
    n = len(cases)
    none = np.full(n, None, dtype=object)
    if previous is None or previous.empty:
        no = np.zeros(n, bool)
        return pd.DataFrame(
            {
                "planned_om": none,
                "reason": none.copy(),
                "planned_on": np.full(n, np.datetime64("NaT"), "datetime64[ns]"),
                "then_om": none.copy(),
                "outstanding": no,
                "unchanged": no,
                "done": no,
            }
        )
    previous = previous.drop_duplicates("crn").reset_index(drop=True)
    at = pd.Index(previous["crn"]).get_indexer(cases["crn"])
    known = at >= 0
    pick = np.where(known, at, 0)

    def column(name: str) -> np.ndarray:
        values = previous[name].to_numpy(dtype=object, na_value=None)[pick]
        values[~known] = None
        return values

    planned, then, reason = column("om"), column("current_om"), column("reason")
    on = pd.to_datetime(previous["planned_on"], errors="coerce").to_numpy(dtype="datetime64[ns]")[pick]
    on[~known] = np.datetime64("NaT")
    now = cases["om_staff_code"].to_numpy(dtype=object, na_value=None)

    def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # both blank counts as the same: unallocated
        blank_a, blank_b = pd.isna(a), pd.isna(b)
        return (blank_a & blank_b) | (~blank_a & ~blank_b & (a == b))

    return pd.DataFrame(
        {
            "planned_om": planned,
            "reason": reason,
            "planned_on": on,
            "then_om": then,
            "outstanding": np.isin(reason, sorted(OUTSTANDING)),
            "unchanged": known & same(now, then),
            "done": known & ~pd.isna(planned) & same(now, planned),
        }
    )


PROGRESS_COLUMNS = [
    "side",
    "cases",
    "moves_outstanding",
    "median_days_outstanding",
    "oldest_days_outstanding",
    "moves_done",
    "newly_planned",
    "replanned",
    *(f"replanned_{r.lower()}" for r in MOVE_REASONS),
    "staff",
    "staff_held",
    "staff_newly_assigned",
    "staff_changed_by_appeal",
]


def progress(aligned: pd.DataFrame, assignment: pd.DataFrame, run_date: pd.Timestamp) -> pd.DataFrame:
    """The transition's progress in one trust tonight, one row per side: cases; moves outstanding and their
    age in days since first planned (median, oldest); moves shown done since the last run; moves planned for
    the first time tonight; moves re-planned, in all and by reason; staff, held from earlier runs, assigned
    for the first time tonight, and changed by an appeal upheld tonight. Counted on the columns as arrays
    (filtering the whole frames by side cost more than the counting)."""
    day = np.datetime64(run_date, "ns")
    moved, replanned = aligned["moved"].to_numpy(dtype=bool), aligned["replanned"].to_numpy(dtype=bool)
    actioned, reason = aligned["actioned"].to_numpy(dtype=bool), aligned["reason"].to_numpy(dtype=object)
    planned_on = pd.to_datetime(aligned["planned_on"]).to_numpy(dtype="datetime64[ns]")
    held = assignment["held"].to_numpy(dtype=bool)
    today = (pd.to_datetime(assignment["assigned_on"]) == run_date).to_numpy(dtype=bool)
    appeal = (assignment["reason"] == "APPEAL_UPHELD").to_numpy(dtype=bool)
    rows = []
    for side in ("NPS", "CRC"):
        mine, staff = (aligned["side"] == side).to_numpy(dtype=bool), (assignment["side"] == side).to_numpy(dtype=bool)
        moves = mine & moved
        again = moves & replanned
        since = planned_on[moves]
        age = (day - since[~np.isnat(since)]) // np.timedelta64(1, "D")  # a move not yet dated has no age
        rows.append(
            {
                "side": side,
                "cases": int(mine.sum()),
                "moves_outstanding": int(moves.sum()),
                "median_days_outstanding": float(np.median(age)) if len(age) else None,
                "oldest_days_outstanding": int(age.max()) if len(age) else None,
                "moves_done": int((mine & actioned).sum()),
                "newly_planned": int((since == day).sum() - again.sum()),
                "replanned": int(again.sum()),
                **{f"replanned_{r.lower()}": int((reason[again] == r).sum()) for r in MOVE_REASONS},
                "staff": int(staff.sum()),
                "staff_held": int((staff & held).sum()),
                "staff_newly_assigned": int((staff & today & ~held).sum()),
                "staff_changed_by_appeal": int((staff & today & appeal).sum()),
            }
        )
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS).astype(
        {"median_days_outstanding": "float64", "oldest_days_outstanding": "Int64"}
    )
