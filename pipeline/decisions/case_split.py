"""Case split: which side each case belongs to, under which rule, and its case class and workload weight."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pipeline.domain import CASE_CLASSES, CRC, DEFAULT_CRC, NPS
from pipeline.policy import Policy


def has_register(registers: pd.Series, codes: tuple[str, ...]) -> np.ndarray:
    """True where the ';'-separated register list holds any of `codes` (whole codes only)."""
    if not codes:
        return np.zeros(len(registers), dtype=bool)
    pattern = r"(?:^|;)\s*(?:" + "|".join(re.escape(c) for c in codes) + r")\s*(?:;|$)"
    return registers.str.contains(pattern, regex=True, na=False).to_numpy(dtype=bool)


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def split_cases(cases: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Add `side`, `rule`, `case_class`, `weight` (points) and `weight_units` (integer points x units_per_point)."""
    cs, cc = policy.case_split, policy.case_classes
    rosh = cases["rosh"]
    mappa = np.nan_to_num(_numbers(cases["mappa_category"]), nan=0).astype(int) >= cs.mappa_min_category
    rosh_high = rosh.isin(cs.rosh_high_levels).to_numpy(dtype=bool)
    conditions = {
        "MAPPA": lambda: mappa,
        "ROSH_HIGH": lambda: rosh_high,
        "PUBLIC_INTEREST": lambda: has_register(cases["registers"], cs.public_interest_registers),
        "DEPORT": lambda: cases["deport"].to_numpy(dtype=bool),
        "ROSH_UNASSESSED": lambda: rosh.isna().to_numpy(dtype=bool),
        "CUSTODY": lambda: (cases["case_type"] == "CUSTODY").to_numpy(dtype=bool, na_value=False),
    }
    rules = list(cs.active_rules())
    rule = np.select([conditions[r]() for r in rules], range(len(rules)), default=len(rules))
    nps = rule != len(rules)

    with np.errstate(invalid="ignore"):
        complex_ = (
            (_numbers(cases["rsr"]) >= cc.crc_complex.rsr_min)
            | (_numbers(cases["ogrs"]) >= cc.crc_complex.ogrs_min)
            | has_register(cases["registers"], cc.crc_complex.registers)
        )
    case_class = np.select(  # positions in CASE_CLASSES, the first condition that holds wins
        [nps & (mappa | rosh_high), nps, cases["upw_only"].to_numpy(dtype=bool), complex_],
        [CASE_CLASSES.index(k) for k in ("NPS_HIGH", "NPS_STANDARD", "CRC_UPW", "CRC_COMPLEX")],
        default=CASE_CLASSES.index("CRC_STANDARD"),
    )
    weight_units = np.array([policy.weight_units(k) for k in CASE_CLASSES], dtype="int64")[case_class]
    return cases.assign(
        side=_labels(nps.astype(int), [CRC, NPS]),
        rule=_labels(rule, [*rules, DEFAULT_CRC]),
        case_class=_labels(case_class, list(CASE_CLASSES)),
        weight_units=weight_units,
        weight=weight_units / policy.units_per_point,
    )


def _labels(codes: np.ndarray, names: list[str]) -> np.ndarray:
    return np.asarray(names, dtype=object)[codes]


def nps_points_share(split: pd.DataFrame, fallback: float) -> float:
    """NPS share of workload points among `split` cases (the fallback when there is no workload)."""
    units = split["weight_units"].to_numpy()
    total = int(units.sum())
    if total == 0:
        return fallback
    return int(units[split["side"].eq(NPS).to_numpy(dtype=bool, na_value=False)].sum()) / total
