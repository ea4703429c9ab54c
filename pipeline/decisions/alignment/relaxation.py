"""The LP relaxation of a side solved as a min-cost flow in workload units, and its repair into a whole plan:
the first plan and the first bound."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

from pipeline.decisions.alignment.pricing import load_cost, load_rates
from pipeline.decisions.alignment.sides import Side
from pipeline.policy import Policy


@dataclass(frozen=True)
class Flows:
    """A side's plan as flows: cases each kept group keeps; cases each pool gives each officer (arcs in
    (class, team, officer) order); cases each pool (in (class, team) order) exports to its class's trust pool
    and, where it may import, imports from it."""

    keep: np.ndarray
    team_k: np.ndarray
    team_t: np.ndarray
    team_om: np.ndarray  # roster row
    team: np.ndarray
    pool_k: np.ndarray
    pool_t: np.ndarray
    importing: np.ndarray
    export: np.ndarray
    imports: np.ndarray  # 0 where the pool may not import

    def loads(self, side: Side) -> np.ndarray:
        """Each of the side's officers' load in units under these flows (fractional for a relaxation's)."""
        wu = side.roster.weight_units
        load = side.fixed.astype(np.float64)
        np.add.at(load, side.local(side.g_om), self.keep * wu[side.g_k])
        np.add.at(load, side.local(self.team_om), self.team * wu[self.team_k])
        return load

    def whole(self) -> Flows:
        return replace(
            self,
            keep=self.keep.astype(np.int64),
            team=self.team.astype(np.int64),
            export=self.export.astype(np.int64),
            imports=self.imports.astype(np.int64),
        )


# Node keys of the flow networks: a kind, then two numbers (each below 2**24).
_SINK, _GROUP, _OM, POOL_NODE, _TRUST, _OM_CLASS = range(6)


LOW_BITS = (1 << 24) - 1


def node_key(kind: int, a, b=0) -> np.ndarray:
    return (np.int64(kind) << 48) | (np.asarray(a, dtype=np.int64) << 24) | np.asarray(b, dtype=np.int64)


def _pairs(*columns: np.ndarray) -> np.ndarray:
    """The columns interleaved, row by row: (a0, b0, a1, b1, ...)."""
    return np.column_stack(columns).ravel()


class _Nodes:
    """A network's nodes numbered in the order their keys first appear in `keys` (each arc's tail, then its
    head, arcs in order), as a build adding one arc at a time would number them."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        self.numbers = np.empty(len(first), dtype=np.int64)
        self.numbers[np.argsort(first, kind="stable")] = np.arange(len(first))
        self.sequence = self.numbers[inverse]

    def of(self, keys: np.ndarray) -> np.ndarray:
        return self.numbers[np.searchsorted(self.keys, keys)]


def _min_cost_flow(
    arcs: list[tuple], supply_nodes: np.ndarray, supplies: np.ndarray, sink: int, what: str
) -> tuple[np.ndarray, int]:
    """Every supply drained into `sink` at least cost over `arcs` (chunks of tails, heads, capacities, costs,
    in order): the flow on each arc, and the cost."""
    tails, heads, caps, costs = (
        np.concatenate([np.broadcast_to(np.asarray(chunk[i], dtype=np.int64), len(chunk[0])) for chunk in arcs])
        for i in range(4)
    )
    flow = SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), caps, costs)
    flow.set_nodes_supplies(
        np.append(supply_nodes, sink).astype(np.int32), np.append(supplies, -supplies.sum()).astype(np.int64)
    )
    status = flow.solve()
    if status != SimpleMinCostFlow.OPTIMAL:
        raise RuntimeError(f"case alignment {what} failed (status {status})")
    return flow.flows(np.arange(len(tails), dtype=np.int32)), flow.optimal_cost()


def _load_bands(
    officer_nodes: np.ndarray, fixed: np.ndarray, thresholds: np.ndarray, costs: np.ndarray, big: int, sink: int
) -> tuple[np.ndarray, ...]:
    """Arcs draining each officer's node into the sink through one arc per load band, in order, each priced at
    the marginal cost of load there: the sum of `costs` of the thresholds already passed (convex, so the flow
    fills the cheap bands first). `fixed` load is there already; thresholds at or below it are passed."""
    order = np.argsort(thresholds, axis=1, kind="stable")
    th = np.take_along_axis(thresholds, order, axis=1)
    passed = np.cumsum(costs[order], axis=1)
    below = np.concatenate([fixed[:, None], np.maximum(fixed[:, None], th[:, :-1])], axis=1)
    caps = np.concatenate([th - below, np.full((len(th), 1), big)], axis=1)
    prices = np.concatenate([np.zeros((len(th), 1), np.int64), passed], axis=1)
    # A band exists above the fixed load and above the band before it (equal thresholds make one band).
    real = np.concatenate([caps[:, :-1] > 0, np.ones((len(th), 1), bool)], axis=1)
    tails = np.repeat(officer_nodes, real.sum(axis=1))
    return tails, np.full(len(tails), sink, dtype=np.int64), caps[real], prices[real]


def class_penalties(side: Side, classes: np.ndarray, policy: Policy) -> np.ndarray:
    """The cost of each case of a class given to one of its holders, per class: nothing, unless nobody on the
    side is eligible for it."""
    penalty = np.zeros(len(side.roster.class_names), dtype=np.int64)
    for k in classes.tolist():
        if not (side.classes >> k & 1).any():
            penalty[k] = policy.alignment.cost_ineligible * policy.units_per_point
    return penalty


def holders_of(side: Side, classes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Who may be given each class: the eligible officers, or all of the side when none is eligible, as
    (class, team, officer's place) in that order."""
    ks, places = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for k in classes.tolist():
        place = np.flatnonzero(side.classes >> k & 1)
        if not len(place):
            place = np.arange(len(side.officers))
        ks.append(np.full(len(place), k, dtype=np.int64))
        places.append(place)
    k, place = np.concatenate(ks), np.concatenate(places)
    team = side.team[place]
    order = np.lexsort((place, team, k))
    return k[order], team[order], place[order]


def lp_relaxation(side: Side, policy: Policy) -> tuple[Flows, bool, float]:
    """The side's LP relaxation (`_solve_model` with whole cases relaxed), solved exactly as a min-cost flow.

    Within a class every case weighs the same, so counting class k's flow in workload units (cases x its
    weight) keeps every pool balanced and turns each officer's load into plain flow: the officer drains to
    the sink through one arc per load band (overflow, spreading), priced at the band's marginal cost. A
    per-case cost becomes a per-unit cost once every cost is scaled by the lcm of the weights. Returns the
    LP's flows in cases (fractional where a class's units do not divide), whether they are all whole, and
    the LP's objective.
    """
    al, U, wu = policy.alignment, policy.units_per_point, side.roster.weight_units
    classes = side.class_codes()
    lcm = math.lcm(*wu[classes].tolist())
    per_unit = lcm // wu
    hk, ht, hplace = holders_of(side, classes)
    penalty = class_penalties(side, classes, policy)
    units = np.diff(side.g_start) * wu[side.g_k]
    f_units = np.diff(side.f_start) * wu[side.f_k]
    big = int(units.sum() + f_units.sum())
    group = node_key(_GROUP, np.arange(len(units)))
    g_pool, f_pool, h_pool = (
        node_key(POOL_NODE, side.g_k, side.g_t),
        node_key(POOL_NODE, side.f_k, side.f_t),
        node_key(POOL_NODE, hk, ht),
    )
    # Each pool, in (class, team) order: an arc to each holder in its team, an export to its class's trust
    # pool, and an import from it where the team has holders.
    pools = np.unique(np.concatenate([g_pool, f_pool, h_pool]))
    n_team = np.searchsorted(h_pool, pools, "right") - np.searchsorted(h_pool, pools, "left")
    importing = n_team > 0
    per_pool = n_team + 1 + importing
    of = np.repeat(np.arange(len(pools)), per_pool)
    at = np.arange(len(of)) - np.repeat(np.cumsum(per_pool) - per_pool, per_pool)
    is_team, is_export = at < n_team[of], at == n_team[of]
    is_import = ~is_team & ~is_export
    pool_k, pool_t = pools >> 24 & LOW_BITS, pools & LOW_BITS
    k = pool_k[of]
    trust = node_key(_TRUST, k)
    tails = np.where(is_import, trust, pools[of])
    heads = np.where(is_import, pools[of], trust)
    heads[is_team] = node_key(_OM, side.officers[hplace])
    costs = np.where(is_team, penalty[k] * per_unit[k], np.where(is_export, al.cost_team_change * U * per_unit[k], 0))
    nodes = _Nodes(
        np.concatenate(
            [node_key(_SINK, [0]), _pairs(group, node_key(_OM, side.g_om), group, g_pool), f_pool, _pairs(tails, heads)]
        )
    )
    ids = nodes.sequence
    kept = ids[1 : 1 + 4 * len(units)].reshape(-1, 2)
    f_ids = ids[1 + 4 * len(units) : 1 + 4 * len(units) + len(f_pool)]
    pool_arcs = ids[1 + 4 * len(units) + len(f_pool) :].reshape(-1, 2)
    loaded = np.zeros(len(side.officers), dtype=bool)
    loaded[side.local(side.g_om)] = True
    loaded[hplace] = True
    fixed, limits = side.fixed[loaded], side.limits[loaded]
    keep_cost = (penalty - al.cost_move * U) * per_unit
    amounts, cost = _min_cost_flow(
        [
            (kept[:, 0], kept[:, 1], np.repeat(units, 2), _pairs(keep_cost[side.g_k], np.zeros(len(units), np.int64))),
            (pool_arcs[:, 0], pool_arcs[:, 1], big, costs),
            _load_bands(
                nodes.of(node_key(_OM, side.officers[loaded])), fixed, limits, load_rates(policy) * lcm, big, 0
            ),
        ],
        np.concatenate([kept[0::2, 0], f_ids]),
        np.concatenate([units, f_units]),
        0,
        "relaxation",
    )
    keep_u, pool_u = amounts[0 : 2 * len(units) : 2], amounts[2 * len(units) : 2 * len(units) + len(of)]
    w_keep, w_pool = wu[side.g_k], wu[k]
    whole = not (keep_u % w_keep).any() and not (pool_u % w_pool).any()
    in_cases = pool_u / w_pool
    imports = np.zeros(len(pools))
    imports[importing] = in_cases[is_import]
    flows = Flows(
        keep_u / w_keep,
        hk,
        ht,
        side.officers[hplace],
        in_cases[is_team],
        pool_k,
        pool_t,
        importing,
        in_cases[is_export],
        imports,
    )
    return flows, whole, cost / lcm + load_cost(fixed, limits, policy)


def flow_repair(side: Side, policy: Policy, lp: Flows) -> Flows:
    """Integral plan from the LP relaxation: min-cost flow in whole cases, one commodity per weight class.

    The LP is the outer step that splits each officer's point capacity between classes: an officer's arc for
    class k admits the LP's whole cases of k at no cost; each case past that pays the overflow its weight
    would cause, priced as if the officer were full. Moves, team changes and ineligible holders keep
    their policy costs, so the flow minimises moves exactly for that capacity split.
    """
    al, U, wu = policy.alignment, policy.units_per_point, side.roster.weight_units
    sizes, f_sizes = np.diff(side.g_start), np.diff(side.f_start)
    big = int(sizes.sum() + f_sizes.sum())
    penalty = class_penalties(side, side.class_codes(), policy)
    group = node_key(_GROUP, np.arange(len(sizes)))
    g_om = node_key(_OM_CLASS, side.g_om, side.g_k)
    f_pool = node_key(POOL_NODE, side.f_k, side.f_t)
    t_om = node_key(_OM_CLASS, lp.team_om, lp.team_k)
    p_pool, p_trust = node_key(POOL_NODE, lp.pool_k, lp.pool_t), node_key(_TRUST, lp.pool_k)
    officers = np.unique(np.concatenate([g_om, t_om]))  # (officer, class) nodes, in that order
    room = _class_rooms(side, lp, g_om, t_om, officers)
    nodes = _Nodes(
        np.concatenate(
            [
                node_key(_SINK, [0]),
                _pairs(group, g_om, group, node_key(POOL_NODE, side.g_k, side.g_t)),
                f_pool,
                _pairs(node_key(POOL_NODE, lp.team_k, lp.team_t), t_om),
                _pairs(p_pool, p_trust),
                _pairs(p_trust[lp.importing], p_pool[lp.importing]),
            ]
        )
    )
    ids = nodes.sequence
    kept = ids[1 : 1 + 4 * len(sizes)].reshape(-1, 2)
    rest = ids[1 + 4 * len(sizes) :]
    f_ids, rest = rest[: len(f_pool)], rest[len(f_pool) :]
    team = rest[: 2 * len(t_om)].reshape(-1, 2)
    export = rest[2 * len(t_om) : 2 * (len(t_om) + len(p_pool))].reshape(-1, 2)
    imports = rest[2 * (len(t_om) + len(p_pool)) :].reshape(-1, 2)
    # Each (officer, class) node drains through its room at no cost, then past it at the overflow's cost.
    has_room = room > 0
    per_node = 1 + has_room
    of = np.repeat(np.arange(len(officers)), per_node)
    is_room = has_room[of] & (np.arange(len(of)) == np.repeat(np.cumsum(per_node) - per_node, per_node))
    drain_cost = al.cost_overflow_per_point * wu[officers & LOW_BITS]
    amounts, _ = _min_cost_flow(
        [
            (kept[:, 0], kept[:, 1], np.repeat(sizes, 2), np.tile([0, al.cost_move * U], len(sizes))),
            (team[:, 0], team[:, 1], big, penalty[lp.team_k]),
            (export[:, 0], export[:, 1], big, al.cost_team_change * U),
            (imports[:, 0], imports[:, 1], big, 0),
            (
                nodes.of(officers)[of],
                np.zeros(len(of), np.int64),
                np.where(is_room, room[of], big),
                np.where(is_room, 0, drain_cost[of]),
            ),
        ],
        np.concatenate([kept[0::2, 0], f_ids]),
        np.concatenate([sizes, f_sizes]),
        0,
        "flow repair",
    )
    n = 2 * len(sizes)
    t_end = n + len(t_om)
    e_end = t_end + len(p_pool)
    got_imports = np.zeros(len(p_pool), dtype=np.int64)
    got_imports[lp.importing] = amounts[e_end : e_end + int(lp.importing.sum())]
    return replace(lp, keep=amounts[0:n:2], team=amounts[n:t_end], export=amounts[t_end:e_end], imports=got_imports)


def _class_rooms(side: Side, lp: Flows, g_om: np.ndarray, t_om: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Split each officer's capacity between classes in whole cases, following the LP: the room of each
    (officer, class) of `keys`.

    Each class gets the LP's whole cases; the officer's remaining units then round up the classes with the
    largest fractional parts, one case each, while it fits. No unit of capacity is counted twice.
    """
    wu = side.roster.weight_units
    # Cases of each class each officer ends with, kept or received (summed in the order the LP lists them).
    share = np.bincount(
        np.searchsorted(keys, np.concatenate([g_om, t_om])),
        weights=np.concatenate([lp.keep, lp.team]).astype(np.float64),
        minlength=len(keys),
    )
    room = np.floor(share + 1e-6).astype(np.int64)
    fraction = share - room
    rounded = np.flatnonzero(fraction > 1e-6)
    if not len(rounded):
        return room
    row, k = keys >> 24 & LOW_BITS, keys & LOW_BITS
    place = side.local(row)
    used = np.bincount(place, weights=room * wu[k], minlength=len(side.officers)).astype(np.int64)
    left = (side.limits[:, 0] - side.fixed - used).tolist()
    for i in rounded[np.lexsort((k[rounded], -fraction[rounded], row[rounded]))].tolist():
        o, w = int(place[i]), int(wu[k[i]])
        if left[o] >= w:
            room[i] += 1
            left[o] -= w
    return room
