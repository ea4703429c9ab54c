"""Case alignment: every case ends with exactly one offender manager, with as few moves as the rules allow.

The problem is set per trust and side as an integer program over *groups* of identical cases rather than
single cases (small sides: solved exactly by a MIP; large ones: the LP relaxation as a min-cost flow, then a
whole-case flow; docs/decisions.md, "Solving"). A group is every movable case with the same current OM, class and team; it
either stays (`keep`) or sends cases into its team's pool for that class. A team pool hands cases to OMs of
the team or, at a team-change cost, to the trust pool, which hands them to any eligible OM. The model so
grows with cases + OMs, never cases x OMs. Costs, highest first (docs/decisions.md): overflow over
capacity, a move, a team change, then convex load-spreading bands. Capacity is in integer workload units
(points x policy.units_per_point), so indivisible cases of unequal weight are modelled exactly.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

from pipeline.decisions.lp import INF, SparseModel
from pipeline.domain import (
    ALLOCATED, KEPT, LP_FLOW, LP_INTEGRAL, MIP, MOVE_REASONS, NO_STAFF, OTHER_SIDE, MOVED_CAPACITY, MOVED_GRADE,
    MOVED_LEFT, MOVED_SIDE, RETAINED, RETENTION_HONOURED, RETENTION_NOT_NEEDED, RETENTION_OM_LEFT,
    RETENTION_REJECTED_MOVED, SIDES)
from pipeline.policy import Policy
from pipeline.text import equals, isin, positions, sorted_by

HOLDING_STATUSES = ("ACCEPTED", "PENDING")


class Officer(NamedTuple):
    """An offender manager as the alignment sees them (a tuple: a national run makes 180,000 of them)."""
    code: str
    side: str
    team: str
    grade: str
    role: str
    cap_units: int
    band_units: tuple[int, ...]
    classes: frozenset[str]


@dataclass
class SideProblem:
    """One side's movable work: kept groups (current OM allowed) and forced cases per (class, team)."""
    officers: list[Officer]
    fixed_units: dict[str, int]
    kept: dict[tuple[str, str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    forced: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))


@dataclass(frozen=True)
class SolveReport:
    """How a side was solved: MIP (exact), LP_INTEGRAL (exact: the relaxation was whole), LP_FLOW (LP-guided
    min-cost flow), OTHER_SIDE (nobody on the side: the other side's officers hold its cases) or NO_STAFF
    (nobody in the trust). `objective` is the plan's cost; `bound` the relaxation's, a lower bound on any
    plan that keeps moves inside each of the `parts` the side was cut into (NaN for OTHER_SIDE)."""
    side: str
    method: str
    objective: float | None
    bound: float
    parts: int = 1


@dataclass(frozen=True)
class Roster:
    """The officers as arrays in code order, with a last sentinel row standing for 'no officer'."""
    codes: pd.Index
    side: np.ndarray
    team: np.ndarray
    classes: np.ndarray  # bit i set: may hold class i of `class_names`
    class_names: pd.Index
    limits: np.ndarray  # per officer: capacity, then each spread band's threshold (units)

    @classmethod
    def of(cls, officers: dict[str, Officer], policy: Policy) -> Roster:
        class_names = list(policy.case_classes.weights)
        ordered = sorted(officers.values(), key=lambda o: o.code)
        bits = {}
        for o in ordered:
            if o.classes not in bits:
                bits[o.classes] = sum(1 << i for i, k in enumerate(class_names) if k in o.classes)
        return cls(
            codes=pd.Index([o.code for o in ordered], dtype=object),
            side=np.array([o.side for o in ordered] + [None], dtype=object),
            team=np.array([o.team for o in ordered] + [None], dtype=object),
            classes=np.array([bits[o.classes] for o in ordered] + [0], dtype=np.int64),
            class_names=pd.Index(class_names, dtype=object),
            limits=_limits(ordered, policy))

    @property
    def none(self) -> int:
        return len(self.codes)

    def find(self, codes: pd.Series | np.ndarray) -> np.ndarray:
        """Row of each officer code; the sentinel row for a missing or unknown code."""
        rows = positions(codes if isinstance(codes, pd.Series) else pd.Series(codes, dtype=object),
                         pd.Series(self.codes))
        return np.where(rows < 0, self.none, rows)

    def same_side(self, row: np.ndarray, on_side: dict[str, np.ndarray]) -> np.ndarray:
        """Whether the officer at each row is on the side `on_side` marks for that case."""
        out = np.zeros(len(row), dtype=bool)
        for s, mine in on_side.items():
            out |= mine & (self.side == s)[row]
        return out

    def side_classes(self, side: str) -> int:
        return int(np.bitwise_or.reduce(self.classes[:-1][self.side[:-1] == side], initial=0))


@dataclass(frozen=True)
class CaseArrays:
    """One trust's cases (crn order) as the arrays the alignment reads, each made once."""
    current: np.ndarray  # the OM the case has now (None: nobody)
    row: np.ndarray  # that OM's roster row (the sentinel when missing or unknown)
    side: np.ndarray
    on_side: dict[str, np.ndarray]
    klass: np.ndarray
    k_code: np.ndarray  # position in Roster.class_names
    team: np.ndarray
    t_code: np.ndarray  # position among the trust's team codes, sorted
    wunits: np.ndarray

    @classmethod
    def of(cls, cases: pd.DataFrame, current: pd.Series, roster: Roster) -> CaseArrays:
        on_side = {s: equals(cases["side"], s) for s in SIDES}
        side = np.select(list(on_side.values()), range(len(SIDES)), len(SIDES))
        k_code = positions(cases["case_class"], pd.Series(roster.class_names))
        return cls(
            current=current.to_numpy(dtype=object, na_value=None), row=roster.find(current),
            side=np.array([*SIDES, None], dtype=object)[side], on_side=on_side,
            klass=np.append(roster.class_names.to_numpy(dtype=object), None)[k_code],
            k_code=k_code, team=cases["team_code"].to_numpy(dtype=object),
            t_code=pd.factorize(cases["team_code"], sort=True)[0], wunits=cases["weight_units"].to_numpy())

    @cached_property
    def bits(self) -> np.ndarray:
        """The case's class as its bit in Roster.classes."""
        return np.left_shift(np.int64(1), self.k_code)


