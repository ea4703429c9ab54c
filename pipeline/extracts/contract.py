"""Extract contract v1.1 (docs/extract-contract.md): the files, their columns and keys, and the typed tables they
become.

The rules every value must keep are the Great Expectations suites in `expectations/` (`pipeline.extracts.validation`
runs them); this module only knows each file's shape and how a row that passed becomes typed data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
        ("trust_code", "staff_code", "full_name", "grade", "role", "team_code", "fte", "contract", "service_start"),
        ("ni_number", "leaving_date", "preference", "contracted_hours"),
        "staff_code",
        True,
    ),
    "cases": FileSpec(
        "cases.csv",
        (
            "trust_code",
            "crn",
            "om_staff_code",
            "team_code",
            "case_type",
            "rosh",
            "mappa_category",
            "mappa_level",
            "deport",
            "upw_only",
            "sentence_date",
        ),
        ("registers", "ogrs", "rsr", "expected_end"),
        "crn",
        True,
    ),
    "retention_requests": FileSpec(
        "retention_requests.csv",
        ("crn", "requested_by", "reason", "status"),
        ("note", "decided_by", "decision_note"),
        None,
        False,
    ),
    "appeals": FileSpec("appeals.csv", ("staff_code", "requested_org", "status"), ("decision_note",), None, False),
    "reductions": FileSpec(
        "reductions.csv", ("staff_code", "reason", "start_date"), ("hours", "percent", "end_date", "note"), None, False
    ),
}


def _blank(s: pd.Series) -> pd.Series:
    return s.str.strip().eq("") | s.isna()


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s.where(s.str.fullmatch(DATE).fillna(False).astype(bool)), format="%Y-%m-%d", errors="coerce")


def _opt(s: pd.Series) -> pd.Series:
    return s.where(~_blank(s), None)


# How each column of a row that passed validation is typed; columns not named stay text.
TYPES: dict[str, dict[str, str]] = {
    "staff": {
        "fte": "number",
        "service_start": "date",
        "leaving_date": "date",
        "preference": "optional",
        "ni_number": "optional",
        "contracted_hours": "optional_number",
    },
    "cases": {
        "om_staff_code": "optional",
        "rosh": "optional",
        "registers": "optional",
        "mappa_category": "integer",
        "mappa_level": "integer",
        "ogrs": "optional_number",
        "rsr": "optional_number",
        "deport": "flag",
        "upw_only": "flag",
        "sentence_date": "date",
        "expected_end": "date",
    },
    "retention_requests": {c: "optional" for c in FILES["retention_requests"].optional},
    "appeals": {c: "optional" for c in FILES["appeals"].optional},
    "reductions": {
        "hours": "optional_number",
        "percent": "optional_number",
        "start_date": "date",
        "end_date": "date",
        "note": "optional",
    },
}
# How pandas types each kind of column: where Arrow is stricter it falls back to this, and must agree with it.
PANDAS_TYPES = {
    "number": lambda s: s.astype(float),
    "date": _dates,
    "optional": _opt,
    "integer": lambda s: s.astype(int),
    "optional_number": lambda s: pd.to_numeric(_opt(s), errors="coerce"),
    "flag": lambda s: s.eq("Y"),
}
# Every character Python's str.strip() removes (str.isspace), so that Arrow finds the blanks `_blank` finds
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def blank(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Null, or nothing but whitespace (as Python's str.strip() sees it)."""
    found = pc.fill_null(pc.equal(pc.utf8_trim(values, WHITESPACE), ""), True)
    return found.combine_chunks() if isinstance(found, pa.ChunkedArray) else found


def _arrow(how: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """One column typed by Arrow; ArrowInvalid where Arrow is stricter than pandas (then pandas types it)."""
    if how in ("optional", "optional_number"):
        values = pc.if_else(blank(values), pa.scalar(None, values.type), values)
    if how == "flag":
        return pc.fill_null(pc.equal(values, "Y"), False)
    if how == "optional":
        return values.cast(pa.large_string())
    if how == "date":  # once per distinct day: a column of 480,000 dates holds a few thousand
        found = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
        days = found.dictionary
        days = pc.if_else(pc.match_substring_regex(days, f"^{DATE}$"), days, pa.scalar(None, days.type))
        return days.cast(pa.timestamp("us")).take(found.indices)
    return values.cast(pa.int64() if how == "integer" else pa.float64())


def typed_table(kind: str, text: pa.Table) -> pa.Table:
    """Typed table of rows that passed validation (the decisions' input schema), from their text in Arrow."""
    spec = FILES[kind]
    columns = {}
    for col in spec.required + spec.optional:
        values = (
            text[col]
            if col in text.column_names
            else pa.chunked_array([pa.array([""] * text.num_rows, pa.string())], pa.string())
        )
        how = TYPES[kind].get(col)
        columns[col] = values.cast(pa.large_string()) if how is None else type_column(how, values)
    return pa.table(columns)


def type_column(how: str, values: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """One text column typed `how`: by Arrow, or by pandas where Arrow's parsing is stricter (" 1.5", "+2")."""
    try:
        return _arrow(how, values)
    except pa.ArrowInvalid:
        return pa.array(PANDAS_TYPES[how](values.to_pandas()), from_pandas=True)
