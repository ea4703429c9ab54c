"""A trust's operational lists as files: CSV a spreadsheet opens safely, and the night's folder of lists
(staff assignment, case alignment, transfer list and workbook, retention decisions)."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.domain import REASON_WORDS
from pipeline.outputs.workbook import TRANSFER_WORKBOOK, transfer_workbook
from pipeline.storage import Store

FORMULA_CHARS = b"=+-@\t\r"  # what a spreadsheet may read as the start of a formula


FORMULA_START = re.compile("^[" + re.escape(FORMULA_CHARS.decode()) + "]")


# A number as a spreadsheet reads one: digits with an optional sign, decimal point and exponent. Python's
# float() also takes "-Infinity", "+nan" and "\t1", which a spreadsheet reads as a formula or text.
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def formula_safe(value: object) -> object:
    """Neutralise text a spreadsheet would run as a formula: a leading = + - @, tab or CR, unless the whole
    cell is a plain number (-12.5, +3)."""
    if not isinstance(value, str) or not FORMULA_START.match(value) or PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def formula_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`formula_safe` on every text column, touching only the cells that start like a formula (in a shallow
    copy: a column with none is not copied)."""
    out = df.copy(deep=False)
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            risky = s.str.match(FORMULA_START.pattern, na=False).to_numpy(dtype=bool)
            if risky.any():
                out[col] = s.astype(object)
                out.loc[risky, col] = [formula_safe(v) for v in s[risky]]
    return out


def write_csv(store: Store, df: pd.DataFrame, *parts: str) -> None:
    store.write_bytes(csv_bytes(formula_safe_frame(df)), *parts)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a header row and CRLF line ends, text quoted, by Arrow's writer (pandas' is far slower
    on a large trust's lists); pandas' writer for a column Arrow cannot type."""
    try:
        table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return df.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(eol="\r\n", quoting_header="none"))
    return buf.getvalue()


def read_csv(store: Store, *parts: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(store.read_bytes(*parts)), dtype=str, keep_default_na=False)


def _day(values: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD text, blank where there is none."""
    return pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")


YES_NO = {True: "Y", False: "N"}


def write_operational(out: Store, op: tuple[str, ...], d, typed) -> None:
    s = d.staff_assignment
    write_csv(
        out,
        s[["staff_code", "grade", "role", "fte", "side", "unit", "reason"]].assign(
            guaranteed=s["guaranteed"].map(YES_NO), assigned_on=_day(s["assigned_on"])
        ),
        *op,
        "staff_assignment.csv",
    )
    a = d.case_alignment
    write_csv(
        out,
        a[["crn", "side", "rule", "case_class", "current_om", "om"]].assign(
            moved=a["moved"].map(YES_NO),
            reason=a["reason"],
            planned_on=_day(a["planned_on"]),
            replanned=a["replanned"].map(YES_NO),
        ),
        *op,
        "case_alignment.csv",
    )
    moves = a.loc[a["moved"].to_numpy()]
    night = pd.Timestamp(op[-1])
    people = typed["staff"].drop_duplicates("staff_code").set_index("staff_code")
    rosh = typed["cases"].drop_duplicates("crn").set_index("crn")["rosh"]

    def of(codes: pd.Series, column: str) -> pd.Series:
        return codes.map(people[column]).fillna("")

    transfers = pd.DataFrame(
        {
            "crn": moves["crn"],
            "side": moves["side"],
            "case_class": moves["case_class"],
            "rosh": moves["crn"].map(rosh).fillna(""),
            "team_code": moves["team_code"],
            "current_om": moves["current_om"],
            "current_om_name": of(moves["current_om"], "full_name"),
            "current_om_team": of(moves["current_om"], "team_code"),
            "new_om": moves["om"],
            "new_om_name": of(moves["om"], "full_name"),
            "new_om_team": of(moves["om"], "team_code"),
            "reason": moves["reason"],
            "reason_in_words": moves["reason"].map(REASON_WORDS),
            "planned_on": _day(moves["planned_on"]),
            "days_outstanding": (night - moves["planned_on"]).dt.days.astype("Int64").astype(str),
            "replanned": moves["replanned"].map(YES_NO),
        }
    )
    transfers = transfers.iloc[
        np.lexsort((transfers["crn"].to_numpy(dtype=object), moves["planned_on"].to_numpy()))
    ]  # oldest first
    transfers = formula_safe_frame(transfers)  # once, for the CSV and the workbook
    out.write_bytes(csv_bytes(transfers), *op, "transfer_list.csv")
    out.write_bytes(transfer_workbook(transfers, dt.datetime.fromisoformat(op[-1])), *op, TRANSFER_WORKBOOK)
    r = d.retention_decisions
    write_csv(
        out,
        r[
            [
                "crn",
                "requested_by",
                "reason",
                "note",
                "status",
                "decided_by",
                "decision_note",
                "case_om",
                "case_reason",
                "outcome",
                "outcome_in_words",
            ]
        ],
        *op,
        "retention_decisions.csv",
    )
