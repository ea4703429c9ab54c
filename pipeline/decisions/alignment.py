"""Case alignment: every case ends with exactly one offender manager, with as few moves as the rules allow.

The problem is solved per trust and side as an integer program (OR-Tools CP-SAT) over *groups* of identical
cases rather than single cases. A group is every movable case with the same current OM, class and team; it
either stays (`keep`) or sends cases into its team's pool for that class. A team pool hands cases to OMs of
the team or, at a team-change cost, to the trust pool, which hands them to any eligible OM. The model so
grows with cases + OMs, never cases x OMs. Costs, highest first (docs/decisions.md): overflow over
capacity, a move, a team change, then convex load-spreading bands. Capacity is in integer workload units
(points x policy.units_per_point), so indivisible cases of unequal weight are modelled exactly.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow
from ortools.linear_solver import pywraplp

from pipeline.domain import (
    ALLOCATED, KEPT, MOVE_REASONS, MOVED_CAPACITY, MOVED_GRADE, MOVED_LEFT, MOVED_SIDE, RETAINED,
    RETENTION_HONOURED, RETENTION_NOT_NEEDED, RETENTION_OM_LEFT, RETENTION_REJECTED_MOVED, SIDES)
from pipeline.policy import Policy

HOLDING_STATUSES = ("ACCEPTED", "PENDING")


@dataclass(frozen=True)
class Officer:
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
    """How a side was solved: MIP (exact), LP_INTEGRAL (exact: the relaxation was whole) or LP_FLOW (LP-guided
    min-cost flow). `objective` is the plan's cost; `bound` the relaxation's, a lower bound on any plan."""
    side: str
    method: str
    objective: float | None
    bound: float


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
    active = staff["leaving_date"].isna() | (staff["leaving_date"] > as_of)
    out: dict[str, Officer] = {}
    for row in staff[active].itertuples(index=False):
        classes = frozenset(k for k in cc.weights if cc.eligible(k, row.grade, row.role))
        full = row.fte * units_per_fte
        out[row.staff_code] = Officer(
            code=row.staff_code, side=row.side, team=row.team_code, grade=row.grade, role=row.role,
            cap_units=math.floor(full * al.capacity_limit_pct / 100 + 1e-9),
            band_units=tuple(math.floor(full * b.from_pct / 100 + 1e-9) for b in al.spread_bands),
            classes=classes,
        )
    return out


def _solve_model(side: str, prob: SideProblem, classes: list[str], policy: Policy,
                 weight_units: dict[str, int], solver_name: str) -> tuple[dict, float]:
    """Build and solve one side's mixed-integer model; return the integer flows keyed by arc.

    Nodes: a group keeps some cases and sends the rest to its (class, team) pool; a pool feeds officers of
    its team eligible for the class, or exports to the class's trust pool (one team change per case), which
    imports into other teams' pools. Only when nobody on the side may hold a class does its trust pool feed
    every officer of the side, at the ineligible cost.
    """
    al = policy.alignment
    U = policy.units_per_point
    solver = pywraplp.Solver.CreateSolver(solver_name)
    if solver is None:
        raise RuntimeError(f"solver {solver_name!r} is not available in this OR-Tools build")
    solver.SuppressOutput()
    inf = solver.infinity()
    officers = sorted(prob.officers, key=lambda o: o.code)
    by_team: dict[str, list[Officer]] = defaultdict(list)
    for o in officers:
        by_team[o.team].append(o)
    total = sum(len(v) for v in prob.kept.values()) + sum(len(v) for v in prob.forced.values())
    objective = solver.Objective()

    keep = {}
    pool_out: dict[tuple[str, str], list] = defaultdict(list)  # terms leaving a pool (must equal inflow)
    pool_const: dict[tuple[str, str], int] = defaultdict(int)
    pool_keeps: dict[tuple[str, str], list] = defaultdict(list)
    for i, (g, crns) in enumerate(sorted(prob.kept.items())):
        v = solver.IntVar(0, len(crns), f"keep{i}")
        keep[g] = v
        objective.SetCoefficient(v, -al.cost_move * U)
        pool_const[(g[1], g[2])] += len(crns)
        pool_keeps[(g[1], g[2])].append(v)
    for key, idx in prob.forced.items():
        pool_const[key] += len(idx)

    holders = _holders(officers, classes)
    penalty = {k: _penalty(officers, k, policy) for k in classes}
    teams_of_class = {k: sorted({o.team for o in holders[k]}) for k in classes}
    pools = sorted(set(pool_const) | {(k, t) for k in classes for t in teams_of_class[k]})
    inflow: dict[str, list] = defaultdict(list)
    team_arc, export_arc, import_arc = {}, {}, {}
    for k, t in pools:
        for o in by_team.get(t, []):
            if o in holders[k]:
                v = solver.IntVar(0, total, f"y_{k}_{t}_{o.code}")
                objective.SetCoefficient(v, penalty[k])
                team_arc[(k, t, o.code)] = v
                inflow[o.code].append((k, v))
                pool_out[(k, t)].append((v, 1))
        x = solver.IntVar(0, total, f"x_{k}_{t}")
        export_arc[(k, t)] = x
        objective.SetCoefficient(x, al.cost_team_change * U)
        pool_out[(k, t)].append((x, 1))
        if t in teams_of_class[k]:
            m = solver.IntVar(0, total, f"m_{k}_{t}")
            import_arc[(k, t)] = m
            pool_out[(k, t)].append((m, -1))
    for key in pools:
        # outflow - imports + keeps = cases arriving from groups and forced cases
        row = solver.Constraint(pool_const[key], pool_const[key])
        for v, c in pool_out[key]:
            row.SetCoefficient(v, c)
        for v in pool_keeps[key]:
            row.SetCoefficient(v, 1)
    for k in classes:
        row = solver.Constraint(0, 0)
        for (kk, _), x in export_arc.items():
            if kk == k:
                row.SetCoefficient(x, 1)
        for (kk, _), m in import_arc.items():
            if kk == k:
                row.SetCoefficient(m, -1)

    kept_by_om: dict[str, list] = defaultdict(list)
    for (om, k, _t), v in keep.items():
        kept_by_om[om].append((k, v))
    for o in officers:
        terms = kept_by_om.get(o.code, []) + inflow.get(o.code, [])
        if not terms:
            continue
        fixed = prob.fixed_units.get(o.code, 0)
        for cost, threshold in [(al.cost_overflow_per_point, o.cap_units)] + [
                (b.cost, th) for b, th in zip(al.spread_bands, o.band_units)]:
            # excess >= load - threshold, excess >= 0, priced per unit of load above the threshold
            e = solver.NumVar(0, inf, f"e_{o.code}_{threshold}")
            objective.SetCoefficient(e, cost)
            row = solver.Constraint(fixed - threshold, inf)
            row.SetCoefficient(e, 1)
            for k, v in terms:
                row.SetCoefficient(v, row.GetCoefficient(v) - weight_units[k])
    objective.SetMinimization()
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(params.RELATIVE_MIP_GAP, 0.0)
    status = solver.Solve(params)
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        raise RuntimeError(f"case alignment found no solution for side {side} (solver status {status})")

    def val(v) -> float:
        x = v.solution_value()
        return int(round(x)) if abs(x - round(x)) < 1e-6 else x

    flows = {
        "keep": {g: val(v) for g, v in keep.items()},
        "team": {a: val(v) for a, v in team_arc.items()},
        "export": {a: val(v) for a, v in export_arc.items()},
        "import": {a: val(v) for a, v in import_arc.items()},
    }
    return flows, objective.Value()


def _holders(officers: list[Officer], classes: list[str]) -> dict[str, list[Officer]]:
    """Who may be given each class: the eligible officers, or all of the side when none is eligible."""
    return {k: [o for o in officers if k in o.classes] or list(officers) for k in classes}


def _penalty(officers: list[Officer], k: str, policy: Policy) -> int:
    """Cost of each case of class k given to one of its holders: nothing, unless none is eligible."""
    eligible = any(k in o.classes for o in officers)
    return 0 if eligible else policy.alignment.cost_ineligible * policy.units_per_point


def _is_integral(flows: dict) -> bool:
    return all(isinstance(x, int) for arcs in flows.values() for x in arcs.values())


def _class_inflow(flows: dict, officers: dict[str, Officer]) -> dict[tuple[str, str], float]:
    """Cases of each class each officer ends with, kept or received, in a (possibly fractional) solution."""
    got: dict[tuple[str, str], float] = defaultdict(float)
    for (om, k, _t), x in flows["keep"].items():
        got[(om, k)] += x
    for (k, _t, om), x in flows["team"].items():
        got[(om, k)] += x
    return got


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
    officers = {o.code: o for o in prob.officers}
    share = _class_inflow(lp, officers)
    flow = SimpleMinCostFlow()
    nodes: dict[tuple, int] = {}

    def node(key: tuple) -> int:
        if key not in nodes:
            nodes[key] = len(nodes)
        return nodes[key]

    sink = node(("sink",))
    arcs: dict[tuple, int] = {}
    big = sum(len(v) for v in prob.kept.values()) + sum(len(v) for v in prob.forced.values())
    supply: dict[int, int] = defaultdict(int)
    for (om, k, t), idx in sorted(prob.kept.items()):
        g = node(("group", om, k, t))
        supply[g] += len(idx)
        arcs[("keep", om, k, t)] = flow.add_arc_with_capacity_and_unit_cost(g, node(("om", om, k)), len(idx), 0)
        flow.add_arc_with_capacity_and_unit_cost(g, node(("pool", k, t)), len(idx), al.cost_move * U)
    for (k, t), idx in sorted(prob.forced.items()):
        supply[node(("pool", k, t))] += len(idx)
    penalty = {k: _penalty(prob.officers, k, policy) for k in classes}
    for (k, t, om) in sorted(lp["team"]):
        arcs[("team", k, t, om)] = flow.add_arc_with_capacity_and_unit_cost(
            node(("pool", k, t)), node(("om", om, k)), big, penalty[k])
    for (k, t) in sorted(lp["export"]):
        arcs[("export", k, t)] = flow.add_arc_with_capacity_and_unit_cost(
            node(("pool", k, t)), node(("trust", k)), big, al.cost_team_change * U)
    for (k, t) in sorted(lp["import"]):
        arcs[("import", k, t)] = flow.add_arc_with_capacity_and_unit_cost(
            node(("trust", k)), node(("pool", k, t)), big, 0)
    whole = {key: math.floor(x + 1e-6) for key, x in share.items()}
    left: dict[str, int] = {code: o.cap_units - prob.fixed_units.get(code, 0) for code, o in officers.items()}
    for (om, k), n in whole.items():
        left[om] -= n * weight_units[k]
    for (om, k) in sorted({key[1:] for key in nodes if key[0] == "om"}):
        room = whole.get((om, k), 0) + max(0, left[om]) // weight_units[k]
        o_node = nodes[("om", om, k)]
        if room:
            flow.add_arc_with_capacity_and_unit_cost(o_node, sink, room, 0)
        flow.add_arc_with_capacity_and_unit_cost(
            o_node, sink, big, al.cost_overflow_per_point * weight_units[k])
    total = sum(supply.values())
    for n, amount in supply.items():
        flow.set_node_supply(n, amount)
    flow.set_node_supply(sink, -total)
    status = flow.solve()
    if status != SimpleMinCostFlow.OPTIMAL:
        raise RuntimeError(f"case alignment flow repair failed (status {status})")
    out: dict = {"keep": {}, "team": {}, "export": {}, "import": {}}
    for key, a in arcs.items():
        out[key[0]][key[1:]] = int(flow.flow(a))
    return out


def plan_cost(loads: dict[str, int], officers: dict[str, Officer], moves: int, team_changes: int,
              ineligible: int, policy: Policy) -> int:
    """The alignment objective of a whole plan, in the units the solver minimises (cost x units_per_point).

    Independent of how the plan was found, so tests can price brute-force plans with it.
    """
    al = policy.alignment
    U = policy.units_per_point
    cost = (al.cost_move * moves + al.cost_team_change * team_changes + al.cost_ineligible * ineligible) * U
    for code, load in loads.items():
        o = officers[code]
        cost += al.cost_overflow_per_point * max(0, load - o.cap_units)
        cost += sum(b.cost * max(0, load - th) for b, th in zip(al.spread_bands, o.band_units))
    return cost


def _solve_side(side: str, prob: SideProblem, classes: list[str], policy: Policy,
                weight_units: dict[str, int]) -> tuple[dict, SolveReport]:
    """Exact MIP for small sides; otherwise LP relaxation, then min-cost flow repair when it is fractional."""
    al = policy.alignment
    size = sum(len(v) for v in prob.kept.values()) + sum(len(v) for v in prob.forced.values())
    if size <= al.exact_max_cases:
        flows, obj = _solve_model(side, prob, classes, policy, weight_units, al.solver)
        return flows, SolveReport(side, "MIP", obj, obj)
    lp, bound = _solve_model(side, prob, classes, policy, weight_units, "GLOP")
    if _is_integral(lp):
        return lp, SolveReport(side, "LP_INTEGRAL", bound, bound)
    return _flow_repair(prob, classes, policy, weight_units, lp), SolveReport(side, "LP_FLOW", None, bound)


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
    cases = split_cases.sort_values("crn", kind="stable").reset_index(drop=True)
    officers = _officers(staff_split, policy, as_of)
    weight_units = {k: policy.weight_units(k) for k in policy.case_classes.weights}
    current = effective_current_om(cases, previous_plan).to_numpy(dtype=object)
    held = set(retention.loc[retention["status"].isin(HOLDING_STATUSES), "crn"])

    n = len(cases)
    om = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    forced_reason = np.full(n, None, dtype=object)
    problems = {s: SideProblem([o for o in officers.values() if o.side == s], defaultdict(int)) for s in SIDES}
    crns = cases["crn"].to_numpy(dtype=object)
    sides = cases["side"].to_numpy(dtype=object)
    klass = cases["case_class"].to_numpy(dtype=object)
    teams = cases["team_code"].to_numpy(dtype=object)
    wunits = cases["weight_units"].to_numpy()
    pinned: set[str] = set()
    for i in range(n):
        cur = current[i]
        officer = officers.get(cur) if isinstance(cur, str) else None
        allowed = officer is not None and officer.side == sides[i] and klass[i] in officer.classes
        if officer is not None and crns[i] in held:
            pinned.add(crns[i])
            om[i], reason[i] = cur, (KEPT if allowed else RETAINED)
            problems[officer.side].fixed_units[cur] += int(wunits[i])
            continue
        if allowed:
            problems[sides[i]].kept[(cur, klass[i], teams[i])].append(i)
            continue
        if not isinstance(cur, str):
            forced_reason[i] = ALLOCATED
        elif officer is None:
            forced_reason[i] = MOVED_LEFT
        elif officer.side != sides[i]:
            forced_reason[i] = MOVED_SIDE
        else:
            forced_reason[i] = MOVED_GRADE
        problems[sides[i]].forced[(klass[i], teams[i])].append(i)

    reports = []
    for side in SIDES:
        prob = problems[side]
        if not prob.kept and not prob.forced:
            continue
        classes = sorted({k for (_, k, _) in prob.kept} | {k for (k, _) in prob.forced})
        if not prob.officers:
            # Nobody on this side can hold a case: the cases stay unassigned and the report says so.
            for idx in prob.forced.values():
                reason[idx] = forced_reason[idx]
            reports.append(SolveReport(side, "NO_STAFF", None, 0.0))
            continue
        flows, report = _solve_side(side, prob, classes, policy, weight_units)
        _deal(prob, flows, current, om, reason, forced_reason)
        # The model prices kept cases negatively; shift its value onto the plan_cost scale.
        movable = sum(len(v) for v in prob.kept.values())
        forced_moves = sum(1 for idx in prob.forced.values() for i in idx if forced_reason[i] != ALLOCATED)
        shift = policy.alignment.cost_move * policy.units_per_point * (movable + forced_moves)
        reports.append(SolveReport(side, report.method, None, report.bound + shift))

    out = cases[["crn", "team_code", "side", "rule", "case_class", "weight_units"]].copy()
    out["current_om"] = pd.Series(current, dtype="object").where(pd.notna(current), None)
    out["om"] = om
    out["reason"] = reason
    out["moved"] = out["reason"].isin(MOVE_REASONS)
    out["eligible_om"] = [
        isinstance(o, str) and officers[o].side == s and k in officers[o].classes
        for o, s, k in zip(out["om"], out["side"], out["case_class"])
    ]
    out["team_change"] = [
        isinstance(o, str) and (r in MOVE_REASONS or r == ALLOCATED) and officers[o].team != t
        for o, r, t in zip(out["om"], out["reason"], out["team_code"])
    ]
    priced = [SolveReport(r.side, r.method, _side_cost(out, officers, r.side, policy, pinned), r.bound)
              for r in reports]
    return out, priced


def _side_cost(out: pd.DataFrame, officers: dict[str, Officer], side: str, policy: Policy,
               pinned: set[str]) -> int:
    """plan_cost of one side of a finished alignment (pinned cases load their officer but cost nothing)."""
    side_officers = {c: o for c, o in officers.items() if o.side == side}
    loads = out[out["om"].isin(list(side_officers))].groupby("om")["weight_units"].sum()
    mine = out[(out["side"] == side) & ~out["crn"].isin(pinned)]
    return plan_cost(
        {c: int(loads.get(c, 0)) for c in side_officers}, side_officers,
        moves=int(mine["moved"].sum()), team_changes=int(mine["team_change"].sum()),
        ineligible=int((mine["om"].notna() & ~mine["eligible_om"]).sum()), policy=policy)


def _deal(prob: SideProblem, flows: dict, current: np.ndarray,
          om: np.ndarray, reason: np.ndarray, forced_reason: np.ndarray) -> None:
    """Turn integer flows into per-case assignments, deterministically (cases in crn order, OMs in code order)."""
    pools: dict[tuple[str, str], list[int]] = defaultdict(list)
    for (cur, k, t), idx in sorted(prob.kept.items()):
        kept = flows["keep"][(cur, k, t)]
        for i in idx[:kept]:
            om[i], reason[i] = cur, KEPT
        for i in idx[kept:]:
            forced_reason[i] = MOVED_CAPACITY
            pools[(k, t)].append(i)
    for key, idx in prob.forced.items():
        pools[key].extend(idx)

    def give(i: int, code: str) -> None:
        om[i] = code
        back_home = code == current[i] and forced_reason[i] == MOVED_CAPACITY
        reason[i] = KEPT if back_home else forced_reason[i]

    for key in pools:
        pools[key].sort()
    trust_pool: dict[str, list[int]] = defaultdict(list)
    for (k, t), count in sorted(flows["export"].items()):
        if count:
            idx = pools[(k, t)]
            trust_pool[k].extend(idx[len(idx) - count:])
            del idx[len(idx) - count:]
    for k in trust_pool:
        trust_pool[k].sort()
    taken: dict[str, int] = defaultdict(int)
    for (k, t), count in sorted(flows["import"].items()):
        if count:
            pools[(k, t)].extend(trust_pool[k][taken[k]:taken[k] + count])
            taken[k] += count
    arcs_of: dict[tuple, list[tuple[str, int]]] = defaultdict(list)
    for (k, t, code), count in sorted(flows["team"].items()):
        arcs_of[(k, t)].append((code, count))
    for key, idx in sorted(pools.items()):
        pos = 0
        for code, count in arcs_of.get(key, []):
            for i in idx[pos:pos + count]:
                give(i, code)
            pos += count


def caseload(aligned: pd.DataFrame, staff_split: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Per offender manager: cases, workload points, capacity and utilisation after alignment."""
    U = policy.units_per_point
    held = aligned[aligned["om"].notna()]
    load = held.groupby("om").agg(cases=("crn", "size"), units=("weight_units", "sum"))
    holders = staff_split[staff_split["staff_code"].isin(load.index)
                          | staff_split["role"].isin(_holding_roles(policy))]
    out = holders[["staff_code", "side", "unit", "grade", "role", "team_code", "fte"]].copy()
    out = out.merge(load, left_on="staff_code", right_index=True, how="left")
    out["cases"] = out["cases"].fillna(0).astype("int64")
    out["points"] = out["units"].fillna(0) / U
    out["capacity_points"] = out["fte"] * policy.case_classes.capacity_points_per_fte
    out["utilisation"] = out["points"] / out["capacity_points"]
    out["over_capacity"] = out["utilisation"] > policy.alignment.capacity_limit_pct / 100 + 1e-9
    return out.drop(columns="units").sort_values("staff_code").reset_index(drop=True)


def _holding_roles(policy: Policy) -> set[str]:
    return {r for rules in policy.case_classes.eligibility.values() for e in rules for r in e.roles if r != "*"}


def retention_decisions(retention: pd.DataFrame, aligned: pd.DataFrame) -> pd.DataFrame:
    """Each request as made, with its status, explanation and what happened to the case."""
    out = retention.copy()
    by_crn = aligned.set_index("crn")
    cur = out["crn"].map(by_crn["current_om"])
    final = out["crn"].map(by_crn["om"])
    out["case_om"] = final
    out["case_reason"] = out["crn"].map(by_crn["reason"])
    holding = out["status"].isin(HOLDING_STATUSES)
    stayed = final.notna() & (final == cur)
    out["outcome"] = np.select(
        [out["case_reason"].isna(), holding & stayed, holding, stayed],
        ["CASE_NOT_FOUND", RETENTION_HONOURED, RETENTION_OM_LEFT, RETENTION_NOT_NEEDED],
        default=RETENTION_REJECTED_MOVED,
    )
    return out.sort_values(["crn", "requested_by"], kind="stable").reset_index(drop=True)
