"""Case alignment: every case ends with exactly one offender manager, with as few moves as the rules allow.

The problem is set per trust and side as an integer program over *groups* of identical cases rather than
single cases: its LP relaxation, solved as a min-cost flow, bounds it and gives the first whole plan; the
exchange neighbourhood improves that plan, and the exact model (CP-SAT, within a work limit) improves or
proves it (docs/decisions.md, "Solving"). A group is every movable case with the same current OM, class and team; it
either stays (`keep`) or sends cases into its team's pool for that class. A team pool hands cases to OMs of
the team or, at a team-change cost, to the trust pool, which hands them to any eligible OM. The model so
grows with cases + OMs, never cases x OMs. Costs, highest first (docs/decisions.md): overflow over
capacity, a move, a team change, then convex load-spreading bands. Capacity is in integer workload units
(points x policy.units_per_point), so indivisible cases of unequal weight are modelled exactly.

Officers, classes and teams are numbered so that numbers sort as their names do (officers by code, classes
by name, teams by code), and every model is built from arrays of those numbers in that order: the same
inputs give the solvers the same models, so the same plans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

from pipeline.decisions.alignment.exchange import Neighbourhood, improve
from pipeline.decisions.night import prior_plan
from pipeline.domain import (
    ALLOCATED,
    KEPT,
    LP_FLOW,
    LP_INTEGRAL,
    MIP,
    MOVE_REASONS,
    MOVED_CAPACITY,
    MOVED_GRADE,
    MOVED_LEFT,
    MOVED_SIDE,
    NO_STAFF,
    OTHER_SIDE,
    OUTCOME_WORDS,
    RETAINED,
    RETENTION_HONOURED,
    RETENTION_NOT_FOUND,
    RETENTION_NOT_NEEDED,
    RETENTION_OM_LEFT,
    RETENTION_PENDING,
    RETENTION_REJECTED_MOVED,
    SIDES,
)
from pipeline.policy import Policy

HOLDING_STATUSES = ("ACCEPTED", "PENDING")
# A case's reason as a number (-1: none yet), named by its place here.
REASONS = (KEPT, RETAINED, ALLOCATED, MOVED_LEFT, MOVED_SIDE, MOVED_GRADE, MOVED_CAPACITY)
_KEPT, _RETAINED, _ALLOCATED, _MOVED_LEFT, _MOVED_SIDE, _MOVED_GRADE, _MOVED_CAPACITY = range(len(REASONS))
_MOVES = [REASONS.index(r) for r in MOVE_REASONS]


class Officer(NamedTuple):
    """An offender manager as the exact model sees them."""

    code: str
    side: str
    team: str
    grade: str
    role: str
    cap_units: int
    band_units: tuple[int, ...]
    classes: frozenset[str]


@dataclass(frozen=True)
class SolveReport:
    """How a side was solved and how sure the plan is.

    method: LP_INTEGRAL (the relaxation was whole: optimal), MIP (the exact model, within its work limit),
    LP_FLOW (the relaxation's flow repair and the exchange neighbourhood, no exact model), OTHER_SIDE (nobody
    on the side: the other side's officers hold its cases, solved as above) or NO_STAFF (nobody in the trust).
    objective: the plan's cost (plan_cost); bound: a cost no plan can beat; proven: the plan is optimal, to
    within the policy's `optimality_gap`; overload_unavoidable: no plan has nobody over capacity (the
    relaxation that minimises overload alone still needs some)."""

    side: str
    method: str
    objective: int | None
    bound: int | None
    proven: bool = False
    overload_unavoidable: bool = False  # even minimising overload alone, the relaxation leaves some

    @property
    def gap(self) -> float | None:
        """(objective - bound) / objective: how much better any plan could be, at most."""
        if self.objective is None or self.bound is None:
            return None
        return max(0.0, (self.objective - self.bound) / self.objective) if self.objective else 0.0


def _class_names(policy: Policy) -> tuple[str, ...]:
    """The case classes in name order: a class's number is its place here."""
    return tuple(sorted(policy.case_classes.weights))


