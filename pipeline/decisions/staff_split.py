"""Staff split: every person gets exactly one side (NPS or CRC), its unit and a reason code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.decisions.case_split import nps_points_share
from pipeline.domain import ALIGNMENT, APPEAL_UPHELD, CRC, FIXED_ROLE, NPS, PREFERENCE, TARGET_FULL
from pipeline.policy import Policy

_EPS = 1e-9


def guaranteed(staff: pd.DataFrame, policy: Policy) -> pd.Series:
    """In post on the cut-off: started on or before it and not left on or before it."""
    cutoff = pd.Timestamp(policy.cutoff_date)
    left = staff["leaving_date"].notna() & (staff["leaving_date"] <= cutoff)
    return (staff["service_start"] <= cutoff) & ~left


def staff_alignment(staff: pd.DataFrame, split_cases: pd.DataFrame, trust_share: float) -> pd.Series:
    """NPS share of the workload points each person holds now; the trust's share for an empty caseload."""
    holder = pd.Index(staff["staff_code"]).get_indexer(split_cases["om_staff_code"])
    held = holder >= 0
    units = split_cases["weight_units"].to_numpy()[held]
    nps = split_cases["side"].eq(NPS).to_numpy(dtype=bool, na_value=False)[held]
    n = len(staff)
    all_units = np.bincount(holder[held], weights=units, minlength=n)
    nps_units = np.bincount(holder[held], weights=np.where(nps, units, 0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = nps_units / all_units
    return pd.Series(np.where(all_units > 0, share, trust_share), index=staff.index, dtype=float)


HELD_COLUMNS = ["staff_code", "role", "side", "unit", "reason", "assigned_on"]


def split_staff(
    staff: pd.DataFrame,
    split_cases: pd.DataFrame,
    appeals: pd.DataFrame,
    policy: Policy,
    nps_unit: str,
    crc_unit: str,
    held: pd.DataFrame | None = None,
    run_date: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One trust's staff split (docs/decisions.md): appeals, fixed roles, then the flexible grade-by-grade targets.

    `held`: the assignment the last run before this one left (HELD_COLUMNS). With the policy's `hold_sides`,
    a person in it keeps their side, unit, reason and `assigned_on` unless an appeal is upheld for the other
    side or they moved into a fixed role of the other side (their role changed); a person new to the extracts
    is split against what is left of their grade's targets once everyone held is counted. `run_date`: the
    `assigned_on` of whoever is assigned now (NaT when not given).

    Returns the staff rows sorted by staff_code with `side`, `unit`, `reason`, `guaranteed`, `alignment`,
    `assigned_on` and `held` (kept from the run before).
    """
    sp = policy.staff_split
    staff = staff.sort_values("staff_code", kind="stable").reset_index(drop=True)
    trust_share = nps_points_share(split_cases, sp.fallback_nps_share)
    alignment = staff_alignment(staff, split_cases, trust_share).to_numpy()
    role = staff["role"].to_numpy(dtype=object)
    grade = staff["grade"].to_numpy(dtype=object)
    fte = staff["fte"].to_numpy(dtype=float)
    preference = staff["preference"].to_numpy(dtype=object, na_value=None)
    service = staff["service_start"].to_numpy(dtype="datetime64[ns]")
    side = np.full(len(staff), None, dtype=object)
    reason = np.full(len(staff), None, dtype=object)
    assigned_on = np.full(len(staff), np.datetime64("NaT"), dtype="datetime64[ns]")
    now = np.datetime64(run_date, "ns") if run_date is not None else np.datetime64("NaT")
    before = _held(staff, held if sp.hold_sides else None)

    upheld = sorted(
        (code, org)
        for code, org, status in zip(appeals["staff_code"], appeals["requested_org"], appeals["status"])
        if status == "UPHELD" and isinstance(code, str) and isinstance(org, str)
    )
    row_of = {c: i for i, c in enumerate(staff["staff_code"].to_numpy(dtype=object))} if upheld else {}
    appealed = np.zeros(len(staff), dtype=bool)
    for code, org in upheld:
        i = row_of.get(code)
        if i is not None and side[i] is None and org in (NPS, CRC):
            appealed[i] = True
            if before["side"][i] != org:  # held on the side the appeal asks for: nothing changes
                side[i], reason[i] = org, APPEAL_UPHELD
    for r, s in sp.fixed_roles.items():
        # A person held keeps their side in the role they had; moving into a fixed role of the other side
        # assigns them again (an upheld appeal still comes first).
        at = (role == r) & pd.isna(side) & ~appealed & ((before["side"] != s) & (before["role"] != role))
        side[at], reason[at] = s, FIXED_ROLE
    assigned_on[pd.notna(side)] = now
    keep = pd.notna(before["side"]) & pd.isna(side)  # held: no appeal or fixed role says otherwise
    side[keep], reason[keep], assigned_on[keep] = (
        before["side"][keep],
        before["reason"][keep],
        before["assigned_on"][keep],
    )
    fixed = pd.notna(side) & ~keep
    flexible = ~fixed
    clarity = np.abs(alignment - 0.5)

    def split_grades(grades: list[str], share: float) -> None:
        for g in grades:
            mine = flexible & (grade == g)
            rows = np.flatnonzero(mine & ~keep)
            if not len(rows):
                continue
            # clearest alignment first, then longest service, then staff_code (rows are in code order)
            rows = rows[np.lexsort((rows, service[rows], -clarity[rows]))]
            total = float(fte[mine].sum())  # the grade's target counts everyone held in it
            room = {
                s: total * (share if s == NPS else 1 - share) - float(fte[mine & keep & (side == s)].sum())
                for s in (NPS, CRC)
            }
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
            side[rows], reason[rows], assigned_on[rows] = got_side, got_reason, now

    workload_grades = list(sp.workload_grades)
    split_grades(workload_grades, trust_share)

    holding = (role == sp.case_holding_role) & pd.notna(side)
    nps_fte = float(fte[holding & (side == NPS)].sum())
    om_total = float(fte[holding].sum())
    om_share = nps_fte / om_total if om_total > 0 else trust_share
    other_grades = sorted(set(grade[flexible & ~keep]) - set(workload_grades))
    split_grades(other_grades, om_share)

    out = staff.copy()
    out["side"] = side
    out["unit"] = np.where(side == NPS, nps_unit, crc_unit)
    out["reason"] = reason
    out["guaranteed"] = guaranteed(out, policy).to_numpy()
    out["alignment"] = alignment
    out["assigned_on"] = assigned_on
    out["held"] = keep
    return out


def _held(staff: pd.DataFrame, held: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """The earlier assignment of each person in `staff` (row order): side, reason, assigned_on (None and
    NaT for a person new to the extracts)."""
    n = len(staff)
    if held is None or held.empty:
        return {
            "side": np.full(n, None, dtype=object),
            "reason": np.full(n, None, dtype=object),
            "role": np.full(n, None, dtype=object),
            "assigned_on": np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
        }
    at = pd.Index(held["staff_code"]).get_indexer(staff["staff_code"])  # staff row -> held row, -1 when new
    found = at >= 0
    pick = np.where(found, at, 0)

    def column(name: str, missing, dtype) -> np.ndarray:
        values = held[name].to_numpy(dtype=dtype)[pick]
        return (
            np.where(found, values, missing)
            if dtype is object
            else np.where(found, values, np.datetime64("NaT")).astype(dtype)
        )

    sides = column("side", None, object)
    sides = np.where(np.isin(sides, [NPS, CRC]), sides, None)
    return {
        "side": sides,
        "reason": column("reason", None, object),
        "role": column("role", None, object),
        "assigned_on": column("assigned_on", None, "datetime64[ns]"),
    }