def effective_current_om(cases: pd.DataFrame, previous_plan: pd.DataFrame | None) -> pd.Series:
    """The extract's OM, or the previous run's planned OM while the extract has not caught up with it."""
    current = cases["om_staff_code"]
    if previous_plan is None or previous_plan.empty:
        return current
    prev = previous_plan.drop_duplicates("crn").set_index("crn")
    planned = cases["crn"].map(prev["om"])
    prev_current = cases["crn"].map(prev["current_om"])
    caught_up = (current == prev_current) | (current.isna() & prev_current.isna())
    use_plan = planned.notna() & caught_up.fillna(False)
    return current.where(~use_plan, planned)


def _officers(staff: pd.DataFrame, policy: Policy, as_of: pd.Timestamp) -> dict[str, Officer]:
    cc, al = policy.case_classes, policy.alignment
    units_per_fte = cc.capacity_points_per_fte * policy.units_per_point
    active = (staff["leaving_date"].isna() | (staff["leaving_date"] > as_of)).to_numpy()
    cols = {c: staff[c].to_numpy(dtype=object)[active] for c in ("staff_code", "side", "team_code", "grade", "role")}
    full = staff["fte"].to_numpy(dtype=np.float64)[active] * units_per_fte
    limits = np.floor(np.column_stack([full * pct / 100 + 1e-9 for pct in
                                       (al.capacity_limit_pct, *(b.from_pct for b in al.spread_bands))])
                      .reshape(len(full), 1 + len(al.spread_bands))).astype(np.int64)
    classes_of: dict[tuple[str, str], frozenset[str]] = {}
    for pair in set(zip(cols["grade"], cols["role"])):
        classes_of[pair] = frozenset(k for k in cc.weights if cc.eligible(k, *pair))
    classes = [classes_of[pair] for pair in zip(cols["grade"], cols["role"])]
    officers = map(Officer, *cols.values(), limits[:, 0].tolist(), map(tuple, limits[:, 1:].tolist()), classes)
    return dict(zip(cols["staff_code"], officers))


def _solve_model(side: str, prob: SideProblem, classes: list[str], policy: Policy,
                 weight_units: dict[str, int], solver_name: str, integer: bool = True) -> tuple[dict, float]:
    """Build and solve one side's mixed-integer model; return the integer flows keyed by arc.

    Nodes: a group keeps some cases and sends the rest to its (class, team) pool; a pool feeds officers of
    its team eligible for the class, or exports to the class's trust pool (one team change per case), which
    imports into other teams' pools. Only when nobody on the side may hold a class does its trust pool feed
    every officer of the side, at the ineligible cost.
    """
    al = policy.alignment
    U = policy.units_per_point
    model = SparseModel()
    officers = sorted(prob.officers, key=lambda o: o.code)
    by_team: dict[str, list[Officer]] = defaultdict(list)
    for o in officers:
        by_team[o.team].append(o)
    total = sum(len(v) for v in prob.kept.values()) + sum(len(v) for v in prob.forced.values())

    keep = {}
    pool_terms: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    pool_const: dict[tuple[str, str], int] = defaultdict(int)
    penalty = {k: _penalty(officers, k, policy) for k in classes}
    kept_by_om: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for g, crns in sorted(prob.kept.items()):
        v = model.var(0, len(crns), penalty[g[1]] - al.cost_move * U, integer)
        keep[g] = v
        kept_by_om[g[0]].append((g[1], v))
        pool_const[(g[1], g[2])] += len(crns)
    for key, idx in prob.forced.items():
        pool_const[key] += len(idx)

    holders = _holders(officers, classes)
    holder_codes = {k: {o.code for o in holders[k]} for k in classes}
    teams_of_class = {k: sorted({o.team for o in holders[k]}) for k in classes}
    pools = sorted(set(pool_const) | {(k, t) for k in classes for t in teams_of_class[k]})
    inflow: dict[str, list[tuple[str, int]]] = defaultdict(list)
    team_arc, export_arc, import_arc = {}, {}, {}
    for k, t in pools:
        out = pool_terms[(k, t)]
        for o in by_team.get(t, []):
            if o.code in holder_codes[k]:
                v = model.var(0, total, penalty[k], integer)
                team_arc[(k, t, o.code)] = v
                inflow[o.code].append((k, v))
                out.append((v, 1))
        x = model.var(0, total, al.cost_team_change * U, integer)
        export_arc[(k, t)] = x
        out.append((x, 1))
        if t in teams_of_class[k]:
            m = model.var(0, total, 0, integer)
            import_arc[(k, t)] = m
            out.append((m, -1))
    for g, v in keep.items():
        pool_terms[(g[1], g[2])].append((v, 1))
    for key in pools:
        # outflow - imports + keeps = cases arriving from groups and forced cases
        model.row(pool_const[key], pool_const[key], pool_terms[key])
    for k in classes:
        model.row(0, 0, [(x, 1) for (kk, _), x in export_arc.items() if kk == k]
                  + [(m, -1) for (kk, _), m in import_arc.items() if kk == k])

    for o in officers:
        terms = kept_by_om.get(o.code, []) + inflow.get(o.code, [])
        if not terms:
            continue
        fixed = prob.fixed_units.get(o.code, 0)
        load = [(v, -weight_units[k]) for k, v in terms]
        for cost, threshold in [(al.cost_overflow_per_point, o.cap_units)] + [
                (b.cost, th) for b, th in zip(al.spread_bands, o.band_units)]:
            # excess >= load - threshold, excess >= 0, priced per unit of load above the threshold
            e = model.var(0, INF, cost)
            model.row(fixed - threshold, INF, [(e, 1), *load])
    # Exact: no relative or absolute gap; quiet.
    params = "output_flag=false\nmip_rel_gap=0\nmip_abs_gap=0" if solver_name == "HIGHS" else ""
    solved = model.solve(solver_name, params)
    if solved is None:
        raise RuntimeError(f"case alignment found no solution for side {side}")
    values, objective = solved

    def val(v: int) -> float:
        x = float(values[v])
        return int(round(x)) if abs(x - round(x)) < 1e-6 else x

    flows = {
        "keep": {g: val(v) for g, v in keep.items()},
        "team": {a: val(v) for a, v in team_arc.items()},
        "export": {a: val(v) for a, v in export_arc.items()},
        "import": {a: val(v) for a, v in import_arc.items()},
    }
    return flows, objective