@dataclass(frozen=True)
class Roster:
    """The officers as arrays in code order, with a last sentinel row standing for 'no officer'; their
    classes as bits (bit i: class_names[i], names in order) and teams as positions in `teams` (codes in order)."""

    codes: pa.Array
    side: np.ndarray
    team: np.ndarray  # -1 in the sentinel row
    grade: np.ndarray
    role: np.ndarray
    classes: np.ndarray
    limits: np.ndarray  # per officer: capacity, then each spread band's threshold (units)
    teams: pa.Array
    class_names: tuple[str, ...]
    weight_units: np.ndarray  # per class

    @classmethod
    def of_staff(
        cls, staff: pd.DataFrame, policy: Policy, as_of: pd.Timestamp, case_teams: pa.Array | None = None
    ) -> Roster:
        """Every officer still in post on `as_of` (a code listed twice: its last row), the teams numbered
        over theirs and `case_teams`."""
        active = np.flatnonzero((staff["leaving_date"].isna() | (staff["leaving_date"] > as_of)).to_numpy())
        codes = pa.array(staff["staff_code"]).take(active)
        order = pc.sort_indices(codes).to_numpy()
        ordered = codes.take(order)
        last = np.append(pc.not_equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False), True)
        rows = active[order[last]]
        grade, role = staff["grade"].to_numpy(dtype=object)[rows], staff["role"].to_numpy(dtype=object)[rows]
        cc, al = policy.case_classes, policy.alignment
        full = staff["fte"].to_numpy(dtype=np.float64)[rows] * cc.capacity_points_per_fte * policy.units_per_point
        limits = np.floor(
            np.column_stack(
                [full * pct / 100 + 1e-9 for pct in (al.capacity_limit_pct, *(b.from_pct for b in al.spread_bands))]
            ).reshape(len(full), 1 + len(al.spread_bands))
        ).astype(np.int64)
        bits_of = {
            pair: sum(1 << i for i, k in enumerate(_class_names(policy)) if cc.eligible(k, *pair))
            for pair in set(zip(grade, role))
        }
        bits = np.fromiter(map(bits_of.__getitem__, zip(grade, role)), dtype=np.int64, count=len(grade))
        return cls._of(
            ordered.filter(pa.array(last)),
            staff["side"].to_numpy(dtype=object)[rows],
            pa.array(staff["team_code"]).take(rows),
            grade,
            role,
            limits,
            bits,
            policy,
            case_teams,
        )

    @classmethod
    def _of(
        cls,
        codes: pa.Array,
        side: np.ndarray,
        teams: pa.Array,
        grade: np.ndarray,
        role: np.ndarray,
        limits: np.ndarray,
        bits: np.ndarray,
        policy: Policy,
        case_teams: pa.Array | None,
    ) -> Roster:
        known = teams if case_teams is None else pa.chunked_array([teams, case_teams.cast(teams.type)])
        vocabulary = pc.unique(known).drop_null() if len(known) else teams
        vocabulary = vocabulary.take(pc.sort_indices(vocabulary))
        team = pc.fill_null(pc.index_in(teams, value_set=vocabulary), -1).to_numpy(zero_copy_only=False)
        return cls(
            codes=codes,
            side=np.append(side, None),
            team=np.append(team, -1).astype(np.int64),
            grade=grade,
            role=role,
            classes=np.append(bits, 0).astype(np.int64),
            limits=limits,
            teams=vocabulary,
            class_names=_class_names(policy),
            weight_units=np.array([policy.weight_units(k) for k in _class_names(policy)], dtype=np.int64),
        )

    @property
    def none(self) -> int:
        return len(self.codes)

    @cached_property
    def names(self) -> np.ndarray:
        return self.codes.to_numpy(zero_copy_only=False)

    def find(self, codes: pd.Series) -> np.ndarray:
        """Row of each officer code; the sentinel row for a missing or unknown code."""
        rows = pd.Index(self.codes).get_indexer(codes)
        return np.where(rows < 0, self.none, rows)

    def team_of(self, codes: pd.Series) -> np.ndarray:
        """Each team code's position in `teams` (-1: missing)."""
        return pc.fill_null(pc.index_in(pa.array(codes), value_set=self.teams), -1).to_numpy(zero_copy_only=False)

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
    """One trust's cases (crn order) as the numbers the alignment reads, each made once."""

    row: np.ndarray  # the roster row of the OM the case has now (the sentinel when missing or unknown)
    missing: np.ndarray  # no OM at all
    on_side: dict[str, np.ndarray]
    k_code: np.ndarray  # position in Roster.class_names
    t_code: np.ndarray  # position in Roster.teams
    wunits: np.ndarray

    @classmethod
    def of(cls, cases: pd.DataFrame, current: pd.Series, roster: Roster) -> CaseArrays:
        return cls(
            row=roster.find(current),
            missing=current.isna().to_numpy(),
            on_side={s: cases["side"].eq(s).to_numpy(dtype=bool, na_value=False) for s in SIDES},
            k_code=pd.Index(roster.class_names).get_indexer(cases["case_class"]),
            t_code=roster.team_of(cases["team_code"]),
            wunits=cases["weight_units"].to_numpy(),
        )

    @cached_property
    def bits(self) -> np.ndarray:
        """The case's class as its bit in Roster.classes."""
        return np.left_shift(np.int64(1), self.k_code)


