"""The alignment's LP relaxation, solved as a min-cost flow in workload units, against the same LP in HiGHS."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.decisions.alignment import Officer, SideProblem, _Flows, _relaxation, _Side, _solve_model
from pipeline.policy import load_policy

P = load_policy()
AL = P.alignment
WEIGHT_UNITS = {k: P.weight_units(k) for k in P.case_classes.weights}
CLASSES = sorted(WEIGHT_UNITS)


def _officer(code: str, team: str, fte: float, classes: frozenset[str]) -> Officer:
    full = fte * P.case_classes.capacity_points_per_fte * P.units_per_point
    return Officer(code=code, side="CRC", team=team, grade="PO", role="OM",
                   cap_units=math.floor(full * AL.capacity_limit_pct / 100),
                   band_units=tuple(math.floor(full * b.from_pct / 100) for b in AL.spread_bands),
                   classes=classes)


def relaxation(prob: SideProblem) -> tuple[dict, float]:
    """The relaxation of a side given by name (numbered as the alignment numbers it), its flows by name."""
    side = _Side.of(prob, P)
    flows, _, objective = _relaxation(side, P)
    return flows.named(side), objective


@st.composite
def side_problems(draw) -> tuple[SideProblem, list[str]]:
    """A side with a few teams, officers of mixed capacity and classes, kept groups, forced cases and
    pinned load, often tight enough that the relaxation is fractional."""
    classes = draw(st.lists(st.sampled_from(CLASSES), min_size=1, max_size=3, unique=True))
    teams = ["T1", "T2", "T3"][:draw(st.integers(1, 3))]
    officers = [_officer(f"S{i}", draw(st.sampled_from(teams)), draw(st.sampled_from([0.1, 0.2, 0.5, 1.0])),
                         frozenset(draw(st.lists(st.sampled_from(classes), max_size=len(classes), unique=True))))
                for i in range(draw(st.integers(1, 6)))]
    prob = SideProblem(officers, {o.code: draw(st.integers(0, 400)) for o in officers if draw(st.booleans())})
    n = 0
    for o in officers:
        for k in o.classes:
            if draw(st.booleans()):
                prob.kept[(o.code, k, o.team)] = list(range(n, n + draw(st.integers(1, 40))))
                n = prob.kept[(o.code, k, o.team)][-1] + 1
    for k in classes:
        for t in teams:
            if draw(st.booleans()):
                prob.forced[(k, t)] = list(range(n, n + draw(st.integers(1, 40))))
                n = prob.forced[(k, t)][-1] + 1
    return prob, sorted({k for (_, k, _) in prob.kept} | {k for (k, _) in prob.forced})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side_problems())
def test_relaxation_flow_is_the_lp_optimum(problem):
    prob, classes = problem
    if not classes:
        return
    flows, objective = relaxation(prob)
    lp, lp_objective = _solve_model("CRC", prob, classes, P, WEIGHT_UNITS, "HIGHS", integer=False)
    assert objective == pytest.approx(lp_objective, rel=1e-9, abs=1e-6)
    assert {kind: set(arcs) for kind, arcs in flows.items()} == {kind: set(arcs) for kind, arcs in lp.items()}
    # The flows are a plan of the LP: every group keeps at most its cases, every pool balances.
    for g, idx in prob.kept.items():
        assert 0 <= flows["keep"][g] <= len(idx)
    for k in classes:
        sent = {t: sum(x for (kk, tt, _), x in flows["team"].items() if (kk, tt) == (k, t)) for (kk, t) in
                flows["export"] if kk == k}
        for t in sent:
            arriving = len(prob.forced.get((k, t), [])) + sum(
                len(idx) - flows["keep"][g] for g, idx in prob.kept.items() if g[1:] == (k, t))
            assert sent[t] + flows["export"][(k, t)] - flows["import"].get((k, t), 0) == pytest.approx(arriving)


def test_relaxation_solves_a_side_where_nobody_may_hold_the_class():
    """Found by the property test: GLOP gave up on this LP (ABNORMAL: the ineligible cost dwarfs the rest),
    which used to fail the trust's alignment; the flow solves it, at the LP's optimum."""
    officers = [_officer(f"S{i}", "T2" if i == 4 else "T1", 0.1, frozenset()) for i in range(5)]
    prob = SideProblem(officers, {"S2": 90})
    prob.forced[("CRC_COMPLEX", "T2")] = [0, 1, 2]
    flows, objective = relaxation(prob)
    assert objective == pytest.approx(_solve_model("CRC", prob, ["CRC_COMPLEX"], P, WEIGHT_UNITS, "HIGHS",
                                                   integer=False)[1])
    assert sum(flows["team"].values()) == 3
    assert flows["team"][("CRC_COMPLEX", "T1", "S2")] == 0  # S2 is full already


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(side_problems())
def test_a_side_numbered_and_named_again_is_the_same_side(problem):
    """The alignment solves sides by number and the exact model by name: the two forms say the same thing,
    and the exact model's flows, numbered and named again, are its flows."""
    prob, classes = problem
    side = _Side.of(prob, P)
    again = side.problem()
    assert sorted(again.officers) == sorted(prob.officers)
    assert {c: u for c, u in again.fixed_units.items() if u} == {c: u for c, u in prob.fixed_units.items() if u}
    assert dict(again.kept) == {g: list(idx) for g, idx in prob.kept.items()}
    assert dict(again.forced) == {g: list(idx) for g, idx in prob.forced.items()}
    if not classes:
        return
    flows, _ = _solve_model("CRC", prob, classes, P, WEIGHT_UNITS, "HIGHS")
    assert _Flows.of(flows, side).named(side) == flows
