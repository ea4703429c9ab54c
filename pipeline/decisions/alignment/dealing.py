"""Turning a side's flows into cases and officers, and improving the plan by exchanges between officers."""

from __future__ import annotations

import numpy as np

from pipeline.decisions.alignment.exact import Exact
from pipeline.decisions.alignment.exchange import Neighbourhood, improve
from pipeline.decisions.alignment.pricing import load_rates
from pipeline.decisions.alignment.relaxation import LOW_BITS, POOL_NODE, Flows, node_key
from pipeline.decisions.alignment.roster import CaseArrays
from pipeline.decisions.alignment.sides import REASON_KEPT, REASON_MOVED_CAPACITY, Side
from pipeline.policy import Policy


def deal(
    side: Side, flows: Flows, current: np.ndarray, om: np.ndarray, reason: np.ndarray, forced_reason: np.ndarray
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
    reason[rows[stays]] = REASON_KEPT
    forced_reason[rows[~stays]] = REASON_MOVED_CAPACITY

    g_pool, f_pool = node_key(POOL_NODE, side.g_k, side.g_t), node_key(POOL_NODE, side.f_k, side.f_t)
    flow_pools = node_key(POOL_NODE, flows.pool_k, flows.pool_t)
    keys = np.unique(np.concatenate([g_pool, f_pool, flow_pools, node_key(POOL_NODE, flows.team_k, flows.team_t)]))
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
    # A pool that both exports and imports passes cases through the trust pool: free when a team change costs
    # nothing, so the flow may do it. Netted, its officers are given as many cases, and each pool exports at
    # most what it holds.
    through = np.minimum(flows.export, flows.imports)
    exports[at], imports[at] = flows.export - through, flows.imports - through
    leaves = np.arange(len(rows)) - (np.cumsum(size) - size)[of] >= (size - exports)[of]
    trust_pool = np.lexsort((rows[leaves], (keys >> 24 & LOW_BITS)[of[leaves]]))  # by class, then case
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
    reason[given] = np.where(officers == current[given], REASON_KEPT, forced_reason[given])


def exchange_plan(
    side: Side,
    c: CaseArrays,
    om: np.ndarray,
    reason: np.ndarray,
    forced_reason: np.ndarray,
    model: Exact,
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
        rates=load_rates(policy),
        team_change=al.cost_team_change * U,
    )
    holder = improve(nb, side.local(om[rows]), al.exchange_rounds)
    om[rows] = side.officers[holder]
    at_home = holder == home
    forced_reason[rows[kept & ~at_home]] = REASON_MOVED_CAPACITY
    reason[rows] = np.where(at_home, REASON_KEPT, forced_reason[rows])
    return model.of_plan(side, holder, c.k_code[rows], c.t_code[rows])
