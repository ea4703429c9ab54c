"""The alignment's models, checked against independent solvers on the same numbers: the LP relaxation
(solved as a min-cost flow in workload units) against HiGHS' LP optimum of the exact model, and the exact
model's CP-SAT optimum against HiGHS' MIP optimum."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from ortools.linear_solver.python import model_builder_helper as mbh

from pipeline.decisions.alignment.exact import Exact, cut_relaxation, exact_model, solve_exact
from pipeline.decisions.alignment.relaxation import flow_repair, lp_relaxation
from pipeline.decisions.alignment.roster import CaseArrays, Roster
from pipeline.decisions.alignment.sides import classify
from pipeline.decisions.case_split import split_cases
from pipeline.decisions.staff_split import split_staff
from pipeline.policy import load_policy
from tests.builders import AS_OF, appeals
from tests.decisions.test_alignment_properties import small_trust

P = load_policy()
SOME = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sides(trust):
    """The trust's sides as the alignment numbers them (nobody retained: every case is free)."""
    s, c, r = trust
    split = split_cases(c, P).sort_values("crn", kind="stable").reset_index(drop=True)
    assignment = split_staff(s, split, appeals(), P, "N05", "C15")
    roster = Roster.of_staff(assignment, P, AS_OF, pa.array(split["team_code"]))
    arrays = CaseArrays.of(split, split["om_staff_code"], roster)
    problems, *_ = classify(split["crn"], arrays, roster, pd.Series([], dtype="str"))
    return [p for p in problems.values() if not p.empty and len(p.officers)]


def highs(model: Exact, integer: bool) -> float:
    """The model's optimum by HiGHS (through OR-Tools' model builder), as an LP or a MIP."""
    m = model.builder(integer)
    m.set_objective_offset(float(model.offset))
    solver = mbh.ModelSolverHelper("HIGHS")
    solver.set_solver_specific_parameters("output_flag=false\nmip_rel_gap=0\nmip_abs_gap=0")
    solver.solve(m)
    assert solver.status() == mbh.SolveStatus.OPTIMAL
    return solver.objective_value()


@SOME
@given(small_trust())
def test_relaxation_flow_is_the_lp_optimum_of_the_exact_model(trust):
    for side in sides(trust):
        flows, whole, cost = lp_relaxation(side, P)
        model = exact_model(side, P, cuts=False)
        assert cost + model.offset - model.penalties == pytest.approx(highs(model, integer=False), rel=1e-9, abs=1e-3)
        if whole:
            # A whole relaxation is a plan of the exact model, at the model's price.
            x = model.values(flows.whole(), side)
            assert int(model.cost @ x) + model.offset == pytest.approx(cost + model.offset - model.penalties, abs=1e-3)


@SOME
@given(small_trust())
def test_exact_model_optimum_agrees_between_cp_sat_and_highs(trust):
    for side in sides(trust):
        model = exact_model(side, P)
        lp, _, _ = lp_relaxation(side, P)
        hint = model.values(flow_repair(side, P, lp), side)
        solved = solve_exact(model, hint, work_limit=60.0, gap=0)
        assert solved.optimal
        assert solved.objective == round(highs(model, integer=True))
        # The shedding cuts change no whole plan: the model without them has the same optimum; they only
        # raise the relaxation, never above the optimum.
        plain = exact_model(side, P, cuts=False)
        assert round(highs(plain, integer=True)) == solved.objective
        lp = highs(plain, integer=False)
        assert lp - 1e-6 * abs(lp) - 2 <= cut_relaxation(model, side).bound <= solved.objective
        assert solved.bound == solved.objective
        # The plan the solution gives is priced by the model exactly as the solution says.
        assert int(model.cost @ model.values(model.flows(solved.x, side), side)) + model.offset == solved.objective
        # The flow repair's plan, the hint, is a plan too: never cheaper than the optimum.
        assert int(model.cost @ hint) + model.offset >= solved.objective
        assert np.all(hint >= model.lower) and np.all(hint <= model.upper)
