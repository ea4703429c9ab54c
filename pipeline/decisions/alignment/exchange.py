"""The exchange neighbourhood: a whole-case plan of one side improved one exact step at a time.

Rounding a relaxation to whole cases can leave an officer over capacity, or a case moved that could have
stayed. Some of that single moves cure (a case off an officer over capacity, a case back home); some takes
an exchange (a heavy case out, a light one in, with a colleague).
Every step is priced exactly as the plan is (moves, team changes and each officer's load bands) and taken
only when it lowers the plan's cost, so the search ends, and it looks at cases and officers in a fixed
order, so the same plan always comes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Neighbourhood:
    """One side's free cases and officers, by place (0..n-1), as the search prices them.

    home: the officer who may keep the case at no cost (-1: none; it must move);
    move_cost: what leaving home costs (0 for a case with no officer to leave);
    holds: per officer, the classes they may be given as bits; a class nobody holds may go to anyone.
    """

    home: np.ndarray
    move_cost: np.ndarray
    k: np.ndarray
    w: np.ndarray
    t: np.ndarray
    team: np.ndarray
    holds: np.ndarray
    fixed: np.ndarray
    limits: np.ndarray  # per officer: each load threshold in units
    rates: np.ndarray  # the cost of each unit past each threshold
    team_change: int

    def load_cost(self, o: np.ndarray, load: np.ndarray) -> np.ndarray:
        return (np.maximum(0, load[..., None] - self.limits[o]) * self.rates).sum(axis=-1)

    def may_hold(self, k: int) -> np.ndarray:
        """Officers who may be given a case of class k."""
        mine = (self.holds >> k & 1).astype(bool)
        return mine if mine.any() else np.ones(len(self.holds), dtype=bool)

    def event(self, i: int, o: np.ndarray) -> np.ndarray:
        """The cost of case i held by each officer of `o`, beyond its load."""
        away = o != self.home[i]
        return away * (self.move_cost[i] + self.team_change * (self.team[o] != self.t[i]))


def improve(nb: Neighbourhood, holder: np.ndarray, max_rounds: int) -> np.ndarray:
    """The plan `holder` (each case's officer, by place) after improving steps until none is left (or
    `max_rounds` rounds): relocations of the cases on officers over capacity, cases away from home sent back,
    then exchanges of two cases between two officers, one of them over capacity."""
    holder = holder.copy()
    n = len(nb.holds)
    load = nb.fixed + np.bincount(holder, weights=nb.w, minlength=n).astype(np.int64)
    everyone = np.arange(n)
    classes = np.unique(nb.k)
    allowed = np.stack([nb.may_hold(k) for k in classes.tolist()]) if len(classes) else np.zeros((0, n), bool)
    of_class = np.searchsorted(classes, nb.k)  # each case's row of `allowed` (class, officer)
    # What taking one more case of each weight costs each officer, kept up to date as loads change.
    adding: dict[int, np.ndarray] = {}

    def cost_of_adding(w: int) -> np.ndarray:
        if w not in adding:
            adding[w] = nb.load_cost(everyone, load + w) - nb.load_cost(everyone, load)
        return adding[w]

    def loads_changed(*officers: int) -> None:
        o = np.asarray(officers, dtype=np.int64)
        for w, costs in adding.items():
            costs[o] = nb.load_cost(o, load[o] + w) - nb.load_cost(o, load[o])

    def give(i: int, a: int, b: int, w: int) -> bool:
        """Case i (weight w) goes from a to b."""
        holder[i] = b
        load[a] -= w
        load[b] += w
        loads_changed(a, b)
        return True

    def relocate(i: int) -> bool:
        a, w = int(holder[i]), int(nb.w[i])
        if a == nb.home[i] and load[a] <= nb.limits[a, 0]:
            return False  # at home and within capacity: leaving costs a move, more than it could save
        gain_a = nb.load_cost(a, np.int64(load[a] - w)) - nb.load_cost(a, load[a])
        delta = nb.event(i, everyone) - nb.event(i, np.int64(a)) + gain_a + cost_of_adding(w)
        delta[~allowed[of_class[i]]] = 0
        delta[a] = 0
        b = int(delta.argmin())
        return delta[b] < 0 and give(i, a, b, w)

    def exchange(i: int) -> bool:
        """Case i swaps officers with one case j of another weight (or one whose swap sends a case home)."""
        a, w = int(holder[i]), int(nb.w[i])
        if load[a] <= nb.limits[a, 0]:
            return False
        b = holder
        wj = nb.w
        ok = (b != a) & allowed[of_class[i], b] & allowed[of_class, a]
        delta = (
            nb.event(i, b)
            - nb.event(i, np.int64(a))
            + _events_at(nb, a)
            - _events_at(nb, b)
            + nb.load_cost(np.int64(a), load[a] - w + wj)
            - nb.load_cost(a, load[a])
            + nb.load_cost(b, load[b] - wj + w)
            - nb.load_cost(b, load[b])
        )
        delta[~ok] = 0
        j = int(delta.argmin())
        if delta[j] >= 0:
            return False
        bj = int(holder[j])
        holder[i], holder[j] = bj, a
        load[a] += int(wj[j]) - w
        load[bj] += w - int(wj[j])
        loads_changed(a, bj)
        return True

    def go_home(i: int) -> bool:
        a, h, w = int(holder[i]), int(nb.home[i]), int(nb.w[i])
        delta = (
            -int(nb.event(i, np.int64(a)))
            + int(cost_of_adding(w)[h])
            + int(nb.load_cost(np.int64(a), np.int64(load[a] - w)) - nb.load_cost(np.int64(a), load[a]))
        )
        return delta < 0 and give(i, a, h, w)

    for _ in range(max_rounds):
        changed = False
        for i in np.flatnonzero((load > nb.limits[:, 0])[holder]).tolist():
            changed |= relocate(i)
        # Cases away from home: going home is the move worth pricing (priced for all at once, then each again
        # as it is taken, loads having changed).
        moved = np.flatnonzero((holder != nb.home) & (nb.home >= 0))
        h, a, w = nb.home[moved], holder[moved], nb.w[moved]
        worth = (
            nb.load_cost(h, load[h] + w)
            - nb.load_cost(h, load[h])
            + nb.load_cost(a, load[a] - w)
            - nb.load_cost(a, load[a])
            - _events_at(nb, holder)[moved]
        ) < 0
        for i in moved[worth].tolist():
            changed |= go_home(i)
        for i in np.flatnonzero((load > nb.limits[:, 0])[holder]).tolist():
            changed |= exchange(i)
        if not changed:
            break
    return holder


def _events_at(nb: Neighbourhood, o) -> np.ndarray:
    """Each case's event cost were it held by `o` (one officer for all, or one per case)."""
    o = np.broadcast_to(np.asarray(o, dtype=np.int64), nb.home.shape)
    return (o != nb.home) * (nb.move_cost + nb.team_change * (nb.team[o] != nb.t))
