"""Extract contract v1 (spec section 3): the files, their columns and keys, and the typed tables they become.

The rules every value must keep are the Great Expectations suites in `expectations/` (`pipeline.validation`
runs them); this module only knows each file's shape and how a row that passed becomes typed data.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

DATE = r"\d{4}-\d{2}-\d{2}"


@dataclass(frozen=True)
class FileSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: str | None
    mandatory: bool


FILES: dict[str, FileSpec] = {
    "staff": FileSpec(
        "staff.csv",
        ("trust_code", "staff_code", "full_name", "grade", "role", "team_code", "fte", "contract",
         "service_start"),
        ("ni_number", "leaving_date", "preference"), "staff_code", True),
    "cases": FileSpec(
        "cases.csv",
        ("trust_code", "crn", "om_staff_code", "team_code", "case_type", "rosh", "mappa_category",
         "mappa_level", "deport", "upw_only", "sentence_date"),
        ("registers", "ogrs", "rsr", "expected_end"), "crn", True),
    "retention_requests": FileSpec(
        "retention_requests.csv", ("crn", "requested_by", "reason", "status"),
        ("note", "decided_by", "decision_note"), None, False),
    "appeals": FileSpec("appeals.csv", ("staff_code", "requested_org", "status"), ("decision_note",), None, False),
}


def _blank(s: pd.Series) -> pd.Series:
    return s.str.strip().eq("") | s.isna()


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s.where(s.str.fullmatch(DATE).fillna(False).astype(bool)),
                          format="%Y-%m-%d", errors="coerce")


def _opt(s: pd.Series) -> pd.Series:
    return s.where(~_blank(s), None)


def to_typed(kind: str, text: pd.DataFrame) -> pd.DataFrame:
    """Typed table of rows that passed validation (the decisions' input schema)."""
    spec = FILES[kind]
    df = text.copy()
    for col in spec.optional:
        if col not in df:
            df[col] = ""
    df = df[list(spec.required) + list(spec.optional)]
    if kind == "staff":
        df["fte"] = df["fte"].astype(float)
        df["service_start"] = _dates(df["service_start"])
        df["leaving_date"] = _dates(df["leaving_date"])
        df["preference"] = _opt(df["preference"])
        df["ni_number"] = _opt(df["ni_number"])
    elif kind == "cases":
        for col in ("om_staff_code", "rosh", "registers"):
            df[col] = _opt(df[col])
        df["mappa_category"] = df["mappa_category"].astype(int)
        df["mappa_level"] = df["mappa_level"].astype(int)
        df["ogrs"] = pd.to_numeric(_opt(df["ogrs"]), errors="coerce")
        df["rsr"] = pd.to_numeric(_opt(df["rsr"]), errors="coerce")
        df["deport"] = df["deport"].eq("Y")
        df["upw_only"] = df["upw_only"].eq("Y")
        df["sentence_date"] = _dates(df["sentence_date"])
        df["expected_end"] = _dates(df["expected_end"])
    else:
        for col in spec.optional:
            df[col] = _opt(df[col])
    return df.reset_index(drop=True)