def _holders(officers: list[Officer], classes: list[str]) -> dict[str, list[Officer]]:
    """Who may be given each class: the eligible officers, or all of the side when none is eligible."""
    return {k: [o for o in officers if k in o.classes] or list(officers) for k in classes}


def _penalty(officers: list[Officer], k: str, policy: Policy) -> int:
    """Cost of each case of class k given to one of its holders: nothing, unless none is eligible."""
    eligible = any(k in o.classes for o in officers)
    return 0 if eligible else policy.alignment.cost_ineligible * policy.units_per_point


def _is_integral(flows: dict) -> bool:
    return all(isinstance(x, int) for arcs in flows.values() for x in arcs.values())


def _class_inflow(flows: dict) -> dict[tuple[str, str], float]:
    """Cases of each class each officer ends with, kept or received, in a (possibly fractional) solution."""
    got: dict[tuple[str, str], float] = defaultdict(float)
    for (om, k, _t), x in flows["keep"].items():
        got[(om, k)] += x
    for (k, _t, om), x in flows["team"].items():
        got[(om, k)] += x
    return got


class _Network:
    """A min-cost flow network: nodes by key, arcs collected as arrays and handed to OR-Tools in one call."""

    def __init__(self) -> None:
        self.nodes: dict[tuple, int] = {}
        none = np.zeros(0, dtype=np.int64)
        self._arcs: list[tuple[np.ndarray, ...]] = [(none, none, none, none)]  # tails, heads, caps, costs
        self.size = 0
        self.supply: dict[int, int] = defaultdict(int)

    def node(self, key: tuple) -> int:
        if key not in self.nodes:
            self.nodes[key] = len(self.nodes)
        return self.nodes[key]

    def ids(self, keys: list[tuple]) -> np.ndarray:
        """The nodes of `keys` in order, numbering new ones as they come (as `node`, one call per key, would)."""
        nodes = self.nodes
        fresh = [k for k in dict.fromkeys(keys) if k not in nodes]  # in order of first appearance
        nodes.update(zip(fresh, range(len(nodes), len(nodes) + len(fresh))))
        return np.fromiter(map(nodes.__getitem__, keys), dtype=np.int64, count=len(keys))

    def _add(self, tails: np.ndarray, heads: np.ndarray, caps, costs) -> np.ndarray:
        """Arcs after those already added; returns their indices."""
        n = len(tails)
        self._arcs.append((tails, heads, np.broadcast_to(np.asarray(caps, dtype=np.int64), n),
                           np.broadcast_to(np.asarray(costs, dtype=np.int64), n)))
        self.size += n
        return np.arange(self.size - n, self.size)

    def arcs(self, touched: list[tuple], caps, costs) -> np.ndarray:
        """Arcs between consecutive pairs of node keys in `touched` (tail, head, tail, head, ...), in order;
        returns their indices."""
        ends = self.ids(touched).reshape(-1, 2)
        return self._add(ends[:, 0], ends[:, 1], caps, costs)

    def tails(self, arcs: np.ndarray) -> np.ndarray:
        return np.concatenate([chunk[0] for chunk in self._arcs])[arcs]

    def load_bands(self, officer_nodes: list[int], fixed: np.ndarray, thresholds: np.ndarray, costs: np.ndarray,
                   big: int) -> None:
        """Drain each officer's node into the sink through one arc per load band, in order, each priced at the
        marginal cost of load there: the sum of `costs` of the thresholds already passed (convex, so the flow
        fills the cheap bands first). `fixed` load is there already; thresholds at or below it are passed."""
        order = np.argsort(thresholds, axis=1, kind="stable")
        th = np.take_along_axis(thresholds, order, axis=1)
        passed = np.cumsum(costs[order], axis=1)
        below = np.concatenate([fixed[:, None], np.maximum(fixed[:, None], th[:, :-1])], axis=1)
        caps = np.concatenate([th - below, np.full((len(th), 1), big)], axis=1)
        prices = np.concatenate([np.zeros((len(th), 1), np.int64), passed], axis=1)
        # A band exists above the fixed load and above the band before it (equal thresholds make one band).
        real = np.concatenate([caps[:, :-1] > 0, np.ones((len(th), 1), bool)], axis=1)
        tails = np.repeat(np.asarray(officer_nodes, dtype=np.int64), real.sum(axis=1))
        self._add(tails, np.full(len(tails), self.node(("sink",)), dtype=np.int64), caps[real], prices[real])

    def solve(self, sink: tuple, what: str) -> tuple[np.ndarray, int]:
        """Every supply drained into `sink` at least cost: the flow on each arc, and the cost."""
        flow = SimpleMinCostFlow()
        tails, heads, caps, costs = (np.concatenate([chunk[i] for chunk in self._arcs]) for i in range(4))
        flow.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), caps, costs)
        supply = {**self.supply, self.node(sink): -sum(self.supply.values())}
        flow.set_nodes_supplies(np.fromiter(supply, dtype=np.int32, count=len(supply)),
                                np.fromiter(supply.values(), dtype=np.int64, count=len(supply)))
        status = flow.solve()
        if status != SimpleMinCostFlow.OPTIMAL:
            raise RuntimeError(f"case alignment {what} failed (status {status})")
        return flow.flows(np.arange(self.size, dtype=np.int32)), flow.optimal_cost()


