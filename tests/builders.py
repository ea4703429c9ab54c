"""Tiny typed tables for hand-made trusts: name only what a test is about."""

from __future__ import annotations

import pandas as pd

T = pd.Timestamp
AS_OF = T("2014-06-01")


def staff(*rows: dict) -> pd.DataFrame:
    base = {
        "trust_code": "WIL",
        "grade": "PO",
        "role": "OFFENDER_MANAGEMENT",
        "team_code": "T1",
        "fte": 1.0,
        "contract": "PERMANENT",
        "service_start": T("2010-01-01"),
        "leaving_date": pd.NaT,
        "preference": None,
        "full_name": "x",
        "ni_number": None,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def cases(*rows: dict) -> pd.DataFrame:
    base = {
        "trust_code": "WIL",
        "om_staff_code": None,
        "team_code": "T1",
        "case_type": "COMMUNITY",
        "rosh": "LOW",
        "mappa_category": 0,
        "mappa_level": 0,
        "registers": None,
        "ogrs": None,
        "rsr": None,
        "deport": False,
        "upw_only": False,
        "sentence_date": T("2013-01-01"),
        "expected_end": pd.NaT,
    }
    df = pd.DataFrame([{**base, **r} for r in rows])
    for col in ("ogrs", "rsr"):
        df[col] = df[col].astype(float)
    return df


def retention(*rows: dict) -> pd.DataFrame:
    cols = ["crn", "requested_by", "reason", "note", "status", "decided_by", "decision_note"]
    base = {"reason": "RELATIONSHIP", "note": "n", "decided_by": None, "decision_note": None}
    return pd.DataFrame([{**base, **r} for r in rows], columns=cols)


def appeals(*rows: dict) -> pd.DataFrame:
    cols = ["staff_code", "requested_org", "status", "decision_note"]
    return pd.DataFrame([{"decision_note": None, **r} for r in rows], columns=cols)


def reductions(*rows: dict) -> pd.DataFrame:
    cols = ["staff_code", "reason", "hours", "percent", "start_date", "end_date", "note"]
    base = {"hours": None, "percent": None, "start_date": T("2014-01-01"), "end_date": pd.NaT, "note": None}
    df = pd.DataFrame([{**base, **r} for r in rows], columns=cols)
    return df.astype({"hours": float, "percent": float})
