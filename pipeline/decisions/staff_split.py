"""Staff split: every person gets exactly one side (NPS or CRC), its unit and a reason code."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from pipeline.decisions.case_split import nps_points_share
from pipeline.domain import (ALIGNMENT, APPEAL_UPHELD, CRC, FIXED_ROLE, NPS, PREFERENCE, TARGET_FULL)
from pipeline.policy import Policy

_EPS = 1e-9


def guaranteed(staff: pd.DataFrame, policy: Policy) -> pd.Series:
    """In post on the cut-off: started on or before it and not left on or before it."""
    cutoff = pd.Timestamp(policy.cutoff_date)
    left = staff["leaving_date"].notna() & (staff["leaving_date"] <= cutoff)
    return (staff["service_start"] <= cutoff) & ~left


def staff_alignment(staff: pd.DataFrame, split_cases: pd.DataFrame, trust_share: float) -> pd.Series:
    """NPS share of the workload points each person holds now; the trust's share for an empty caseload."""
    held = split_cases[split_cases["om_staff_code"].notna()]
    nps_units = held["weight_units"].where(held["side"] == NPS, 0)
    by_om = pd.DataFrame({"om": held["om_staff_code"], "nps": nps_units, "all": held["weight_units"]})
    sums = by_om.groupby("om")[["nps", "all"]].sum()
    share = (sums["nps"] / sums["all"]).reindex(staff["staff_code"]).to_numpy()
    return pd.Series(np.where(np.isnan(share), trust_share, share), index=staff.index, dtype=float)


def split_staff(
    staff: pd.DataFrame,
    split_cases: pd.DataFrame,
    appeals: pd.DataFrame,
    policy: Policy,
    nps_unit: str,
    crc_unit: str,
) -> pd.DataFrame:
    """One trust's staff split (spec §4): appeals, fixed roles, then the flexible grade-by-grade targets.

    Returns the staff rows sorted by staff_code with `side`, `unit`, `reason`, `guaranteed`, `alignment`.
    """
    sp = policy.staff_split
    staff = staff.sort_values("staff_code", kind="stable").reset_index(drop=True)
    trust_share = nps_points_share(split_cases, sp.fallback_nps_share)
    alignment = staff_alignment(staff, split_cases, trust_share)

    side: dict[str, str] = {}
    reason: dict[str, str] = {}
    upheld = appeals[appeals["status"] == "UPHELD"].sort_values(["staff_code", "requested_org"], kind="stable")
    for code, org in zip(upheld["staff_code"], upheld["requested_org"]):
        if code not in side and org in (NPS, CRC):
            side[code], reason[code] = org, APPEAL_UPHELD
    for code, role in zip(staff["staff_code"], staff["role"]):
        if code not in side and role in sp.fixed_roles:
            side[code], reason[code] = sp.fixed_roles[role], FIXED_ROLE

    flexible = staff[~staff["staff_code"].isin(list(side))].assign(alignment=alignment)
    flexible = flexible.assign(clarity=(flexible["alignment"] - 0.5).abs())

    def split_grades(grades: list[str], share: float) -> None:
        for grade in grades:
            people = flexible[flexible["grade"] == grade].sort_values(
                ["clarity", "service_start", "staff_code"], ascending=[False, True, True], kind="stable")
            if people.empty:
                continue
            total = float(people["fte"].sum())
            room = {NPS: total * share, CRC: total * (1 - share)}
            for code, fte, pref, align in zip(
                    people["staff_code"], people["fte"], people["preference"], people["alignment"]):
                explicit = pref in (NPS, CRC)
                choice = pref if explicit else (NPS if align >= sp.nps_alignment_threshold else CRC)
                if room[choice] + _EPS >= sp.room_fraction_of_fte * fte:
                    got, why = choice, (PREFERENCE if explicit else ALIGNMENT)
                else:
                    got, why = (CRC if choice == NPS else NPS), TARGET_FULL
                room[got] -= fte
                side[code], reason[code] = got, why

    workload_grades = list(sp.workload_grades)
    split_grades(workload_grades, trust_share)

    om_fte: dict[str, float] = defaultdict(float)
    for code, role, fte in zip(staff["staff_code"], staff["role"], staff["fte"]):
        if role == sp.case_holding_role and code in side:
            om_fte[side[code]] += fte
    om_total = om_fte[NPS] + om_fte[CRC]
    om_share = om_fte[NPS] / om_total if om_total > 0 else trust_share
    other_grades = sorted(set(flexible["grade"]) - set(workload_grades))
    split_grades(other_grades, om_share)

    out = staff.copy()
    out["side"] = out["staff_code"].map(side)
    out["unit"] = np.where(out["side"] == NPS, nps_unit, crc_unit)
    out["reason"] = out["staff_code"].map(reason)
    out["guaranteed"] = guaranteed(out, policy).to_numpy()
    out["alignment"] = alignment.to_numpy()
    return out
