"""Realistic synthetic extracts for all 35 trusts: national volume at scale 1, deterministic by seed.

Proportions follow the public figures of the 2014 transition (about 240,000 cases and 18,000 staff; about 20% of cases
NPS-type; London about a fifth). Officers "lean" to one side, so caseloads are partly aligned already, as
they were in 2014. A few cases are unallocated and a few officers have left (their code is absent from
staff.csv). Tables come out typed as the decisions take them; `pipeline.synthetic.landing` writes them as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.reference import Reference

NATIONAL_CASES = 240_000
STAFF_PER_CASE = 18_000 / 240_000

# Relative caseload of each trust outside London (London itself is 20% of the national total).
RELATIVE_SIZE = {
    "MCG": 5.5,
    "WYK": 4.5,
    "SWM": 6.0,
    "MER": 3.2,
    "NTB": 3.0,
    "SYK": 2.8,
    "LAN": 3.0,
    "HAM": 3.2,
    "TVP": 3.5,
    "KNT": 3.0,
    "SSX": 3.2,
    "ESX": 3.0,
    "ASP": 2.8,
    "DCP": 2.6,
    "WPT": 6.0,
    "NSF": 2.6,
    "DTV": 2.4,
    "HUM": 2.2,
    "NYK": 1.4,
    "DER": 2.0,
    "LEI": 2.0,
    "NOT": 2.4,
    "LIN": 1.4,
    "WMC": 2.2,
    "WAR": 1.0,
    "GLO": 1.0,
    "WIL": 0.8,
    "DOR": 1.0,
    "CUM": 0.8,
    "CHS": 1.8,
    "BED": 1.2,
    "CAM": 1.6,
    "HER": 1.6,
    "NHM": 1.4,
}
LONDON_SHARE = 0.20
LEAN_PO, LEAN_OTHER = 0.35, 0.12  # officers whose caseload is mostly NPS-type, by grade

ROLE_MIX = {
    "OFFENDER_MANAGEMENT": 0.40,
    "COURT": 0.08,
    "APPROVED_PREMISES": 0.05,
    "VICTIM_LIAISON": 0.02,
    "PROGRAMMES": 0.06,
    "UNPAID_WORK": 0.08,
    "INTERVENTIONS": 0.04,
    "CORPORATE": 0.13,
    "MANAGEMENT": 0.14,
}
GRADE_BY_ROLE = {
    "OFFENDER_MANAGEMENT": {"PO": 0.55, "PSO": 0.35, "PQIP": 0.10},
    "COURT": {"PO": 0.4, "PSO": 0.6},
    "APPROVED_PREMISES": {"PSO": 0.7, "PO": 0.3},
    "VICTIM_LIAISON": {"PSO": 0.8, "PO": 0.2},
    "PROGRAMMES": {"PSO": 0.7, "PO": 0.3},
    "UNPAID_WORK": {"UPW_SUP": 0.8, "PSO": 0.2},
    "INTERVENTIONS": {"PSO": 0.6, "PO": 0.4},
    "CORPORATE": {"ADMIN": 1.0},
    "MANAGEMENT": {"SPO": 0.7, "ACO": 0.3},
}
ROLE_TEAM = {
    "COURT": "CRT",
    "APPROVED_PREMISES": "AP",
    "VICTIM_LIAISON": "VLU",
    "PROGRAMMES": "PRG",
    "UNPAID_WORK": "UPW",
    "INTERVENTIONS": "INT",
    "CORPORATE": "ADM",
    "MANAGEMENT": "MGT",
}


@dataclass(frozen=True)
class TrustExtract:
    """One trust's extract as typed tables."""

    trust_code: str
    staff: pd.DataFrame
    cases: pd.DataFrame
    retention_requests: pd.DataFrame
    appeals: pd.DataFrame
    reductions: pd.DataFrame


def trust_case_counts(reference: Reference, scale: float) -> dict[str, int]:
    others = sum(RELATIVE_SIZE.values())
    counts = {}
    for code in reference.trust_codes:
        share = LONDON_SHARE if code == "LDN" else (1 - LONDON_SHARE) * RELATIVE_SIZE[code] / others
        counts[code] = max(20, round(NATIONAL_CASES * scale * share))
    return counts


def _b36(values: np.ndarray, width: int) -> np.ndarray:
    digits = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    out = np.full(len(values), "", dtype=object)
    v = values.copy()
    for _ in range(width):
        out = digits[v % 36].astype(object) + out
        v //= 36
    return out


