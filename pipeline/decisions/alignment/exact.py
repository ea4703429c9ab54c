"""The exact model of a side (CP-SAT within a deterministic work limit), its cuts, and its relaxation with
those cuts: the proof, or the certified gap, of a side's plan."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from pipeline.decisions.alignment.pricing import load_cost, load_rates
from pipeline.decisions.alignment.relaxation import LOW_BITS, POOL_NODE, Flows, class_penalties, holders_of, node_key
from pipeline.decisions.alignment.sides import Side
from pipeline.policy import Policy


@dataclass(frozen=True)
class Exact:
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
    cost: np.ndarray  # every variable is integer in the exact model
    rows: np.ndarray  # each term's row, column and coefficient
    cols: np.ndarray
    vals: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    offset: int
    penalties: int  # the part that is the penalty of classes nobody may hold (the relaxation prices it itself)

    @property
    def n_team(self) -> int:
        return len(self.hk)

    def builder(self, integer: bool):
        """The model for OR-Tools' linear solvers (its model builder), integer or relaxed, filled from the
        sparse matrix of its terms (a term given twice is added up)."""
        import scipy.sparse
        from ortools.linear_solver.python import model_builder_helper as mbh

        m = mbh.ModelBuilderHelper()
        terms = scipy.sparse.csr_matrix(
            (self.vals.astype(float), (self.rows, self.cols)), shape=(len(self.row_lower), len(self.cost))
        )
        m.fill_model_from_sparse_data(
            self.lower.astype(float),
            self.upper.astype(float),
            self.cost.astype(float),
            self.row_lower.astype(float),
            self.row_upper.astype(float),
            terms,
        )
        if integer:
            for i in range(len(self.cost)):
                m.set_var_integrality(i, True)
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

    def values(self, flows: Flows, side: Side) -> np.ndarray:
        """Every variable's value in the plan `flows` (excess: as the loads it gives require). The
        relaxation's flows list the same arcs in the same order (holders_of, pools in key order)."""
        return self._variables(flows.keep, flows.team, flows.export, flows.imports, flows.loads(side), side)

    def of_plan(self, side: Side, holder: np.ndarray, k: np.ndarray, t: np.ndarray) -> np.ndarray:
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
        exports = np.bincount(np.searchsorted(self.pools, node_key(POOL_NODE, kk[changed], tt[changed])), minlength=P)
        imports = np.bincount(
            np.searchsorted(self.pools, node_key(POOL_NODE, kk[changed], team_of[changed])), minlength=P
        )
        load = side.fixed + np.bincount(holder, weights=side.roster.weight_units[k], minlength=len(side.officers))
        return self._variables(keep, np.bincount(arcs, minlength=T), exports, imports, load, side)

    def _variables(
        self, keep: np.ndarray, team: np.ndarray, export: np.ndarray, imports: np.ndarray, load: np.ndarray, side: Side
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

    def flows(self, x: np.ndarray, side: Side, whole: bool = True) -> Flows:
        """The plan a solution `x` gives, as flows (team arcs in (class, team, officer) order); `whole`:
        in whole cases (an integer solution), else as the relaxation's fractions."""
        P, T = len(self.pools), self.n_team
        e = self.n_keep + T
        kind = np.int64 if whole else np.float64
        x = x.astype(kind)
        imports = np.zeros(P, dtype=kind)
        imports[self.importing] = x[e + P : e + P + int(self.importing.sum())]
        return Flows(
            x[: self.n_keep],
            self.hk,
            self.ht,
            side.officers[self.hplace],
            x[self.n_keep : e],
            self.pools >> 24 & LOW_BITS,
            self.pools & LOW_BITS,
            self.importing,
            x[e : e + P],
            imports,
        )


def exact_model(side: Side, policy: Policy, cuts: bool = True) -> Exact:
    """The side's integer program (docs/decisions.md, "Solving"): a kept group keeps some of its cases and
    sends the rest to its (class, team) pool; a pool gives cases to its team's holders of the class or
    exports them to the class's trust pool (a team change each), which imports them into other teams' pools.
    Each officer's load past each threshold is an excess variable priced at that band's rate. With `cuts`,
    the shedding cuts (`_shedding_cuts`) tighten its relaxation without changing its whole-case plans."""
    al, U, wu = policy.alignment, policy.units_per_point, side.roster.weight_units
    classes = side.class_codes()
    hk, ht, hplace = holders_of(side, classes)
    penalty = class_penalties(side, classes, policy)
    sizes, f_sizes = np.diff(side.g_start), np.diff(side.f_start)
    g_pool, f_pool, h_pool = (
        node_key(POOL_NODE, side.g_k, side.g_t),
        node_key(POOL_NODE, side.f_k, side.f_t),
        node_key(POOL_NODE, hk, ht),
    )
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
            np.tile(load_rates(policy), O),
        ]
    ).astype(np.int64)
    gp, hp, ip = np.searchsorted(pools, g_pool), np.searchsorted(pools, h_pool), np.flatnonzero(importing)
    cls = np.searchsorted(classes, pools >> 24 & LOW_BITS)
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
    # Every kept group's cases priced as leaving (keeping one earns the move back, at -cost_move each).
    leaving = al.cost_move * U * int(sizes.sum())
    penalties = int((penalty[side.g_k] * sizes).sum() + (penalty[side.f_k] * f_sizes).sum())
    offset = (
        leaving
        + al.cost_move * U * side.forced_moves
        + load_cost(side.fixed[idle], side.limits[idle], policy)
        + penalties
    )
    return Exact(
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
        np.concatenate(rows).astype(np.int64),
        np.concatenate(cols).astype(np.int64),
        np.concatenate(vals).astype(np.int64),
        row_lower,
        row_upper,
        int(offset),
        penalties,
    )