def _relaxation(prob: SideProblem, classes: list[str], policy: Policy,
                weight_units: dict[str, int]) -> tuple[dict, float]:
    """The side's LP relaxation (`_solve_model` with whole cases relaxed), solved exactly as a min-cost flow.

    Within a class every case weighs the same, so counting class k's flow in workload units (cases x its
    weight) keeps every pool balanced and turns each officer's load into plain flow: the officer drains to
    the sink through one arc per load band (overflow, spreading), priced at the band's marginal cost. A
    per-case cost becomes a per-unit cost once every cost is scaled by the lcm of the weights. Returns the
    LP's flows in cases (fractional where a class's units do not divide) and its objective.
    """
    al = policy.alignment
    U = policy.units_per_point
    lcm = math.lcm(*(weight_units[k] for k in classes))
    per_unit = {k: lcm // weight_units[k] for k in classes}
    officers = sorted(prob.officers, key=lambda o: o.code)
    holders = _holders(officers, classes)
    penalty = {k: _penalty(officers, k, policy) for k in classes}
    net = _Network()
    net.node(("sink",))
    kept = sorted(prob.kept.items())
    units = np.array([len(idx) * weight_units[k] for (_, k, _), idx in kept], dtype=np.int64)
    keep_cost = {k: (penalty[k] - al.cost_move * U) * per_unit[k] for k in classes}
    touched, costs = [], []
    for om, k, t in (key for key, _ in kept):
        group = ("group", om, k, t)
        touched += (group, ("om", om), group, ("pool", k, t))
        costs += (keep_cost[k], 0)
    kept_arcs = net.arcs(touched, np.repeat(units, 2), costs)[0::2]
    net.supply.update(zip(net.tails(kept_arcs).tolist(), units.tolist()))
    big = int(units.sum())
    for (k, t), idx in sorted(prob.forced.items()):
        net.supply[net.node(("pool", k, t))] += len(idx) * weight_units[k]
        big += len(idx) * weight_units[k]
    teams_of_class = {k: {o.team for o in holders[k]} for k in classes}
    pools = sorted({key[1:] for key in net.nodes if key[0] == "pool"}
                   | {(k, t) for k in classes for t in teams_of_class[k]})
    holders_in_team: dict[tuple[str, str], list[Officer]] = defaultdict(list)
    for k in classes:
        for o in holders[k]:
            holders_in_team[(k, o.team)].append(o)
    touched, costs, kinds, keys = [], [], [], {"team": [], "export": [], "import": []}

    def pool_arc(kind: str, key: tuple, tail: tuple, head: tuple, cost: int) -> None:
        touched.extend((tail, head))
        costs.append(cost)
        kinds.append(kind)
        keys[kind].append(key)

    for k, t in pools:
        pool = ("pool", k, t)
        for o in holders_in_team.get((k, t), []):
            pool_arc("team", (k, t, o.code), pool, ("om", o.code), penalty[k] * per_unit[k])
        pool_arc("export", (k, t), pool, ("trust", k), al.cost_team_change * U * per_unit[k])
        if t in teams_of_class[k]:
            pool_arc("import", (k, t), ("trust", k), pool, 0)
    pool_arcs = net.arcs(touched, big, costs)
    loaded = [o for o in officers if ("om", o.code) in net.nodes]
    fixed = np.array([prob.fixed_units.get(o.code, 0) for o in loaded], dtype=np.int64)
    limits = _limits(loaded, policy)
    net.load_bands([net.nodes[("om", o.code)] for o in loaded], fixed, limits, _rates(policy) * lcm, big)
    amounts, cost = net.solve(("sink",), "relaxation")
    out: dict = {"keep": _in_cases([key for key, _ in kept], amounts[kept_arcs],
                                   [weight_units[k] for (_, k, _), _ in kept])}
    kinds = np.asarray(kinds, dtype=object)
    for name, mine in keys.items():
        out[name] = _in_cases(mine, amounts[pool_arcs[kinds == name]], [weight_units[key[0]] for key in mine])
    return out, cost / lcm + _load_cost(fixed, limits, policy)


def _in_cases(keys: list[tuple], units: np.ndarray, weights: list[int]) -> dict:
    """Flows in workload units as cases: whole numbers where a class's units divide, else fractions."""
    return {key: u // w if u % w == 0 else u / w for key, u, w in zip(keys, units.tolist(), weights)}


def _flow_repair(prob: SideProblem, classes: list[str], policy: Policy, weight_units: dict[str, int],
                 lp: dict) -> dict:
    """Integral plan from the LP relaxation: min-cost flow in whole cases, one commodity per weight class.

    The LP is the outer step that splits each officer's point capacity between classes: an officer's arc for
    class k admits the LP's whole cases of k at no cost; each case past that pays the overflow its weight
    would cause, priced as if the officer were full. Moves, team changes and ineligible holders keep
    their policy costs, so the flow minimises moves exactly for that capacity split.
    """
    al = policy.alignment
    U = policy.units_per_point
    share = _class_inflow(lp)
    net = _Network()
    net.node(("sink",))
    kept = sorted(prob.kept.items())
    sizes = np.array([len(idx) for _, idx in kept], dtype=np.int64)
    big = int(sizes.sum()) + sum(len(v) for v in prob.forced.values())
    touched = []
    for om, k, t in (key for key, _ in kept):
        group = ("group", om, k, t)
        touched += (group, ("om", om, k), group, ("pool", k, t))
    kept_arcs = net.arcs(touched, np.repeat(sizes, 2), np.tile([0, al.cost_move * U], len(kept)))[0::2]
    net.supply.update(zip(net.tails(kept_arcs).tolist(), sizes.tolist()))
    for (k, t), idx in sorted(prob.forced.items()):
        net.supply[net.node(("pool", k, t))] += len(idx)
    penalty = {k: _penalty(prob.officers, k, policy) for k in classes}
    team, export, imports = sorted(lp["team"]), sorted(lp["export"]), sorted(lp["import"])
    team_arcs = net.arcs([n for k, t, om in team for n in (("pool", k, t), ("om", om, k))], big,
                         [penalty[k] for k, _, _ in team])
    export_arcs = net.arcs([n for k, t in export for n in (("pool", k, t), ("trust", k))], big,
                           al.cost_team_change * U)
    import_arcs = net.arcs([n for k, t in imports for n in (("trust", k), ("pool", k, t))], big, 0)
    room = _class_rooms(prob, share, weight_units)
    touched, caps, costs = [], [], []
    for om, k in sorted({key[1:] for key in net.nodes if key[0] == "om"}):
        if room.get((om, k)):
            touched += (("om", om, k), ("sink",))
            caps.append(room[(om, k)])
            costs.append(0)
        touched += (("om", om, k), ("sink",))
        caps.append(big)
        costs.append(al.cost_overflow_per_point * weight_units[k])
    net.arcs(touched, caps, costs)
    amounts, _ = net.solve(("sink",), "flow repair")
    return {name: dict(zip(keys, amounts[arcs].tolist())) for name, keys, arcs in (
        ("keep", [key for key, _ in kept], kept_arcs), ("team", team, team_arcs), ("export", export, export_arcs),
        ("import", imports, import_arcs))}


def _class_rooms(prob: SideProblem, share: dict[tuple[str, str], float],
                 weight_units: dict[str, int]) -> dict[tuple[str, str], int]:
    """Split each officer's capacity between classes in whole cases, following the LP.

    Each class gets the LP's whole cases; the officer's remaining units then round up the classes with the
    largest fractional parts, one case each, while it fits. No unit of capacity is counted twice.
    """
    officers = {o.code: o for o in prob.officers}
    shares = [(om, k, x) for (om, k), x in share.items() if om in officers]
    if not shares:
        return {}
    oms, ks, xs = zip(*shares)
    x = np.array(xs, dtype=np.float64)
    whole = np.floor(x + 1e-6).astype(np.int64)
    room = dict(zip(zip(oms, ks), whole.tolist()))
    fraction = x - whole
    rounded = np.flatnonzero(fraction > 1e-6)
    if not len(rounded):
        return room
    of, codes = pd.factorize(pd.Index(oms, dtype=object))
    used = np.bincount(of, weights=whole * np.array([weight_units[k] for k in ks]), minlength=len(codes))
    short = np.unique(of[rounded])  # the officers with a fraction to round
    left = {code: officers[code].cap_units - prob.fixed_units.get(code, 0) - int(u)
            for code, u in zip(codes[short].tolist(), used[short].tolist())}
    for i in sorted(rounded.tolist(), key=lambda i: (oms[i], -fraction[i], ks[i])):
        om, k = oms[i], ks[i]
        if left[om] >= weight_units[k]:
            room[(om, k)] += 1
            left[om] -= weight_units[k]
    return room


def plan_cost(loads: dict[str, int], officers: dict[str, Officer], moves: int, team_changes: int,
              ineligible: int, policy: Policy) -> int:
    """The alignment objective of a whole plan, in the units the solver minimises (cost x units_per_point).

    Independent of how the plan was found, so tests can price brute-force plans with it.
    """
    al = policy.alignment
    cost = _event_cost(moves, team_changes, ineligible, policy)
    for code, load in loads.items():
        o = officers[code]
        cost += al.cost_overflow_per_point * max(0, load - o.cap_units)
        cost += sum(b.cost * max(0, load - th) for b, th in zip(al.spread_bands, o.band_units))
    return cost


def _event_cost(moves: int, team_changes: int, ineligible: int, policy: Policy) -> int:
    al = policy.alignment
    return (al.cost_move * moves + al.cost_team_change * team_changes
            + al.cost_ineligible * ineligible) * policy.units_per_point


def _limits(officers: list[Officer], policy: Policy) -> np.ndarray:
    """Per officer, the loads (units) past which each load cost starts: capacity, then each spread band."""
    bands = len(policy.alignment.spread_bands)
    return np.column_stack([np.array([o.cap_units for o in officers], dtype=np.int64),
                            np.array([o.band_units for o in officers], dtype=np.int64).reshape(len(officers), bands)])


def _rates(policy: Policy) -> np.ndarray:
    """The cost of each unit of load past each of `_limits`: overflow, then each spread band."""
    al = policy.alignment
    return np.array([al.cost_overflow_per_point, *(b.cost for b in al.spread_bands)], dtype=np.int64)


def _load_cost(loads: np.ndarray, limits: np.ndarray, policy: Policy) -> int:
    """plan_cost's load part, by array, for officers with `limits` carrying `loads` units."""
    return int((np.maximum(0, loads[:, None] - limits) * _rates(policy)).sum())


def _groups(rows: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """`rows` grouped by integer `key`, groups in key order, rows ascending within each group: each group's
    first row, and the groups as arrays (views of one array)."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    grouped = rows[order]
    return grouped[starts], np.split(grouped, starts[1:]) if len(grouped) else []


def _classify(crns: pd.Series, c: CaseArrays, roster: Roster, held: pd.Series,
              problems: dict[str, SideProblem]) -> tuple[np.ndarray, ...]:
    """Sort every case into pinned (retention), kept groups (its OM may keep it) or forced (it must move).

    Fills `problems` and returns per-case arrays: om and reason (set for pinned cases), the reason a forced
    case moves, and whether it is pinned.
    """
    n, row = len(crns), c.row
    known = row < roster.none
    # An officer may keep a case of a class they may hold, or of one nobody on their side may hold; and any
    # officer may keep a case of a side with nobody on it (that side borrows the other side's officers).
    side_bits = np.zeros(n, dtype=np.int64)
    unstaffed = np.zeros(n, dtype=bool)
    for s in SIDES:
        side_bits[c.on_side[s]] = roster.side_classes(s)
        if not (roster.side == s).any():
            unstaffed |= c.on_side[s]
    may_hold = ((roster.classes[row] & c.bits) != 0) | ((side_bits & c.bits) == 0)
    same_side = roster.same_side(row, c.on_side)
    allowed = known & (same_side | unstaffed) & may_hold
    pin = known & isin(crns, held)
    om = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    om[pin] = c.current[pin]
    reason[pin] = np.where(allowed[pin], KEPT, RETAINED)
    fixed = np.bincount(row[pin], weights=c.wunits[pin], minlength=roster.none + 1)
    for s in SIDES:
        mine = np.flatnonzero((fixed[:-1] > 0) & (roster.side[:-1] == s))
        problems[s].fixed_units.update({roster.codes[j]: int(fixed[j]) for j in mine})
    why = np.select([pd.isna(c.current), ~known, ~same_side], [0, 1, 2], 3)
    why[pin | allowed] = 4
    forced_reason = np.array([ALLOCATED, MOVED_LEFT, MOVED_SIDE, MOVED_GRADE, None], dtype=object)[why]
    k_code = c.k_code
    nk, nt = len(roster.class_names), max(int(c.t_code.max(initial=-1)) + 1, 1)
    free = ~pin
    for s in SIDES:
        keep = np.flatnonzero(allowed & free & c.on_side[s])
        firsts, groups = _groups(keep, (row[keep] * nk + k_code[keep]) * nt + c.t_code[keep])
        problems[s].kept.update(zip(zip(c.current[firsts], c.klass[firsts], c.team[firsts]), groups))
        move = np.flatnonzero(~allowed & free & c.on_side[s])
        firsts, groups = _groups(move, k_code[move] * nt + c.t_code[move])
        problems[s].forced.update(zip(zip(c.klass[firsts], c.team[firsts]), groups))
    return om, reason, forced_reason, pin


def _parts(prob: SideProblem, limit: int) -> list[SideProblem]:
    """Cut a large side into parts of whole teams (team-code order), each with at most about `limit` cases.

    Kept cases go with their officer's team, forced cases with the case's team; an officer goes with their
    team, so each officer's whole load is in one part.
    """
    size = sum(len(v) for v in prob.kept.values()) + sum(len(v) for v in prob.forced.values())
    if size <= limit:
        return [prob]
    team_of = {o.code: o.team for o in prob.officers}
    per_team: dict[str, int] = defaultdict(int)
    for (om, _k, _t), idx in prob.kept.items():
        per_team[team_of[om]] += len(idx)
    for (_k, t), idx in prob.forced.items():
        per_team[t] += len(idx)
    for t in team_of.values():
        per_team.setdefault(t, 0)
    part_of: dict[str, int] = {}
    part, filled = 0, 0
    for t in sorted(per_team):
        if filled and filled + per_team[t] > limit:
            part, filled = part + 1, 0
        part_of[t] = part
        filled += per_team[t]
    parts = [SideProblem([], defaultdict(int)) for _ in range(part + 1)]
    for o in prob.officers:
        p = parts[part_of[o.team]]
        p.officers.append(o)
        if o.code in prob.fixed_units:
            p.fixed_units[o.code] = prob.fixed_units[o.code]
    for (om, k, t), idx in prob.kept.items():
        parts[part_of[team_of[om]]].kept[(om, k, t)] = idx
    for (k, t), idx in prob.forced.items():
        parts[part_of[t]].forced[(k, t)] = idx
    return [p for p in parts if p.kept or p.forced]


def _borrowed(prob: SideProblem, officers: dict[str, Officer], side: str, om: np.ndarray,
              wunits: np.ndarray) -> SideProblem:
    """A side with no officer: its cases go to the other side's officers, as loaded now, all at the
    ineligible cost (so who may hold which class no longer matters, only load, moves and teams); a case
    already held by one of them may stay."""
    others = [o._replace(classes=frozenset()) for o in officers.values() if o.side != side]
    load: dict[str, int] = defaultdict(int)
    for code, w in zip(om, wunits):
        if code is not None:
            load[code] += int(w)
    out = SideProblem(others, defaultdict(int, {o.code: load[o.code] for o in others if load.get(o.code)}))
    out.kept, out.forced = prob.kept, prob.forced
    return out


def _solve_side(side: str, prob: SideProblem, classes: list[str], policy: Policy,
                weight_units: dict[str, int]) -> tuple[dict, SolveReport]:
    """Exact MIP for small sides; otherwise LP relaxation, then min-cost flow repair when it is fractional."""
    al = policy.alignment
    size = sum(len(v) for v in prob.kept.values()) + sum(len(v) for v in prob.forced.values())
    if size <= al.exact_max_cases:
        flows, obj = _solve_model(side, prob, classes, policy, weight_units, al.solver)
        return flows, SolveReport(side, MIP, obj, obj)
    lp, bound = _relaxation(prob, classes, policy, weight_units)
    if _is_integral(lp):
        return lp, SolveReport(side, LP_INTEGRAL, bound, bound)
    return _flow_repair(prob, classes, policy, weight_units, lp), SolveReport(side, LP_FLOW, None, bound)


def align_cases(
    split_cases: pd.DataFrame,
    staff_split: pd.DataFrame,
    retention: pd.DataFrame,
    policy: Policy,
    as_of: pd.Timestamp,
    previous_plan: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[SolveReport]]:
    """Align one trust's cases to offender managers after the staff split.

    Returns one row per case, sorted by crn: crn, team_code, side, rule, case_class, weight_units,
    current_om, om, moved, reason, eligible_om; and one solver report per side.
    """
    cases = sorted_by(split_cases, "crn").reset_index(drop=True)
    officers = _officers(staff_split, policy, as_of)
    roster = Roster.of(officers, policy)
    weight_units = {k: policy.weight_units(k) for k in policy.case_classes.weights}
    current_om = effective_current_om(cases, previous_plan)
    c = CaseArrays.of(cases, current_om, roster)
    current, wunits = c.current, c.wunits
    held = retention.loc[retention["status"].isin(HOLDING_STATUSES), "crn"].drop_duplicates()
    problems = {s: SideProblem([o for o in officers.values() if o.side == s], defaultdict(int)) for s in SIDES}
    om, reason, forced_reason, pinned = _classify(cases["crn"], c, roster, held, problems)

    reports = []
    # Staffed sides first: a side with nobody on it borrows the other side's officers as they are then loaded.
    for side in sorted(SIDES, key=lambda s: not problems[s].officers):
        prob, method = problems[side], None
        if not prob.kept and not prob.forced:
            continue
        if not prob.officers:
            prob, method = _borrowed(prob, officers, side, om, wunits), OTHER_SIDE
        if not prob.officers:
            for idx in prob.forced.values():
                reason[idx] = forced_reason[idx]
            reports.append(SolveReport(side, NO_STAFF, None, 0.0))
            continue
        bound, methods, parts = 0.0, set(), _parts(prob, policy.alignment.max_cases_per_model)
        for part in parts:
            classes = sorted({k for (_, k, _) in part.kept} | {k for (k, _) in part.forced})
            flows, report = _solve_side(side, part, classes, policy, weight_units)
            _deal(part, flows, current, om, reason, forced_reason)
            if report.method == LP_FLOW:
                _relieve_overflow(part, c, om, reason, forced_reason)
            # The model prices kept cases negatively; shift its value onto the plan_cost scale.
            movable = sum(len(v) for v in part.kept.values())
            forced_moves = int(np.count_nonzero(forced_reason[_rows(part.forced.values())] != ALLOCATED))
            bound += report.bound + policy.alignment.cost_move * policy.units_per_point * (movable + forced_moves)
            methods.add(report.method)
        method = method or next(m for m in (LP_FLOW, LP_INTEGRAL, MIP) if m in methods)
        reports.append(SolveReport(side, method, None, math.nan if method == OTHER_SIDE else bound, len(parts)))

    # Text as pandas holds it (Arrow), made once: looked up and compared by Arrow, then the output's columns
    om_text, reason_text = pd.Series(om, dtype="str"), pd.Series(reason, dtype="str")
    row = roster.find(om_text)
    moved = isin(reason_text, list(MOVE_REASONS))
    plan = Plan(
        row=row, side=c.side, wunits=wunits, moved=moved,
        eligible=(row < roster.none) & roster.same_side(row, c.on_side) & ((roster.classes[row] & c.bits) != 0),
        team_change=(row < roster.none) & (moved | equals(reason_text, ALLOCATED)) & (roster.team[row] != c.team),
        free=~pinned)
    out = cases[["crn", "team_code", "side", "rule", "case_class", "weight_units"]].copy()
    out["current_om"] = current_om.astype("str")
    out["om"] = om_text
    out["reason"] = reason_text
    out["moved"] = moved
    out["eligible_om"] = plan.eligible
    out["team_change"] = plan.team_change
    borrowed = {r.side for r in reports if r.method == OTHER_SIDE}
    priced = [replace(r, objective=_side_cost(plan, roster, r.side, policy, borrowed)) for r in reports]
    return out, priced


@dataclass(frozen=True)
class Plan:
    """A finished alignment as per-case arrays: holder row in the roster, and what pricing needs."""
    row: np.ndarray
    side: np.ndarray
    wunits: np.ndarray
    moved: np.ndarray
    eligible: np.ndarray
    team_change: np.ndarray
    free: np.ndarray


def _side_cost(plan: Plan, roster: Roster, side: str, policy: Policy, borrowed: set[str]) -> int:
    """plan_cost of one side of a finished alignment, as that side's model saw it.

    Pinned cases load their officer but cost nothing. A staffed side is priced without the free cases a side
    with nobody on it later lent its officers (a pinned one loaded its officer before any lending); that
    borrowing side is priced on its lenders' whole loads.
    """
    lender = side in borrowed
    holder = np.append((roster.side[:-1] != side) == lender, False)
    counted = np.ones(len(plan.row), dtype=bool) if lender else ~(np.isin(plan.side, list(borrowed)) & plan.free)
    sel = counted & holder[plan.row]
    loaded = np.bincount(plan.row[sel], weights=plan.wunits[sel], minlength=roster.none + 1)
    mine = plan.free & (plan.side == side)
    held = plan.row < roster.none
    rows = np.flatnonzero(holder[:-1])
    return (_event_cost(int(plan.moved[mine].sum()), int(plan.team_change[mine].sum()),
                        int((held & ~plan.eligible)[mine].sum()), policy)
            + _load_cost(loaded[rows].astype(np.int64), roster.limits[rows], policy))


def _rows(groups: Iterable) -> np.ndarray:
    """The case rows of `groups` (arrays or lists of rows), one after another."""
    return np.concatenate([np.zeros(0, np.int64), *groups]).astype(np.int64, copy=False)


def _deal(prob: SideProblem, flows: dict, current: np.ndarray,
          om: np.ndarray, reason: np.ndarray, forced_reason: np.ndarray) -> None:
    """Turn integer flows into per-case assignments, deterministically (cases in crn order, OMs in code order).

    A kept group keeps its first cases; the rest join its pool with the forced cases, in case order. A pool
    exports its last cases to its class's trust pool (in case order), which hands them on to the importing
    pools in pool order; each pool then gives its own cases, then its imports, to its officers in code order.
    """
    groups = sorted(prob.kept)
    sizes = np.array([len(prob.kept[g]) for g in groups], dtype=np.int64)
    rows = _rows(prob.kept[g] for g in groups)
    kept = np.array([flows["keep"][g] for g in groups], dtype=np.int64)
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    stays = np.arange(len(rows)) - first < np.repeat(kept, sizes)
    om[rows[stays]] = np.repeat(np.array([g[0] for g in groups], dtype=object), kept)
    reason[rows[stays]] = KEPT
    forced_reason[rows[~stays]] = MOVED_CAPACITY

    keys = sorted({g[1:] for g in groups} | set(prob.forced) | set(flows["export"]) | set(flows["import"])
                  | {a[:2] for a in flows["team"]})
    pool = {key: i for i, key in enumerate(keys)}
    forced = sorted(prob.forced)
    forced_sizes = [len(prob.forced[key]) for key in forced]
    rows = np.concatenate([rows[~stays], _rows(prob.forced[key] for key in forced)])
    of = np.concatenate([np.repeat(np.array([pool[g[1:]] for g in groups], dtype=np.int64), sizes)[~stays],
                         np.repeat(np.array([pool[key] for key in forced], dtype=np.int64), forced_sizes)])
    order = np.lexsort((rows, of))
    rows, of = rows[order], of[order]
    size = np.bincount(of, minlength=len(keys))
    exports = np.array([flows["export"].get(key, 0) for key in keys], dtype=np.int64)
    leaves = np.arange(len(rows)) - (np.cumsum(size) - size)[of] >= (size - exports)[of]
    klass = pd.factorize(np.array([k for k, _ in keys], dtype=object))[0]  # pools are in class order
    trust_pool = np.lexsort((rows[leaves], klass[of[leaves]]))  # by class, then case
    imports = np.array([flows["import"].get(key, 0) for key in keys], dtype=np.int64)
    pooled = np.concatenate([rows[~leaves], rows[leaves][trust_pool]])
    of = np.concatenate([of[~leaves], np.repeat(np.arange(len(keys)), imports)])
    if len(of) != len(pooled):
        raise RuntimeError("case alignment: the imports do not match the exports")
    given = pooled[np.argsort(of, kind="stable")]  # each pool: its own cases, then its imports
    arcs = sorted(flows["team"].items())
    codes = np.repeat(np.array([code for (_, _, code), _ in arcs], dtype=object),
                      np.array([count for _, count in arcs], dtype=np.int64))
    if len(codes) != len(given):
        raise RuntimeError("case alignment: the pools do not give out every case")
    om[given] = codes
    # Given back to its own OM: no move.
    reason[given] = np.where(codes == current[given], KEPT, forced_reason[given])


def _relieve_overflow(prob: SideProblem, c: CaseArrays, om: np.ndarray, reason: np.ndarray,
                      forced_reason: np.ndarray) -> None:
    """Polish a rounded plan: move cases off officers over capacity to eligible colleagues with room.

    Rounding the LP's class split can leave an officer over capacity while a colleague has room the rounding
    gave to another class. Cases that move anyway go first (no extra move), then kept ones (one move saves
    at least a unit of overflow, which costs more); a receiver may go over by less than the giver
    comes down; receivers in the case's own team first, then in code
    order. Each step strictly lowers plan_cost; pinned cases are never in `prob` and never move.
    """
    officers = sorted(prob.officers, key=lambda o: o.code)
    codes = pd.Index([o.code for o in officers], dtype=object)
    cap = np.array([o.cap_units for o in officers], dtype=np.int64)
    cases = _rows((*prob.kept.values(), *prob.forced.values()))
    row = codes.get_indexer(pd.Index(om[cases], dtype=object))
    cases, row = cases[row >= 0], row[row >= 0]
    load = np.array([prob.fixed_units.get(code, 0) for code in codes], dtype=np.int64) + np.bincount(
        row, weights=c.wunits[cases], minlength=len(codes)).astype(np.int64)
    over = np.flatnonzero(load > cap)
    if not len(over):
        return
    order = np.argsort(row, kind="stable")
    starts, ends = (np.searchsorted(row[order], over, side=s) for s in ("left", "right"))
    held = {j: cases[order[a:b]].tolist() for j, a, b in zip(over.tolist(), starts, ends)}
    by_class: dict[str, list[int]] = defaultdict(list)
    by_team_class: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j, o in enumerate(officers):
        for k in o.classes:
            by_class[k].append(j)
            by_team_class[(o.team, k)].append(j)
    pools = {key: np.asarray(v, dtype=np.int64) for d in (by_class, by_team_class) for key, v in d.items()}
    room = np.maximum(cap - load, 0)

    def receiver(i: int, need: int) -> int | None:
        """The first eligible colleague with `need` units of room (so an officer over capacity, the giver
        among them, never takes a case)."""
        for key in ((c.team[i], c.klass[i]), c.klass[i]):
            pool = pools.get(key)
            if pool is not None:
                fits = room[pool] >= need
                first = int(fits.argmax())
                if fits[first]:
                    return int(pool[first])
        return None

    # Whole fits for every officer first; then colleagues who go over by less than the giver comes down.
    for partial in (False, True):
        for j in over.tolist():
            code = codes[j]
            for i in sorted(held[j], key=lambda i: (reason[i] == KEPT, i)):
                excess = int(load[j] - cap[j])
                if excess <= 0:
                    break
                if om[i] != code:
                    continue
                w = int(c.wunits[i])
                # A receiver's overflow may grow by `slack` units: it has room for all but that much of w.
                r = receiver(i, w - (min(w, excess) - 1 if partial else 0))
                if r is None:
                    continue
                if reason[i] == KEPT:
                    forced_reason[i] = MOVED_CAPACITY
                om[i] = codes[r]
                reason[i] = KEPT if codes[r] == c.current[i] else forced_reason[i]
                load[j] -= w
                load[r] += w
                room[[j, r]] = np.maximum(cap[[j, r]] - load[[j, r]], 0)


def caseload(aligned: pd.DataFrame, staff_split: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Per offender manager: cases, workload points, capacity and utilisation after alignment."""
    staff = sorted_by(staff_split, "staff_code")
    row = positions(aligned["om"], staff["staff_code"])
    held = row >= 0
    cases = np.bincount(row[held], minlength=len(staff))
    units = np.bincount(row[held], weights=aligned["weight_units"].to_numpy()[held], minlength=len(staff))
    keep = (cases > 0) | staff["role"].isin(_holding_roles(policy)).to_numpy()
    out = staff.loc[keep, ["staff_code", "side", "unit", "grade", "role", "team_code", "fte"]].reset_index(drop=True)
    fte = out["fte"].to_numpy(dtype=float)
    points = units[keep] / policy.units_per_point
    capacity = fte * policy.case_classes.capacity_points_per_fte
    with np.errstate(divide="ignore", invalid="ignore"):
        utilisation = points / capacity
    return out.assign(
        cases=cases[keep].astype("int64"), points=points, capacity_points=capacity, utilisation=utilisation,
        over_capacity=utilisation > policy.alignment.capacity_limit_pct / 100 + 1e-9)


def _holding_roles(policy: Policy) -> set[str]:
    return {r for rules in policy.case_classes.eligibility.values() for e in rules for r in e.roles if r != "*"}


def retention_decisions(retention: pd.DataFrame, aligned: pd.DataFrame) -> pd.DataFrame:
    """Each request as made, with its status, explanation and what happened to the case."""
    out = retention.copy()
    row = positions(out["crn"], aligned["crn"])
    found = row >= 0

    def of_case(column: str) -> np.ndarray:
        values = np.full(len(row), None, dtype=object)
        values[found] = aligned[column].iloc[row[found]].to_numpy(dtype=object, na_value=None)
        return values

    cur, final, reason = of_case("current_om"), of_case("om"), of_case("reason")
    out["case_om"] = final
    out["case_reason"] = reason
    holding = out["status"].isin(HOLDING_STATUSES).to_numpy()
    stayed = pd.notna(final) & (final == cur)
    out["outcome"] = np.select(
        [pd.isna(reason), holding & stayed, holding, stayed],
        ["CASE_NOT_FOUND", RETENTION_HONOURED, RETENTION_OM_LEFT, RETENTION_NOT_NEEDED],
        default=RETENTION_REJECTED_MOVED,
    )
    return out.sort_values(["crn", "requested_by"], kind="stable").reset_index(drop=True)