def _pick(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    keys = list(mix)
    p = np.array([mix[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _dates(rng: np.random.Generator, start: str, end: str, n: int) -> np.ndarray:
    lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
    return lo + rng.integers(0, int((hi - lo).astype(int)) + 1, size=n).astype("timedelta64[D]")


def _team_suffix(t: int) -> str:
    """Three characters, so team codes keep the contract's 6 at any scale: 000-999, then A00-ZZZ (base 36)."""
    return f"{t:03d}" if t < 1000 else np.base_repr(36**2 * 10 + t - 1000, 36)


def generate_trust(code: str, n_cases: int, crn_offset: int, seed: int) -> TrustExtract:
    """One trust's staff, cases, retention requests and appeals (typed), deterministic by (seed, code)."""
    rng = np.random.default_rng([seed, *code.encode()])
    n_staff = max(12, round(n_cases * STAFF_PER_CASE))
    roles = _pick(rng, ROLE_MIX, n_staff)
    roles[:6] = "OFFENDER_MANAGEMENT"
    grades = np.empty(n_staff, dtype=object)
    for role, mix in GRADE_BY_ROLE.items():
        idx = np.flatnonzero(roles == role)
        grades[idx] = _pick(rng, mix, len(idx))
    grades[:3] = "PO"
    staff_codes = code + _b36(rng.permutation(36**4)[:n_staff], 4)
    om_idx = np.flatnonzero(roles == "OFFENDER_MANAGEMENT")
    n_teams = max(1, round(len(om_idx) / 9))
    team_of = np.empty(n_staff, dtype=object)
    team_of[om_idx] = np.array([code + _team_suffix(t) for t in range(n_teams)], dtype=object)[
        np.sort(rng.integers(0, n_teams, size=len(om_idx)))
    ]
    other = np.flatnonzero(roles != "OFFENDER_MANAGEMENT")
    team_of[other] = [ROLE_TEAM[r] + f"{i % 3:01d}" for i, r in zip(other, roles[other])]
    fte = rng.choice([1.0, 1.0, 1.0, 0.8, 0.6, 0.5], size=n_staff)
    service = _dates(rng, "1985-01-01", "2014-05-31", n_staff)
    leaving = np.full(n_staff, np.datetime64("NaT"), dtype="datetime64[D]")
    leavers = rng.random(n_staff) < 0.03
    leaving[leavers] = _dates(rng, "2014-04-01", "2014-12-31", int(leavers.sum()))
    pref = np.where(rng.random(n_staff) < 0.1, "NPS", np.where(rng.random(n_staff) < 0.11, "CRC", None))
    staff = pd.DataFrame(
        {
            "trust_code": code,
            "staff_code": staff_codes,
            "full_name": [f"Officer {s.title()}" for s in staff_codes],
            "ni_number": None,
            "grade": grades,
            "role": roles,
            "team_code": team_of,
            "fte": fte,
            "contract": _pick(rng, {"PERMANENT": 0.85, "FIXED_TERM": 0.08, "SESSIONAL": 0.04, "AGENCY": 0.03}, n_staff),
            "service_start": pd.to_datetime(service),
            "leaving_date": pd.to_datetime(leaving),
            "preference": pref,
        }
    )

    rosh = _pick(rng, {"LOW": 0.46, "MEDIUM": 0.39, "HIGH": 0.08, "VERY_HIGH": 0.01, "": 0.06}, n_cases)
    rosh_high = np.isin(rosh, ["HIGH", "VERY_HIGH"])
    mappa = np.where(rng.random(n_cases) < np.where(rosh_high, 0.25, 0.01), rng.integers(1, 4, n_cases), 0)
    reg_pool = np.array(["", "", "", "", "ADVP", "RCPR", "STRG", "RPIR", "ADVP;RCPR", "RMDO"], dtype=object)
    registers = np.where(rng.random(n_cases) < 0.25, reg_pool[rng.integers(0, len(reg_pool), n_cases)], "")
    registers = np.where(registers == "RPIR", np.where(rng.random(n_cases) < 0.3, "RPIR", "RMDO"), registers)
    deport = rng.random(n_cases) < 0.02
    nps_type = rosh_high | (mappa > 0) | (registers == "RPIR") | deport | (rosh == "")
    upw = ~nps_type & (rng.random(n_cases) < 0.12)
    ogrs = np.where(rng.random(n_cases) < 0.9, rng.integers(5, 86, n_cases), -1)
    rsr = np.where(rng.random(n_cases) < 0.8, np.round(rng.gamma(1.5, 0.9, n_cases), 2), np.nan)

    # Officers lean to one side and hold what their grade allows: high-risk and complex cases sit with POs
    # (NPS-type ones mostly with NPS-leaning POs), unpaid work with PSOs; about 3% are held by someone whose
    # grade may not hold them, as happens in real caseloads.
    oms = om_idx
    om_team = team_of[oms]
    om_grade = grades[oms]
    leaning = rng.random(len(oms)) < np.where(om_grade == "PO", LEAN_PO, LEAN_OTHER)
    team_codes = np.unique(om_team)
    case_team = team_codes[rng.integers(0, len(team_codes), n_cases)]
    complex_ = (
        ~nps_type & ~upw & ((rsr >= 3.0) | (ogrs >= 75) | np.isin(registers, ["ADVP", "RCPR", "STRG", "ADVP;RCPR"]))
    )
    needs_po = (rosh_high | (mappa > 0) | complex_) & (rng.random(n_cases) > 0.03)
    needs_pso = upw & (rng.random(n_cases) > 0.03)
    om_of_case = np.empty(n_cases, dtype=object)
    for t in team_codes:
        in_team = om_team == t
        members = oms[in_team]
        pools = {
            "lean": members[leaning[in_team]],
            "lean_po": members[leaning[in_team] & (om_grade[in_team] == "PO")],
            "po": members[(om_grade[in_team] == "PO") & ~leaning[in_team]],
            "pso": members[om_grade[in_team] == "PSO"],
            "other": members[~leaning[in_team]],
        }
        rows = np.flatnonzero(case_team == t)
        choice = np.where(
            nps_type[rows] & (rng.random(len(rows)) < 0.85),
            np.where(needs_po[rows], "lean_po", "lean"),
            np.where(needs_po[rows], "po", np.where(needs_pso[rows], "pso", "other")),
        )
        for name, pool in pools.items():
            sel = rows[choice == name]
            if not len(pool):
                pool = members
            weight = fte[pool] / fte[pool].sum()
            om_of_case[sel] = staff_codes[pool[rng.choice(len(pool), size=len(sel), p=weight)]]
    om_of_case[rng.random(n_cases) < 0.02] = None
    departed = rng.choice(oms, size=max(1, len(oms) // 100), replace=False)
    keep_staff = np.ones(n_staff, dtype=bool)
    keep_staff[departed] = False
    staff = staff[keep_staff].reset_index(drop=True)

    g = crn_offset + np.arange(n_cases)
    crn = np.array([chr(65 + (x // 1_000_000)) for x in g], dtype=object) + np.char.zfill(
        (g % 1_000_000).astype(str), 6
    ).astype(object)
    sentence = _dates(rng, "2008-01-01", "2014-05-31", n_cases)
    end = sentence + rng.integers(180, 3650, n_cases).astype("timedelta64[D]")
    cases = pd.DataFrame(
        {
            "trust_code": code,
            "crn": crn,
            "om_staff_code": om_of_case,
            "team_code": case_team,
            "case_type": _pick(rng, {"COMMUNITY": 0.55, "LICENCE": 0.25, "CUSTODY": 0.20}, n_cases),
            "rosh": np.where(rosh == "", None, rosh),
            "mappa_category": mappa.astype("int64"),
            "mappa_level": np.where(mappa > 0, rng.integers(1, 4, n_cases), 0).astype("int64"),
            "registers": np.where(registers == "", None, registers),
            "ogrs": pd.array(np.where(ogrs < 0, None, ogrs), dtype="Int64"),
            "rsr": rsr,
            "deport": deport,
            "upw_only": upw,
            "sentence_date": pd.to_datetime(sentence),
            "expected_end": pd.to_datetime(np.where(rng.random(n_cases) < 0.9, end, np.datetime64("NaT"))),
        }
    )

    held = np.flatnonzero(pd.notna(om_of_case) & (rng.random(n_cases) < 0.012))
    status = _pick(rng, {"ACCEPTED": 0.4, "PENDING": 0.3, "REJECTED": 0.3}, len(held))
    reasons = _pick(
        rng,
        {"RELATIONSHIP": 0.4, "RISK_OF_HARM": 0.2, "VULNERABILITY": 0.2, "MID_INTERVENTION": 0.15, "OTHER": 0.05},
        len(held),
    )
    managers = staff.loc[staff["grade"] == "SPO", "staff_code"].to_numpy(dtype=object)
    decided = np.where(
        status == "PENDING",
        None,
        managers[rng.integers(0, max(1, len(managers)), len(held))] if len(managers) else None,
    )
    retention = pd.DataFrame(
        {
            "crn": crn[held],
            "requested_by": om_of_case[held],
            "reason": reasons,
            "note": "Asked to keep this case",
            "status": status,
            "decided_by": decided,
            "decision_note": np.where(
                status == "REJECTED",
                "Case must move to the other side; handover planned",
                np.where(status == "ACCEPTED", "Agreed", None),
            ),
        }
    )
    appellants = rng.choice(n_staff - (~keep_staff).sum(), size=max(1, n_staff // 300), replace=False)
    appeals = pd.DataFrame(
        {
            "staff_code": staff["staff_code"].to_numpy()[np.sort(appellants)],
            "requested_org": rng.choice(["NPS", "CRC"], size=len(appellants)),
            "status": _pick(rng, {"UPHELD": 0.4, "DISMISSED": 0.4, "PENDING": 0.2}, len(appellants)),
            "decision_note": "Panel decision recorded",
        }
    )
    staff["contracted_hours"], reductions = _hours_and_reductions(
        staff, np.random.default_rng([seed, 28, *code.encode()])
    )
    return TrustExtract(code, staff, cases, retention, appeals, reductions)


FULL_TIME_HOURS = 37.0


def _hours_and_reductions(staff: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    """Contracted hours (fte x 37, blank for about one in seven: not every HR system holds them) and caseload
    reductions at realistic rates: every PQiP in their training year, a few newly qualified POs, trade-union
    facility time, sickness and phased returns (some over by the extract date), and a few others. Drawn
    from their own generator, so that the rest of the extract is the same with or without them."""
    n = len(staff)
    hours = np.where(rng.random(n) < 0.86, np.round(staff["fte"].to_numpy() * FULL_TIME_HOURS, 1), np.nan)
    grade, codes = staff["grade"].to_numpy(dtype=object), staff["staff_code"].to_numpy(dtype=object)
    holding = (staff["role"] == "OFFENDER_MANAGEMENT").to_numpy()
    rows = []

    def add(who: np.ndarray, reason: str, start, end, hours_of=None, percent_of=None) -> None:
        for j, i in enumerate(np.flatnonzero(who)):
            rows.append(
                {
                    "staff_code": codes[i],
                    "reason": reason,
                    "hours": None if hours_of is None else hours_of[j],
                    "percent": None if percent_of is None else percent_of[j],
                    "start_date": start[j],
                    "end_date": None if end is None else end[j],
                }
            )

    pqip = holding & (grade == "PQIP")
    second = rng.random(n) < 0.45
    for reason, who in (("PQIP_YEAR_1", pqip & ~second), ("PQIP_YEAR_2", pqip & second)):
        k = int(who.sum())
        add(who, reason, [pd.Timestamp("2013-09-02")] * k, [pd.Timestamp("2014-08-29")] * k)
    newly = holding & (grade == "PO") & (rng.random(n) < 0.04)
    start = pd.to_datetime(_dates(rng, "2013-10-01", "2014-05-31", int(newly.sum())))
    add(newly, "NEWLY_QUALIFIED", start, start + pd.Timedelta(days=182))
    union = rng.random(n) < 0.015
    add(
        union,
        "TRADE_UNION",
        [pd.Timestamp("2012-04-02")] * int(union.sum()),
        None,
        hours_of=rng.choice([3.7, 7.4, None, None], size=int(union.sum())),
    )
    sick = holding & (rng.random(n) < 0.025)
    start = pd.to_datetime(_dates(rng, "2014-02-01", "2014-07-31", int(sick.sum())))
    weeks = rng.integers(4, 20, size=len(start))
    add(sick, "SICKNESS", start, [s + pd.Timedelta(weeks=int(w)) if w < 17 else None for s, w in zip(start, weeks)])
    phased = holding & ~sick & (rng.random(n) < 0.01)
    start = pd.to_datetime(_dates(rng, "2014-03-01", "2014-07-31", int(phased.sum())))
    add(
        phased,
        "PHASED_RETURN",
        start,
        start + pd.Timedelta(weeks=6),
        percent_of=rng.choice([50, 40, None], size=len(start)),
    )
    other = holding & (rng.random(n) < 0.005)
    start = pd.to_datetime(_dates(rng, "2014-01-01", "2014-06-30", int(other.sum())))
    add(other, "OTHER", start, None, hours_of=rng.choice([3.7, 7.4, 11.1], size=len(start)))
    columns = ["staff_code", "reason", "hours", "percent", "start_date", "end_date"]
    reductions = pd.DataFrame(rows, columns=columns).sort_values(["staff_code", "reason"], kind="stable")
    return hours, reductions.assign(note="").reset_index(drop=True)


def generate_all(reference: Reference, scale: float = 1.0, seed: int = 0) -> list[TrustExtract]:
    counts = trust_case_counts(reference, scale)
    out, offset = [], 0
    for code in reference.trust_codes:
        out.append(generate_trust(code, counts[code], offset, seed))
        offset += counts[code]
    return out
