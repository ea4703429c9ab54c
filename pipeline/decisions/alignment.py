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
from ortools.sat.python import cp_model

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
    side: str
    status: str
    objective: int
    variables: int


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


def _solve_side(side: str, prob: SideProblem, classes: list[str], policy: Policy,
                weight_units: dict[str, int]) -> tuple[dict, SolveReport]:
    """Build and solve one side's model; return the integer flows keyed by arc."""
    al = policy.alignment
    U = policy.units_per_point
    m = cp_model.CpModel()
    officers = sorted(prob.officers, key=lambda o: o.code)
    by_team: dict[str, list[Officer]] = defaultdict(list)
    for o in officers:
        by_team[o.team].append(o)
    total = sum(len(v) for v in prob.kept.values()) + sum(len(v) for v in prob.forced.values())

    keep = {g: m.new_int_var(0, len(crns), f"keep{i}") for i, (g, crns) in enumerate(sorted(prob.kept.items()))}
    pool_demand: dict[tuple[str, str], list] = defaultdict(list)
    for (om, k, t), crns in sorted(prob.kept.items()):
        pool_demand[(k, t)].append(len(crns) - keep[(om, k, t)])
    for (k, t), idx in sorted(prob.forced.items()):
        pool_demand[(k, t)].append(len(idx))

    eligible = {k: [o for o in officers if k in o.classes] for k in classes}
    # Nobody on this side may hold class k: any officer of the side may, at the ineligible cost.
    fallback = {k: (officers if not eligible[k] else []) for k in classes}
    inflow: dict[str, list] = defaultdict(list)
    team_arc, trust_arc, direct_arc, fall_arc = {}, {}, {}, {}
    objective = []
    for (k, t), parts in sorted(pool_demand.items()):
        demand = sum(parts)
        arcs = []
        for o in by_team.get(t, []):
            if k in o.classes:
                v = m.new_int_var(0, total, f"y_{k}_{t}_{o.code}")
                team_arc[(k, t, o.code)] = v
                inflow[o.code].append((k, v))
                arcs.append(v)
        z = m.new_int_var(0, total, f"z_{k}_{t}")
        trust_arc[(k, t)] = z
        objective.append(al.cost_team_change * U * z)
        m.add(sum(arcs) + z == demand)
    for k in classes:
        zs = [v for (kk, _), v in trust_arc.items() if kk == k]
        if not zs:
            continue
        outs = []
        for o in eligible[k]:
            v = m.new_int_var(0, total, f"u_{k}_{o.code}")
            direct_arc[(k, o.code)] = v
            inflow[o.code].append((k, v))
            outs.append(v)
        for o in fallback[k]:
            v = m.new_int_var(0, total, f"f_{k}_{o.code}")
            fall_arc[(k, o.code)] = v
            inflow[o.code].append((k, v))
            objective.append(al.cost_ineligible * U * v)
            outs.append(v)
        m.add(sum(outs) == sum(zs))

    kept_by_om: dict[str, list] = defaultdict(list)
    for (om, k, _t), v in keep.items():
        kept_by_om[om].append((k, v))
        objective.append(-al.cost_move * U * v)
    max_units = sum(weight_units[k] for k in classes) * total + sum(prob.fixed_units.values()) + 1
    for o in officers:
        terms = [weight_units[k] * v for k, v in kept_by_om.get(o.code, []) + inflow.get(o.code, [])]
        if not terms:
            continue
        load = prob.fixed_units.get(o.code, 0) + sum(terms)
        over = m.new_int_var(0, max_units, f"over_{o.code}")
        m.add(over >= load - o.cap_units)
        objective.append(al.cost_overflow_per_point * over)
        for band, threshold in zip(al.spread_bands, o.band_units):
            e = m.new_int_var(0, max_units, f"band_{o.code}_{threshold}")
            m.add(e >= load - threshold)
            objective.append(band.cost * e)
    for g, v in keep.items():
        m.add_hint(v, len(prob.kept[g]))
    m.minimize(sum(objective))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.max_deterministic_time = al.max_deterministic_time
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise RuntimeError(f"case alignment found no solution for side {side}: {solver.status_name(status)}")
    val = solver.value
    flows = {
        "keep": {g: val(v) for g, v in keep.items()},
        "team": {a: val(v) for a, v in team_arc.items()},
        "trust": {a: val(v) for a, v in trust_arc.items()},
        "direct": {a: val(v) for a, v in direct_arc.items()},
        "fallback": {a: val(v) for a, v in fall_arc.items()},
    }
    report = SolveReport(side, solver.status_name(status), int(solver.objective_value), len(m.proto.variables))
    return flows, report


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
    for i in range(n):
        cur = current[i]
        officer = officers.get(cur) if isinstance(cur, str) else None
        allowed = officer is not None and officer.side == sides[i] and klass[i] in officer.classes
        if officer is not None and crns[i] in held:
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
            reports.append(SolveReport(side, "NO_STAFF", 0, 0))
            continue
        flows, report = _solve_side(side, prob, classes, policy, weight_units)
        reports.append(report)
        _deal(prob, flows, classes, current, om, reason, forced_reason)

    out = cases[["crn", "team_code", "side", "rule", "case_class", "weight_units"]].copy()
    out["current_om"] = pd.Series(current, dtype="object").where(pd.notna(current), None)
    out["om"] = om
    out["reason"] = reason
    out["moved"] = out["reason"].isin(MOVE_REASONS)
    out["eligible_om"] = [
        (o in officers and (officers[o].side == s and k in officers[o].classes)) if o else False
        for o, s, k in zip(out["om"], out["side"], out["case_class"])
    ]
    return out, reports


def _deal(prob: SideProblem, flows: dict, classes: list[str], current: np.ndarray,
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
        reason[i] = KEPT if code == current[i] else forced_reason[i]

    trust_pool: dict[str, list[int]] = defaultdict(list)
    for (k, t), idx in sorted(pools.items()):
        idx.sort()
        pos = 0
        for (kk, tt, code), count in sorted(flows["team"].items()):
            if kk == k and tt == t:
                for i in idx[pos:pos + count]:
                    give(i, code)
                pos += count
        trust_pool[k].extend(idx[pos:])
    for k in classes:
        idx = sorted(trust_pool.get(k, []))
        pos = 0
        for arcs in (flows["direct"], flows["fallback"]):
            for (kk, code), count in sorted(arcs.items()):
                if kk == k:
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
