"""The alignment's objective: what a plan costs in the units the solvers minimise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.decisions.alignment.roster import Roster
from pipeline.policy import Policy


def _event_cost(moves: int, team_changes: int, ineligible: int, policy: Policy) -> int:
    al = policy.alignment
    return (
        al.cost_move * moves + al.cost_team_change * team_changes + al.cost_ineligible * ineligible
    ) * policy.units_per_point


def load_rates(policy: Policy) -> np.ndarray:
    """The cost of each unit of load past each of `_limits`: overflow, then each spread band."""
    al = policy.alignment
    return np.array([al.cost_overflow_per_point, *(b.cost for b in al.spread_bands)], dtype=np.int64)


def load_cost(loads: np.ndarray, limits: np.ndarray, policy: Policy) -> int:
    """plan_cost's load part, by array, for officers with `limits` carrying `loads` units."""
    return int((np.maximum(0, loads[:, None] - limits) * load_rates(policy)).sum())


@dataclass(frozen=True)
class Plan:
    """A finished alignment as per-case arrays: holder row in the roster, and what pricing needs."""

    row: np.ndarray
    on_side: dict[str, np.ndarray]
    wunits: np.ndarray
    moved: np.ndarray
    eligible: np.ndarray
    team_change: np.ndarray
    free: np.ndarray


def side_cost(plan: Plan, roster: Roster, side: str, policy: Policy, borrowed: set[str]) -> int:
    """plan_cost of one side of a finished alignment, as that side's model saw it.

    Pinned cases load their officer but cost nothing. A staffed side is priced without the free cases a side
    with nobody on it later lent its officers (a pinned one loaded its officer before any lending); that
    borrowing side is priced on its lenders' whole loads.
    """
    lender = side in borrowed
    holder = np.append((roster.side[:-1] != side) == lender, False)
    lent = np.zeros(len(plan.row), dtype=bool)
    for s in borrowed:
        lent |= plan.on_side[s]
    counted = np.ones(len(plan.row), dtype=bool) if lender else ~(lent & plan.free)
    sel = counted & holder[plan.row]
    loaded = np.bincount(plan.row[sel], weights=plan.wunits[sel], minlength=roster.none + 1)
    mine = plan.free & plan.on_side[side]
    held = plan.row < roster.none
    rows = np.flatnonzero(holder[:-1])
    return _event_cost(
        int(plan.moved[mine].sum()), int(plan.team_change[mine].sum()), int((held & ~plan.eligible)[mine].sum()), policy
    ) + load_cost(loaded[rows].astype(np.int64), roster.limits[rows], policy)
