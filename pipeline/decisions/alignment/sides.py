"""Sorting a trust's cases into sides: who may keep each case, what stands from the nights before, and
the movable cases of each side as groups."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from pipeline.decisions.alignment.roster import CaseArrays, Roster, group_rows
from pipeline.domain import (
    ALLOCATED,
    KEPT,
    MOVE_REASONS,
    MOVED_CAPACITY,
    MOVED_GRADE,
    MOVED_LEFT,
    MOVED_SIDE,
    RETAINED,
    SIDES,
)

# A case's reason as a number (-1: none yet), named by its place here.
REASONS = (KEPT, RETAINED, ALLOCATED, MOVED_LEFT, MOVED_SIDE, MOVED_GRADE, MOVED_CAPACITY)


REASON_KEPT, _RETAINED, REASON_ALLOCATED, _MOVED_LEFT, _MOVED_SIDE, _MOVED_GRADE, REASON_MOVED_CAPACITY = range(
    len(REASONS)
)


MOVE_CODES = [REASONS.index(r) for r in MOVE_REASONS]


@dataclass(frozen=True)
class Side:
    """One side's (or part's) movable work, numbered: kept groups, in (current OM, class, team) order, each
    either keeping its cases or sending them to its (class, team) pool; forced cases per (class, team)."""

    roster: Roster
    officers: np.ndarray  # roster rows, ascending
    classes: np.ndarray  # each officer's classes as bits (none on a side borrowing another's officers)
    fixed: np.ndarray  # units each officer holds already (retained cases; a lender's load)
    g_om: np.ndarray
    g_k: np.ndarray
    g_t: np.ndarray
    g_start: np.ndarray
    g_rows: np.ndarray
    f_k: np.ndarray
    f_t: np.ndarray
    f_start: np.ndarray
    f_rows: np.ndarray
    forced_moves: int = 0  # forced cases that leave an officer (the rest are allocations)

    @property
    def empty(self) -> bool:
        return not len(self.g_om) and not len(self.f_k)

    @cached_property
    def team(self) -> np.ndarray:
        return self.roster.team[self.officers]

    @cached_property
    def limits(self) -> np.ndarray:
        return self.roster.limits[self.officers]

    def local(self, rows: np.ndarray) -> np.ndarray:
        """Each officer's place in `officers`, from their roster row."""
        return np.searchsorted(self.officers, rows)

    def class_codes(self) -> np.ndarray:
        return np.unique(np.concatenate([self.g_k, self.f_k]))


def _allowed(c: CaseArrays, roster: Roster) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether each case's OM (`c.row`) may keep it, whether the OM is known, and on the case's side.

    An officer may keep a case of a class they may hold, or of one nobody on their side may hold; and any
    officer may keep a case of a side with nobody on it (that side borrows the other side's officers)."""
    n, row = len(c.row), c.row
    known = row < roster.none
    side_bits = np.zeros(n, dtype=np.int64)
    unstaffed = np.zeros(n, dtype=bool)
    for s in SIDES:
        side_bits[c.on_side[s]] = roster.side_classes(s)
        if not (roster.side == s).any():
            unstaffed |= c.on_side[s]
    may_hold = ((roster.classes[row] & c.bits) != 0) | ((side_bits & c.bits) == 0)
    same_side = roster.same_side(row, c.on_side)
    return known & (same_side | unstaffed) & may_hold, known, same_side


def standing_cases(cases: pd.DataFrame, prior: pd.DataFrame, roster: Roster, held: pd.Series) -> np.ndarray:
    """The cases whose earlier plan stands tonight: the extract shows the OM it had when planned, or the
    planned OM (the move done), and the planned OM can still take it (in post, on the case's side, may hold
    its class) with no retention request holding the case where it is now."""
    planned = prior["planned_om"]
    if not planned.notna().any():
        return np.zeros(len(cases), dtype=bool)
    c = CaseArrays.of(cases, planned, roster)
    can_take, _, _ = _allowed(c, roster)
    retained = cases["crn"].isin(held).to_numpy(dtype=bool) & ~prior["done"].to_numpy()
    pending = prior["outstanding"].to_numpy() | (
        planned.to_numpy(dtype=object) == prior["then_om"].to_numpy(dtype=object)
    )
    waiting = prior["unchanged"].to_numpy() & pending  # a plan without its reason is not one to keep waiting
    return (waiting | prior["done"].to_numpy()) & planned.notna().to_numpy() & can_take & ~retained


def classify(
    crns: pd.Series, c: CaseArrays, roster: Roster, held: pd.Series, standing: np.ndarray | None = None
) -> tuple[dict[str, Side], np.ndarray, ...]:
    """Sort every case into pinned (retention, or a standing plan), kept groups (its OM may keep it) or
    forced (it must move).

    Returns each side's problem and per-case arrays: om and reason (set for pinned cases), the reason a forced
    case moves, and whether it is pinned.
    """
    n, row = len(crns), c.row
    allowed, known, same_side = _allowed(c, roster)
    pin = known & crns.isin(held).to_numpy(dtype=bool)
    if standing is not None:
        pin |= standing
    om = np.full(n, roster.none, dtype=np.int64)
    reason = np.full(n, -1, dtype=np.int8)
    om[pin] = row[pin]
    reason[pin] = np.where(allowed[pin], REASON_KEPT, _RETAINED)
    fixed = np.bincount(row[pin], weights=c.wunits[pin], minlength=roster.none + 1).astype(np.int64)
    why = np.select([c.missing, ~known, ~same_side], [REASON_ALLOCATED, _MOVED_LEFT, _MOVED_SIDE], _MOVED_GRADE)
    why[pin | allowed] = -1
    forced_reason = why.astype(np.int8)
    k, t = c.k_code, c.t_code
    nk, nt = len(roster.class_names), max(len(roster.teams), 1)
    free = ~pin
    problems = {}
    for s in SIDES:
        officers = np.flatnonzero(roster.side[:-1] == s)
        keep = np.flatnonzero(allowed & free & c.on_side[s])
        g_first, g_rows, g_start = group_rows(keep, (row[keep] * nk + k[keep]) * nt + t[keep])
        move = np.flatnonzero(~allowed & free & c.on_side[s])
        f_first, f_rows, f_start = group_rows(move, k[move] * nt + t[move])
        problems[s] = Side(
            roster,
            officers,
            roster.classes[officers],
            fixed[officers],
            row[g_first],
            k[g_first],
            t[g_first],
            g_start,
            g_rows,
            k[f_first],
            t[f_first],
            f_start,
            f_rows,
            int(np.count_nonzero(~c.missing[f_rows])),
        )
    return problems, om, reason, forced_reason, pin


def borrowed_side(side: Side, name: str, om: np.ndarray, wunits: np.ndarray) -> Side:
    """A side with no officer: its cases go to the other side's officers, as loaded now, all at the
    ineligible cost (so who may hold which class no longer matters, only load, moves and teams); a case
    already held by one of them may stay."""
    roster = side.roster
    others = np.flatnonzero(roster.side[:-1] != name)
    held = om < roster.none
    load = np.bincount(om[held], weights=wunits[held], minlength=roster.none).astype(np.int64)
    return replace(side, officers=others, classes=np.zeros(len(others), dtype=np.int64), fixed=load[others])