def _shedding_cuts(side: Side, go: np.ndarray, loaded: np.ndarray, overflow_col: np.ndarray) -> tuple[np.ndarray, ...]:
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


# CP-SAT's settings for the exact model, measured on the national set (docs/performance.md): the LP-rich search
# with every constraint in the LP from the start proves these flow models' bounds soonest; presolve and
# probing find little in them; the hint is a whole plan already, and searching around it first took a fifth
# of CP-SAT's time and changed no proof.
_CP_SAT = """num_workers: 1
linearization_level: 2
add_lp_constraints_lazily: false
cp_model_presolve: false
cp_model_probing_level: 0
root_lp_iterations: 20000
hint_conflict_limit: 0
"""


def solve_exact(model: Exact, hint: np.ndarray | None, work_limit: float, gap: int) -> _Solved | None:
    """The exact model solved by CP-SAT on one worker within `work_limit` deterministic seconds (so the same
    model always gives the same plan, however busy the machine), stopping once within `gap` (in cost) of its
    bound. CP-SAT sees only the cost a plan can change (moves beyond the forced ones, team changes, load):
    the constants are added back to what it reports. The model goes to CP-SAT as the linear model the
    relaxation solves, through OR-Tools' model builder (built in arrays, not one Python object per term)."""
    from ortools.linear_solver.python import model_builder_helper as mbh

    m = model.builder(integer=True)
    if hint is not None:
        for i, value in enumerate(hint.tolist()):
            m.add_hint(i, float(value))
    solver = mbh.ModelSolverHelper("CP_SAT")
    solver.set_solver_specific_parameters(
        f"{_CP_SAT}max_deterministic_time: {float(work_limit)!r}\nabsolute_gap_limit: {int(gap)}\n"
    )
    solver.solve(m)
    if solver.status() not in (mbh.SolveStatus.OPTIMAL, mbh.SolveStatus.FEASIBLE):
        return None
    x = np.rint(np.asarray(solver.variable_values(), dtype=np.float64)).astype(np.int64)
    if not model.satisfied(x):
        return None
    return _Solved(
        x,
        int(model.cost @ x) + model.offset,
        int(math.ceil(solver.best_objective_bound() - 1e-6)) + model.offset,
        solver.status() == mbh.SolveStatus.OPTIMAL,
    )


def side_work_limit(side: Side, policy: Policy) -> float:
    """The exact model's work limit on this side (CP-SAT's deterministic seconds): the policy's allowance per
    1,000 movable cases, at least its floor and at most its ceiling."""
    al = policy.alignment
    grown = al.exact_work_per_1000_cases * (len(side.g_rows) + len(side.f_rows)) / 1000
    return min(max(al.exact_work_limit, grown), max(al.exact_work_ceiling, al.exact_work_limit))


def allowed_gap(cost: int, policy: Policy) -> int:
    """How far above its bound a plan of this cost may be and count as proven: the policy's share of its
    cost, and always less than one move (so no avoidable move hides in the gap, however large the side)."""
    al = policy.alignment
    return min(int(al.optimality_gap * cost), al.cost_move * policy.units_per_point - 1)


@dataclass(frozen=True)
class _Relaxed:
    """The exact model's relaxation solved: its bound (plan-cost scale), flows, values and reduced costs."""

    bound: int
    flows: Flows
    value: float  # the LP's objective, without the model's offset
    x: np.ndarray
    reduced: np.ndarray


def cut_relaxation(model: Exact, side: Side) -> _Relaxed | None:
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


def fixed_by_reduced_cost(model: Exact, relaxed: _Relaxed, cost: int) -> Exact:
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
