"""Staff split: every person gets exactly one side (NPS or CRC), its unit and a reason code."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.decisions.case_split import nps_points_share
from pipeline.domain import (ALIGNMENT, APPEAL_UPHELD, CRC, FIXED_ROLE, NPS, PREFERENCE, TARGET_FULL)
from pipeline.policy import Policy
from pipeline.text import equals, positions, sorted_by

_EPS = 1e-9


def guaranteed(staff: pd.DataFrame, policy: Policy) -> pd.Series:
    """In post on the cut-off: started on or before it and not left on or before it."""
    cutoff = pd.Timestamp(policy.cutoff_date)
    left = staff["leaving_date"].notna() & (staff["leaving_date"] <= cutoff)
    return (staff["service_start"] <= cutoff) & ~left


def staff_alignment(staff: pd.DataFrame, split_cases: pd.DataFrame, trust_share: float) -> pd.Series:
    """NPS share of the workload points each person holds now; the trust's share for an empty caseload."""
    holder = positions(split_cases["om_staff_code"], staff["staff_code"])
    held = holder >= 0
    units = split_cases["weight_units"].to_numpy()[held]
    nps = equals(split_cases["side"], NPS)[held]
    n = len(staff)
    all_units = np.bincount(holder[held], weights=units, minlength=n)
    nps_units = np.bincount(holder[held], weights=np.where(nps, units, 0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = nps_units / all_units
    return pd.Series(np.where(all_units > 0, share, trust_share), index=staff.index, dtype=float)


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
    staff = sorted_by(staff, "staff_code").reset_index(drop=True)
    trust_share = nps_points_share(split_cases, sp.fallback_nps_share)
    alignment = staff_alignment(staff, split_cases, trust_share).to_numpy()
    role = staff["role"].to_numpy(dtype=object)
    grade = staff["grade"].to_numpy(dtype=object)
    fte = staff["fte"].to_numpy(dtype=float)
    preference = staff["preference"].to_numpy(dtype=object, na_value=None)
    service = staff["service_start"].to_numpy(dtype="datetime64[ns]")
    side = np.full(len(staff), None, dtype=object)
    reason = np.full(len(staff), None, dtype=object)

    upheld = sorted((code, org) for code, org, status in
                    zip(appeals["staff_code"], appeals["requested_org"], appeals["status"])
                    if status == "UPHELD" and isinstance(code, str) and isinstance(org, str))
    row_of = {c: i for i, c in enumerate(staff["staff_code"].to_numpy(dtype=object))} if upheld else {}
    for code, org in upheld:
        i = row_of.get(code)
        if i is not None and side[i] is None and org in (NPS, CRC):
            side[i], reason[i] = org, APPEAL_UPHELD
    for r, s in sp.fixed_roles.items():
        at = (role == r) & pd.isna(side)
        side[at], reason[at] = s, FIXED_ROLE
    flexible = pd.isna(side)
    clarity = np.abs(alignment - 0.5)

    def split_grades(grades: list[str], share: float) -> None:
        for g in grades:
            rows = np.flatnonzero(flexible & (grade == g))
            if not len(rows):
                continue
            # clearest alignment first, then longest service, then staff_code (rows are in code order)
            rows = rows[np.lexsort((rows, service[rows], -clarity[rows]))]
            total = float(fte[rows].sum())
            room = {NPS: total * share, CRC: total * (1 - share)}
            got_side, got_reason = [], []
            for pref, aligned, f in zip(preference[rows].tolist(), alignment[rows].tolist(), fte[rows].tolist()):
                explicit = pref in (NPS, CRC)
                choice = pref if explicit else (NPS if aligned >= sp.nps_alignment_threshold else CRC)
                if room[choice] + _EPS >= sp.room_fraction_of_fte * f:
                    got, why = choice, (PREFERENCE if explicit else ALIGNMENT)
                else:
                    got, why = (CRC if choice == NPS else NPS), TARGET_FULL
                room[got] -= f
                got_side.append(got)
                got_reason.append(why)
            side[rows], reason[rows] = got_side, got_reason

    workload_grades = list(sp.workload_grades)
    split_grades(workload_grades, trust_share)

    holding = (role == sp.case_holding_role) & pd.notna(side)
    nps_fte = float(fte[holding & (side == NPS)].sum())
    om_total = float(fte[holding].sum())
    om_share = nps_fte / om_total if om_total > 0 else trust_share
    other_grades = sorted(set(grade[flexible]) - set(workload_grades))
    split_grades(other_grades, om_share)

    out = staff.copy()
    out["side"] = side
    out["unit"] = np.where(side == NPS, nps_unit, crc_unit)
    out["reason"] = reason
    out["guaranteed"] = guaranteed(out, policy).to_numpy()
    out["alignment"] = alignment
    return out
