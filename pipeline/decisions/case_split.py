"""Case split: which side each case belongs to, under which rule, and its case class and workload weight."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pipeline.domain import CRC, DEFAULT_CRC, NPS
from pipeline.policy import Policy


def has_register(registers: pd.Series, codes: tuple[str, ...]) -> pd.Series:
    """True where the ';'-separated register list holds any of `codes` (whole codes only)."""
    if not codes:
        return pd.Series(False, index=registers.index)
    pattern = r"(?:^|;)\s*(?:" + "|".join(re.escape(c) for c in codes) + r")\s*(?:;|$)"
    return registers.fillna("").astype(str).str.contains(pattern, regex=True)


def split_cases(cases: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Add `side`, `rule`, `case_class`, `weight` (points) and `weight_units` (integer points x units_per_point)."""
    cs, cc = policy.case_split, policy.case_classes
    mappa = cases["mappa_category"].fillna(0).astype(int) >= cs.mappa_min_category
    rosh_high = cases["rosh"].isin(cs.rosh_high_levels)
    conditions = {
        "MAPPA": mappa,
        "ROSH_HIGH": rosh_high,
        "PUBLIC_INTEREST": has_register(cases["registers"], cs.public_interest_registers),
        "DEPORT": cases["deport"].astype(bool),
        "ROSH_UNASSESSED": cases["rosh"].isna(),
        "CUSTODY": cases["case_type"].eq("CUSTODY"),
    }
    rules = cs.active_rules()
    rule = np.select([conditions[r].to_numpy(dtype=bool) for r in rules], list(rules), default=DEFAULT_CRC)
    nps = rule != DEFAULT_CRC

    complex_ = (
        (cases["rsr"].astype(float) >= cc.crc_complex.rsr_min).fillna(False).to_numpy(dtype=bool)
        | (cases["ogrs"].astype(float) >= cc.crc_complex.ogrs_min).fillna(False).to_numpy(dtype=bool)
        | has_register(cases["registers"], cc.crc_complex.registers).to_numpy(dtype=bool)
    )
    case_class = np.select(
        [nps & (mappa | rosh_high).to_numpy(dtype=bool), nps,
         cases["upw_only"].astype(bool).to_numpy(), complex_],
        ["NPS_HIGH", "NPS_STANDARD", "CRC_UPW", "CRC_COMPLEX"],
        default="CRC_STANDARD",
    )
    out = cases.copy()
    out["side"] = np.where(nps, NPS, CRC)
    out["rule"] = rule
    out["case_class"] = case_class
    units = {k: policy.weight_units(k) for k in cc.weights}
    out["weight_units"] = pd.Series(case_class, index=cases.index).map(units).astype("int64")
    out["weight"] = out["weight_units"] / policy.units_per_point
    return out


def nps_points_share(split: pd.DataFrame, fallback: float) -> float:
    """NPS share of workload points among `split` cases (the fallback when there is no workload)."""
    total = int(split["weight_units"].sum())
    if total == 0:
        return fallback
    return int(split.loc[split["side"] == NPS, "weight_units"].sum()) / total