def _groups(rows: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rows` grouped by integer `key`, groups in key order, rows ascending within each group: each group's
    first row, the rows one group after another, and where each group starts (and the last ends)."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    grouped = rows[order]
    return grouped[starts], grouped, np.append(starts, len(grouped))


def _pick(starts: np.ndarray, rows: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The `chosen` groups (a mask) of grouped `rows`: their rows and starts."""
    sizes = np.diff(starts)[chosen]
    return rows[np.repeat(chosen, np.diff(starts))], np.append(0, np.cumsum(sizes))


@dataclass(frozen=True)
class _Side:
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


@dataclass(frozen=True)
class _Flows:
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

    def loads(self, side: _Side) -> np.ndarray:
        """Each of the side's officers' load in units under these flows (fractional for a relaxation's)."""
        wu = side.roster.weight_units
        load = side.fixed.astype(np.float64)
        np.add.at(load, side.local(side.g_om), self.keep * wu[side.g_k])
        np.add.at(load, side.local(self.team_om), self.team * wu[self.team_k])
        return load

    def whole(self) -> _Flows:
        return replace(
            self,
            keep=self.keep.astype(np.int64),
            team=self.team.astype(np.int64),
            export=self.export.astype(np.int64),
            imports=self.imports.astype(np.int64),
        )


@dataclass(frozen=True)
class _Exact:
    """A side's exact model, numbered: integer flows in cases on the relaxation's network (kept groups, pools'
    arcs to the team's holders, exports and imports), and per loaded officer one excess variable per load
    threshold. Its objective, with `offset`, is the side's plan cost."""

    n_keep: int
    pools: np.ndarray  # pool keys, in (class, team) order
    hk: np.ndarray
    ht: np.ndarray
    hplace: np.ndarray
    importing: np.ndarray
    loaded: np.ndarray  # officer places with any arc, in order
    lower: np.ndarray
    upper: np.ndarray
    cost: np.ndarray
    integer: np.ndarray
    rows: np.ndarray  # each term's row, column and coefficient
    cols: np.ndarray
    vals: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    offset: int
    avoidable: int  # the part of `offset` that moves could avoid: every kept case leaving (see _solve_exact)
    penalties: int  # the part that is the penalty of classes nobody may hold (the relaxation prices it itself)

    @property
    def n_team(self) -> int:
        return len(self.hk)

    def builder(self, integer: bool):
        """The model for OR-Tools' linear solvers (its model builder), integer or relaxed, with its offset."""
        from ortools.linear_solver.python import model_builder_helper as mbh

        m = mbh.ModelBuilderHelper()
        m.add_var_array_with_bounds(self.lower.astype(float), self.upper.astype(float), self.integer & integer, "")
        m.set_objective_coefficients(list(range(len(self.cost))), self.cost.astype(float).tolist())
        for lo, hi in zip(self.row_lower.tolist(), self.row_upper.tolist()):
            r = m.add_linear_constraint()
            m.set_constraint_lower_bound(r, lo)
            m.set_constraint_upper_bound(r, hi)
        for r, c, v in zip(self.rows.tolist(), self.cols.tolist(), self.vals.tolist()):
            m.safe_add_term_to_constraint(r, c, v)
        return m

    def satisfied(self, x: np.ndarray) -> bool:
        """Whether `x` keeps every bound and row: a solver's answer is used only if it is a plan."""
        activity = np.bincount(self.rows, weights=self.vals * x[self.cols], minlength=len(self.row_lower))
        return bool(
            np.all(x >= self.lower)
            and np.all(x <= self.upper)
            and np.all(activity >= self.row_lower)
            and np.all(activity <= self.row_upper)
        )

    def values(self, flows: _Flows, side: _Side) -> np.ndarray:
        """Every variable's value in the plan `flows` (excess: as the loads it gives require). The
        relaxation's flows list the same arcs in the same order (_holders_of, pools in key order)."""
        return self._variables(flows.keep, flows.team, flows.export, flows.imports, flows.loads(side), side)

    def of_plan(self, side: _Side, holder: np.ndarray, k: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Every variable's value in a whole-case plan: `holder` (officer place) of each of the side's cases,
        kept groups' cases first then forced ones, with each case's class and team."""
        P, T, G = len(self.pools), self.n_team, self.n_keep
        sizes = np.diff(side.g_start)
        kept = np.zeros(len(holder), dtype=bool)
        kept[: sizes.sum()] = holder[: sizes.sum()] == np.repeat(side.local(side.g_om), sizes)
        keep = np.bincount(np.repeat(np.arange(G), sizes)[kept[: sizes.sum()]], minlength=G)
        o, kk, tt = holder[~kept], k[~kept], t[~kept]
        team_of = side.team[o]
        arcs = np.searchsorted((self.hk << 48) | (self.ht << 24) | self.hplace, (kk << 48) | (team_of << 24) | o)
        changed = team_of != tt
        exports = np.bincount(np.searchsorted(self.pools, _key(_POOL, kk[changed], tt[changed])), minlength=P)
        imports = np.bincount(np.searchsorted(self.pools, _key(_POOL, kk[changed], team_of[changed])), minlength=P)
        load = side.fixed + np.bincount(holder, weights=side.roster.weight_units[k], minlength=len(side.officers))
        return self._variables(keep, np.bincount(arcs, minlength=T), exports, imports, load, side)

    def _variables(
        self, keep: np.ndarray, team: np.ndarray, export: np.ndarray, imports: np.ndarray, load: np.ndarray, side: _Side
    ) -> np.ndarray:
        """The model's variables from a plan's flows (imports per pool) and each officer's load."""
        P, e = len(self.pools), self.n_keep + self.n_team
        x = np.zeros(len(self.cost), dtype=np.int64)
        x[: self.n_keep], x[self.n_keep : e], x[e : e + P] = keep, team, export
        x[e + P : e + P + int(self.importing.sum())] = imports[self.importing]
        x[e + P + int(self.importing.sum()) :] = np.maximum(
            0, load[self.loaded][:, None] - side.limits[self.loaded]
        ).ravel()
        return x

    def flows(self, x: np.ndarray, side: _Side, whole: bool = True) -> _Flows:
        """The plan a solution `x` gives, as flows (team arcs in (class, team, officer) order); `whole`:
        in whole cases (an integer solution), else as the relaxation's fractions."""
        P, T = len(self.pools), self.n_team
        e = self.n_keep + T
        kind = np.int64 if whole else np.float64
        x = x.astype(kind)
        imports = np.zeros(P, dtype=kind)
        imports[self.importing] = x[e + P : e + P + int(self.importing.sum())]
        return _Flows(
            x[: self.n_keep],
            self.hk,
            self.ht,
            side.officers[self.hplace],
            x[self.n_keep : e],
            self.pools >> 24 & _LOW,
            self.pools & _LOW,
            self.importing,
            x[e : e + P],
            imports,
        )


def _exact_model(side: _Side, policy: Policy, cuts: bool = True) -> _Exact:
    """The side's integer program (docs/decisions.md, "Solving"): a kept group keeps some of its cases and
    sends the rest to its (class, team) pool; a pool gives cases to its team's holders of the class or
    exports them to the class's trust pool (a team change each), which imports them into other teams' pools.
    Each officer's load past each threshold is an excess variable priced at that band's rate. With `cuts`,
    the shedding cuts (`_shedding_cuts`) tighten its relaxation without changing its whole-case plans."""
    al, U, wu = policy.alignment, policy.units_per_point, side.roster.weight_units
    classes = side.class_codes()
    hk, ht, hplace = _holders_of(side, classes)
    penalty = _penalties(side, classes, policy)
    sizes, f_sizes = np.diff(side.g_start), np.diff(side.f_start)
    g_pool, f_pool, h_pool = _key(_POOL, side.g_k, side.g_t), _key(_POOL, side.f_k, side.f_t), _key(_POOL, hk, ht)
    pools = np.unique(np.concatenate([g_pool, f_pool, h_pool]))
    importing = np.isin(pools, h_pool)
    G, T, P, I = len(sizes), len(hk), len(pools), int(importing.sum())
    n_off = len(side.officers)
    is_loaded = np.zeros(n_off, dtype=bool)
    is_loaded[side.local(side.g_om)] = True
    is_loaded[hplace] = True
    loaded = np.flatnonzero(is_loaded)
    place = np.full(n_off, -1, dtype=np.int64)
    place[loaded] = np.arange(len(loaded))
    B = side.limits.shape[1]
    O = len(loaded)
    total = int(sizes.sum() + f_sizes.sum())
    top = int(side.fixed.max(initial=0)) + int((np.append(sizes * wu[side.g_k], f_sizes * wu[side.f_k])).sum())
    c_exp, c_imp, c_exc = G + T, G + T + P, G + T + P + I
    lower = np.zeros(c_exc + O * B, dtype=np.int64)
    upper = np.concatenate([sizes, np.full(T + P + I, total), np.full(O * B, top)]).astype(np.int64)
    # A class nobody on the side may hold pays its penalty wherever its cases go: a constant, in the offset.
    cost = np.concatenate(
        [
            np.full(G, -al.cost_move * U),
            np.zeros(T),
            np.full(P, al.cost_team_change * U),
            np.zeros(I),
            np.tile(_rates(policy), O),
        ]
    ).astype(np.int64)
    integer = np.ones(len(cost), dtype=bool)
    gp, hp, ip = np.searchsorted(pools, g_pool), np.searchsorted(pools, h_pool), np.flatnonzero(importing)
    cls = np.searchsorted(classes, pools >> 24 & _LOW)
    # Rows: each pool's balance, each class's trust pool, then each loaded officer's thresholds.
    r_cls, r_load = P, P + len(classes)
    rhs = np.zeros(P, dtype=np.int64)
    np.add.at(rhs, gp, sizes)
    np.add.at(rhs, np.searchsorted(pools, f_pool), f_sizes)
    go, ho = place[side.local(side.g_om)], place[hplace]
    band = np.arange(B)
    rows = [
        gp,
        hp,
        np.arange(P),
        ip,
        r_cls + cls,
        r_cls + cls[ip],
        (r_load + go[:, None] * B + band).ravel(),
        (r_load + ho[:, None] * B + band).ravel(),
        r_load + np.arange(O * B),
    ]
    cols = [
        np.arange(G),
        G + np.arange(T),
        c_exp + np.arange(P),
        c_imp + np.arange(I),
        c_exp + np.arange(P),
        c_imp + np.arange(I),
        np.repeat(np.arange(G), B),
        np.repeat(G + np.arange(T), B),
        c_exc + np.arange(O * B),
    ]
    vals = [
        np.ones(G),
        np.ones(T),
        np.ones(P),
        -np.ones(I),
        np.ones(P),
        -np.ones(I),
        np.repeat(-wu[side.g_k], B),
        np.repeat(-wu[hk], B),
        np.ones(O * B),
    ]
    # excess - load >= fixed - threshold
    row_lower = [rhs, np.zeros(len(classes), np.int64), (side.fixed[loaded][:, None] - side.limits[loaded]).ravel()]
    row_upper = [rhs, np.zeros(len(classes), np.int64), np.full(O * B, top)]
    cut_rows, cut_cols, cut_vals, cut_lower = (
        _shedding_cuts(side, go, loaded, c_exc + np.arange(O) * B) if cuts else (np.zeros(0, np.int64),) * 4
    )
    rows.append(r_load + O * B + cut_rows)
    cols.append(cut_cols)
    vals.append(cut_vals)
    row_lower.append(cut_lower)
    row_upper.append(np.full(len(cut_lower), top * (int(wu.max()) + 1)))
    row_lower, row_upper = np.concatenate(row_lower), np.concatenate(row_upper)
    idle = ~is_loaded
    avoidable = al.cost_move * U * int(sizes.sum())
    penalties = int((penalty[side.g_k] * sizes).sum() + (penalty[side.f_k] * f_sizes).sum())
    offset = (
        avoidable
        + al.cost_move * U * side.forced_moves
        + _load_cost(side.fixed[idle], side.limits[idle], policy)
        + penalties
    )
    return _Exact(
        G,
        pools,
        hk,
        ht,
        hplace,
        importing,
        loaded,
        lower,
        upper,
        cost,
        integer,
        np.concatenate(rows).astype(np.int64),
        np.concatenate(cols).astype(np.int64),
        np.concatenate(vals).astype(np.int64),
        row_lower,
        row_upper,
        int(offset),
        int(avoidable),
        penalties,
    )


def _shedding_cuts(side: _Side, go: np.ndarray, loaded: np.ndarray, overflow_col: np.ndarray) -> tuple[np.ndarray, ...]:
    """Valid inequalities for officers whose own cases put them over capacity (rows, columns, coefficients and
    each row's lower bound; columns: the kept groups' and each officer's overflow variable).

    Such an officer, D units over with cases of at most w units, lets go of cases worth D or carries the
    overflow: overflow + sum(w_g x cases let go of group g) >= D. Cases are whole, so the mixed-integer
    rounding of that row, sum(c_g x let go) + overflow >= R, holds too and cuts off the relaxation's plans
    that let a fraction of a case go, which is most of the relaxation's gap (receiving cases only adds load,
    so both hold whatever the officer receives). With q = w - ((-D) mod w): c_g = q - max(0, w - w_g - (-D) mod
    w), R = ceil(D / w) q. Rows are in officer order, kept groups in group order within them."""
    wu = side.roster.weight_units
    sizes = np.diff(side.g_start)
    w_g = wu[side.g_k]
    n_loaded = len(loaded)
    fixed, cap = side.fixed[loaded], side.limits[loaded, 0]
    held = np.bincount(go, weights=sizes * w_g, minlength=n_loaded).astype(np.int64)
    over = held + fixed - cap
    heaviest = np.zeros(n_loaded, dtype=np.int64)
    np.maximum.at(heaviest, go, w_g)
    rest = np.where(heaviest > 0, (-over) % np.maximum(heaviest, 1), 0)
    cut = (over > 0) & (rest > 0)
    if not cut.any():
        return (np.zeros(0, np.int64),) * 4
    number = np.cumsum(cut) - 1
    q = heaviest - rest
    mine = cut[go]
    g = np.flatnonzero(mine)
    o = go[g]
    c = q[o] - np.maximum(0, heaviest[o] - w_g[g] - rest[o])
    officers = np.flatnonzero(cut)
    n = len(officers)
    lower = -(-over[officers] // heaviest[officers]) * q[officers] - np.bincount(
        number[o], weights=c * sizes[g], minlength=n
    ).astype(np.int64)
    # In keep terms: overflow - sum(c_g keep_g) >= R - sum(c_g size_g)
    return (
        np.concatenate([number[o], np.arange(n)]),
        np.concatenate([g, overflow_col[officers]]),
        np.concatenate([-c, np.ones(n, np.int64)]),
        lower,
    )


@dataclass(frozen=True)
class _Solved:
    x: np.ndarray
    objective: int
    bound: int
    optimal: bool


def _solve_exact(model: _Exact, hint: np.ndarray | None, work_limit: float, gap: int) -> _Solved | None:
    """The exact model solved by CP-SAT on one worker within `work_limit` deterministic seconds (so the same
    model always gives the same plan, however busy the machine), stopping once within `gap` (in cost) of its
    bound. CP-SAT sees only the cost a plan can change (moves beyond the forced ones, team changes, load):
    the constants are added back to what it reports."""
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    xs = [m.new_int_var(int(lo), int(hi), "") for lo, hi in zip(model.lower.tolist(), model.upper.tolist())]
    order = np.argsort(model.rows, kind="stable")
    rows, cols, vals = model.rows[order], model.cols[order], model.vals[order]
    bounds = np.searchsorted(rows, np.arange(len(model.row_lower) + 1))
    for r, (lo, hi) in enumerate(zip(model.row_lower.tolist(), model.row_upper.tolist())):
        a, b = bounds[r], bounds[r + 1]
        m.add_linear_constraint(
            cp_model.LinearExpr.weighted_sum([xs[c] for c in cols[a:b].tolist()], vals[a:b].tolist()), lo, hi
        )
    priced = np.flatnonzero(model.cost)
    m.minimize(
        cp_model.LinearExpr.weighted_sum([xs[c] for c in priced.tolist()], model.cost[priced].tolist())
        + model.avoidable
    )
    if hint is not None:
        for v, value in zip(xs, hint.tolist()):
            m.add_hint(v, value)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = work_limit
    solver.parameters.absolute_gap_limit = gap
    # Measured on the national set (docs/performance.md): the LP-rich search with every constraint in the LP
    # from the start proves these flow models' bounds soonest; presolve and probing find little in them.
    solver.parameters.linearization_level = 2
    solver.parameters.add_lp_constraints_lazily = False
    solver.parameters.cp_model_presolve = False
    solver.parameters.cp_model_probing_level = 0
    solver.parameters.root_lp_iterations = 20000
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    x = np.array([solver.value(v) for v in xs], dtype=np.int64)
    if not model.satisfied(x):
        return None
    shift = model.offset - model.avoidable
    return _Solved(
        x,
        int(round(solver.objective_value)) + shift,
        int(math.ceil(solver.best_objective_bound - 1e-6)) + shift,
        status == cp_model.OPTIMAL,
    )


# Node keys of the flow networks: a kind, then two numbers (each below 2**24).
_SINK, _GROUP, _OM, _POOL, _TRUST, _OM_CLASS = range(6)
_LOW = (1 << 24) - 1


def _key(kind: int, a, b=0) -> np.ndarray:
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


def _penalties(side: _Side, classes: np.ndarray, policy: Policy) -> np.ndarray:
    """The cost of each case of a class given to one of its holders, per class: nothing, unless nobody on the
    side is eligible for it."""
    penalty = np.zeros(len(side.roster.class_names), dtype=np.int64)
    for k in classes.tolist():
        if not (side.classes >> k & 1).any():
            penalty[k] = policy.alignment.cost_ineligible * policy.units_per_point
    return penalty


def _holders_of(side: _Side, classes: np.ndarray) -> tuple[np.ndarray, ...]:
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


def _relaxation(side: _Side, policy: Policy) -> tuple[_Flows, bool, float]:
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
    hk, ht, hplace = _holders_of(side, classes)
    penalty = _penalties(side, classes, policy)
    units = np.diff(side.g_start) * wu[side.g_k]
    f_units = np.diff(side.f_start) * wu[side.f_k]
    big = int(units.sum() + f_units.sum())
    group = _key(_GROUP, np.arange(len(units)))
    g_pool, f_pool, h_pool = _key(_POOL, side.g_k, side.g_t), _key(_POOL, side.f_k, side.f_t), _key(_POOL, hk, ht)
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
    pool_k, pool_t = pools >> 24 & _LOW, pools & _LOW
    k = pool_k[of]
    trust = _key(_TRUST, k)
    tails = np.where(is_import, trust, pools[of])
    heads = np.where(is_import, pools[of], trust)
    heads[is_team] = _key(_OM, side.officers[hplace])
    costs = np.where(is_team, penalty[k] * per_unit[k], np.where(is_export, al.cost_team_change * U * per_unit[k], 0))
    nodes = _Nodes(
        np.concatenate(
            [_key(_SINK, [0]), _pairs(group, _key(_OM, side.g_om), group, g_pool), f_pool, _pairs(tails, heads)]
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
            _load_bands(nodes.of(_key(_OM, side.officers[loaded])), fixed, limits, _rates(policy) * lcm, big, 0),
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
    flows = _Flows(
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
    return flows, whole, cost / lcm + _load_cost(fixed, limits, policy)


def _flow_repair(side: _Side, policy: Policy, lp: _Flows) -> _Flows:
    """Integral plan from the LP relaxation: min-cost flow in whole cases, one commodity per weight class.

    The LP is the outer step that splits each officer's point capacity between classes: an officer's arc for
    class k admits the LP's whole cases of k at no cost; each case past that pays the overflow its weight
    would cause, priced as if the officer were full. Moves, team changes and ineligible holders keep
    their policy costs, so the flow minimises moves exactly for that capacity split.
    """
    al, U, wu = policy.alignment, policy.units_per_point, side.roster.weight_units
    sizes, f_sizes = np.diff(side.g_start), np.diff(side.f_start)
    big = int(sizes.sum() + f_sizes.sum())
    penalty = _penalties(side, side.class_codes(), policy)
    group = _key(_GROUP, np.arange(len(sizes)))
    g_om = _key(_OM_CLASS, side.g_om, side.g_k)
    f_pool = _key(_POOL, side.f_k, side.f_t)
    t_om = _key(_OM_CLASS, lp.team_om, lp.team_k)
    p_pool, p_trust = _key(_POOL, lp.pool_k, lp.pool_t), _key(_TRUST, lp.pool_k)
    officers = np.unique(np.concatenate([g_om, t_om]))  # (officer, class) nodes, in that order
    room = _class_rooms(side, lp, g_om, t_om, officers)
    nodes = _Nodes(
        np.concatenate(
            [
                _key(_SINK, [0]),
                _pairs(group, g_om, group, _key(_POOL, side.g_k, side.g_t)),
                f_pool,
                _pairs(_key(_POOL, lp.team_k, lp.team_t), t_om),
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
    drain_cost = al.cost_overflow_per_point * wu[officers & _LOW]
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


def _class_rooms(side: _Side, lp: _Flows, g_om: np.ndarray, t_om: np.ndarray, keys: np.ndarray) -> np.ndarray:
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
    row, k = keys >> 24 & _LOW, keys & _LOW
    place = side.local(row)
    used = np.bincount(place, weights=room * wu[k], minlength=len(side.officers)).astype(np.int64)
    left = (side.limits[:, 0] - side.fixed - used).tolist()
    for i in rounded[np.lexsort((k[rounded], -fraction[rounded], row[rounded]))].tolist():
        o, w = int(place[i]), int(wu[k[i]])
        if left[o] >= w:
            room[i] += 1
            left[o] -= w
    return room


def plan_cost(
    loads: dict[str, int], officers: dict[str, Officer], moves: int, team_changes: int, ineligible: int, policy: Policy
) -> int:
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
    return (
        al.cost_move * moves + al.cost_team_change * team_changes + al.cost_ineligible * ineligible
    ) * policy.units_per_point


def _rates(policy: Policy) -> np.ndarray:
    """The cost of each unit of load past each of `_limits`: overflow, then each spread band."""
    al = policy.alignment
    return np.array([al.cost_overflow_per_point, *(b.cost for b in al.spread_bands)], dtype=np.int64)


def _load_cost(loads: np.ndarray, limits: np.ndarray, policy: Policy) -> int:
    """plan_cost's load part, by array, for officers with `limits` carrying `loads` units."""
    return int((np.maximum(0, loads[:, None] - limits) * _rates(policy)).sum())


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


def _standing(cases: pd.DataFrame, prior: pd.DataFrame, roster: Roster, held: pd.Series) -> np.ndarray:
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


def _classify(
    crns: pd.Series, c: CaseArrays, roster: Roster, held: pd.Series, standing: np.ndarray | None = None
) -> tuple[dict[str, _Side], np.ndarray, ...]:
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
    reason[pin] = np.where(allowed[pin], _KEPT, _RETAINED)
    fixed = np.bincount(row[pin], weights=c.wunits[pin], minlength=roster.none + 1).astype(np.int64)
    why = np.select([c.missing, ~known, ~same_side], [_ALLOCATED, _MOVED_LEFT, _MOVED_SIDE], _MOVED_GRADE)
    why[pin | allowed] = -1
    forced_reason = why.astype(np.int8)
    k, t = c.k_code, c.t_code
    nk, nt = len(roster.class_names), max(len(roster.teams), 1)
    free = ~pin
    problems = {}
    for s in SIDES:
        officers = np.flatnonzero(roster.side[:-1] == s)
        keep = np.flatnonzero(allowed & free & c.on_side[s])
        g_first, g_rows, g_start = _groups(keep, (row[keep] * nk + k[keep]) * nt + t[keep])
        move = np.flatnonzero(~allowed & free & c.on_side[s])
        f_first, f_rows, f_start = _groups(move, k[move] * nt + t[move])
        problems[s] = _Side(
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


def _borrowed(side: _Side, name: str, om: np.ndarray, wunits: np.ndarray) -> _Side:
    """A side with no officer: its cases go to the other side's officers, as loaded now, all at the
    ineligible cost (so who may hold which class no longer matters, only load, moves and teams); a case
    already held by one of them may stay."""
    roster = side.roster
    others = np.flatnonzero(roster.side[:-1] != name)
    held = om < roster.none
    load = np.bincount(om[held], weights=wunits[held], minlength=roster.none).astype(np.int64)
    return replace(side, officers=others, classes=np.zeros(len(others), dtype=np.int64), fixed=load[others])


def _solve_side(
    name: str, side: _Side, c: CaseArrays, om: np.ndarray, reason: np.ndarray, forced_reason: np.ndarray, policy: Policy
) -> SolveReport:
    """Plan the side (writing each case's officer and reason into `om` and `reason`) and say how sure the
    plan is (docs/decisions.md, "Solving").

    The LP relaxation first, solved exactly as a min-cost flow: its cost bounds every plan, and a whole
    optimum is the plan, proven. Otherwise the exact model's relaxation with the shedding cuts raises the
    bound, and its flows, repaired to whole cases and improved by the exchange neighbourhood, are the first
    plan. Unless that is within the allowed gap of the bound, the exact model, hinted with the plan and
    solved within the policy's work limit, finds a better plan or raises the bound."""
    lp, whole, lp_cost = _relaxation(side, policy)
    model = _exact_model(side, policy)
    bound = int(math.ceil(lp_cost - 1e-6)) + model.offset - model.penalties
    if whole:
        _deal(side, lp.whole(), c.row, om, reason, forced_reason)
        return SolveReport(name, LP_INTEGRAL, None, bound, True)
    tighter = _cut_relaxation(model, side)
    if tighter is not None:
        bound, lp = max(bound, tighter.bound), tighter.flows
    _deal(side, _flow_repair(side, policy, lp), c.row, om, reason, forced_reason)
    x = _exchange(side, c, om, reason, forced_reason, model, policy)
    cost = int(model.cost @ x) + model.offset
    if cost - bound <= _allowed_gap(cost, policy) or _work_limit(side, policy) <= 0:
        return SolveReport(name, LP_FLOW, None, bound, cost - bound <= _allowed_gap(cost, policy))
    narrow = _fixed_by_reduced_cost(model, tighter, cost) if tighter is not None else model
    if not (np.all(x >= narrow.lower) and np.all(x <= narrow.upper)):
        narrow = model  # the relaxation's tolerances disagree with the plan: search the whole model
    solved = _solve_exact(narrow, x, _work_limit(side, policy), _allowed_gap(cost, policy))
    if solved is None:
        return SolveReport(name, LP_FLOW, None, bound, False)
    if solved.objective < cost:
        _deal(side, model.flows(solved.x, side), c.row, om, reason, forced_reason)
        if not solved.optimal:
            _exchange(side, c, om, reason, forced_reason, model, policy)
    return SolveReport(name, MIP, None, max(bound, solved.bound), solved.optimal)


def _work_limit(side: _Side, policy: Policy) -> float:
    """The exact model's work limit on this side (CP-SAT's deterministic seconds): the policy's allowance per
    1,000 movable cases, at least its floor and at most its ceiling."""
    al = policy.alignment
    grown = al.exact_work_per_1000_cases * (len(side.g_rows) + len(side.f_rows)) / 1000
    return min(max(al.exact_work_limit, grown), max(al.exact_work_ceiling, al.exact_work_limit))


def _allowed_gap(cost: int, policy: Policy) -> int:
    """How far above its bound a plan of this cost may be and count as proven: the policy's share of its
    cost, and always less than one move (so no avoidable move hides in the gap, however large the side)."""
    al = policy.alignment
    return min(int(al.optimality_gap * cost), al.cost_move * policy.units_per_point - 1)


@dataclass(frozen=True)
class _Relaxed:
    """The exact model's relaxation solved: its bound (plan-cost scale), flows, values and reduced costs."""

    bound: int
    flows: _Flows
    value: float  # the LP's objective, without the model's offset
    x: np.ndarray
    reduced: np.ndarray


def _cut_relaxation(model: _Exact, side: _Side) -> _Relaxed | None:
    """The exact model's LP relaxation, shedding cuts included, solved by GLOP (OR-Tools' simplex: the same
    answer every time, with reduced costs): a bound much closer to the optimum than the min-cost flow's, and
    its (fractional) flows, which the flow repair rounds far better. None if GLOP reports no optimum."""
    from ortools.linear_solver.python import model_builder_helper as mbh

    solver = mbh.ModelSolverHelper("GLOP")
    solver.solve(model.builder(integer=False))
    if solver.status() != mbh.SolveStatus.OPTIMAL:
        return None
    # Rounded down, less the solver's tolerance on the objective: a bound must never be above the optimum.
    value = solver.objective_value()
    x = np.maximum(np.asarray(solver.variable_values(), dtype=np.float64), 0.0)
    return _Relaxed(
        int(math.floor(value - 1e-7 * abs(value) - 1e-6)) + model.offset,
        model.flows(x, side, whole=False),
        value,
        x,
        np.asarray(solver.reduced_costs(), dtype=np.float64),
    )


def _fixed_by_reduced_cost(model: _Exact, relaxed: _Relaxed, cost: int) -> _Exact:
    """The model with every variable fixed that no plan cheaper than `cost` can move off its relaxed value:
    one at a bound whose reduced cost is more than `cost` less the relaxation (moving it one unit costs at
    least that). The model keeps every plan cheaper than `cost`, so its optimum and bound are the whole
    model's; CP-SAT gets a much smaller search."""
    slack = cost - model.offset - relaxed.value + 1 + 1e-6 * abs(cost)
    at_lower = np.isclose(relaxed.x, model.lower, atol=1e-9) & (relaxed.reduced > slack)
    at_upper = np.isclose(relaxed.x, model.upper, atol=1e-9) & (-relaxed.reduced > slack)
    return replace(
        model, lower=np.where(at_upper, model.upper, model.lower), upper=np.where(at_lower, model.lower, model.upper)
    )


def _anyone_over(side: _Side, c: CaseArrays, om: np.ndarray) -> bool:
    """Whether the plan `om` leaves any of the side's officers over capacity."""
    rows = np.concatenate([side.g_rows, side.f_rows])
    at = side.local(om[rows])
    mine = (at < len(side.officers)) & (side.officers[np.minimum(at, len(side.officers) - 1)] == om[rows])
    load = side.fixed + np.bincount(at[mine], weights=c.wunits[rows[mine]], minlength=len(side.officers))
    return bool((load > side.limits[:, 0]).any())


def _overload_unavoidable(side: _Side, policy: Policy) -> bool:
    """Whether every plan leaves someone over capacity: the relaxation pricing overload alone (no cost for
    moves, team changes or spreading) still does, and no whole-case plan can do better than it."""
    al = policy.alignment
    alone = policy.model_copy(
        update={
            "alignment": al.model_copy(
                update={
                    "cost_move": 0,
                    "cost_team_change": 0,
                    "spread_bands": [b.model_copy(update={"cost": 0}) for b in al.spread_bands],
                }
            )
        }
    )
    flows, _, _ = _relaxation(side, alone)
    return bool((flows.loads(side) - side.limits[:, 0] > 1e-6).any())


def align_cases(
    split_cases: pd.DataFrame,
    staff_split: pd.DataFrame,
    retention: pd.DataFrame,
    policy: Policy,
    as_of: pd.Timestamp,
    previous_plan: pd.DataFrame | None = None,
    run_date: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, list[SolveReport]]:
    """Align one trust's cases to offender managers after the staff split.

    `previous_plan`: the case plan the last run before this one left (night.PLAN_COLUMNS): a plan that
    stands is kept whole, with its reason and `planned_on`, and counts towards its OM's load.
    Returns one row per case, sorted by crn: crn, team_code, side, rule, case_class, weight_units,
    current_om (as the extract shows it), om, moved, reason, eligible_om, team_change, planned_on (the run
    date a move or allocation was first planned), replanned; and one solver report per side.
    """
    cases = split_cases.sort_values("crn", kind="stable").reset_index(drop=True)
    roster = Roster.of_staff(staff_split, policy, as_of, pa.array(cases["team_code"]))
    held = retention.loc[retention["status"].isin(HOLDING_STATUSES), "crn"].drop_duplicates()
    extract_om = cases["om_staff_code"]
    prior = prior_plan(cases, previous_plan)
    standing = _standing(cases, prior, roster, held)
    # A standing plan is solved as if its planned OM held the case already, and pinned there.
    current_om = extract_om.astype(object).where(~standing, prior["planned_om"].to_numpy(dtype=object))
    c = CaseArrays.of(cases, current_om, roster)
    problems, om, reason, forced_reason, pinned = _classify(cases["crn"], c, roster, held, standing)

    reports = []
    # Staffed sides first: a side with nobody on it borrows the other side's officers as they are then loaded.
    for side in sorted(SIDES, key=lambda s: not len(problems[s].officers)):
        prob, method = problems[side], None
        if prob.empty:
            continue
        if not len(prob.officers):
            prob, method = _borrowed(prob, side, om, c.wunits), OTHER_SIDE
        if not len(prob.officers):
            reason[prob.f_rows] = forced_reason[prob.f_rows]
            reports.append(SolveReport(side, NO_STAFF, None, None))
            continue
        report = _solve_side(side, prob, c, om, reason, forced_reason, policy)
        if _anyone_over(prob, c, om):
            report = replace(report, overload_unavoidable=_overload_unavoidable(prob, policy))
        reports.append(replace(report, method=method or report.method))

    outstanding, done = prior["outstanding"].to_numpy(), prior["done"].to_numpy()
    keeps = standing & ~done & outstanding  # planned, not yet done: the plan's own reason stands
    reason[keeps] = pd.Index(list(REASONS)).get_indexer(prior["reason"])[keeps]
    held_by = om < roster.none
    moved = np.isin(reason, _MOVES)
    plan = Plan(
        row=om,
        on_side=c.on_side,
        wunits=c.wunits,
        moved=moved,
        eligible=held_by & roster.same_side(om, c.on_side) & ((roster.classes[om] & c.bits) != 0),
        team_change=held_by & (moved | (reason == _ALLOCATED)) & (roster.team[om] != c.t_code),
        free=~pinned,
    )
    out = cases[["crn", "team_code", "side", "rule", "case_class", "weight_units"]].copy()
    out["current_om"] = extract_om.astype("str")
    out["om"] = roster.codes.take(pa.array(np.where(held_by, om, 0), mask=~held_by)).to_pandas()
    out["reason"] = np.asarray(list(REASONS), dtype=object)[reason.astype(np.int64)]
    out["moved"] = moved
    out["eligible_om"] = plan.eligible
    out["team_change"] = plan.team_change
    planned = moved | (reason == _ALLOCATED)
    # A plan that stands keeps the night it was first made; a case the earlier plan moved that must move
    # another way (its planned OM can no longer take it) is re-planned tonight.
    out["planned_on"] = np.where(
        keeps,
        prior["planned_on"].to_numpy(),
        np.datetime64(run_date, "ns") if run_date is not None else np.datetime64("NaT"),
    ).astype("datetime64[ns]")
    out.loc[~planned, "planned_on"] = pd.NaT
    out["replanned"] = planned & outstanding & prior["unchanged"].to_numpy() & ~done & ~standing
    # The extract shows tonight the move or allocation an earlier run planned: actioned since that run.
    out["actioned"] = done & outstanding & (prior["planned_om"] != prior["then_om"]).to_numpy()
    borrowed = {r.side for r in reports if r.method == OTHER_SIDE}
    priced = []
    for r in reports:
        cost = _side_cost(plan, roster, r.side, policy, borrowed)
        bound = cost if r.method == NO_STAFF else r.bound
        within = cost - bound <= _allowed_gap(cost, policy)
        priced.append(replace(r, objective=cost, bound=bound, proven=r.proven or within))
    return out, priced


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


def _side_cost(plan: Plan, roster: Roster, side: str, policy: Policy, borrowed: set[str]) -> int:
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
    ) + _load_cost(loaded[rows].astype(np.int64), roster.limits[rows], policy)


def _deal(
    side: _Side, flows: _Flows, current: np.ndarray, om: np.ndarray, reason: np.ndarray, forced_reason: np.ndarray
) -> None:
    """Turn integer flows into per-case assignments, deterministically (cases in crn order, OMs in code order).

    A kept group keeps its first cases; the rest join its pool with the forced cases, in case order. A pool
    exports its last cases to its class's trust pool (in case order), which hands them on to the importing
    pools in pool order; each pool then gives its own cases, then its imports, to its officers in code order.
    """
    sizes, rows = np.diff(side.g_start), side.g_rows
    first = np.repeat(side.g_start[:-1], sizes)
    stays = np.arange(len(rows)) - first < np.repeat(flows.keep, sizes)
    om[rows[stays]] = np.repeat(side.g_om, flows.keep)
    reason[rows[stays]] = _KEPT
    forced_reason[rows[~stays]] = _MOVED_CAPACITY

    g_pool, f_pool = _key(_POOL, side.g_k, side.g_t), _key(_POOL, side.f_k, side.f_t)
    flow_pools = _key(_POOL, flows.pool_k, flows.pool_t)
    keys = np.unique(np.concatenate([g_pool, f_pool, flow_pools, _key(_POOL, flows.team_k, flows.team_t)]))
    rows = np.concatenate([rows[~stays], side.f_rows])
    of = np.concatenate(
        [
            np.repeat(np.searchsorted(keys, g_pool), sizes)[~stays],
            np.repeat(np.searchsorted(keys, f_pool), np.diff(side.f_start)),
        ]
    )
    order = np.lexsort((rows, of))
    rows, of = rows[order], of[order]
    size = np.bincount(of, minlength=len(keys))
    at = np.searchsorted(keys, flow_pools)
    exports, imports = np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=np.int64)
    exports[at], imports[at] = flows.export, flows.imports
    leaves = np.arange(len(rows)) - (np.cumsum(size) - size)[of] >= (size - exports)[of]
    trust_pool = np.lexsort((rows[leaves], (keys >> 24 & _LOW)[of[leaves]]))  # by class, then case
    pooled = np.concatenate([rows[~leaves], rows[leaves][trust_pool]])
    of = np.concatenate([of[~leaves], np.repeat(np.arange(len(keys)), imports)])
    if len(of) != len(pooled):
        raise RuntimeError("case alignment: the imports do not match the exports")
    given = pooled[np.argsort(of, kind="stable")]  # each pool: its own cases, then its imports
    officers = np.repeat(flows.team_om, flows.team)
    if len(officers) != len(given):
        raise RuntimeError("case alignment: the pools do not give out every case")
    om[given] = officers
    # Given back to its own OM: no move.
    reason[given] = np.where(officers == current[given], _KEPT, forced_reason[given])


def _exchange(
    side: _Side,
    c: CaseArrays,
    om: np.ndarray,
    reason: np.ndarray,
    forced_reason: np.ndarray,
    model: _Exact,
    policy: Policy,
) -> np.ndarray:
    """Improve a dealt plan by the exchange neighbourhood (pipeline.decisions.exchange); the plan after, as
    the exact model's variables."""
    al, U = policy.alignment, policy.units_per_point
    rows = np.concatenate([side.g_rows, side.f_rows])
    kept = np.zeros(len(rows), dtype=bool)
    kept[: len(side.g_rows)] = True
    home = np.full(len(rows), -1, dtype=np.int64)
    home[: len(side.g_rows)] = side.local(np.repeat(side.g_om, np.diff(side.g_start)))
    nb = Neighbourhood(
        home=home,
        move_cost=np.where(c.missing[rows], 0, al.cost_move * U),
        k=c.k_code[rows],
        w=c.wunits[rows].astype(np.int64),
        t=c.t_code[rows],
        team=side.team,
        holds=side.classes,
        fixed=side.fixed,
        limits=side.limits,
        rates=_rates(policy),
        team_change=al.cost_team_change * U,
    )
    holder = improve(nb, side.local(om[rows]), al.exchange_rounds)
    om[rows] = side.officers[holder]
    at_home = holder == home
    forced_reason[rows[kept & ~at_home]] = _MOVED_CAPACITY
    reason[rows] = np.where(at_home, _KEPT, forced_reason[rows])
    return model.of_plan(side, holder, c.k_code[rows], c.t_code[rows])


def caseload(aligned: pd.DataFrame, staff_split: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Per offender manager: cases, workload points, capacity and utilisation after alignment."""
    staff = staff_split.sort_values("staff_code", kind="stable")
    row = pd.Index(staff["staff_code"]).get_indexer(aligned["om"])
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
        cases=cases[keep].astype("int64"),
        points=points,
        capacity_points=capacity,
        utilisation=utilisation,
        over_capacity=utilisation > policy.alignment.capacity_limit_pct / 100 + 1e-9,
    )


def _holding_roles(policy: Policy) -> set[str]:
    return {r for rules in policy.case_classes.eligibility.values() for e in rules for r in e.roles if r != "*"}


def retention_decisions(retention: pd.DataFrame, aligned: pd.DataFrame) -> pd.DataFrame:
    """Each request as made, with its status, explanation and what happened to the case."""
    out = retention.copy()
    row = pd.Index(aligned["crn"]).get_indexer(out["crn"])
    found = row >= 0

    def of_case(column: str) -> np.ndarray:
        values = np.full(len(row), None, dtype=object)
        values[found] = aligned[column].iloc[row[found]].to_numpy(dtype=object, na_value=None)
        return values

    cur, final, reason = of_case("current_om"), of_case("om"), of_case("reason")
    out["case_om"] = final
    out["case_reason"] = reason
    holding = out["status"].isin(HOLDING_STATUSES).to_numpy()
    pending = (out["status"] == "PENDING").to_numpy()
    stayed = pd.notna(final) & (final == cur)
    out["outcome"] = np.select(
        [pd.isna(reason), pending & stayed, holding & stayed, holding, stayed],
        [RETENTION_NOT_FOUND, RETENTION_PENDING, RETENTION_HONOURED, RETENTION_OM_LEFT, RETENTION_NOT_NEEDED],
        default=RETENTION_REJECTED_MOVED,
    )
    out["outcome_in_words"] = out["outcome"].map(OUTCOME_WORDS)
    return out.sort_values(["crn", "requested_by"], kind="stable").reset_index(drop=True)
