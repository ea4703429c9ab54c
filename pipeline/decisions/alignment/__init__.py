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

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.decisions.alignment.dealing import deal, exchange_plan
from pipeline.decisions.alignment.exact import (
    allowed_gap,
    cut_relaxation,
    exact_model,
    fixed_by_reduced_cost,
    side_work_limit,
    solve_exact,
)
from pipeline.decisions.alignment.pricing import Plan, side_cost
from pipeline.decisions.alignment.relaxation import flow_repair, lp_relaxation
from pipeline.decisions.alignment.roster import CaseArrays, Roster
from pipeline.decisions.alignment.sides import (
    MOVE_CODES,
    REASON_ALLOCATED,
    REASONS,
    Side,
    borrowed_side,
    classify,
    standing_cases,
)
from pipeline.decisions.night import prior_plan
from pipeline.decisions.retention import HOLDING_STATUSES
from pipeline.domain import LP_FLOW, LP_INTEGRAL, MIP, NO_STAFF, OTHER_SIDE, SIDES
from pipeline.policy import Policy


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


def _solve_side(
    name: str, side: Side, c: CaseArrays, om: np.ndarray, reason: np.ndarray, forced_reason: np.ndarray, policy: Policy
) -> SolveReport:
    """Plan the side (writing each case's officer and reason into `om` and `reason`) and say how sure the
    plan is (docs/decisions.md, "Solving").

    The LP relaxation first, solved exactly as a min-cost flow: its cost bounds every plan, and a whole
    optimum is the plan, proven. Otherwise the exact model's relaxation with the shedding cuts raises the
    bound, and its flows, repaired to whole cases and improved by the exchange neighbourhood, are the first
    plan. Unless that is within the allowed gap of the bound, the exact model, hinted with the plan and
    solved within the policy's work limit, finds a better plan or raises the bound."""
    lp, whole, lp_cost = lp_relaxation(side, policy)
    model = exact_model(side, policy)
    bound = int(math.ceil(lp_cost - 1e-6)) + model.offset - model.penalties
    if whole:
        deal(side, lp.whole(), c.row, om, reason, forced_reason)
        return SolveReport(name, LP_INTEGRAL, None, bound, True)
    tighter = cut_relaxation(model, side)
    if tighter is not None:
        bound, lp = max(bound, tighter.bound), tighter.flows
    deal(side, flow_repair(side, policy, lp), c.row, om, reason, forced_reason)
    x = exchange_plan(side, c, om, reason, forced_reason, model, policy)
    cost = int(model.cost @ x) + model.offset
    if cost - bound <= allowed_gap(cost, policy) or side_work_limit(side, policy) <= 0:
        return SolveReport(name, LP_FLOW, None, bound, cost - bound <= allowed_gap(cost, policy))
    narrow = fixed_by_reduced_cost(model, tighter, cost) if tighter is not None else model
    if not (np.all(x >= narrow.lower) and np.all(x <= narrow.upper)):
        narrow = model  # the relaxation's tolerances disagree with the plan: search the whole model
    solved = solve_exact(narrow, x, side_work_limit(side, policy), allowed_gap(cost, policy))
    if solved is None:
        return SolveReport(name, LP_FLOW, None, bound, False)
    if solved.objective < cost:
        deal(side, model.flows(solved.x, side), c.row, om, reason, forced_reason)
        if not solved.optimal:
            exchange_plan(side, c, om, reason, forced_reason, model, policy)
    return SolveReport(name, MIP, None, max(bound, solved.bound), solved.optimal)


def _anyone_over(side: Side, c: CaseArrays, om: np.ndarray) -> bool:
    """Whether the plan `om` leaves any of the side's officers over capacity."""
    rows = np.concatenate([side.g_rows, side.f_rows])
    at = side.local(om[rows])
    mine = (at < len(side.officers)) & (side.officers[np.minimum(at, len(side.officers) - 1)] == om[rows])
    load = side.fixed + np.bincount(at[mine], weights=c.wunits[rows[mine]], minlength=len(side.officers))
    return bool((load > side.limits[:, 0]).any())


def _overload_unavoidable(side: Side, policy: Policy) -> bool:
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
    flows, _, _ = lp_relaxation(side, alone)
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
    standing = standing_cases(cases, prior, roster, held)
    # A standing plan is solved as if its planned OM held the case already, and pinned there.
    current_om = extract_om.astype(object).where(~standing, prior["planned_om"].to_numpy(dtype=object))
    c = CaseArrays.of(cases, current_om, roster)
    problems, om, reason, forced_reason, pinned = classify(cases["crn"], c, roster, held, standing)

    reports = []
    # Staffed sides first: a side with nobody on it borrows the other side's officers as they are then loaded.
    for side in sorted(SIDES, key=lambda s: not len(problems[s].officers)):
        prob, method = problems[side], None
        if prob.empty:
            continue
        if not len(prob.officers):
            prob, method = borrowed_side(prob, side, om, c.wunits), OTHER_SIDE
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
    moved = np.isin(reason, MOVE_CODES)
    plan = Plan(
        row=om,
        on_side=c.on_side,
        wunits=c.wunits,
        moved=moved,
        eligible=held_by & roster.same_side(om, c.on_side) & ((roster.classes[om] & c.bits) != 0),
        team_change=held_by & (moved | (reason == REASON_ALLOCATED)) & (roster.team[om] != c.t_code),
        free=~pinned,
    )
    out = cases[["crn", "team_code", "side", "rule", "case_class", "weight_units"]].copy()
    out["current_om"] = extract_om.astype("str")
    out["om"] = roster.codes.take(pa.array(np.where(held_by, om, 0), mask=~held_by)).to_pandas()
    out["reason"] = np.asarray(list(REASONS), dtype=object)[reason.astype(np.int64)]
    out["moved"] = moved
    out["eligible_om"] = plan.eligible
    out["team_change"] = plan.team_change
    planned = moved | (reason == REASON_ALLOCATED)
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
        cost = side_cost(plan, roster, r.side, policy, borrowed)
        bound = cost if r.method == NO_STAFF else r.bound
        within = cost - bound <= allowed_gap(cost, policy)
        priced.append(replace(r, objective=cost, bound=bound, proven=r.proven or within))
    return out, priced
