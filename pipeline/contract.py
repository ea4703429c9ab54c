"""Extract contract v1 (spec §3): the columns of each file and the row rules, as vectorised checks.

Each file is read as text first (`pipeline.ingest`), so one bad value quarantines one row, never the file;
`check_rows` returns the rows' breaches and `to_typed` turns the surviving rows into the typed tables the
decisions take.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from pipeline.domain import (APPEAL_STATUSES, CASE_TYPES, CONTRACTS, GRADES, RETENTION_REASONS,
                             RETENTION_STATUSES, ROLES, ROSH_LEVELS)

CRN = r"[A-Z][0-9]{6}"
STAFF_CODE = r"[A-Za-z0-9]{1,7}"
TEAM_CODE = r"[A-Za-z0-9]{1,6}"
DATE = r"\d{4}-\d{2}-\d{2}"


@dataclass(frozen=True)
class Rule:
    """A row rule: `ok(text column, frame)` is True where the row keeps the rule."""
    column: str
    code: str
    message: str
    ok: Callable[[pd.Series, pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class FileSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: str | None
    rules: tuple[Rule, ...]
    mandatory: bool


def _blank(s: pd.Series) -> pd.Series:
    return s.str.strip().eq("") | s.isna()


def _matches(pattern: str, optional: bool = False):
    def ok(s: pd.Series, _df: pd.DataFrame) -> pd.Series:
        good = s.str.fullmatch(pattern).fillna(False).astype(bool)
        return good | _blank(s) if optional else good
    return ok


def _one_of(values: tuple[str, ...], optional: bool = False):
    def ok(s: pd.Series, _df: pd.DataFrame) -> pd.Series:
        good = s.isin(values)
        return good | _blank(s) if optional else good
    return ok


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s.where(s.str.fullmatch(DATE).fillna(False).astype(bool)),
                          format="%Y-%m-%d", errors="coerce")


def _date(optional: bool = False):
    def ok(s: pd.Series, _df: pd.DataFrame) -> pd.Series:
        good = _dates(s).notna()
        return good | _blank(s) if optional else good
    return ok


def _number(lo: float, hi: float, *, integer: bool = False, lo_open: bool = False, optional: bool = False):
    def ok(s: pd.Series, _df: pd.DataFrame) -> pd.Series:
        pattern = r"-?\d+" if integer else r"-?\d+(?:\.\d+)?"
        text_ok = s.str.strip().str.fullmatch(pattern).fillna(False).astype(bool)
        x = pd.to_numeric(s.where(text_ok), errors="coerce")
        good = (x > lo if lo_open else x >= lo) & (x <= hi)
        good = good.fillna(False).astype(bool)
        return good | _blank(s) if optional else good
    return ok


def _end_not_before_start(s: pd.Series, df: pd.DataFrame) -> pd.Series:
    end, start = _dates(s), _dates(df["sentence_date"])
    return ~(end < start).fillna(False).astype(bool)


def _rejected_has_note(s: pd.Series, df: pd.DataFrame) -> pd.Series:
    return ~(df["status"].eq("REJECTED") & _blank(s))


def _trust_rule() -> Rule:
    # `ok` is bound per file to the folder's trust (see `check_rows`).
    return Rule("trust_code", "TRUST_MATCHES_FOLDER", "trust_code must be the trust of the upload folder",
                lambda s, df: s.eq(df.attrs["trust"]))


FILES: dict[str, FileSpec] = {
    "staff": FileSpec(
        "staff.csv",
        ("trust_code", "staff_code", "full_name", "grade", "role", "team_code", "fte", "contract",
         "service_start"),
        ("ni_number", "leaving_date", "preference"), "staff_code",
        (
            _trust_rule(),
            Rule("staff_code", "STAFF_CODE_FORMAT", "staff_code must be 1-7 letters or digits", _matches(STAFF_CODE)),
            Rule("grade", "GRADE_KNOWN", f"grade must be one of {', '.join(GRADES)}", _one_of(GRADES)),
            Rule("role", "ROLE_KNOWN", f"role must be one of {', '.join(ROLES)}", _one_of(ROLES)),
            Rule("team_code", "TEAM_CODE_FORMAT", "team_code must be 1-6 letters or digits", _matches(TEAM_CODE)),
            Rule("fte", "FTE_RANGE", "fte must be a decimal above 0 and at most 1", _number(0, 1, lo_open=True)),
            Rule("contract", "CONTRACT_KNOWN", f"contract must be one of {', '.join(CONTRACTS)}", _one_of(CONTRACTS)),
            Rule("service_start", "DATE_FORMAT", "service_start must be a date YYYY-MM-DD", _date()),
            Rule("leaving_date", "DATE_FORMAT", "leaving_date must be blank or a date YYYY-MM-DD", _date(True)),
            Rule("preference", "PREFERENCE_KNOWN", "preference must be blank, NPS or CRC", _one_of(("NPS", "CRC"), True)),
        ), True),
    "cases": FileSpec(
        "cases.csv",
        ("trust_code", "crn", "om_staff_code", "team_code", "case_type", "rosh", "mappa_category",
         "mappa_level", "deport", "upw_only", "sentence_date"),
        ("registers", "ogrs", "rsr", "expected_end"), "crn",
        (
            _trust_rule(),
            Rule("crn", "CRN_FORMAT", "crn must be a capital letter and six digits (e.g. X123456)", _matches(CRN)),
            Rule("om_staff_code", "STAFF_CODE_FORMAT", "om_staff_code must be blank or 1-7 letters or digits",
                 _matches(STAFF_CODE, True)),
            Rule("team_code", "TEAM_CODE_FORMAT", "team_code must be 1-6 letters or digits", _matches(TEAM_CODE)),
            Rule("case_type", "CASE_TYPE_KNOWN", f"case_type must be one of {', '.join(CASE_TYPES)}", _one_of(CASE_TYPES)),
            Rule("rosh", "ROSH_KNOWN", f"rosh must be blank or one of {', '.join(ROSH_LEVELS)}", _one_of(ROSH_LEVELS, True)),
            Rule("mappa_category", "MAPPA_CATEGORY_RANGE", "mappa_category must be 0, 1, 2, 3 or 4",
                 _number(0, 4, integer=True)),
            Rule("mappa_level", "MAPPA_LEVEL_RANGE", "mappa_level must be 0, 1, 2 or 3", _number(0, 3, integer=True)),
            Rule("ogrs", "OGRS_RANGE", "ogrs must be blank or a whole number 0-100", _number(0, 100, integer=True, optional=True)),
            Rule("rsr", "RSR_RANGE", "rsr must be blank or a number 0-100", _number(0, 100, optional=True)),
            Rule("deport", "FLAG_YN", "deport must be Y or N", _one_of(("Y", "N"))),
            Rule("upw_only", "FLAG_YN", "upw_only must be Y or N", _one_of(("Y", "N"))),
            Rule("sentence_date", "DATE_FORMAT", "sentence_date must be a date YYYY-MM-DD", _date()),
            Rule("expected_end", "DATE_FORMAT", "expected_end must be blank or a date YYYY-MM-DD", _date(True)),
            Rule("expected_end", "END_NOT_BEFORE_START", "expected_end must not be before sentence_date",
                 _end_not_before_start),
        ), True),
    "retention_requests": FileSpec(
        "retention_requests.csv",
        ("crn", "requested_by", "reason", "status"), ("note", "decided_by", "decision_note"), None,
        (
            Rule("crn", "CRN_FORMAT", "crn must be a capital letter and six digits", _matches(CRN)),
            Rule("requested_by", "STAFF_CODE_FORMAT", "requested_by must be 1-7 letters or digits", _matches(STAFF_CODE)),
            Rule("reason", "RETENTION_REASON_KNOWN", f"reason must be one of {', '.join(RETENTION_REASONS)}",
                 _one_of(RETENTION_REASONS)),
            Rule("status", "RETENTION_STATUS_KNOWN", f"status must be one of {', '.join(RETENTION_STATUSES)}",
                 _one_of(RETENTION_STATUSES)),
            Rule("decision_note", "REJECTION_EXPLAINED",
                 "a REJECTED request must carry a decision_note explaining why", _rejected_has_note),
        ), False),
    "appeals": FileSpec(
        "appeals.csv", ("staff_code", "requested_org", "status"), ("decision_note",), None,
        (
            Rule("staff_code", "STAFF_CODE_FORMAT", "staff_code must be 1-7 letters or digits", _matches(STAFF_CODE)),
            Rule("requested_org", "ORG_KNOWN", "requested_org must be NPS or CRC", _one_of(("NPS", "CRC"))),
            Rule("status", "APPEAL_STATUS_KNOWN", f"status must be one of {', '.join(APPEAL_STATUSES)}",
                 _one_of(APPEAL_STATUSES)),
        ), False),
}


def check_rows(kind: str, text: pd.DataFrame, trust: str) -> pd.DataFrame:
    """Every breach of a row rule: columns row (0-based data row), column, rule, message, value."""
    spec = FILES[kind]
    text = text.copy()
    text.attrs["trust"] = trust
    for col in spec.optional:
        if col not in text:
            text[col] = ""
    found = []
    for rule in spec.rules:
        bad = ~rule.ok(text[rule.column], text).to_numpy(dtype=bool)
        if bad.any():
            rows = np.flatnonzero(bad)
            found.append(pd.DataFrame({"row": rows, "column": rule.column, "rule": rule.code,
                                       "message": rule.message, "value": text[rule.column].to_numpy()[rows]}))
    if spec.key:
        dup = text[spec.key].duplicated(keep=False).to_numpy() & (text[spec.key].str.strip() != "").to_numpy()
        if dup.any():
            rows = np.flatnonzero(dup)
            found.append(pd.DataFrame({"row": rows, "column": spec.key, "rule": "DUPLICATE_KEY",
                                       "message": f"{spec.key} must be unique in the file; every copy is held back",
                                       "value": text[spec.key].to_numpy()[rows]}))
    if not found:
        return pd.DataFrame(columns=["row", "column", "rule", "message", "value"])
    return pd.concat(found, ignore_index=True).sort_values(["row", "column", "rule"], kind="stable")


def _opt(s: pd.Series) -> pd.Series:
    return s.where(~_blank(s), None)


def to_typed(kind: str, text: pd.DataFrame) -> pd.DataFrame:
    """Typed table of rows that passed `check_rows` (the decisions' input schema)."""
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
